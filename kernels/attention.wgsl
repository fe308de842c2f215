// Grouped-query attention over the KV cache, causal or bidirectional. For query row t (position
// pos = start + t) and head h, with kv head g = h / (nHeads / nKvHeads):
//   s[p] = cap(scale * q . K[p][g]) for first(pos) <= p < end(t);  out = softmax(s) . V[.][g]
// where end(t) = pos + 1 (causal) or start + n (bidirectional = 1: encoders, every row sees every position
// written so far; no window),
// scale is usually 1/sqrt(headDim), cap(s) = softcap * tanh(s / softcap) when softcap > 0 (Gemma 2)
// and first(pos) = pos + 1 - window with a sliding window (window > 0; Mistral, Gemma's local layers), else 0.
// Bindings: 0 uniform Params, 1 q [rows][nHeads][headDim] (read; query t is row row0 + t, so that a batch
//   holding several sequences attends one sequence's rows at a time), 2 K cache [ctx][nKv][headDim] `Cached`
//   (read/write, written only by a fresh step, below; bound as vec4s: the backend pads every buffer to
//   16 bytes), 3 V cache `Cached` (the same), 4 scores scratch [n][nHeads][ctx] f32 (read/write), 5 out
//   [rows][nHeads][headDim] (write, the same rows as q), fresh steps only (placeholders otherwise): 6 RoPE
//   frequencies [ropeDims/2] f32, 7 extras f32 (read): biases [q | k | v] from 0, q and k RMSNorm weights
//   [2][headDim] from element normAt. (Binding 8 is attention-out.wgsl's Wo; unbound here.)
// Fresh decode step (fresh = 1; main and split, one row, causal, vec4 heads): binding 1 holds this step's
//   projections q, k and v packed as [q | k | v] (matmul.wgsl's qkv_norm), instead of rotated q with k and v
//   already in the caches. Every workgroup takes its query head and its kv head's key and value, adds
//   their biases (biased = 1: Qwen2), RMSNorms the q and k heads (normed = 1: Qwen3, Gemma 3; the
//   reduction of rmsnorm.wgsl, in the same order), rotates them (as rope.wgsl: ropeDims, style, mscale;
//   elements past ropeDims unrotated), keeps that key and value in workgroup memory for position start,
//   and the first query head of each kv group (in split, the chunk holding start) writes them to the
//   caches at start. No workgroup reads position start from the caches in that dispatch, so the write
//   races with no read: biases, q/k norms, RoPE, the cache writes and attention in one pass.
// Entry points:
//   main    one workgroup of 64 per (head, row): scores strided over positions, max and sum by tree
//           reduction, then the output: vec4 heads (below) a vec4 column per 64 / (headDim / 4)
//           invocations, other heads one thread per element; grid (nHeads, n). For short contexts.
//   split   long contexts (split-K, "flash decoding"): the positions are cut into chunks of CHUNK,
//           one workgroup per (chunk, head, row) writes its chunk's max m, sum l = sum exp(s - m) and
//           unnormalized output o = sum exp(s - m) v to the scratch buffer (as partials
//           [n][nHeads][chunks][headDim + 2]); grid (chunks, nHeads, n). Many more workgroups than heads.
//   combine one workgroup per (head, row) merges the chunks: with M = max m_j,
//           out = sum_j exp(m_j - M) o_j / sum_j exp(m_j - M) l_j; grid (nHeads, n).
//   prefill tiled, for many query rows at once (headDim <= 128): one workgroup per (head, block of
//           16*PR rows), 4 invocations per 16th of the block's rows, each holding a quarter (elements
//           quarter, quarter + 4, ...) of PR rows' queries and outputs; each quarter's share of a
//           score meets the other three in workgroup memory; keys and values pass through
//           workgroup memory 8 positions at a time, shared by the block's rows (each element read
//           once for an invocation's PR rows), with an online softmax (running max and sum,
//           rescaled as the max grows), from the first tile any of the rows sees. PR is set by the
//           backend (WebGPUOptions.attentionRows): 1 on hardware adapters, 4 on CPU-emulated ones,
//           where a load from workgroup memory costs several instructions. Grid (nHeads,
//           ceil(n/(16*PR))).
// Cached type: f32 as written; the f16 variant (shader-f16, f16 KV cache) swaps the alias; f16 widens exactly.
// Precision: f32 throughout; softmax subtracts the max first (split: each chunk its own max, then
//   one more exp per chunk to rescale, so exp's error enters twice; prefill: one rescale per tile of
//   8 positions, whose exponents add up to at most the score range; its q . k as four interleaved
//   partial sums added pairwise: a chain of headDim/4 + 2 additions, shorter than one running sum's).
alias Cached = f32;
struct Params {
  nHeads: u32, nKvHeads: u32, headDim: u32, start: u32, ctx: u32, scale: f32, chunks: u32, n: u32, softcap: f32, window: u32, row0: u32, bidirectional: u32,
  ropeDims: u32, style: u32, mscale: f32, fresh: u32, biased: u32, normed: u32, qEps: f32, kEps: f32, normAt: u32, // (fresh steps)
  outRows: u32, // (attention-out.wgsl: Wo's rows)
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read_write> kCache: array<vec4<Cached>>; // (element i: kAt(i))
@group(0) @binding(3) var<storage, read_write> vCache: array<vec4<Cached>>;
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read> freq: array<f32>;
@group(0) @binding(7) var<storage, read> extras: array<f32>;
var<workgroup> red: array<f32, 64>;

/** Element i of the K / V cache (the caches are bound as vec4s: see "Vec4 heads"). */
fn kAt(i: u32) -> f32 { return f32(kCache[i / 4u][i % 4u]); }
fn vAt(i: u32) -> f32 { return f32(vCache[i / 4u][i % 4u]); }

// Vec4 heads (decode: main and split). Heads whose size is a multiple of 4, up to 256 (uniform: read from
// Params), read keys and values a vec4 at a time: on a CPU-emulated adapter each invocation's load is a
// gather of several instructions, whatever its width. The query waits in workgroup memory as vec4s;
// a score is four partial sums (elements i % 4 == j in lane j) added pairwise, as the prefill path
// sums; the output's vec4 columns are shared by 64 / (headDim / 4) invocations, each summing every
// so-many-th position, and their partial sums meet in workgroup memory.
var<workgroup> qs: array<vec4f, 64>;
var<workgroup> red4: array<vec4f, 64>;
fn vec4Heads() -> bool { return p.headDim % 4u == 0u && p.headDim <= 256u; }

/** qs = query row t's head h as vec4s (vec4 heads; call from uniform control flow: it ends with a barrier). */
fn stageQuery(lid: u32, qBase: u32) {
  for (var j = lid; j < p.headDim / 4u; j += 64u) {
    let b = qBase + 4u * j;
    qs[j] = vec4f(q[b], q[b + 1u], q[b + 2u], q[b + 3u]);
  }
  workgroupBarrier();
}

/** The capped, scaled score of the query (qs, or q at qBase) against the key at element kBase. */
fn score(v4: bool, qBase: u32, kBase: u32) -> f32 {
  if (v4) {
    var d = vec4f(0.0);
    for (var j = 0u; j < p.headDim / 4u; j++) { d += qs[j] * vec4f(kCache[kBase / 4u + j]); }
    return finish4(d);
  }
  var d = 0.0;
  for (var i = 0u; i < p.headDim; i++) { d += q[qBase + i] * kAt(kBase + i); }
  return capped(d * p.scale);
}

/** A vec4 head's score from its four partial sums. */
fn finish4(d: vec4f) -> f32 { return capped(((d.x + d.y) + (d.z + d.w)) * p.scale); }

// Fresh steps: this step's key (rotated) and value for the workgroup's kv head, as the caches hold them
// (in the caches' type: a shader compiler may drop an f32 -> f16 -> f32 round trip kept in registers).
var<workgroup> kf: array<vec4<Cached>, 64>;
var<workgroup> vf: array<vec4<Cached>, 64>;

/**
 * Element e of the head at q[at..] of the packed row: the projection plus its bias, then (part 0: q,
 * 1: k) the head's RMSNorm with 1 / rms = scale, as rmsnorm.wgsl computes x * scale * w.
 */
fn projected(at: u32, e: u32, part: u32, scale: f32) -> f32 {
  var x = q[at + e];
  if (p.biased != 0u) { x += extras[at + e]; }
  if (part < 2u && p.normed != 0u) { x = x * scale * extras[p.normAt + part * p.headDim + e]; }
  return x;
}

/** 1 / rms of the head at q[at..] after its bias, reduced as rmsnorm.wgsl does (call from uniform control flow). */
fn headScale(lid: u32, at: u32, eps: f32) -> f32 {
  var s = 0.0;
  for (var i = lid; i < p.headDim; i += 64u) { let v = projected(at, i, 2u, 1.0); s += v * v; }
  return 1.0 / sqrt(workgroupSum(lid, s) / f32(p.headDim) + eps);
}

/** Element e of the head at q[at..] (part, scale: as projected) rotated to position start: rope.wgsl's pairs (pairOf), per element. */
fn rotated(at: u32, e: u32, part: u32, scale: f32) -> f32 {
  if (e >= p.ropeDims) { return projected(at, e, part, scale); } // partial rotary: copied
  let half = p.ropeDims / 2u;
  var i = e / 2u; // interleaved: (2i, 2i + 1)
  var first = e % 2u == 0u;
  var partner = select(e - 1u, e + 1u, first);
  if (p.style == 1u) { i = e % half; first = e < half; partner = select(e - half, e + half, first); } // NeoX: (i, i + half)
  let angle = f32(p.start) * freq[i];
  let c = p.mscale * cos(angle);
  let s = p.mscale * sin(angle);
  let x0 = projected(at, select(partner, e, first), part, scale);
  let x1 = projected(at, select(e, partner, first), part, scale);
  if (first) { return x0 * c - x1 * s; }
  return x0 * s + x1 * c;
}

/**
 * A fresh step's staging (call from uniform control flow: ends with a barrier): qs = query head h (at
 * qBase of the packed row) biased, normed and rotated; kf, vf = kv head g's key so and its value
 * biased, rounded to `Cached` as the caches keep them; written to the caches at position start when `writes`.
 */
fn stageFresh(lid: u32, qBase: u32, g: u32, writes: bool) {
  let kvWidth = p.nKvHeads * p.headDim;
  let kBase = p.nHeads * p.headDim + g * p.headDim;
  let vBase = kBase + kvWidth;
  let dst = (p.start * kvWidth + g * p.headDim) / 4u;
  var qScale = 1.0;
  var kScale = 1.0;
  if (p.normed != 0u) {
    qScale = headScale(lid, qBase, p.qEps);
    kScale = headScale(lid, kBase, p.kEps);
  }
  for (var j = lid; j < p.headDim / 4u; j += 64u) {
    var qv: vec4f;
    var kv: vec4f;
    var vv: vec4f;
    for (var c = 0u; c < 4u; c++) {
      qv[c] = rotated(qBase, 4u * j + c, 0u, qScale);
      kv[c] = rotated(kBase, 4u * j + c, 1u, kScale);
      vv[c] = projected(vBase, 4u * j + c, 2u, 1.0);
    }
    let k4 = vec4<Cached>(kv);
    let v4 = vec4<Cached>(vv);
    qs[j] = qv;
    kf[j] = k4;
    vf[j] = v4;
    if (writes) {
      kCache[dst + j] = k4;
      vCache[dst + j] = v4;
    }
  }
  workgroupBarrier();
}

/** The capped, scaled score of a fresh step's query (qs) against its own key (kf). */
fn freshScore() -> f32 {
  var d = vec4f(0.0);
  for (var j = 0u; j < p.headDim / 4u; j++) { d += qs[j] * vec4f(kf[j]); }
  return finish4(d);
}

/** The weight of position pos: `weights` 0: scores[sBase + pos], 1: chunkScores[pos - first]. */
fn weightAt(weights: u32, sBase: u32, pos: u32, first: u32) -> f32 {
  if (weights == 0u) { return scores[sBase + pos]; }
  return chunkScores[pos - first];
}

/**
 * Vec4 heads: sum_pos weight(pos) * V[pos][g], vec4 column lid, for invocations lid < headDim / 4 (the
 * others' result is meaningless; call from uniform control flow). Each invocation sums column lid % cols
 * over positions first + lid / cols, every 64 / cols; the shares meet in red4. `weights`: as weightAt.
 */
fn valueColumns(lid: u32, first: u32, last: u32, g: u32, kvWidth: u32, weights: u32, sBase: u32) -> vec4f {
  let cols = p.headDim / 4u;
  let parts = 64u / cols;
  let part = lid / cols;
  var acc = vec4f(0.0);
  if (part < parts) {
    let vBase = g * p.headDim / 4u + lid % cols;
    // A fresh step's own position (the last) comes from vf, in the same order of the sum.
    let cached = select(last, min(last, p.start), p.fresh != 0u);
    for (var pos = first + part; pos < cached; pos += parts) {
      acc += weightAt(weights, sBase, pos, first) * vec4f(vCache[pos * kvWidth / 4u + vBase]);
    }
    if (cached < last && (cached - first) % parts == part) { acc += weightAt(weights, sBase, cached, first) * vec4f(vf[lid % cols]); }
  }
  red4[lid] = acc;
  workgroupBarrier();
  if (lid < cols) {
    for (var j = 1u; j < parts; j++) { acc += red4[j * cols + lid]; }
  }
  return acc;
}

/** A scaled score, soft-capped when the model asks: softcap * tanh(d / softcap), without tanh's overflow. */
fn capped(d: f32) -> f32 {
  if (p.softcap <= 0.0) { return d; }
  let e = exp(-2.0 * abs(d) / p.softcap);
  return sign(d) * p.softcap * (1.0 - e) / (1.0 + e);
}

/** The first position a query at `pos` sees (its sliding window's start). */
fn firstVisible(pos: u32) -> u32 {
  if (p.window == 0u || p.bidirectional != 0u || pos + 1u <= p.window) { return 0u; }
  return pos + 1u - p.window;
}

/** One past the last position query row t sees: its own position + 1, or the step's end when bidirectional. */
fn visibleEnd(t: u32) -> u32 {
  if (p.bidirectional != 0u) { return p.start + p.n; }
  return p.start + t + 1u;
}

/** The max of v over the workgroup's 64 invocations (call from uniform control flow). */
fn workgroupMax(i: u32, v: f32) -> f32 {
  red[i] = v;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (i < stride) { red[i] = max(red[i], red[i + stride]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

/** The sum of v over the workgroup's 64 invocations, by tree (call from uniform control flow). */
fn workgroupSum(i: u32, v: f32) -> f32 {
  red[i] = v;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (i < stride) { red[i] += red[i + stride]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let o = attendHead(wg.x, wg.y, lid.x);
  if (vec4Heads() && lid.x < p.headDim / 4u) {
    let at = ((p.row0 + wg.y) * p.nHeads + wg.x) * p.headDim + 4u * lid.x;
    out[at] = o.x;
    out[at + 1u] = o.y;
    out[at + 2u] = o.z;
    out[at + 3u] = o.w;
  }
}

/**
 * main's work for head h of query row t (call from uniform control flow): vec4 heads return the
 * output's vec4 column lid (for lid < headDim / 4; the others' result is meaningless); other heads
 * write their output to `out` themselves and return zeros.
 */
fn attendHead(h: u32, t: u32, lid: u32) -> vec4f {
  let len = visibleEnd(t);
  let first = firstVisible(p.start + t);
  let g = h / (p.nHeads / p.nKvHeads);
  let kvWidth = p.nKvHeads * p.headDim;
  let qBase = ((p.row0 + t) * p.nHeads + h) * p.headDim;
  let sBase = (t * p.nHeads + h) * p.ctx;
  let v4 = vec4Heads();
  let fresh = p.fresh != 0u;
  if (fresh) { stageFresh(lid, qBase, g, h % (p.nHeads / p.nKvHeads) == 0u); }
  else if (v4) { stageQuery(lid, qBase); }
  var m = -3.0e38;
  for (var pos = first + lid; pos < len; pos += 64u) {
    var d: f32;
    if (fresh && pos == p.start) { d = freshScore(); } else { d = score(v4, qBase, pos * kvWidth + g * p.headDim); }
    scores[sBase + pos] = d;
    m = max(m, d);
  }
  let maxScore = workgroupMax(lid, m);
  var sum = 0.0;
  for (var pos = first + lid; pos < len; pos += 64u) {
    let e = exp(scores[sBase + pos] - maxScore);
    scores[sBase + pos] = e;
    sum += e;
  }
  storageBarrier(); // every invocation reads all the weights below
  let inv = 1.0 / workgroupSum(lid, sum);
  if (v4) { return valueColumns(lid, first, len, g, kvWidth, 0u, sBase) * inv; }
  for (var i = lid; i < p.headDim; i += 64u) {
    var acc = 0.0;
    for (var pos = first; pos < len; pos++) { acc += scores[sBase + pos] * vAt(pos * kvWidth + g * p.headDim + i); }
    out[qBase + i] = acc * inv;
  }
  return vec4f(0.0);
}

const CHUNK = 256u;
var<workgroup> chunkScores: array<f32, 256>;

@compute @workgroup_size(64)
fn split(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = wg.x;
  let h = wg.y;
  let t = wg.z;
  let len = visibleEnd(t);
  let first = max(c * CHUNK, firstVisible(p.start + t));
  let last = min(c * CHUNK + CHUNK, len); // may be <= first: an empty chunk (early row, or before the window)
  let g = h / (p.nHeads / p.nKvHeads);
  let kvWidth = p.nKvHeads * p.headDim;
  let qBase = ((p.row0 + t) * p.nHeads + h) * p.headDim;
  let part = ((t * p.nHeads + h) * p.chunks + c) * (p.headDim + 2u);
  let v4 = vec4Heads();
  let fresh = p.fresh != 0u;
  if (fresh) { stageFresh(lid.x, qBase, g, h % (p.nHeads / p.nKvHeads) == 0u && c == p.start / CHUNK); }
  else if (v4) { stageQuery(lid.x, qBase); }
  var m = -3.0e38;
  for (var pos = first + lid.x; pos < last; pos += 64u) {
    var d: f32;
    if (fresh && pos == p.start) { d = freshScore(); } else { d = score(v4, qBase, pos * kvWidth + g * p.headDim); }
    chunkScores[pos - first] = d;
    m = max(m, d);
  }
  let maxScore = workgroupMax(lid.x, m);
  var sum = 0.0;
  for (var pos = first + lid.x; pos < last; pos += 64u) {
    let e = exp(chunkScores[pos - first] - maxScore);
    chunkScores[pos - first] = e;
    sum += e;
  }
  let total = workgroupSum(lid.x, sum);
  if (lid.x == 0u) {
    scores[part] = maxScore;
    scores[part + 1u] = total;
  }
  if (v4) {
    let o = valueColumns(lid.x, first, last, g, kvWidth, 1u, 0u);
    if (lid.x < p.headDim / 4u) {
      let at = part + 2u + 4u * lid.x;
      scores[at] = o.x;
      scores[at + 1u] = o.y;
      scores[at + 2u] = o.z;
      scores[at + 3u] = o.w;
    }
    return;
  }
  for (var i = lid.x; i < p.headDim; i += 64u) {
    var acc = 0.0;
    for (var pos = first; pos < last; pos++) { acc += chunkScores[pos - first] * vAt(pos * kvWidth + g * p.headDim + i); }
    scores[part + 2u + i] = acc;
  }
}

@compute @workgroup_size(64)
fn combine(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  for (var i = lid.x; i < p.headDim; i += 64u) {
    out[((p.row0 + wg.y) * p.nHeads + wg.x) * p.headDim + i] = combined(wg.x, wg.y, i);
  }
}

/** Element i of head h's output for query row t, from split's chunks (combine's sums). */
fn combined(h: u32, t: u32, i: u32) -> f32 {
  let used = (visibleEnd(t) - 1u) / CHUNK + 1u; // chunks holding the positions row t sees
  let base = (t * p.nHeads + h) * p.chunks * (p.headDim + 2u);
  var big = -3.0e38;
  for (var j = 0u; j < used; j++) { big = max(big, scores[base + j * (p.headDim + 2u)]); }
  var total = 0.0;
  for (var j = 0u; j < used; j++) {
    let at = base + j * (p.headDim + 2u);
    total += exp(scores[at] - big) * scores[at + 1u];
  }
  var acc = 0.0;
  for (var j = 0u; j < used; j++) {
    let at = base + j * (p.headDim + 2u);
    acc += exp(scores[at] - big) * scores[at + 2u + i];
  }
  return acc / total;
}

const PR = 1u; // query rows per prefill invocation (the backend sets 4 on software adapters)
const ROWS = 16u * PR; // query rows per prefill workgroup
const TILE = 8u; // positions per key/value tile
const MAX_DIM = 128u;
// An invocation's quarter of a row: elements quarter, quarter + 4, ... The loops over it run a
// constant QUARTER times and break at the head's end: with the head size as the bound instead, no
// compiler can unroll them, qq and acc stay in memory rather than registers, and on lavapipe each
// access became a per-lane gather (prefill attention of the 135M shape: 0.9-1.1 s -> 0.36-0.42 s of
// a 128-token prompt). On hardware the same arrays would live in local memory.
const QUARTER = MAX_DIM / 4u;
var<workgroup> kTile: array<f32, 1024>; // [TILE][headDim]
var<workgroup> vTile: array<f32, 1024>;
var<workgroup> partials: array<f32, ROWS * 4u * TILE>; // [row][quarter][TILE]: each quarter's share of a score

@compute @workgroup_size(64)
fn prefill(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let h = wg.x;
  let t0 = wg.y * ROWS;
  let group = li / 4u; // this invocation's query rows in the block: group, group + 16, ... (PR of them)
  let quarter = li % 4u; // and their elements: quarter, quarter + 4, ...
  let g = h / (p.nHeads / p.nKvHeads);
  let kvWidth = p.nKvHeads * p.headDim;
  let lastRow = min(t0 + ROWS, p.n) - 1u;
  let end = visibleEnd(lastRow); // positions this block needs: 0 .. end - 1
  var m: array<f32, PR>;
  var l: array<f32, PR>;
  var acc: array<array<f32, QUARTER>, PR>;
  // Each row's quarter of q, read once.
  var qq: array<array<f32, QUARTER>, PR>;
  for (var i = 0u; i < PR; i++) {
    m[i] = -3.0e38;
    let qBase = ((p.row0 + min(t0 + i * 16u + group, p.n - 1u)) * p.nHeads + h) * p.headDim;
    for (var j = 0u; j < QUARTER; j++) {
      if (j * 4u >= p.headDim) { break; }
      if (j * 4u + quarter < p.headDim) { qq[i][j] = q[qBase + j * 4u + quarter]; }
    }
  }
  for (var p0 = firstVisible(p.start + t0) / TILE * TILE; p0 < end; p0 += TILE) {
    for (var e = li; e < TILE * p.headDim; e += 64u) {
      let pos = p0 + e / p.headDim;
      var kv = 0.0;
      var vv = 0.0;
      if (pos < end) {
        let at = pos * kvWidth + g * p.headDim + e % p.headDim;
        kv = kAt(at);
        vv = vAt(at);
      }
      kTile[e] = kv;
      vTile[e] = vv;
    }
    workgroupBarrier();
    // Each quarter's share of its rows' scores: each key element read once for the PR rows.
    for (var s = 0u; s < TILE; s++) {
      var d = array<f32, PR>(); // (zeroed for each position)
      for (var j = 0u; j < QUARTER; j++) {
        if (j * 4u >= p.headDim) { break; }
        if (j * 4u + quarter < p.headDim) {
          let k = kTile[s * p.headDim + j * 4u + quarter];
          for (var i = 0u; i < PR; i++) { d[i] += qq[i][j] * k; }
        }
      }
      for (var i = 0u; i < PR; i++) { partials[((i * 16u + group) * 4u + quarter) * TILE + s] = d[i]; }
    }
    workgroupBarrier();
    // Scores (-3e38 where masked: later than the row's position, before its window, or past the
    // block's end), the online softmax's rescale, and the weights of the tile's positions.
    var w: array<array<f32, TILE>, PR>;
    for (var i = 0u; i < PR; i++) {
      let t = t0 + i * 16u + group;
      let rowFirst = firstVisible(p.start + t);
      var sc: array<f32, TILE>;
      var tileMax = m[i];
      for (var s = 0u; s < TILE; s++) {
        let pos = p0 + s;
        var d = -3.0e38;
        if (pos < visibleEnd(t) && pos >= rowFirst && pos < end) {
          let b = (i * 16u + group) * 4u * TILE + s;
          d = capped(((partials[b] + partials[b + TILE]) + (partials[b + 2u * TILE] + partials[b + 3u * TILE])) * p.scale);
        }
        sc[s] = d;
        tileMax = max(tileMax, d);
      }
      let rescale = exp(m[i] - tileMax);
      l[i] *= rescale;
      for (var j = 0u; j < QUARTER; j++) {
        if (j * 4u >= p.headDim) { break; }
        if (j * 4u + quarter < p.headDim) { acc[i][j] *= rescale; }
      }
      for (var s = 0u; s < TILE; s++) {
        // A masked score weighs nothing, even while every score so far is masked (tileMax is then -3e38).
        w[i][s] = select(0.0, exp(sc[s] - tileMax), sc[s] > -1.0e38);
        l[i] += w[i][s];
      }
      m[i] = tileMax;
    }
    // Values: each element read once for the PR rows.
    for (var s = 0u; s < TILE; s++) {
      for (var j = 0u; j < QUARTER; j++) {
        if (j * 4u >= p.headDim) { break; }
        if (j * 4u + quarter < p.headDim) {
          let v = vTile[s * p.headDim + j * 4u + quarter];
          for (var i = 0u; i < PR; i++) { acc[i][j] += w[i][s] * v; }
        }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < PR; i++) {
    let t = t0 + i * 16u + group;
    if (t >= p.n) { continue; }
    let oBase = ((p.row0 + t) * p.nHeads + h) * p.headDim;
    for (var j = 0u; j < QUARTER; j++) {
      if (j * 4u >= p.headDim) { break; }
      if (j * 4u + quarter < p.headDim) { out[oBase + j * 4u + quarter] = acc[i][j] / l[i]; }
    }
  }
}
