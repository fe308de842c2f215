// Fast CPU matmuls for Node: the WebAssembly SIMD kernels of matmul-wasm.ts, run by the main thread
// and (threads - 1) worker threads over one shared WebAssembly.Memory (the "arena"). Model files are
// read straight into the arena, so weights are never copied; activations are allocated there too.
// Each matmul's rows are split evenly across threads; a job is handed over in a shared Int32Array
// with Atomics.wait / notify, so one matmul costs one wake-up per worker.

import os from 'node:os';
import { Worker, receiveMessageOnPort, MessageChannel, type MessagePort } from 'node:worker_threads';
import type { MatmulExecutor, MatmulJob } from './matmul.js';
import { matmulWasmBytes, type MatmulWasm } from './matmul-wasm.js';
import { rowBytes, type QuantMatrix } from './quant.js';
import { fillXSums, wasmSideLength } from './quant-wasm.js';
import { GGMLType } from './tensor.js';

const PAGE = 65536;
const MAX_JOBS = 8;
/** The shared control block, as Int32 indices; the workers get this very object. */
const LAYOUT = {
  GEN: 0, // job generation counter
  DONE: 1, // workers finished with the current generation
  QUIT: 2,
  FAILED: 3, // set by a worker that threw; its error message waits on its port
  NJOBS: 4,
  JOBS: 5, // then MAX_JOBS records of JOB_INTS: w, x, out (byte pointers), n, rows, cols, kind (0 = f32,
  //          else the GGML type), side, xsum (byte pointers), rowBytes
  JOB_INTS: 10,
  SPIN: 20000, // polls before sleeping: workers stay hot between the matmuls of one token
};
const { GEN, DONE, QUIT, FAILED, NJOBS, JOBS, JOB_INTS, SPIN } = LAYOUT;

/**
 * Rows [r0, r1) of one job, through the wasm kernels. Shared by the main thread and the workers
 * (self-contained: workers get its source). kind: 0 for f32 weights, else the GGML type number.
 */
function runSlice(k: MatmulWasm, w: number, x: number, out: number, n: number, rows: number, cols: number, r0: number, r1: number, kind = 0, side = 0, xsum = 0, rowBytes = 0): void {
  if (r0 >= r1) return;
  if (kind !== 0) {
    const [one, four] = kind === 8 ? [k.q8_0, k.q8_0x4] : kind === 2 ? [k.q4_0, k.q4_0x4] : kind === 6 ? [k.q5_0, k.q5_0x4] : kind === 12 ? [k.q4_k, k.q4_kx4] : [k.q6_k, k.q6_kx4];
    const nBlocks = cols / (kind === 12 || kind === 14 ? 256 : 32);
    const [xStride, xsumStride, outStride] = [cols * 4, (cols / 32) * 4, rows * 4];
    // Four inputs per pass over the blocks (prefill), then one at a time.
    let t = 0;
    for (; t + 4 <= n; t += 4) four(w, side, x + t * xStride, xsum + t * xsumStride, out + t * outStride, rowBytes, nBlocks, r0, r1, xStride, xsumStride, outStride);
    for (; t < n; t++) one(w, side, x + t * xStride, xsum + t * xsumStride, out + t * outStride, rowBytes, nBlocks, r0, r1, xStride, xsumStride, outStride);
    return;
  }
  if (n === 1) k.matvec(w, x, out, cols, r0, r1);
  else if ((cols & 3) === 0) k.matmul4(w, x, out, n, rows, cols, r0, r1);
  else for (let t = 0; t < n; t++) k.matvec(w, x + t * cols * 4, out + t * rows * 4, cols, r0, r1);
}

/** Runs inside each worker: self-contained but for the slice runner it is handed. */
function workerMain(slice: typeof runSlice): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { workerData } = require('node:worker_threads');
  const { ctrlBuffer, memory, module, port, index, threads, layout } = workerData;
  const { GEN, DONE, QUIT, FAILED, NJOBS, JOBS, JOB_INTS, SPIN } = layout as typeof LAYOUT;
  const ctrl = new Int32Array(ctrlBuffer);
  const k = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as MatmulWasm;
  port.postMessage({ ready: true });
  let seen = 0;
  for (;;) {
    let spins = 0;
    while (Atomics.load(ctrl, GEN) === seen) {
      if (++spins > SPIN) Atomics.wait(ctrl, GEN, seen);
    }
    seen = Atomics.load(ctrl, GEN);
    if (Atomics.load(ctrl, QUIT)) return;
    try {
      const njobs = ctrl[NJOBS]!;
      for (let j = 0; j < njobs; j++) {
        const b = JOBS + j * JOB_INTS;
        const rows = ctrl[b + 4]!;
        slice(k, ctrl[b]!, ctrl[b + 1]!, ctrl[b + 2]!, ctrl[b + 3]!, rows, ctrl[b + 5]!, Math.floor((rows * index) / threads), Math.floor((rows * (index + 1)) / threads), ctrl[b + 6]!, ctrl[b + 7]!, ctrl[b + 8]!, ctrl[b + 9]!);
      }
    } catch (e) {
      port.postMessage({ error: String((e as Error)?.stack ?? e) });
      Atomics.store(ctrl, FAILED, 1);
    }
    Atomics.add(ctrl, DONE, 1);
    Atomics.notify(ctrl, DONE);
  }
}

/** Bump allocator over a growable shared WebAssembly.Memory. */
class Arena {
  readonly memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
  private top = 64; // keep address 0 unused
  /**
   * Every SharedArrayBuffer object through which an allocation was handed out. V8 may give a new
   * object for the same memory on a later `memory.buffer` (after a grow, or once the previous object
   * was garbage collected), so ownership is recorded per object actually used, which each
   * allocation keeps alive.
   */
  private readonly buffers = new WeakSet<ArrayBufferLike>();

  bytes(n: number): Uint8Array {
    const start = Math.ceil(this.top / 64) * 64;
    const end = start + n;
    if (end > 2 ** 32 - PAGE) throw new RangeError(`out of memory: the CPU arena is limited to 4 GiB (asked for ${n} more bytes at ${start})`);
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.top = end;
    const buffer = this.memory.buffer;
    this.buffers.add(buffer);
    return new Uint8Array(buffer, start, n);
  }

  owns(a: ArrayBufferView): boolean {
    return this.buffers.has(a.buffer);
  }
}

export class WasmExecutor implements MatmulExecutor {
  private readonly arena = new Arena();
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(4 * (JOBS + MAX_JOBS * JOB_INTS)));
  private readonly kernels: MatmulWasm;
  private readonly ports: MessagePort[] = [];
  private readonly workers: Worker[] = [];
  private disposed = false;

  constructor(readonly threads: number) {
    const module = new WebAssembly.Module(matmulWasmBytes());
    this.kernels = new WebAssembly.Instance(module, { env: { memory: this.arena.memory } }).exports as unknown as MatmulWasm;
    const source = `(${workerMain.toString()})(${runSlice.toString()});`;
    for (let i = 1; i < threads; i++) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(source, { eval: true, workerData: { ctrlBuffer: this.ctrl.buffer, memory: this.arena.memory, module, port: port2, index: i, threads, layout: LAYOUT }, transferList: [port2] });
      worker.unref();
      this.workers.push(worker);
      this.ports.push(port1);
    }
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

  run(jobs: MatmulJob[]): void {
    if (this.disposed) throw new Error('this model was disposed');
    // Q4_K jobs need the sums of each 32 inputs of their x: one region per job of this call.
    const sums = jobs.map((j) => (!(j.w instanceof Float32Array) && j.w.type === GGMLType.Q4_K ? j.n * (j.cols / 32) : 0));
    const need = sums.reduce((a, b) => a + b, 0);
    if ((this.xsums?.length ?? 0) < need) this.xsums = this.alloc(Math.max(need, 4096));
    let at = 0;
    const records = jobs.map((j, i) => {
      const region = sums[i] ? this.xsums!.subarray(at, (at += sums[i]!)) : undefined;
      return this.record(j, region);
    });
    if (this.workers.length === 0) {
      for (const r of records) runSlice(this.kernels, r[0]!, r[1]!, r[2]!, r[3]!, r[4]!, r[5]!, 0, r[4]!, r[6], r[7], r[8], r[9]);
      return;
    }
    for (let start = 0; start < records.length; start += MAX_JOBS) this.runBatch(records.slice(start, start + MAX_JOBS));
  }

  /** Scratch for the Q4_K kernel's input sums (see run). */
  private xsums?: Float32Array;
  /** A job as its control-block record (JOB_INTS ints), its buffers checked to be in the arena. */
  private record(j: MatmulJob, xsums?: Float32Array): number[] {
    const w = j.w as Float32Array | (QuantMatrix & { side?: Float32Array });
    for (const [name, a] of [['out', j.out], ['w', w instanceof Float32Array ? w : w.data], ['x', j.x]] as const)
      if (!this.arena.owns(a)) throw new Error(`WasmExecutor: the ${name} buffer is not in the executor's memory (allocate it with exec.alloc)`);
    if (w instanceof Float32Array) return [w.byteOffset, j.x.byteOffset, j.out.byteOffset, j.n, j.rows, j.cols, 0, 0, 0, 0];
    if (xsums) fillXSums(j.x, j.n, j.cols, xsums);
    const xsum = xsums?.byteOffset ?? 0;
    if (wasmSideLength(w) > 0 && !w.side) throw new Error('WasmExecutor: a K-quant matrix needs its unpacked scales (CpuBackend.weight makes them)');
    return [w.data.byteOffset, j.x.byteOffset, j.out.byteOffset, j.n, j.rows, j.cols, w.type, w.side?.byteOffset ?? 0, xsum, rowBytes(w.type, w.cols)];
  }

  private runBatch(records: number[][]): void {
    const c = this.ctrl;
    records.forEach((r, k) => c.set(r, JOBS + k * JOB_INTS));
    c[NJOBS] = records.length;
    Atomics.store(c, DONE, 0);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    // The main thread takes slice 0 of every job.
    for (const r of records) runSlice(this.kernels, r[0]!, r[1]!, r[2]!, r[3]!, r[4]!, r[5]!, 0, Math.floor(r[4]! / this.threads), r[6], r[7], r[8], r[9]);
    const want = this.workers.length;
    let spins = 0;
    for (let done = Atomics.load(c, DONE); done < want; done = Atomics.load(c, DONE)) {
      if (++spins > SPIN) Atomics.wait(c, DONE, done, 100);
    }
    if (Atomics.load(c, FAILED)) {
      const messages = this.ports.map((p) => receiveMessageOnPort(p)?.message?.error).filter(Boolean);
      this.dispose();
      throw new Error(`a matmul worker thread failed: ${messages.join('; ') || 'unknown error'}`);
    }
  }

  /** Resolves once every worker has started; rejects if one fails to. */
  async ready(): Promise<void> {
    await Promise.all(
      this.workers.map(
        (w, i) =>
          new Promise<void>((resolve, reject) => {
            const port = this.ports[i]!;
            const poll = setInterval(() => {
              const m = receiveMessageOnPort(port);
              if (m?.message?.ready) { done(); resolve(); }
            }, 2);
            const fail = (e: unknown) => { done(); reject(new Error(`a matmul worker thread failed to start: ${(e as Error)?.message ?? e}`)); };
            const exit = (code: number) => fail(new Error(`exited with code ${code}`));
            const done = () => { clearInterval(poll); w.off('error', fail); w.off('exit', exit); };
            w.on('error', fail);
            w.on('exit', exit);
          }),
      ),
    );
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    Atomics.store(this.ctrl, QUIT, 1);
    Atomics.add(this.ctrl, GEN, 1);
    Atomics.notify(this.ctrl, GEN);
    for (const p of this.ports) p.close();
    for (const w of this.workers) void w.terminate();
  }
}

/** The WebAssembly SIMD executor with `threads` threads in all (default: cores, at most 8). */
export async function createWorkerExecutor(threads?: number): Promise<WasmExecutor> {
  const n = threads ?? Math.min(os.availableParallelism(), 8);
  if (!(Number.isInteger(n) && n >= 1 && n <= 64)) throw new RangeError(`threads must be an integer from 1 to 64, got ${n}`);
  const exec = new WasmExecutor(n);
  try {
    await exec.ready();
  } catch (e) {
    exec.dispose();
    throw e;
  }
  return exec;
}
