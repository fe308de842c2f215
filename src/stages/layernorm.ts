// LayerNorm: y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias, for each of n rows of length dim
// (GPT-2, BERT, Phi and friends; Llama uses RMSNorm, rmsnorm.ts). Sums in float64.
// NoNorm (MobileBERT's "normalization" without statistics): y = x * weight + bias, per element.

/** NoNorm: out = x * weight + bias over n rows of dim (out may be x); one rounding per element (fused in float64). */
export function affine(out: Float32Array, x: Float32Array, weight: Float32Array, bias: Float32Array, dim: number, n = 1): void {
  for (let t = 0; t < n; t++) for (let i = 0; i < dim; i++) out[t * dim + i] = x[t * dim + i]! * weight[i]! + bias[i]!;
}

export function layernorm(out: Float32Array, x: Float32Array, weight: Float32Array, bias: Float32Array | undefined, dim: number, eps: number, n = 1): void {
  for (let t = 0; t < n; t++) {
    const base = t * dim;
    let sum = 0;
    for (let i = 0; i < dim; i++) sum += x[base + i]!;
    const mean = sum / dim;
    let sq = 0;
    for (let i = 0; i < dim; i++) sq += (x[base + i]! - mean) ** 2;
    const scale = 1 / Math.sqrt(sq / dim + eps);
    for (let i = 0; i < dim; i++) out[base + i] = (x[base + i]! - mean) * scale * weight[i]! + (bias ? bias[i]! : 0);
  }
}
