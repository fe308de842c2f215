// Matrix products for n inputs: out[t][outRow0 + r] (+)= sum_c W[r][c] * x[t][c], W row-major
// [rows][cols] (a whole matrix, or one row block of a matrix split to fit maxStorageBufferBindingSize).
// With accumulate = 1 the product is added to what out holds (the residual add, fused), after the
// p.outParts rows of per-head products at binding 8 when decoding (matmul-norm.wgsl's parts; 0: none).
// Bindings: 0 uniform Params, 1 W `Weight` (read), 2 x [n][cols] f32 (read), 3 out [n][outRows] f32
//   (read/write), 8 parts (matmul-norm.wgsl's; main, tiled and the _norm entry points). W (and Wup, Wv) and x are bound as arrays of vec4s over the same values, so that rows
//   starting at a multiple of 4 (cols % 4 == 0: every real model) are read a vec4 at a time: on lavapipe
//   each load an invocation makes costs several vector instructions, and a vec4 load about what one
//   f32 does (decode 1.2-1.5x faster). Rows of other widths are read an element at a time (w1, xAt).
// Weight type: f32 as written; the f16 variant (shader-f16) is this file with `Weight = f16` and
//   `enable f16;` prepended, made by src/backend-webgpu.ts. f16 widens to f32 exactly.
// Entry points:
//   main  (decode and n <= 4): 64 invocations, one output row each, reading the row front to back;
//         each serves up to four inputs (grid y = input group of 4). No barriers. Grid
//         (min(ceil(rows/64), 65535), ceil(n/4), ceil(ceil(rows/64)/65535)). n = 1 takes its own
//         branch (dotW).
//   gated (decode FFN, n = 1): out[outRow0 + r] = act(W[r] . x) * (Wup[r] . x), act silu (act = 0,
//         SwiGLU) or tanh-GELU (act = 1, GeGLU): the gate and up projections and the activation in
//         one pass (binding 4 is Wup, same shape and type as W); one row per invocation, four partial
//         sums per product. Grid as main's.
//   tiled (prefill, n > 4): in kernels/matmul-tiled.wgsl, which the backend appends to this file;
//         it reads weights through tileLoad4 below.
//   gated_norm (n = 1): gated's product of rmsnorm(x) (eps in Params), with kernels/matmul-norm.wgsl
//         (appended by the backend; bindings 5, 6), which also holds main_norm and qkv_norm over this
//         file's rowNorm (Wk at binding 4, Wv at 7). Same arithmetic as main and gated. gated_norm
//         binds Wv too (unread): rowNorm4 names all three matrices.
// Precision: f32. main and gated: four partial sums per product (lane q sums the columns c = q mod 4),
//   gated then the activation and the product as in ffn.wgsl; tiled: one running sum per output.
//   Either way error <= (cols + 1) * 2^-24 * sum|w x|, plus one rounding of the sum with the old value
//   when accumulating.
alias Weight = f32;
struct Params { rows: u32, cols: u32, n: u32, accumulate: u32, outRows: u32, outRow0: u32, eps: f32, act: u32, xParts: u32, outParts: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<vec4<Weight>>;
@group(0) @binding(2) var<storage, read> x: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> wUp: array<vec4<Weight>>; // gated only (and Wk of qkv_norm)
@group(0) @binding(7) var<storage, read> wV: array<vec4<Weight>>; // qkv_norm only

// Rows of W as vec4s: a row r starts at element r * cols, a vec4 boundary when cols % 4 == 0, and
// the loops over a row below take one vec4 a step then (the branch is uniform); other widths take one
// element a step into lane c % 4, so that both add the same terms in the same order (lane q sums the
// columns c = q mod 4, front to back). Element e of a matrix: w1, up1, v1 (apart per binding: an entry
// point may use only the bindings its layout has).
fn w1(e: u32) -> f32 { return f32(w[e / 4u][e % 4u]); }
fn up1(e: u32) -> f32 { return f32(wUp[e / 4u][e % 4u]); }
fn v1(e: u32) -> f32 { return f32(wV[e / 4u][e % 4u]); }

/** W's row from element `base` times x (n = 1), as four partial sums. */
fn dotW(base: u32) -> vec4f {
  var a = vec4f();
  if (p.cols % 4u == 0u) {
    for (var c = 0u; c < p.cols; c += 4u) { a += vec4f(w[(base + c) / 4u]) * x4(c); }
  } else {
    for (var c = 0u; c < p.cols; c++) { a[c % 4u] += w1(base + c) * xAt(c); }
  }
  return a;
}
/** Wup's row from element `base` times x, as dotW. */
fn dotUp(base: u32) -> vec4f {
  var a = vec4f();
  if (p.cols % 4u == 0u) {
    for (var c = 0u; c < p.cols; c += 4u) { a += vec4f(wUp[(base + c) / 4u]) * x4(c); }
  } else {
    for (var c = 0u; c < p.cols; c++) { a[c % 4u] += up1(base + c) * xAt(c); }
  }
  return a;
}
/** x's elements i .. i+3, i a multiple of 4. */
fn x4(i: u32) -> vec4f {
  return x[i / 4u];
}
/** Element i of x (also for matmul-tiled.wgsl and matmul-norm.wgsl). */
fn xAt(i: u32) -> f32 {
  return x[i / 4u][i % 4u];
}
fn sum4(a: vec4f) -> f32 {
  return (a.x + a.y) + (a.z + a.w);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = (wg.z * 65535u + wg.x) * 64u + lid.x;
  let t0 = wg.y * 4u;
  if (r >= p.rows) { return; }
  let wBase = r * p.cols;
  if (p.n == 1u) {
    store(0u, r, sum4(dotW(wBase)));
    return;
  }
  let k = min(4u, p.n - t0); // inputs served by this invocation
  let x0 = t0 * p.cols;
  // Rows past the last input re-read the last one; their sums are not stored.
  let x1 = min(t0 + 1u, p.n - 1u) * p.cols;
  let x2 = min(t0 + 2u, p.n - 1u) * p.cols;
  let x3 = min(t0 + 3u, p.n - 1u) * p.cols;
  var s0 = vec4f();
  var s1 = vec4f();
  var s2 = vec4f();
  var s3 = vec4f();
  if (p.cols % 4u == 0u) {
    for (var c = 0u; c < p.cols; c += 4u) {
      let wv = vec4f(w[(wBase + c) / 4u]);
      s0 += wv * x4(x0 + c);
      s1 += wv * x4(x1 + c);
      s2 += wv * x4(x2 + c);
      s3 += wv * x4(x3 + c);
    }
  } else {
    for (var c = 0u; c < p.cols; c++) {
      let wv = w1(wBase + c);
      let q = c % 4u;
      s0[q] += wv * xAt(x0 + c);
      s1[q] += wv * xAt(x1 + c);
      s2[q] += wv * xAt(x2 + c);
      s3[q] += wv * xAt(x3 + c);
    }
  }
  store(t0, r, sum4(s0));
  if (k > 1u) { store(t0 + 1u, r, sum4(s1)); }
  if (k > 2u) { store(t0 + 2u, r, sum4(s2)); }
  if (k > 3u) { store(t0 + 3u, r, sum4(s3)); }
}

@compute @workgroup_size(64)
fn gated(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = (wg.z * 65535u + wg.x) * 64u + lid.x;
  if (r >= p.rows) { return; }
  let base = r * p.cols;
  out[p.outRow0 + r] = gateAct(sum4(dotW(base)), p.act) * sum4(dotUp(base));
}

/** The tiled kernel's weights (kernels/matmul-tiled.wgsl): 4 values of a row from column c, zeros past its end. */
fn tileLoad4(row: u32, c: u32) -> vec4f {
  let e = row * p.cols + c;
  if (p.cols % 4u == 0u) { return vec4f(w[e / 4u]); } // (then c + 4 <= cols too: c is a multiple of 4)
  var v = vec4f();
  for (var q = 0u; q < 4u && c + q < p.cols; q++) { v[q] = w1(e + q); }
  return v;
}

@compute @workgroup_size(64)
fn gated_norm(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  normInput(lid.x, wg.x == 0u && wg.z == 0u, normEps());
  let r = (wg.z * 65535u + wg.x) * 64u + lid.x;
  if (r >= p.rows) { return; }
  let base = r * p.cols;
  out[p.outRow0 + r] = gateAct(sum4(rowNorm4(0u, base)), p.act) * sum4(rowNorm4(1u, base));
}

/** Row r of matrix m (0: w, 1: wUp, 2: wV) times rmsnorm(x), in four partial sums as main's n = 1 branch. */
fn rowNorm(m: u32, r: u32) -> f32 {
  return sum4(rowNorm4(m, r * p.cols));
}
/** The row of matrix m from element `base` times rmsnorm(x) (normInput's xs), as four partial sums as dotW. */
fn rowNorm4(m: u32, base: u32) -> vec4f {
  var a = vec4f();
  if (p.cols % 4u == 0u) {
    for (var c = 0u; c < p.cols; c += 4u) {
      let i = (base + c) / 4u;
      var wv: vec4f;
      if (m == 0u) { wv = vec4f(w[i]); } else if (m == 1u) { wv = vec4f(wUp[i]); } else { wv = vec4f(wV[i]); }
      a += wv * xn4(c);
    }
  } else {
    for (var c = 0u; c < p.cols; c++) {
      let e = base + c;
      var wc: f32;
      if (m == 0u) { wc = w1(e); } else if (m == 1u) { wc = up1(e); } else { wc = v1(e); }
      a[c % 4u] += wc * xn(c);
    }
  }
  return a;
}

/** matmul-norm.wgsl's eps. */
fn normEps() -> f32 {
  return p.eps;
}
