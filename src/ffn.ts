// Feed-forward activations. SwiGLU: gate[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + e^-x).
// The surrounding products (gate = W1 x, up = W3 x, out = W2 gate) are matmuls in model.ts.

export function swiglu(gate: Float32Array, up: Float32Array, n = gate.length): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]!;
    gate[i] = (g / (1 + Math.exp(-g))) * up[i]!;
  }
}
