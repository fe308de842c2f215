// Softmax over each of n rows of `length`, in place: x = exp(x - max) / sum exp(x - max).
// (Attention computes its own softmax inside attention.wgsl; this one serves sampling on the GPU and
// models that need a standalone softmax.)
// Bindings: 0 uniform Params, 1 x [n][length] f32 (read/write).
// Workgroup: 64 threads per row, max and sum by tree reduction; grid (n).
// Precision: f32; exp within (3 + 2|x - max|) ulp (WGSL), the sum within (length/64 + 6) * 2^-24
//   relative, then one division.
struct Params { length: u32, n: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let base = wg.x * p.length;
  var m = -3.0e38;
  for (var i = lid.x; i < p.length; i += 64u) { m = max(m, x[base + i]); }
  red[lid.x] = m;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid.x < stride) { red[lid.x] = max(red[lid.x], red[lid.x + stride]); }
    workgroupBarrier();
  }
  let top = red[0];
  workgroupBarrier();
  var s = 0.0;
  for (var i = lid.x; i < p.length; i += 64u) { let e = exp(x[base + i] - top); x[base + i] = e; s += e; }
  red[lid.x] = s;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid.x < stride) { red[lid.x] += red[lid.x + stride]; }
    workgroupBarrier();
  }
  let inv = 1.0 / red[0];
  for (var i = lid.x; i < p.length; i += 64u) { x[base + i] = x[base + i] * inv; }
}
