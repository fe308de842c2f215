// Attention with its output projection, for a decode step: partial rows of Wo times each head's output,
// so that the product that follows needs no pass of its own. Appended by src/backend/webgpu.ts to
// kernels/attention.wgsl (whose `attendHead` computes the head), after Wo's format file with its `w`
// renamed `wo` (a quantized format's q*.wgsl with quant-bytes.wgsl, or dense-f32.wgsl / dense-f16.wgsl:
// each defines dequant4(row, c) and dequant16(row, c) over this file's blockStart, and the type WoWord
// of Wo's words: u32 for the formats (in quant-bytes.wgsl), vec4<u32> / vec2<u32> for f32 / f16, so
// that dense rows are read four values a load). For head h of query row t:
//   out[t][h][r] = sum_j Wo[r][h * headDim + j] * attention(t, h)[j]   for r < outRows,
// one row of per-head partial products: the residual's x += Wo attention is then x + out[t][0] +
// out[t][1] + ..., which kernels/matmul-norm.wgsl's and matmul-subgroup.wgsl's `parts` add as they read
// x (the norm before the FFN, and the FFN's down product accumulating into x), or add.wgsl's `parts`.
// Entry points (vec4 heads only: headDim % 4 == 0, up to 256; the backend checks):
//   main_out     as attention.wgsl's main (the same grid, (nHeads, n), and the same attention: fresh
//                steps too), then each of the 64 invocations projects rows r = lid, lid + 64, ... of
//                Wo's slice for the head, 16 columns a step (dequant16: a block's scales read once
//                for them) where headDim is a multiple of 16, else 4.
//   combine_out  as attention.wgsl's combine (after split, for long contexts), then the same projection.
// Bindings: attention.wgsl's, with 5 out [n][nHeads][outRows] f32 (written) and 8 Wo WoWord words
//   (read): [outRows][nHeads * headDim] in its format's GPU layout.
// Precision: f32; each partial product four interleaved sums (lane q: columns c = q mod 4) added
//   pairwise: error <= (headDim + 1) * 2^-24 * sum|w o| per head, then one rounding per head as the
//   parts are added: together within (nHeads * headDim + nHeads) * 2^-24 * sum|w o|, the product's
//   bound in the other passes' order. Not bit for bit Wo's own pass (another order of the same terms).
@group(0) @binding(8) var<storage, read> wo: array<WoWord>;
var<workgroup> headOut: array<vec4f, 64>;

/** The first word of the block holding column c of Wo's row `row` (the format files' addressing). */
fn blockStart(row: u32, c: u32) -> u32 {
  return (row * (p.nHeads * p.headDim / BLOCK_VALUES) + c / BLOCK_VALUES) * BLOCK_WORDS;
}

@compute @workgroup_size(64)
fn main_out(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let o = attendHead(wg.x, wg.y, lid.x);
  if (lid.x < p.headDim / 4u) { headOut[lid.x] = o; }
  workgroupBarrier();
  project(wg.x, wg.y, lid.x);
}

@compute @workgroup_size(64)
fn combine_out(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  for (var i = lid.x; i < p.headDim; i += 64u) { headOut[i / 4u][i % 4u] = combined(wg.x, wg.y, i); }
  workgroupBarrier();
  project(wg.x, wg.y, lid.x);
}

/**
 * Row t's rows for head h: Wo's columns for the head times headOut, rows r = lid, lid + 64, ...; lane
 * q of the sum takes the columns c = q mod 4 in order, 16 columns a step or 4 (the same sums).
 */
fn project(h: u32, t: u32, lid: u32) {
  let c0 = h * p.headDim;
  let row = (t * p.nHeads + h) * p.outRows;
  let wide = p.headDim % 16u == 0u;
  for (var r = lid; r < p.outRows; r += 64u) {
    var a = vec4f(0.0);
    if (wide) {
      for (var j = 0u; j < p.headDim / 4u; j += 4u) {
        let m = dequant16(r, c0 + 4u * j);
        for (var e = 0u; e < 4u; e++) { a += m[e] * headOut[j + e]; }
      }
    } else {
      for (var j = 0u; j < p.headDim / 4u; j++) { a += dequant4(r, c0 + 4u * j) * headOut[j]; }
    }
    out[row + r] = (a.x + a.y) + (a.z + a.w);
  }
}
