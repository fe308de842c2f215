// Causal grouped-query attention over the KV cache. For query row t (position start + t) and head h,
// with kv head g = h / (nHeads / nKvHeads):
//   s[p] = q . K[p][g] / sqrt(headDim) for p <= start + t;  out = softmax(s) . V[.][g]
// Bindings: 0 uniform Params, 1 q [n][nHeads][headDim] (read), 2 K cache [ctx][nKv][headDim] `Cached`
//   (read), 3 V cache `Cached` (read), 4 scores scratch [n][nHeads][ctx] f32 (read/write), 5 out [n][nHeads][headDim] (write).
// Workgroup: 64 threads per (head, row): scores strided over positions, max and sum by tree
//   reduction, then one thread per output element; grid (nHeads, n).
// Cached type: f32 as written; the f16 variant (shader-f16, f16 KV cache) swaps the alias; f16 widens exactly.
// Precision: f32 throughout; softmax subtracts the max first.
alias Cached = f32;
struct Params { nHeads: u32, nKvHeads: u32, headDim: u32, start: u32, ctx: u32, scale: f32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> kCache: array<Cached>;
@group(0) @binding(3) var<storage, read> vCache: array<Cached>;
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let h = wg.x;
  let t = wg.y;
  let len = p.start + t + 1u;
  let g = h / (p.nHeads / p.nKvHeads);
  let kvWidth = p.nKvHeads * p.headDim;
  let qBase = (t * p.nHeads + h) * p.headDim;
  let sBase = (t * p.nHeads + h) * p.ctx;
  var m = -3.0e38;
  for (var pos = lid.x; pos < len; pos += 64u) {
    let kBase = pos * kvWidth + g * p.headDim;
    var d = 0.0;
    for (var i = 0u; i < p.headDim; i++) { d += q[qBase + i] * f32(kCache[kBase + i]); }
    d *= p.scale;
    scores[sBase + pos] = d;
    m = max(m, d);
  }
  red[lid.x] = m;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid.x < stride) { red[lid.x] = max(red[lid.x], red[lid.x + stride]); }
    workgroupBarrier();
  }
  let maxScore = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var pos = lid.x; pos < len; pos += 64u) {
    let e = exp(scores[sBase + pos] - maxScore);
    scores[sBase + pos] = e;
    sum += e;
  }
  red[lid.x] = sum;
  storageBarrier();
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid.x < stride) { red[lid.x] += red[lid.x + stride]; }
    workgroupBarrier();
  }
  let inv = 1.0 / red[0];
  for (var i = lid.x; i < p.headDim; i += 64u) {
    var acc = 0.0;
    for (var pos = 0u; pos < len; pos++) { acc += scores[sBase + pos] * f32(vCache[pos * kvWidth + g * p.headDim + i]); }
    out[qBase + i] = acc * inv;
  }
}
