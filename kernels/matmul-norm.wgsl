// RMSNorm fused ahead of a decode product (n = 1): the main_norm and gated_norm entry points of
// matmul.wgsl and matmul-quant.wgsl, which the backend completes with this file. They multiply W with
// rmsnorm(x) = x / sqrt(mean(x^2) + eps) * normW instead of x, saving the norm's own dispatch: every
// workgroup finds the same 1 / rms (the reduction of kernels/rmsnorm.wgsl, in the same order) and
// normalizes x as it reads it, (x * scale) * normW as rmsnorm.wgsl does, so the product equals
// rmsnorm then the product bit for bit; workgroup 0 also stores the normalized row in normOut, for the
// products and stages after this one that read it.
// Bindings (after the host file's 0..4): 5 normW [cols] f32 (read), 6 normOut [cols] f32 (written).
// The eps travels in the host's Params (matmul.wgsl: eps; matmul-quant.wgsl: scale).
// Precision: as rmsnorm.wgsl for the normalized values, then as the host file's product.
@group(0) @binding(5) var<storage, read> normW: array<f32>;
@group(0) @binding(6) var<storage, read_write> normOut: array<f32>;
var<workgroup> normPartial: array<f32, 64>;

/** 1 / rms of x (cols values, eps added to the mean); the first workgroup also writes rmsnorm(x) to normOut. Call from uniform control flow. */
fn normScale(lid: u32, first: bool, eps: f32) -> f32 {
  var s = 0.0;
  for (var i = lid; i < p.cols; i += 64u) { let v = x[i]; s += v * v; }
  normPartial[lid] = s;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { normPartial[lid] += normPartial[lid + stride]; }
    workgroupBarrier();
  }
  let scale = 1.0 / sqrt(normPartial[0] / f32(p.cols) + eps);
  if (first) { for (var i = lid; i < p.cols; i += 64u) { normOut[i] = x[i] * scale * normW[i]; } }
  return scale;
}

/** rmsnorm(x)[c] given normScale's scale. */
fn xn(c: u32, scale: f32) -> f32 {
  return x[c] * scale * normW[c];
}
fn xn4(c: u32, scale: f32) -> vec4f {
  return vec4f(xn(c, scale), xn(c + 1u, scale), xn(c + 2u, scale), xn(c + 3u, scale));
}
