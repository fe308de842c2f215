// The tiled prefill product shared by dense and quantized weights: out[t][outRow0 + r] (+)= W[r] . x[t]
// for n > 4 inputs. Appended by src/backend/webgpu.ts to kernels/matmul.wgsl (f32/f16 weights) or to a
// format file + kernels/matmul-quant.wgsl (quantized weights); that file declares Params (rows, cols, n,
// accumulate, outRows, outRow0, outParts), the bindings w / x / out, tileLoad4(row, c): the f32 weights of
// row `row`, columns c .. c+3 (zeros past the row's end), and xAt(i): element i of x.
// Workgroup: 64 invocations as 8 x 8; each computes 4*RQ rows x 4*TQ inputs, so a workgroup computes a
//   (32*RQ)-row x (32*TQ)-input output tile. W and x pass through workgroup memory TILE_K columns at a
//   time, stored as vec4s of four rows (W) or four inputs (x) per column, so that the inner loop reads
//   RQ + TQ vec4s for 16*RQ*TQ multiply-adds. Grid (ceil(rows/(32*RQ)), ceil(n/(32*TQ))).
//   RQ and TQ are set by the backend (WebGPUOptions.prefillTile): RQ = 2, TQ = 1 (8 rows x 4 inputs an
//   invocation, 32 sums) on hardware adapters; RQ = TQ = 4 (16 x 16, 256 sums) on CPU-emulated ones,
//   where every load costs several vector instructions and spilled sums cost one.
// Precision: f32, one running sum per output: error <= (cols + 1) * 2^-24 * sum|w x|, plus one
//   rounding of the sum with the old value when accumulating.

/** out[t][outRow0 + r] = v, or (accumulate) += v after matmul-norm.wgsl's parts (decode: t = 0). */
fn store(t: u32, r: u32, v: f32) {
  let i = t * p.outRows + p.outRow0 + r;
  if (p.accumulate == 1u) { out[i] = withParts(i, out[i], p.outRows, p.outParts) + v; } else { out[i] = v; }
}

const RQ = 2u; // row quads per invocation
const TQ = 1u; // input quads per invocation
const TILE_K = 16u;
var<workgroup> wTile: array<vec4f, TILE_K * 8u * RQ>; // [TILE_K][8*RQ]: 32*RQ rows as vec4s of four
var<workgroup> xTile: array<vec4f, TILE_K * 8u * TQ>; // [TILE_K][8*TQ]: 32*TQ inputs as vec4s of four

@compute @workgroup_size(64)
fn tiled(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let r0 = wg.x * 32u * RQ;
  let t0 = wg.y * 32u * TQ;
  let tr = li % 8u; // this invocation's rows: r0 + tr*4*RQ .. + 4*RQ
  let tt = li / 8u; // and inputs: t0 + tt*4*TQ .. + 4*TQ
  var acc: array<vec4f, 4u * RQ * TQ>; // [row][input quad]: four inputs' sums of one row
  for (var k0 = 0u; k0 < p.cols; k0 += TILE_K) {
    // Stage W: 4 x 4 blocks (four rows, four columns), each read as four tileLoad4 and written
    // transposed as four vec4s (one per column); zeros past the last row.
    for (var e = li; e < 8u * RQ * TILE_K / 4u; e += 64u) {
      let rq = e % (8u * RQ);
      let cq = e / (8u * RQ);
      let row = r0 + rq * 4u;
      var m = array<vec4f, 4>(); // (zeroed for each block: a function-scope var in a loop was not re-zeroed on lavapipe)
      for (var q = 0u; q < 4u; q++) {
        if (row + q < p.rows) { m[q] = tileLoad4(row + q, k0 + cq * 4u); }
      }
      for (var q = 0u; q < 4u; q++) {
        wTile[(cq * 4u + q) * 8u * RQ + rq] = vec4f(m[0][q], m[1][q], m[2][q], m[3][q]);
      }
    }
    // Stage x: four inputs' values of one column per vec4 (zeros past the edges).
    for (var e = li; e < TILE_K * 8u * TQ; e += 64u) {
      let tq = e % (8u * TQ);
      let k = e / (8u * TQ);
      let t = t0 + tq * 4u;
      var v = vec4f();
      for (var q = 0u; q < 4u; q++) {
        if (k0 + k < p.cols && t + q < p.n) { v[q] = xAt((t + q) * p.cols + k0 + k); }
      }
      xTile[k * 8u * TQ + tq] = v;
    }
    workgroupBarrier();
    for (var k = 0u; k < TILE_K; k++) {
      var wv: array<vec4f, RQ>;
      var xv: array<vec4f, TQ>;
      for (var i = 0u; i < RQ; i++) { wv[i] = wTile[k * 8u * RQ + tr * RQ + i]; }
      for (var j = 0u; j < TQ; j++) { xv[j] = xTile[k * 8u * TQ + tt * TQ + j]; }
      for (var i = 0u; i < RQ; i++) {
        for (var c = 0u; c < 4u; c++) {
          for (var j = 0u; j < TQ; j++) { acc[(i * 4u + c) * TQ + j] += wv[i][c] * xv[j]; }
        }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u * RQ; i++) {
    let r = r0 + tr * 4u * RQ + i;
    if (r >= p.rows) { break; }
    for (var j = 0u; j < TQ; j++) {
      for (var q = 0u; q < 4u; q++) {
        let t = t0 + tt * 4u * TQ + j * 4u + q;
        if (t < p.n) { store(t, r, acc[i * TQ + j][q]); }
      }
    }
  }
}
