import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { affine, layernorm } from '../src/stages/layernorm.js';
import { smallFloat } from './helpers.js';

// The engine sums in float64 and rounds each output once to f32: within 2^-24 relative of the float64
// reference plus float64 noise (~dim * 2^-53 relative to the row's magnitude): 1e-6 relative is safe.
describe('layernorm', () => {
  it('matches (x - mean) / sqrt(var + eps) * w + b in float64 on random shapes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 80 }), fc.constantFrom(1e-5, 1e-12, 1e-2), fc.boolean(),
        fc.infiniteStream(smallFloat(fc, 8)),
        (n, dim, eps, withBias, stream) => {
          const x = Float32Array.from({ length: n * dim }, () => stream.next().value);
          const w = Float32Array.from({ length: dim }, () => stream.next().value);
          const b = withBias ? Float32Array.from({ length: dim }, () => stream.next().value) : undefined;
          const out = new Float32Array(n * dim);
          layernorm(out, x, w, b, dim, eps, n);
          for (let t = 0; t < n; t++) {
            const row = Array.from(x.subarray(t * dim, (t + 1) * dim));
            const mean = row.reduce((a, v) => a + v, 0) / dim;
            const sd = Math.sqrt(row.reduce((a, v) => a + (v - mean) ** 2, 0) / dim + eps);
            for (let i = 0; i < dim; i++) {
              const ref = ((row[i]! - mean) / sd) * w[i]! + (b ? b[i]! : 0);
              const mag = (Math.abs(row[i]! - mean) / sd) * Math.abs(w[i]!) + (b ? Math.abs(b[i]!) : 0);
              expect(Math.abs(out[t * dim + i]! - ref)).toBeLessThanOrEqual(1e-6 * mag + 1e-30);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('maps a constant row to the bias (eps keeps it finite)', () => {
    const out = new Float32Array(3);
    layernorm(out, Float32Array.from([2, 2, 2]), Float32Array.from([5, 5, 5]), Float32Array.from([1, -1, 0.5]), 3, 1e-5);
    expect(Array.from(out)).toEqual([1, -1, 0.5]);
  });

  // NoNorm: x * w + b computed in float64 and rounded once: within 2^-24 relative of the exact value.
  it('NoNorm (affine) is x * w + b per element, in place too', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 1000 }), (n, dim, seed) => {
        const v = (k: number, i: number) => Math.fround(Math.sin(seed + k * 1000 + i) * 4);
        const x = Float32Array.from({ length: n * dim }, (_, i) => v(0, i)), w = Float32Array.from({ length: dim }, (_, i) => v(1, i)), b = Float32Array.from({ length: dim }, (_, i) => v(2, i));
        const out = new Float32Array(n * dim);
        affine(out, x, w, b, dim, n);
        out.forEach((o, i) => { const r = x[i]! * w[i % dim]! + b[i % dim]!; expect(Math.abs(o - r)).toBeLessThanOrEqual(2 ** -24 * Math.abs(r) + 1e-38); });
        affine(x, x, w, b, dim, n);
        expect(x).toEqual(out);
      }),
      { numRuns: 100 },
    );
  });
});
