// The CPU's fast matmuls in any runtime with WebAssembly SIMD: the kernels of matmul-wasm.ts (and
// quant-wasm.ts, int-tile-wasm.ts, attention-wasm.ts, ffn-wasm.ts) over one shared WebAssembly.Memory,
// the "arena". Model files are read straight into the arena, so weights are never copied; activations
// are allocated there too. On its own the executor runs every job on the calling thread (a browser page
// that is not cross-origin isolated); with a ThreadTeam, other threads take their share of each job's
// rows: Node's worker threads (parallel.ts) or a browser's Web Workers (web-workers.ts).

import type { AttentionShape } from '../stages/attention.js';
import type { MatmulExecutor, MatmulJob, StepRecorder, StepTape } from '../stages/matmul.js';
import type { GateActivation } from '../stages/ffn.js';
import { KERNEL_MEMORY_START, matmulWasmBytes, NO_RELAXED_SIMD, prepareKernelMemory, relaxedSimd, type MatmulWasm, type RelaxedSimd } from './matmul-wasm.js';
import { rowBytes, type QuantMatrix } from '../quant/formats.js';
import { activationBlock, fillXSums, LANE_ORDER, permuteInputs, quantizeActivations, SPLIT_TYPES, wasmSideLength } from './quant-wasm.js';
import { INT_TILE_TYPES, INT16_TILE_TYPES, packedBytes } from './int-tile-wasm.js';
import { GGMLType } from '../base/tensor.js';
import { allocating, formatBytes, OutOfMemoryError } from '../base/errors.js';

const PAGE = 65536;
/** Heads per KV group from which a decode step's attention goes four heads at a time through attentionTile (below: `attention`'s head pairs, as fast for groups of 3, up to twice as fast for 2). */
const TILE_GROUP_MIN = 4;
/**
 * Positions from which a decode step's attention with KV groups of 2 or 3 heads is split by positions
 * across the threads, every head in each share (attentionPart), instead of by heads (`attention`'s head
 * pairs). The 135M shape (9 heads, 3 KV heads of 64) on two threads splits 4 / 5 by heads. Its attention
 * over 30 layers, both ways in one process, rounds alternating (best of ten, ms): 512 positions 1.03 ->
 * 1.00, 1024 2.59 -> 2.77 / 2.91 -> 2.23 / 3.02 -> 2.13 (three runs), 1536 4.75 -> 4.12, 2048 6.60 ->
 * 5.85, 3072 9.80 -> 8.66; 15 / 5 heads at 2048 9.35 -> 8.76 (0.40 either way at 256 positions). Not for
 * one thread (nothing to balance; its blocks and merge cost a little), groups of 4+ (attentionTile reads
 * each row once for four heads: 14 / 2 and 32 / 4 heads ran as fast or slower split) nor multi-head
 * attention (12 / 12 heads, already even by heads: slower split).
 */
const SPLIT_MIN_POSITIONS = 384;
/** Rows per dequantized tile in prefill (runSlice hard-codes it too: it runs in workers by its source). */
const TILE_ROWS = 64;
/**
 * Inputs from which a quantized matmul dequantizes tiles and multiplies them as f32 (each tile serves
 * every input; below this the kernels that unpack in registers, 4 inputs at a time, are as fast).
 * With f32 inputs the tiles win from 4 (a server decoding 4-7 sequences: 1.24x at 4 on the 135M
 * Q8_0 shape, one thread); with 8- or 16-bit inputs the integer x4 kernels keep up to 8 and beyond.
 */
const TILE_MIN_INPUTS = { f32: 4, int: 8 };
/**
 * Inputs from which a batch's quantization is shared out across the threads (below, the calling thread's
 * alone: 8 inputs of 576 values take it about 6 us, no more than a hand-off's 2-12 us).
 */
const QUANTIZE_SHARED_FROM = 16;
/** Formats with a min or offset term, whose f32-input kernels read the sums of each 32 inputs. */
const NEEDS_X_SUMS = new Set<GGMLType>([GGMLType.Q4_1, GGMLType.Q5_1, GGMLType.Q4_K, GGMLType.Q5_K]);
/**
 * Ints in a job's record, what runSlice reads. For a matmul: w, x, out (byte pointers), n, rows, cols,
 * kind (0 = f32, else the GGML type), side, xsum (byte pointers), rowBytes, int8 (1: x holds quantized
 * activations as i16 for the "_i16" kernels (8 or 16 bits); 2: as i8 for the "_i8" kernels, relaxed SIMD's;
 * 3: packed for itile (8 or 16 bits); 4: for itile8; 5: 16-bit inputs as byte planes for the "_s16" kernels; 6: 16-bit inputs in qrows16p's order for Q4_0's "_p16" ones), tiles (byte pointer: per thread TILE_ROWS dequantized rows, for prefill; 0 = none),
 * tileBytes (each thread's share of the tiles, the same for every job of a call); for
 * attention (kind -1): q, k, out, n, items (n * nHeads), v, -1, start, nHeads, nKvHeads, headDim,
 * bidirectional (1 or 0), scale and softcap (f32 bits), window, and for a step that attentionTile serves
 * (see WasmExecutor.attention) its scratch (byte pointer; 0 = none) and each thread's share of it; for a
 * decode step's attention split by positions (kind -4, attentionPart): the same fields with out the
 * threads' parts, items the positions (the last ones up to start) and the last field each thread's part's bytes; for a gated FFN's activation (kind -2):
 * gate, up, -, n, rows, -, -2, act (0 = silu, 1 = gelu): gate = act(gate) * up (ffn-wasm.ts) over the
 * rows [r0, r1) of every token, the rows this thread's share of the gate and up products wrote; for a
 * batch's input quantization (kind -3): x (f32), q (the values, or packed), ds (scales), n, items (n
 * tokens, or for the packed forms n / 8 rounded up), cols, -3, form (0..3: qrows, qrows8, qrows16,
 * qround16; 4, 5: qpack, qpack16; 6: qrows16s; 7: qrows16p), and for qpack16 where its block sums go. Threads split [0, rows/items) (field 4).
 */
export const RECORD_INTS = 17;

/**
 * Threads that share an executor's jobs (parallel.ts's worker threads, web-workers.ts's Web Workers;
 * thread-team.ts's protocol): each job's rows are split evenly, the calling thread taking the first share.
 */
export interface ThreadTeam {
  /** Threads in all, the calling one included. */
  readonly threads: number;
  /** Every record's rows across the threads (runSlice); returns when all are done, throws if a thread failed. */
  run(kernels: MatmulWasm, records: number[][]): void;
  /** Resolves once every thread has started; rejects if one fails to. */
  ready(): Promise<void>;
  dispose(): void;
}

/**
 * Rows (or attention items) [r0, r1) of one job record (see RECORD_INTS) at rec[at..], through the wasm
 * kernels, as thread number `thread` (0 = the calling thread). Shared by the calling thread (a record
 * array) and the workers (the control block itself, read in place). Self-contained: the workers get its
 * source.
 */
export function runSlice(k: MatmulWasm, rec: ArrayLike<number>, r0: number, r1: number, thread: number, at = 0): void {
  if (r0 >= r1) return;
  const w = rec[at] ?? 0, x = rec[at + 1] ?? 0, out = rec[at + 2] ?? 0, n = rec[at + 3] ?? 0, rows = rec[at + 4] ?? 0, cols = rec[at + 5] ?? 0, kind = rec[at + 6] ?? 0;
  const side = rec[at + 7] ?? 0, xsum = rec[at + 8] ?? 0, rowBytes = rec[at + 9] ?? 0, int8 = rec[at + 10] ?? 0, tiles = rec[at + 11] ?? 0, tileBytes = rec[at + 12] ?? 0;
  // (the kernels take byte offsets as i32 and use them unsigned, so offsets above 2 GiB pass as they are)
  if (kind === -2) return k.gated(w, x, n, rows, r0, r1, side); // ffn-wasm.ts
  if (kind === -3) {
    // Quantizing a batch's inputs (int-tile-wasm.ts), its tokens shared out: the row forms a token at a
    // time, the packed ones (qpack, qpack16: groups of four inputs) 8 tokens at a time, so that only
    // the last share pads its inputs to a multiple of 8 as the whole batch would.
    // (w: the f32 inputs; x: their q or packed values; out: their scales; n tokens; side: the form)
    const form = side;
    if (form >= 4) {
      // (qpack16 also writes the blocks' sums d sum q where field 8 says, [group][block][4] as the scales)
      const [t0, t1] = [8 * r0, Math.min(n, 8 * r1)];
      const nb = cols / 32;
      if (form === 4) return k.qpack(w + t0 * cols * 4, t1 - t0, cols, x + (t0 / 4) * nb * 256, out + (t0 / 4) * nb * 16);
      return k.qpack16(w + t0 * cols * 4, t1 - t0, cols, x + (t0 / 4) * nb * 256, out + (t0 / 4) * nb * 16, xsum + (t0 / 4) * nb * 16);
    }
    if (form === 6) return k.qrows16s(w + r0 * cols * 4, r1 - r0, cols, x + r0 * cols * 2, out + r0 * (cols / 32) * 16); // (byte planes, 16 bytes per 32 values)
    if (form === 7) return k.qrows16p(w + r0 * cols * 4, r1 - r0, cols, x + r0 * cols * 2, out + r0 * (cols / 32) * 8); // (qrows16's, permuted)
    const bytes = [2, 1, 2, 4][form]!; // (q as i16, as i8, as i16; qround16 writes f32)
    const kernel = [k.qrows, k.qrows8, k.qrows16, k.qround16][form]!;
    return kernel(w + r0 * cols * 4, r1 - r0, cols, x + r0 * cols * bytes, out + r0 * (cols / 32) * 8);
  }
  if (kind === -1 || kind === -4) {
    const bits = new Int32Array([rec[at + 12]!, rec[at + 13]!]);
    const [scale, softcap] = new Float32Array(bits.buffer);
    const [window, scratch, scratchBytes] = [rec[at + 14]!, rec[at + 15] ?? 0, rec[at + 16] ?? 0];
    // A decode step split by positions (attentionPart): this share's positions, the last `rows` up to
    // start (side), for every head, into this thread's part (out + thread * scratchBytes).
    if (kind === -4) return k.attentionPart(w, x, cols, out + thread * scratchBytes, 1, side, xsum, rowBytes, int8, side + 1 - rows + r0, side + 1 - rows + r1, scale!, softcap!, 0, 0);
    if (!scratch) return k.attention(w, x, cols, out, n, side, xsum, rowBytes, int8, r0, r1, scale!, softcap!, window, tiles);
    // Through attentionTile (attention-wasm.ts), four rows at a time: in a prompt step four tokens of a
    // head, in a decode step (n = 1) four heads of a KV group (nHeads / nKvHeads = xsum / rowBytes heads),
    // which read the same keys and values; this share's items one head (or group) at a time. What is left
    // of each goes through attention (three heads of a group: attentionTile, its last row repeated).
    const mine = scratch + thread * scratchBytes;
    const heads = n === 1 ? 1 : 0;
    const unit = heads ? xsum / rowBytes : n;
    for (let i = r0; i < r1; ) {
      const end = Math.min(r1, (Math.floor(i / unit) + 1) * unit);
      const rest = (end - i) & 3;
      const tiled = heads && rest === 3 ? end : end - rest;
      if (tiled > i) k.attentionTile(w, x, cols, out, n, side, xsum, rowBytes, int8, i, tiled, scale!, softcap!, window, tiles, mine, heads);
      if (tiled < end) k.attention(w, x, cols, out, n, side, xsum, rowBytes, int8, tiled, end, scale!, softcap!, window, tiles);
      i = end;
    }
    return;
  }
  /** f32 weights at w (row r at w + r * cols * 4): two rows times four inputs where they fit, then the rest. */
  const f32Product = (w: number, r0: number, r1: number) => {
    if (n === 1) return k.matvec(w, x, out, cols, r0, r1);
    if ((cols & 3) !== 0) {
      for (let t = 0; t < n; t++) k.matvec(w, x + t * cols * 4, out + t * rows * 4, cols, r0, r1);
      return;
    }
    const n4 = n & ~3;
    const rEven = r0 + ((r1 - r0) & ~1);
    if (n4 > 0) k.matmul2x4(w, x, out, n4, rows, cols, r0, rEven);
    if (n4 > 0 && rEven < r1) k.matmul4(w, x, out, n4, rows, cols, rEven, r1);
    for (let t = n4; t < n; t++) k.matvec(w, x + t * cols * 4, out + t * rows * 4, cols, r0, r1);
  };
  if (kind === 0) return f32Product(w, r0, r1);
  const name = ({ 2: 'q4_0', 3: 'q4_1', 6: 'q5_0', 7: 'q5_1', 8: 'q8_0', 12: 'q4_k', 13: 'q5_k', 14: 'q6_k' } as Record<number, string>)[kind]!;
  const nBlocks = cols / (kind >= 12 ? 256 : 32); // K-quants (12..14): 256-value super-blocks
  if (tiles && int8 === 4) {
    // The same with the relaxed dot product (int-tile-wasm.ts's itile8 for Q4_0, itile8x2 for Q8_0): the
    // rows as bytes (Q4_0's stored nibbles; Q8_0's two nibbles of each value; a row more, as above), the
    // inputs as i8 fours with their blocks' sums q.
    const rowTile = kind === 8 ? 2 * cols : cols;
    const tile = tiles + thread * tileBytes;
    const scales = tile + 65 * rowTile;
    const [unpack, product] = kind === 8 ? [k.q8_0_itile8!, k.itile8x2!] : [k.q4_0_itile8!, k.itile8!];
    const n8 = (n + 7) & ~7;
    for (let rs = r0; rs < r1; rs += 64) {
      const re = Math.min(r1, rs + 64);
      const [base, sbase] = [(tile - rs * rowTile) | 0, (scales - rs * nBlocks * 4) | 0];
      unpack(w, rowBytes, nBlocks, rs, re, base, sbase);
      product(base, sbase, x, xsum, out, n8, n, rows, cols, rs, re);
    }
    return;
  }
  if (tiles && int8 === 3) {
    // Prefill with 8- or 16-bit inputs (int-tile-wasm.ts): TILE_ROWS rows at a time unpacked to i16 with their
    // blocks' scales (the tile holds one row more: itile computes rows in pairs), then multiplied with
    // every input in integers; x and xsum point at the packed inputs and their scales. With 16-bit inputs
    // also the K-quants: Q4_K and Q5_K with each 32 values' scale and min (from the side table), through
    // itilem, which takes min * the inputs' block sums (qpack16's, after their scales) off each block;
    // Q6_K as q - 32 with each 16 values' scale (two a block), through itileh, which sums the halves apart.
    const nb = cols / 32;
    const scaleBytes = kind === 14 ? 8 : 4; // (per 32-value block of a row)
    const tile = tiles + thread * tileBytes;
    const scales = tile + 65 * cols * 2;
    const mins = scales + 65 * nb * scaleBytes; // (Q4_K, Q5_K)
    const n8 = (n + 7) & ~7;
    for (let rs = r0; rs < r1; rs += 64) {
      const re = Math.min(r1, rs + 64);
      const [base, sbase, mbase] = [(tile - rs * cols * 2) | 0, (scales - rs * nb * scaleBytes) | 0, (mins - rs * nb * 4) | 0];
      if (kind === 12 || kind === 13) {
        (kind === 12 ? k.q4_k_itile : k.q5_k_itile)(w, rowBytes, nb, rs, re, base, sbase, side, mbase);
        k.itilem(base, sbase, x, xsum, out, n8, n, rows, cols, rs, re, mbase);
      } else if (kind === 14) {
        k.q6_k_itile(w, rowBytes, nb, rs, re, base, sbase, side);
        k.itileh(base, sbase, x, xsum, out, n8, n, rows, cols, rs, re);
      } else {
        (k[`${name}_itile` as keyof MatmulWasm] as (...a: number[]) => void)(w, rowBytes, nb, rs, re, base, sbase);
        k.itile(base, sbase, x, xsum, out, n8, n, rows, cols, rs, re);
      }
    }
    return;
  }
  if (tiles) {
    // Prefill with f32 inputs: dequantize TILE_ROWS (64) rows at a time into this thread's tile, then
    // multiply them with every input as f32 weights (the tile's base is offset so that row r lands at
    // tile + (r - rs) * cols * 4; i32 arithmetic wraps, as the kernels' address arithmetic does).
    const tile = tiles + thread * tileBytes;
    const dequant = k[`${name}_dequant` as keyof MatmulWasm] as (...a: number[]) => void;
    for (let rs = r0; rs < r1; rs += 64) {
      const re = Math.min(r1, rs + 64);
      const base = (tile - rs * cols * 4) | 0;
      dequant(w, side, base, 0, 0, rowBytes, nBlocks, rs, re, cols * 4, 0, 0);
      f32Product(base, rs, re);
    }
    return;
  }
  const suffix = int8 === 1 ? '_i16' : int8 === 2 ? '_i8' : int8 === 5 ? '_s16' : int8 === 6 ? '_p16' : '';
  const [one, four] = [k[`${name}${suffix}` as keyof MatmulWasm], k[`${name}x4${suffix}` as keyof MatmulWasm]] as ((...a: number[]) => void)[];
  // int8 inputs: i16 values (int8 = 2: i8, the relaxed-SIMD kernels') and [d, d * sum q] f32 pairs per 32;
  // f32 inputs: f32 values and f32 sums per 32.
  // (int8 = 5: 16-bit inputs as byte planes, two bytes a value, and [d, d * sum q, sum q, sum q] per 32)
  const [xStride, xsumStride, outStride] = int8 ? [cols * (int8 === 2 ? 1 : 2), (cols / 32) * (int8 === 5 ? 16 : 8), rows * 4] : [cols * 4, (cols / 32) * 4, rows * 4];
  // Four inputs per pass over the blocks, then one at a time.
  let t = 0;
  for (; t + 4 <= n; t += 4) four!(w, side, x + t * xStride, xsum + t * xsumStride, out + t * outStride, rowBytes, nBlocks, r0, r1, xStride, xsumStride, outStride);
  for (; t < n; t++) one!(w, side, x + t * xStride, xsum + t * xsumStride, out + t * outStride, rowBytes, nBlocks, r0, r1, xStride, xsumStride, outStride);
}


/**
 * Allocator over a growable shared WebAssembly.Memory: 64-byte-aligned blocks from the top, and blocks
 * given back (`release`: a finished sequence's KV cache and scratch) reused first fit, neighbours
 * merged. Reused memory is not cleared (a KV cache is read only where it was written).
 */
class Arena {
  readonly memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
  private top = KERNEL_MEMORY_START; // (below: address 0, unused, and the kernels' f16 table)
  constructor() {
    prepareKernelMemory(this.memory);
  }
  /** Live blocks: start -> bytes reserved. */
  private readonly live = new Map<number, number>();
  /** Released blocks below `top`, by start, none touching another. */
  private readonly free: { start: number; size: number }[] = [];
  /**
   * Every SharedArrayBuffer object through which an allocation was handed out. V8 may give a new
   * object for the same memory on a later `memory.buffer` (after a grow, or once the previous object
   * was garbage collected), so ownership is recorded per object actually used, which each
   * allocation keeps alive.
   */
  private readonly buffers = new WeakSet<ArrayBufferLike>();

  bytes(n: number): Uint8Array {
    const size = Math.ceil(Math.max(n, 1) / 64) * 64;
    let start: number;
    const i = this.free.findIndex((b) => b.size >= size);
    if (i >= 0) {
      const b = this.free[i]!;
      start = b.start;
      if (b.size === size) this.free.splice(i, 1);
      else [b.start, b.size] = [b.start + size, b.size - size];
    } else {
      start = this.top;
      const end = start + size;
      if (end > 2 ** 32 - PAGE) throw new OutOfMemoryError(`the CPU's WebAssembly memory is limited to 4 GiB: ${formatBytes(start - this.freeBytes())} are in use and ${formatBytes(n)} more were asked for`);
      const have = this.memory.buffer.byteLength;
      if (end > have) allocating(end - have, () => this.memory.grow(Math.ceil((end - have) / PAGE)));
      this.top = end;
    }
    this.live.set(start, size);
    const buffer = this.memory.buffer;
    this.buffers.add(buffer);
    return new Uint8Array(buffer, start, n);
  }

  owns(a: ArrayBufferView): boolean {
    return this.buffers.has(a.buffer);
  }

  /** Give back a block that `bytes` handed out (a view of it from its start); a second release is refused. */
  release(a: ArrayBufferView): void {
    const size = this.owns(a) ? this.live.get(a.byteOffset) : undefined;
    if (size === undefined) throw new Error('WasmExecutor.release: not a live block of this executor\'s memory (released twice, or a view into one)');
    this.live.delete(a.byteOffset);
    let block = { start: a.byteOffset, size };
    const at = this.free.findIndex((b) => b.start > block.start);
    const i = at < 0 ? this.free.length : at;
    this.free.splice(i, 0, block);
    const next = this.free[i + 1];
    if (next && block.start + block.size === next.start) { block.size += next.size; this.free.splice(i + 1, 1); }
    const prev = this.free[i - 1];
    if (prev && prev.start + prev.size === block.start) { prev.size += block.size; this.free.splice(i, 1); block = prev; }
    // a free block at the top lowers the top
    if (block.start + block.size === this.top) { this.top = block.start; this.free.splice(this.free.indexOf(block), 1); }
  }

  private freeBytes(): number {
    return this.free.reduce((a, b) => a + b.size, 0);
  }
}

/**
 * Where the kernels' module bytes may be kept between processes (Node: src/load/kernel-cache.ts, which
 * names its files by the code that emits them), by instruction set: `key` is "madd-dot" with each 0 or 1.
 */
export interface KernelStore {
  get(key: string): Uint8Array | undefined;
  set(key: string, bytes: Uint8Array): void;
}
let kernelStore: KernelStore | undefined;
/** Use `store` for the kernels' module from now on (undefined: emit it in every process). */
export function useKernelStore(store: KernelStore | undefined): void {
  kernelStore = store;
}

/** The kernels' module, compiled once per process and instruction set (every executor and its workers share its code). */
const modules = new Map<string, WebAssembly.Module>();
function compiledKernels(relaxed: RelaxedSimd): WebAssembly.Module {
  const key = `${+relaxed.madd}-${+relaxed.dot}`;
  let m = modules.get(key);
  if (m) return m;
  let bytes = kernelStore?.get(key);
  if (!bytes) {
    bytes = matmulWasmBytes(relaxed);
    kernelStore?.set(key, bytes);
  }
  modules.set(key, (m = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>)));
  return m;
}

/**
 * A WasmExecutor's recorder (StepRecorder): while recording, the executor keeps each kernel call it
 * makes on the calling thread and each hand-off of records, as closures over their arguments, in order;
 * a replay runs them again without the JavaScript that chose them. `epoch` counts the blocks given
 * back to the arena: a recording whose epoch has passed may point into memory that now holds something
 * else, and is not replayed.
 */
class Recorder implements StepRecorder {
  epoch = 0;
  /** Steps replayed so far (for tests and benchmarks: that replays happen). */
  replays = 0;
  private tape?: (() => void)[];
  private startEpoch = 0;
  private spoiled = false;
  /** `usable` throws where the executor can no longer run (disposed). */
  constructor(private readonly usable: () => void) {}

  get recording(): boolean {
    return this.tape !== undefined;
  }
  start(): void {
    [this.tape, this.startEpoch, this.spoiled] = [[], this.epoch, false];
  }
  /** Keep `step` (already run) in the recording, if one is under way. */
  keep(step: () => void): void {
    this.tape?.push(step);
  }
  live(fn: () => void): void {
    const tape = this.tape;
    if (!tape) return fn();
    tape.push(fn);
    this.tape = undefined; // (what fn runs is not kept: fn runs again at each replay)
    try {
      fn();
    } finally {
      this.tape = tape;
    }
  }
  spoil(): void {
    if (this.tape) this.spoiled = true;
  }
  stop(): StepTape | undefined {
    const tape = this.tape;
    this.tape = undefined;
    // (a block given back during the recording may be reused by a later block it also refers to)
    return tape && !this.spoiled && this.epoch === this.startEpoch ? { steps: tape, epoch: this.epoch } : undefined;
  }
  replay(t: StepTape): boolean {
    if (this.tape) throw new Error('StepRecorder.replay: a recording is under way');
    this.usable();
    if (t.epoch !== this.epoch) return false;
    for (const step of t.steps) step();
    this.replays++;
    return true;
  }
}

export class WasmExecutor implements MatmulExecutor {
  private readonly arena = new Arena();
  /** Records a step's kernel calls and hand-offs for replay (see Recorder). */
  readonly recorder = new Recorder(() => {
    if (this.disposed) throw new Error('this model was disposed');
  });
  private readonly kernels: MatmulWasm;
  private readonly team?: ThreadTeam;
  private disposed = false;
  /** Threads in all: 1 on its own, the team's with one. */
  readonly threads: number;

  /** What quantized weights are multiplied with (see Activations). */
  readonly activations: Activations;
  /** Bytes per 8-bit input as the "_i8" kernels read it (i8: the relaxed dot product's), or the "_i16" ones (i16). */
  private get int8Bytes(): 1 | 2 {
    return this.relaxedSimd.dot ? 1 : 2;
  }

  /** The relaxed-SIMD instructions the kernels use (FMA, 8-bit dot products; see matmul-wasm.ts's relaxedSimd). */
  readonly relaxedSimd: RelaxedSimd;

  /**
   * `team` (parallel.ts's worker threads) is made with the kernels' module and the arena's memory, which
   * its threads instantiate and share; without one every job runs on the calling thread.
   */
  constructor(options: ExecutorOptions = {}, team?: MakeTeam) {
    this.activations = options.activations ?? (options.int8Activations ? 'int8' : 'int16');
    if (!ACTIVATIONS.includes(this.activations)) throw new RangeError(`activations must be ${ACTIVATIONS.join(', ')}; got ${String(options.activations)}`);
    if (options.int8Activations && this.activations !== 'int8') throw new RangeError(`int8Activations: true contradicts activations: '${this.activations}' (use one of them)`);
    const has = relaxedSimd();
    if (options.relaxedSimd && !has.madd && !has.dot) throw new RangeError('relaxedSimd: this WebAssembly runtime has no relaxed SIMD (Node 20 with the V8 flag, Node 22+, Chrome 114+)');
    this.relaxedSimd = options.relaxedSimd === false ? NO_RELAXED_SIMD : has;
    const module = compiledKernels(this.relaxedSimd);
    this.kernels = new WebAssembly.Instance(module, { env: { memory: this.arena.memory } }).exports as unknown as MatmulWasm;
    this.team = team?.(module, this.arena.memory);
    this.threads = this.team?.threads ?? 1;
  }

  alloc(length: number): Float32Array {
    const b = this.arena.bytes(length * 4);
    return new Float32Array(b.buffer, b.byteOffset, length);
  }

  allocBytes(length: number): Uint8Array {
    return this.arena.bytes(length);
  }

  owns(a: ArrayBufferView): boolean {
    return this.arena.owns(a);
  }

  /** Bytes of WebAssembly memory the executor holds (it grows as needed and never shrinks; released blocks are reused). */
  get memoryBytes(): number {
    return this.arena.memory.buffer.byteLength;
  }

  /** Give back memory from alloc / allocBytes (the whole buffer as returned) for reuse. */
  release(a: ArrayBufferView): void {
    this.arena.release(a);
    this.recorder.epoch++;
  }

  /** Run `step` (kernel calls on this thread, or JavaScript that writes the kernels' inputs) and keep it in a recording. */
  private now(step: () => void): void {
    step();
    this.recorder.keep(step);
  }

  run(jobs: MatmulJob[]): void {
    if (this.disposed) throw new Error('this model was disposed');
    this.runRecords(this.records(jobs));
  }

  /** The jobs as control-block records, their inputs prepared and the tile scratch made for the widest first (one buffer serves them all). */
  private records(jobs: MatmulJob[]): number[][] {
    const tileCols = Math.max(0, ...jobs.filter((j) => this.usesTiles(j) || this.usesIntTiles(j)).map((j) => j.cols));
    if (tileCols) this.tiles(tileCols);
    const quantize: number[][] = [];
    const inputs = this.prepareInputs(jobs, quantize);
    // (a batch's inputs quantized across the threads first: a hand-off of its own, before the products read them)
    if (quantize.length) this.runRecords(quantize);
    return inputs.map((input, i) => this.record(jobs[i]!, input));
  }

  /**
   * gate.out = act(gate.out) * up.out after both products, in one hand-off: each thread applies the
   * activation to the rows it computed itself (the jobs split rows alike), so no thread waits for another's.
   */
  runGated(gate: MatmulJob, up: MatmulJob, act: GateActivation): void {
    if (this.disposed) throw new Error('this model was disposed');
    if (gate.n !== up.n || gate.rows !== up.rows) throw new RangeError(`runGated: the gate (${gate.n} x ${gate.rows}) and up (${up.n} x ${up.rows}) products differ in shape`);
    this.runRecords([...this.records([gate, up]), [gate.out.byteOffset, up.out.byteOffset, 0, gate.n, gate.rows, 0, -2, act === 'silu' ? 0 : 1]]);
  }

  /**
   * Grouped-query attention, causal or bidirectional (attention.ts's contract) with attention-wasm.ts's kernel, its
   * (head, token) pairs split across the threads. headDim must be a multiple of 4.
   */
  attention(out: Float32Array, q: Float32Array, kCache: Float32Array, vCache: Float32Array, n: number, start: number, s: AttentionShape): void {
    if (this.disposed) throw new Error('this model was disposed');
    if (s.headDim % 4 !== 0) throw new RangeError(`the WebAssembly attention kernel needs a head size that is a multiple of 4, got ${s.headDim}`);
    this.mine({ out, q, kCache, vCache });
    this.recorder.spoil(); // (its record holds the position: a recorded step runs it live)
    const [scale, softcap] = new Int32Array(Float32Array.of(s.scale ?? 1 / Math.sqrt(s.headDim), s.softcap ?? 0).buffer);
    const bidirectional = s.causal === false;
    // Prompt steps of four or more tokens, and decode steps where KV groups hold TILE_GROUP_MIN or more
    // heads, go through attentionTile (attention-wasm.ts) where no sliding window hides a position from a
    // row: its scratch holds 16 bytes per position for each thread.
    const window = s.window ?? 0;
    const group = s.nHeads / s.nKvHeads;
    if (n === 1 && this.threads > 1 && !bidirectional && start + 1 >= SPLIT_MIN_POSITIONS && group >= 2 && group < TILE_GROUP_MIN) {
      // A decode step split by positions (attentionPart, then attentionMerge on this thread): the
      // positions a sliding window leaves, each thread all heads over its share of them.
      const count = window > 0 && window < start + 1 ? window : start + 1;
      const partBytes = s.nHeads * (s.headDim * 4 + 16);
      const part = this.attentionScratch(partBytes * this.threads).byteOffset;
      this.runRecords([[q.byteOffset, kCache.byteOffset, part, 1, count, vCache.byteOffset, -4, start, s.nHeads, s.nKvHeads, s.headDim, 0, scale!, softcap!, 0, 0, partBytes]]);
      this.kernels.attentionMerge(out.byteOffset, part, s.nHeads, s.headDim, count, this.threads, partBytes);
      return;
    }
    const rows = n >= 4 || (n === 1 && group >= TILE_GROUP_MIN);
    const tiled = rows && s.headDim % 8 === 0 && (bidirectional || window === 0 || window >= start + n);
    const share = tiled ? Math.ceil(((start + n) * 16) / 64) * 64 : 0;
    const scratch = tiled ? this.attentionScratch(share * this.threads).byteOffset : 0;
    this.runRecords([[q.byteOffset, kCache.byteOffset, out.byteOffset, n, n * s.nHeads, vCache.byteOffset, -1, start, s.nHeads, s.nKvHeads, s.headDim, bidirectional ? 1 : 0, scale!, softcap!, window, scratch, share]]);
  }

  /** RMSNorm with rmsnorm-wasm.ts's kernel, on this thread (see MatmulExecutor.rmsnorm). */
  rmsnorm(out: Float32Array, x: Float32Array, w: Float32Array, dim: number, eps: number, n: number): void {
    this.mine({ out, x, w });
    if (x.length < n * dim || out.length < n * dim || w.length < dim) throw new RangeError(`rmsnorm: ${n} rows of ${dim} need ${n * dim} values in x and out and ${dim} weights; got ${x.length}, ${out.length}, ${w.length}`);
    const k = this.kernels;
    this.now(() => k.rmsnorm(x.byteOffset, w.byteOffset, out.byteOffset, dim, n, eps));
  }

  /** RoPE with rope-wasm.ts's kernel, on this thread (see MatmulExecutor.rope). */
  rope(x: Float32Array, table: Float64Array, nHeads: number, headDim: number, ropeDims: number, n: number, neox: boolean): void {
    this.mine({ x, table });
    if (neox && ropeDims % 4 !== 0) throw new RangeError(`rope: the kernel's neox rotation takes pairs two at a time, so ropeDims must be a multiple of 4; got ${ropeDims}`);
    if (x.length < n * nHeads * headDim || table.length < n * ropeDims * 2) throw new RangeError(`rope: ${n} rows of ${nHeads} x ${headDim} with ${ropeDims} rotating need ${n * nHeads * headDim} values and a ${n * ropeDims * 2}-value table; got ${x.length}, ${table.length}`);
    const k = this.kernels;
    this.now(() => k.rope(x.byteOffset, table.byteOffset, nHeads, headDim, ropeDims, n, neox ? 1 : 0));
  }

  /** out += x with add-wasm.ts's kernel, on this thread. */
  add(out: Float32Array, x: Float32Array, length: number): void {
    this.mine({ out, x });
    if (out.length < length || x.length < length) throw new RangeError(`add: ${length} values asked for; out has ${out.length}, x ${x.length}`);
    const k = this.kernels;
    this.now(() => k.add(out.byteOffset, x.byteOffset, length));
  }

  /** The index of x's first largest value, or -1 if one is NaN or infinite, with argmax-wasm.ts's kernel, on this thread. */
  argmax(x: Float32Array): number {
    this.mine({ x });
    this.recorder.spoil(); // (what it returns is not kept)
    return this.kernels.argmax(x.byteOffset, x.length);
  }

  private aboveScratch?: Uint8Array;
  /** The indices i with x[i] >= floor, in order, with argmax-wasm.ts's kernel, on this thread (a view of scratch, good until the next call). */
  above(x: Float32Array, floor: number): Int32Array {
    this.mine({ x });
    this.recorder.spoil();
    const out = (this.aboveScratch = this.grown(this.aboveScratch, 4 * x.length, true));
    const count = this.kernels.above(x.byteOffset, x.length, floor, out.byteOffset);
    return new Int32Array(out.buffer, out.byteOffset, count);
  }

  /** Throws unless every buffer is in the executor's memory. */
  private mine(buffers: Record<string, ArrayBufferView>): void {
    if (this.disposed) throw new Error('this model was disposed');
    for (const [name, a] of Object.entries(buffers))
      if (!this.arena.owns(a)) throw new Error(`WasmExecutor: the ${name} buffer is not in the executor's memory (allocate it with exec.alloc)`);
  }

  private scoreScratch?: Uint8Array;
  /** Scratch for attentionTile's scores, or the threads' parts of a step split by positions (attentionPart): one buffer, grown as needed. */
  private attentionScratch(bytes: number): Uint8Array {
    return (this.scoreScratch = this.grown(this.scoreScratch, bytes, true));
  }

  /**
   * `current` where it holds `bytes`, else a new block of that many (current given back): the scratch
   * buffers grow so. `unrecorded`: scratch that no recorded step refers to (attention's, which runs
   * live in a recorded step, and above's, which is never recorded), whose growth leaves recordings valid.
   */
  private grown(current: Uint8Array | undefined, bytes: number, unrecorded = false): Uint8Array {
    if (current && current.length >= bytes) return current;
    if (current && unrecorded) this.arena.release(current);
    else if (current) this.release(current);
    return this.allocBytes(bytes);
  }

  private runRecords(records: number[][]): void {
    if (this.recorder.recording) this.recorder.keep(() => this.runRecords(records)); // (no closure made per hand-off otherwise, replays included)
    if (!this.team) {
      for (const r of records) runSlice(this.kernels, r, 0, r[4]!, 0);
      return;
    }
    try {
      this.team.run(this.kernels, records);
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /** Scratch in the arena for the quantized matmuls' inputs (see prepareInputs). */
  private inputScratch?: Uint8Array;
  /**
   * What each job's kernel reads besides x: nothing for f32 weights; for quantized weights either the
   * 8- or 16-bit activations (q, [d, d * sum q] pairs; computed once per distinct input and block size of
   * this call; packed for the integer tiles; for 16-bit inputs through f32 tiles, q d as f32) or, with f32 inputs, the inputs in lane order for the Q8_0, Q4_0, Q4_K and Q6_K kernels
   * (see quant-wasm.ts's permuteInputs) and/or the per-32 sums the Q4_1, Q5_1, Q4_K and Q5_K kernels need.
   * One region of scratch per input and form.
   */
  private prepareInputs(jobs: MatmulJob[], quantize: number[][]): (PreparedInput | undefined)[] {
    // The module's quantizing kernels (form: as runSlice's kind -3 reads it), on this thread for a few
    // inputs, else as a record for the threads to share before the products run.
    const team = this.team !== undefined;
    const quantizeRows = (form: number, x: Float32Array, n: number, cols: number, q: number, ds: number, xc = 0) => {
      if (team && n >= QUANTIZE_SHARED_FROM) return void quantize.push([x.byteOffset, q, ds, n, form >= 4 ? Math.ceil(n / 8) : n, cols, -3, form, xc]);
      const k = this.kernels;
      if (form === 5) return this.now(() => k.qpack16(x.byteOffset, n, cols, q, ds, xc));
      if (form === 6) return this.now(() => k.qrows16s(x.byteOffset, n, cols, q, ds));
      if (form === 7) return this.now(() => k.qrows16p(x.byteOffset, n, cols, q, ds));
      const kernel = [k.qrows, k.qrows8, k.qrows16, k.qround16, k.qpack][form]!;
      this.now(() => kernel.call(k, x.byteOffset, n, cols, q, ds));
    };
    const wants = jobs.map((j): { form: Form; block: number; bytes: number } | undefined => {
      if (j.w instanceof Float32Array) return undefined;
      // (16-bit inputs through the f32 tiles: the inputs rounded as the integer paths round them, in f32)
      if (this.usesTiles(j)) return this.activations === 'int16' ? { form: 'round16', block: 32, bytes: j.n * j.cols * 4 + (j.n * j.cols / 32) * 8 } : undefined;
      if (this.usesIntTiles(j)) {
        // (16-bit inputs: i16 with the blocks' sums, for itile / itilem; 8-bit with the relaxed dot product: i8 for itile8 / itile8x2; else i16 for itile)
        const form = this.activations === 'int16' ? 'itile16' : this.relaxedSimd.dot ? 'itile8' : 'itile';
        const p = packedBytes(j.n, j.cols, form === 'itile8', form !== 'itile');
        return { form, block: 32, bytes: p.values + p.scales };
      }
      // (16-bit inputs as byte planes for the formats with "_s16" kernels, where the relaxed dot product is)
      if (this.activations === 'int16' && this.relaxedSimd.dot && SPLIT_TYPES.has(j.w.type)) return { form: 'int16s', block: 32, bytes: j.n * j.cols * 2 + (j.n * j.cols / 32) * 16 };
      // (Q4_0: in qrows16p's order, for its "_p16" kernels, also where the relaxed dot product is: one input
      // on Node 24, 35.8 us against the byte planes' 36.7 for a 1536 x 576 matrix, four 145 against 175 as i16)
      if (this.activations === 'int16') return { form: j.w.type === GGMLType.Q4_0 ? 'int16p' : 'int16', block: 32, bytes: j.n * j.cols * 2 + (j.n * j.cols / 32) * 8 };
      if (this.activations === 'int8') { const block = activationBlock(j.w.type); return { form: 'int8', block, bytes: j.n * j.cols * this.int8Bytes + (j.n * j.cols / 32) * 8 }; }
      if (LANE_ORDER.has(j.w.type)) return { form: j.w.type, block: 0, bytes: j.n * j.cols * 4 + (NEEDS_X_SUMS.has(j.w.type) ? (j.n * j.cols / 32) * 4 : 0) };
      return NEEDS_X_SUMS.has(j.w.type) ? { form: 'sums', block: 0, bytes: (j.n * j.cols / 32) * 4 } : undefined;
    });
    const need = wants.reduce((a, w) => a + (w?.bytes ?? 0), 0);
    const buf = (this.inputScratch = this.grown(this.inputScratch, Math.max(need, 65536)));
    const done: { j: MatmulJob; form: Form; block: number; input: PreparedInput }[] = [];
    let at = 0;
    return jobs.map((j, i) => {
      const want = wants[i];
      if (!want) return undefined;
      const same = done.find((d) => d.j.x === j.x && d.j.n === j.n && d.j.cols === j.cols && d.form === want.form && d.block === want.block);
      if (same) return same.input;
      // (the module's kernels read x: quantizing and packing, and qrows)
      if (typeof want.form === 'string' && want.form !== 'sums' && !this.arena.owns(j.x))
        throw new Error('WasmExecutor: the x buffer is not in the executor\'s memory (allocate it with exec.alloc)');
      let input: PreparedInput;
      if (want.form === 'itile' || want.form === 'itile8' || want.form === 'itile16') {
        // quantized and packed for itile by int-tile-wasm.ts's qpack (as quantizeActivations then packInputs;
        // qpack16: 16 bits; itile8: qpack8, as packInputs' i8 form: i8 values, then the scales and the blocks' sums q)
        const i8 = want.form === 'itile8';
        const p = packedBytes(j.n, j.cols, i8, want.form !== 'itile');
        const values = i8 ? new Int8Array(buf.buffer, buf.byteOffset + at, p.values) : new Int16Array(buf.buffer, buf.byteOffset + at, p.values / 2);
        input = { q: values, sums: new Float32Array(buf.buffer, buf.byteOffset + at + p.values, p.scales / 4), packed: i8 ? 8 : 16 };
        // (qpack8, whose blocks' sums q follow all the scales, on this thread)
        if (want.form === 'itile8') {
          const [k, into] = [this.kernels, input];
          this.now(() => k.qpack8!(j.x.byteOffset, j.n, j.cols, into.q!.byteOffset, into.sums!.byteOffset));
        }
        // (qpack16: the scales, then the blocks' sums d sum q)
        else quantizeRows(want.form === 'itile' ? 4 : 5, j.x, j.n, j.cols, input.q!.byteOffset, input.sums!.byteOffset, input.sums!.byteOffset + p.scales / 2);
      } else if (want.form === 'round16') {
        input = { x: new Float32Array(buf.buffer, buf.byteOffset + at, j.n * j.cols) };
        quantizeRows(3, j.x, j.n, j.cols, input.x!.byteOffset, buf.byteOffset + at + j.n * j.cols * 4);
      } else if (want.form === 'int8' || want.form === 'int16' || want.form === 'int16p') {
        const bytes = want.form === 'int8' ? this.int8Bytes : 2;
        const q = bytes === 1 ? new Int8Array(buf.buffer, buf.byteOffset + at, j.n * j.cols) : new Int16Array(buf.buffer, buf.byteOffset + at, j.n * j.cols);
        const sums = new Float32Array(buf.buffer, buf.byteOffset + at + j.n * j.cols * bytes, (j.n * j.cols) / 16);
        // (32-value blocks in the module, qrows: the same rounding as quantizeActivations, bit for bit, at a
        // fraction of the JavaScript's time; the K-quants' 256-value 8-bit blocks in JavaScript)
        if (want.block === 32) quantizeRows(want.form === 'int16p' ? 7 : want.form === 'int16' ? 2 : bytes === 1 ? 1 : 0, j.x, j.n, j.cols, q.byteOffset, sums.byteOffset);
        else this.now(() => quantizeActivations(j.x, j.n, j.cols, want.block as 32 | 256, q, sums));
        input = { q, sums, ...(want.form === 'int16p' ? { perm: true } : {}) };
      } else if (want.form === 'int16s') {
        // (qrows16s: quant-wasm.ts's splitPlanes of quantizeActivations' 16-bit q, bit for bit)
        const q = new Int8Array(buf.buffer, buf.byteOffset + at, j.n * j.cols * 2);
        const sums = new Float32Array(buf.buffer, buf.byteOffset + at + j.n * j.cols * 2, (j.n * j.cols) / 8);
        quantizeRows(6, j.x, j.n, j.cols, q.byteOffset, sums.byteOffset);
        input = { q, sums, split: true };
      } else if (want.form === 'sums') {
        const sums = new Float32Array(buf.buffer, buf.byteOffset + at, (j.n * j.cols) / 32);
        input = { sums };
        this.now(() => fillXSums(j.x, j.n, j.cols, sums));
      } else {
        const [form, x] = [want.form, new Float32Array(buf.buffer, buf.byteOffset + at, j.n * j.cols)];
        const sums = NEEDS_X_SUMS.has(form) ? new Float32Array(buf.buffer, buf.byteOffset + at + j.n * j.cols * 4, (j.n * j.cols) / 32) : undefined;
        input = { x, sums };
        this.now(() => {
          permuteInputs(form, j.x, j.n, j.cols, x);
          if (sums) fillXSums(j.x, j.n, j.cols, sums);
        });
      }
      at += want.bytes;
      done.push({ j, form: want.form, block: want.block, input });
      return input;
    });
  }

  /** A job as its control-block record (JOB_INTS ints), its buffers checked to be in the arena. */
  private record(j: MatmulJob, input?: PreparedInput): number[] {
    const w = j.w as Float32Array | (QuantMatrix & { side?: Float32Array });
    for (const [name, a] of [['out', j.out], ['w', w instanceof Float32Array ? w : w.data], ['x', j.x]] as const)
      if (!this.arena.owns(a)) throw new Error(`WasmExecutor: the ${name} buffer is not in the executor's memory (allocate it with exec.alloc)`);
    if (w instanceof Float32Array) return [w.byteOffset, j.x.byteOffset, j.out.byteOffset, j.n, j.rows, j.cols, 0, 0, 0, 0, 0, 0];
    if (wasmSideLength(w) > 0 && !w.side) throw new Error('WasmExecutor: a K-quant matrix needs its unpacked scales (CpuBackend.weight makes them)');
    const x = input?.q?.byteOffset ?? input?.x?.byteOffset ?? j.x.byteOffset;
    // (each thread's share of the tile scratch, the same for every job of a call: a thread may be on one
    // job's tile while another is on the next job's, so shares sized by each job's own columns would overlap)
    const scratch = this.usesTiles(j) || this.usesIntTiles(j) ? this.tiles(j.cols) : undefined;
    const [tiles, tileBytes] = scratch ? [scratch.byteOffset, Math.floor(scratch.length / this.threads / 64) * 64] : [0, 0];
    const int8 = input?.split ? 5 : input?.perm ? 6 : input?.packed ? (input.packed === 8 ? 4 : 3) : input?.q ? 3 - input.q.BYTES_PER_ELEMENT : 0;
    return [w.data.byteOffset, x, j.out.byteOffset, j.n, j.rows, j.cols, w.type, w.side?.byteOffset ?? 0, input?.sums?.byteOffset ?? 0, rowBytes(w.type, w.cols), int8, tiles, tileBytes];
  }

  /**
   * Prefill goes through dequantized tiles (see runSlice) once a batch is large enough to repay them:
   * f32 tiles with f32 inputs, and with 8- or 16-bit inputs (the latter rounded first: qround16) for the
   * formats without an integer tile.
   */
  private usesTiles(j: MatmulJob): boolean {
    return !(j.w instanceof Float32Array) && j.n >= (this.activations === 'f32' ? TILE_MIN_INPUTS.f32 : TILE_MIN_INPUTS.int) && !this.usesIntTiles(j);
  }
  /** With 8- or 16-bit inputs, Q8_0 and Q4_0 prefill multiplies in integers (int-tile-wasm.ts; the tile scratch serves it too). */
  private usesIntTiles(j: MatmulJob): boolean {
    return this.activations !== 'f32' && !(j.w instanceof Float32Array) && (this.activations === 'int16' ? INT16_TILE_TYPES : INT_TILE_TYPES).has(j.w.type) && j.n >= TILE_MIN_INPUTS.int;
  }

  private tileScratch?: Uint8Array;
  /** Each thread's tile of TILE_ROWS dequantized rows of `cols` f32 values (one buffer, grown as needed). */
  private tiles(cols: number): Uint8Array {
    const need = this.threads * TILE_ROWS * cols * 4;
    return (this.tileScratch = this.grown(this.tileScratch, need));
  }

  /** Resolves once the team's threads have started; rejects if one fails to. */
  async ready(): Promise<void> {
    await this.team?.ready();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.team?.dispose();
  }
}


/** Makes a thread team over the kernels' module and the executor's memory (which its threads instantiate and share). */
export type MakeTeam = (kernels: WebAssembly.Module, memory: WebAssembly.Memory) => ThreadTeam;

/**
 * An executor on `threads` threads in all, the team from `team` when there is more than one, resolved
 * once every thread has started (disposed, and the reason thrown, if one does not).
 */
export async function startExecutor(threads: number, options: ExecutorOptions, team: MakeTeam): Promise<WasmExecutor> {
  const { exec, ready } = launchExecutor(threads, options, team);
  await ready;
  return exec;
}

/**
 * The same, returned at once: `ready` resolves once every thread has started, or rejects (the executor
 * disposed) if one does not. Work that needs no thread, such as reading a model into the executor's
 * memory, can go on meanwhile; nothing may run on the executor before `ready` resolves.
 */
export function launchExecutor(threads: number, options: ExecutorOptions, team: MakeTeam): { exec: WasmExecutor; ready: Promise<void> } {
  if (!(Number.isInteger(threads) && threads >= 1 && threads <= 64)) throw new RangeError(`threads must be an integer from 1 to 64, got ${threads}`);
  const exec = new WasmExecutor(options, threads > 1 ? team : undefined);
  // (asked for now, so that a thread's failure is heard whenever it comes)
  const ready = exec.ready().catch((e: unknown) => {
    exec.dispose();
    throw e;
  });
  ready.catch(() => {}); // (awaited later: not an unhandled rejection meanwhile)
  return { exec, ready };
}

/** A quantized matmul's input as its kernel reads it: 8-bit (q with per-32 [d, d * sum q] sums), f32 in lane order (x), or f32 with per-32 sums. */
interface PreparedInput {
  q?: Int16Array | Int8Array;
  /** q and sums are int-tile-wasm.ts's packed inputs and scales: packInputs' i16 form (16), its i8 form with the sums q (8). */
  packed?: 8 | 16;
  /** q and sums are 16-bit inputs as byte planes and their per-32 data (quant-wasm.ts's splitPlanes), for the "_s16" kernels. */
  split?: boolean;
  /** q is 16-bit inputs in qrows16p's order, for Q4_0's "_p16" kernels. */
  perm?: boolean;
  x?: Float32Array;
  sums?: Float32Array;
}

/**
 * What a quantized matrix is multiplied with (the weights are always the exact dequantized values):
 * - 'int16' (the default): each input rounded to 16-bit integers per 32 values (d = max|x| / 32767 in f32,
 *   so |x - d q| <= d / 2: at most 2^-16 of the block's largest value, about 1/256 of the rounding a
 *   Q8_0 weight already carries), multiplied in integers (exact block sums, i32x4.dot_i16x8_s: 8
 *   multiply-adds an instruction; Q8_0, Q4_0 and K-quant batches of 8+ through int-tile-wasm.ts's
 *   tiles), then scaled in f32. The other formats' batches of 8+ multiply dequantized f32 tiles with the
 *   rounded inputs as f32 (qround16): every batch size computes the same product up to f32 rounding.
 * - 'int8': 8 bits per block (|x - d q| <= max|x| / 254), as llama.cpp's CPU backend does (Q8_K blocks
 *   of 256 for the K-quants' matrix-vector products; their batches of 8+, and those of the formats
 *   without an integer tile, multiply f32 tiles with the f32 inputs); with the relaxed dot product 16
 *   multiply-adds an instruction.
 * - 'f32': the inputs as they are: the product with the dequantized weights up to f32 rounding (what the
 *   WebGPU kernels compute), slower (f32 lanes, 4 multiply-adds an instruction).
 */
export type Activations = 'f32' | 'int16' | 'int8';
export const ACTIVATIONS: readonly Activations[] = ['int16', 'int8', 'f32'];
/** An input's prepared form: int8 / int16 values for the "_i8" / "_i16" kernels, packed for an integer tile, f32 sums, or f32 in a format's lane order. */
type Form = GGMLType | 'int8' | 'int16' | 'int16p' | 'int16s' | 'round16' | 'sums' | 'itile' | 'itile8' | 'itile16';

/** How a WasmExecutor multiplies. */
export interface ExecutorOptions {
  /** What quantized weights are multiplied with (see Activations). Default 'int16'. */
  activations?: Activations;
  /** true: the same as activations: 'int8' (its older name); false leaves the default. */
  int8Activations?: boolean;
  /** Use relaxed-SIMD instructions (those of FMA and the 8-bit dot product that the runtime has). Default: true where it has either. */
  relaxedSimd?: boolean;
}

