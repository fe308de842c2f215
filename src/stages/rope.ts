// Rotary position embedding. For a head vector v and position pos, pair i of the first `ropeDims`
// elements is rotated by angle pos * freq[i], freq[i] = freqScale * theta^(-2i / ropeDims) / factors[i]:
//   interleaved (GGUF `llama`, llama2.c): pairs are (v[2i], v[2i+1]);
//   neox (GPT-NeoX, Qwen2, Phi, Gemma...): pairs are (v[i], v[i + ropeDims/2]).
// Elements past ropeDims (partial rotary) are left as they are. Frequency scaling, as llama.cpp's
// ggml_rope_ext without YaRN: `freqScale` (linear scaling: 1 / factor), per-pair `factors` (Llama 3's
// rope_freqs, Phi-3's long/short factors), and `attnFactor` multiplying cos and sin (Phi-3 longrope).

export type RopeStyle = 'interleaved' | 'neox';

export interface RopeParams {
  headDim: number;
  /** How many leading elements of each head rotate (even, <= headDim). */
  ropeDims: number;
  theta: number;
  style: RopeStyle;
  /** Linear position scaling: every frequency is multiplied by this (1 / the scaling factor). Default 1. */
  freqScale?: number;
  /** Per-pair frequency divisors, ropeDims/2 of them (Llama 3's rope_freqs.weight, Phi-3's rope factors). */
  factors?: Float32Array;
  /** cos and sin are multiplied by this (Phi-3's longrope attention factor). Default 1. */
  attnFactor?: number;
}

/** The rotation frequencies freq[i], i < ropeDims/2, in float64. */
export function ropeFrequencies(p: RopeParams): Float64Array {
  const half = p.ropeDims / 2;
  const scale = p.freqScale ?? 1;
  return Float64Array.from({ length: half }, (_, i) => (scale * Math.pow(p.theta, (-2 * i) / p.ropeDims)) / (p.factors ? p.factors[i]! : 1));
}

/** Rotate nHeads consecutive head vectors of x (starting at `offset`) in place for position `pos`. */
export function rope(x: Float32Array, offset: number, nHeads: number, pos: number, p: RopeParams, freqs: Float64Array = ropeFrequencies(p)): void {
  const half = p.ropeDims / 2;
  const m = p.attnFactor ?? 1;
  // (one cos and sin per pair index, shared by every head: the trigonometry was most of the cost)
  for (let i = 0; i < half; i++) {
    const angle = pos * freqs[i]!;
    const cos = m * Math.cos(angle);
    const sin = m * Math.sin(angle);
    for (let h = 0; h < nHeads; h++) {
      const a = offset + h * p.headDim + (p.style === 'interleaved' ? 2 * i : i);
      const b = p.style === 'interleaved' ? a + 1 : a + half;
      const x0 = x[a]!;
      const x1 = x[b]!;
      x[a] = x0 * cos - x1 * sin;
      x[b] = x0 * sin + x1 * cos;
    }
  }
}
