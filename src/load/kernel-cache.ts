// The CPU kernels' WebAssembly module kept on disk between processes (Node). Emitting it
// (matmul-wasm.ts's matmulWasmBytes, 100-140 KB) costs 80-130 ms of a process's start and the garbage
// and optimized code that go with it, about a third of `pocketlm generate`'s time before its first
// token on a small model; reading it back costs about a millisecond.
//
// A file per instruction set under <cache>/kernels (the pulled models' cache: POCKETLM_CACHE, else
// $XDG_CACHE_HOME/pocketlm or ~/.cache/pocketlm), named by a hash of the code that emits the module: the
// files of the folders it is built from (backend, quant, base, stages), so that any change to them, a new
// version or an edited checkout, makes a new file instead of reusing an old one. A file that is missing,
// unreadable or not a valid module is emitted again and written (to a temporary name, then renamed, so
// that processes starting together never read half a file), and the files of other hashes (older code)
// are removed then; a cache that cannot be written is skipped.

import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KernelStore } from '../backend/wasm-executor.js';
import { cacheDir } from '../../weights/fetcher.js';

/** The folders whose files make the kernels' module (wasm-emit.ts and the *-wasm.ts emitters, and what they import). */
const SOURCES = ['backend', 'quant', 'base', 'stages'].map((d) => join(dirname(fileURLToPath(import.meta.url)), '..', d));

let codeHash: string | undefined;

/** A hash of the files (of this module's own extension, .js or .ts) in `folders`. */
export function sourceHash(folders: readonly string[], ext = extname(fileURLToPath(import.meta.url))): string {
  const hash = createHash('sha256');
  for (const folder of folders)
    for (const name of readdirSync(folder).filter((n) => extname(n) === ext).sort()) hash.update(`${name}\0`).update(readFileSync(join(folder, name))).update('\0');
  return hash.digest('hex').slice(0, 16);
}

/** A KernelStore in `dir`, its files named by the hash of `sources` (the kernels' code by default). */
export function kernelStore(dir = join(cacheDir(), 'kernels'), sources: readonly string[] = SOURCES): KernelStore | undefined {
  let hash: string;
  try {
    // (the kernels' own code does not change while a process runs: hashed once, not at every loadModel)
    hash = sources === SOURCES ? (codeHash ??= sourceHash(SOURCES)) : sourceHash(sources);
  } catch {
    return undefined; // (the code's folders unreadable, say a bundle: no cache)
  }
  const file = (key: string) => join(dir, `${hash}-${key}.wasm`);
  return {
    get(key) {
      try {
        const bytes = new Uint8Array(readFileSync(file(key)));
        return WebAssembly.validate(bytes) ? bytes : undefined;
      } catch {
        return undefined;
      }
    },
    set(key, bytes) {
      try {
        mkdirSync(dir, { recursive: true });
        const tmp = `${file(key)}.${process.pid}.tmp`;
        writeFileSync(tmp, bytes);
        renameSync(tmp, file(key));
        for (const name of readdirSync(dir)) if (!name.startsWith(`${hash}-`)) rmSync(join(dir, name), { force: true });
      } catch {
        // (a read-only or full disk: the module is emitted again next time)
      }
    },
  };
}
