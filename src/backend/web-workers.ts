// The CPU's matmuls on several threads in a browser: a WasmExecutor (wasm-executor.ts) whose jobs the
// calling thread shares with (threads - 1) Web Workers over its one shared WebAssembly.Memory
// (thread-team.ts's protocol, as parallel.ts's worker threads in Node). Sending a shared memory to a
// worker needs a cross-origin isolated page (served with Cross-Origin-Opener-Policy: same-origin and
// Cross-Origin-Embedder-Policy: require-corp); the engine checks `crossOriginIsolated` first.
// A browser's main thread may not sleep in Atomics.wait, so it spins while the workers finish their
// share; a worker that fails leaves its message in a shared buffer, which the blocked caller can read.

import type { MatmulWasm } from './matmul-wasm.js';
import { runSlice, startExecutor, type ExecutorOptions, type ThreadTeam, type WasmExecutor } from './wasm-executor.js';
import { controlBlock, LAYOUT, quitJobs, runJobs, serveJobs } from './thread-team.js';

/** How long the workers may take to start. */
const START_MS = 30_000;
/** UTF-16 code units of a failed worker's message kept (the rest is cut). */
const MESSAGE_UNITS = 4096;

/** Runs inside each Web Worker: waits for its start message, then serves jobs until told to quit. */
function webWorkerMain(serve: typeof serveJobs, slice: typeof runSlice): void {
  const scope = globalThis as unknown as { onmessage: ((e: MessageEvent) => void) | null; postMessage(m: unknown): void };
  scope.onmessage = (e: MessageEvent) => {
    scope.onmessage = null;
    const { ctrlBuffer, errorBuffer, memory, module, index, threads, layout } = e.data;
    const k = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as MatmulWasm;
    scope.postMessage({ ready: true });
    const message = new Uint16Array(errorBuffer);
    serve(new Int32Array(ctrlBuffer), k, index, threads, layout, slice, (error) => {
      // [length, code units...]: the first failure's, for the caller blocked in run()
      if (message[0] !== 0) return;
      const text = error.slice(0, message.length - 1);
      for (let i = 0; i < text.length; i++) message[i + 1] = text.charCodeAt(i);
      message[0] = text.length;
    });
  };
}

class WebWorkerTeam implements ThreadTeam {
  private readonly ctrl = controlBlock();
  private readonly message = new Uint16Array(new SharedArrayBuffer(2 * (MESSAGE_UNITS + 1)));
  private readonly workers: Worker[] = [];
  private readonly started: Promise<void>;
  private disposed = false;

  constructor(readonly threads: number, module: WebAssembly.Module, memory: WebAssembly.Memory) {
    const url = URL.createObjectURL(new Blob([`(${webWorkerMain.toString()})(${serveJobs.toString()}, ${runSlice.toString()});`], { type: 'text/javascript' }));
    const starts: Promise<void>[] = [];
    try {
      // (a Content-Security-Policy without worker-src blob: makes the constructor throw: the workers made so far go)
      for (let i = 1; i < threads; i++) {
        const worker = new Worker(url);
        this.workers.push(worker);
        starts.push(
          new Promise<void>((resolve, reject) => {
            worker.onmessage = (e: MessageEvent) => { if (e.data?.ready) resolve(); };
            worker.onerror = (e: ErrorEvent) => reject(new Error(`a matmul Web Worker failed to start: ${e.message || 'no message (a Content-Security-Policy without worker-src blob:?)'}`));
          }),
        );
        worker.postMessage({ ctrlBuffer: this.ctrl.buffer, errorBuffer: this.message.buffer, memory, module, index: i, threads, layout: LAYOUT });
      }
    } catch (e) {
      for (const w of this.workers) w.terminate();
      throw new Error(`a matmul Web Worker could not be made: ${(e as Error)?.message ?? e}`);
    } finally {
      URL.revokeObjectURL(url);
    }
    // (a worker that neither starts nor fails, say one a busy page never schedules, is given up on)
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`the matmul Web Workers did not start within ${START_MS / 1000} s`)), START_MS); });
    this.started = Promise.race([Promise.all(starts), late]).then(() => clearTimeout(timer), (e) => { clearTimeout(timer); throw e; });
  }

  run(kernels: MatmulWasm, records: number[][]): void {
    if (this.disposed) throw new Error('this model was disposed');
    if (runJobs(this.ctrl, kernels, records, this.threads, runSlice, false)) return;
    const text = String.fromCharCode(...this.message.subarray(1, 1 + this.message[0]!));
    this.dispose();
    throw new Error(`a matmul Web Worker failed: ${text || 'unknown error'}`);
  }

  ready(): Promise<void> {
    return this.started;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    quitJobs(this.ctrl);
    for (const w of this.workers) w.terminate();
  }
}

/**
 * The WebAssembly SIMD executor on `threads` threads in a browser page or worker: the caller and
 * (threads - 1) Web Workers. Needs a cross-origin isolated context (else a shared memory cannot be
 * sent to a worker) and workers from blob: URLs.
 */
export async function createWebWorkerExecutor(threads: number, options: ExecutorOptions = {}): Promise<WasmExecutor> {
  return startExecutor(threads, options, (module, memory) => new WebWorkerTeam(threads, module, memory));
}
