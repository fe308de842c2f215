// Node-only file access, imported lazily so the engine also runs in browsers.

import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, renameSync, rmSync, statSync, writeSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { InvalidInputError } from '../base/errors.js';
import { modelFileFromHF } from '../arch/index.js';
import { hfFilesWanted, isHFFolder, POOLING_CONFIG, readHFModel } from '../format/hf.js';
import { modelFileToWriteInput, readModelFile, type ModelFile } from '../format/model-file.js';
import { serializeGGUF, type GGUFWriteInput } from '../format/gguf-writer.js';
import { llama2cToGGUF } from '../format/llama2c.js';
import { cacheDir, download, looksLikePath, type PullOptions } from '../../weights/fetcher.js';

/** A model file's size (a folder's: the files a model is read from); an InvalidInputError naming it when there is no such path. */
export function modelSize(path: string): number {
  if (!existsSync(path)) throw new InvalidInputError(`${path}: no such file`);
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return hfFilesWanted(readdirSync(path)).reduce((n, f) => n + statSync(join(path, f)).size, 0);
}

/** Step 2 for a path: a GGUF or llama2.c file, or a Hugging Face folder (its safetensors read into `alloc`'s memory). */
export async function readModelPath(path: string, alloc: (n: number) => Uint8Array, tokenizer?: { bytes: Uint8Array; source: string }, onRead?: (bytes: number) => void): Promise<ModelFile> {
  if (!statSync(path).isDirectory()) {
    const { bytes, source } = await readFileForModel(path, alloc, onRead);
    return readModelFile(bytes, source, tokenizer);
  }
  const names = readdirSync(path);
  if (existsSync(join(path, POOLING_CONFIG))) names.push(POOLING_CONFIG);
  if (!isHFFolder(names))
    throw new InvalidInputError(`${path} is a folder without a Hugging Face model (config.json with model.safetensors or model.safetensors.index.json); give a model file or such a folder`);
  const files = new Map<string, Uint8Array>();
  for (const f of hfFilesWanted(names)) files.set(f, readFileShared(join(path, f), f.endsWith('.safetensors') ? alloc : (n) => new Uint8Array(n), onRead));
  return modelFileFromHF(readHFModel(files, path));
}

/**
 * Read a whole file once, into memory from `alloc` (by default shared memory) so its tensors can be
 * used in place; `onRead` hears of every 64 MB read (for a progress line).
 */
export function readFileShared(path: string, alloc: (n: number) => Uint8Array = (n) => new Uint8Array(new SharedArrayBuffer(n)), onRead?: (bytes: number) => void): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const bytes = alloc(size);
    for (let off = 0; off < size; ) {
      const n = readSync(fd, bytes, off, Math.min(size - off, 1 << 26), off);
      if (n <= 0) throw new InvalidInputError(`${path}: the file shrank while it was read`);
      off += n;
      onRead?.(n);
    }
    return bytes;
  } finally {
    closeSync(fd);
  }
}

export async function readFileForModel(src: string | URL, alloc?: (n: number) => Uint8Array, onRead?: (bytes: number) => void): Promise<{ bytes: Uint8Array; source: string }> {
  const path = src instanceof URL ? src.pathname : resolve(src);
  const name = String(src instanceof URL ? src.pathname : src);
  if (!existsSync(path)) throw new InvalidInputError(`${name}: no such file`);
  return { bytes: readFileShared(path, alloc, onRead), source: name };
}

export interface PulledModel {
  name: string;
  /** What to load: a GGUF file (a llama2.c pair is converted to one, once), or a model folder. */
  path: string;
}

/** Make sure a manifest model is in the cache (download, verify, convert a llama2.c pair once) and return what to load. */
export async function pull(name: string, o: PullOptions = {}): Promise<PulledModel> {
  const got = await download(name, o);
  const file = (role: string) => got.files.find((f) => f.role === role)!.path;
  if (got.format === 'gguf') return { name, path: file('model') };
  if (got.format === 'hf') return { name, path: dirname(file('model')) };
  const gguf = join(o.cache ?? cacheDir(), name, `${name}.gguf`);
  if (!existsSync(gguf)) await convertLlama2c(file('model'), file('tokenizer'), gguf, name);
  return { name, path: gguf };
}

/** A path stays a path; a manifest name is pulled into the cache first. */
export async function resolveModelName(source: string, o: PullOptions = {}): Promise<string> {
  if (existsSync(source) || looksLikePath(source)) return source;
  return (await pull(source, o)).path;
}

/** Write a GGUF file atomically (temporary file, then rename). */
export function writeGGUFFile(path: string, input: GGUFWriteInput): void {
  mkdirSync(dirname(resolve(path)), { recursive: true });
  const tmp = `${path}.part-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    for (const chunk of serializeGGUF(input)) for (let off = 0; off < chunk.byteLength; ) off += writeSync(fd, chunk, off);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try { closeSync(fd); } catch { /* already closed */ }
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** llama2.c checkpoint + tokenizer -> GGUF file. */
export async function convertLlama2c(modelPath: string, tokenizerPath: string, outPath: string, name?: string): Promise<void> {
  const model = readFileShared(modelPath);
  const tok = readFileShared(tokenizerPath);
  writeGGUFFile(outPath, llama2cToGGUF(model, modelPath, tok, tokenizerPath, name ?? modelPath.split(/[\\/]/).pop()!.replace(/\.bin$/, '')));
}

/** A Hugging Face folder -> a GGUF file (the GGUF form the architecture reads; llama.cpp runs it for the families it knows). */
export async function convertFolder(folder: string, outPath: string): Promise<ModelFile> {
  const file = await readModelPath(folder, (n) => new Uint8Array(n));
  writeGGUFFile(outPath, modelFileToWriteInput(file));
  return file;
}
