import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rope, type RopeStyle } from '../src/stages/rope.js';
import { smallFloat } from './helpers.js';

// Reference: rotate pair i by angle pos * theta^(-2i/ropeDims) as a complex multiplication in float64,
// with the pair's two members chosen by the convention. The engine also works in float64 and rounds
// each output once to f32: |err| <= 2^-24 * (|x0| + |x1|) per element; we allow 1e-6 * (|x0| + |x1|),
// plus 2^-149 because in f32's subnormal range rounding error is absolute (at most 2^-150).
// Frequency scaling as llama.cpp applies it: positions times freqScale, pair i's frequency divided by
// factors[i], the rotation scaled by attnFactor (a complex multiplication by m e^(i angle)).
function reference(x: number[], headDim: number, nHeads: number, ropeDims: number, theta: number, pos: number, style: RopeStyle, sc: Scaling = {}) {
  const y = [...x];
  const m = sc.attnFactor ?? 1;
  for (let h = 0; h < nHeads; h++)
    for (let i = 0; i < ropeDims / 2; i++) {
      const [a, b] = style === 'interleaved' ? [h * headDim + 2 * i, h * headDim + 2 * i + 1] : [h * headDim + i, h * headDim + i + ropeDims / 2];
      const ang = (pos * (sc.freqScale ?? 1)) / theta ** ((2 * i) / ropeDims) / (sc.factors?.[i] ?? 1);
      const re = x[a]!, im = x[b]!;
      y[a] = m * (re * Math.cos(ang) - im * Math.sin(ang));
      y[b] = m * (re * Math.sin(ang) + im * Math.cos(ang));
    }
  return y;
}
interface Scaling { freqScale?: number; factors?: Float32Array; attnFactor?: number }

const cases = fc
  .record({
    half: fc.integer({ min: 1, max: 16 }),
    extra: fc.integer({ min: 0, max: 3 }), // partial rotary: headDim = ropeDims + 2*extra
    nHeads: fc.integer({ min: 1, max: 5 }),
    pos: fc.integer({ min: 0, max: 5000 }),
    theta: fc.constantFrom(10000, 500000, 1e6),
    style: fc.constantFrom<RopeStyle>('interleaved', 'neox'),
    // Linear scaling, Llama 3 / Phi-3 per-pair factors, Phi-3's attention factor
    freqScale: fc.option(fc.constantFrom(0.125, 0.25, 0.5), { nil: undefined }),
    attnFactor: fc.option(fc.double({ min: 0.5, max: 1.5, noNaN: true }), { nil: undefined }),
    withFactors: fc.boolean(),
  })
  .chain((c) => {
    const headDim = 2 * c.half + 2 * c.extra;
    return fc.record({
      c: fc.constant({ ...c, headDim, ropeDims: 2 * c.half }),
      x: fc.array(smallFloat(fc), { minLength: headDim * c.nHeads, maxLength: headDim * c.nHeads }),
      factors: fc.array(fc.double({ min: 1, max: 40, noNaN: true }), { minLength: c.half, maxLength: c.half }).map((a) => Float32Array.from(a)),
    });
  });

describe('rope', () => {
  it('rotates pairs like a float64 complex rotation, both conventions, with partial rotary and frequency scaling', () => {
    fc.assert(
      fc.property(cases, ({ c, x, factors }) => {
        const buf = new Float32Array(3 + x.length);
        buf.set(x, 3);
        const xs = Array.from(buf.subarray(3));
        const sc: Scaling = { freqScale: c.freqScale, attnFactor: c.attnFactor, factors: c.withFactors ? factors : undefined };
        rope(buf, 3, c.nHeads, c.pos, { headDim: c.headDim, ropeDims: c.ropeDims, theta: c.theta, style: c.style, ...sc });
        const ref = reference(xs, c.headDim, c.nHeads, c.ropeDims, c.theta, c.pos, c.style, sc);
        for (let h = 0; h < c.nHeads; h++)
          for (let i = 0; i < c.headDim; i++) {
            const k = h * c.headDim + i;
            const partner = c.style === 'interleaved' ? k ^ 1 : i < c.ropeDims / 2 ? k + c.ropeDims / 2 : k - c.ropeDims / 2;
            const scale = i < c.ropeDims ? (Math.abs(xs[k]!) + Math.abs(xs[partner]!)) * (c.attnFactor ?? 1) : 0;
            expect(Math.abs(buf[3 + k]! - ref[k]!)).toBeLessThanOrEqual(1e-6 * scale + 2 ** -149);
          }
      }),
      { numRuns: 300 },
    );
  });

  it('is the identity at position 0 and differs between conventions elsewhere', () => {
    const p = { headDim: 4, ropeDims: 4, theta: 10000 };
    const x = [1, 2, 3, 4];
    const a = Float32Array.from(x);
    rope(a, 0, 1, 0, { ...p, style: 'interleaved' });
    expect(Array.from(a)).toEqual(x);
    const i = Float32Array.from(x), n = Float32Array.from(x);
    rope(i, 0, 1, 7, { ...p, style: 'interleaved' });
    rope(n, 0, 1, 7, { ...p, style: 'neox' });
    expect(Array.from(i)).not.toEqual(Array.from(n));
  });
});

describe('the CPU backend rotates with angles shared across calls', () => {
  it('as rope() row by row, bit for bit, while start, n, row0 and the parameters change between calls (Gemma 3 alternates two)', async () => {
    const { CpuBackend } = await import('../src/backend/cpu.js');
    const cpu = new CpuBackend();
    const local = { headDim: 8, ropeDims: 8, theta: 10000, style: 'neox' as const };
    const global = { headDim: 8, ropeDims: 6, theta: 1e6, style: 'interleaved' as const, freqScale: 0.25, attnFactor: 1.1 };
    const nHeads = 3;
    // (start, n, row0, params) as a prefill step, its q and k, the next layer's, then decode steps
    const calls: [number, number, number, typeof local | typeof global][] = [[0, 5, 0, local], [0, 5, 0, local], [0, 5, 0, global], [0, 3, 2, local], [5, 1, 0, local], [5, 1, 0, global], [6, 2, 1, global], [6, 2, 0, local], [0, 5, 0, local]];
    let seed = 3;
    for (const [start, n, row0, p] of calls) {
      const x = Float32Array.from({ length: (row0 + n) * nHeads * p.headDim }, () => Math.sin(seed++));
      const want = x.slice();
      for (let t = 0; t < n; t++) rope(want, (row0 + t) * nHeads * p.headDim, nHeads, start + t, p);
      cpu.rope(x, nHeads, start, n, p, row0);
      expect(Array.from(x)).toEqual(Array.from(want));
    }
  });
});

describe('RoPE with the WebAssembly SIMD kernel (rope-wasm.ts), through the CPU backend', () => {
  // The kernel does rope.ts's float64 arithmetic on the same angles and rounds once, so the results
  // are rope()'s bit for bit. neox rotations with ropeDims / 2 odd stay in JavaScript (the kernel takes
  // pairs two at a time); they are among the cases too.
  it('as rope() row by row, bit for bit: both conventions, partial rotary, scaling, several rows and row0', async () => {
    const { CpuBackend } = await import('../src/backend/cpu.js');
    const { WasmExecutor } = await import('../src/backend/wasm-executor.js');
    const exec = new WasmExecutor();
    const cpu = new CpuBackend(exec);
    try {
      fc.assert(
        fc.property(
          fc.record({
            half: fc.integer({ min: 1, max: 16 }), extra: fc.integer({ min: 0, max: 3 }), nHeads: fc.integer({ min: 1, max: 5 }),
            start: fc.integer({ min: 0, max: 5000 }), n: fc.integer({ min: 1, max: 6 }), row0: fc.integer({ min: 0, max: 2 }),
            style: fc.constantFrom<RopeStyle>('interleaved', 'neox'), theta: fc.constantFrom(10000, 1e6),
            freqScale: fc.option(fc.constantFrom(0.25, 0.5), { nil: undefined }), attnFactor: fc.option(fc.double({ min: 0.5, max: 1.5, noNaN: true }), { nil: undefined }),
          }),
          fc.integer({ min: 0, max: 1000 }),
          (c, seed) => {
            const p = { headDim: 2 * c.half + 2 * c.extra, ropeDims: 2 * c.half, theta: c.theta, style: c.style, freqScale: c.freqScale, attnFactor: c.attnFactor };
            const x = exec.alloc((c.row0 + c.n) * c.nHeads * p.headDim);
            x.forEach((_, i) => (x[i] = Math.sin(seed + i) * 3));
            const want = x.slice();
            for (let t = 0; t < c.n; t++) rope(want, (c.row0 + t) * c.nHeads * p.headDim, c.nHeads, c.start + t, p);
            cpu.rope(x, c.nHeads, c.start, c.n, p, c.row0);
            expect(Array.from(x)).toEqual(Array.from(want));
            exec.release(x);
          },
        ),
        { numRuns: 200 },
      );
    } finally {
      exec.dispose();
    }
  });

  it('refuses a neox rotation with ropeDims / 2 odd, and a short table', async () => {
    const { WasmExecutor } = await import('../src/backend/wasm-executor.js');
    const exec = new WasmExecutor();
    try {
      const x = exec.alloc(12);
      const b = exec.allocBytes(8 * 12);
      const table = new Float64Array(b.buffer, b.byteOffset, 12);
      expect(() => exec.rope(x, table, 2, 6, 6, 1, true)).toThrow(/multiple of 4/);
      expect(() => exec.rope(x, table, 1, 12, 12, 1, false)).toThrow(/table/);
    } finally {
      exec.dispose();
    }
  });
});
