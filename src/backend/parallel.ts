// The CPU's matmuls on several threads in Node: a WasmExecutor (wasm-executor.ts) whose jobs the main
// thread shares with (threads - 1) worker threads, all over its one shared WebAssembly.Memory
// (thread-team.ts: each job's rows split evenly, one wake-up per worker for a batch of jobs).

import os from 'node:os';
import { Worker, receiveMessageOnPort, MessageChannel, type MessagePort } from 'node:worker_threads';
import type { MatmulWasm } from './matmul-wasm.js';
import { launchExecutor, runSlice, type ExecutorOptions, type ThreadTeam, type WasmExecutor } from './wasm-executor.js';
import { controlBlock, LAYOUT, quitJobs, runJobs, serveJobs } from './thread-team.js';

export { WasmExecutor, type ExecutorOptions } from './wasm-executor.js';

/** Runs inside each worker: self-contained but for the job loop and slice runner it is handed. */
function workerMain(serve: typeof serveJobs, slice: typeof runSlice): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { workerData } = require('node:worker_threads');
  const { ctrlBuffer, memory, module, port, index, threads, layout } = workerData;
  const k = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as MatmulWasm;
  port.postMessage({ ready: true });
  serve(new Int32Array(ctrlBuffer), k, index, threads, layout, slice, (error) => port.postMessage({ error }));
}

/** The main thread and (threads - 1) workers, each with its own instance of the kernels over the shared memory. */
class WorkerTeam implements ThreadTeam {
  private readonly ctrl = controlBlock();
  private readonly ports: MessagePort[] = [];
  private readonly workers: Worker[] = [];
  private disposed = false;

  constructor(readonly threads: number, module: WebAssembly.Module, memory: WebAssembly.Memory) {
    const source = `(${workerMain.toString()})(${serveJobs.toString()}, ${runSlice.toString()});`;
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
    if (runJobs(this.ctrl, kernels, records, this.threads, runSlice, true)) return;
    const messages = this.ports.map((p) => receiveMessageOnPort(p)?.message?.error).filter(Boolean);
    this.dispose();
    throw new Error(`a matmul worker thread failed: ${messages.join('; ') || 'unknown error'}`);
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
    quitJobs(this.ctrl);
    for (const p of this.ports) p.close();
    for (const w of this.workers) void w.terminate();
  }
}

/** The WebAssembly SIMD executor with `threads` threads in all (default: cores, at most 8). */
export async function createWorkerExecutor(threads?: number, options: ExecutorOptions = {}): Promise<WasmExecutor> {
  const { exec, ready } = launchWorkerExecutor(threads, options);
  await ready;
  return exec;
}

/** The same, returned while its worker threads start (wasm-executor.ts's launchExecutor). */
export function launchWorkerExecutor(threads?: number, options: ExecutorOptions = {}): { exec: WasmExecutor; ready: Promise<void> } {
  const n = threads ?? Math.min(os.availableParallelism(), 8);
  return launchExecutor(n, options, (module, memory) => new WorkerTeam(n, module, memory));
}
