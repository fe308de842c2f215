import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { swiglu } from '../src/ffn.js';
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
});
