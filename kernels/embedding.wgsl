// Embedding gather: out[dst0 + t][i] = scale * table[tokens[t]][i] for t < n <= 32, i < dim (longer
// inputs take one dispatch per 32 tokens, dst0 their first row); with accumulate = 1 the row is added
// to what out holds (learned position embeddings added to the token embeddings).
// The table may be one row block of a larger table (split to fit maxStorageBufferBindingSize):
// rows [row0, row0 + rows) of it; tokens outside that block are left to the other blocks' dispatches.
// Bindings: 0 uniform Params (token ids packed four to a vec4), 1 table [rows][dim] `Weight` (read),
//           2 out [n][dim] f32 (write).
// Weight type: f32 as written; the f16 variant (shader-f16) swaps the alias, as for matmul.wgsl.
// Workgroup: 64 threads along i; grid (ceil(dim / 64), n). Precision: a copy, exact (f16 widens exactly),
// then one rounding each for the scale and the sum.
alias Weight = f32;
struct Params { dim: u32, n: u32, row0: u32, rows: u32, scale: f32, accumulate: u32, dst0: u32, pad1: u32, tokens: array<vec4<u32>, 8> }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> table: array<Weight>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  let t = gid.y;
  if (i >= p.dim || t >= p.n) { return; }
  let token = p.tokens[t / 4u][t % 4u];
  if (token < p.row0 || token - p.row0 >= p.rows) { return; }
  var v = p.scale * f32(table[(token - p.row0) * p.dim + i]);
  let o = (p.dst0 + t) * p.dim + i;
  if (p.accumulate == 1u) { v += out[o]; }
  out[o] = v;
}
