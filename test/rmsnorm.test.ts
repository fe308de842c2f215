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

describe('rmsnorm with the WebAssembly SIMD kernel (rmsnorm-wasm.ts)', () => {
  // The kernel is rmsnorm.ts's float64 arithmetic but for the order of the sum of squares (four running
  // sums instead of one): ss within dim * 2^-53 relative, so scale within about (dim + 4) * 2^-53 and each
  // float64 product (x * scale) * w within that of rmsnorm.ts's before both round to f32: the outputs are
  // equal or one f32 rounding apart, |a - b| <= 2^-23 |b| (2^-149 in the subnormal range).
  it('matches rmsnorm.ts within one f32 rounding (rows with and without a four-value tail, in place too)', async () => {
    const { WasmExecutor } = await import('../src/backend/wasm-executor.js');
    const exec = new WasmExecutor();
    try {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 80 }), fc.constantFrom(1e-5, 1e-6, 1e-2), fc.boolean(),
          fc.infiniteStream(smallFloat(fc, 8)),
          (n, dim, eps, inPlace, stream) => {
            const x = exec.alloc(n * dim), w = exec.alloc(dim);
            x.set(Float32Array.from({ length: n * dim }, () => stream.next().value));
            w.set(Float32Array.from({ length: dim }, () => stream.next().value));
            const want = new Float32Array(n * dim);
            rmsnorm(want, x, w, dim, eps, n);
            const out = inPlace ? x : exec.alloc(n * dim).fill(NaN);
            exec.rmsnorm(out, x, w, dim, eps, n);
            want.forEach((b, i) => expect(Math.abs(out[i]! - b)).toBeLessThanOrEqual(2 ** -23 * Math.abs(b) + 2 ** -149));
          },
        ),
        { numRuns: 200 },
      );
    } finally {
      exec.dispose();
    }
  });

  it('refuses buffers outside its memory, and rows longer than the buffers', async () => {
    const { WasmExecutor } = await import('../src/backend/wasm-executor.js');
    const exec = new WasmExecutor();
    try {
      const [x, w] = [exec.alloc(8), exec.alloc(4)];
      expect(() => exec.rmsnorm(new Float32Array(8), x, w, 4, 1e-5, 2)).toThrow(/not in the executor's memory/);
      expect(() => exec.rmsnorm(x, x, w, 4, 1e-5, 3)).toThrow(/3 rows of 4/);
    } finally {
      exec.dispose();
    }
  });
});
