// How a WasmExecutor's threads share its jobs, whatever starts them (Node's worker threads in
// parallel.ts, a browser's Web Workers in web-workers.ts): a control block in a SharedArrayBuffer holds
// a batch of job records (wasm-executor.ts's RECORD_INTS each); the calling thread bumps a generation
// counter, takes the first share of every job's rows, and waits until each worker has done its share.
// Workers spin briefly, then sleep in Atomics.wait, so the matmuls of one token cost no wake-ups.

import type { MatmulWasm } from './matmul-wasm.js';
import { RECORD_INTS, type runSlice } from './wasm-executor.js';

/** Job records per hand-over (more are handed over in several). */
export const MAX_JOBS = 8;
/** The shared control block, as Int32 indices; the workers get this very object. */
export const LAYOUT = {
  GEN: 0, // job generation counter
  DONE: 1, // workers finished with the current generation
  QUIT: 2,
  FAILED: 3, // set by a worker that threw (its message goes where its team's onError puts it)
  NJOBS: 4,
  JOBS: 5, // then MAX_JOBS records of JOB_INTS ints
  JOB_INTS: RECORD_INTS,
  SPIN: 20000, // polls before sleeping: workers stay hot between the matmuls of one token
};
export type Layout = typeof LAYOUT;

/** A control block for `LAYOUT`. */
export function controlBlock(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4 * (LAYOUT.JOBS + MAX_JOBS * LAYOUT.JOB_INTS)));
}

/**
 * A worker's loop, until QUIT: its share (number `index` of `threads`) of every job of each new
 * generation. Self-contained: workers get its source, and the slice runner and layout as arguments.
 */
export function serveJobs(ctrl: Int32Array, k: MatmulWasm, index: number, threads: number, layout: Layout, slice: typeof runSlice, onError: (message: string) => void): void {
  const { GEN, DONE, QUIT, FAILED, NJOBS, JOBS, JOB_INTS, SPIN } = layout;
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
        slice(k, ctrl, Math.floor((rows * index) / threads), Math.floor((rows * (index + 1)) / threads), index, b);
      }
    } catch (e) {
      onError(String((e as Error)?.stack ?? e));
      Atomics.store(ctrl, FAILED, 1);
    }
    Atomics.add(ctrl, DONE, 1);
    Atomics.notify(ctrl, DONE);
  }
}

/**
 * The calling thread's side: `records` handed to the (threads - 1) workers in batches of MAX_JOBS, its
 * own share (the first of `threads`) run meanwhile. `mayBlock`: whether this thread may sleep in
 * Atomics.wait while the others finish (not a browser's main thread: it spins). Returns false if a
 * worker failed.
 */
export function runJobs(ctrl: Int32Array, kernels: MatmulWasm, records: number[][], threads: number, slice: typeof runSlice, mayBlock: boolean): boolean {
  const { GEN, DONE, FAILED, NJOBS, JOBS, JOB_INTS, SPIN } = LAYOUT;
  for (let start = 0; start < records.length; start += MAX_JOBS) {
    const batch = records.slice(start, start + MAX_JOBS);
    batch.forEach((r, k) => ctrl.set(r, JOBS + k * JOB_INTS));
    ctrl[NJOBS] = batch.length;
    Atomics.store(ctrl, DONE, 0);
    Atomics.add(ctrl, GEN, 1);
    Atomics.notify(ctrl, GEN);
    for (const r of batch) slice(kernels, r, 0, Math.floor(r[4]! / threads), 0);
    let spins = 0;
    for (let done = Atomics.load(ctrl, DONE); done < threads - 1; done = Atomics.load(ctrl, DONE)) {
      if (mayBlock && ++spins > SPIN) Atomics.wait(ctrl, DONE, done, 100);
    }
    if (Atomics.load(ctrl, FAILED)) return false;
  }
  return true;
}

/** Tell the workers to stop (each returns from serveJobs). */
export function quitJobs(ctrl: Int32Array): void {
  Atomics.store(ctrl, LAYOUT.QUIT, 1);
  Atomics.add(ctrl, LAYOUT.GEN, 1);
  Atomics.notify(ctrl, LAYOUT.GEN);
}
