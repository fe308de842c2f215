// Argmax: result = the index of the largest of x[offset .. offset + length) (the lowest index on ties),
// so greedy decoding reads back one u32 instead of the logits.
// Bindings: 0 uniform Params, 1 x f32 (read), 2 result [1] u32 (write).
// Workgroup: one workgroup of 256 threads, strided scan then a tree reduction of (value, index).
// Precision: exact (comparisons only).
struct Params { offset: u32, length: u32, pad0: u32, pad1: u32 }
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
