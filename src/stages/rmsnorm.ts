// RMSNorm: y = x / sqrt(mean(x^2) + eps) * weight, for each of n rows of length dim.

export function rmsnorm(out: Float32Array, x: Float32Array, weight: Float32Array, dim: number, eps: number, n = 1): void {
  for (let t = 0; t < n; t++) {
    const base = t * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[base + i]! * x[base + i]!;
    const scale = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) out[base + i] = x[base + i]! * scale * weight[i]!;
  }
}
