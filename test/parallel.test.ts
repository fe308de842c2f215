import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createWorkerExecutor, type WasmExecutor } from '../src/parallel.js';
import { matmulWasmBytes, wasmSimdAvailable } from '../src/matmul-wasm.js';

// The WebAssembly kernels accumulate in f32 (16 or 4 partial sums), so against the float64 sum the
// classic dot-product bound applies: |err| <= gamma_k * sum|w x| with k <= cols + 2 terms in any
// partial sum chain, gamma_k = k u / (1 - k u), u = 2^-24. We check |err| <= (cols + 2) * 2^-24 * 1.01 * sum|w x|,
// plus 2^-149 for results in f32's subnormal range (absolute rounding error there).
function checkAgainstFloat64(out: Float32Array, w: Float32Array, x: Float32Array, n: number, rows: number, cols: number) {
  for (let t = 0; t < n; t++)
    for (let r = 0; r < rows; r++) {
      let s = 0, m = 0;
      for (let c = 0; c < cols; c++) { s += w[r * cols + c]! * x[t * cols + c]!; m += Math.abs(w[r * cols + c]! * x[t * cols + c]!); }
      expect(Math.abs(out[t * rows + r]! - s)).toBeLessThanOrEqual((cols + 2) * 2 ** -24 * 1.01 * m + 2 ** -149);
    }
}

const jobArb = fc.record({ n: fc.integer({ min: 1, max: 11 }), rows: fc.integer({ min: 1, max: 50 }), cols: fc.integer({ min: 1, max: 90 }), seed: fc.integer() });

describe('WebAssembly SIMD matmuls', () => {
  const execs: WasmExecutor[] = [];
  afterAll(() => execs.forEach((e) => e.dispose()));

  it('the emitted module is valid WebAssembly with SIMD', () => {
    expect(WebAssembly.validate(matmulWasmBytes())).toBe(true);
    expect(wasmSimdAvailable()).toBe(true);
  });

  for (const threads of [1, 3]) {
    it(`match float64 within the f32 dot-product bound on random shapes (${threads} thread(s), several jobs at once)`, async () => {
      const exec = await createWorkerExecutor(threads);
      execs.push(exec);
      expect(exec.threads).toBe(threads);
      fc.assert(
        fc.property(fc.array(jobArb, { minLength: 1, maxLength: 10 }), (specs) => {
          const jobs = specs.map(({ n, rows, cols, seed }) => {
            const w = exec.alloc(rows * cols), x = exec.alloc(n * cols);
            for (let i = 0; i < w.length; i++) w[i] = Math.sin(i * 0.37 + seed) * 3;
            for (let i = 0; i < x.length; i++) x[i] = Math.cos(i * 0.11 - seed) * 2;
            return { out: exec.alloc(n * rows).fill(NaN), w, x, n, rows, cols };
          });
          exec.run(jobs);
          for (const j of jobs) checkAgainstFloat64(j.out, j.w, j.x, j.n, j.rows, j.cols);
        }),
        { numRuns: 60 },
      );
    });
  }

  it('refuses a buffer outside its memory, with a clear error', async () => {
    const e = await createWorkerExecutor(2);
    execs.push(e);
    expect(() => e.run([{ out: e.alloc(2), w: new Float32Array(4), x: e.alloc(2), n: 1, rows: 2, cols: 2 }])).toThrow(/the w buffer is not in the executor's memory/);
    expect(e.owns(e.allocBytes(10))).toBe(true);
  });

  it('rejects a bad thread count', async () => {
    await expect(createWorkerExecutor(0)).rejects.toThrow(/threads/);
  });
});
