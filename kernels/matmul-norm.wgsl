// RMSNorm fused ahead of a decode product (n = 1): the main_norm, gated_norm and qkv_norm entry points
// of matmul.wgsl and matmul-quant.wgsl, which the backend completes with this file. They multiply W
// with rmsnorm(x) = x / sqrt(mean(x^2) + eps) * normW instead of x, saving the norm's own dispatch:
// every workgroup finds the same 1 / rms (the reduction of kernels/rmsnorm.wgsl, in the same order),
// writes the normalized row, (x * scale) * normW as rmsnorm.wgsl does, to workgroup memory and reads
// it from there; so the product equals rmsnorm then the product bit for bit. Workgroup 0 also stores
// the normalized row in normOut, for the products and stages after this one that read it.
// Bindings (after the host file's 0..4): 5 normW [cols] f32 (read), 6 normOut [cols] f32 (written).
// The eps travels in the host's Params (matmul.wgsl: eps; matmul-quant.wgsl: scale). cols <= NORM_COLS
// (the backend runs the norm apart for wider rows).
// Precision: as rmsnorm.wgsl for the normalized values, then as the host file's product.
@group(0) @binding(5) var<storage, read> normW: array<f32>;
@group(0) @binding(6) var<storage, read_write> normOut: array<f32>;
const NORM_COLS = 4096u; // 16 KiB of workgroup memory: WebGPU's default limit
var<workgroup> xs: array<f32, 4096>;

/** rmsnorm(x) into xs (and, from the first workgroup, normOut). Call from uniform control flow. */
fn normInput(lid: u32, first: bool, eps: f32) {
  var s = 0.0;
  for (var i = lid; i < p.cols; i += 64u) { let v = x[i]; s += v * v; }
  xs[lid] = s;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { xs[lid] += xs[lid + stride]; }
    workgroupBarrier();
  }
  let scale = 1.0 / sqrt(xs[0] / f32(p.cols) + eps);
  workgroupBarrier(); // (every invocation has read the sum before xs is overwritten)
  for (var i = lid; i < p.cols; i += 64u) {
    let v = x[i] * scale * normW[i];
    xs[i] = v;
    if (first) { normOut[i] = v; }
  }
  workgroupBarrier();
}

/** rmsnorm(x)[c], after normInput. */
fn xn(c: u32) -> f32 {
  return xs[c];
}
fn xn4(c: u32) -> vec4f {
  return vec4f(xs[c], xs[c + 1u], xs[c + 2u], xs[c + 3u]);
}
