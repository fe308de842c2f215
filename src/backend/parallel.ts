// The CPU's matmuls on several threads in Node: a WasmExecutor (wasm-executor.ts) whose jobs the main
// thread shares with (threads - 1) worker threads, all over its one shared WebAssembly.Memory. Each
// job's rows are split evenly across threads; a batch of jobs is handed over in a shared Int32Array
// with Atomics.wait / notify, so one batch costs one wake-up per worker.

import os from 'node:os';
import { Worker, receiveMessageOnPort, MessageChannel, type MessagePort } from 'node:worker_threads';
import type { MatmulWasm } from './matmul-wasm.js';
import { RECORD_INTS, runSlice, WasmExecutor, type ExecutorOptions, type ThreadTeam } from './wasm-executor.js';

export { WasmExecutor, type ExecutorOptions } from './wasm-executor.js';

const MAX_JOBS = 8;
/** The shared control block, as Int32 indices; the workers get this very object. */
const LAYOUT = {
  GEN: 0, // job generation counter
  DONE: 1, // workers finished with the current generation
  QUIT: 2,
  FAILED: 3, // set by a worker that threw; its error message waits on its port
  NJOBS: 4,
  JOBS: 5, // then MAX_JOBS records of JOB_INTS ints (wasm-executor.ts's RECORD_INTS)
  JOB_INTS: RECORD_INTS,
  SPIN: 20000, // polls before sleeping: workers stay hot between the matmuls of one token
};
const { GEN, DONE, QUIT, FAILED, NJOBS, JOBS, JOB_INTS, SPIN } = LAYOUT;

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
        slice(k, ctrl.subarray(b, b + JOB_INTS), Math.floor((rows * index) / threads), Math.floor((rows * (index + 1)) / threads), index);
      }
    } catch (e) {
      port.postMessage({ error: String((e as Error)?.stack ?? e) });
      Atomics.store(ctrl, FAILED, 1);
    }
    Atomics.add(ctrl, DONE, 1);
    Atomics.notify(ctrl, DONE);
  }
}

/** The main thread and (threads - 1) workers, each with its own instance of the kernels over the shared memory. */
class WorkerTeam implements ThreadTeam {
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(4 * (JOBS + MAX_JOBS * JOB_INTS)));
  private readonly ports: MessagePort[] = [];
  private readonly workers: Worker[] = [];
  private disposed = false;

  constructor(readonly threads: number, module: WebAssembly.Module, memory: WebAssembly.Memory) {
    const source = `(${workerMain.toString()})(${runSlice.toString()});`;
    for (let i = 1; i < threads; i++) {
      const { port1, port2 } = new MessageChannel();
      // No flags from the parent: the source is self-contained CommonJS (it requires node:worker_threads
      // only), which --input-type=module would turn into an ES module, and Worker refuses V8 flags
      // (--no-liftoff, --expose-gc: ERR_WORKER_INVALID_EXEC_ARGV), which apply to the whole process anyway.
      const worker = new Worker(source, { eval: true, execArgv: [], workerData: { ctrlBuffer: this.ctrl.buffer, memory, module, port: port2, index: i, threads, layout: LAYOUT }, transferList: [port2] });
      worker.unref();
      this.workers.push(worker);
      this.ports.push(port1);
    }
  }

  run(kernels: MatmulWasm, records: number[][]): void {
    if (this.disposed) throw new Error('this model was disposed');
    for (let start = 0; start < records.length; start += MAX_JOBS) this.runBatch(kernels, records.slice(start, start + MAX_JOBS));
  }

  private runBatch(kernels: MatmulWasm, records: number[][]): void {
    const c = this.ctrl;
    records.forEach((r, k) => c.set(r, JOBS + k * JOB_INTS));
    c[NJOBS] = records.length;
    Atomics.store(c, DONE, 0);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    // The main thread takes slice 0 of every job.
    for (const r of records) runSlice(kernels, r, 0, Math.floor(r[4]! / this.threads), 0);
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
export async function createWorkerExecutor(threads?: number, options: ExecutorOptions = {}): Promise<WasmExecutor> {
  const n = threads ?? Math.min(os.availableParallelism(), 8);
  if (!(Number.isInteger(n) && n >= 1 && n <= 64)) throw new RangeError(`threads must be an integer from 1 to 64, got ${n}`);
  const exec = new WasmExecutor(options, n > 1 ? (module, memory) => new WorkerTeam(n, module, memory) : undefined);
  try {
    await exec.ready();
  } catch (e) {
    exec.dispose();
    throw e;
  }
  return exec;
}
