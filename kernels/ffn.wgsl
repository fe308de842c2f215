// Feed-forward activations, for i < length (src/ffn.ts is the CPU twin):
//   main  SwiGLU: gate[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + exp(-x)).
//   gelu  GELU (tanh approximation) in place on gate: x / (1 + exp(-2z)), z = sqrt(2/pi) (x + 0.044715 x^3),
//         which equals 0.5 x (1 + tanh(z)); `up` is not read.
// Bindings: 0 uniform Params, 1 gate f32 (read/write), 2 up f32 (read).
// Workgroup: 64 threads, one element each; grid (min(ceil(length/64), 65535), ceil(.../65535)).
// Precision: f32, a few roundings per element.
struct Params { length: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.y * nwg.x * 64u + gid.x;
  if (i >= p.length) { return; }
  let g = gate[i];
  gate[i] = g / (1.0 + exp(-g)) * up[i];
}

@compute @workgroup_size(64)
fn gelu(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.y * nwg.x * 64u + gid.x;
  if (i >= p.length) { return; }
  let v = gate[i];
  let z = 0.7978845608028654 * (v + 0.044715 * v * v * v);
  gate[i] = v / (1.0 + exp(-2.0 * z));
}
