// RMSNorm: out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w, for n rows of dim.
// Bindings: 0 uniform Params, 1 x f32 (read), 2 w [dim] f32 (read), 3 out f32 (write).
//   out may be the same buffer as x only through separate bindings of distinct buffers (it is not).
// Workgroup: 64 threads per row (sum of squares by tree reduction); grid (n).
// Precision: f32; error ~ (dim/64 + 6) * 2^-24 relative in the mean, then 2 roundings per element.
struct Params { dim: u32, n: u32, eps: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let base = wg.x * p.dim;
  var s = 0.0;
  for (var i = lid.x; i < p.dim; i += 64u) { let v = x[base + i]; s += v * v; }
  partial[lid.x] = s;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid.x < stride) { partial[lid.x] += partial[lid.x + stride]; }
    workgroupBarrier();
  }
  let scale = 1.0 / sqrt(partial[0] / f32(p.dim) + p.eps);
  for (var i = lid.x; i < p.dim; i += 64u) { out[base + i] = x[base + i] * scale * w[i]; }
}
