// Residual connection: x[i] += y[i] for i < length.
// Bindings: 0 uniform Params, 1 x f32 (read/write), 2 y f32 (read).
// Workgroup: 64 threads, one element each; grid (min(ceil(length/64), 65535), ceil(.../65535)).
// Precision: one f32 rounding per element.
struct Params { length: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.y * nwg.x * 64u + gid.x;
  if (i >= p.length) { return; }
  x[i] = x[i] + y[i];
}
