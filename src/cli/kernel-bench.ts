// Kernel micro-benchmarks on any Backend (the CPU, or a WebGPU adapter), for `pocketlm bench`: each
// kernel on realistic shapes and every weight format, first checked against the CPU path on the same
// inputs (a wrong kernel is reported as wrong, not fast), then timed with tinybench: on WebGPU with
// timestamp queries when the adapter has them (GPU time of the kernel's dispatches), otherwise by
// wall clock around a fenced submit (the step is submitted and a result read back).

import type { Backend, Handle } from '../backend/backend.js';
import { CpuBackend } from '../backend/cpu.js';
import { QUANT_FORMATS, quantizeMatrix, type QuantType } from '../quant/formats.js';
import type { RopeParams } from '../stages/rope.js';
import { f16ToF32, f32ToF16, GGMLType } from '../base/tensor.js';

export const BENCH_SCHEMA = 'pocketlm-bench/1';

export type KernelFamily = 'matvec' | 'matmul' | 'attention' | 'rmsnorm' | 'layernorm' | 'rope' | 'embedding' | 'argmax';
export const KERNEL_FAMILIES: readonly KernelFamily[] = ['matvec', 'matmul', 'attention', 'rmsnorm', 'layernorm', 'rope', 'embedding', 'argmax'];
export type WeightFormat = 'f32' | 'f16' | 'q8_0' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q4_k' | 'q5_k' | 'q6_k';

export interface KernelResult {
  /** A stable key: family, format and shape, e.g. "matvec q4_0 1536x576". */
  id: string;
  family: KernelFamily;
  format: WeightFormat | 'f32-activations';
  shape: Record<string, number>;
  /** Bytes read and written, and floating-point operations, per run. */
  bytes: number;
  flops: number;
  timing: 'gpu-timestamp' | 'wall-clock';
  medianMs: number;
  p25Ms: number;
  p75Ms: number;
  samples: number;
  gbps: number;
  gflops: number;
  /** Percent of the memory-bandwidth limit, when a peak is known. */
  bandwidthPercent?: number;
  /** Checked against the CPU path before timing: largest error relative to the result's magnitude. */
  correct: boolean;
  relativeError: number;
}

export interface BenchReport {
  schema: typeof BENCH_SCHEMA;
  date: string;
  pocketlm: string;
  runtime: string;
  cpu: { model: string; cores: number };
  device: { kind: 'cpu' | 'webgpu'; name: string; vendor?: string; architecture?: string; description?: string; features?: string[]; limits?: Record<string, number> };
  peakBandwidthGBps?: number;
  kernels: KernelResult[];
}

/** Memory bandwidth of some adapters, GB/s (vendor data sheets), for --peak-bandwidth's default. */
export const KNOWN_PEAK_BANDWIDTH: [RegExp, number][] = [
  [/H200/i, 4800],
  [/H100.*(SXM|HBM3)/i, 3350],
  [/H100/i, 2000],
  [/A100/i, 1555],
  [/RTX 4090/i, 1008],
  [/Apple M2 Max/i, 400],
  [/Apple M2/i, 100],
];

export interface BenchOptions {
  families?: readonly KernelFamily[];
  /** Small shapes and few rounds (tests, a first look). */
  quick?: boolean;
  peakBandwidthGBps?: number;
  /** Called before each kernel is checked and timed. */
  onProgress?: (done: number, total: number, id: string) => void;
  /** Add peers' kernels: gpu.js's matrix-vector product on this WebGPU instance (src/peers.ts). */
  peers?: { gpu: GPU; root: string };
}

/** One benchmarked operation, set up on a backend: `run` records it, `finish` submits it and waits (reading back a few bytes), `result` reads its output for the check. */
interface Prepared {
  run(): void;
  finish(): Promise<unknown>;
  result(): Promise<Float32Array>;
}
const prepared = (b: Backend<Handle>, run: () => void, output: Handle, length: number): Prepared => ({
  run,
  finish: () => b.read(output, 1),
  result: () => b.read(output, length),
});

/** One benchmarked operation and its size. */
interface Case {
  id: string;
  family: KernelFamily;
  format: KernelResult['format'];
  shape: Record<string, number>;
  bytes: number;
  flops: number;
  /** Make the inputs on a backend. */
  setup(b: Backend<Handle>): Prepared;
}

const BYTES_PER_VALUE: Record<WeightFormat, number> = {
  f32: 4, f16: 2,
  q8_0: 34 / 32, q4_0: 18 / 32, q4_1: 20 / 32, q5_0: 22 / 32, q5_1: 24 / 32, q4_k: 144 / 256, q5_k: 176 / 256, q6_k: 210 / 256,
};
const QUANT_TYPE: Partial<Record<WeightFormat, QuantType>> = { q8_0: GGMLType.Q8_0, q4_0: GGMLType.Q4_0, q4_1: GGMLType.Q4_1, q5_0: GGMLType.Q5_0, q5_1: GGMLType.Q5_1, q4_k: GGMLType.Q4_K, q5_k: GGMLType.Q5_K, q6_k: GGMLType.Q6_K };

/** Deterministic data in [-1, 1). */
function data(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 31) - 1);
}

/** The cases: realistic shapes (hidden 576 / 896 / 2048 and their FFN sizes, vocabularies up to 151936, contexts 512 / 4096), or tiny ones with `quick`. */
function cases(o: BenchOptions): Case[] {
  const families = new Set(o.families ?? KERNEL_FAMILIES);
  const q = o.quick;
  const matrices: [number, number][] = q ? [[64, 256]] : [[576, 576], [1536, 576], [896, 4864], [2048, 2048], [8192, 2048]];
  const formats: WeightFormat[] = ['f32', 'f16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q4_k', 'q5_k', 'q6_k'];
  const out: Case[] = [];
  const weight = (format: WeightFormat, rows: number, cols: number, seed: number) => {
    const w = data(rows * cols, seed);
    const qt = QUANT_TYPE[format];
    if (qt !== undefined) return (b: Backend<Handle>) => b.weight(quantizeMatrix(qt, w, rows, cols));
    if (format === 'f16') {
      const h = w.map((v) => f16ToF32(f32ToF16(v)));
      return (b: Backend<Handle>) => b.weight(h, true, cols);
    }
    return (b: Backend<Handle>) => b.weight(w, false, cols);
  };
  const product = (family: 'matvec' | 'matmul', n: number) => {
    for (const [rows, cols] of matrices)
      for (const format of formats) {
        const qt = QUANT_TYPE[format];
        if (qt !== undefined && cols % QUANT_FORMATS[qt].blockSize !== 0) continue;
        const w = weight(format, rows, cols, rows + cols);
        const x = data(n * cols, 7);
        out.push({
          id: `${family} ${format} ${rows}x${cols}${n > 1 ? ` n=${n}` : ''}`, family, format, shape: { rows, cols, n },
          bytes: rows * cols * BYTES_PER_VALUE[format] + 4 * n * (rows + cols), flops: 2 * rows * cols * n,
          setup(b) {
            const [wt, xt, o] = [w(b), b.weight(x), b.scratch(n * rows)];
            return prepared(b, () => b.matmul([{ out: o, w: wt, x: xt, n, rows, cols }]), o, n * rows);
          },
        });
      }
  };
  if (families.has('matvec')) product('matvec', 1);
  if (families.has('matmul')) product('matmul', q ? 8 : 128); // a prompt step of 128 tokens (Backend.prefillRows)
  if (families.has('attention'))
    for (const [heads, kvHeads, headDim] of (q ? [[4, 2, 16]] : [[9, 3, 64], [32, 8, 64]]) as [number, number, number][])
      for (const [n, ctx] of (q ? [[1, 40], [8, 40]] : [[1, 512], [1, 4096], [32, 512]]) as [number, number][]) {
        const kvDim = kvHeads * headDim;
        const [qv, k, v] = [data(n * heads * headDim, 1), data(ctx * kvDim, 2), data(ctx * kvDim, 3)];
        out.push({
          id: `attention ${heads}/${kvHeads} heads hd${headDim} n=${n} ctx=${ctx}`, family: 'attention', format: 'f32-activations', shape: { heads, kvHeads, headDim, n, ctx },
          bytes: 4 * (2 * ctx * kvDim + 2 * n * heads * headDim), flops: 4 * n * heads * headDim * ctx,
          setup(b) {
            const [qt, kc, vc, o] = [b.weight(qv), b.kvCache(ctx * kvDim), b.kvCache(ctx * kvDim), b.scratch(n * heads * headDim)];
            const [kt, vt] = [b.weight(k), b.weight(v)];
            b.copyRows(kc, 0, kt, 0, ctx, kvDim);
            b.copyRows(vc, 0, vt, 0, ctx, kvDim);
            return prepared(b, () => b.attention(o, qt, kc, vc, n, ctx - n, { nHeads: heads, nKvHeads: kvHeads, headDim }), o, n * heads * headDim);
          },
        });
      }
  for (const dim of q ? [256] : [576, 2048]) {
    const n = q ? 4 : 32;
    if (families.has('rmsnorm')) {
      const [x, w] = [data(n * dim, 4), data(dim, 5)];
      out.push({
        id: `rmsnorm dim=${dim} n=${n}`, family: 'rmsnorm', format: 'f32-activations', shape: { dim, n }, bytes: 4 * (2 * n * dim + dim), flops: 4 * n * dim,
        setup(b) {
          const [xt, wt, o] = [b.weight(x), b.weight(w), b.scratch(n * dim)];
          return prepared(b, () => b.rmsnorm(o, xt, wt, dim, 1e-5, n), o, n * dim);
        },
      });
    }
    if (families.has('layernorm')) {
      const [x, w, bias] = [data(n * dim, 4), data(dim, 5), data(dim, 6)];
      out.push({
        id: `layernorm dim=${dim} n=${n}`, family: 'layernorm', format: 'f32-activations', shape: { dim, n }, bytes: 4 * (2 * n * dim + 2 * dim), flops: 7 * n * dim,
        setup(b) {
          const [xt, wt, bt, o] = [b.weight(x), b.weight(w), b.weight(bias), b.scratch(n * dim)];
          return prepared(b, () => b.layernorm(o, xt, wt, bt, dim, 1e-5, n), o, n * dim);
        },
      });
    }
    if (families.has('rope')) {
      const headDim = 64, heads = dim / headDim;
      const p: RopeParams = { headDim, ropeDims: headDim, theta: 10000, style: 'neox' };
      const x = data(n * dim, 6);
      out.push({
        id: `rope dim=${dim} n=${n}`, family: 'rope', format: 'f32-activations', shape: { dim, n, heads }, bytes: 8 * n * dim, flops: 3 * n * dim,
        setup(b) {
          const xt = b.scratch(n * dim);
          const src = b.weight(x);
          const run = () => {
            b.copyRows(xt, 0, src, 0, n, dim); // rotate fresh values each run
            b.rope(xt, heads, 100, n, p);
          };
          return prepared(b, run, xt, n * dim);
        },
      });
    }
  }
  for (const vocab of q ? [512] : [32000, 151936]) {
    const dim = q ? 64 : 896;
    if (families.has('embedding')) {
      const table = data(vocab * dim, 8);
      const tokens = Array.from({ length: q ? 4 : 32 }, (_, i) => (i * 7919) % vocab);
      out.push({
        id: `embedding vocab=${vocab} dim=${dim} n=${tokens.length}`, family: 'embedding', format: 'f32', shape: { vocab, dim, n: tokens.length }, bytes: 8 * tokens.length * dim, flops: 0,
        setup(b) {
          const [t, o] = [b.weight(table, false, dim), b.scratch(tokens.length * dim)];
          return prepared(b, () => b.embed(o, t, tokens, dim), o, tokens.length * dim);
        },
      });
    }
    if (families.has('argmax')) {
      const logits = data(vocab, 9);
      out.push({
        id: `argmax vocab=${vocab}`, family: 'argmax', format: 'f32-activations', shape: { vocab }, bytes: 4 * vocab, flops: vocab,
        setup(b) {
          const t = b.weight(logits);
          // argmax submits and reads back its one id by itself
          return { run: () => {}, finish: () => b.argmax(t, 0, vocab), result: async () => Float32Array.of(await b.argmax(t, 0, vocab)) };
        },
      });
    }
  }
  return out;
}

/** Largest |got - want| over the largest |want| (0 when both are 0). */
function relativeError(got: Float32Array, want: Float32Array): number {
  let err = 0, mag = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i]! - want[i]!));
    mag = Math.max(mag, Math.abs(want[i]!));
  }
  return mag === 0 ? err : err / mag;
}

// Results are f32 sums of at most 8192 terms of magnitude <= 1 against the CPU's (WebAssembly f32 or
// float64) sums: their difference is below (8192 + 8) * 2^-24 * sum|terms| ~ 5e-4 * sum|terms|, and
// sum|terms| is at most ~100x the largest result for these random inputs. A wrong kernel (an indexing
// or layout bug) is off by O(1) relative to the result, so 5e-2 separates the two.
const TOLERANCE = 5e-2;
/** GPU time a timed run adds up to (repeating a short kernel), and the most repeats it takes. */
const TIMED_NS = 2e6;
const MAX_REPEATS = 64;

/** Run the kernel benchmarks on `backend`; the CPU path (a CpuBackend) is the reference. */
export async function benchKernels(backend: Backend<Handle>, o: BenchOptions = {}): Promise<KernelResult[]> {
  const { Bench } = await import('tinybench');
  const reference = new CpuBackend() as unknown as Backend<Handle>;
  const gpu = backend.device === 'webgpu' ? (backend as unknown as { canProfile: boolean; profile(on: boolean): void; kernelTimes(): Promise<Map<string, { ns: number; count: number }>> }) : undefined;
  const all = cases(o);
  const results: KernelResult[] = [];
  for (const [i, c] of all.entries()) {
    o.onProgress?.(i, all.length, c.id);
    const [mine, ref] = [c.setup(backend), c.setup(reference)];
    mine.run();
    ref.run();
    const relErr = relativeError(await mine.result(), await ref.result());
    const once = async () => {
      mine.run();
      await mine.finish();
    };
    const useTimestamps = !!gpu?.canProfile;
    const bench = new Bench({ iterations: o.quick ? 5 : 20, time: 0, warmupIterations: 2, warmupTime: 0 });
    bench.add(c.id, async () => {
      if (!useTimestamps) {
        // Wall clock: the kernel repeated until TIMED_NS have passed, the mean reported. A browser reads
        // the clock in steps (100 us on a page that is not cross-origin isolated), so a small CPU
        // kernel's single runs read 0 there; timed one run at a time, the bench page on the CPU ran out
        // of JavaScript heap in Chromium (V8 OOM) in one run of three, and never since.
        const t0 = performance.now();
        let [runs, elapsed] = [0, 0];
        do {
          await once();
          runs++;
          elapsed = performance.now() - t0;
        } while (elapsed * 1e6 < TIMED_NS);
        return { overriddenDuration: elapsed / runs };
      }
      // Dawn rounds timestamps (to 65.5 us on lavapipe; browsers to about 100 us): a kernel shorter than
      // that reads 0 or one step. So a timed run repeats the kernel until its GPU time adds up to
      // TIMED_NS (or MAX_REPEATS runs) and reports the mean: the rounding errors of the runs average out.
      gpu!.profile(true);
      let [runs, ns] = [0, 0];
      do {
        await once();
        runs++;
        ns = 0;
        for (const t of (await gpu!.kernelTimes()).values()) ns += t.ns;
      } while (ns < TIMED_NS && runs < MAX_REPEATS);
      gpu!.profile(false);
      return { overriddenDuration: ns / runs / 1e6 };
    });
    await bench.run();
    const r = bench.tasks[0]!.result;
    if (r.state !== 'completed') throw new Error(`${c.id}: ${'error' in r ? String(r.error) : r.state}`);
    const lat = r.latency;
    const medianMs = lat.p50;
    results.push({
      id: c.id, family: c.family, format: c.format, shape: c.shape, bytes: c.bytes, flops: c.flops,
      timing: useTimestamps ? 'gpu-timestamp' : 'wall-clock',
      medianMs, p25Ms: lat.samples ? quantile(lat.samples, 0.25) : lat.min, p75Ms: lat.p75, samples: lat.samples?.length ?? 0,
      gbps: c.bytes / (medianMs * 1e6), gflops: c.flops / (medianMs * 1e6),
      bandwidthPercent: o.peakBandwidthGBps ? (100 * c.bytes) / (medianMs * 1e6) / o.peakBandwidthGBps : undefined,
      correct: relErr <= TOLERANCE, relativeError: relErr,
    });
  }
  if (o.peers && (o.families ?? KERNEL_FAMILIES).includes('matvec')) results.push(...(await gpuJsResults(o, o.peers)));
  o.onProgress?.(all.length, all.length, '');
  return results;
}

/** gpu.js running the f32 matrix-vector products as a generated kernel, checked and timed by wall clock (its calls include uploading the arguments). */
async function gpuJsResults(o: BenchOptions, peers: NonNullable<BenchOptions['peers']>): Promise<KernelResult[]> {
  const { gpuJsMatvec } = await import('./peers.js');
  const { Bench } = await import('tinybench');
  const out: KernelResult[] = [];
  for (const c of cases({ ...o, families: ['matvec'] }).filter((c) => c.format === 'f32')) {
    const { rows, cols } = c.shape as { rows: number; cols: number };
    const kernel = await gpuJsMatvec(peers.gpu, rows, cols, peers.root);
    if (typeof kernel === 'string') {
      o.onProgress?.(0, 0, `gpu.js left out: ${kernel}`);
      return out;
    }
    const [w, x] = [data(rows * cols, rows + cols), data(cols, 7)];
    const want = new Float32Array(rows);
    new CpuBackend().matmul([{ out: want, w, x, n: 1, rows, cols }]);
    const relErr = relativeError(await kernel(w, x), want);
    const bench = new Bench({ iterations: o.quick ? 5 : 20, time: 0, warmupIterations: 2, warmupTime: 0 });
    bench.add(c.id, async () => void (await kernel(w, x)));
    await bench.run();
    const r = bench.tasks[0]!.result;
    if (r.state !== 'completed') throw new Error(`gpu.js ${c.id}: ${'error' in r ? String(r.error) : r.state}`);
    const lat = r.latency;
    out.push({
      id: `${c.id} (gpu.js)`, family: 'matvec', format: 'f32', shape: c.shape, bytes: c.bytes, flops: c.flops, timing: 'wall-clock',
      medianMs: lat.p50, p25Ms: lat.samples ? quantile(lat.samples, 0.25) : lat.min, p75Ms: lat.p75, samples: lat.samples?.length ?? 0,
      gbps: c.bytes / (lat.p50 * 1e6), gflops: c.flops / (lat.p50 * 1e6),
      bandwidthPercent: o.peakBandwidthGBps ? (100 * c.bytes) / (lat.p50 * 1e6) / o.peakBandwidthGBps : undefined,
      correct: relErr <= TOLERANCE, relativeError: relErr,
    });
  }
  return out;
}

function quantile(sorted: ArrayLike<number>, q: number): number {
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  return sorted[lo]! + (sorted[Math.min(lo + 1, sorted.length - 1)]! - sorted[lo]!) * (at - lo);
}
