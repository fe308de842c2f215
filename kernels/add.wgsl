// Elementwise sums, for the residual stream and biases (src/backend/cpu.ts's add and matmul bias are
// the CPU twins): out[i] += x[i % period] for i < length, so period = length adds a whole tensor
// (x += the block's output) and period = rows adds a bias [rows] to each of n rows.
// Entry points: main as above; parts: out[i] = out[i] + x[i] + x[length + i] + ... over `count` rows
//   of x (Params.period = count), in that order: attention-out.wgsl's per-head products added to the
//   residual where no product folds them in (matmul-norm.wgsl's parts add them in the same order).
// Bindings: 0 uniform Params, 1 x f32 (read), 2 out f32 (read/write).
// Workgroup: 64 threads, one element each; grid (min(ceil(length/64), 65535), ceil(.../65535)).
// Precision: one f32 rounding per element and term.
struct Params { length: u32, period: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.y * nwg.x * 64u + gid.x;
  if (i >= p.length) { return; }
  out[i] += x[i % p.period];
}

@compute @workgroup_size(64)
fn parts(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.y * nwg.x * 64u + gid.x;
  if (i >= p.length) { return; }
  var s = out[i];
  for (var h = 0u; h < p.period; h++) { s += x[h * p.length + i]; }
  out[i] = s;
}
