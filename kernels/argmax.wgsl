// Argmax and top-k over x[offset .. offset + length), so that decoding reads back one id (greedy) or
// a few candidates (top-k sampling) instead of the logits.
//   main  result[0] = the index of the largest value (the lowest index on ties). One workgroup of
//         256 threads, strided scan then a tree reduction of (value, index).
//   topk  see below.
// Bindings: 0 uniform Params, 1 x f32 (read), 2 result u32 (write).
// Precision: exact (comparisons only).
struct Params { offset: u32, length: u32, k: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> result: array<u32>;
var<workgroup> bestValue: array<f32, 256>;
var<workgroup> bestIndex: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3u) {
  var v = -3.4e38;
  var idx = 0xffffffffu;
  for (var i = lid.x; i < p.length; i += 256u) {
    let e = x[p.offset + i];
    if (e > v) { v = e; idx = i; }
  }
  bestValue[lid.x] = v;
  bestIndex[lid.x] = idx;
  workgroupBarrier();
  for (var stride = 128u; stride > 0u; stride >>= 1u) {
    if (lid.x < stride) {
      let ov = bestValue[lid.x + stride];
      let oi = bestIndex[lid.x + stride];
      if (ov > bestValue[lid.x] || (ov == bestValue[lid.x] && oi < bestIndex[lid.x])) {
        bestValue[lid.x] = ov;
        bestIndex[lid.x] = oi;
      }
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) { result[0] = bestIndex[0]; }
}

// Top-k, first stage: the k largest values of each chunk of TOPK_CHUNK logits (highest first, lowest
// index on ties), as (index, value bits) pairs at result[2 * (chunk * k + j)]; an index of 0xffffffff
// marks a chunk with fewer than k values (NaN is never chosen). The host merges the chunks' lists (a
// few KB instead of the logits) into the final top k. k <= 128.
// Workgroup: one of 256 threads per chunk; the chunk sits in workgroup memory and each of the k
// rounds is an argmax by tree reduction over the values not yet taken (a bit mask). Grid (chunks).
const TOPK_CHUNK = 2048u;
const NONE = 0xffffffffu;
var<workgroup> chunkValues: array<f32, 2048>;
var<workgroup> taken: array<u32, 64>; // one bit per chunk value

@compute @workgroup_size(256)
fn topk(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let first = wg.x * TOPK_CHUNK;
  let count = min(TOPK_CHUNK, p.length - first);
  for (var i = lid.x; i < count; i += 256u) { chunkValues[i] = x[p.offset + first + i]; }
  if (lid.x < 64u) { taken[lid.x] = 0u; }
  workgroupBarrier();
  let k = p.k;
  for (var j = 0u; j < k; j++) {
    var v = 0.0;
    var idx = NONE; // nothing yet: any value but NaN (e != e) is better
    for (var i = lid.x; i < count; i += 256u) {
      let e = chunkValues[i];
      if ((taken[i / 32u] & (1u << (i % 32u))) == 0u && e == e && (idx == NONE || e > v)) { v = e; idx = i; }
    }
    bestValue[lid.x] = v;
    bestIndex[lid.x] = idx;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride >>= 1u) {
      if (lid.x < stride) {
        let ov = bestValue[lid.x + stride];
        let oi = bestIndex[lid.x + stride];
        let mine = bestIndex[lid.x];
        if (oi != NONE && (mine == NONE || ov > bestValue[lid.x] || (ov == bestValue[lid.x] && oi < mine))) {
          bestValue[lid.x] = ov;
          bestIndex[lid.x] = oi;
        }
      }
      workgroupBarrier();
    }
    let win = bestIndex[0];
    if (lid.x == 0u) {
      let at = 2u * (wg.x * k + j);
      if (win == NONE) { result[at] = NONE; } else {
        result[at] = first + win;
        result[at + 1u] = bitcast<u32>(bestValue[0]);
        taken[win / 32u] |= 1u << (win % 32u);
      }
    }
    workgroupBarrier();
  }
}
