// The tiled prefill product shared by dense and quantized weights: out[t][outRow0 + r] (+)= W[r] . x[t]
// for n > 4 inputs. Appended by src/backend-webgpu.ts to kernels/matmul.wgsl (f32/f16 weights) or to a
// format file + kernels/matmul-quant.wgsl (quantized weights); that file declares Params (rows, cols, n,
// accumulate, outRows, outRow0), the bindings w / x / out, and tileLoad4(row, c): the f32 weights of
// row `row`, columns c .. c+3 (zeros past the row's end).
// Workgroup: 64 invocations compute a 64-row x 32-input output tile, each 8 rows x 4 inputs; W and x
//   pass through workgroup memory 16 columns at a time, so each weight is read from storage once per
//   32 inputs. Grid (ceil(rows/64), ceil(n/32)).
// Precision: f32, one running sum per output: error <= (cols + 1) * 2^-24 * sum|w x|, plus one
//   rounding of the sum with the old value when accumulating.

fn store(t: u32, r: u32, v: f32) {
  let i = t * p.outRows + p.outRow0 + r;
  if (p.accumulate == 1u) { out[i] = out[i] + v; } else { out[i] = v; }
}

const TILE_K = 16u;
var<workgroup> wTile: array<vec4f, 256>; // [TILE_K][16]: 64 rows as 16 vec4
var<workgroup> xTile: array<vec4f, 128>; // [TILE_K][8]: 32 inputs as 8 vec4

@compute @workgroup_size(64)
fn tiled(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let r0 = wg.x * 64u;
  let t0 = wg.y * 32u;
  let tr = li % 8u; // this invocation's rows: r0 + tr*8 .. +8
  let tt = li / 8u; // and inputs: t0 + tt*4 .. +4
  var a0 = vec4f(); var a1 = vec4f(); var a2 = vec4f(); var a3 = vec4f();
  var a4 = vec4f(); var a5 = vec4f(); var a6 = vec4f(); var a7 = vec4f();
  for (var k0 = 0u; k0 < p.cols; k0 += TILE_K) {
    // Stage 64 rows x 16 columns of W (four values per tileLoad4: 256 loads, 4 per invocation) and
    // 32 inputs x 16 columns of x (zeros past the edges).
    for (var i = 0u; i < 4u; i++) {
      let e = i * 64u + li;
      let row = e / 4u;
      let c = (e % 4u) * 4u;
      var v = vec4f();
      if (r0 + row < p.rows) { v = tileLoad4(r0 + row, k0 + c); }
      for (var q = 0u; q < 4u; q++) { wTile[(c + q) * 16u + row / 4u][row % 4u] = v[q]; }
    }
    for (var i = 0u; i < 8u; i++) {
      let e = i * 64u + li;
      let t = e / TILE_K;
      let k = e % TILE_K;
      var v = 0.0;
      if (t0 + t < p.n && k0 + k < p.cols) { v = x[(t0 + t) * p.cols + k0 + k]; }
      xTile[k * 8u + t / 4u][t % 4u] = v;
    }
    workgroupBarrier();
    for (var k = 0u; k < TILE_K; k++) {
      let wa = wTile[k * 16u + tr * 2u];
      let wb = wTile[k * 16u + tr * 2u + 1u];
      let xv = xTile[k * 8u + tt];
      a0 += wa.x * xv; a1 += wa.y * xv; a2 += wa.z * xv; a3 += wa.w * xv;
      a4 += wb.x * xv; a5 += wb.y * xv; a6 += wb.z * xv; a7 += wb.w * xv;
    }
    workgroupBarrier();
  }
  let acc = array<vec4f, 8>(a0, a1, a2, a3, a4, a5, a6, a7);
  for (var i = 0u; i < 8u; i++) {
    let r = r0 + tr * 8u + i;
    if (r >= p.rows) { break; }
    for (var j = 0u; j < 4u; j++) {
      let t = t0 + tt * 4u + j;
      if (t < p.n) { store(t, r, acc[i][j]); }
    }
  }
}
