// The weights fetcher (Node): model names from manifest.json -> files in a local cache.
//
//   cache:  $POCKETLM_CACHE, else $XDG_CACHE_HOME/pocketlm, else ~/.cache/pocketlm
//   source: the file's huggingface.co URL, or $POCKETLM_MIRROR (a directory or a base URL holding the
//           same relative paths, e.g. ../shared/weights) for offline machines.
// Every download goes to a temporary file beside its destination, is checked against the recorded
// size and sha256, and only then renamed into place: a failed or corrupt download leaves nothing.
// This module only downloads; turning what it fetched into something to load (a llama2.c pair into
// GGUF, a Hugging Face folder) is src/load/node-io.ts's `pull`.

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DownloadError, InvalidInputError } from '../src/base/errors.js';

export interface ManifestFile {
  /** model: the weights (or one shard of them); tokenizer: a llama2.c tokenizer .bin; other: a folder's config or tokenizer files. */
  role: 'model' | 'tokenizer' | 'other';
  /** Path relative to the cache (and to a mirror). */
  path: string;
  url: string;
  sha256: string | null;
  size: number | null;
}

export interface ManifestModel {
  description: string;
  /** gguf: one file; llama2c: model + tokenizer .bin; hf: a Hugging Face folder (config.json, safetensors, tokenizer files). */
  format: 'llama2c' | 'gguf' | 'hf';
  files: ManifestFile[];
}

export interface Manifest {
  default: string;
  models: Record<string, ManifestModel>;
}

export function manifestPath(): string {
  // This file runs as weights/fetcher.ts (tests) or dist/weights/fetcher.js (built package).
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, 'manifest.json'), join(here, '..', '..', 'weights', 'manifest.json')]) if (existsSync(p)) return p;
  throw new Error(`weights/manifest.json not found near ${here}`);
}

export function loadManifest(): Manifest {
  return JSON.parse(readFileSync(manifestPath(), 'utf8')) as Manifest;
}

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.POCKETLM_CACHE) return resolve(env.POCKETLM_CACHE);
  return join(env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), '.cache'), 'pocketlm');
}

export interface PullOptions {
  cache?: string;
  /** Directory or http(s) base URL with the manifest's relative paths. Default $POCKETLM_MIRROR. */
  mirror?: string;
  /** Called as bytes arrive. */
  onProgress?: (file: string, received: number, total: number | null) => void;
  /** Called for warnings (no checksum recorded...). */
  onWarning?: (message: string) => void;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Is the cached file present with the right size and checksum? */
async function isValid(path: string, f: ManifestFile): Promise<boolean> {
  if (!existsSync(path)) return false;
  if (f.size !== null && statSync(path).size !== f.size) return false;
  return f.sha256 === null || (await sha256File(path)) === f.sha256;
}

/** Download (or copy from the mirror) one file into `dest`, verified, atomically. */
export async function fetchFile(f: ManifestFile, dest: string, o: PullOptions = {}): Promise<void> {
  const mirror = o.mirror ?? process.env.POCKETLM_MIRROR;
  const from = mirror ? (/^https?:\/\//.test(mirror) ? `${mirror.replace(/\/$/, '')}/${f.path}` : resolve(mirror, f.path)) : f.url;
  mkdirSync(dirname(dest), { recursive: true });
  const tmp = `${dest}.part-${process.pid}-${Date.now()}`;
  const hash = createHash('sha256');
  let received = 0;
  try {
    const out = createWriteStream(tmp);
    const write = (chunk: Uint8Array) =>
      new Promise<void>((ok, fail) => out.write(chunk, (e) => (e ? fail(e) : ok())));
    let total: number | null = f.size;
    /** Hash, count, write and report every chunk, whatever the source. */
    const copy = async (chunks: AsyncIterable<Uint8Array>) => {
      for await (const chunk of chunks) {
        hash.update(chunk);
        received += chunk.byteLength;
        await write(chunk);
        o.onProgress?.(f.path, received, total);
      }
    };
    try {
      if (/^https?:\/\//.test(from)) {
        let res: Response;
        try {
          res = await fetch(from);
        } catch (e) {
          throw new DownloadError(from, `could not connect (${(e as Error).cause ?? (e as Error).message}); on an offline machine set POCKETLM_MIRROR to a directory holding ${f.path}`);
        }
        if (!res.ok || !res.body) throw new DownloadError(from, `HTTP ${res.status} ${res.statusText}`);
        const len = Number(res.headers.get('content-length'));
        if (total === null && len > 0) total = len;
        try {
          await copy(res.body as unknown as AsyncIterable<Uint8Array>);
        } catch (e) {
          throw new DownloadError(from, `the connection dropped after ${received} bytes (${(e as Error).message}); run the command again to retry`);
        }
        if (len > 0 && received !== len) throw new DownloadError(from, `the connection ended after ${received} of ${len} bytes; run the command again to retry`);
      } else {
        if (!existsSync(from)) throw new DownloadError(from, `not found in the mirror (POCKETLM_MIRROR=${mirror})`);
        await copy(createReadStream(from));
      }
    } finally {
      await new Promise<void>((ok) => out.end(ok));
    }
    if (f.size !== null && received !== f.size) throw new DownloadError(from, `got ${received} bytes, expected ${f.size}`);
    const digest = hash.digest('hex');
    if (f.sha256 === null) o.onWarning?.(`${f.path}: no checksum recorded in the manifest; downloaded file has sha256 ${digest}`);
    else if (digest !== f.sha256) throw new DownloadError(from, `checksum mismatch: sha256 is ${digest}, expected ${f.sha256}; the file was not kept`);
    renameSync(tmp, dest);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export interface Downloaded {
  name: string;
  format: ManifestModel['format'];
  /** The local copy of each of the model's files, by role (a folder model's files share one folder). */
  files: { role: ManifestFile['role']; path: string }[];
}

/** Make sure each of a manifest model's files is in the cache (download, verify) and return their local paths. */
export async function download(name: string, o: PullOptions = {}): Promise<Downloaded> {
  const manifest = loadManifest();
  const model = manifest.models[name];
  if (!model) throw new InvalidInputError(`unknown model "${name}"; known models: ${Object.keys(manifest.models).join(', ')} (or give a path to a .gguf file or a model folder)`);
  const cache = o.cache ?? cacheDir();
  const files: Downloaded['files'] = [];
  for (const f of model.files) {
    const dest = join(cache, f.path);
    if (!(await isValid(dest, f))) await fetchFile(f, dest, o);
    files.push({ role: f.role, path: dest });
  }
  return { name, format: model.format, files };
}

/** A path that exists, or a manifest name. */
export function looksLikePath(s: string): boolean {
  return isAbsolute(s) || s.startsWith('.') || s.includes('/') || s.includes('\\') || /\.(gguf|bin)$/i.test(s);
}
