// Feed-forward activations. SwiGLU (Llama): gate[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + e^-x).
// GELU (GPT-2, BERT, Gemma), tanh approximation: gelu(x) = 0.5 x (1 + tanh(z)), z = sqrt(2/pi) (x + 0.044715 x^3),
// computed as x / (1 + e^(-2z)), the same value without tanh's overflow-prone formula.
// The surrounding products (gate = W1 x, up = W3 x, out = W2 gate) are matmuls in model.ts.

export function swiglu(gate: Float32Array, up: Float32Array, n = gate.length): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]!;
    gate[i] = (g / (1 + Math.exp(-g))) * up[i]!;
  }
}

export const GELU_K = Math.sqrt(2 / Math.PI);

export function gelu(x: Float32Array, n = x.length): void {
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    x[i] = v / (1 + Math.exp(-2 * GELU_K * (v + 0.044715 * v * v * v)));
  }
}
