// Rotary position embedding. For a head vector v and position pos, pair i of the first `ropeDims`
// elements is rotated by angle pos * theta^(-2i / ropeDims):
//   interleaved (GGUF `llama`, llama2.c): pairs are (v[2i], v[2i+1]);
//   neox (GPT-NeoX, Qwen2, Phi...):        pairs are (v[i], v[i + ropeDims/2]).
// Elements past ropeDims (partial rotary) are left as they are.

export type RopeStyle = 'interleaved' | 'neox';

export interface RopeParams {
  headDim: number;
  /** How many leading elements of each head rotate (even, <= headDim). */
  ropeDims: number;
  theta: number;
  style: RopeStyle;
}

/** Precomputed inverse frequencies theta^(-2i/ropeDims), i < ropeDims/2. */
export function ropeFrequencies(p: RopeParams): Float64Array {
  const half = p.ropeDims / 2;
  return Float64Array.from({ length: half }, (_, i) => Math.pow(p.theta, (-2 * i) / p.ropeDims));
}

/** Rotate nHeads consecutive head vectors of x (starting at `offset`) in place for position `pos`. */
export function rope(x: Float32Array, offset: number, nHeads: number, pos: number, p: RopeParams, freqs: Float64Array = ropeFrequencies(p)): void {
  const half = p.ropeDims / 2;
  for (let h = 0; h < nHeads; h++) {
    const base = offset + h * p.headDim;
    for (let i = 0; i < half; i++) {
      const angle = pos * freqs[i]!;
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      const a = p.style === 'interleaved' ? base + 2 * i : base + i;
      const b = p.style === 'interleaved' ? a + 1 : a + half;
      const x0 = x[a]!;
      const x1 = x[b]!;
      x[a] = x0 * cos - x1 * sin;
      x[b] = x0 * sin + x1 * cos;
    }
  }
}
