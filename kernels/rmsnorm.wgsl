// RMSNorm: out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w, for n rows of dim.
// Bindings: 0 uniform Params, 1 x f32 (read), 2 w [dim] f32 (read), 3 out f32 (write), 4 sum f32
//   (read/write; main_add only). out may be the same buffer as x only through separate bindings of
//   distinct buffers (it is not).
// Entry points: main; main_add also adds each normalized value into sum (Gemma 2/3's x += rmsnorm(o):
//   one pass instead of the norm and add.wgsl's, the same two roundings).
// Workgroup: 64 threads per row (sum of squares by tree reduction); grid (n).
// Precision: f32; error ~ (dim/64 + 6) * 2^-24 relative in the mean, then 2 roundings per element.
struct Params { dim: u32, n: u32, eps: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> sum: array<f32>;
var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let base = wg.x * p.dim;
  let scale = rowScale(base, lid.x);
  for (var i = lid.x; i < p.dim; i += 64u) { out[base + i] = x[base + i] * scale * w[i]; }
}

@compute @workgroup_size(64)
fn main_add(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let base = wg.x * p.dim;
  let scale = rowScale(base, lid.x);
  for (var i = lid.x; i < p.dim; i += 64u) {
    let v = x[base + i] * scale * w[i];
    out[base + i] = v;
    sum[base + i] = sum[base + i] + v;
  }
}

/** 1 / sqrt(mean(x^2) + eps) of the row at x[base..] (call from uniform control flow). */
fn rowScale(base: u32, lid: u32) -> f32 {
  var s = 0.0;
  for (var i = lid; i < p.dim; i += 64u) { let v = x[base + i]; s += v * v; }
  partial[lid] = s;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
    workgroupBarrier();
  }
  return 1.0 / sqrt(partial[0] / f32(p.dim) + p.eps);
}
