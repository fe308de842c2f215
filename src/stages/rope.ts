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
  rotate(x, offset, nHeads, p, ropeAngles(p, pos, 1, freqs), 0);
}

/**
 * The rotations of positions start..start + n - 1: [n][ropeDims / 2][cos, sin] (times attnFactor), in
 * float64, so that the heads of every layer at those positions share one computation of the
 * trigonometry (ropeRows; the CPU backend keeps the last one).
 */
export function ropeAngles(p: RopeParams, start: number, n: number, freqs: Float64Array = ropeFrequencies(p)): Float64Array {
  const half = p.ropeDims / 2;
  const m = p.attnFactor ?? 1;
  const out = new Float64Array(n * half * 2);
  for (let t = 0; t < n; t++)
    for (let i = 0; i < half; i++) {
      const angle = (start + t) * freqs[i]!;
      out[(t * half + i) * 2] = m * Math.cos(angle);
      out[(t * half + i) * 2 + 1] = m * Math.sin(angle);
    }
  return out;
}

/** rope() of rows row0.. of x (nHeads heads each), row row0 + t at the angles' position t (ropeAngles), for t < n. */
export function ropeRows(x: Float32Array, nHeads: number, n: number, p: RopeParams, angles: Float64Array, row0 = 0): void {
  for (let t = 0; t < n; t++) rotate(x, (row0 + t) * nHeads * p.headDim, nHeads, p, angles, t);
}

/** Rotate nHeads head vectors at x[offset..] by the angles' row t. */
function rotate(x: Float32Array, offset: number, nHeads: number, p: RopeParams, angles: Float64Array, t: number): void {
  const half = p.ropeDims / 2;
  for (let i = 0; i < half; i++) {
    const cos = angles[(t * half + i) * 2]!;
    const sin = angles[(t * half + i) * 2 + 1]!;
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
