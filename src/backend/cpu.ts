// The CPU backend: every stage runs at once, on Float32Arrays. Matmuls go to a MatmulExecutor
// (WebAssembly SIMD kernels: over worker threads in Node, on the calling thread in a browser; plain
// JavaScript where the runtime has no WebAssembly SIMD).

import { attention, type AttentionShape } from '../stages/attention.js';
import type { Backend, EmbedOptions, MatmulOp } from './backend.js';
import { activate, gated, softcap, type Activation, type GateActivation } from '../stages/ffn.js';
import { affine, layernorm } from '../stages/layernorm.js';
import { softmax } from '../stages/softmax.js';
import { serialExecutor, type MatmulExecutor, type StepRecorder } from '../stages/matmul.js';
import { rmsnorm } from '../stages/rmsnorm.js';
import { ropeAngles, ropeFrequencies, ropeRows, type RopeParams } from '../stages/rope.js';
import { ropeTable, ropeTableLength } from './rope-wasm.js';
import { argmax, sortedCandidates, type Candidates } from '../stages/sampling.js';
import { dequantizeRow, type QuantMatrix } from '../quant/formats.js';
import { fillWasmSide, wasmSideLength } from './quant-wasm.js';

/** A CPU tensor: f32 values, or a quantized matrix read block by block. */
export type CpuTensor = Float32Array | QuantMatrix;

function allFinite(x: Float32Array): boolean {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i]!)) return false;
  return true;
}

/** The f32 values of a tensor that must not be quantized (activations, norms). */
function f32(t: CpuTensor): Float32Array {
  if (!(t instanceof Float32Array)) throw new TypeError('a quantized matrix was passed where f32 values are needed');
  return t;
}

export class CpuBackend implements Backend<CpuTensor> {
  readonly device = 'cpu' as const;
  /** Prompt steps of 128 tokens: each quantized tile is dequantized once per 128 tokens (prefill 1.07x-1.15x of 32-token steps). */
  readonly prefillRows = 128;
  readonly name: string;
  private scores = new Float64Array(0);
  /**
   * The executor's recorder (WasmExecutor's), which keeps every kernel call and hand-off the executor
   * makes; the stages that run JavaScript here are kept as calls (`js`), and those that read the step's
   * tokens or positions spoil a recording unless they run inside `recorder.live` (`readsPosition`).
   */
  readonly recorder?: StepRecorder;

  constructor(readonly exec: MatmulExecutor = serialExecutor) {
    this.recorder = exec.recorder;
    // (the WebAssembly kernels by their threads; the plain JavaScript ones, threads: 0 or a runtime without WebAssembly SIMD, by name)
    this.name = exec === serialExecutor ? 'cpu (plain JavaScript)' : `cpu (${exec.threads} thread${exec.threads === 1 ? '' : 's'})`;
  }

  /**
   * The CPU computes in f32: `half` weights are used as the f32 values they are; quantized matrices
   * stay quantized (in the executor's memory, where the model file was read).
   */
  weight(data: Float32Array | QuantMatrix, _half?: boolean): CpuTensor {
    if (!(data instanceof Float32Array)) {
      let bytes = data.data;
      if (!this.exec.owns(bytes)) {
        bytes = this.exec.allocBytes(data.data.byteLength);
        bytes.set(data.data);
      }
      // K-quant kernels read per-sub-block scales unpacked once, here (the blocks themselves are not copied).
      const sideLength = this.exec.threads > 0 && this.exec !== serialExecutor ? wasmSideLength(data) : 0;
      const side = sideLength ? this.exec.alloc(sideLength) : undefined;
      if (side) fillWasmSide(data, side);
      return { ...data, data: bytes, side } as QuantMatrix;
    }
    if (this.exec.owns(data)) return data;
    const copy = this.exec.alloc(data.length);
    copy.set(data);
    return copy;
  }
  scratch(length: number): Float32Array {
    return this.exec.alloc(length);
  }
  /** Give back a KV cache or scratch buffer (a finished sequence's) to the executor's memory. */
  release(t: Float32Array): void {
    this.exec.release?.(t);
  }
  /** The CPU keeps its KV cache in f32. */
  kvCache(length: number, _half?: boolean): Float32Array {
    return this.exec.alloc(length);
  }
  embed(out: CpuTensor, table: CpuTensor, tokens: readonly number[], dim: number, o: EmbedOptions = {}): void {
    this.readsPosition();
    const dst = f32(out);
    const row = this.temp(dim, 'embed');
    const scale = o.scale ?? 1;
    tokens.forEach((tok, t) => {
      if (table instanceof Float32Array) row.set(table.subarray(tok * dim, (tok + 1) * dim));
      else dequantizeRow(table, tok, row, 0);
      for (let i = 0; i < dim; i++) dst[t * dim + i] = (o.accumulate ? dst[t * dim + i]! : 0) + row[i]! * scale;
    });
  }
  rmsnorm(out: Float32Array, x: Float32Array, w: Float32Array, dim: number, eps: number, n: number): void {
    // (the executor's kernel where it has one and holds the buffers; else float64 JavaScript)
    if (this.exec.rmsnorm && this.mine(out, x, w)) return this.exec.rmsnorm(out, x, w, dim, eps, n);
    this.js(() => rmsnorm(out, x, w, dim, eps, n));
  }
  /** Run a stage of JavaScript (its arguments the same at every step): in a recording, also at each replay. */
  private js(step: () => void): void {
    if (this.recorder?.recording) this.recorder.live(step);
    else step();
  }
  /** A stage that reads the step's tokens or positions: a recording it runs in outside `recorder.live` cannot be replayed. */
  private readsPosition(): void {
    this.recorder?.spoil();
  }
  /** Are these buffers in the executor's memory (its kernels can read them)? */
  private mine(...buffers: Float32Array[]): boolean {
    return buffers.every((b) => this.exec.owns(b));
  }
  matmul(ops: MatmulOp<Float32Array>[]): void {
    // Accumulating products are computed into scratch and then added: the executor's kernels store.
    const sums = ops.filter((o) => o.accumulate).map((o) => ({ o, tmp: this.temp(o.n * o.rows, ops.indexOf(o)) }));
    this.exec.run(ops.map((o) => (o.accumulate ? { ...o, out: sums.find((s) => s.o === o)!.tmp } : o)));
    for (const { o, tmp } of sums) this.add(o.out, tmp, o.n * o.rows);
    for (const o of ops) if (o.bias) for (let t = 0; t < o.n; t++) this.add(o.out.subarray(t * o.rows), o.bias, o.rows);
  }
  private readonly temps = new Map<number | string, Float32Array>();
  /** Scratch `slot` of at least `length` floats, from the executor's memory. */
  private temp(length: number, slot: number | string): Float32Array {
    let t = this.temps.get(slot);
    if ((t?.length ?? 0) < length) this.temps.set(slot, (t = this.exec.alloc(length)));
    return t!;
  }
  gatedMatmul(out: Float32Array, wGate: Float32Array, wUp: Float32Array, x: Float32Array, up: Float32Array, n: number, rows: number, cols: number, act: GateActivation = 'silu'): void {
    const [gate, upJob] = [{ out, w: wGate, x, n, rows, cols }, { out: up, w: wUp, x, n, rows, cols }];
    if (this.exec.runGated) return this.exec.runGated(gate, upJob, act); // the activation spread over the threads too
    this.matmul([gate, upJob]);
    this.gated(out, up, n * rows, act);
  }
  rope(x: Float32Array, nHeads: number, start: number, n: number, p: RopeParams, row0 = 0): void {
    this.readsPosition();
    // (one step's q and k in every layer rotate at the same positions: the angles are computed once per
    // step and parameters, e.g. Gemma 3's local and global layers)
    let a = this.angles.get(p);
    if (!a) this.angles.set(p, (a = { freqs: ropeFrequencies(p), start: 0, n: 0, angles: new Float64Array(0) }));
    if (a.start !== start || a.n < n) Object.assign(a, { start, n, angles: ropeAngles(p, start, n, a.freqs), table: undefined });
    const half = p.ropeDims / 2;
    const neox = p.style === 'neox';
    if (this.exec.rope && this.mine(x) && !(neox && half % 2)) {
      // (the executor's kernel: the angles laid out for it once per step, in its memory)
      if (!a.table) {
        const need = ropeTableLength(a.n, half);
        if ((a.tableMemory?.length ?? 0) < need) {
          if (a.tableMemory) this.exec.release?.(a.tableMemory);
          const bytes = this.exec.allocBytes(need * 8);
          a.tableMemory = new Float64Array(bytes.buffer, bytes.byteOffset, need);
        }
        ropeTable(a.angles, a.n, half, neox, (a.table = a.tableMemory!));
      }
      const width = nHeads * p.headDim;
      return this.exec.rope(x.subarray(row0 * width, (row0 + n) * width), a.table, nHeads, p.headDim, p.ropeDims, n, neox);
    }
    ropeRows(x, nHeads, n, p, a.angles, row0);
  }
  private readonly angles = new Map<RopeParams, { freqs: Float64Array; start: number; n: number; angles: Float64Array; table?: Float64Array; tableMemory?: Float64Array }>();
  copyRows(dst: Float32Array, dstRow: number, src: Float32Array, srcRow: number, count: number, width: number): void {
    this.readsPosition();
    dst.set(src.subarray(srcRow * width, (srcRow + count) * width), dstRow * width);
  }
  attention(out: Float32Array, q: Float32Array, kCache: Float32Array, vCache: Float32Array, n: number, start: number, s: AttentionShape, row0 = 0): void {
    this.readsPosition();
    if (row0 > 0) {
      const width = s.nHeads * s.headDim;
      [out, q] = [out.subarray(row0 * width), q.subarray(row0 * width)];
    }
    // The executor's WebAssembly kernel (f32, across its threads) where it has one; else float64 JavaScript.
    if (this.exec.attention && s.headDim % 4 === 0) return this.exec.attention(out, q, kCache, vCache, n, start, s);
    if (this.scores.length < start + n) this.scores = new Float64Array(start + n);
    attention(out, q, kCache, vCache, n, start, s, this.scores);
  }
  affine(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array, dim: number, n: number): void {
    this.js(() => affine(out, x, w, b, dim, n));
  }
  layernorm(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array, dim: number, eps: number, n: number): void {
    this.js(() => layernorm(out, x, w, b, dim, eps, n));
  }
  softmax(x: Float32Array, length: number, n: number): void {
    this.js(() => {
      for (let t = 0; t < n; t++) softmax(x, t * length, length);
    });
  }
  gated(gate: Float32Array, up: Float32Array, length: number, act: GateActivation): void {
    this.js(() => gated(gate, up, act, length));
  }
  activate(x: Float32Array, length: number, act: Activation): void {
    this.js(() => activate(x, act, length));
  }
  add(out: Float32Array, x: Float32Array, length: number): void {
    if (this.exec.add && this.mine(out, x)) return this.exec.add(out, x, length);
    this.js(() => {
      for (let i = 0; i < length; i++) out[i] = out[i]! + x[i]!;
    });
  }
  softcap(x: Float32Array, length: number, cap: number): void {
    this.js(() => softcap(x, cap, length));
  }
  async read(src: Float32Array, length: number): Promise<Float32Array> {
    return src.slice(0, length);
  }
  async argmax(src: Float32Array, offset: number, length: number): Promise<number> {
    const x = src.subarray(offset, offset + length);
    // (the executor's kernel where it holds the logits: one pass where the JavaScript makes two)
    if (this.exec.argmax && this.mine(x)) return this.exec.argmax(x);
    return allFinite(x) ? argmax(x) : -1;
  }
  async topk(src: Float32Array, offset: number, length: number, k: number): Promise<Candidates> {
    const x = src.subarray(offset, offset + length);
    if (!(this.exec.argmax && this.exec.above && this.mine(x))) return allFinite(x) ? sortedCandidates(x, k) : { ids: [], logits: [] };
    // The executor's kernels where it holds the logits: the finiteness check (argmax's), then the k best
    // among the logits at or above a floor no higher than the k-th largest (the k-th largest of the first
    // 4096), which the kernel picks out in order, so that ties still go to the lower id.
    if (this.exec.argmax(x) < 0) return { ids: [], logits: [] };
    if (!(k > 0 && k < length)) return sortedCandidates(x, k);
    const floor = sortedCandidates(x.subarray(0, Math.max(k, Math.min(length, 4096))), k).logits[k - 1]!;
    const ids = this.exec.above(x, floor);
    const best = sortedCandidates(Float32Array.from(ids, (i) => x[i]!), k);
    return { ids: best.ids.map((j) => ids[j]!), logits: best.logits };
  }
  dispose(): void {
    this.exec.dispose();
  }
}
