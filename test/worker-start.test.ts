// loadModel reads a model file into the CPU executor's memory while its worker threads start, and
// waits for them only then. A worker that fails to start (here: node:worker_threads' Worker replaced by
// one that exits with code 1, before or after the file has been read) leaves one thread: a notice says
// so, the file is read again into that thread's memory, and the model computes as it should.
import { describe, expect, it, vi } from 'vitest';
import { loadModel } from '../src/engine.js';
import { hasShared, STORIES_BIN, STORIES_TOK, storiesReference } from './helpers.js';

const failing = vi.hoisted(() => ({ afterMs: 0, made: 0 }));
vi.mock('node:worker_threads', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:worker_threads')>();
  const { EventEmitter } = await import('node:events');
  /** A worker that never starts: it exits with code 1 after `failing.afterMs`. */
  class FailingWorker extends EventEmitter {
    constructor() {
      super();
      failing.made++;
      setTimeout(() => this.emit('exit', 1), failing.afterMs);
    }
    unref(): void {}
    terminate(): Promise<number> {
      return Promise.resolve(1);
    }
  }
  return { ...real, Worker: FailingWorker, default: { ...real, Worker: FailingWorker } };
});

describe.skipIf(!hasShared)('worker threads that fail to start while the model is read', () => {
  for (const afterMs of [0, 300])
    it(`a worker exiting ${afterMs ? 'after the file was read' : 'at once'}: one thread, the file read again, the reference generation`, async () => {
      failing.afterMs = afterMs;
      const before = failing.made;
      const notices: string[] = [];
      let read = 0;
      const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, device: 'cpu', threads: 2, onNotice: (t) => notices.push(t), onProgress: (n) => (read = n) });
      try {
        expect(failing.made - before).toBe(1);
        expect(m.backend.name).toBe('cpu (1 thread)');
        expect(notices).toEqual(['a matmul worker thread failed to start: exited with code 1; running on one thread']);
        expect(read).toBeGreaterThan(0);
        // the tensors are views of the one thread's memory (read again), not of the memory that went with the workers
        const exec = (m.backend as unknown as { exec: { owns(a: ArrayBufferView): boolean } }).exec;
        expect([...m.file.tensors.values()].every((t) => exec.owns(t.data))).toBe(true);
        const g = m.generate('', { temperature: 0, maxTokens: 24 });
        await g.text();
        expect(g.tokens).toEqual(storiesReference().generated_ids.slice(0, 24));
      } finally {
        m.dispose();
      }
    });
});
