import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { gelu, swiglu } from '../src/stages/ffn.js';
import { smallFloat } from './helpers.js';

// Each output is computed in float64 and rounded once to f32: within 2^-24 relative (1e-6 with margin).
describe('swiglu', () => {
  it('gate = silu(gate) * up, elementwise, as in float64', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(smallFloat(fc, 20), smallFloat(fc, 20)), { minLength: 1, maxLength: 200 }), (pairs) => {
        const g = Float32Array.from(pairs.map((p) => p[0]));
        const u = Float32Array.from(pairs.map((p) => p[1]));
        const ref = pairs.map(([a, b]) => (Math.fround(a) / (1 + Math.exp(-Math.fround(a)))) * Math.fround(b));
        swiglu(g, u);
        ref.forEach((r, i) => expect(Math.abs(g[i]! - r)).toBeLessThanOrEqual(1e-6 * Math.abs(r) + 1e-38));
      }),
      { numRuns: 200 },
    );
  });

  it('gelu (tanh approximation) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as in float64', () => {
    fc.assert(
      fc.property(fc.array(smallFloat(fc, 8), { minLength: 1, maxLength: 200 }), (xs) => {
        const x = Float32Array.from(xs);
        const ref = Array.from(x, (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
        gelu(x);
        // float64 then one rounding to f32 (2^-24 relative); the x / (1 + e^-2z) form differs from
        // the tanh form by float64 noise only, except that for x < -5 the tanh form cancels (1 + tanh
        // loses digits), so there the reference itself is only good to ~1e-16 absolute.
        ref.forEach((r, i) => expect(Math.abs(x[i]! - r)).toBeLessThanOrEqual(1e-6 * Math.abs(r) + 1e-14));
      }),
      { numRuns: 200 },
    );
  });
});
