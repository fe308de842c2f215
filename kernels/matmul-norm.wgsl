// RMSNorm fused ahead of a decode product (n = 1), for matmul.wgsl and matmul-quant.wgsl, which the
// backend completes with this file: their gated_norm entry points, and main_norm and qkv_norm below
// over the host's rowNorm(m, r) (row r of matrix m, 0: w, 1: wUp, 2: wV, times xn), normEps() and xAt(i). They multiply W
// with rmsnorm(x) = x / sqrt(mean(x^2) + eps) * normW instead of x, saving the norm's own dispatch:
// every workgroup finds the same 1 / rms (the reduction of kernels/rmsnorm.wgsl, in the same order),
// writes the normalized row, (x * scale) * normW as rmsnorm.wgsl does, to workgroup memory and reads
// it from there; so the product equals rmsnorm then the product bit for bit. Workgroup 0 also stores
// the normalized row in normOut, for the products and stages after this one that read it.
// Bindings (after the host file's 0..4): 5 normW [cols] f32 (read), 6 normOut [cols] f32 (written),
// 8 parts [count][cols] f32 (read): per-head products of attention-out.wgsl not yet added to x. The
// input normalized is then x + parts[0] + parts[1] + ... (added in that order, as add.wgsl's `parts`
// adds them), and store() (matmul-tiled.wgsl) adds them with an accumulated product the same way: the
// residual x += Wo attention, folded into the two passes after it. Counts: p.xParts rows for the norm's
// input, p.outParts for an accumulated output (0: none; binding 8 is then a placeholder).
// The eps travels in the host's Params (matmul.wgsl: eps; matmul-quant.wgsl: scale). cols <= NORM_COLS
// (the backend runs the norm apart for wider rows).
// Entry points (grid as the host's main: a row per invocation):
//   main_norm  out rows (+)= W rmsnorm(x), as main's n = 1 branch (binds qkv_norm's layout; 4, 7 unread).
//   qkv_norm   attention's three projections in one pass: out = [Wq | Wk | Wv] rmsnorm(x), Wq at binding 1
//              (outRows rows), Wk at 4 and Wv at 7 (act rows each), alike in type and format; rows =
//              outRows + act: q and k only (a V of another format, Q4_K_M's Q6_K, goes through main_norm
//              into the same buffer).
// Precision: as rmsnorm.wgsl for the normalized values, then as the host file's product.
// Also gateAct (at the end): the activation of both hosts' gated and gated_norm entry points.
@group(0) @binding(5) var<storage, read> normW: array<f32>;
@group(0) @binding(6) var<storage, read_write> normOut: array<f32>;
@group(0) @binding(8) var<storage, read> parts: array<f32>;
const NORM_COLS = 4096u; // 16 KiB of workgroup memory: WebGPU's default limit
var<workgroup> xs: array<vec4f, 1024>; // the normalized row, as vec4s (then the reduction's 64 sums in xs[0..15])

/** base + element i of each of the first `count` rows of `stride` in parts, in order. */
fn withParts(i: u32, base: f32, stride: u32, count: u32) -> f32 {
  var s = base;
  for (var h = 0u; h < count; h++) { s += parts[h * stride + i]; }
  return s;
}
/** Element i of the input the norm reads: x, plus the parts still to add to it. */
fn xIn(i: u32) -> f32 {
  return withParts(i, xAt(i), p.cols, p.xParts);
}

/** rmsnorm(x) into xs (and, from the first workgroup, normOut). Call from uniform control flow. */
fn normInput(lid: u32, first: bool, eps: f32) {
  var s = 0.0;
  if (p.xParts == 0u) {
    for (var i = lid; i < p.cols; i += 64u) { let v = xAt(i); s += v * v; } // (the same sums, without the parts' loop)
  } else {
    for (var i = lid; i < p.cols; i += 64u) { let v = xIn(i); s += v * v; }
  }
  xs[lid / 4u][lid % 4u] = s;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { xs[lid / 4u][lid % 4u] += xs[(lid + stride) / 4u][(lid + stride) % 4u]; }
    workgroupBarrier();
  }
  let scale = 1.0 / sqrt(xs[0].x / f32(p.cols) + eps);
  workgroupBarrier(); // (every invocation has read the sum before xs is overwritten)
  for (var i = lid; i < p.cols; i += 64u) {
    var v: f32;
    if (p.xParts == 0u) { v = xAt(i); } else { v = xIn(i); }
    v = v * scale * normW[i];
    xs[i / 4u][i % 4u] = v;
    if (first) { normOut[i] = v; }
  }
  workgroupBarrier();
}

/** rmsnorm(x)[c], after normInput. */
fn xn(c: u32) -> f32 {
  return xs[c / 4u][c % 4u];
}
/** rmsnorm(x)[c .. c+3], for c a multiple of 4 with c + 4 <= cols. */
fn xn4(c: u32) -> vec4f {
  return xs[c / 4u];
}

@compute @workgroup_size(64)
fn main_norm(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  normInput(lid.x, wg.x == 0u && wg.z == 0u, normEps());
  let r = (wg.z * 65535u + wg.x) * 64u + lid.x;
  if (r >= p.rows) { return; }
  store(0u, r, rowNorm(0u, r));
}

@compute @workgroup_size(64)
fn qkv_norm(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  normInput(lid.x, wg.x == 0u && wg.z == 0u, normEps());
  let r = (wg.z * 65535u + wg.x) * 64u + lid.x;
  let kv0 = p.outRows;
  let v0 = kv0 + p.act;
  if (r >= p.rows) { return; }
  if (r < kv0) { out[r] = rowNorm(0u, r); }
  else if (r < v0) { out[r] = rowNorm(1u, r - kv0); }
  else { out[r] = rowNorm(2u, r - v0); }
}

/** The gated FFN's activation of the gate, as kernels/ffn.wgsl computes it: silu (act 0) or tanh-GELU (act 1); both hosts' gated entry points. */
fn gateAct(g: f32, act: u32) -> f32 {
  if (act == 1u) { return g / (1.0 + exp(-1.5957691216057308 * (g + 0.044715 * g * g * g))); }
  return g / (1.0 + exp(-g));
}
