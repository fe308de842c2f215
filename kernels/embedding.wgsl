// Embedding gather: out[t][i] = table[tokens[t]][i] for t < n, i < dim.
// Bindings: 0 uniform Params (token ids packed four to a vec4), 1 table [vocab][dim] f32 (read),
//           2 out [n][dim] f32 (write).
// Workgroup: 64 threads along i; grid (ceil(dim / 64), n). Precision: a copy, exact.
struct Params { dim: u32, n: u32, pad0: u32, pad1: u32, tokens: array<vec4<u32>, 8> }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  let t = gid.y;
  if (i >= p.dim || t >= p.n) { return; }
  let token = p.tokens[t / 4u][t % 4u];
  out[t * p.dim + i] = table[token * p.dim + i];
}
