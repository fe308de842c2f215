// Feed-forward activations, for i < length (src/stages/ffn.ts is the CPU twin):
//   main     SwiGLU: gate[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + exp(-x)).
//   geglu    GeGLU: gate[i] = gelu(gate[i]) * up[i] (tanh GELU, as below).
//   gelu     GELU (tanh approximation) in place on gate: x / (1 + exp(-2z)), z = sqrt(2/pi) (x + 0.044715 x^3),
//            which equals 0.5 x (1 + tanh(z)); `up` is not read (nor by the entries below).
//   gelu_erf exact GELU in place: 0.5 x (1 + erf(x / sqrt 2)); WGSL has no erf, so erf is computed as
//            1 - t exp(-a^2 + P(t)), t = 1 / (1 + a/2) (Numerical Recipes' erfc, fractional error
//            below 1.2e-7), with the sign of the argument.
//   relu     max(x, 0) in place.
//   softcap  x = cap * tanh(x / cap) in place (final logit soft-capping; cap in Params), computed as
//            cap * (1 - e) / (1 + e), e = exp(-2|x|/cap), with the sign of x.
// Bindings: 0 uniform Params, 1 gate f32 (read/write), 2 up f32 (read).
// Workgroup: 64 threads, one element each; grid (min(ceil(length/64), 65535), ceil(.../65535)).
// Precision: f32, a few roundings per element (gelu_erf: erf's 1.2e-7 besides).
struct Params { length: u32, cap: f32, pad1: u32, pad2: u32 }
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

fn geluTanh(v: f32) -> f32 {
  return v / (1.0 + exp(-1.5957691216057308 * (v + 0.044715 * v * v * v)));
}

@compute @workgroup_size(64)
fn geglu(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.y * nwg.x * 64u + gid.x;
  if (i >= p.length) { return; }
  gate[i] = geluTanh(gate[i]) * up[i];
}

/** erf(x) from Numerical Recipes' erfc approximation (fractional error < 1.2e-7 everywhere). */
fn erf(x: f32) -> f32 {
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.5 * a);
  let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  let erfc = t * exp(-a * a + poly);
  return sign(x) * (1.0 - erfc);
}

@compute @workgroup_size(64)
fn gelu_erf(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.y * nwg.x * 64u + gid.x;
  if (i >= p.length) { return; }
  let v = gate[i];
  gate[i] = 0.5 * v * (1.0 + erf(v * 0.7071067811865476));
}

@compute @workgroup_size(64)
fn relu(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.y * nwg.x * 64u + gid.x;
  if (i >= p.length) { return; }
  gate[i] = max(gate[i], 0.0);
}

@compute @workgroup_size(64)
fn softcap(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.y * nwg.x * 64u + gid.x;
  if (i >= p.length) { return; }
  let v = gate[i];
  let e = exp(-2.0 * abs(v) / p.cap);
  gate[i] = sign(v) * p.cap * (1.0 - e) / (1.0 + e);
}
