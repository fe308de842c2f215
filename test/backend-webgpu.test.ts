// The WebGPU kernels, through the Backend interface, against float64 references (run on Mesa lavapipe
// in CI). Bounds come from f32 accumulation and from WGSL's stated precision of each builtin; GPUs
// may flush subnormals to zero, hence the small absolute terms (2^-120).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATTENTION_CHUNK, ATTENTION_PREFILL_FROM, type WebGPUBackend, type GpuTensor } from '../src/backend/webgpu.js';
import { ropeFrequencies, type RopeStyle } from '../src/stages/rope.js';
import { loadModel, Model } from '../src/engine.js';
import { readModelFile } from '../src/format/model-file.js';
import type { Backend, Handle } from '../src/backend/backend.js';
import { readFileSync } from 'node:fs';
import { hasShared, ROOT, SHARED, sequence, smallFloat, STORIES_BIN, STORIES_TOK, storiesReference, TINY_GGUF, worstElement } from './helpers.js';
import { FAMILIES, hfFolder } from '../bench/families.js';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { referenceLogits } from './reference-model.js';
import type { LlamaConfig, LlamaWeights } from '../src/arch/llama.js';
import { f16ToF32, f32ToF16, GGMLType } from '../src/base/tensor.js';
import { sortedCandidates } from '../src/stages/sampling.js';

const u = 2 ** -24;
const FTZ = 2 ** -120;
/**
 * A gate's activation in float64, its largest slope, and the relative error the kernels' f32 form adds:
 * silu: exp within (3 + 2|g|) ulp, then add, divide, multiply; tanh-GELU: (9 + 14|z|) u (see the gelu test).
 */
function gateRef(act: 'silu' | 'gelu', g: number): { value: number; slope: number; rel: number } {
  if (act === 'silu') return { value: g / (1 + Math.exp(-g)), slope: 1.1, rel: (8 + 2 * Math.abs(g)) * u };
  const z = Math.sqrt(2 / Math.PI) * (g + 0.044715 * g ** 3);
  return { value: g / (1 + Math.exp(-2 * z)), slope: 1.13, rel: (10 + 14 * Math.abs(z)) * u };
}
/** erf in float64 for the references: 1 - erfc by the engine-independent series of positive terms (see test/reference/hf-models.ts). */
function erfRef(x: number): number {
  const a = Math.abs(x);
  if (a > 6) return Math.sign(x);
  let term = a, sum = a;
  for (let n = 1; n < 400 && term > 1e-18 * sum; n++) { term *= (2 * a * a) / (2 * n + 1); sum += term; }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum;
}
let gpu: WebGPUBackend | undefined;
let why = '';

beforeAll(async () => {
  try {
    const { createWebGPUBackend } = await import('../src/backend/webgpu.js');
    // (as on hardware adapters, decode attention takes Wo's product in; software adapters default to not)
    gpu = await createWebGPUBackend({ projectAttention: true });
  } catch (e) {
    why = (e as Error).message;
    // In CI the WebGPU stack is installed by .ci/run: a missing adapter is a failure, not a skip.
    if (process.env.CI) throw new Error(`no WebGPU adapter in CI: ${why}`);
    console.warn(`WebGPU tests skipped: ${why}`);
  }
});
afterAll(() => gpu?.dispose());

/** f on a second backend with the subgroup matvec (disposed after); said and skipped where the adapter lacks subgroups, but in CI (lavapipe has them). */
async function withSubgroups(f: (sub: WebGPUBackend) => Promise<void>): Promise<void> {
  const { createWebGPUBackend } = await import('../src/backend/webgpu.js');
  let sub: WebGPUBackend;
  try {
    sub = await createWebGPUBackend({ matvec: 'subgroup', projectAttention: true }); // (a hardware adapter's defaults)
  } catch (e) {
    if (process.env.CI) throw e;
    return console.warn(`subgroup kernels not tested here: ${(e as Error).message}`);
  }
  try {
    await f(sub);
  } finally {
    sub.dispose();
  }
}
const arr = (n: number, range = 4) => fc.array(smallFloat(fc, range), { minLength: n, maxLength: n }).map((a) => Float32Array.from(a));
const t = (a: Float32Array) => gpu!.weight(a);
const read = (x: GpuTensor, n: number) => gpu!.read(x, n);
/** fast-check with an async property, a modest number of runs (each is a GPU submit on a software rasterizer). */
const check = <T>(a: fc.Arbitrary<T>, f: (v: T) => Promise<void>, numRuns = 40) => fc.assert(fc.asyncProperty(a, f), { numRuns });

describe('WebGPU kernels against float64 references', () => {
  it('has an adapter (or says why not)', () => {
    if (!gpu) return console.warn(`skipped: ${why}`);
    expect(gpu.name).toMatch(/^webgpu \(/);
  });

  it('every kernel compiles on this adapter (pipelines are otherwise made at first use), with and without subgroups', async () => {
    if (!gpu) return;
    await gpu.compileAll();
    await withSubgroups((sub) => sub.compileAll());
  });

  /** Random matmuls against float64; `half`: weights f16-representable and stored as f16 on the GPU. */
  const matmulProperty = (half: boolean, b: WebGPUBackend = gpu!, maxN = 40) => {
    // n up to 40: the decode kernel (n <= 4) and the tiled prefill kernel, with partial tiles.
    const t = (a: Float32Array) => b.weight(a);
    const shape = fc.record({ n: fc.integer({ min: 1, max: maxN }), rows: fc.integer({ min: 1, max: 150 }), cols: fc.integer({ min: 1, max: 300 }), accumulate: fc.boolean() });
    return check(shape.chain((s) => fc.record({ s: fc.constant(s), w: arr(s.rows * s.cols), x: arr(s.n * s.cols), prev: arr(s.n * s.rows) })), async ({ s, w, x, prev }) => {
      const wv = half ? w.map((v) => f16ToF32(f32ToF16(v))) : w; // as from an F16 file
      const wt = b.weight(wv, half);
      expect(wt.half).toBe(half);
      const out = t(prev);
      b.matmul([{ out, w: wt, x: t(x), ...s }]);
      expectProduct(await b.read(out, s.n * s.rows), wv, x, prev, s);
    });
  };

  /**
   * got = W x (+ prev when accumulating) for n inputs, against float64 sums of W's values (the exact
   * dequantized values for a quantized W). One f32 running sum per output: a chain of cols additions
   * (one more when accumulating); we allow cols + 8. f16 weights widen to f32 exactly, so the same
   * bound holds for them.
   */
  const expectProduct = (got: Float32Array, w: Float32Array, x: Float32Array, prev: Float32Array, s: { n: number; rows: number; cols: number; accumulate: boolean }) => {
    for (let k = 0; k < s.n; k++)
      for (let r = 0; r < s.rows; r++) {
        const old = s.accumulate ? prev[k * s.rows + r]! : 0;
        let ref = old, mag = Math.abs(old);
        for (let c = 0; c < s.cols; c++) { ref += w[r * s.cols + c]! * x[k * s.cols + c]!; mag += Math.abs(w[r * s.cols + c]! * x[k * s.cols + c]!); }
        expect(Math.abs(got[k * s.rows + r]! - ref)).toBeLessThanOrEqual((s.cols + 8) * u * 1.01 * mag + s.cols * FTZ);
      }
  };

  it('matmul: rows and cols not multiples of 64, several inputs', async () => {
    if (!gpu) return;
    await matmulProperty(false);
  });

  it('decode matvec with subgroups (a row per workgroup, subgroupAdd), f32 and f16 weights: same bound', async () => {
    if (!gpu) return;
    await withSubgroups(async (sub) => {
      expect(sub.matvec).toBe('subgroup');
      await matmulProperty(false, sub, 1);
      if (sub.f16) await matmulProperty(true, sub, 1);
      await subgroupNormProperty(sub);
    });
  });
  /**
   * matmul-subgroup.wgsl's _norm entry points (the fused decode passes on adapters with subgroups):
   * W rmsnorm(x) (+ accumulate), act(Wg h) * (Wu h), [Wq | Wk | Wv] h packed, each one dispatch,
   * against float64, with the normalized row stored.
   */
  const subgroupNormProperty = (b: WebGPUBackend) => {
    const shape = fc.record({ op: fc.constantFrom('main', 'gated', 'qkv'), rows: fc.integer({ min: 1, max: 150 }), kvRows: fc.integer({ min: 1, max: 40 }), cols: fc.integer({ min: 1, max: 300 }), half: fc.boolean(), accumulate: fc.boolean(), act: fc.constantFrom<'silu' | 'gelu'>('silu', 'gelu') });
    const counters = (b as unknown as { counters: { dispatches: number } }).counters;
    const tb = (a: Float32Array) => b.weight(a);
    return check(shape.chain((s) => fc.record({ s: fc.constant(s), w: arr((s.rows + 2 * s.kvRows) * s.cols, 1), wu: arr(s.rows * s.cols, 1), x: arr(s.cols, 4), nw: arr(s.cols, 2), prev: arr(s.rows, 2) })), async ({ s, w, wu, x, nw, prev }) => {
      const half = s.half && b.f16;
      const r16 = (a: Float32Array) => (half ? a.map((v) => f16ToF32(f32ToF16(v))) : a);
      const eps = 1e-5;
      const inv = 1 / Math.sqrt(x.reduce((a, v) => a + v * v, 0) / s.cols + eps);
      const xn = Array.from(x, (v, c) => v * inv * nw[c]!);
      /** Row r of m times xn in float64, and the bound on its f32 error: 1 / rms within (cols/128 + 8) u, two
       * roundings per normalized value, then the strided and tree sums (cols/64 + 8) u: (cols/32 + 20) u sum|w xn|. */
      const dot = (m: Float32Array, r: number) => {
        let v = 0, mag = 0;
        for (let c = 0; c < s.cols; c++) { v += m[r * s.cols + c]! * xn[c]!; mag += Math.abs(m[r * s.cols + c]! * xn[c]!); }
        return { v, err: (s.cols / 32 + 20) * u * mag };
      };
      const h = b.scratch(s.cols);
      const norm = { w: tb(nw), eps, out: h };
      const before = counters.dispatches;
      let got: Float32Array, want: { v: number; err: number }[];
      if (s.op === 'qkv') {
        const [wq, wk, wv] = [r16(w.slice(0, s.rows * s.cols)), r16(w.slice(s.rows * s.cols, (s.rows + s.kvRows) * s.cols)), r16(w.slice((s.rows + s.kvRows) * s.cols))];
        const out = b.scratch(s.rows + 2 * s.kvRows);
        expect(b.projectQKV(out, b.weight(wq, half), b.weight(wk, half), b.weight(wv, half), tb(x), s.rows, s.kvRows, s.cols, norm)).toBe(true);
        got = await b.read(out, s.rows + 2 * s.kvRows);
        want = [...Array.from({ length: s.rows }, (_, r) => dot(wq, r)), ...Array.from({ length: s.kvRows }, (_, r) => dot(wk, r)), ...Array.from({ length: s.kvRows }, (_, r) => dot(wv, r))];
      } else if (s.op === 'gated') {
        const [wg, wup] = [r16(w.slice(0, s.rows * s.cols)), r16(wu)];
        const out = b.scratch(s.rows);
        b.gatedMatmul(out, b.weight(wg, half), b.weight(wup, half), tb(x), b.scratch(s.rows), 1, s.rows, s.cols, s.act, norm);
        got = await b.read(out, s.rows);
        want = Array.from({ length: s.rows }, (_, r) => {
          const [g, up] = [dot(wg, r), dot(wup, r)];
          const a = gateRef(s.act, g.v);
          // as the gated FFN test: the gate's error through the activation's slope, the up product's, then a.rel
          return { v: a.value * up.v, err: a.slope * g.err * (Math.abs(up.v) + up.err) + Math.abs(a.value) * up.err + a.rel * Math.abs(a.value * up.v) };
        });
      } else {
        const wm = r16(w.slice(0, s.rows * s.cols));
        const out = tb(prev);
        b.matmul([{ out, w: b.weight(wm, half), x: tb(x), n: 1, rows: s.rows, cols: s.cols, accumulate: s.accumulate, norm }]);
        got = await b.read(out, s.rows);
        // (accumulating: one more rounding of the sum)
        want = Array.from({ length: s.rows }, (_, r) => { const d = dot(wm, r); const v = d.v + (s.accumulate ? prev[r]! : 0); return { v, err: d.err + (s.accumulate ? u * Math.abs(v) : 0) }; });
      }
      expect(counters.dispatches - before).toBe(1);
      want.forEach((e, i) => expect(Math.abs(got[i]! - e.v), `${s.op} row ${i}`).toBeLessThanOrEqual(e.err * 1.01 + FTZ));
      const hs = await b.read(h, s.cols);
      xn.forEach((v, c) => expect(Math.abs(hs[c]! - v)).toBeLessThanOrEqual((s.cols / 128 + 10) * u * 1.01 * Math.abs(v) + FTZ));
    });
  };

  it('tiled prefill product with each invocation tile (8 x 4, the hardware default; 16 x 16, the software one; 12 x 8): f32 and quantized weights, over several workgroup tiles each way', async () => {
    if (!gpu) return;
    const { createWebGPUBackend } = await import('../src/backend/webgpu.js');
    const { quantizeMatrix, dequantizeMatrix } = await import('../src/quant/formats.js');
    await expect(createWebGPUBackend({ prefillTile: [6, 4] })).rejects.toThrow(/prefillTile: \[6, 4\] is not a tile.*each 4, 8, 12 or 16/);
    for (const tile of [[8, 4], [16, 16], [12, 8]] as const) {
      const b = await createWebGPUBackend({ prefillTile: tile });
      try {
        expect(b.prefillTile).toEqual(tile);
        // Up to 300 rows and 300 inputs: past 2 tiles of 128 both ways for 16 x 16, partial last tiles.
        const shape = fc.record({ n: fc.integer({ min: 5, max: 300 }), rows: fc.integer({ min: 1, max: 300 }), blocks: fc.integer({ min: 1, max: 3 }), type: fc.constantFrom(GGMLType.F32, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_K), accumulate: fc.boolean(), seed: fc.integer({ min: 1, max: 2 ** 30 }) });
        await check(shape, async (s) => {
          const cols = s.type === GGMLType.Q4_K ? 256 * s.blocks : 32 * s.blocks + (s.type === GGMLType.F32 ? 7 : 0);
          let st = s.seed;
          const rnd = () => ((st = (Math.imul(st, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
          const wf = Float32Array.from({ length: s.rows * cols }, rnd);
          const x = Float32Array.from({ length: s.n * cols }, rnd);
          const prev = Float32Array.from({ length: s.n * s.rows }, rnd);
          const m = s.type === GGMLType.F32 ? undefined : quantizeMatrix(s.type, wf, s.rows, cols);
          const out = b.weight(prev);
          b.matmul([{ out, w: m ? b.weight(m) : b.weight(wf), x: b.weight(x), n: s.n, rows: s.rows, cols, accumulate: s.accumulate }]);
          expectProduct(await b.read(out, s.n * s.rows), m ? dequantizeMatrix(m) : wf, x, prev, { ...s, cols });
        }, 12);
      } finally {
        b.dispose();
      }
    }
  });

  it('matmul with f16 weights (shader-f16): same bound, since f16 widens to f32 exactly', async () => {
    if (!gpu) return;
    if (!gpu.f16) return console.warn('adapter has no shader-f16: f16 kernel not tested here');
    await matmulProperty(true);
  });

  it('rmsnormAdd (Gemma 2/3\'s x += rmsnorm(o) in one pass): bit for bit rmsnorm then add, the normalized rows stored too', async () => {
    if (!gpu) return;
    const shape = fc.record({ n: fc.integer({ min: 1, max: 4 }), dim: fc.integer({ min: 1, max: 300 }), eps: fc.constantFrom(1e-5, 1e-6) });
    await check(shape.chain((s) => fc.record({ s: fc.constant(s), x: arr(s.n * s.dim, 8), w: arr(s.dim, 2), acc: arr(s.n * s.dim, 8) })), async ({ s, x, w, acc }) => {
      const len = s.n * s.dim;
      const [out1, sum1] = [gpu!.scratch(len), t(acc)];
      gpu!.rmsnorm(out1, t(x), t(w), s.dim, s.eps, s.n);
      gpu!.add(sum1, out1, len);
      const [out2, sum2] = [gpu!.scratch(len), t(acc)];
      gpu!.rmsnormAdd(out2, t(x), t(w), s.dim, s.eps, s.n, sum2);
      expect(Array.from(await read(out2, len))).toEqual(Array.from(await read(out1, len)));
      expect(Array.from(await read(sum2, len))).toEqual(Array.from(await read(sum1, len)));
    });
    const b = gpu.scratch(4);
    expect(() => gpu!.rmsnormAdd(b, gpu!.scratch(4), gpu!.scratch(4), 4, 1e-6, 1, b)).toThrow(/three buffers/);
  });

  it('rmsnorm over n rows of odd widths', async () => {
    if (!gpu) return;
    const shape = fc.record({ n: fc.integer({ min: 1, max: 4 }), dim: fc.integer({ min: 1, max: 200 }), eps: fc.constantFrom(1e-5, 1e-6) });
    await check(shape.chain((s) => fc.record({ s: fc.constant(s), x: arr(s.n * s.dim, 8), w: arr(s.dim, 2) })), async ({ s, x, w }) => {
      const out = gpu!.scratch(s.n * s.dim);
      gpu!.rmsnorm(out, t(x), t(w), s.dim, s.eps, s.n);
      const got = await read(out, s.n * s.dim);
      for (let k = 0; k < s.n; k++) {
        let ss = 0;
        for (let i = 0; i < s.dim; i++) ss += x[k * s.dim + i]! ** 2;
        const inv = 1 / Math.sqrt(ss / s.dim + s.eps);
        // Sum of squares in chains of <= dim + 6 f32 additions, then divide, add, sqrt, divide, 2 products.
        for (let i = 0; i < s.dim; i++) {
          const ref = x[k * s.dim + i]! * inv * w[i]!;
          expect(Math.abs(got[k * s.dim + i]! - ref)).toBeLessThanOrEqual((s.dim + 16) * u * 1.01 * Math.abs(ref) + FTZ);
        }
      }
    });
  });

  it('rope, both conventions, partial rotary, odd head counts, positions up to 4000', async () => {
    if (!gpu) return;
    const shape = fc.record({ half: fc.integer({ min: 1, max: 16 }), extra: fc.integer({ min: 0, max: 2 }), nHeads: fc.integer({ min: 1, max: 7 }), n: fc.integer({ min: 1, max: 3 }), start: fc.integer({ min: 0, max: 4000 }), theta: fc.constantFrom(10000, 1e6), style: fc.constantFrom<RopeStyle>('interleaved', 'neox') });
    await check(shape.chain((s) => fc.record({ s: fc.constant(s), x: arr(s.n * s.nHeads * (2 * s.half + 2 * s.extra)) })), async ({ s, x }) => {
      const p = { headDim: 2 * s.half + 2 * s.extra, ropeDims: 2 * s.half, theta: s.theta, style: s.style };
      const xt = t(x);
      gpu!.rope(xt, s.nHeads, s.start, s.n, p);
      const got = await read(xt, x.length);
      const f = ropeFrequencies(p);
      for (let k = 0; k < s.n; k++)
        for (let h = 0; h < s.nHeads; h++) {
          const base = (k * s.nHeads + h) * p.headDim;
          for (let i = 0; i < p.headDim; i++) if (i >= p.ropeDims) expect(got[base + i]).toBe(x[base + i]);
          for (let i = 0; i < s.half; i++) {
            const [a, b] = s.style === 'interleaved' ? [base + 2 * i, base + 2 * i + 1] : [base + i, base + i + s.half];
            const ang = (s.start + k) * f[i]!;
            const ra = x[a]! * Math.cos(ang) - x[b]! * Math.sin(ang);
            const rb = x[a]! * Math.sin(ang) + x[b]! * Math.cos(ang);
            // WGSL sin/cos: absolute error <= 2^-11 (after range reduction); the f32 angle is off by
            // <= 2u |angle|; then two products and a sum.
            const tol = (2 ** -11 + 2 * u * Math.abs(ang) + 4 * u) * (Math.abs(x[a]!) + Math.abs(x[b]!)) + FTZ;
            expect(Math.abs(got[a]! - ra)).toBeLessThanOrEqual(tol);
            expect(Math.abs(got[b]! - rb)).toBeLessThanOrEqual(tol);
          }
        }
    });
  });

  it('rope fused with the KV-cache write (ropeCache) equals rope on q and k then copyRows into the caches, bit for bit; f32 and f16 caches, no rotation, partial rotary', async () => {
    if (!gpu) return;
    const shape = fc.record({ half: fc.integer({ min: 1, max: 8 }), extra: fc.integer({ min: 0, max: 2 }), nKv: fc.integer({ min: 1, max: 3 }), group: fc.integer({ min: 1, max: 3 }), n: fc.integer({ min: 1, max: 3 }), row0: fc.integer({ min: 0, max: 2 }), start: fc.integer({ min: 0, max: 40 }), style: fc.constantFrom<RopeStyle | 'none'>('interleaved', 'neox', 'none'), f16: fc.boolean() });
    await check(shape.chain((s) => {
      const headDim = 2 * s.half + 2 * s.extra;
      const rows = s.row0 + s.n;
      return fc.record({ s: fc.constant(s), q: arr(rows * s.nKv * s.group * headDim), k: arr(rows * s.nKv * headDim), v: arr(rows * s.nKv * headDim) });
    }), async ({ s, q, k, v }) => {
      const half = s.f16 && !!gpu!.f16;
      const headDim = 2 * s.half + 2 * s.extra, nHeads = s.nKv * s.group, kvDim = s.nKv * headDim, ctx = s.start + s.n + 1;
      const p = s.style === 'none' ? undefined : { headDim, ropeDims: 2 * s.half, theta: 10000, style: s.style };
      // unfused: rope twice, then the two cache writes
      const [q1, k1] = [t(q), t(k)];
      const [kc1, vc1] = [gpu!.kvCache(ctx * kvDim, half), gpu!.kvCache(ctx * kvDim, half)];
      if (p) { gpu!.rope(q1, nHeads, s.start, s.n, p, s.row0); gpu!.rope(k1, s.nKv, s.start, s.n, p, s.row0); }
      gpu!.copyRows(kc1, s.start, k1, s.row0, s.n, kvDim);
      gpu!.copyRows(vc1, s.start, t(v), s.row0, s.n, kvDim);
      // fused
      const [q2, k2] = [t(q), t(k)];
      const [kc2, vc2] = [gpu!.kvCache(ctx * kvDim, half), gpu!.kvCache(ctx * kvDim, half)];
      gpu!.ropeCache(q2, k2, t(v), kc2, vc2, nHeads, s.nKv, headDim, s.start, s.n, p, s.row0);
      expect(Array.from(await read(q2, q.length))).toEqual(Array.from(await read(q1, q.length)));
      expect(Array.from(await read(k2, k.length))).toEqual(Array.from(k)); // k itself is left alone
      // the caches' bits (an f16 cache read as f32 words holds two values each; kvDim is even)
      const bits = async (c: GpuTensor) => Array.from(new Uint32Array((await read(c, half ? (ctx * kvDim) / 2 : ctx * kvDim)).buffer));
      for (const [a, b] of [[kc2, kc1], [vc2, vc1]] as const) expect(await bits(a)).toEqual(await bits(b));
    });
  });

  /**
   * `half`: K and V go through copyRows into an f16 KV cache; the reference uses the same f16-rounded
   * values. Random scales, soft-caps and sliding windows besides.
   */
  const attentionProperty = async (half: boolean, wide = false, b: WebGPUBackend = gpu!) => {
    const shape = (wide ? wideShape : fc.record({
      nKv: fc.integer({ min: 1, max: 3 }), group: fc.integer({ min: 1, max: 5 }), d: fc.integer({ min: 1, max: 70 }), start: fc.integer({ min: 0, max: 900 }), n: fc.constantFrom(1, 2, 3, 4, 7, 16, 17, 33),
      // Gemma 2's options: a scale other than 1/sqrt(d), a soft-cap, a sliding window (Mistral, Gemma).
      scale: fc.option(fc.double({ min: 0.05, max: 1, noNaN: true }), { nil: undefined }),
      softcap: fc.option(fc.double({ min: 0.5, max: 6, noNaN: true }), { nil: undefined }),
      window: fc.option(fc.integer({ min: 1, max: 600 }), { nil: undefined }),
      // Encoders: every row sees every position of the step (one case in four; n up to 200 rows).
      causal: fc.constantFrom(true, true, true, false),
    })).map((s) => (s.causal ? s : { ...s, n: s.n * 6, start: s.start % 400 }));
    await check(shape.chain((s) => fc.record({ s: fc.constant(s), q: arr(s.n * s.nKv * s.group * s.d, 1), k32: arr((s.start + s.n) * s.nKv * s.d, 1), v32: arr((s.start + s.n) * s.nKv * s.d, 2) })), async ({ s, q, k32, v32 }) => {
      const nHeads = s.nKv * s.group;
      const ctx = s.start + s.n;
      const cache = (x: Float32Array) => {
        const c = b.kvCache(x.length, half);
        expect(c.half).toBe(half);
        b.copyRows(c, 0, b.weight(x), 0, ctx, s.nKv * s.d);
        return c;
      };
      const rounded = (x: Float32Array) => (half ? x.map((y) => f16ToF32(f32ToF16(y))) : x);
      const [k, v] = [rounded(k32), rounded(v32)];
      const out = b.scratch(s.n * nHeads * s.d);
      b.attention(out, b.weight(q), cache(k32), cache(v32), s.n, s.start, { nHeads, nKvHeads: s.nKv, headDim: s.d, scale: s.scale, softcap: s.softcap, window: s.window, causal: s.causal });
      const got = await b.read(out, s.n * nHeads * s.d);
      const vmax = v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      for (let r = 0; r < s.n; r++)
        for (let h = 0; h < nHeads; h++) {
          const g = Math.floor(h / s.group);
          const end = s.causal ? s.start + r + 1 : ctx;
          const first = s.window && s.causal ? Math.max(0, end - s.window) : 0; // the positions this row sees: first .. end - 1
          const len = end - first;
          const scale = s.scale ?? 1 / Math.sqrt(s.d);
          let dmag = 0, smax = 0;
          const sc = Array.from({ length: len }, (_, j) => {
            const p = first + j;
            let dot = 0, m = 0;
            for (let i = 0; i < s.d; i++) { const e = q[(r * nHeads + h) * s.d + i]! * k[(p * s.nKv + g) * s.d + i]!; dot += e; m += Math.abs(e); }
            dmag = Math.max(dmag, m);
            smax = Math.max(smax, Math.abs(dot * scale));
            return s.softcap ? s.softcap * Math.tanh((dot * scale) / s.softcap) : dot * scale;
          });
          const mx = Math.max(...sc);
          const e = sc.map((x) => Math.exp(x - mx));
          const z = e.reduce((a, b) => a + b, 0);
          const range = mx - Math.min(...sc);
          // Each score is off by <= delta = (d + 2) u sum|q k| / sqrt(d); exp adds (3 + 2 range) ulp;
          // the sums over len positions add len u each: weights are off by a relative
          // 2 delta + (3 + 2 range + 2 len + 8) u, and the output by that times max|v|.
          // Past ATTENTION_CHUNK positions the split-K path rescales each chunk by one more exp:
          // another (3 + 2 range) ulp on the weights, and the sums over chunks add (chunks + 2) u.
          // A custom scale replaces 1/sqrt(d). A soft-cap passes score errors on shrunk (slope <= 1) and adds
          // its own: tanh as (1 - e) / (1 + e) from WGSL's exp (3 + 2|x| ulp at x = 2|s|/c), slope <= 1/2
          // in e relative, 3 roundings, times c: <= (3 c + 2|s| + 3 c) u.
          const delta = (s.d + 2) * u * dmag * scale + (s.softcap ? (6 * s.softcap + 2 * smax) * u : 0);
          // With ATTENTION_PREFILL_FROM rows or more the tiled path rescales once per tile of 8
          // positions instead: those exps' arguments sum to at most the range, each adds 3 ulp and
          // one rounding of the running sums, so 4 tiles + 2 range more.
          const prefill = s.n >= ATTENTION_PREFILL_FROM && s.d <= 128;
          const chunks = !prefill && ctx > ATTENTION_CHUNK ? Math.ceil(ctx / ATTENTION_CHUNK) : 0;
          const splitTerm = chunks ? 3 + 2 * range + chunks + 2 : prefill ? 4 * Math.ceil(ctx / 8) + 2 * range : 0;
          const tol = (2 * delta + (3 + 2 * range + 2 * len + 8 + splitTerm) * u) * 1.01 * vmax + FTZ;
          for (let i = 0; i < s.d; i++) {
            let ref = 0;
            for (let j = 0; j < len; j++) ref += (e[j]! / z) * v[((first + j) * s.nKv + g) * s.d + i]!;
            expect(Math.abs(got[(r * nHeads + h) * s.d + i]! - ref)).toBeLessThanOrEqual(tol);
          }
        }
    }, wide ? 6 : 25);
  };
  // Head sizes past 128 (Gemma's 256) take the untiled path, whose scores scratch holds [n][heads][ctx]:
  // causal steps of more than 32 rows (the WebGPU backend's 128-token prefill) run 32 rows at a time.
  const wideShape = fc.record({
    nKv: fc.integer({ min: 1, max: 2 }), group: fc.integer({ min: 1, max: 3 }), d: fc.integer({ min: 129, max: 140 }), start: fc.integer({ min: 0, max: 300 }), n: fc.constantFrom(33, 70, 100),
    scale: fc.constant(undefined), softcap: fc.option(fc.double({ min: 0.5, max: 6, noNaN: true }), { nil: undefined }), window: fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined }), causal: fc.constant(true),
  });
  it('attention: causal and bidirectional, GQA/MQA, odd heads, long contexts, scales, soft-caps, sliding windows', async () => {
    if (!gpu) return;
    await attentionProperty(false);
  });
  it('attention with heads wider than 128 over more than 32 causal rows (run 32 rows at a time)', async () => {
    if (!gpu) return;
    await attentionProperty(false, true);
  });
  it('prefill attention with 1, 2 and 4 query rows an invocation (1 the hardware default, 4 the software one): same bound', async () => {
    if (!gpu) return;
    const { createWebGPUBackend } = await import('../src/backend/webgpu.js');
    await expect(createWebGPUBackend({ attentionRows: 3 })).rejects.toThrow(/attentionRows: 3 is not 1, 2 or 4/);
    for (const rows of [1, 2, 4]) {
      const b = await createWebGPUBackend({ attentionRows: rows });
      try {
        expect(b.attentionRows).toBe(rows);
        await attentionProperty(false, false, b);
      } finally {
        b.dispose();
      }
    }
  });
  it('attention over an f16 KV cache (shader-f16): same bound against the f16-rounded keys and values', async () => {
    if (!gpu) return;
    if (!gpu.f16) return console.warn('adapter has no shader-f16: f16 KV cache not tested here');
    await attentionProperty(true);
  });

  it('layernorm over n rows of odd widths, with and without bias', async () => {
    if (!gpu) return;
    const shape = fc.record({ n: fc.integer({ min: 1, max: 4 }), dim: fc.integer({ min: 1, max: 700 }), eps: fc.constantFrom(1e-5, 1e-6), bias: fc.boolean() });
    await check(shape.chain((s) => fc.record({ s: fc.constant(s), x: arr(s.n * s.dim, 8), w: arr(s.dim, 2), b: arr(s.dim, 2) })), async ({ s, x, w, b }) => {
      const bias = s.bias ? b : new Float32Array(s.dim);
      const out = gpu!.scratch(s.n * s.dim);
      gpu!.layernorm(out, t(x), t(w), t(bias), s.dim, s.eps, s.n);
      const got = await read(out, s.n * s.dim);
      for (let r = 0; r < s.n; r++) {
        const row = Array.from(x.subarray(r * s.dim, (r + 1) * s.dim));
        const mean = row.reduce((a, v) => a + v, 0) / s.dim;
        const absMean = row.reduce((a, v) => a + Math.abs(v), 0) / s.dim;
        const sd = Math.sqrt(row.reduce((a, v) => a + (v - mean) ** 2, 0) / s.dim + s.eps);
        // The mean is off by (dim/64 + 6) u mean|x| (strided sums, then a 64-way tree); x - mean
        // carries that absolutely, the variance sum likewise relatively, then ~6 roundings per element.
        const k = (s.dim / 64 + 12) * u * 1.01;
        for (let i = 0; i < s.dim; i++) {
          const ref = ((row[i]! - mean) / sd) * w[i]! + bias[i]!;
          const tol = (k * (Math.abs(row[i]! - mean) + absMean + sd)) / sd * Math.abs(w[i]!) + 2 * u * Math.abs(bias[i]!) + FTZ;
          expect(Math.abs(got[r * s.dim + i]! - ref)).toBeLessThanOrEqual(tol);
        }
      }
    });
  });

  it('softmax over n rows of any length (up to several workgroup strides)', async () => {
    if (!gpu) return;
    const shape = fc.record({ n: fc.integer({ min: 1, max: 3 }), len: fc.integer({ min: 1, max: 1000 }) });
    await check(shape.chain((s) => fc.record({ s: fc.constant(s), x: arr(s.n * s.len, 30) })), async ({ s, x }) => {
      const xt = t(x);
      gpu!.softmax(xt, s.len, s.n);
      const got = await read(xt, s.n * s.len);
      for (let r = 0; r < s.n; r++) {
        const row = Array.from(x.subarray(r * s.len, (r + 1) * s.len));
        const mx = Math.max(...row);
        const e = row.map((v) => Math.exp(v - mx));
        const z = e.reduce((a, v) => a + v, 0);
        // Each exp within (3 + 2|x - max|) ulp; the sum of positive terms within (len/64 + 6) u; then
        // one multiply by the rounded reciprocal (2 roundings).
        for (let i = 0; i < s.len; i++) {
          const ref = e[i]! / z;
          const tol = (3 + 2 * (mx - row[i]!) + s.len / 64 + 6 + 3) * u * 1.01 * ref + FTZ;
          expect(Math.abs(got[r * s.len + i]! - ref)).toBeLessThanOrEqual(tol);
        }
      }
    });
  });

  it('gelu (tanh approximation) elementwise', async () => {
    if (!gpu) return;
    await check(fc.integer({ min: 1, max: 5000 }).chain((n) => arr(n, 8)), async (x) => {
      const xt = t(x);
      gpu!.activate(xt, x.length, 'gelu');
      const got = await read(xt, x.length);
      for (let i = 0; i < x.length; i++) {
        const v = x[i]!;
        const z = Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3);
        const ref = v / (1 + Math.exp(-2 * z));
        // z carries ~5 roundings (relative); exp(-2z) is then off by 2|z| * 5u from that plus its own
        // (3 + 2|2z|) ulp; 1 + e and the division add 2 more: (8 + 14|z|) u relative to the result.
        expect(Math.abs(got[i]! - ref)).toBeLessThanOrEqual((8 + 14 * Math.abs(z)) * u * 1.01 * Math.abs(ref) + FTZ);
      }
    });
  });

  it('top-k: the k best (index, value) pairs, sorted, lower index first on ties, across 2048-value chunks', async () => {
    if (!gpu) return;
    // Coarse values (multiples of 1/4 in [-10, 10]) make ties common, -0 beside +0 too (equal, so the
    // lower index first); any finite f32 besides; lengths span several chunks.
    const value = fc.oneof({ arbitrary: fc.integer({ min: -40, max: 40 }).map((a) => a / 4), weight: 6 }, fc.constantFrom(-0, 0), fc.float({ noNaN: true, noDefaultInfinity: true }));
    const shape = fc.record({ len: fc.integer({ min: 1, max: 7000 }), k: fc.integer({ min: 1, max: 128 }), offset: fc.integer({ min: 0, max: 5 }) });
    await check(shape.chain((s) => fc.record({ s: fc.constant(s), v: fc.array(value, { minLength: s.offset + s.len, maxLength: s.offset + s.len }) })), async ({ s, v }) => {
      const x = Float32Array.from(v);
      const got = await gpu!.topk(t(x), s.offset, s.len, s.k);
      const want = sortedCandidates(x.subarray(s.offset), s.k); // exact: comparisons only
      expect(got.ids).toEqual(want.ids);
      expect(got.logits).toEqual(want.logits);
    }, 25);
    // -0 equals +0: the lower index wins, whichever sign it has
    for (const x of [[-1, -0, 0, -2], [-1, 0, -0, -2]]) expect((await gpu.topk(t(Float32Array.from(x)), 0, 4, 1)).ids).toEqual([1]);
  });

  it('gated FFN input act(Wgate x) * (Wup x), SwiGLU and GeGLU: one fused pass for n = 1, products + activation otherwise; f32 and f16 weights', async () => {
    if (!gpu) return;
    const shape = fc.record({ n: fc.constantFrom(1, 1, 3, 9), rows: fc.integer({ min: 1, max: 150 }), cols: fc.integer({ min: 1, max: 300 }), half: fc.boolean(), act: fc.constantFrom<'silu' | 'gelu'>('silu', 'gelu') });
    await check(shape.chain((s) => fc.record({ s: fc.constant(s), wg: arr(s.rows * s.cols, 1), wu: arr(s.rows * s.cols, 1), x: arr(s.n * s.cols, 2) })), async ({ s, wg, wu, x }) => {
      const half = s.half && gpu!.f16;
      const r16 = (a: Float32Array) => (half ? a.map((v) => f16ToF32(f32ToF16(v))) : a);
      const [g16, u16] = [r16(wg), r16(wu)];
      const out = gpu!.scratch(s.n * s.rows);
      gpu!.gatedMatmul(out, gpu!.weight(g16, half), gpu!.weight(u16, half), t(x), gpu!.scratch(s.n * s.rows), s.n, s.rows, s.cols, s.act);
      const got = await read(out, s.n * s.rows);
      for (let k = 0; k < s.n; k++)
        for (let r = 0; r < s.rows; r++) {
          let g = 0, up = 0, gm = 0, um = 0;
          for (let c = 0; c < s.cols; c++) {
            const xv = x[k * s.cols + c]!;
            g += g16[r * s.cols + c]! * xv; gm += Math.abs(g16[r * s.cols + c]! * xv);
            up += u16[r * s.cols + c]! * xv; um += Math.abs(u16[r * s.cols + c]! * xv);
          }
          const a = gateRef(s.act, g);
          const ref = a.value * up;
          // Each product within (cols + 8) u of its magnitude sum (as matmul); the activation's slope is
          // at most a.slope, so the gate's error moves the result by <= slope eg |up|; the activation and
          // the product add a.rel relative, as elementwise.
          const [eg, eu] = [(s.cols + 8) * u * gm, (s.cols + 8) * u * um];
          const tol = (a.slope * eg * (Math.abs(up) + eu) + Math.abs(a.value) * eu + a.rel * Math.abs(ref)) * 1.01 + FTZ;
          expect(Math.abs(got[k * s.rows + r]! - ref)).toBeLessThanOrEqual(tol);
        }
    });
  });

  it('gated FFN input with quantized weights (decode): one fused pass per format, as act(Wgate x) * (Wup x) of the dequantized weights, SwiGLU and GeGLU', async () => {
    if (!gpu) return;
    const { quantizeMatrix, dequantizeMatrix, QUANT_FORMATS } = await import('../src/quant/formats.js');
    const types = Object.keys(QUANT_FORMATS).map(Number) as (keyof typeof QUANT_FORMATS)[];
    const shape = fc.record({ type: fc.constantFrom(...types), rows: fc.integer({ min: 1, max: 150 }), blocks: fc.integer({ min: 1, max: 2 }), seed: fc.integer({ min: 1, max: 2 ** 30 }), act: fc.constantFrom<'silu' | 'gelu'>('silu', 'gelu') });
    const before = { ...(gpu as unknown as { counters: { dispatches: number } }).counters };
    let calls = 0;
    await check(shape, async (s) => {
      const cols = QUANT_FORMATS[s.type].blockSize * s.blocks;
      let st = s.seed;
      const rnd = () => ((st = (Math.imul(st, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
      const [mg, mu] = [0, 1].map(() => quantizeMatrix(s.type, Float32Array.from({ length: s.rows * cols }, rnd), s.rows, cols));
      const [dg, du] = [dequantizeMatrix(mg!), dequantizeMatrix(mu!)];
      const x = Float32Array.from({ length: cols }, rnd);
      const out = gpu!.scratch(s.rows);
      gpu!.gatedMatmul(out, gpu!.weight(mg!), gpu!.weight(mu!), t(x), gpu!.scratch(s.rows), 1, s.rows, cols, s.act);
      calls++;
      const got = await read(out, s.rows);
      for (let r = 0; r < s.rows; r++) {
        let g = 0, up = 0, gm = 0, um = 0;
        for (let c = 0; c < cols; c++) {
          g += dg[r * cols + c]! * x[c]!; gm += Math.abs(dg[r * cols + c]! * x[c]!);
          up += du[r * cols + c]! * x[c]!; um += Math.abs(du[r * cols + c]! * x[c]!);
        }
        const a = gateRef(s.act, g);
        const ref = a.value * up;
        // as the f32 gated test above: each dequantized value is exact in f32 (matmul-quant.wgsl), so
        // each product is within (cols + 8) u of its magnitude sum, then the activation and the product.
        const [eg, eu] = [(cols + 8) * u * gm, (cols + 8) * u * um];
        const tol = (a.slope * eg * (Math.abs(up) + eu) + Math.abs(a.value) * eu + a.rel * Math.abs(ref)) * 1.01 + FTZ;
        expect(Math.abs(got[r]! - ref)).toBeLessThanOrEqual(tol);
      }
    });
    // one dispatch per call: the fused pass (reading results back is a copy, not a dispatch)
    expect((gpu as unknown as { counters: { dispatches: number } }).counters.dispatches - before.dispatches).toBe(calls);
  });

  it('RMSNorm folded into a decode product (MatmulOp.norm, gatedMatmul\'s norm): one dispatch, bit for bit the rmsnorm then the product, the normalized row stored too; every quantized format, f32 and f16 weights', async () => {
    if (!gpu) return;
    const { quantizeMatrix, QUANT_FORMATS } = await import('../src/quant/formats.js');
    const kinds = [...(Object.keys(QUANT_FORMATS).map(Number) as (keyof typeof QUANT_FORMATS)[]), 'f32', 'f16'] as const;
    const shape = fc.record({ kind: fc.constantFrom(...kinds), rows: fc.integer({ min: 1, max: 150 }), blocks: fc.integer({ min: 1, max: 3 }), extra: fc.integer({ min: 0, max: 3 }), accumulate: fc.boolean(), gated: fc.boolean(), act: fc.constantFrom<'silu' | 'gelu'>('silu', 'gelu'), seed: fc.integer({ min: 1, max: 2 ** 30 }) });
    const counters = (gpu as unknown as { counters: { dispatches: number } }).counters;
    await check(shape, async (s) => {
      if (s.kind === 'f16' && !gpu!.f16) return;
      // dense rows of 32 * blocks + extra values: widths not a multiple of 4 take matmul.wgsl's element-wise loops
      const cols = typeof s.kind === 'number' ? QUANT_FORMATS[s.kind].blockSize * s.blocks : 32 * s.blocks + s.extra;
      let st = s.seed;
      const rnd = () => ((st = (Math.imul(st, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
      const matrix = () => {
        const w = Float32Array.from({ length: s.rows * cols }, rnd);
        if (typeof s.kind === 'number') return gpu!.weight(quantizeMatrix(s.kind, w, s.rows, cols));
        return gpu!.weight(s.kind === 'f16' ? w.map((v) => f16ToF32(f32ToF16(v))) : w, s.kind === 'f16');
      };
      const [w, wUp] = [matrix(), matrix()];
      const x = t(Float32Array.from({ length: cols }, (_, i) => rnd() * (i % 7 === 0 ? 30 : 1)));
      const nw = t(Float32Array.from({ length: cols }, rnd));
      const prev = Float32Array.from({ length: s.rows }, rnd);
      const eps = 1e-5;
      // unfused: rmsnorm, then the product of its output
      const [h1, out1] = [gpu!.scratch(cols), t(prev)];
      gpu!.rmsnorm(h1, x, nw, cols, eps, 1);
      if (s.gated) gpu!.gatedMatmul(out1, w, wUp, h1, gpu!.scratch(s.rows), 1, s.rows, cols, s.act);
      else gpu!.matmul([{ out: out1, w, x: h1, n: 1, rows: s.rows, cols, accumulate: s.accumulate }]);
      // fused: one dispatch
      const [h2, out2] = [gpu!.scratch(cols), t(prev)];
      const before = counters.dispatches;
      if (s.gated) gpu!.gatedMatmul(out2, w, wUp, x, gpu!.scratch(s.rows), 1, s.rows, cols, s.act, { w: nw, eps, out: h2 });
      else gpu!.matmul([{ out: out2, w, x, n: 1, rows: s.rows, cols, accumulate: s.accumulate, norm: { w: nw, eps, out: h2 } }]);
      expect(counters.dispatches - before).toBe(1);
      expect(Array.from(await read(h2, cols))).toEqual(Array.from(await read(h1, cols)));
      expect(Array.from(await read(out2, s.rows))).toEqual(Array.from(await read(out1, s.rows)));
    });
  });

  it('q, k and v projections of rmsnorm(x) packed in one pass (projectQKV; two with V in another format): bit for bit the separate stages; every quantized format, f32 and f16; q and k of different formats refused', async () => {
    if (!gpu) return;
    const { quantizeMatrix, QUANT_FORMATS } = await import('../src/quant/formats.js');
    const kinds = [...(Object.keys(QUANT_FORMATS).map(Number) as (keyof typeof QUANT_FORMATS)[]), 'f32', 'f16'] as const;
    const shape = fc.record({ kind: fc.constantFrom(...kinds), headDim: fc.constantFrom(8, 16, 64), nKv: fc.integer({ min: 1, max: 3 }), group: fc.integer({ min: 1, max: 3 }), blocks: fc.integer({ min: 1, max: 2 }), extra: fc.integer({ min: 0, max: 3 }), start: fc.integer({ min: 0, max: 30 }), seed: fc.integer({ min: 1, max: 2 ** 30 }), otherV: fc.boolean() });
    /** A V format other than the kind's, of the same block size (Q4_K_M's Q6_K beside Q4_K); f32 beside f16 and back. */
    const otherFormat = (kind: (typeof kinds)[number]): (typeof kinds)[number] => {
      if (kind === 'f32') return gpu!.f16 ? 'f16' : 'f32';
      if (kind === 'f16') return 'f32';
      if (QUANT_FORMATS[kind].blockSize === 256) return kind === GGMLType.Q6_K ? GGMLType.Q4_K : GGMLType.Q6_K;
      return kind === GGMLType.Q8_0 ? GGMLType.Q4_0 : GGMLType.Q8_0;
    };
    const counters = (gpu as unknown as { counters: { dispatches: number } }).counters;
    await check(shape, async (s) => {
      if (s.kind === 'f16' && !gpu!.f16) return;
      const cols = typeof s.kind === 'number' ? QUANT_FORMATS[s.kind].blockSize * s.blocks : 32 * s.blocks + s.extra; // (as above)
      const nHeads = s.nKv * s.group, qRows = nHeads * s.headDim, kvRows = s.nKv * s.headDim, ctx = s.start + 2;
      let st = s.seed;
      const rnd = () => ((st = (Math.imul(st, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
      const matrix = (rows: number, kind = s.kind) => {
        const w = Float32Array.from({ length: rows * cols }, rnd);
        if (typeof kind === 'number') return gpu!.weight(quantizeMatrix(kind, w, rows, cols));
        return gpu!.weight(kind === 'f16' ? w.map((v) => f16ToF32(f32ToF16(v))) : w, kind === 'f16');
      };
      const vKind = s.otherV ? otherFormat(s.kind) : s.kind;
      const [wq, wk, wv] = [matrix(qRows), matrix(kvRows), matrix(kvRows, vKind)];
      const x = t(Float32Array.from({ length: cols }, rnd));
      const nw = t(Float32Array.from({ length: cols }, rnd));
      // separate: rmsnorm, three products
      const [h1, q1, k1, v1] = [gpu!.scratch(cols), gpu!.scratch(qRows), gpu!.scratch(kvRows), gpu!.scratch(kvRows)];
      gpu!.rmsnorm(h1, x, nw, cols, 1e-6, 1);
      gpu!.matmul([{ out: q1, w: wq, x: h1, n: 1, rows: qRows, cols }, { out: k1, w: wk, x: h1, n: 1, rows: kvRows, cols }, { out: v1, w: wv, x: h1, n: 1, rows: kvRows, cols }]);
      // packed
      const [h2, qkv] = [gpu!.scratch(cols), gpu!.scratch(qRows + 2 * kvRows)];
      const before = counters.dispatches;
      expect(gpu!.projectQKV(qkv, wq, wk, wv, x, qRows, kvRows, cols, { w: nw, eps: 1e-6, out: h2 })).toBe(true);
      expect(counters.dispatches - before).toBe(vKind === s.kind ? 1 : 2);
      expect(Array.from(await read(h2, cols))).toEqual(Array.from(await read(h1, cols)));
      const row = Array.from(await read(qkv, qRows + 2 * kvRows));
      const parts = [...(await read(q1, qRows)), ...(await read(k1, kvRows)), ...(await read(v1, kvRows))];
      expect(row).toEqual(parts);
    });
    // q and k of different formats are not packed
    const w4 = gpu.weight(quantizeMatrix(GGMLType.Q4_K, new Float32Array(256 * 256).fill(0.5), 256, 256));
    const w6 = gpu.weight(quantizeMatrix(GGMLType.Q6_K, new Float32Array(64 * 256).fill(0.5), 64, 256));
    const before = (gpu as unknown as { counters: { dispatches: number } }).counters.dispatches;
    expect(gpu.projectQKV(gpu.scratch(384), w4, w6, w4, t(new Float32Array(256)), 256, 64, 256, { w: t(new Float32Array(256)), eps: 1e-6, out: gpu.scratch(256) })).toBe(false);
    expect((gpu as unknown as { counters: { dispatches: number } }).counters.dispatches).toBe(before);
  });

  it('biases, q/k norms, RoPE, the cache writes and decode attention from the packed row in one pass (ropeAttention): bit for bit the separate stages (bias add, rmsnorm per head, ropeCache, attention), the caches too; GQA, split-K, windows, soft-caps, partial and no rotation, f32 and f16 caches', async () => {
    if (!gpu) return;
    const shape = fc.record({
      headDim: fc.constantFrom(4, 8, 12, 64, 80, 128, 256), nKv: fc.integer({ min: 1, max: 3 }), group: fc.integer({ min: 1, max: 4 }),
      start: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: ATTENTION_CHUNK - 2, max: 3 * ATTENTION_CHUNK + 5 })),
      style: fc.constantFrom<RopeStyle | 'none'>('interleaved', 'neox', 'none'), partial: fc.boolean(), attnFactor: fc.option(fc.double({ min: 0.5, max: 2, noNaN: true }), { nil: undefined }),
      softcap: fc.option(fc.double({ min: 0.5, max: 6, noNaN: true }), { nil: undefined }), window: fc.option(fc.integer({ min: 1, max: 300 }), { nil: undefined }), f16: fc.boolean(),
      bias: fc.boolean(), norms: fc.boolean(), eps: fc.constantFrom(1e-6, 1e-5, 0.5),
    });
    const counters = (gpu as unknown as { counters: { dispatches: number } }).counters;
    await check(shape.chain((s) => {
      const nHeads = s.nKv * s.group, kvDim = s.nKv * s.headDim, ctx = s.start + 3, width = (nHeads + 2 * s.nKv) * s.headDim;
      return fc.record({ s: fc.constant(s), qkv: arr(width), bias: arr(width), normW: arr(2 * s.headDim), past: arr(2 * ctx * kvDim, 2) });
    }), async ({ s, qkv, bias, normW, past }) => {
      const half = s.f16 && !!gpu!.f16;
      const nHeads = s.nKv * s.group, qDim = nHeads * s.headDim, kvDim = s.nKv * s.headDim, ctx = s.start + 3;
      const ropeDims = s.partial ? 2 * Math.floor(s.headDim / 4) : s.headDim;
      const p = s.style === 'none' ? undefined : { headDim: s.headDim, ropeDims, theta: 10000, style: s.style, attnFactor: s.attnFactor };
      const shape = { nHeads, nKvHeads: s.nKv, headDim: s.headDim, softcap: s.softcap, window: s.window };
      // caches holding earlier steps' keys and values at every position (the step's own and later ones must be replaced / left)
      const caches = () => {
        const [kc, vc] = [gpu!.kvCache(ctx * kvDim, half), gpu!.kvCache(ctx * kvDim, half)];
        gpu!.copyRows(kc, 0, t(past.subarray(0, ctx * kvDim)), 0, ctx, kvDim);
        gpu!.copyRows(vc, 0, t(past.subarray(ctx * kvDim)), 0, ctx, kvDim);
        return [kc, vc] as const;
      };
      // separate: the biases added (one f32 rounding, as the add pass), q and k RMSNormed per head, then ropeCache and attention
      const row = s.bias ? qkv.map((x, i) => Math.fround(x + bias[i]!)) : qkv;
      let [q1, k1] = [t(row.slice(0, qDim)), t(row.slice(qDim, qDim + kvDim))];
      const v1 = t(row.slice(qDim + kvDim));
      if (s.norms) {
        const [qn, kn] = [gpu!.scratch(qDim), gpu!.scratch(kvDim)];
        gpu!.rmsnorm(qn, q1, t(normW.slice(0, s.headDim)), s.headDim, s.eps, nHeads);
        gpu!.rmsnorm(kn, k1, t(normW.slice(s.headDim)), s.headDim, s.eps / 2, s.nKv);
        [q1, k1] = [qn, kn];
      }
      const [kc1, vc1] = caches();
      const out1 = gpu!.scratch(qDim);
      gpu!.ropeCache(q1, k1, v1, kc1, vc1, nHeads, s.nKv, s.headDim, s.start, 1, p);
      gpu!.attention(out1, q1, kc1, vc1, 1, s.start, shape);
      // one pass from the packed row
      const [kc2, vc2] = caches();
      const extra = {
        bias: s.bias ? ([t(bias.slice(0, qDim)), t(bias.slice(qDim, qDim + kvDim)), t(bias.slice(qDim + kvDim))] as const) : undefined,
        qNorm: s.norms ? { w: t(normW.slice(0, s.headDim)), eps: s.eps } : undefined,
        kNorm: s.norms ? { w: t(normW.slice(s.headDim)), eps: s.eps / 2 } : undefined,
      };
      const out2 = gpu!.scratch(qDim);
      expect(gpu!.takesRopeAttention(s.headDim)).toBe(true);
      gpu!.ropeAttention(out2, t(qkv), kc2, vc2, s.start, shape, p, extra); // (the first use packs the biases and norm weights)
      const before = counters.dispatches;
      const [kc3, vc3] = caches();
      gpu!.ropeAttention(gpu!.scratch(qDim), t(qkv), kc3, vc3, s.start, shape, p, extra);
      expect(counters.dispatches - before).toBe(2 + (s.start + 1 > ATTENTION_CHUNK ? 2 : 1)); // (two cache fills) + attention (+ combine)
      expect(Array.from(await read(out2, qDim))).toEqual(Array.from(await read(out1, qDim)));
      const bits = async (c: GpuTensor) => Array.from(new Uint32Array((await read(c, half ? Math.ceil((ctx * kvDim) / 2) : ctx * kvDim)).buffer));
      for (const [a, b] of [[kc2, kc1], [vc2, vc1]] as const) expect(await bits(a)).toEqual(await bits(b));
    }, 30);
    // heads it does not take: said, not computed
    expect([6, 260].map((d) => gpu.takesRopeAttention(d))).toEqual([false, false]);
    expect(() => gpu!.ropeAttention(gpu!.scratch(36), gpu!.scratch(36), gpu!.scratch(36), gpu!.scratch(36), 0, { nHeads: 4, nKvHeads: 1, headDim: 6 }, undefined)).toThrow(/heads of 6/);
  });

  it('attention with Wo folded in (ropeAttention\'s project, attention-out.wgsl): per-head rows of Wo times each head, each within f32 rounding of float64; every Wo format (quantized, f32, f16), f32 and f16 caches, short and split contexts; the parts taken in by norms, products and addParts bit for bit as if added first', async () => {
    if (!gpu) return;
    const { quantizeMatrix, dequantizeMatrix, QUANT_FORMATS } = await import('../src/quant/formats.js');
    const kinds = [...(Object.keys(QUANT_FORMATS).map(Number) as (keyof typeof QUANT_FORMATS)[]), 'f32', 'f16'] as const;
    const shape = fc.record({
      kind: fc.constantFrom(...kinds), heads: fc.integer({ min: 1, max: 3 }), nKv: fc.constantFrom(1, 2), dense: fc.constantFrom(4, 12, 64, 80),
      rows: fc.integer({ min: 1, max: 150 }), start: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: ATTENTION_CHUNK - 2, max: ATTENTION_CHUNK + 40 })),
      f16: fc.boolean(), seed: fc.integer({ min: 1, max: 2 ** 30 }),
      consumer: fc.constantFrom('add', 'matmul', 'norm', 'gated', 'qkv'),
    });
    const counters = (gpu as unknown as { counters: { dispatches: number } }).counters;
    await check(shape, async (s) => {
      if (s.kind === 'f16' && !gpu!.f16) return;
      const half = s.f16 && !!gpu!.f16;
      // Heads whose columns fill whole blocks of Wo's format: 32- and 256-value blocks need 32 and 64 x 4k.
      const block = typeof s.kind === 'number' ? QUANT_FORMATS[s.kind].blockSize : 4;
      const headDim = block === 256 ? 64 : block === 32 ? 32 : s.dense;
      const nHeads = s.nKv * s.heads * (block === 256 ? 4 : 1);
      const qDim = nHeads * headDim, kvDim = s.nKv * headDim, ctx = s.start + 2, dim = s.rows;
      let st = s.seed;
      const rnd = () => ((st = (Math.imul(st, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
      const values = (n: number) => Float32Array.from({ length: n }, rnd);
      // Wo [dim][qDim] in its format, and the f32 values it stands for
      const woValues = values(dim * qDim);
      let wo: GpuTensor, woRef: Float32Array;
      if (typeof s.kind === 'number') {
        const m = quantizeMatrix(s.kind, woValues, dim, qDim);
        [wo, woRef] = [gpu!.weight(m), dequantizeMatrix(m)];
      } else {
        woRef = s.kind === 'f16' ? woValues.map((v) => f16ToF32(f32ToF16(v))) : woValues;
        wo = gpu!.weight(woRef, s.kind === 'f16');
      }
      const attnShape = { nHeads, nKvHeads: s.nKv, headDim };
      const p = { headDim, ropeDims: headDim, theta: 10000, style: 'neox' as const };
      const qkv = t(values(qDim + 2 * kvDim));
      const past = values(2 * ctx * kvDim);
      const caches = () => {
        const [kc, vc] = [gpu!.kvCache(ctx * kvDim, half), gpu!.kvCache(ctx * kvDim, half)];
        gpu!.copyRows(kc, 0, t(past.subarray(0, ctx * kvDim)), 0, ctx, kvDim);
        gpu!.copyRows(vc, 0, t(past.subarray(ctx * kvDim)), 0, ctx, kvDim);
        return [kc, vc] as const;
      };
      // attention's output, as ropeAttention computes it without Wo
      const [kc1, vc1] = caches();
      const att = gpu!.scratch(qDim);
      gpu!.ropeAttention(att, qkv, kc1, vc1, s.start, attnShape, p);
      const o = await read(att, qDim);
      // with Wo: one dispatch (two past a chunk of context: split, then combine with Wo), nHeads rows of dim
      expect(gpu!.projectsAttention(wo, attnShape)).toBe(true);
      const [kc2, vc2] = caches();
      const parts = gpu!.scratch(nHeads * dim);
      const before = counters.dispatches;
      gpu!.ropeAttention(parts, qkv, kc2, vc2, s.start, attnShape, p, {}, { w: wo, rows: dim });
      expect(counters.dispatches - before).toBe(s.start + 1 > ATTENTION_CHUNK ? 2 : 1);
      const got = await read(parts, nHeads * dim);
      // Head h's row: sum_j Wo[r][h * headDim + j] o[h * headDim + j], four interleaved sums added pairwise:
      // within (headDim + 1) * 2^-24 * sum |w o| of float64 (attention-out.wgsl's bound).
      for (let h = 0; h < nHeads; h++) for (let r = 0; r < dim; r++) {
        let exact = 0, mag = 0;
        for (let j = 0; j < headDim; j++) {
          const wv = woRef[r * qDim + h * headDim + j]! * o[h * headDim + j]!;
          exact += wv;
          mag += Math.abs(wv);
        }
        const err = Math.abs(got[h * dim + r]! - exact);
        expect(err, `head ${h} row ${r}`).toBeLessThanOrEqual((headDim + 1) * 2 ** -24 * mag + 1e-30);
      }
      // the caches are written as without Wo
      const bits = async (c: GpuTensor) => Array.from(new Uint32Array((await read(c, half ? Math.ceil((ctx * kvDim) / 2) : ctx * kvDim)).buffer));
      expect(await bits(kc2)).toEqual(await bits(kc1));
      // A consumer of the parts, against adding them first (addParts) and running it plainly; addParts
      // itself against the sums in order in f32.
      const x = values(dim).map((v, i) => v * (i % 5 === 0 ? 20 : 1));
      const pending = { t: parts, count: nHeads };
      const cols = dim, eps = 1e-5;
      const settled = () => {
        const x1 = t(x);
        gpu!.addParts(x1, pending, dim);
        return x1;
      };
      if (s.consumer === 'add') {
        const want = x.map((v, i) => { let a = v; for (let h = 0; h < nHeads; h++) a = Math.fround(a + got[h * dim + i]!); return a; });
        expect(Array.from(await read(settled(), dim))).toEqual(Array.from(want));
        return;
      }
      const w = t(values(24 * cols)), wUp = t(values(24 * cols)), nw = t(values(cols));
      const run = (xIn: GpuTensor, parts?: typeof pending, outParts?: typeof pending) => {
        const [out, h] = [s.consumer === 'matmul' ? xIn : gpu!.scratch(48), gpu!.scratch(cols)];
        if (s.consumer === 'matmul') gpu!.matmul([{ out, w: t(values(dim * 8).fill(0.25)), x: t(values(8)), n: 1, rows: dim, cols: 8, accumulate: true, parts: outParts }]);
        else if (s.consumer === 'norm') gpu!.matmul([{ out, w, x: xIn, n: 1, rows: 24, cols, norm: { w: nw, eps, out: h, parts } }]);
        else if (s.consumer === 'gated') gpu!.gatedMatmul(out, w, wUp, xIn, gpu!.scratch(24), 1, 24, cols, 'silu', { w: nw, eps, out: h, parts });
        else expect(gpu!.projectQKV(out, w, wUp, wUp, xIn, 16, 8, cols, { w: nw, eps, out: h, parts })).toBe(true);
        return out;
      };
      const length = { matmul: dim, norm: 24, gated: 24, qkv: 32 }[s.consumer];
      st = s.seed; // (the same weights both times)
      const plain = await read(run(settled()), length);
      st = s.seed;
      const x2 = t(x);
      const folded = await read(run(x2, pending, pending), length);
      expect(Array.from(folded)).toEqual(Array.from(plain));
      if (s.consumer !== 'matmul') expect(Array.from(await read(x2, dim))).toEqual(Array.from(x)); // (x itself unchanged)
    }, 24);
    // not folded in: heads ropeAttention does not take
    const one = gpu.weight(new Float32Array(64 * 24).fill(1));
    expect(gpu.projectsAttention(one, { nHeads: 4, nKvHeads: 1, headDim: 6 })).toBe(false);
  });

  it('quantized matmuls (Q8_0, Q4_0, Q4_K, Q6_K) dequantize in registers and match the CPU block reference to f32 rounding; quantized embedding gather is exact', async () => {
    if (!gpu) return;
    const { quantizeMatrix, quantMatmul, dequantizeMatrix, QUANT_FORMATS } = await import('../src/quant/formats.js');
    const types = Object.keys(QUANT_FORMATS).map(Number) as (keyof typeof QUANT_FORMATS)[];
    // Every format with every kind of step (decode's n = 1 loop, main's n <= 4, the tiled n > 4), so
    // that none is left to chance: a few random shapes each.
    const shape = (type: (typeof types)[number], n: number) => fc.record({ type: fc.constant(type), rows: fc.integer({ min: 1, max: 70 }), blocks: fc.integer({ min: 1, max: 2 }), n: fc.constant(n), accumulate: fc.boolean(), seed: fc.integer({ min: 1, max: 2 ** 30 }) });
    for (const type of types) for (const n of [1, 2, 5, 33]) await check(shape(type, n), async (s) => {
      const cols = QUANT_FORMATS[s.type].blockSize * s.blocks;
      let st = s.seed;
      const rnd = () => ((st = (Math.imul(st, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
      const m = quantizeMatrix(s.type, Float32Array.from({ length: s.rows * cols }, rnd), s.rows, cols);
      const x = Float32Array.from({ length: s.n * cols }, rnd);
      const prev = Float32Array.from({ length: s.n * s.rows }, rnd);
      const wt = gpu!.weight(m);
      expect(wt.quant).toBe(s.type);
      const out = t(prev);
      gpu!.matmul([{ out, w: wt, x: t(x), n: s.n, rows: s.rows, cols, accumulate: s.accumulate }]);
      const got = await read(out, s.n * s.rows);
      const ref = new Float32Array(s.n * s.rows);
      quantMatmul(ref, m, x, s.n); // float64 sums of the exact dequantized values
      const deq = dequantizeMatrix(m);
      for (let k = 0; k < s.n; k++)
        for (let r = 0; r < s.rows; r++) {
          let mag = s.accumulate ? Math.abs(prev[k * s.rows + r]!) : 0;
          for (let c = 0; c < cols; c++) mag += Math.abs(deq[r * cols + c]! * x[k * cols + c]!);
          // Same bound as the f32 matmul: each dequantized value is exact in f32 (code times scale,
          // one rounding, as on the CPU), so only the f32 sums differ: (cols + 8) u sum|w x|.
          const want = ref[k * s.rows + r]! + (s.accumulate ? prev[k * s.rows + r]! : 0);
          expect(Math.abs(got[k * s.rows + r]! - want)).toBeLessThanOrEqual((cols + 8) * u * 1.01 * mag + cols * FTZ);
        }
      // Embedding gather from the quantized table: the dequantized rows, exactly.
      const tokens = [s.rows - 1, 0, Math.floor(s.rows / 2)];
      const emb = gpu!.scratch(3 * cols);
      gpu!.embed(emb, wt, tokens, cols);
      const rows = await read(emb, 3 * cols);
      tokens.forEach((tok, i) => expect(Array.from(rows.subarray(i * cols, (i + 1) * cols))).toEqual(Array.from(deq.subarray(tok * cols, (tok + 1) * cols))));
    }, 3);
  });

  it('swiglu, embedding gather, row copy, argmax', async () => {
    if (!gpu) return;
    await check(fc.integer({ min: 1, max: 5000 }).chain((n) => fc.record({ g: arr(n, 20), y: arr(n, 20) })), async ({ g, y }) => {
      const n = g.length;
      const gt = t(g), yt = t(y);
      gpu!.gated(gt, yt, n, 'silu');
      const sw = await read(gt, n);
      // exp: (3 + 2|x|) ulp; then add, divide, multiply.
      for (let i = 0; i < n; i++) { const ref = (g[i]! / (1 + Math.exp(-g[i]!))) * y[i]!; expect(Math.abs(sw[i]! - ref)).toBeLessThanOrEqual((8 + 2 * Math.abs(g[i]!)) * u * Math.abs(ref) + FTZ); }
      const idx = await gpu!.argmax(t(g), 0, n);
      const best = g.reduce((bi, v, i) => (v > g[bi]! ? i : bi), 0);
      expect(idx).toBe(best); // exact, lowest index on ties
      // A NaN or infinity anywhere: -1 from argmax, no candidates from top-k (the model overflowed).
      const bad = g.slice();
      bad[n >> 1] = n % 2 ? NaN : -Infinity;
      expect(await gpu!.argmax(t(bad), 0, n)).toBe(-1);
      expect((await gpu!.topk(t(bad), 0, n, Math.min(5, n))).ids).toEqual([]);
    });
    const table = Float32Array.from({ length: 10 * 70 }, (_, i) => i);
    const out = gpu.scratch(3 * 70);
    gpu.embed(out, t(table), [7, 0, 9], 70);
    expect(Array.from(await read(out, 210))).toEqual([...table.slice(490, 560), ...table.slice(0, 70), ...table.slice(630, 700)]);
    const dst = gpu.scratch(4 * 70);
    gpu.copyRows(dst, 2, t(table), 5, 2, 70);
    expect(Array.from((await read(dst, 280)).slice(140))).toEqual(Array.from(table.slice(350, 490)));
  });

  it('gelu_erf, relu, soft-cap and GeGLU elementwise (ffn.wgsl)', async () => {
    if (!gpu) return;
    await check(fc.record({ n: fc.integer({ min: 1, max: 3000 }), cap: fc.double({ min: 0.5, max: 40, noNaN: true }) }).chain((s) => fc.record({ s: fc.constant(s), x: arr(s.n, 8), y: arr(s.n, 8) })), async ({ s, x, y }) => {
      const run = async (f: (xt: GpuTensor) => void) => { const xt = t(x); f(xt); return read(xt, s.n); };
      const [e, r, c, g] = [
        await run((xt) => gpu!.activate(xt, s.n, 'gelu_erf')),
        await run((xt) => gpu!.activate(xt, s.n, 'relu')),
        await run((xt) => gpu!.softcap(xt, s.n, s.cap)),
        await run((xt) => gpu!.gated(xt, t(y), s.n, 'gelu')),
      ];
      for (let i = 0; i < s.n; i++) {
        const v = x[i]!;
        // gelu_erf: erf from Numerical Recipes' erfc (absolute error <= 1.2e-7 of erfc, so of 1 + erf),
        // WGSL's exp inside it ((3 + 2 a^2) ulp at a = |x|/sqrt 2) and ~25 roundings of the polynomial.
        const a = Math.abs(v) / Math.SQRT2;
        const erfErr = 1.2e-7 + (30 + 2 * a * a) * u;
        expect(Math.abs(e[i]! - 0.5 * v * (1 + erfRef(v / Math.SQRT2)))).toBeLessThanOrEqual(0.5 * Math.abs(v) * erfErr + 3 * u * Math.abs(0.5 * v * 2) + FTZ);
        expect(r[i]).toBe(Math.max(v, 0) === 0 ? 0 : Math.fround(v)); // exact
        // soft-cap: cap (1 - e) / (1 + e), e = exp(-2|x|/cap) within (3 + 4|x|/cap) ulp, slope <= 1/2 in e; 4 roundings.
        const cref = s.cap * Math.tanh(v / s.cap);
        expect(Math.abs(c[i]! - cref)).toBeLessThanOrEqual(((3 + 4 * Math.abs(v) / s.cap) * 0.5 + 6) * u * s.cap + FTZ);
        // GeGLU: as gelu above, times y (one more rounding).
        const z = Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3);
        const gref = (v / (1 + Math.exp(-2 * z))) * y[i]!;
        expect(Math.abs(g[i]! - gref)).toBeLessThanOrEqual((9 + 14 * Math.abs(z)) * u * 1.01 * Math.abs(gref) + FTZ);
      }
    });
  });

  it('add: residual (out += x) and bias (out[t][r] += b[r]), and matmul with a bias', async () => {
    if (!gpu) return;
    await check(fc.record({ n: fc.integer({ min: 1, max: 9 }), rows: fc.integer({ min: 1, max: 300 }), cols: fc.integer({ min: 1, max: 60 }) }).chain((s) => fc.record({ s: fc.constant(s), o: arr(s.n * s.rows), x: arr(s.n * s.rows), b: arr(s.rows), w: arr(s.rows * s.cols), xi: arr(s.n * s.cols) })), async ({ s, o, x, b, w, xi }) => {
      const ot = t(o);
      gpu!.add(ot, t(x), s.n * s.rows);
      const sum = await read(ot, s.n * s.rows);
      for (let i = 0; i < sum.length; i++) expect(sum[i]).toBe(Math.fround(o[i]! + x[i]!)); // one f32 rounding, exactly
      const mt = gpu!.scratch(s.n * s.rows);
      gpu!.matmul([{ out: mt, w: t(w), x: t(xi), n: s.n, rows: s.rows, cols: s.cols, bias: t(b) }]);
      const got = await read(mt, s.n * s.rows);
      for (let k = 0; k < s.n; k++)
        for (let r = 0; r < s.rows; r++) {
          let ref = b[r]!, mag = Math.abs(b[r]!);
          for (let c = 0; c < s.cols; c++) { ref += w[r * s.cols + c]! * xi[k * s.cols + c]!; mag += Math.abs(w[r * s.cols + c]! * xi[k * s.cols + c]!); }
          expect(Math.abs(got[k * s.rows + r]! - ref)).toBeLessThanOrEqual((s.cols + 2) * u * mag + FTZ); // as matmul, plus the bias add
        }
    });
  });

  it('embedding: scaled rows (Gemma), rows added to what is there (learned positions), more than 32 tokens, f32 and quantized tables', async () => {
    if (!gpu) return;
    const table = Float32Array.from({ length: 10 * 64 }, (_, i) => ((i * 37) % 101) / 50 - 1);
    const base = Float32Array.from({ length: 3 * 64 }, (_, i) => (i % 7) - 3);
    const out = t(base);
    gpu.embed(out, t(table), [7, 0, 9], 64, { scale: 3, accumulate: true });
    const got = await read(out, 3 * 64);
    [7, 0, 9].forEach((tok, r) => { for (let i = 0; i < 64; i++) expect(got[r * 64 + i]).toBe(Math.fround(base[r * 64 + i]! + Math.fround(3 * table[tok * 64 + i]!))); });
    const { quantizeMatrix, dequantizeMatrix } = await import('../src/quant/formats.js');
    const { GGMLType } = await import('../src/base/tensor.js');
    const q = quantizeMatrix(GGMLType.Q8_0, table, 10, 64);
    const dq = dequantizeMatrix(q);
    const qout = gpu.scratch(2 * 64);
    gpu.embed(qout, gpu.weight(q), [3, 8], 64, { scale: 0.5 });
    const qgot = await read(qout, 2 * 64);
    [3, 8].forEach((tok, r) => { for (let i = 0; i < 64; i++) expect(qgot[r * 64 + i]).toBe(Math.fround(0.5 * dq[tok * 64 + i]!)); });
    // An encoder's texts: more than 32 tokens, gathered 32 per dispatch into the rows that follow.
    const many = Array.from({ length: 75 }, (_, i) => (i * 7) % 10);
    for (const [tab, ref] of [[t(table), table], [gpu.weight(q), dq]] as const) {
      const o = gpu.scratch(75 * 64);
      gpu.embed(o, tab, many, 64);
      const g = await read(o, 75 * 64);
      many.forEach((tok, r) => { for (let i = 0; i < 64; i++) expect(g[r * 64 + i]).toBe(ref[tok * 64 + i]); });
    }
  });

  it('rmsnorm, layernorm and NoNorm in place (out = x) equal the out-of-place results', async () => {
    if (!gpu) return;
    const x = Float32Array.from({ length: 3 * 50 }, (_, i) => Math.sin(i) * 3);
    const w = Float32Array.from({ length: 50 }, (_, i) => 1 + i / 100), b = Float32Array.from({ length: 50 }, (_, i) => i / 50 - 0.5);
    for (const kind of ['rms', 'layer'] as const) {
      const [xa, xb, out] = [t(x), t(x), gpu.scratch(150)];
      if (kind === 'rms') { gpu.rmsnorm(out, xa, t(w), 50, 1e-5, 3); gpu.rmsnorm(xb, xb, t(w), 50, 1e-5, 3); }
      else { gpu.layernorm(out, xa, t(w), t(b), 50, 1e-5, 3); gpu.layernorm(xb, xb, t(w), t(b), 50, 1e-5, 3); }
      expect(Array.from(await read(xb, 150))).toEqual(Array.from(await read(out, 150)));
    }
    // NoNorm (MobileBERT): x * w + b, one f32 multiply and add (WGSL may fuse them: within 2^-24 of the f32 result).
    const [xa, xb, out] = [t(x), t(x), gpu.scratch(150)];
    gpu.affine(out, xa, t(w), t(b), 50, 3);
    gpu.affine(xb, xb, t(w), t(b), 50, 3);
    const got = await read(out, 150);
    expect(Array.from(await read(xb, 150))).toEqual(Array.from(got));
    got.forEach((g, i) => { const r = x[i]! * w[i % 50]! + b[i % 50]!; expect(Math.abs(g - r)).toBeLessThanOrEqual(2 ** -23 * (Math.abs(x[i]! * w[i % 50]!) + Math.abs(b[i % 50]!))); });
  });

  it('rope with frequency factors, linear scaling and an attention factor (Llama 3, Phi-3 longrope)', async () => {
    if (!gpu) return;
    const shape = fc.record({ half: fc.integer({ min: 1, max: 16 }), nHeads: fc.integer({ min: 1, max: 5 }), start: fc.integer({ min: 0, max: 4000 }), freqScale: fc.constantFrom(1, 0.25), attnFactor: fc.double({ min: 0.5, max: 1.5, noNaN: true }), style: fc.constantFrom<RopeStyle>('interleaved', 'neox') });
    await check(shape.chain((s) => fc.record({ s: fc.constant(s), x: arr(s.nHeads * 2 * s.half), factors: fc.array(fc.double({ min: 1, max: 40, noNaN: true }), { minLength: s.half, maxLength: s.half }) })), async ({ s, x, factors }) => {
      const p = { headDim: 2 * s.half, ropeDims: 2 * s.half, theta: 500000, style: s.style, freqScale: s.freqScale, attnFactor: s.attnFactor, factors: Float32Array.from(factors) };
      const xt = t(x);
      gpu!.rope(xt, s.nHeads, s.start, 1, p);
      const got = await read(xt, x.length);
      const f = ropeFrequencies(p);
      for (let h = 0; h < s.nHeads; h++)
        for (let i = 0; i < s.half; i++) {
          const [a, b] = s.style === 'interleaved' ? [h * p.headDim + 2 * i, h * p.headDim + 2 * i + 1] : [h * p.headDim + i, h * p.headDim + i + s.half];
          const ang = s.start * f[i]!;
          const m = s.attnFactor;
          const ra = m * (x[a]! * Math.cos(ang) - x[b]! * Math.sin(ang)), rb = m * (x[a]! * Math.sin(ang) + x[b]! * Math.cos(ang));
          // As the plain rope test (WGSL sin/cos within 2^-11 absolute, the f32 angle within 2u), times m, plus its rounding.
          const tol = ((2 ** -11 + 2 * u * Math.abs(ang) + 5 * u) * (Math.abs(x[a]!) + Math.abs(x[b]!))) * m + FTZ;
          expect(Math.abs(got[a]! - ra)).toBeLessThanOrEqual(tol);
          expect(Math.abs(got[b]! - rb)).toBeLessThanOrEqual(tol);
        }
    });
  });
});

describe.skipIf(!hasShared)('stories260K on WebGPU', () => {
  it('greedy from BOS reproduces the 256 reference ids; logits agree with the CPU path at every position', async () => {
    if (!gpu) return;
    const ref = storiesReference();
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, device: 'webgpu' });
    const cpu = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, device: 'cpu', threads: 1 });
    try {
      const g = m.generate('', { temperature: 0, maxTokens: 256, ignoreEos: true });
      expect(await g.text()).toBe(ref.text);
      expect(g.tokens).toEqual(ref.generated_ids);
      const ids = [1, ...ref.generated_ids.slice(0, 255)];
      const [a, b] = [await m.logits(ids), await cpu.logits(ids)];
      // Both paths compute in f32 with different summation orders; the bound for an f32
      // implementation against the reference is 1e-4, and each path is within 4e-6 of it at positions 0-2.
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
      expect(worst).toBeLessThanOrEqual(1e-4);
    } finally {
      m.dispose();
      cpu.dispose();
    }
  });
});

describe.skipIf(!hasShared)('weights larger than a storage binding', () => {
  it('are split into row blocks (embedding gather and matmuls across blocks) and stories260K still reproduces its 256 ids', async () => {
    if (!gpu) return;
    const { createWebGPUBackend } = await import('../src/backend/webgpu.js');
    // 16 KiB bindings: the 512 x 64 f32 embedding (128 KiB, tied output head) becomes 8 blocks of
    // 64 rows, the 172 x 64 FFN matrices 3 blocks (the last one partial); 64 x 64 matrices just fit.
    const small = await createWebGPUBackend({ maxBindingBytes: 16384 });
    const file = readModelFile(readFileSync(STORIES_BIN), STORIES_BIN, { bytes: readFileSync(STORIES_TOK), source: STORIES_TOK });
    const m = new Model(file, small as unknown as Backend<Handle>);
    try {
      const w = m.transformer.weights as LlamaWeights;
      expect((w.tokenEmbd as GpuTensor).parts?.map((p) => p.rows)).toEqual(Array(8).fill(64));
      expect((w.layers[0]!.ffn.gate!.w as GpuTensor).parts?.map((p) => p.rows)).toEqual([64, 64, 44]);
      expect((w.layers[0]!.attn.q.w as GpuTensor).parts).toBeUndefined();
      const ref = storiesReference();
      const g = m.generate('', { temperature: 0, maxTokens: 256, ignoreEos: true });
      expect(await g.text()).toBe(ref.text);
      expect(g.tokens).toEqual(ref.generated_ids);
      // Prefill (tiled matmul) across blocks too: the logits of a 40-token prompt against the CPU path.
      const cpu = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, device: 'cpu', threads: 1 });
      const ids = [1, ...ref.generated_ids.slice(0, 39)];
      const [a, b] = [await m.logits(ids), await cpu.logits(ids)];
      cpu.dispose();
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
      expect(worst).toBeLessThanOrEqual(1e-4); // as for the unsplit model above
    } finally {
      m.dispose();
    }
  });
});

describe.skipIf(!hasShared)('quantized stories260K on WebGPU', () => {
  it('Q4_0 and Q8_0 files: weights stay quantized on the GPU; logits within 1e-4 of the CPU path at every position', async () => {
    if (!gpu) return;
    const { quantizeModel } = await import('../src/quant/quantize.js');
    const { serializeGGUF } = await import('../src/format/gguf-writer.js');
    const src = readModelFile(readFileSync(STORIES_BIN), STORIES_BIN, { bytes: readFileSync(STORIES_TOK), source: STORIES_TOK });
    for (const type of ['q4_0', 'q8_0'] as const) {
      const chunks = serializeGGUF(quantizeModel(src, type).input);
      const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
      chunks.reduce((o, c) => (bytes.set(c, o), o + c.byteLength), 0);
      const g = await loadModel(bytes, { device: 'webgpu' });
      // The CPU with f32 inputs (not its default 16-bit inputs): the product the GPU kernels compute.
      const c = await loadModel(bytes, { device: 'cpu', activations: 'f32' });
      try {
        expect(((g.transformer.weights as LlamaWeights).layers[0]!.attn.q.w as GpuTensor).quant).toBeDefined();
        const ids = [1, ...storiesReference().generated_ids.slice(0, 99)];
        const [a, b] = [await g.logits(ids), await c.logits(ids)];
        let worst = 0;
        for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
        // Both compute the same dequantized weights in f32 with different summation orders: as for the F32 model.
        expect(worst, type).toBeLessThanOrEqual(1e-4);
      } finally {
        g.dispose();
        c.dispose();
      }
    }
  });
});

/**
 * Decode `count` tokens one at a time on g: every step after the first makes `perStep` dispatches, and
 * its logits are within 2e-4 of the CPU model c's at that position (the same weights in f32 summed in
 * other orders: each within the float64 reference's 1e-4 of the logit scale, as for the families below).
 */
async function decodeLikeCpu(g: Model, c: Model, count: number, perStep: number, label: string): Promise<void> {
  const counters = (g.backend as unknown as { counters: { dispatches: number } }).counters;
  const V = c.config.vocabSize;
  const ids = sequence(V, count);
  const s = g.transformer.newState(32);
  for (let t = 0; t < ids.length; t++) {
    const before = counters.dispatches;
    const got = await g.transformer.forward(s, [ids[t]!]);
    if (t > 0) expect(counters.dispatches - before, label).toBe(perStep);
    const ref = (await c.logits(ids.slice(0, t + 1))).subarray(t * V);
    expect(worstElement(got, ref), `${label} token ${t}`).toBeLessThan(2e-4);
  }
}

describe('a Q4_K_M model on WebGPU (random weights)', () => {
  it('Q4_K_M with 256-wide rows (Q6_K attn_v in some layers, Q4_K q and k): decode packs q, k and v in one pass or two, 4 or 5 dispatches a layer with Wo folded into attention (one more without); logits token by token within 2e-4 of the CPU path', async () => {
    if (!gpu) return;
    const { quantizeModel } = await import('../src/quant/quantize.js');
    const { serializeGGUF } = await import('../src/format/gguf-writer.js');
    const { modelFileFromWriteInput } = await import('../src/format/model-file.js');
    const { tinyLlama } = await import('./helpers.js');
    const layers = 8;
    const { input, plan } = quantizeModel(modelFileFromWriteInput(tinyLlama({ dim: 256, ffn: 512, layers, heads: 4, kvHeads: 2, tied: false }), 'tiny', 'gguf'), 'q4_k_m');
    const mixed = plan.filter((e) => /attn_v/.test(e.name) && e.to === GGMLType.Q6_K).length;
    expect(mixed).toBeGreaterThan(0);
    expect(mixed).toBeLessThan(layers);
    const chunks = serializeGGUF(input);
    const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
    chunks.reduce((o, c) => (bytes.set(c, o), o + c.byteLength), 0);
    // On the shared backend, which folds Wo into attention as hardware adapters do; then with this
    // adapter's own defaults (lavapipe: Wo a pass of its own, one more a layer).
    const fold = new Model(readModelFile(bytes, 'q4_k_m.gguf'), gpu as unknown as Backend<Handle>);
    const own = await loadModel(bytes, { device: 'webgpu' });
    const c = await loadModel(bytes, { device: 'cpu', activations: 'f32' }); // f32 inputs, as the GPU kernels
    try {
      // the embedding; per layer: norm + q/k(/v), [V], RoPE + cache + attention + Wo's per-head rows, [Wo],
      // norm (of x + those rows) + gate/up, Wdown (added to x with the rows); norm + head
      for (const [g, wo] of [[fold, 0], [own, 1]] as const) await decodeLikeCpu(g, c, 12, 1 + (4 + wo) * layers + mixed + 1, wo ? 'Wo apart' : 'Wo folded');
    } finally {
      own.dispose();
      c.dispose();
    }
  });
});

describe.skipIf(!hasShared)('an F16 GGUF on WebGPU (llama-2-tiny-random)', () => {
  it('keeps its F16 matrices in f16 and matches the independent float64 forward pass', async () => {
    if (!gpu) return;
    const m = await loadModel(TINY_GGUF, { device: 'webgpu' });
    try {
      const w = m.transformer.weights as LlamaWeights;
      const wq = w.layers[0]!.attn.q.w as GpuTensor;
      expect(wq.half).toBe((m.backend as unknown as WebGPUBackend).f16);
      expect((w.tokenEmbd as GpuTensor).half).toBe(wq.half); // gathered by embedding.wgsl's f16 variant
      const tokens = [1, 15043, 3186, 29991, 13, 450];
      const got = await m.logits(tokens);
      // With shader-f16 this F16 model also keeps its KV cache in f16: the reference rounds K and V the same way.
      expect(m.transformer.halfKv).toBe(true);
      const ref = referenceLogits(m.file, m.config as LlamaConfig, tokens, { kvF16: wq.half });
      // As on the CPU: f32 activations between stages, dim 8 and one layer: 1e-4 * (1 + |logit|) is ample.
      ref.forEach((row, i) => row.forEach((r, j) => expect(Math.abs(got[i * 32000 + j]! - r)).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(r)))));
    } finally {
      m.dispose();
    }
  });
});

describe.skipIf(!hasShared)('GPU faults: the device lost mid-generation or during prefill, a buffer too large, two models on one adapter', () => {
  it('keeps the text so far, continues on the CPU, says so, and still matches the reference', async () => {
    if (!gpu) return;
    const ref = storiesReference();
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, device: 'webgpu' });
    const notices: string[] = [];
    const g = m.generate('', { temperature: 0, maxTokens: 256, ignoreEos: true, onNotice: (n) => notices.push(n) });
    let text = '';
    let pieces = 0;
    for await (const piece of g) {
      text += piece;
      if (++pieces === 40) (m.backend as unknown as WebGPUBackend).gpu.destroy(); // the device goes away
    }
    expect(notices.length).toBe(1);
    expect(notices[0]).toMatch(/WebGPU device destroyed.*continuing on the CPU \(\d+ tokens so far are kept\)/);
    expect(m.backend.device).toBe('cpu');
    expect(g.tokens).toEqual(ref.generated_ids);
    expect(text).toBe(ref.text);
    m.dispose();
  });

  it('during prefill: the prompt runs again on the CPU and the text still matches the reference', async () => {
    if (!gpu) return;
    const ref = storiesReference();
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, device: 'webgpu' });
    (m.backend as unknown as WebGPUBackend).gpu.destroy(); // gone before the first forward pass
    const notices: string[] = [];
    const g = m.generate('', { temperature: 0, maxTokens: 256, ignoreEos: true, onNotice: (n) => notices.push(n) });
    const text = await g.text();
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatch(/continuing on the CPU \(1 tokens so far are kept\)/);
    expect(m.backend.device).toBe('cpu');
    expect(g.tokens).toEqual(ref.generated_ids);
    expect(text).toBe(ref.text);
    m.dispose();
  });

  it('a KV cache larger than the adapter\'s largest buffer: OutOfMemoryError naming the context, said before any GPU work', async () => {
    if (!gpu) return;
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, device: 'webgpu' });
    await expect(m.generate('', { maxTokens: 2, contextLength: 2 ** 31 }).text()).rejects.toThrow(/a 2147483648-token context needs a .* KV cache .*exceeds this adapter's largest binding.*Use a shorter context/);
    const after = m.generate('', { maxTokens: 4, temperature: 0, ignoreEos: true }); // still usable
    await after.text();
    expect(after.tokens).toEqual(storiesReference().generated_ids.slice(0, 4));
    expect(m.backend.device).toBe('webgpu');
    m.dispose();
  });

  it('two models on the same adapter: interleaved generations each match the reference; disposing one leaves the other working', async () => {
    if (!gpu) return;
    const ref = storiesReference();
    const [a, b] = [await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, device: 'webgpu' }), await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, device: 'webgpu' })];
    const ga = a.generate('', { temperature: 0, maxTokens: 64, ignoreEos: true })[Symbol.asyncIterator]();
    const gb = b.generate('', { temperature: 0, maxTokens: 64, ignoreEos: true })[Symbol.asyncIterator]();
    let [ta, tb] = ['', ''];
    for (;;) {
      const [x, y] = [await ga.next(), await gb.next()];
      if (!x.done) ta += x.value;
      if (!y.done) tb += y.value;
      if (x.done && y.done) break;
    }
    expect(ta).toBe(tb);
    expect(ref.text.startsWith(ta)).toBe(true);
    a.dispose();
    expect(await b.generate('', { temperature: 0, maxTokens: 64, ignoreEos: true }).text()).toBe(tb);
    expect(b.backend.device).toBe('webgpu');
    b.dispose();
  });
});


describe('--device auto', () => {
  it('counts software renderers as no GPU, and real adapters as GPUs', async () => {
    const { isSoftwareAdapter } = await import('../src/backend/webgpu.js');
    const info = (vendor: string, architecture: string, description: string, isFallbackAdapter = false) => ({ vendor, architecture, description, isFallbackAdapter }) as unknown as GPUAdapterInfo;
    expect(isSoftwareAdapter(info('mesa', 'software', 'llvmpipe: Mesa 25.0.7'))).toBe(true);
    expect(isSoftwareAdapter(info('google', 'swiftshader', ''))).toBe(true);
    expect(isSoftwareAdapter(info('nvidia', 'hopper', 'NVIDIA H100 80GB HBM3'))).toBe(false);
    expect(isSoftwareAdapter(info('apple', 'metal-3', 'Apple M2'))).toBe(false);
    expect(isSoftwareAdapter(info('', '', 'any', true))).toBe(true); // the spec's own flag
  });

  it.skipIf(!hasShared)('on lavapipe picks the CPU and says why in one line; webgpu still forces the adapter', async () => {
    if (!gpu) return console.warn(`skipped: ${why}`);
    const notices: string[] = [];
    const model = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, onNotice: (m) => notices.push(m) });
    try {
      if (/llvmpipe|swiftshader/i.test(gpu.name)) {
        expect(model.backend.device).toBe('cpu');
        expect(notices).toHaveLength(1);
        expect(notices[0]).toMatch(/software renderer \(.*llvmpipe.*\).*running on the CPU/);
      } else {
        expect(model.backend.device).toBe('webgpu');
        expect(notices).toEqual([]);
      }
    } finally {
      model.dispose();
    }
    const forced = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, device: 'webgpu' });
    expect(forced.backend.device).toBe('webgpu');
    forced.dispose();
  });

  it.skipIf(!hasShared)("the CLI's stderr holds pocketlm's lines only: no Dawn warnings with --device auto (probed in a child process) or cpu", () => {
    if (!gpu) return console.warn(`skipped: ${why}`);
    const cli = join(ROOT, 'dist', 'src', 'cli', 'main.js');
    for (const device of ['auto', 'cpu']) {
      const r = spawnSync(process.execPath, [cli, 'generate', '--model', STORIES_BIN, '--tokenizer', STORIES_TOK, '--device', device, '--temperature', '0', '--max-tokens', '4', 'x'], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr, device).not.toMatch(/Warning|artificially reduced/);
      for (const line of r.stderr.trim().split('\n')) expect(line, device).toMatch(/^(pocketlm: |\[)/);
    }
  });
});

// Every family on WebGPU: the random-weight folders of test/arch.test.ts (bench/families.ts), run on the
// adapter and on the CPU: the new stages (biases, LayerNorm, GELU erf, ReLU, GeGLU, soft-caps, sliding
// windows, q/k norms, scaled and learned-position embeddings, in-place norms) in their real context.
describe.skipIf(!hasShared)('decode on an adapter with subgroups (matmul-subgroup.wgsl\'s fused passes)', () => {
  it('Llama 3, Qwen2 (biases) and Qwen3 (q/k norms): 4 dispatches a layer, logits token by token within 2e-4 of the CPU path', async () => {
    if (!gpu) return;
    const { readModelPath } = await import('../src/load/node-io.js');
    await withSubgroups(async (sub) => {
      for (const id of ['llama3', 'qwen2', 'qwen3']) {
        const dir = hfFolder(FAMILIES.find((f) => f.id === id)!, join(ROOT, 'bench', 'models', 'families'), SHARED);
        const g = new Model(await readModelPath(dir, (n) => new Uint8Array(n)), sub as unknown as Backend<Handle>);
        const c = await loadModel(dir, { device: 'cpu', threads: 1 });
        // the embedding, 4 a layer, the final norm + head (the first step also packs biases / norm weights)
        await decodeLikeCpu(g, c, 8, 2 + 4 * c.config.nLayers, id);
        c.dispose();
      }
    });
  }, 120_000);
});

describe.skipIf(!hasShared)('every family on WebGPU matches the CPU', () => {
  for (const f of FAMILIES) {
    it(`${f.id}`, async () => {
      if (!gpu) return;
      const { readModelPath } = await import('../src/load/node-io.js');
      const dir = hfFolder(f, join(ROOT, 'bench', 'models', 'families'), SHARED);
      const g = await loadModel(dir, { device: 'webgpu' });
      const c = await loadModel(dir, { device: 'cpu', threads: 1 });
      try {
        expect(g.backend.device).toBe('webgpu');
        const V = c.config.vocabSize;
        const ids = sequence(V, 40); // decode-style attention for the first row blocks, prefill tiles, windows crossed
        // Two f32 computations of the same model in different summation orders: each within the
        // float64 reference's 1e-4 of the logit scale (test/arch.test.ts), so within 2e-4 of each other.
        expect(worstElement(await g.logits(ids), await c.logits(ids)), f.id).toBeLessThan(2e-4);
        // And token by token (the decode kernels), the last position's logits, with Wo folded into
        // attention (the shared backend, as on hardware adapters).
        const fold = new Model(await readModelPath(dir, (n) => new Uint8Array(n)), gpu as unknown as Backend<Handle>);
        const s = fold.transformer.newState(64);
        let last = new Float32Array(0);
        for (const id of ids.slice(0, 20)) last = await fold.transformer.forward(s, [id]);
        const ref = (await c.logits(ids.slice(0, 20))).subarray(19 * V);
        expect(worstElement(last, ref), `${f.id} decode`).toBeLessThan(2e-4);
      } finally {
        g.dispose();
        c.dispose();
      }
    }, 120_000);
  }
});
