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
      for (let p = 0; p <= pos; p++) {
        const kOff = p * kvDim + kvOff;
        let dot = 0;
        for (let i = 0; i < headDim; i++) dot += q[qOff + i]! * kCache[kOff + i]!;
        scores[p] = dot * scale;
      }
      softmax(scores, 0, pos + 1);
      acc.fill(0);
      for (let p = 0; p <= pos; p++) {
        const a = scores[p]!;
        const vOff = p * kvDim + kvOff;
        for (let i = 0; i < headDim; i++) acc[i] = acc[i]! + a * vCache[vOff + i]!;
      }
      out.set(acc, t * qDim + h * headDim);
    }
  }
}
