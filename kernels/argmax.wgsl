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
// index on ties), as (index, value bits) pairs at result[2 * (chunk * k + j)], in no particular order
// (the host sorts them); an index of 0xffffffff marks a chunk with fewer than k values. The host
// merges the chunks' lists (a few KB instead of the logits) into the final top k. k <= 128.
// Workgroup: one of 256 threads per chunk, the chunk in workgroup memory. A radix select finds the
// k-th largest value T, 8 bits a pass over order-preserving u32 keys (4 passes: a histogram of the
// next 8 bits of the keys that match the bits found so far, its suffix sums, the bin where they reach
// the number still wanted); then the values above T take slots by a counter, and the values equal to
// T the rest, lowest indices first (each thread holds 8 consecutive indices, ranked by a prefix sum).
// About 80 barriers a chunk, where k rounds of an argmax took 9k (360 for k = 40). Grid (chunks).
const TOPK_CHUNK = 2048u;
const PER_THREAD = 8u; // TOPK_CHUNK / 256: thread i holds indices 8i .. 8i+7
var<workgroup> chunkValues: array<f32, 2048>;
var<workgroup> bins: array<atomic<u32>, 256>;
var<workgroup> sums: array<u32, 256>; // suffix sums of the bins, then prefix sums of the threads' counts
var<workgroup> found: vec3<u32>; // (the key's bits found so far, their mask, how many equal to them are still wanted)
var<workgroup> slots: atomic<u32>; // slots taken by values above T

/** An order-preserving key for a finite f32 (larger value, larger key; -0 as +0). */
fn orderKey(v: f32) -> u32 {
  var b = bitcast<u32>(v);
  if (b == 0x80000000u) { b = 0u; }
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

/** sums[i] = sum of sums[j] for j >= i (Hillis-Steele, 8 steps; call from uniform control flow). */
fn suffixSums(i: u32) {
  for (var off = 1u; off < 256u; off <<= 1u) {
    workgroupBarrier();
    var v = sums[i];
    if (i + off < 256u) { v += sums[i + off]; }
    workgroupBarrier();
    sums[i] = v;
  }
  workgroupBarrier();
}

@compute @workgroup_size(256)
fn topk(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = lid.x;
  let first = wg.x * TOPK_CHUNK;
  let count = min(TOPK_CHUNK, p.length - first);
  let k = p.k;
  var bad = false;
  for (var j = i; j < count; j += 256u) {
    let e = x[p.offset + first + j];
    bad = bad || !isFinite(e);
    chunkValues[j] = e;
  }
  // Any chunk that meets a non-finite value sets the flag (many may: they all write 1), and the host
  // then discards every list, so such values may be chosen here or not.
  if (bad) { result[p.flagAt] = 1u; }
  let out = 2u * wg.x * k;
  if (count <= k) {
    // The whole chunk, then empty slots.
    workgroupBarrier();
    for (var j = i; j < k; j += 256u) {
      if (j < count) {
        result[out + 2u * j] = first + j;
        result[out + 2u * j + 1u] = bitcast<u32>(chunkValues[j]);
      } else {
        result[out + 2u * j] = NONE;
      }
    }
    return;
  }
  if (i == 0u) {
    found = vec3u(0u, 0u, k);
    atomicStore(&slots, 0u);
  }
  for (var shift = 24; shift >= 0; shift -= 8) {
    atomicStore(&bins[i], 0u);
    workgroupBarrier();
    let f = found;
    for (var j = i; j < count; j += 256u) {
      let key = orderKey(chunkValues[j]);
      if ((key & f.y) == f.x) { atomicAdd(&bins[(key >> u32(shift)) & 255u], 1u); }
    }
    workgroupBarrier();
    sums[i] = atomicLoad(&bins[i]);
    suffixSums(i);
    // The bin where the count from the top reaches the number wanted: exactly one thread's.
    var above = 0u;
    if (i < 255u) { above = sums[i + 1u]; }
    if (above < f.z && sums[i] >= f.z) { found = vec3u(f.x | (i << u32(shift)), f.y | (255u << u32(shift)), f.z - above); }
    workgroupBarrier();
  }
  let T = found.x;
  let equalWanted = found.z; // values equal to T to take (>= 1); k - equalWanted values are above T
  // This thread's indices 8i .. 8i+7: values above T take counter slots; values equal to T are counted.
  var equal = 0u;
  for (var j = i * PER_THREAD; j < min(count, i * PER_THREAD + PER_THREAD); j++) {
    let key = orderKey(chunkValues[j]);
    if (key > T) {
      let at = out + 2u * atomicAdd(&slots, 1u);
      result[at] = first + j;
      result[at + 1u] = bitcast<u32>(chunkValues[j]);
    } else if (key == T) { equal++; }
  }
  // Exclusive prefix sums of the equal counts, in index order: the reversed suffix sums.
  sums[255u - i] = equal;
  suffixSums(i);
  var rank = sums[255u - i] - equal; // equal values in the threads before this one
  for (var j = i * PER_THREAD; j < min(count, i * PER_THREAD + PER_THREAD); j++) {
    if (rank < equalWanted && orderKey(chunkValues[j]) == T) {
      let at = out + 2u * (k - equalWanted + rank);
      result[at] = first + j;
      result[at + 1u] = bitcast<u32>(chunkValues[j]);
      rank++;
    }
  }
}
