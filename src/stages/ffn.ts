// Feed-forward activations (the surrounding products W1 x, W3 x, W2 a are matmuls):
//   silu(x) = x / (1 + e^-x)                          SwiGLU's gate (Llama, Qwen, Phi-3, Mistral)
//   gelu(x), tanh approximation: 0.5 x (1 + tanh(z)), z = sqrt(2/pi) (x + 0.044715 x^3), computed as
//       x / (1 + e^(-2z)), the same value without tanh's overflow-prone formula (GPT-2, Phi-2, Gemma)
//   gelu_erf(x) = 0.5 x (1 + erf(x / sqrt 2)), exact GELU (GPT-NeoX / Pythia, BERT)
//   relu(x) = max(x, 0)                               (OPT)
// Gated FFNs multiply the activated gate by the up projection: SwiGLU (silu) and GeGLU (gelu).
// softcap(x) = c tanh(x / c) bounds logits smoothly (Gemma 2's final logits).

/** Activations of a plain (ungated) FFN's hidden layer. */
export type Activation = 'gelu' | 'gelu_erf' | 'relu';
/** Activations of a gated FFN's gate. */
export type GateActivation = 'silu' | 'gelu';

export const GELU_K = Math.sqrt(2 / Math.PI);

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

export function geluTanh(x: number): number {
  return x / (1 + Math.exp(-2 * GELU_K * (x + 0.044715 * x * x * x)));
}

/**
 * Exact GELU, written with erfc so that the negative tail (where 1 + erf(x) cancels) keeps its
 * precision. erfc from Numerical Recipes' Chebyshev fit (fractional error below 1.2e-7 everywhere, one
 * exp: 10x faster than the series below, which an encoder's FFN pays for every element); the result
 * is stored in f32 (2^-24 = 6e-8), so this is within 2 f32 roundings of the exact value.
 */
export function geluErf(x: number): number {
  const z = x / Math.SQRT2;
  return z >= 0 ? 0.5 * x * (2 - erfcFast(z)) : 0.5 * x * erfcFast(-z);
}

/** erfc(a) for a >= 0 to a fractional error below 1.2e-7 (Numerical Recipes' erfcc; kernels/ffn.wgsl's erf too). */
export function erfcFast(a: number): number {
  const t = 1 / (1 + 0.5 * a);
  const poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return t * Math.exp(-a * a + poly);
}

/** erf in float64 to about 1e-15 (see erfc). */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  return x >= 0 ? 1 - erfc(x) : erfc(-x) - 1;
}

/**
 * erfc(a) = 1 - erf(a) for a >= 0, in float64 to about 1e-15 relative: below 2.5 from erf's Maclaurin
 * series (its terms shrink from the 7th on; the largest is about 20, so cancellation costs about 5e-15,
 * and erfc(2.5) = 4e-4 keeps the subtraction well conditioned); above, erfc's continued fraction
 * (Lentz's method), which converges quickly there; 0 beyond 27 (erfc underflows).
 */
export function erfc(a: number): number {
  if (a < 2.5) {
    // erf(a) = 2/sqrt(pi) sum_n (-1)^n a^(2n+1) / (n! (2n+1))
    let term = a, sum = a;
    for (let n = 1; n < 80; n++) {
      term *= (-a * a) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return 1 - sum * (2 / Math.sqrt(Math.PI));
  }
  if (a > 27) return 0;
  // erfc(a) = exp(-a^2)/sqrt(pi) / (a + (1/2)/(a + 1/(a + (3/2)/(a + 2/(a + ...)))))
  const tiny = 1e-300;
  let f = a, c = a, d = 0;
  for (let k = 1; k < 300; k++) {
    const ak = k / 2;
    d = a + ak * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = a + ak / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
}

const ACTIVATIONS: Record<Activation, (x: number) => number> = {
  gelu: geluTanh,
  gelu_erf: geluErf,
  relu: (x) => (x > 0 ? x : 0),
};

/** x = act(x) over the first n elements. */
export function activate(x: Float32Array, act: Activation, n = x.length): void {
  const f = ACTIVATIONS[act];
  for (let i = 0; i < n; i++) x[i] = f(x[i]!);
}

/** gate = act(gate) * up over the first n elements (SwiGLU with silu, GeGLU with gelu). */
export function gated(gate: Float32Array, up: Float32Array, act: GateActivation = 'silu', n = gate.length): void {
  const f = act === 'silu' ? silu : geluTanh;
  for (let i = 0; i < n; i++) gate[i] = f(gate[i]!) * up[i]!;
}

/** SwiGLU: gate = silu(gate) * up. */
export function swiglu(gate: Float32Array, up: Float32Array, n = gate.length): void {
  gated(gate, up, 'silu', n);
}

/** GELU, tanh approximation, in place. */
export function gelu(x: Float32Array, n = x.length): void {
  activate(x, 'gelu', n);
}

/** x = cap * tanh(x / cap) over the first n elements. */
export function softcap(x: Float32Array, cap: number, n = x.length): void {
  for (let i = 0; i < n; i++) x[i] = cap * Math.tanh(x[i]! / cap);
}
