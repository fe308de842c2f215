// Matrix-vector product for decode (n = 1) on GPUs with subgroups: out[outRow0 + r] (+)= W[r] . x.
// The coalesced layout real GPUs want: one workgroup per row, its 64 invocations reading the row at
// consecutive addresses (column c by invocation c % 64), partial sums combined with subgroupAdd and
// then across subgroups through workgroup memory. matmul.wgsl's `main` (a row per invocation, no
// barriers) stays the choice on CPU-emulated adapters such as lavapipe, where it is faster.
// Separate from matmul.wgsl because `enable subgroups;` would make that module require the feature.
// Bindings: as matmul.wgsl (0 uniform Params, 1 W `Weight`, 2 x f32, 3 out f32 read/write).
// Weight type: f32 as written; the f16 variant swaps the alias, as for matmul.wgsl.
// Workgroup: 64 invocations per row; grid (min(rows, 65535), ceil(rows / 65535)).
// Precision: f32; 64 strided partial sums of cols/64 terms, then a tree of subgroup and workgroup
//   adds: error <= (cols/64 + 8) * 2^-24 * sum|w x|.
enable subgroups;
alias Weight = f32;
struct Params { rows: u32, cols: u32, n: u32, accumulate: u32, outRows: u32, outRow0: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<Weight>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
var<workgroup> sums: array<f32, 64>; // one per subgroup (subgroups have at least 1 invocation)

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32,
        @builtin(subgroup_invocation_id) sli: u32, @builtin(subgroup_size) sgSize: u32) {
  let r = wg.y * 65535u + wg.x;
  if (r >= p.rows) { return; } // uniform across the workgroup
  let base = r * p.cols;
  var s = 0.0;
  for (var c = li; c < p.cols; c += 64u) { s += f32(w[base + c]) * x[c]; }
  let total = subgroupAdd(s);
  if (sli == 0u) { sums[li / sgSize] = total; }
  workgroupBarrier();
  if (li == 0u) {
    var acc = 0.0;
    for (var i = 0u; i < (64u + sgSize - 1u) / sgSize; i++) { acc += sums[i]; }
    let o = p.outRow0 + r;
    if (p.accumulate == 1u) { out[o] = out[o] + acc; } else { out[o] = acc; }
  }
}
