import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { matmul, matvec } from '../src/stages/matmul.js';
import { smallFloat } from './helpers.js';

// Reference: float64 sum of the f32 inputs. The engine also accumulates in float64, in a different
// order (4 partial sums), then rounds once to f32. Bound: rounding to f32 costs <= 2^-24 |y|, and the
// float64 reordering costs <= cols * 2^-53 * sum|w x|; so |err| <= 1e-6 * (|y| + sum|w x|) holds with margin.
function reference(w: Float32Array, x: Float32Array, n: number, rows: number, cols: number) {
  const y: number[] = [], mag: number[] = [];
  for (let t = 0; t < n; t++)
    for (let r = 0; r < rows; r++) {
      let s = 0, m = 0;
      for (let c = 0; c < cols; c++) { s += w[r * cols + c]! * x[t * cols + c]!; m += Math.abs(w[r * cols + c]! * x[t * cols + c]!); }
      y.push(s); mag.push(m);
    }
  return { y, mag };
}

const shapes = fc.record({ n: fc.integer({ min: 1, max: 9 }), rows: fc.integer({ min: 1, max: 37 }), cols: fc.integer({ min: 1, max: 67 }) });
const withData = shapes.chain(({ n, rows, cols }) =>
  fc.record({
    n: fc.constant(n), rows: fc.constant(rows), cols: fc.constant(cols),
    w: fc.array(smallFloat(fc), { minLength: rows * cols, maxLength: rows * cols }),
    x: fc.array(smallFloat(fc), { minLength: n * cols, maxLength: n * cols }),
  }),
);

describe('matmul', () => {
  it('matvec and matmul match a float64 reference on random shapes (incl. n not a multiple of 4, odd cols)', () => {
    fc.assert(
      fc.property(withData, ({ n, rows, cols, w, x }) => {
        const W = Float32Array.from(w), X = Float32Array.from(x);
        const out = new Float32Array(n * rows);
        matmul(out, W, X, n, rows, cols);
        const { y, mag } = reference(W, X, n, rows, cols);
        for (let i = 0; i < y.length; i++) expect(Math.abs(out[i]! - y[i]!)).toBeLessThanOrEqual(1e-6 * (Math.abs(y[i]!) + mag[i]!) + 1e-30);
        if (n === 1) {
          const o1 = new Float32Array(rows);
          matvec(o1, W, X, rows, cols);
          expect(Array.from(o1)).toEqual(Array.from(out));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('computes only the requested row range', () => {
    const rows = 10, cols = 5;
    const W = Float32Array.from({ length: rows * cols }, (_, i) => (i % 7) - 3);
    const X = Float32Array.from({ length: 2 * cols }, (_, i) => i - 4);
    const full = new Float32Array(2 * rows);
    matmul(full, W, X, 2, rows, cols);
    const part = new Float32Array(2 * rows).fill(NaN);
    matmul(part, W, X, 2, rows, cols, 3, 7);
    for (let t = 0; t < 2; t++)
      for (let r = 0; r < rows; r++) {
        if (r >= 3 && r < 7) expect(part[t * rows + r]).toBe(full[t * rows + r]);
        else expect(part[t * rows + r]).toBeNaN();
      }
  });
});

describe('the residual add with the WebAssembly SIMD kernel (add-wasm.ts)', () => {
  // One f32 addition per value, as JavaScript's out[i] + x[i] stored to a Float32Array: bit for bit.
  it('adds as JavaScript does, any length and alignment; an accumulating product is out + the product, a biased one the product + the bias', async () => {
    const { WasmExecutor } = await import('../src/backend/wasm-executor.js');
    const { CpuBackend } = await import('../src/backend/cpu.js');
    const exec = new WasmExecutor();
    const cpu = new CpuBackend(exec);
    try {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 41 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 999 }), (length, skew, seed) => {
          const [a, b] = [exec.alloc(length + 3), exec.alloc(length + 3)];
          a.forEach((_, i) => (a[i] = Math.sin(seed + i) * 2 ** ((i % 7) * 5 - 15)));
          b.forEach((_, i) => (b[i] = Math.cos(seed * 3 + i) * 2 ** ((i % 5) * 6 - 12)));
          const [out, x] = [a.subarray(skew), b.subarray(3 - skew)];
          const want = Float32Array.from(out, (v, i) => (i < length ? v + x[i]! : v));
          cpu.add(out, x, length);
          expect(Array.from(out)).toEqual(Array.from(want));
        }),
        { numRuns: 200 },
      );
      fc.assert(
        fc.property(withData, ({ n, rows, cols, w, x }) => {
          const [W, X, out, product] = [exec.alloc(rows * cols), exec.alloc(n * cols), exec.alloc(n * rows), exec.alloc(n * rows)];
          W.set(w); X.set(x);
          out.forEach((_, i) => (out[i] = Math.sin(i)));
          const want = out.slice();
          cpu.matmul([{ out: product, w: W, x: X, n, rows, cols }]);
          want.forEach((v, i) => (want[i] = v + product[i]!));
          cpu.matmul([{ out, w: W, x: X, n, rows, cols, accumulate: true }]);
          expect(Array.from(out)).toEqual(Array.from(want));
          // a bias (Qwen2's q/k/v) adds to every token's row the same way
          const bias = exec.alloc(rows);
          bias.forEach((_, i) => (bias[i] = Math.cos(i) * 3));
          cpu.matmul([{ out, w: W, x: X, n, rows, cols, bias }]);
          want.forEach((_, i) => (want[i] = product[i]! + bias[i % rows]!));
          expect(Array.from(out)).toEqual(Array.from(want));
        }),
        { numRuns: 100 },
      );
    } finally {
      exec.dispose();
    }
  });
});
