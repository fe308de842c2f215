// LayerNorm: out[t] = (x[t] - mean) / sqrt(var + eps) * w + b, for n rows of dim (the mean and
// variance are those of row t; var = mean((x - mean)^2), computed in a second pass, not E[x^2] - mean^2).
// affine: NoNorm (MobileBERT): out[t][i] = x[t][i] * w[i] + b[i], no statistics; same bindings, grid (n).
// Bindings: 0 uniform Params, 1 x f32 (read), 2 w [dim] f32 (read), 3 b [dim] f32 (read; zeros for
//   no bias), 4 out f32 (write).
// Workgroup: 64 threads per row, sums by tree reduction; grid (n).
// Precision: f32; each sum's error ~ (dim/64 + 6) * 2^-24 relative to the sum of magnitudes, then a
//   few roundings per element.
struct Params { dim: u32, n: u32, eps: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
var<workgroup> partial: array<f32, 64>;

fn rowSum(lid: u32, v: f32) -> f32 {
  partial[lid] = v;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let base = wg.x * p.dim;
  var s = 0.0;
  for (var i = lid.x; i < p.dim; i += 64u) { s += x[base + i]; }
  let mean = rowSum(lid.x, s) / f32(p.dim);
  var q = 0.0;
  for (var i = lid.x; i < p.dim; i += 64u) { let d = x[base + i] - mean; q += d * d; }
  let scale = 1.0 / sqrt(rowSum(lid.x, q) / f32(p.dim) + p.eps);
  for (var i = lid.x; i < p.dim; i += 64u) { out[base + i] = (x[base + i] - mean) * scale * w[i] + b[i]; }
}

@compute @workgroup_size(64)
fn affine(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let base = wg.x * p.dim;
  for (var i = lid.x; i < p.dim; i += 64u) { out[base + i] = x[base + i] * w[i] + b[i]; }
}
