// The CPU kernels' module kept on disk between processes (src/load/kernel-cache.ts): files named by
// a hash of the code that emits the module, read back only when valid, rewritten otherwise.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kernelStore, sourceHash } from '../src/load/kernel-cache.js';
import { matmulWasmBytes, relaxedSimd } from '../src/backend/matmul-wasm.js';
import { hasShared, ROOT, TINY_GGUF } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'pocketlm-kernel-cache-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The smallest valid module: its header, nothing in it. */
const EMPTY_MODULE = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);

describe('kernel cache', () => {
  it('names its files by a hash of the source folders: the same for the same files, another when one changes', () => {
    const src = join(tmp, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'a.js'), 'export const a = 1;');
    writeFileSync(join(src, 'b.txt'), 'not code');
    const h = sourceHash([src], '.js');
    expect(sourceHash([src], '.js')).toBe(h);
    writeFileSync(join(src, 'b.txt'), 'still not code');
    expect(sourceHash([src], '.js')).toBe(h); // (only the code's files count)
    writeFileSync(join(src, 'a.js'), 'export const a = 2;');
    expect(sourceHash([src], '.js')).not.toBe(h);
  });

  it('gives back what it kept, nothing for a missing or invalid file, and a new hash misses the old files and removes them', () => {
    const src = join(tmp, 'src2');
    mkdirSync(src);
    writeFileSync(join(src, 'k.ts'), 'emit();');
    const dir = join(tmp, 'cache');
    const store = kernelStore(dir, [src])!;
    const module = EMPTY_MODULE;
    expect(WebAssembly.validate(module)).toBe(true);
    expect(store.get('1-0')).toBeUndefined();
    store.set('1-0', module);
    expect(store.get('1-0')).toEqual(module);
    expect(store.get('1-1')).toBeUndefined();
    const [name] = readdirSync(dir);
    writeFileSync(join(dir, name!), 'garbage');
    expect(store.get('1-0')).toBeUndefined(); // (not a valid module: emitted again)
    writeFileSync(join(src, 'k.ts'), 'emit(2);');
    const next = kernelStore(dir, [src])!;
    expect(next.get('1-0')).toBeUndefined();
    next.set('1-0', module);
    expect(readdirSync(dir)).toEqual([expect.stringMatching(/-1-0\.wasm$/)]);
    expect(readdirSync(dir)[0]).not.toBe(name);
  });

  it('a cache that cannot be written is skipped', () => {
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'x');
    const store = kernelStore(join(file, 'kernels'))!; // (a folder under a file: mkdir fails)
    expect(() => store.set('0-0', EMPTY_MODULE)).not.toThrow();
    expect(store.get('0-0')).toBeUndefined();
  });

  it("an executor compiles the store's module where it has one, else emits it and gives it to the store", async () => {
    const { useKernelStore, WasmExecutor } = await import('../src/backend/wasm-executor.js');
    const relaxed = relaxedSimd();
    const key = `${+relaxed.madd}-${+relaxed.dot}`;
    const calls: string[] = [];
    let kept: Uint8Array | undefined;
    useKernelStore({ get: (k) => (calls.push(`get ${k}`), undefined), set: (k, bytes) => (calls.push(`set ${k}`), (kept = bytes)) });
    try {
      new WasmExecutor().dispose();
      new WasmExecutor().dispose(); // (compiled once per process: the store is asked once)
      expect(calls).toEqual([`get ${key}`, `set ${key}`]);
      expect(kept).toEqual(matmulWasmBytes(relaxed));
      // (a process whose store has the module: this file's module registry is its own, so a fresh import stands for one)
      const fresh = await import(`../src/backend/wasm-executor.js?fresh`);
      calls.length = 0;
      fresh.useKernelStore({ get: (k: string) => (calls.push(`get ${k}`), kept), set: (k: string) => calls.push(`set ${k}`) });
      const exec = new fresh.WasmExecutor();
      expect(calls).toEqual([`get ${key}`]);
      const x = exec.alloc(4);
      x.set([1, 5, 2, 5]);
      expect(exec.argmax(x)).toBe(1);
      exec.dispose();
      fresh.useKernelStore(undefined);
      // (and a process with no store, as in a browser: emitted)
      const none = await import(`../src/backend/wasm-executor.js?none`);
      const plain = new none.WasmExecutor();
      const y = plain.alloc(3);
      y.set([0, -1, 2]);
      expect(plain.argmax(y)).toBe(2);
      plain.dispose();
    } finally {
      useKernelStore(undefined);
    }
  });

  it.runIf(hasShared)('the CLI keeps the module it emitted and runs from it, and replaces a broken file', () => {
    const cache = join(tmp, 'cli-cache');
    const run = () => spawnSync(process.execPath, [join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'generate', '--model', TINY_GGUF, '--device', 'cpu', '--temperature', '0', '--max-tokens', '4', 'Hi'], { encoding: 'utf8', env: { ...process.env, POCKETLM_CACHE: cache } });
    const first = run();
    expect(first.status, first.stderr).toBe(0);
    const files = readdirSync(join(cache, 'kernels'));
    expect(files.length).toBe(1);
    // (the child is this same Node: the same instruction set, so the same bytes as emitted here)
    expect(new Uint8Array(readFileSync(join(cache, 'kernels', files[0]!)))).toEqual(matmulWasmBytes(relaxedSimd()));
    const second = run();
    expect([second.status, second.stdout]).toEqual([0, first.stdout]);
    writeFileSync(join(cache, 'kernels', files[0]!), 'broken');
    const third = run();
    expect([third.status, third.stdout]).toEqual([0, first.stdout]);
    expect(new Uint8Array(readFileSync(join(cache, 'kernels', files[0]!)))).toEqual(matmulWasmBytes(relaxedSimd()));
  });
});
