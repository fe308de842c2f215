// Worker-thread matmuls for Node. The main thread and (threads - 1) workers each compute a slice of
// the rows of every job. All buffers live in SharedArrayBuffers; a worker learns a new buffer through
// a message it reads synchronously (receiveMessageOnPort), and jobs are handed over in a shared
// Int32Array control block with Atomics.wait / notify, so a whole matmul costs one wake-up.

import os from 'node:os';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { matmul, matvec, serialExecutor, type MatmulExecutor, type MatmulJob } from './matmul.js';

const MAX_JOBS = 8;
const JOB_INTS = 9; // out buffer, out offset, w buffer, w offset, x buffer, x offset, n, rows, cols
const GEN = 0; // job generation counter
const DONE = 1; // workers finished with the current generation
const QUIT = 2;
const FAILED = 3; // set by a worker that threw; its error message waits on its port
const NJOBS = 4;
const JOBS = 5;
const SPIN = 20000; // polls before sleeping: a worker stays hot between the matmuls of one token

/** Runs inside each worker: self-contained but for the matmul kernel it is handed. */
function workerMain(kernel: typeof matmul): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { workerData, receiveMessageOnPort } = require('node:worker_threads');
  const { ctrlBuffer, port, index, threads } = workerData;
  const ctrl = new Int32Array(ctrlBuffer);
  const buffers: Float32Array[] = [];
  const drain = () => {
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) buffers[m.message.id] = new Float32Array(m.message.buffer);
  };
  const buf = (id: number) => {
    while (!buffers[id]) drain();
    return buffers[id]!;
  };
  port.postMessage({ ready: true });
  let seen = 0;
  for (;;) {
    let spins = 0;
    while (Atomics.load(ctrl, 0) === seen) {
      if (++spins > 20000) Atomics.wait(ctrl, 0, seen);
    }
    seen = Atomics.load(ctrl, 0);
    if (Atomics.load(ctrl, 2)) return;
    try {
      drain();
      const njobs = ctrl[4]!;
      for (let j = 0; j < njobs; j++) {
        const b = 5 + j * 9;
        const out = buf(ctrl[b]!).subarray(ctrl[b + 1]!);
        const w = buf(ctrl[b + 2]!).subarray(ctrl[b + 3]!);
        const x = buf(ctrl[b + 4]!).subarray(ctrl[b + 5]!);
        const n = ctrl[b + 6]!, rows = ctrl[b + 7]!, cols = ctrl[b + 8]!;
        const r0 = Math.floor((rows * index) / threads), r1 = Math.floor((rows * (index + 1)) / threads);
        kernel(out, w, x, n, rows, cols, r0, r1);
      }
    } catch (e) {
      port.postMessage({ error: String((e as Error)?.stack ?? e) });
      Atomics.store(ctrl, 3, 1);
    }
    Atomics.add(ctrl, 1, 1);
    Atomics.notify(ctrl, 1);
  }
}

class WorkerExecutor implements MatmulExecutor {
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(4 * (JOBS + MAX_JOBS * JOB_INTS)));
  private readonly ids = new Map<SharedArrayBuffer, number>();
  private readonly ports: MessagePort[] = [];
  private readonly workers: Worker[] = [];
  private disposed = false;

  constructor(readonly threads: number) {
    // The worker runs the very same kernel source: matmul and the matvec it calls.
    const source = `(${workerMain.toString()})((() => { ${matvec.toString()}\n${matmul.toString()}\nreturn matmul; })());`;
    for (let i = 1; i < threads; i++) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(source, { eval: true, workerData: { ctrlBuffer: this.ctrl.buffer, port: port2, index: i, threads }, transferList: [port2] });
      worker.unref();
      this.workers.push(worker);
      this.ports.push(port1);
    }
  }

  alloc(length: number): Float32Array {
    return new Float32Array(new SharedArrayBuffer(length * 4));
  }

  private bufferId(a: Float32Array): [number, number] {
    const sab = a.buffer;
    if (!(sab instanceof SharedArrayBuffer)) throw new Error('WorkerExecutor: buffer is not shared memory (allocate it with exec.alloc)');
    let id = this.ids.get(sab);
    if (id === undefined) {
      id = this.ids.size;
      this.ids.set(sab, id);
      for (const p of this.ports) p.postMessage({ id, buffer: sab });
    }
    return [id, a.byteOffset / 4];
  }

  run(jobs: MatmulJob[]): void {
    if (this.disposed) throw new Error('this model was disposed');
    for (let start = 0; start < jobs.length; start += MAX_JOBS) this.runBatch(jobs.slice(start, start + MAX_JOBS));
  }

  private runBatch(jobs: MatmulJob[]): void {
    const c = this.ctrl;
    jobs.forEach((j, k) => {
      const b = JOBS + k * JOB_INTS;
      [c[b], c[b + 1]] = this.bufferId(j.out);
      [c[b + 2], c[b + 3]] = this.bufferId(j.w);
      [c[b + 4], c[b + 5]] = this.bufferId(j.x);
      c[b + 6] = j.n;
      c[b + 7] = j.rows;
      c[b + 8] = j.cols;
    });
    c[NJOBS] = jobs.length;
    Atomics.store(c, DONE, 0);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    // The main thread takes slice 0 of every job.
    for (const j of jobs) matmul(j.out, j.w, j.x, j.n, j.rows, j.cols, 0, Math.floor(j.rows / this.threads));
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

/** A worker-thread executor with `threads` threads in all (default: cores, at most 8). */
export async function createWorkerExecutor(threads?: number): Promise<MatmulExecutor> {
  const n = threads ?? Math.min(os.availableParallelism(), 8);
  if (!(Number.isInteger(n) && n >= 1 && n <= 64)) throw new RangeError(`threads must be an integer from 1 to 64, got ${n}`);
  if (n === 1) return serialExecutor;
  const exec = new WorkerExecutor(n);
  try {
    await exec.ready();
  } catch (e) {
    exec.dispose();
    throw e;
  }
  return exec;
}
