// Argmax and top-k over x[offset .. offset + length), so that decoding reads back one id (greedy) or
// a few candidates (top-k sampling) instead of the logits.
//   main  result[0] = the index of the largest value (the lowest index on ties), result[1] = 1 if any
//         value is NaN or infinite (a model whose activations overflowed), else 0. One workgroup of
//         256 threads, strided scan then a tree reduction of (value, index).
//   topk  see below; result[p.flagAt] = 1 if any value is NaN or infinite.
// NaN and infinity are told by their bits (exponent all ones): WGSL lets implementations assume that
// floating-point values are finite, so comparisons cannot be trusted to see them.
// Bindings: 0 uniform Params, 1 x f32 (read), 2 result u32 (write).
// Precision: exact (comparisons only).
struct Params { offset: u32, length: u32, k: u32, flagAt: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> result: array<u32>;
var<workgroup> bestValue: array<f32, 256>;
var<workgroup> bestIndex: array<u32, 256>;
const NONE = 0xffffffffu; // no value (yet)
var<workgroup> nonFinite: atomic<u32>;

fn isFinite(e: f32) -> bool {
  return (bitcast<u32>(e) & 0x7f800000u) != 0x7f800000u;
}

struct Best { value: f32, index: u32 }

/**
 * The best (value, index) among the 256 invocations' candidates: the largest value, the lowest index
 * on ties; a candidate with index NONE loses to any other. Call from uniform control flow.
 */
fn workgroupBest(i: u32, v: f32, idx: u32) -> Best {
  bestValue[i] = v;
  bestIndex[i] = idx;
  workgroupBarrier();
  for (var stride = 128u; stride > 0u; stride >>= 1u) {
    if (i < stride) {
      let ov = bestValue[i + stride];
      let oi = bestIndex[i + stride];
      let mine = bestIndex[i];
      if (oi != NONE && (mine == NONE || ov > bestValue[i] || (ov == bestValue[i] && oi < mine))) {
        bestValue[i] = ov;
        bestIndex[i] = oi;
      }
    }
    workgroupBarrier();
  }
  let best = Best(bestValue[0], bestIndex[0]);
  workgroupBarrier();
  return best;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3u) {
  if (lid.x == 0u) { atomicStore(&nonFinite, 0u); }
  workgroupBarrier();
  var v = 0.0;
  var idx = NONE; // nothing yet: any finite value is better
  var bad = false;
  for (var i = lid.x; i < p.length; i += 256u) {
    let e = x[p.offset + i];
    if (!isFinite(e)) { bad = true; continue; }
    if (idx == NONE || e > v) { v = e; idx = i; }
  }
  if (bad) { atomicOr(&nonFinite, 1u); }
  let best = workgroupBest(lid.x, v, idx); // its barriers also publish nonFinite
  if (lid.x == 0u) {
    result[0] = best.index;
    result[1] = atomicLoad(&nonFinite);
  }
}

// Top-k, first stage: the k largest values of each chunk of TOPK_CHUNK logits (highest first, lowest
// index on ties), as (index, value bits) pairs at result[2 * (chunk * k + j)]; an index of 0xffffffff
// marks a chunk with fewer than k values (NaN is never chosen). The host merges the chunks' lists (a
// few KB instead of the logits) into the final top k. k <= 128.
// Workgroup: one of 256 threads per chunk; the chunk sits in workgroup memory and each of the k
// rounds is an argmax by tree reduction over the values not yet taken (a bit mask). Grid (chunks).
const TOPK_CHUNK = 2048u;
var<workgroup> chunkValues: array<f32, 2048>;
var<workgroup> taken: array<u32, 64>; // one bit per chunk value

@compute @workgroup_size(256)
fn topk(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let first = wg.x * TOPK_CHUNK;
  let count = min(TOPK_CHUNK, p.length - first);
  var bad = false;
  for (var i = lid.x; i < count; i += 256u) {
    let e = x[p.offset + first + i];
    bad = bad || !isFinite(e);
    chunkValues[i] = e;
  }
  // Any chunk that meets a non-finite value sets the flag (many may: they all write 1).
  if (bad) { result[p.flagAt] = 1u; }
  if (lid.x < 64u) { taken[lid.x] = 0u; }
  workgroupBarrier();
  let k = p.k;
  for (var j = 0u; j < k; j++) {
    var v = 0.0;
    var idx = NONE; // nothing yet: any value but NaN (e != e) is better
    for (var i = lid.x; i < count; i += 256u) {
      let e = chunkValues[i];
      if ((taken[i / 32u] & (1u << (i % 32u))) == 0u && isFinite(e) && (idx == NONE || e > v)) { v = e; idx = i; }
    }
    let best = workgroupBest(lid.x, v, idx);
    if (lid.x == 0u) {
      let at = 2u * (wg.x * k + j);
      if (best.index == NONE) { result[at] = NONE; } else {
        result[at] = first + best.index;
        result[at + 1u] = bitcast<u32>(best.value);
        taken[best.index / 32u] |= 1u << (best.index % 32u);
      }
    }
    workgroupBarrier();
  }
}
