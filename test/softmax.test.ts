import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { softmax } from '../src/stages/softmax.js';

// Float32 input/output: each output is the float64 value rounded once, so within 2^-24 relative
// (1e-6 with margin); the float64 work itself adds ~n * 2^-53.
describe('softmax', () => {
  it('matches exp(x_i) / sum exp(x) in float64, sums to 1, and survives large logits', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -1000, max: 1000, noNaN: true }), { minLength: 1, maxLength: 300 }), fc.nat(5), (xs, offset) => {
        const buf = new Float32Array(offset + xs.length).fill(123);
        buf.set(xs.map(Math.fround), offset);
        const inp = Array.from(buf.subarray(offset));
        softmax(buf, offset, xs.length);
        const m = Math.max(...inp);
        const e = inp.map((v) => Math.exp(v - m));
        const s = e.reduce((a, b) => a + b, 0);
        let total = 0;
        inp.forEach((_, i) => {
          const ref = e[i]! / s;
          expect(Math.abs(buf[offset + i]! - ref)).toBeLessThanOrEqual(1e-6 * ref + 1e-45);
          total += buf[offset + i]!;
        });
        expect(Math.abs(total - 1)).toBeLessThanOrEqual(1e-6 * xs.length);
        for (let i = 0; i < offset; i++) expect(buf[i]).toBe(123); // untouched outside the range
      }),
      { numRuns: 300 },
    );
  });
});
