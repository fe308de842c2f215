// Matrix products with quantized weights, dequantized in registers: out[t][outRow0 + r] (+)= W[r] . x[t].
// This file is completed by one format file (q8_0.wgsl, q4_0.wgsl, q4_k.wgsl, q6_k.wgsl), prepended by
// src/backend-webgpu.ts, which defines BLOCK_VALUES, BLOCK_WORDS and dequant4(row, c): the f32 values
// c .. c+3 of row r read from u32 words (c a multiple of 4; cols is a multiple of the block size).
// Bindings: 0 uniform Params, 1 W u32 words (read), 2 x [n][cols] f32 (read), 3 out (read/write).
// Entry points:
//   main   decode (n <= 4): a row per invocation, four values per step, up to four inputs per weight
//          read; grid (min(ceil(rows/64), 65535), ceil(n/4), ceil(ceil(rows/64)/65535)).
//   tiled  prefill (n > 4): as matmul.wgsl's tiled (64 rows x 32 inputs per workgroup), the weight
//          tile dequantized into workgroup memory; grid (ceil(rows/64), ceil(n/32)).
//   gather embedding rows: out[t][i] = W[tokens[t]][i] (params reinterpreted as in embedding.wgsl:
//          dim, n, row0, rows, tokens); grid (ceil(dim/256), n), 64 invocations of 4 values.
// Precision: each dequantized value is the format's exact value in f32 (codes and scales are exact,
//   one product each); f32 sums as matmul.wgsl: error <= (cols + 1) * 2^-24 * sum|w x|.
struct Params { rows: u32, cols: u32, n: u32, accumulate: u32, outRows: u32, outRow0: u32, pad0: u32, pad1: u32, tokens: array<vec4<u32>, 8> }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn store(t: u32, r: u32, v: f32) {
  let i = t * p.outRows + p.outRow0 + r;
  if (p.accumulate == 1u) { out[i] = out[i] + v; } else { out[i] = v; }
}

fn x4(t: u32, c: u32) -> vec4f {
  let i = t * p.cols + c;
  return vec4f(x[i], x[i + 1u], x[i + 2u], x[i + 3u]);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = (wg.z * 65535u + wg.x) * 64u + lid.x;
  let t0 = wg.y * 4u;
  if (r >= p.rows) { return; }
  let k = min(4u, p.n - t0);
  let t1 = min(t0 + 1u, p.n - 1u);
  let t2 = min(t0 + 2u, p.n - 1u);
  let t3 = min(t0 + 3u, p.n - 1u);
  var s = vec4f();
  for (var c = 0u; c < p.cols; c += 4u) {
    let wv = dequant4(r, c);
    s += vec4f(dot(wv, x4(t0, c)), dot(wv, x4(t1, c)), dot(wv, x4(t2, c)), dot(wv, x4(t3, c)));
  }
  store(t0, r, s.x);
  if (k > 1u) { store(t0 + 1u, r, s.y); }
  if (k > 2u) { store(t0 + 2u, r, s.z); }
  if (k > 3u) { store(t0 + 3u, r, s.w); }
}

const TILE_K = 16u;
var<workgroup> wTile: array<vec4f, 256>; // [TILE_K][16]: 64 rows as 16 vec4
var<workgroup> xTile: array<vec4f, 128>; // [TILE_K][8]: 32 inputs as 8 vec4

@compute @workgroup_size(64)
fn tiled(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let r0 = wg.x * 64u;
  let t0 = wg.y * 32u;
  let tr = li % 8u;
  let tt = li / 8u;
  var a0 = vec4f(); var a1 = vec4f(); var a2 = vec4f(); var a3 = vec4f();
  var a4 = vec4f(); var a5 = vec4f(); var a6 = vec4f(); var a7 = vec4f();
  for (var k0 = 0u; k0 < p.cols; k0 += TILE_K) {
    // 64 rows x 16 columns of W, four values per dequant4: 256 groups, 4 per invocation.
    for (var i = 0u; i < 4u; i++) {
      let e = i * 64u + li;
      let row = e / 4u;
      let c = (e % 4u) * 4u;
      var v = vec4f();
      if (r0 + row < p.rows) { v = dequant4(r0 + row, k0 + c); }
      for (var q = 0u; q < 4u; q++) { wTile[(c + q) * 16u + row / 4u][row % 4u] = v[q]; }
    }
    for (var i = 0u; i < 8u; i++) {
      let e = i * 64u + li;
      let t = e / TILE_K;
      let k = e % TILE_K;
      var v = 0.0;
      if (t0 + t < p.n) { v = x[(t0 + t) * p.cols + k0 + k]; }
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

@compute @workgroup_size(64)
fn gather(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  // Params as embedding.wgsl: rows = dim (values per row), cols = dim too, n tokens, outRow0 = row0
  // of this block of the table, outRows = rows in it; tokens in p.tokens.
  let c = (wg.x * 64u + lid.x) * 4u;
  let t = wg.y;
  if (c >= p.cols || t >= p.n) { return; }
  let token = p.tokens[t / 4u][t % 4u];
  if (token < p.outRow0 || token - p.outRow0 >= p.outRows) { return; }
  let v = dequant4(token - p.outRow0, c);
  let o = t * p.cols + c;
  out[o] = v.x; out[o + 1u] = v.y; out[o + 2u] = v.z; out[o + 3u] = v.w;
}
