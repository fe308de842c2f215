// Matrix products for n inputs: out[t][outRow0 + r] (+)= sum_c W[r][c] * x[t][c], W row-major
// [rows][cols] (a whole matrix, or one row block of a matrix split to fit maxStorageBufferBindingSize).
// With accumulate = 1 the product is added to what out holds (the residual add, fused).
// Bindings: 0 uniform Params, 1 W `Weight` (read), 2 x [n][cols] f32 (read), 3 out [n][outRows] f32 (read/write).
// Weight type: f32 as written; the f16 variant (shader-f16) is this file with `Weight = f16` and
//   `enable f16;` prepended, made by src/backend-webgpu.ts. f16 widens to f32 exactly.
// Entry points:
//   main  (decode and n <= 4): 64 invocations, one output row each, reading the row front to back;
//         each serves up to four inputs (grid y = input group of 4). No barriers. Grid
//         (min(ceil(rows/64), 65535), ceil(n/4), ceil(ceil(rows/64)/65535)). n = 1 takes its own
//         branch with four interleaved partial sums.
//   gated (decode FFN, n = 1): out[outRow0 + r] = act(W[r] . x) * (Wup[r] . x), act silu (act = 0,
//         SwiGLU) or tanh-GELU (act = 1, GeGLU): the gate and up projections and the activation in
//         one pass (binding 4 is Wup, same shape and type as W); one row per invocation, two partial
//         sums per product. Grid as main's.
//   tiled (prefill, n > 4): in kernels/matmul-tiled.wgsl, which the backend appends to this file;
//         it reads weights through tileLoad4 below.
//   gated_norm (n = 1): gated's product of rmsnorm(x) (eps in Params), with kernels/matmul-norm.wgsl
//         (appended by the backend; bindings 5, 6), which also holds main_norm and qkv_norm over this
//         file's rowNorm (Wk at binding 4, Wv at 7). Same arithmetic as main and gated.
// Precision: f32. main: one running sum per input, or four partial sums when n = 1; gated: two
//   partial sums per product, then the activation and the product as in ffn.wgsl; tiled: one
//   running sum per output. Either way error <= (cols + 1) * 2^-24 * sum|w x|, plus one rounding
//   of the sum with the old value when accumulating.
alias Weight = f32;
struct Params { rows: u32, cols: u32, n: u32, accumulate: u32, outRows: u32, outRow0: u32, eps: f32, act: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<Weight>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> wUp: array<Weight>; // gated only (and Wk of qkv_norm)
@group(0) @binding(7) var<storage, read> wV: array<Weight>; // qkv_norm only

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = (wg.z * 65535u + wg.x) * 64u + lid.x;
  let t0 = wg.y * 4u;
  if (r >= p.rows) { return; }
  let wBase = r * p.cols;
  if (p.n == 1u) {
    var a0 = 0.0;
    var a1 = 0.0;
    var a2 = 0.0;
    var a3 = 0.0;
    var c = 0u;
    for (; c + 4u <= p.cols; c += 4u) {
      a0 += f32(w[wBase + c]) * x[c];
      a1 += f32(w[wBase + c + 1u]) * x[c + 1u];
      a2 += f32(w[wBase + c + 2u]) * x[c + 2u];
      a3 += f32(w[wBase + c + 3u]) * x[c + 3u];
    }
    for (; c < p.cols; c++) { a0 += f32(w[wBase + c]) * x[c]; }
    store(0u, r, (a0 + a1) + (a2 + a3));
    return;
  }
  let k = min(4u, p.n - t0); // inputs served by this invocation
  let x0 = t0 * p.cols;
  // Rows past the last input re-read the last one; their sums are not stored.
  let x1 = min(t0 + 1u, p.n - 1u) * p.cols;
  let x2 = min(t0 + 2u, p.n - 1u) * p.cols;
  let x3 = min(t0 + 3u, p.n - 1u) * p.cols;
  var s0 = 0.0;
  var s1 = 0.0;
  var s2 = 0.0;
  var s3 = 0.0;
  for (var c = 0u; c < p.cols; c++) {
    let wv = f32(w[wBase + c]);
    s0 += wv * x[x0 + c];
    s1 += wv * x[x1 + c];
    s2 += wv * x[x2 + c];
    s3 += wv * x[x3 + c];
  }
  store(t0, r, s0);
  if (k > 1u) { store(t0 + 1u, r, s1); }
  if (k > 2u) { store(t0 + 2u, r, s2); }
  if (k > 3u) { store(t0 + 3u, r, s3); }
}

@compute @workgroup_size(64)
fn gated(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = (wg.z * 65535u + wg.x) * 64u + lid.x;
  if (r >= p.rows) { return; }
  let base = r * p.cols;
  var g0 = 0.0;
  var g1 = 0.0;
  var u0 = 0.0;
  var u1 = 0.0;
  var c = 0u;
  for (; c + 2u <= p.cols; c += 2u) {
    let x0 = x[c];
    let x1 = x[c + 1u];
    g0 += f32(w[base + c]) * x0;
    g1 += f32(w[base + c + 1u]) * x1;
    u0 += f32(wUp[base + c]) * x0;
    u1 += f32(wUp[base + c + 1u]) * x1;
  }
  if (c < p.cols) {
    g0 += f32(w[base + c]) * x[c];
    u0 += f32(wUp[base + c]) * x[c];
  }
  let g = g0 + g1;
  var a = g / (1.0 + exp(-g)); // silu, as kernels/ffn.wgsl
  if (p.act == 1u) { a = g / (1.0 + exp(-1.5957691216057308 * (g + 0.044715 * g * g * g))); } // tanh-GELU
  out[p.outRow0 + r] = a * (u0 + u1);
}

/** The tiled kernel's weights (kernels/matmul-tiled.wgsl): 4 values of a row from column c, zeros past its end. */
fn tileLoad4(row: u32, c: u32) -> vec4f {
  var v = vec4f();
  for (var q = 0u; q < 4u; q++) {
    if (c + q < p.cols) { v[q] = f32(w[row * p.cols + c + q]); }
  }
  return v;
}

@compute @workgroup_size(64)
fn gated_norm(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  normInput(lid.x, wg.x == 0u && wg.z == 0u, normEps());
  let r = (wg.z * 65535u + wg.x) * 64u + lid.x;
  if (r >= p.rows) { return; }
  let base = r * p.cols;
  var g0 = 0.0;
  var g1 = 0.0;
  var u0 = 0.0;
  var u1 = 0.0;
  var c = 0u;
  for (; c + 2u <= p.cols; c += 2u) {
    let x0 = xn(c);
    let x1 = xn(c + 1u);
    g0 += f32(w[base + c]) * x0;
    g1 += f32(w[base + c + 1u]) * x1;
    u0 += f32(wUp[base + c]) * x0;
    u1 += f32(wUp[base + c + 1u]) * x1;
  }
  if (c < p.cols) {
    let x0 = xn(c);
    g0 += f32(w[base + c]) * x0;
    u0 += f32(wUp[base + c]) * x0;
  }
  let g = g0 + g1;
  var a = g / (1.0 + exp(-g)); // silu, as kernels/ffn.wgsl
  if (p.act == 1u) { a = g / (1.0 + exp(-1.5957691216057308 * (g + 0.044715 * g * g * g))); } // tanh-GELU
  out[p.outRow0 + r] = a * (u0 + u1);
}

/** Row r of matrix m (0: w, 1: wUp, 2: wV) times rmsnorm(x), in four partial sums as main's n = 1 branch. */
fn rowNorm(m: u32, r: u32) -> f32 {
  let wBase = r * p.cols;
  var a0 = 0.0;
  var a1 = 0.0;
  var a2 = 0.0;
  var a3 = 0.0;
  var c = 0u;
  for (; c + 4u <= p.cols; c += 4u) {
    var wv: vec4f;
    if (m == 0u) { wv = vec4f(f32(w[wBase + c]), f32(w[wBase + c + 1u]), f32(w[wBase + c + 2u]), f32(w[wBase + c + 3u])); }
    else if (m == 1u) { wv = vec4f(f32(wUp[wBase + c]), f32(wUp[wBase + c + 1u]), f32(wUp[wBase + c + 2u]), f32(wUp[wBase + c + 3u])); }
    else { wv = vec4f(f32(wV[wBase + c]), f32(wV[wBase + c + 1u]), f32(wV[wBase + c + 2u]), f32(wV[wBase + c + 3u])); }
    a0 += wv.x * xn(c);
    a1 += wv.y * xn(c + 1u);
    a2 += wv.z * xn(c + 2u);
    a3 += wv.w * xn(c + 3u);
  }
  for (; c < p.cols; c++) {
    var wc: f32;
    if (m == 0u) { wc = f32(w[wBase + c]); } else if (m == 1u) { wc = f32(wUp[wBase + c]); } else { wc = f32(wV[wBase + c]); }
    a0 += wc * xn(c);
  }
  return (a0 + a1) + (a2 + a3);
}

/** matmul-norm.wgsl's eps. */
fn normEps() -> f32 {
  return p.eps;
}
