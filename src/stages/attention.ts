// Multi-head attention over a KV cache, causal (decoders) or bidirectional (encoders), with
// grouped-query attention (GQA/MQA): query head h reads key/value head floor(h / (nHeads / nKvHeads)).
//
// For the n new tokens at positions start .. start+n-1 (their keys and values already written to the
// cache), for each query head:
//   s[p] = softcap(q . K[p] * scale)  for the positions p it sees,   out = softmax(s) . V
// where it sees p <= pos (causal) and, with a sliding window W, only pos - p < W (Mistral, Gemma 2/3's
// local layers); a bidirectional step (BERT and the other encoders) sees every p < start + n; scale defaults to 1/sqrt(headDim) (Gemma 2 uses 1/sqrt(query_pre_attn_scalar)), and
// softcap(s) = c tanh(s / c) when a cap c is set (Gemma 2's attention logit soft-capping).
// Cache layout for one layer: [contextLength][nKvHeads * headDim], keys and values in separate arrays.

import { softmax } from './softmax.js';

export interface AttentionShape {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** Multiplies q . k. Default 1/sqrt(headDim). */
  scale?: number;
  /** Soft-cap of the scaled scores: c tanh(s / c). Default none. */
  softcap?: number;
  /** Sliding window: a query at position pos sees keys at pos - window < p <= pos. Default: all. Causal only. */
  window?: number;
  /** false: every query of the step sees every position written so far, [0, start + n) (encoders). Default true. */
  causal?: boolean;
}

/** One past the last cache position query row t of an n-row step at `start` sees. */
export function visibleEnd(s: AttentionShape, start: number, n: number, t: number): number {
  return s.causal === false ? start + n : start + t + 1;
}

/** The first cache position a query at `pos` sees. */
export function firstVisible(pos: number, window?: number): number {
  return window ? Math.max(0, pos - window + 1) : 0;
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
  const scale = s.scale ?? 1 / Math.sqrt(headDim);
  const cap = s.softcap;
  const acc = new Float64Array(headDim);
  for (let t = 0; t < n; t++) {
    const end = visibleEnd(s, start, n, t); // this token sees positions first..end-1
    const first = s.causal === false ? 0 : firstVisible(start + t, s.window);
    const len = end - first;
    for (let h = headStart; h < headEnd; h++) {
      const qOff = t * qDim + h * headDim;
      const kvOff = Math.floor(h / group) * headDim;
      for (let p = first; p < end; p++) {
        const z = dot(q, qOff, kCache, p * kvDim + kvOff, headDim) * scale;
        scores[p - first] = cap ? cap * Math.tanh(z / cap) : z;
      }
      softmax(scores, 0, len);
      acc.fill(0);
      for (let p = first; p < end; p++) axpy(acc, scores[p - first]!, vCache, p * kvDim + kvOff, headDim);
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
