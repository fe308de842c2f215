// Matrix products, the CPU's hot loop. W is row-major [rows][cols] (GGUF shape [cols, rows]):
// out[r] = sum_c W[r][c] * x[c]. Accumulation is in float64 (JavaScript numbers), four independent
// partial sums per row, so the result is at least as accurate as an f32 dot product.
// Quantized matrices go to quant.ts's quantMatmul (the same contract, block by block).

import type { AttentionShape } from './attention.js';
import type { GateActivation } from './ffn.js';
import { quantMatmul, type QuantMatrix } from '../quant/formats.js';
import { allocating } from '../base/errors.js';

/** out[r] = W[r] . x for r in [rowStart, rowEnd) (a row range, so workers can split a matrix). */
export function matvec(out: Float32Array, w: Float32Array, x: Float32Array, rows: number, cols: number, rowStart = 0, rowEnd = rows): void {
  const c4 = cols & ~3;
  for (let r = rowStart; r < rowEnd; r++) {
    const base = r * cols;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    let c = 0;
    for (; c < c4; c += 4) {
      s0 += w[base + c]! * x[c]!;
      s1 += w[base + c + 1]! * x[c + 1]!;
      s2 += w[base + c + 2]! * x[c + 2]!;
      s3 += w[base + c + 3]! * x[c + 3]!;
    }
    for (; c < cols; c++) s0 += w[base + c]! * x[c]!;
    out[r] = s0 + s1 + s2 + s3;
  }
}

/**
 * Batched product for n input vectors (prefill): out[t][r] = W[r] . X[t], X row-major [n][cols],
 * out row-major [n][rows]. Each weight row is read once and applied to up to 4 inputs at a time,
 * so prefill reads the weights n/4 times instead of n times.
 */
export function matmul(out: Float32Array, w: Float32Array, x: Float32Array, n: number, rows: number, cols: number, rowStart = 0, rowEnd = rows): void {
  if (n === 1) return matvec(out, w, x, rows, cols, rowStart, rowEnd);
  for (let r = rowStart; r < rowEnd; r++) {
    const base = r * cols;
    let t = 0;
    for (; t + 4 <= n; t += 4) {
      const x0 = t * cols, x1 = x0 + cols, x2 = x1 + cols, x3 = x2 + cols;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let c = 0; c < cols; c++) {
        const wv = w[base + c]!;
        s0 += wv * x[x0 + c]!;
        s1 += wv * x[x1 + c]!;
        s2 += wv * x[x2 + c]!;
        s3 += wv * x[x3 + c]!;
      }
      out[t * rows + r] = s0;
      out[(t + 1) * rows + r] = s1;
      out[(t + 2) * rows + r] = s2;
      out[(t + 3) * rows + r] = s3;
    }
    for (; t < n; t++) {
      const xb = t * cols;
      let s = 0;
      for (let c = 0; c < cols; c++) s += w[base + c]! * x[xb + c]!;
      out[t * rows + r] = s;
    }
  }
}

/** One product out = W . X for n inputs; W is [rows][cols], f32 or quantized. */
export interface MatmulJob {
  out: Float32Array;
  w: Float32Array | QuantMatrix;
  x: Float32Array;
  n: number;
  rows: number;
  cols: number;
}

/**
 * Records the work of one forward step so that later steps replay it without the JavaScript that chose
 * it (a decode step: which kernels, which buffers, how the rows are shared out are the same at every
 * position). What depends on the step's tokens or positions runs through `live`, again at each replay.
 */
export interface StepRecorder {
  /** Whether a recording is under way (false inside `live`). */
  readonly recording: boolean;
  start(): void;
  /** Run `fn` now and again at each replay of this recording (what fn runs is not recorded itself). */
  live(fn: () => void): void;
  /** Position- or token-dependent work ran outside `live`: this recording must not be replayed. */
  spoil(): void;
  /** End the recording: the tape, or undefined where it was spoiled or memory it refers to was given back meanwhile. */
  stop(): StepTape | undefined;
  /** Run a tape's steps again; false, having run nothing, where memory it refers to was given back since it was made. */
  replay(tape: StepTape): boolean;
}
/** A recorded step (StepRecorder.stop). */
export interface StepTape {
  readonly steps: readonly (() => void)[];
  readonly epoch: number;
}

/**
 * Runs independent matmuls, possibly across threads (see parallel.ts). Buffers passed to `run` must
 * come from `alloc` (or be weights the executor was given), so that worker threads can see them.
 */
export interface MatmulExecutor {
  readonly threads: number;
  alloc(length: number): Float32Array;
  /** Memory for a model file, so that its tensors can be used in place. */
  allocBytes(length: number): Uint8Array;
  /** Can `run` use this buffer in place? (Otherwise copy it into `alloc`ed memory.) */
  owns(a: ArrayBufferView): boolean;
  /** Give back a buffer from `alloc` / `allocBytes` (as returned) for reuse, where the executor manages its memory. */
  release?(a: ArrayBufferView): void;
  run(jobs: MatmulJob[]): void;
  /** Causal attention as attention.ts computes it, when the executor has a faster kernel for it (buffers from `alloc`). */
  attention?(out: Float32Array, q: Float32Array, kCache: Float32Array, vCache: Float32Array, n: number, start: number, s: AttentionShape): void;
  /**
   * A gated FFN's two products and its activation, gate.out = act(gate.out) * up.out (ffn.ts's `gated`,
   * the same arithmetic), when the executor can spread the activation over its threads too.
   */
  runGated?(gate: MatmulJob, up: MatmulJob, act: GateActivation): void;
  /** rmsnorm.ts's rmsnorm (within one f32 rounding: the sum of squares in another order), where the executor has a kernel (buffers its own: `owns`). */
  rmsnorm?(out: Float32Array, x: Float32Array, w: Float32Array, dim: number, eps: number, n: number): void;
  /**
   * rope.ts's ropeRows of n rows of x (nHeads heads of headDim), bit for bit, where the executor has a
   * kernel: `table` from rope-wasm.ts's ropeTable (an allocBytes buffer); neox needs ropeDims / 2 even.
   */
  rope?(x: Float32Array, table: Float64Array, nHeads: number, headDim: number, ropeDims: number, n: number, neox: boolean): void;
  /** out[i] += x[i] for i < length, bit for bit as JavaScript's f32 sums (buffers the executor's own). */
  add?(out: Float32Array, x: Float32Array, length: number): void;
  /** sampling.ts's argmax of x (the first largest), or -1 if a value is NaN or infinite (x the executor's own). */
  argmax?(x: Float32Array): number;
  /** The indices i with x[i] >= floor, in order (a view of the executor's scratch, good until its next call; x its own). */
  above?(x: Float32Array, floor: number): Int32Array;
  /** Records a step's work for replay, where the executor can (WasmExecutor). */
  readonly recorder?: StepRecorder;
  dispose(): void;
}

/** The single-threaded executor: works in every runtime. */
export const serialExecutor: MatmulExecutor = {
  threads: 1,
  alloc: (length) => allocating(length * 4, () => new Float32Array(length)),
  allocBytes: (length) => allocating(length, () => new Uint8Array(length)),
  owns: () => true,
  run(jobs) {
    for (const j of jobs) {
      if (j.w instanceof Float32Array) matmul(j.out, j.w, j.x, j.n, j.rows, j.cols);
      else quantMatmul(j.out, j.w, j.x, j.n);
    }
  },
  dispose() {},
};
