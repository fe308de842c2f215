// A mutation fuzzer for every file pocketlm reads, through the whole user path: each mutated input is
// loaded, described, tokenized with, run for a few forward steps and generated from. An outcome is
// either success or a typed PocketLMError; anything else (another exception, a WebAssembly trap, a
// process crash, more than TIME_LIMIT_MS for one input, memory growth beyond the input's size plus
// MEMORY_SLACK) is a failure, minimised and kept in test/fixtures/fuzz/.
//
//   npm run fuzz -- [--per-format N] [--seed S] [--formats gguf,llama2c,...] [--json OUT]
//
// Each format runs in a child process watched by this one, so that a crash or a hang is caught and
// the input that caused it rebuilt from (format, seed, index): every input is a deterministic function
// of those three. test/fuzz.test.ts runs a fixed-seed subset of the same generator in `npm test`.

import type { BertConfig } from '../src/arch/bert.js';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PocketLMError } from '../src/base/errors.js';
import { Model } from '../src/engine.js';
import { CpuBackend } from '../src/backend/cpu.js';
import { createWorkerExecutor } from '../src/backend/parallel.js';
import { serialExecutor } from '../src/stages/matmul.js';
import { encodeGGUF } from '../src/format/gguf-writer.js';
import { readHFModel } from '../src/format/hf.js';
import { llama2cToGGUF } from '../src/format/llama2c.js';
import { modelFileFromWriteInput, modelFileToWriteInput, readModelFile } from '../src/format/model-file.js';
import { modelConfig, modelFileFromHF } from '../src/arch/index.js';
import { quantizeModel, QUANTIZE_TARGETS } from '../src/quant/quantize.js';
import { QUANT_FORMATS } from '../src/quant/formats.js';
import { tokenizerFromBytes } from '../src/tokenizer/load.js';
import { family, makeHFFolder, sentencePieceTokenizerJson, truncatedBpe } from './families.js';

/** The most time one input may take, whatever it holds (the seeds are small models). */
export const TIME_LIMIT_MS = 5000;
/** Memory an input may add beyond 4x its own size (for the model's f32 copies and scratch). */
export const MEMORY_SLACK = 256 << 20;

export type Format = 'gguf' | 'quantized-gguf' | 'llama2c' | 'llama2c-tokenizer' | 'tokenizer-json' | 'safetensors' | 'hf-config';
export const FORMATS: Format[] = ['gguf', 'quantized-gguf', 'llama2c', 'llama2c-tokenizer', 'tokenizer-json', 'safetensors', 'hf-config'];

export interface Seed {
  format: Format;
  name: string;
  /** The file that is mutated. */
  bytes: Uint8Array;
  /** Files that come with it unchanged (a llama2.c checkpoint's tokenizer; a folder's other files). */
  companions: Map<string, Uint8Array>;
}

/** A small xorshift generator: every input is a function of (seed, index). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

const ints = [0, 1, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff];

/**
 * One to four mutations: bit flips, random bytes, a little-endian integer field (4 or 8 bytes at an
 * aligned offset) set to 0 / -1 / 2^31 / 2^63 or such, truncation, a range deleted, duplicated or
 * spliced in from elsewhere in the file, or (in JSON) a value replaced by an extreme one.
 */
export function mutate(src: Uint8Array, r: () => number, json = false): Uint8Array {
  let b: Uint8Array = src.slice();
  const at = () => Math.floor(r() * b.length);
  const n = 1 + Math.floor(r() * 4);
  for (let m = 0; m < n && b.length > 0; m++) {
    const kind = Math.floor(r() * (json ? 8 : 7));
    if (kind === 0) { const i = at(); b[i] = b[i]! ^ (1 << Math.floor(r() * 8)); }
    else if (kind === 1) { for (let k = 0, i = at(); k < 1 + r() * 8 && i + k < b.length; k++) b[i + k] = Math.floor(r() * 256); }
    else if (kind === 2) {
      const wide = r() < 0.5;
      const i = Math.floor(at() / (wide ? 8 : 4)) * (wide ? 8 : 4);
      if (i + (wide ? 8 : 4) <= b.length) {
        const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
        const pick = ints[Math.floor(r() * ints.length)]!;
        if (wide) v.setBigUint64(i, r() < 0.3 ? 2n ** 63n : r() < 0.5 ? 2n ** 64n - 1n : BigInt(pick), true);
        else v.setUint32(i, pick, true);
      }
    } else if (kind === 3) b = b.slice(0, at());
    else if (kind === 4) { const i = at(), len = Math.floor(r() * Math.min(4096, b.length - i)); b = concat(b.subarray(0, i), b.subarray(i + len)); }
    else if (kind === 5) { const i = at(), len = Math.floor(r() * Math.min(4096, b.length - i)); b = concat(b.subarray(0, i + len), b.subarray(i, i + len), b.subarray(i + len)); }
    else if (kind === 6) { const i = at(), j = at(), len = Math.floor(r() * Math.min(256, b.length - j)); b = concat(b.subarray(0, i), b.subarray(j, j + len), b.subarray(i)); }
    else {
      // JSON: a number, string or bracket replaced by an extreme value.
      const text = new TextDecoder().decode(b);
      const spots = [...text.matchAll(/-?\d+(\.\d+)?|"[^"\\]{0,40}"|[[\]{}]/g)];
      if (spots.length) {
        const s = spots[Math.floor(r() * spots.length)]!;
        const extreme = ['-1', '1e308', '9007199254740993', '0', 'null', '""', '[]', '{}', '"\ud800"', '4294967296', '-0.0', 'true'][Math.floor(r() * 12)]!;
        b = new TextEncoder().encode(text.slice(0, s.index) + extreme + text.slice(s.index! + s[0].length));
      }
    }
  }
  return b;
}

// --- GGUF, mutated where it matters ---

/** Where a GGUF file's fields are (byte offsets), read from a seed that is known to be well formed. */
interface GGUFLayout {
  kvs: { start: number; end: number; lengthAt?: number }[]; // lengthAt: a string's or array's u64 length
  tensors: { nDimsAt: number; dimsAt: number[]; typeAt: number; offsetAt: number; type: number; offset: bigint; elements: number }[];
  infoEnd: number;
  dataStart: number;
  alignment: number;
}

const SCALAR_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

export function ggufLayout(b: Uint8Array): GGUFLayout {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = 8;
  const u64 = () => { const x = Number(v.getBigUint64(p, true)); p += 8; return x; };
  const nTensors = u64(), nKv = u64();
  const value = (type: number): number | undefined => {
    if (type === 8) { const at = p; p += 8 + Number(v.getBigUint64(at, true)); return at; }
    if (type === 9) { const item = v.getUint32(p, true); p += 4; const at = p; const n = u64(); for (let i = 0; i < n; i++) value(item); return at; }
    p += SCALAR_BYTES[type]!;
    return undefined;
  };
  const kvs: GGUFLayout['kvs'] = [];
  let alignment = 32;
  for (let i = 0; i < nKv; i++) {
    const start = p;
    const keyLength = u64();
    const key = new TextDecoder().decode(b.subarray(p, p + keyLength));
    p += keyLength;
    const type = v.getUint32(p, true);
    p += 4;
    if (key === 'general.alignment') alignment = v.getUint32(p, true);
    const lengthAt = value(type);
    kvs.push({ start, end: p, lengthAt });
  }
  const tensors: GGUFLayout['tensors'] = [];
  for (let i = 0; i < nTensors; i++) {
    p += 8 + Number(v.getBigUint64(p, true));
    const nDimsAt = p;
    const nDims = v.getUint32(p, true);
    p += 4;
    const dimsAt = Array.from({ length: nDims }, (_, d) => p + 8 * d);
    const elements = dimsAt.reduce((n, at) => n * Number(v.getBigUint64(at, true)), 1);
    p += 8 * nDims;
    const typeAt = p, type = v.getUint32(p, true);
    p += 4;
    tensors.push({ nDimsAt, dimsAt, typeAt, offsetAt: p, type, offset: v.getBigUint64(p, true), elements });
    p += 8;
  }
  return { kvs, tensors, infoEnd: p, dataStart: Math.ceil(p / alignment) * alignment, alignment };
}

/**
 * One to three mutations of a GGUF file's structure, the ones crafted files use: a metadata key
 * duplicated (data kept aligned), tensors overlapping or unaligned, dims whose product overflows,
 * absurd dims counts and types, string and array lengths beyond the file, tensor and key counts off,
 * and NaN or infinity written into weights or into a quantized block's f16 scale.
 */
export function mutateGGUF(src: Uint8Array, layout: GGUFLayout, r: () => number): Uint8Array {
  let b: Uint8Array = src.slice();
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const big = [0n, 1n, 2n ** 31n, 2n ** 32n, 2n ** 32n + 1n, 2n ** 62n, 2n ** 63n, 2n ** 64n - 1n];
  let shift = 0; // bytes inserted before the tensor infos (a duplicated key)
  let dataShift = 0; // and how far the data moved with them (realigned)
  for (let m = 0, n = 1 + Math.floor(r() * 3); m < n; m++) {
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const t = layout.tensors.length ? pick(layout.tensors) : undefined;
    const op = Math.floor(r() * 9);
    if (op === 0 && layout.kvs.length && shift === 0) {
      // The copy goes right after the original; the data is realigned after the longer header, so
      // every tensor's offset still points at its own bytes and only the duplicate is wrong.
      const kv = pick(layout.kvs);
      shift = kv.end - kv.start;
      const a = layout.alignment;
      const dataStart = Math.ceil((layout.infoEnd + shift) / a) * a;
      dataShift = dataStart - layout.dataStart;
      b = concat(b.subarray(0, kv.end), b.subarray(kv.start, kv.end), b.subarray(kv.end, layout.infoEnd), new Uint8Array(dataStart - layout.infoEnd - shift), b.subarray(layout.dataStart));
      new DataView(b.buffer).setBigUint64(16, BigInt(layout.kvs.length + 1), true);
    } else if (op === 1 && t) v.setBigUint64(t.offsetAt + shift, pick(layout.tensors).offset, true); // overlap another tensor
    else if (op === 2 && t) v.setBigUint64(t.offsetAt + shift, t.offset + BigInt(1 + Math.floor(r() * 31)), true); // unaligned
    else if (op === 3 && t && t.dimsAt.length) for (const at of t.dimsAt) v.setBigUint64(at + shift, pick(big), true); // the product overflows
    else if (op === 4 && t) v.setUint32(t.nDimsAt + shift, pick([0, 5, 255, 2 ** 31, 2 ** 32 - 1]), true);
    else if (op === 5 && t) v.setUint32(t.typeAt + shift, pick([4, 5, 31, 39, 255, 2 ** 31, ...Object.keys(QUANT_FORMATS).map(Number)]), true);
    else if (op === 6 && shift === 0) {
      const withLength = layout.kvs.filter((k) => k.lengthAt !== undefined);
      if (withLength.length) v.setBigUint64(pick(withLength).lengthAt!, pick([BigInt(b.length), ...big]), true);
    } else if (op === 7) v.setBigUint64(pick([8, 16]), pick([...big, BigInt(layout.tensors.length + 1), BigInt(Math.max(0, layout.kvs.length - 1))]), true);
    else if (t) {
      // NaN or infinity into a tensor's data: an f32 or f16 value, or a quantized block's scale.
      const at = layout.dataStart + dataShift + Number(t.offset);
      const f = QUANT_FORMATS[t.type as keyof typeof QUANT_FORMATS];
      const bad = pick(['nan', 'inf', '-inf'] as const);
      const half = bad === 'nan' ? 0x7e00 : bad === 'inf' ? 0x7c00 : 0xfc00;
      if (t.type === 0) { const i = at + 4 * Math.floor(r() * t.elements); if (i + 4 <= b.length) v.setFloat32(i, bad === 'nan' ? NaN : bad === 'inf' ? Infinity : -Infinity, true); }
      else if (t.type === 1) { const i = at + 2 * Math.floor(r() * t.elements); if (i + 2 <= b.length) v.setUint16(i, half, true); }
      else if (f) { const i = at + f.blockBytes * Math.floor((r() * t.elements) / f.blockSize) + pick(f.scaleOffsets); if (i + 2 <= b.length) v.setUint16(i, half, true); }
    }
  }
  return b;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
const EXTREMES: Json[] = [-1, 0, 1.5, 1e308, -1e308, 9007199254740993, 4294967296, 2147483648, null, true, '', '\ud800', 'x'.repeat(65536), [], {}, [[[[[[]]]]]]];

/**
 * One to four mutations of a JSON document's structure (so that most inputs get past JSON.parse and
 * reach the code that reads them): walk from the root into random children, then replace the value
 * found by an extreme one, delete it, duplicate it (arrays), wrap it in an array, or turn it into
 * another type. A document that does not parse gets byte-level mutations instead.
 */
export function mutateJson(src: Uint8Array, r: () => number): Uint8Array {
  let root: Json;
  try { root = JSON.parse(new TextDecoder().decode(src)) as Json; } catch { return mutate(src, r, true); }
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  for (let m = 0, n = 1 + Math.floor(r() * 4); m < n; m++) {
    let parent: Json[] | { [key: string]: Json } | undefined;
    let key: string | number = '';
    let node = root;
    while (node !== null && typeof node === 'object' && (parent === undefined || r() > 1 / 3)) {
      const keys: (string | number)[] = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
      if (keys.length === 0) break;
      parent = node;
      key = pick(keys);
      node = (node as Record<string | number, Json>)[key]!;
    }
    if (!parent) continue;
    const at = parent as Record<string | number, Json>;
    const op = Math.floor(r() * 5);
    if (op === 0) at[key] = structuredClone(pick(EXTREMES));
    else if (op === 1) { if (Array.isArray(parent)) parent.splice(key as number, 1); else delete at[key]; }
    else if (op === 2 && Array.isArray(parent)) parent.splice(key as number, 0, structuredClone(node));
    else if (op === 3) at[key] = [node];
    else at[key] = typeof node === 'string' ? Number(node) || node.length : typeof node === 'number' ? String(node) : JSON.stringify(node);
  }
  return new TextEncoder().encode(JSON.stringify(root));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** The seeds: real and converted files of every format pocketlm reads. `small`: only the fast ones (npm test). */
export function makeSeeds(shared: string, work: string, small = false): Seed[] {
  const read = (...p: string[]) => new Uint8Array(readFileSync(join(shared, ...p)));
  const stories = read('weights', 'stories260K', 'stories260K.bin');
  const storiesTok = read('weights', 'stories260K', 'tok512.bin');
  const storiesGGUF = modelFileFromWriteInput(llama2cToGGUF(stories, 'stories260K.bin', storiesTok, 'tok512.bin', 'stories260K'), 'stories260K', 'llama2c');
  const none = new Map<string, Uint8Array>();
  const seeds: Seed[] = [
    { format: 'gguf', name: 'stories260K (converted, F32)', bytes: encodeGGUF(modelFileToWriteInput(storiesGGUF)), companions: none },
    { format: 'gguf', name: 'llama-2-tiny-random (real file, F16)', bytes: read('weights', 'llama-2-tiny-random', 'llama-2-tiny-random.gguf'), companions: none },
    { format: 'llama2c', name: 'stories260K.bin', bytes: stories, companions: new Map([['tokenizer', storiesTok]]) },
    { format: 'llama2c-tokenizer', name: 'tok512.bin', bytes: storiesTok, companions: none },
  ];
  for (const type of small ? (['q8_0', 'q4_k_m'] as const) : QUANTIZE_TARGETS)
    seeds.push({ format: 'quantized-gguf', name: `stories260K ${type}`, bytes: encodeGGUF(quantizeModel(storiesGGUF, type).input), companions: none });
  if (!small) for (const v of ['llama-spm', 'gpt-2', 'bert-bge', 'deepseek-coder']) seeds.push({ format: 'gguf', name: `ggml-vocab-${v}.gguf (vocabulary only)`, bytes: read('vocab', `ggml-vocab-${v}.gguf`), companions: none });
  // The three kinds of tokenizer.json, cut to their first ids so that an input takes milliseconds, not
  // the ~100 ms a whole 49,152-token file takes to parse and build.
  const json = (x: unknown) => new TextEncoder().encode(JSON.stringify(x));
  const bpeIds = small ? 600 : 8000;
  seeds.push({ format: 'tokenizer-json', name: `SmolLM2 tokenizer.json (byte-level BPE, ${bpeIds} ids)`, bytes: json(truncatedBpe(shared, bpeIds)), companions: none });
  if (!small) {
    const wp = JSON.parse(new TextDecoder().decode(read('tokenizers', 'all-MiniLM-L6-v2', 'tokenizer.json')));
    wp.model.vocab = Object.fromEntries(Object.entries<number>(wp.model.vocab).filter(([, id]) => id < 6000));
    seeds.push({ format: 'tokenizer-json', name: 'all-MiniLM-L6-v2 tokenizer.json (WordPiece, 6000 ids)', bytes: json(wp), companions: none });
    seeds.push({ format: 'tokenizer-json', name: 'Llama 2 as tokenizer.json (SentencePiece BPE, 3000 ids)', bytes: json(sentencePieceTokenizerJson(shared, 3000, false)), companions: none });
  }
  for (const id of small ? ['qwen3'] : ['qwen3', 'gemma2', 'gpt2', 'opt-350m']) {
    const dir = join(work, `fuzz-${id}`);
    if (!existsSync(join(dir, 'model.safetensors'))) makeHFFolder(family(id), dir, shared, { vocab: 600, config: { num_hidden_layers: 1, n_layer: 1, hidden_size: 64, n_embd: 64, intermediate_size: 128, ffn_dim: 128, num_attention_heads: 2, n_head: 2, num_key_value_heads: 1, head_dim: 32, word_embed_proj_dim: 32, query_pre_attn_scalar: 32 } });
    const files = new Map(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt'].filter((f) => existsSync(join(dir, f))).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))] as const));
    const rest = (drop: string) => new Map([...files].filter(([f]) => f !== drop));
    seeds.push({ format: 'safetensors', name: `${id} model.safetensors`, bytes: files.get('model.safetensors')!, companions: rest('model.safetensors') });
    seeds.push({ format: 'hf-config', name: `${id} config.json`, bytes: files.get('config.json')!, companions: rest('config.json') });
  }
  // Encoders (BERT with mean pooling, ALBERT with a masked-LM head, MobileBERT with a classifier), 64 positions.
  for (const id of small ? ['minilm'] : ['minilm', 'albert-mlm', 'mobilebert-cls']) {
    const dir = join(work, `fuzz-${id}`);
    if (!existsSync(join(dir, 'model.safetensors'))) makeHFFolder(family(id), dir, shared, { vocab: 600, config: { max_position_embeddings: 64 } });
    const files = new Map(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', '1_Pooling/config.json'].filter((f) => existsSync(join(dir, f))).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))] as const));
    const rest = (drop: string) => new Map([...files].filter(([f]) => f !== drop));
    seeds.push({ format: 'safetensors', name: `${id} model.safetensors`, bytes: files.get('model.safetensors')!, companions: rest('model.safetensors') });
    seeds.push({ format: 'hf-config', name: `${id} config.json`, bytes: files.get('config.json')!, companions: rest('config.json') });
    // The GGUF pocketlm converts it to (llama.cpp's bert names for MiniLM; pocketlm's for the others).
    if (!small) seeds.push({ format: 'gguf', name: `${id} (converted to GGUF)`, bytes: encodeGGUF(modelFileToWriteInput(modelFileFromHF(readHFModel(files, dir)))), companions: none });
  }
  return seeds;
}

export type Outcome = { kind: 'ok' } | { kind: 'error'; type: string } | { kind: 'failure'; error: string };

const TEXTS = ['Hello world, 123 \u00e9t\u00e9 \ud83e\udd99', '', '<s>\u2581x</s>'];

/** The whole user path for one input; never throws. */
export async function exercise(format: Format, bytes: Uint8Array, companions: Map<string, Uint8Array>): Promise<Outcome> {
  let backend: CpuBackend | undefined;
  try {
    if (format === 'llama2c-tokenizer' || format === 'tokenizer-json') {
      const tok = tokenizerFromBytes(bytes, 'fuzz');
      for (const t of TEXTS) tok.decode(tok.encode(t, { parseSpecial: true }));
      return { kind: 'ok' };
    }
    let file;
    if (format === 'safetensors' || format === 'hf-config') {
      const files = new Map(companions);
      files.set(format === 'safetensors' ? 'model.safetensors' : 'config.json', bytes);
      file = modelFileFromHF(readHFModel(files, 'fuzz'));
    } else {
      const tokenizer = companions.get('tokenizer');
      file = readModelFile(bytes, 'fuzz', tokenizer && { bytes: tokenizer, source: 'fuzz-tokenizer' });
    }
    modelConfig(file); // what pocketlm info shows
    // The JavaScript kernels, then the WebAssembly ones the CLI runs (where a trap would show).
    for (const exec of [() => serialExecutor, () => createWorkerExecutor(1)]) {
      backend = new CpuBackend(await exec());
      const model = new Model(file, backend as never);
      for (const t of TEXTS) model.decode(model.encode(t));
      if (model.isEncoder) {
        // An encoder's jobs: embeddings of texts batched together, its classifier, its masked-LM head.
        await model.embed(TEXTS);
        const c = model.config as BertConfig;
        if (c.labels) await model.classify(TEXTS);
        if (c.hasMlmHead) await model.fillMask('a [MASK] b');
        backend.dispose();
        backend = undefined;
        continue;
      }
      const ids = [model.tokenizer.bosId, 5 % model.config.vocabSize, 7 % model.config.vocabSize];
      await model.logits(ids);
      await model.generate('Hi', { maxTokens: 3, temperature: 0.7, seed: 1, contextLength: 16 }).text();
      backend.dispose();
      backend = undefined;
    }
    return { kind: 'ok' };
  } catch (e) {
    if (e instanceof PocketLMError) return { kind: 'error', type: e.name };
    return { kind: 'failure', error: `${(e as Error)?.name}: ${(e as Error)?.message ?? String(e)}`.slice(0, 300) };
  } finally {
    backend?.dispose();
  }
}

const layouts = new WeakMap<Uint8Array, GGUFLayout>();

/** Input `index` of `seed` (a deterministic function of the three). */
export function input(seed: Seed, fuzzSeed: number, index: number): Uint8Array {
  const r = rng((fuzzSeed * 1000003 + index * 7919 + seed.name.length) >>> 0);
  // JSON: mostly structural mutations (past the parser, into the reader), some byte-level ones.
  if (seed.format === 'tokenizer-json' || seed.format === 'hf-config') return r() < 0.8 ? mutateJson(seed.bytes, r) : mutate(seed.bytes, r, true);
  // GGUF: half of them at the fields crafted files go for, half anywhere.
  if (seed.format === 'gguf' || seed.format === 'quantized-gguf') {
    let layout = layouts.get(seed.bytes);
    if (!layout) layouts.set(seed.bytes, (layout = ggufLayout(seed.bytes)));
    if (r() < 0.5) return mutateGGUF(seed.bytes, layout, r);
  }
  return mutate(seed.bytes, r);
}

// --- the driver: a child per format, watched ---

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHARED = resolve(process.env.POCKETLM_SHARED ?? join(ROOT, '..', 'shared'));
const WORK = join(ROOT, 'bench', 'models');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'fuzz');

interface Report { format: Format; inputs: number; ok: number; errors: Record<string, number>; failures: { seed: string; index: number; why: string; fixture: string }[]; slowestMs: number; slowest: string; peakRssMB: number; seconds: number }

/** In the child: run inputs [start, perFormat) of `format`'s seeds in turn, reporting each outcome on stdout. */
async function child(format: Format, fuzzSeed: number, perFormat: number, start: number): Promise<void> {
  const seeds = makeSeeds(SHARED, WORK).filter((s) => s.format === format);
  for (let i = start; i < perFormat; i++) {
    const seed = seeds[i % seeds.length]!;
    const bytes = input(seed, fuzzSeed, i);
    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    const outcome = await exercise(format, bytes, seed.companions);
    const ms = performance.now() - t0;
    const grew = process.memoryUsage().rss - rss0;
    const over = ms > TIME_LIMIT_MS ? `took ${ms.toFixed(0)} ms` : grew > 4 * bytes.length + MEMORY_SLACK ? `grew memory by ${(grew / 1e6).toFixed(0)} MB` : undefined;
    process.stdout.write(JSON.stringify({ i, seed: seed.name, outcome: over ? { kind: 'failure', error: over } : outcome, ms, rss: process.memoryUsage().rss }) + '\n');
  }
}

/** Shrink a failing input: cut its end, then zero-free ranges, while it still fails the same way. */
async function minimise(format: Format, bytes: Uint8Array, companions: Map<string, Uint8Array>, why: string): Promise<Uint8Array> {
  const same = async (b: Uint8Array) => { const o = await exercise(format, b, companions); return o.kind === 'failure' && o.error.split(':')[0] === why.split(':')[0]; };
  let best = bytes;
  for (let cut = Math.floor(best.length / 2); cut >= 1; cut = Math.floor(cut / 2)) {
    while (best.length > cut && (await same(best.subarray(0, best.length - cut)))) best = best.slice(0, best.length - cut);
  }
  return best;
}

async function driver(): Promise<void> {
  const { values } = parseArgs({ options: { 'per-format': { type: 'string', default: '100000' }, seed: { type: 'string', default: '1' }, formats: { type: 'string' }, json: { type: 'string' }, child: { type: 'string' } } });
  const perFormat = Number(values['per-format']);
  const fuzzSeed = Number(values.seed);
  // A child starts where its parent says (after a crash or a hang, past the input that caused it).
  if (values.child) return child(values.child as Format, fuzzSeed, perFormat, Number(process.env.FUZZ_START ?? 0));
  const formats = values.formats ? (values.formats.split(',') as Format[]) : FORMATS;
  makeSeeds(SHARED, WORK); // make the folders once, outside the children
  const reports: Report[] = [];
  for (const format of formats) {
    const t0 = performance.now();
    const report: Report = { format, inputs: 0, ok: 0, errors: {}, failures: [], slowestMs: 0, slowest: '', peakRssMB: 0, seconds: 0 };
    let next = 0;
    // Restart the child after a crash or a hang, past the input that caused it.
    while (next < perFormat) {
      const failedAt = await new Promise<{ index: number; why: string } | undefined>((done) => {
        const c = spawn(process.execPath, ['--max-old-space-size=2048', fileURLToPath(import.meta.url), '--child', format, '--seed', String(fuzzSeed), '--per-format', String(perFormat)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FUZZ_START: String(next) } });
        let buffer = '';
        let last = Date.now();
        const watch = setInterval(() => { if (Date.now() - last > 4 * TIME_LIMIT_MS) { c.kill('SIGKILL'); } }, 1000);
        c.stdout.on('data', (d: Buffer) => {
          buffer += d.toString();
          let nl;
          while ((nl = buffer.indexOf('\n')) >= 0) {
            const line = JSON.parse(buffer.slice(0, nl)) as { i: number; seed: string; outcome: Outcome; ms: number; rss: number };
            buffer = buffer.slice(nl + 1);
            last = Date.now();
            next = line.i + 1;
            report.inputs++;
            if (line.outcome.kind === 'ok') report.ok++;
            else if (line.outcome.kind === 'error') report.errors[line.outcome.type] = (report.errors[line.outcome.type] ?? 0) + 1;
            else report.failures.push({ seed: line.seed, index: line.i, why: line.outcome.error, fixture: '' });
            if (line.ms > report.slowestMs) { report.slowestMs = line.ms; report.slowest = `${line.seed} #${line.i}`; }
            report.peakRssMB = Math.max(report.peakRssMB, line.rss / 1e6);
            if (report.inputs % 5000 === 0) process.stderr.write(`${format}: ${report.inputs} inputs, ${report.failures.length} failures\n`);
          }
        });
        c.stderr.on('data', () => {});
        c.on('close', (code, signal) => { clearInterval(watch); done(next < perFormat ? { index: next, why: signal ? `killed (${signal}): a hang` : `the process exited with ${code}` } : undefined); });
      });
      if (failedAt) {
        report.failures.push({ seed: '', index: failedAt.index, why: failedAt.why, fixture: '' });
        report.inputs++;
        next = failedAt.index + 1;
      }
    }
    // Keep each failure, minimised, as a fixture (test/fuzz.test.ts replays them all).
    const seeds = makeSeeds(SHARED, WORK).filter((s) => s.format === format);
    for (const f of report.failures.slice(0, 20)) {
      const seed = seeds[f.index % seeds.length]!;
      // A crash or a hang would take this process down too: those inputs are kept as they are.
      const inProcess = !/^killed|^the process exited/.test(f.why);
      const bytes = inProcess ? await minimise(format, input(seed, fuzzSeed, f.index), seed.companions, f.why) : input(seed, fuzzSeed, f.index);
      const name = `${format}-${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}`;
      mkdirSync(FIXTURES, { recursive: true });
      writeFileSync(join(FIXTURES, `${name}.bin`), bytes);
      writeFileSync(join(FIXTURES, `${name}.json`), JSON.stringify({ format, seed: seed.name, index: f.index, fuzzSeed, why: f.why }, null, 1) + '\n');
      f.fixture = name;
    }
    report.seconds = (performance.now() - t0) / 1000;
    reports.push(report);
    console.log(`${format}: ${report.inputs} inputs in ${report.seconds.toFixed(0)} s; ok ${report.ok}; typed errors ${JSON.stringify(report.errors)}; failures ${report.failures.length}; slowest ${report.slowestMs.toFixed(0)} ms (${report.slowest}); peak RSS ${report.peakRssMB.toFixed(0)} MB`);
  }
  if (values.json) writeFileSync(values.json, JSON.stringify({ date: new Date().toISOString(), fuzzSeed, perFormat, reports }, null, 2));
}

if (process.argv[1]?.endsWith('fuzz.js')) await driver();
