// Rotary position embedding, in place (entry main), or fused with the KV-cache write (entry cache).
// main: for row row0 + t (position start + t), head h and pair i < ropeDims/2,
// rotate (a, b) by angle pos * freq[i], where (a, b) = (2i, 2i+1) (interleaved, style 0) or
// (i, i + ropeDims/2) (NeoX, style 1). freq[i] = freqScale * theta^(-2i/ropeDims) / factor[i] is
// computed on the CPU in f64 (src/stages/rope.ts); cos and sin are multiplied by mscale (Phi-3's
// longrope attention factor; 1 otherwise).
// Bindings: 0 uniform Params, 1 x [rows][nHeads][headDim] f32 (read/write; rows row0 .. row0 + n - 1), 2 freq [ropeDims/2] f32 (read).
// Workgroup: 64 threads, one per (head, pair); grid (ceil(nHeads * ropeDims/2 / 64), n).
// cache: one decode or prefill step's q, k and v after their projections, in one pass instead of five
//   (rope on q, rope on k, two cache writes): q rows rotated in place; k rows rotated and v rows as they
//   are written to the caches at positions start + t (k itself is left alone). ropeDims = 0: no rotation
//   (learned positions); dimensions past ropeDims are copied unrotated (partial rotary).
//   Bindings: 1 q (read/write), 2 freq, 3 k [rows][nKv][headDim] (read), 4 v (read), 5 kCache and 6 vCache
//   [ctx][nKv][headDim] `Cached` (written); grid (ceil((nHeads + 2 nKv) * headDim/2 / 64), n), one thread
//   per pair of a q, k or v head. (A decode step from qkv_norm's packed row does all this inside
//   attention.wgsl instead: its fresh step.)
// Precision: f32 angle (|error| <= pos * 2^-24 rad relative), f32 sin/cos; into an f16 cache (the
//   shader-f16 variant swaps the Cached alias) one rounding per value, as kv-cache.wgsl.
alias Cached = f32;
struct Params { nHeads: u32, headDim: u32, ropeDims: u32, start: u32, style: u32, mscale: f32, row0: u32, nKv: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> freq: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read_write> kCache: array<Cached>;
@group(0) @binding(6) var<storage, read_write> vCache: array<Cached>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let half = p.ropeDims / 2u;
  let h = gid.x / half;
  let i = gid.x % half;
  if (h >= p.nHeads) { return; }
  let t = gid.y;
  let base = ((p.row0 + t) * p.nHeads + h) * p.headDim;
  var a = base + 2u * i;
  var b = a + 1u;
  if (p.style == 1u) { a = base + i; b = a + half; }
  let angle = f32(p.start + t) * freq[i];
  let c = p.mscale * cos(angle);
  let s = p.mscale * sin(angle);
  let x0 = x[a];
  let x1 = x[b];
  x[a] = x0 * c - x1 * s;
  x[b] = x0 * s + x1 * c;
}

/** Pair slot j of a head (j < headDim/2): its two offsets in the head, and whether they rotate. */
fn pairOf(j: u32) -> vec3u {
  let half = p.ropeDims / 2u;
  if (j >= half) { let a = p.ropeDims + 2u * (j - half); return vec3u(a, a + 1u, 0u); }
  if (p.style == 1u) { return vec3u(j, j + half, 1u); }
  return vec3u(2u * j, 2u * j + 1u, 1u);
}

@compute @workgroup_size(64)
fn cache(@builtin(global_invocation_id) gid: vec3u) {
  let slots = p.headDim / 2u;
  let head = gid.x / slots;
  let pr = pairOf(gid.x % slots);
  let t = gid.y;
  let row = p.row0 + t;
  let pos = p.start + t;
  var c = 1.0;
  var s = 0.0;
  if (pr.z == 1u) {
    let angle = f32(pos) * freq[gid.x % slots];
    c = p.mscale * cos(angle);
    s = p.mscale * sin(angle);
  }
  if (head < p.nHeads) {
    if (pr.z == 0u) { return; } // unrotated q values stay as they are
    let base = (row * p.nHeads + head) * p.headDim;
    let x0 = x[base + pr.x];
    let x1 = x[base + pr.y];
    x[base + pr.x] = x0 * c - x1 * s;
    x[base + pr.y] = x0 * s + x1 * c;
    return;
  }
  let kvHead = head - p.nHeads;
  if (kvHead < p.nKv) {
    let src = (row * p.nKv + kvHead) * p.headDim;
    let dst = (pos * p.nKv + kvHead) * p.headDim;
    let k0 = k[src + pr.x];
    let k1 = k[src + pr.y];
    if (pr.z == 0u) { kCache[dst + pr.x] = Cached(k0); kCache[dst + pr.y] = Cached(k1); return; } // copied exactly
    kCache[dst + pr.x] = Cached(k0 * c - k1 * s);
    kCache[dst + pr.y] = Cached(k0 * s + k1 * c);
    return;
  }
  if (kvHead < 2u * p.nKv) {
    let h = kvHead - p.nKv;
    let src = (row * p.nKv + h) * p.headDim;
    let dst = (pos * p.nKv + h) * p.headDim;
    vCache[dst + pr.x] = Cached(v[src + pr.x]);
    vCache[dst + pr.y] = Cached(v[src + pr.y]);
  }
}
