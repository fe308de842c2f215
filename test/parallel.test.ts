import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { matmul, type MatmulExecutor } from '../src/matmul.js';
import { createWorkerExecutor } from '../src/parallel.js';

describe('worker-thread matmuls', () => {
  let exec: MatmulExecutor;
  afterAll(() => exec?.dispose());

  it('give bit-identical results to the single-threaded kernel for several jobs at once', async () => {
    exec = await createWorkerExecutor(3);
    expect(exec.threads).toBe(3);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 10 }), (n, rows, cols, njobs) => {
        const jobs = Array.from({ length: njobs }, (_, j) => {
          const w = exec.alloc(rows * cols);
          const x = exec.alloc(n * cols);
          w.forEach((_, i) => (w[i] = Math.sin(i * 0.37 + j)));
          x.forEach((_, i) => (x[i] = Math.cos(i * 0.11 - j)));
          return { out: exec.alloc(n * rows), w, x, n, rows, cols };
        });
        exec.run(jobs);
        for (const j of jobs) {
          const want = new Float32Array(n * rows);
          matmul(want, j.w, j.x, n, rows, cols);
          expect(Array.from(j.out)).toEqual(Array.from(want));
        }
      }),
      { numRuns: 50 },
    );
  });

  it('refuses a buffer that is not shared memory, with a clear error', async () => {
    const e = await createWorkerExecutor(2);
    try {
      expect(() => e.run([{ out: new Float32Array(2), w: new Float32Array(4), x: new Float32Array(2), n: 1, rows: 2, cols: 2 }])).toThrow(/shared memory/);
    } finally {
      e.dispose();
    }
  });

  it('threads = 1 is the plain serial executor', async () => {
    expect((await createWorkerExecutor(1)).threads).toBe(1);
    await expect(createWorkerExecutor(0)).rejects.toThrow(/threads/);
  });
});
