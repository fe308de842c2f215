import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rmsnorm } from '../src/stages/rmsnorm.js';
import { smallFloat } from './helpers.js';

// The engine computes in float64 and rounds each output once to f32, so each element is within
// 2^-24 relative of the float64 reference (plus float64 noise, ~dim * 2^-53): 1e-6 relative is safe.
describe('rmsnorm', () => {
  it('matches x / sqrt(mean(x^2) + eps) * w in float64 on random shapes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 80 }), fc.constantFrom(1e-5, 1e-6, 1e-2),
        fc.infiniteStream(smallFloat(fc, 8)),
        (n, dim, eps, stream) => {
          const x = Float32Array.from({ length: n * dim }, () => stream.next().value);
          const w = Float32Array.from({ length: dim }, () => stream.next().value);
          const out = new Float32Array(n * dim);
          rmsnorm(out, x, w, dim, eps, n);
          for (let t = 0; t < n; t++) {
            let ss = 0;
            for (let i = 0; i < dim; i++) ss += x[t * dim + i]! ** 2;
            const inv = 1 / Math.sqrt(ss / dim + eps);
            for (let i = 0; i < dim; i++) {
              const ref = x[t * dim + i]! * inv * w[i]!;
              expect(Math.abs(out[t * dim + i]! - ref)).toBeLessThanOrEqual(1e-6 * Math.abs(ref) + 1e-30);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('is finite for an all-zero row (eps keeps the scale finite)', () => {
    const out = new Float32Array(4);
    rmsnorm(out, new Float32Array(4), Float32Array.from([1, 2, 3, 4]), 4, 1e-5);
    expect(Array.from(out)).toEqual([0, 0, 0, 0]);
  });
});
