// Matrix products with quantized weights, dequantized in registers: out[t][outRow0 + r] (+)= W[r] . x[t].
// This file is completed by one format file (q8_0.wgsl, q4_0.wgsl, q4_k.wgsl, q6_k.wgsl) and quant-bytes.wgsl, prepended by
// src/backend-webgpu.ts (which also appends kernels/matmul-tiled.wgsl), which defines BLOCK_VALUES, BLOCK_WORDS, dequant4(row, c): the f32 values
// c .. c+3 of row r read from u32 words (c a multiple of 4; cols is a multiple of the block size),
// and dequant16(row, c): values c .. c+15 (c a multiple of 16), which decode's loops take, reading
// a block's scales once for 16 values instead of once for 4 (on lavapipe every load an invocation
// makes costs several instructions); both use this file's blockStart and quant-bytes.wgsl's unsignedBytes and signedBytes.
// Bindings: 0 uniform Params, 1 W u32 words (read), 2 x [n][cols] f32 (read, as vec4s: cols is a multiple of
// the block size, so every row of x starts at a vec4; a vec4 load costs lavapipe about what one f32 does), 3 out (read/write),
// 4 Wup u32 words (read; gated only), 8 parts (matmul-norm.wgsl's: main, tiled and the _norm entry points).
// Entry points:
//   main   decode (n <= 4): a row per invocation, four values per step (n = 1: sixteen, through dequant16, into four partial sums),
//          up to four inputs per weight read; grid (min(ceil(rows/64), 65535), ceil(n/4), ceil(ceil(rows/64)/65535)).
//   tiled  prefill (n > 4): kernels/matmul-tiled.wgsl, appended after this file, with the weight
//          tile dequantized into workgroup memory through tileLoad4 below.
//   gated  decode's gate/up pass (n = 1): out[outRow0 + r] = act(Wgate[r] . x) * (Wup[r] . x), act silu
//          (act = 0, SwiGLU) or tanh-GELU (act = 1, GeGLU), with Wup at binding 4 in the same format, read
//          by dequant4Up (the backend adds the format file a second time with w renamed wUp); grid as
//          main. One pass instead of two products and the activation.
//   gated_norm (n = 1): gated's product of rmsnorm(x) (eps in Params.scale), with kernels/matmul-norm.wgsl
//          (appended by the backend; bindings 5, 6), which also holds main_norm and qkv_norm over this
//          file's rowNorm (Wk at binding 4, Wv at 7, read by dequant4V: the format file added a third
//          time). Same arithmetic as main and gated.
//   gather embedding rows: out[dst0 + t][i] (+)= scale * W[tokens[t]][i] (params reinterpreted: rows =
//          cols = dim, n tokens, accumulate, outRows / outRow0 = the rows of this block of the table,
//          scale, act = dst0, tokens); grid (ceil(dim/256), n), 64 invocations of 4 values.
// Precision: each dequantized value is the format's exact value in f32 (codes and scales are exact,
//   one product each); f32 sums as matmul.wgsl: error <= (cols + 1) * 2^-24 * sum|w x|.
struct Params { rows: u32, cols: u32, n: u32, accumulate: u32, outRows: u32, outRow0: u32, scale: f32, act: u32, xParts: u32, outParts: u32, tokens: array<vec4<u32>, 8> }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

/** The first word of the block holding value c of row `row` (rows of cols / BLOCK_VALUES blocks). */
fn blockStart(row: u32, c: u32) -> u32 {
  return (row * (p.cols / BLOCK_VALUES) + c / BLOCK_VALUES) * BLOCK_WORDS;
}


/**
 * Decode's step (n = 1): a + the products of 16 weights (columns c .. c+15, from dequant16) with x's,
 * lane q taking the columns c = q mod 4 in order, as four steps of four would.
 */
fn mac16(a: vec4f, wm: mat4x4f, c: u32) -> vec4f {
  var s = a;
  for (var e = 0u; e < 4u; e++) { s += wm[e] * x4(0u, c + 4u * e); }
  return s;
}
/** mac16 with rmsnorm(x) (matmul-norm.wgsl's xn4). */
fn macNorm16(a: vec4f, wm: mat4x4f, c: u32) -> vec4f {
  var s = a;
  for (var e = 0u; e < 4u; e++) { s += wm[e] * xn4(c + 4u * e); }
  return s;
}
/** Values c .. c+3 of input t (c a multiple of 4). */
fn x4(t: u32, c: u32) -> vec4f {
  return x[(t * p.cols + c) / 4u];
}
/** Element i of x (for matmul-tiled.wgsl and matmul-norm.wgsl). */
fn xAt(i: u32) -> f32 {
  return x[i / 4u][i % 4u];
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = (wg.z * 65535u + wg.x) * 64u + lid.x;
  let t0 = wg.y * 4u;
  if (r >= p.rows) { return; }
  if (p.n == 1u) {
    // Decode: one input, four partial sums (the lanes).
    var a = vec4f();
    for (var c = 0u; c < p.cols; c += 16u) { a = mac16(a, dequant16(r, c), c); }
    store(0u, r, (a.x + a.y) + (a.z + a.w));
    return;
  }
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

@group(0) @binding(4) var<storage, read> wUp: array<u32>;

@compute @workgroup_size(64)
fn gated(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = (wg.z * 65535u + wg.x) * 64u + lid.x;
  if (r >= p.rows) { return; }
  var g = vec4f();
  var u = vec4f();
  for (var c = 0u; c < p.cols; c += 16u) {
    g = mac16(g, dequant16(r, c), c);
    u = mac16(u, dequant16Up(r, c), c);
  }
  out[p.outRow0 + r] = gateAct((g.x + g.y) + (g.z + g.w), p.act) * ((u.x + u.y) + (u.z + u.w));
}

@compute @workgroup_size(64)
fn gated_norm(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  normInput(lid.x, wg.x == 0u && wg.z == 0u, normEps());
  let r = (wg.z * 65535u + wg.x) * 64u + lid.x;
  if (r >= p.rows) { return; }
  var g = vec4f();
  var u = vec4f();
  for (var c = 0u; c < p.cols; c += 16u) {
    g = macNorm16(g, dequant16(r, c), c);
    u = macNorm16(u, dequant16Up(r, c), c);
  }
  out[p.outRow0 + r] = gateAct((g.x + g.y) + (g.z + g.w), p.act) * ((u.x + u.y) + (u.z + u.w));
}

@group(0) @binding(7) var<storage, read> wV: array<u32>; // qkv_norm only

/** Row r of matrix m (0: w, 1: wUp, 2: wV) times rmsnorm(x), in four lanes as main's n = 1 branch. */
fn rowNorm(m: u32, r: u32) -> f32 {
  var a = vec4f();
  for (var c = 0u; c < p.cols; c += 16u) {
    var wm: mat4x4f;
    if (m == 0u) { wm = dequant16(r, c); } else if (m == 1u) { wm = dequant16Up(r, c); } else { wm = dequant16V(r, c); }
    a = macNorm16(a, wm, c);
  }
  return (a.x + a.y) + (a.z + a.w);
}

/** matmul-norm.wgsl's eps: Params.scale here. */
fn normEps() -> f32 {
  return p.scale;
}

/** The tiled kernel's weights (kernels/matmul-tiled.wgsl, appended to this file). */
fn tileLoad4(row: u32, c: u32) -> vec4f {
  return dequant4(row, c);
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
  var v = p.scale * dequant4(token - p.outRow0, c);
  let o = (p.act + t) * p.cols + c; // act holds dst0 here
  if (p.accumulate == 1u) { v += vec4f(out[o], out[o + 1u], out[o + 2u], out[o + 3u]); }
  out[o] = v.x; out[o + 1u] = v.y; out[o + 2u] = v.z; out[o + 3u] = v.w;
}
