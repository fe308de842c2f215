// Causal multi-head attention over a KV cache, with grouped-query attention (GQA/MQA):
// query head h reads key/value head floor(h / (nHeads / nKvHeads)).
//
// For the n new tokens at positions start .. start+n-1 (their keys and values already written to the
// cache), for each query head:  out = softmax(q . K[0..pos]^T / sqrt(headDim)) . V[0..pos].
// Cache layout for one layer: [contextLength][nKvHeads * headDim], keys and values in separate arrays.

import { softmax } from './softmax.js';

export interface AttentionShape {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
}

/**
 * q: [n][nHeads*headDim]; kCache, vCache: [ctx][nKvHeads*headDim] for one layer;
 * out: [n][nHeads*headDim]; scores: scratch of at least start+n floats.
 */
export function attention(out: Float32Array, q: Float32Array, kCache: Float32Array, vCache: Float32Array, n: number, start: number, s: AttentionShape, scores: Float64Array, headStart = 0, headEnd = s.nHeads): void {
  const { nHeads, nKvHeads, headDim } = s;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const group = nHeads / nKvHeads;
  const scale = 1 / Math.sqrt(headDim);
  const acc = new Float64Array(headDim);
  for (let t = 0; t < n; t++) {
    const pos = start + t; // this token sees positions 0..pos
    for (let h = headStart; h < headEnd; h++) {
      const qOff = t * qDim + h * headDim;
      const kvOff = Math.floor(h / group) * headDim;
      for (let p = 0; p <= pos; p++) scores[p] = dot(q, qOff, kCache, p * kvDim + kvOff, headDim) * scale;
      softmax(scores, 0, pos + 1);
      acc.fill(0);
      for (let p = 0; p <= pos; p++) axpy(acc, scores[p]!, vCache, p * kvDim + kvOff, headDim);
      out.set(acc, t * qDim + h * headDim);
    }
  }
}

/** a[ao..ao+n) . b[bo..bo+n), float64 accumulation in four independent sums. */
function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, n: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[ao + i]! * b[bo + i]!;
    s1 += a[ao + i + 1]! * b[bo + i + 1]!;
    s2 += a[ao + i + 2]! * b[bo + i + 2]!;
    s3 += a[ao + i + 3]! * b[bo + i + 3]!;
  }
  for (; i < n; i++) s0 += a[ao + i]! * b[bo + i]!;
  return s0 + s1 + s2 + s3;
}

/** acc += alpha * v[vo..vo+n). */
function axpy(acc: Float64Array, alpha: number, v: Float32Array, vo: number, n: number): void {
  for (let i = 0; i < n; i++) acc[i] = acc[i]! + alpha * v[vo + i]!;
}
