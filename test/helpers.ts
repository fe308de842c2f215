// Shared test helpers: where the reference data lives, and float64 reference implementations.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** ../shared (or $POCKETLM_SHARED): read-only reference data, see ../shared/README.md. */
export const SHARED = resolve(process.env.POCKETLM_SHARED ?? join(ROOT, '..', 'shared'));
export const hasShared = existsSync(join(SHARED, 'weights', 'stories260K', 'stories260K.bin'));

if (!hasShared) {
  const msg = `reference data not found at ${SHARED} (set POCKETLM_SHARED): tests that need it are skipped`;
  // In CI the data must be there: fail loudly rather than pass by skipping.
  if (process.env.CI) throw new Error(msg);
  console.warn(msg);
}

export const sharedPath = (...p: string[]) => join(SHARED, ...p);
export const readShared = (...p: string[]) => new Uint8Array(readFileSync(sharedPath(...p)));

export const STORIES_BIN = sharedPath('weights', 'stories260K', 'stories260K.bin');
export const STORIES_TOK = sharedPath('weights', 'stories260K', 'tok512.bin');
export const TINY_GGUF = sharedPath('weights', 'llama-2-tiny-random', 'llama-2-tiny-random.gguf');

export interface GreedyReference {
  generated_ids: number[];
  text: string;
  logits_first16_at_pos0_1_2: number[][];
}
export const storiesReference = (): GreedyReference => JSON.parse(readFileSync(sharedPath('weights', 'stories260K', 'reference-greedy.json'), 'utf8'));

/** n token ids (default 40): 1 (BOS in most vocabularies), then a fixed pseudo-random walk over ids 3 .. vocab - 1. */
export function sequence(vocab: number, n = 40): number[] {
  let s = 11;
  return [1, ...Array.from({ length: n - 1 }, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % (vocab - 3)) + 3)];
}

/** Float32 array from doubles (what the engine's f32 buffers hold). */
export const f32 = (xs: number[]) => Float32Array.from(xs);

/**
 * f32-representable finite floats in [-range, range], for fast-check: four in five uniform over the
 * range (on a grid of 2^-22 of it), one in five from fc.float, which draws evenly over the float
 * encodings, so mostly numbers near zero and the range's ends. fc.float alone makes vectors of a few
 * +-range entries among near-zeros, whose products hardly depend on which elements meet which: a
 * kernel pairing the wrong lanes of q and k passed the attention property that way.
 */
export const smallFloat = (fc: typeof import('fast-check'), range = 4) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: -(2 ** 22), max: 2 ** 22 }).map((i) => Math.fround((i / 2 ** 22) * range)) },
    { weight: 1, arbitrary: fc.float({ min: Math.fround(-range), max: Math.fround(range), noNaN: true, noDefaultInfinity: true }) },
  );

// --- a small synthetic llama GGUF, built in memory ------------------------------------------------
import { gguf, type GGUFWriteInput } from '../src/format/gguf-writer.js';
import { GGMLType, f32ToF16 } from '../src/base/tensor.js';
import { TokenType, vocabMetadata } from '../src/format/vocab.js';

export interface TinySpec { dim?: number; layers?: number; heads?: number; kvHeads?: number; ffn?: number; ctx?: number; f16?: boolean; tied?: boolean; arch?: string; chat?: boolean }

/** The ChatML template, as chat models using <|im_start|> / <|im_end|> ship it. */
export const CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** A random-weight llama model with a byte-level SentencePiece vocab (<unk>, <s>, </s>, 256 bytes, a few words). */
export function tinyLlama(s: TinySpec = {}): GGUFWriteInput {
  const { dim = 8, layers = 1, heads = 2, kvHeads = 1, ffn = 12, ctx = 32, f16 = false, tied = true, arch = 'llama', chat = false } = s;
  const tokens = ['<unk>', '<s>', '</s>', ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`), '\u2581', '\u2581a', 'b', '\u2581the', ...(chat ? ['<|im_start|>', '<|im_end|>'] : [])];
  const types = tokens.map((t, i) => (i === 0 ? TokenType.UNKNOWN : i < 3 || t.startsWith('<|') ? TokenType.CONTROL : t.startsWith('<0x') ? TokenType.BYTE : TokenType.NORMAL));
  const vocab = { model: 'llama' as const, tokens, scores: tokens.map((_, i) => -i), types, bosId: 1, eosId: 2, unkId: 0, addBos: true, addEos: false, addSpacePrefix: true };
  const V = tokens.length;
  const hd = dim / heads;
  let seed = 1;
  const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 0.5;
  const tensor = (name: string, shape: number[]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    if (f16 && shape.length === 2) {
      const h = new Uint16Array(n).map(() => f32ToF16(rand()));
      return { name, shape, type: GGMLType.F16, data: new Uint8Array(h.buffer) };
    }
    const f = new Float32Array(n).map(() => (shape.length === 1 ? 1 + rand() : rand()));
    return { name, shape, type: GGMLType.F32, data: new Uint8Array(f.buffer) };
  };
  const tensors = [tensor('token_embd.weight', [dim, V])];
  for (let l = 0; l < layers; l++)
    tensors.push(
      tensor(`blk.${l}.attn_norm.weight`, [dim]), tensor(`blk.${l}.attn_q.weight`, [dim, dim]), tensor(`blk.${l}.attn_k.weight`, [dim, hd * kvHeads]),
      tensor(`blk.${l}.attn_v.weight`, [dim, hd * kvHeads]), tensor(`blk.${l}.attn_output.weight`, [dim, dim]), tensor(`blk.${l}.ffn_norm.weight`, [dim]),
      tensor(`blk.${l}.ffn_gate.weight`, [dim, ffn]), tensor(`blk.${l}.ffn_down.weight`, [ffn, dim]), tensor(`blk.${l}.ffn_up.weight`, [dim, ffn]),
    );
  tensors.push(tensor('output_norm.weight', [dim]));
  if (!tied) tensors.push(tensor('output.weight', [dim, V]));
  const metadata = new Map([
    ['general.architecture', gguf.str(arch)],
    ['general.name', gguf.str('tiny')],
    [`${arch}.context_length`, gguf.u32(ctx)],
    [`${arch}.embedding_length`, gguf.u32(dim)],
    [`${arch}.block_count`, gguf.u32(layers)],
    [`${arch}.feed_forward_length`, gguf.u32(ffn)],
    [`${arch}.attention.head_count`, gguf.u32(heads)],
    [`${arch}.attention.head_count_kv`, gguf.u32(kvHeads)],
    [`${arch}.attention.layer_norm_rms_epsilon`, gguf.f32(1e-5)],
    [`${arch}.rope.freq_base`, gguf.f32(10000)],
    ...vocabMetadata(vocab),
    ...(chat ? [['tokenizer.chat_template', gguf.str(CHATML)] as [string, ReturnType<typeof gguf.str>]] : []),
  ]);
  return { metadata, tensors };
}

/** The largest |got - ref| / (1 + |ref|) (logits, embeddings): an error judged against each value's size. */
export function worstElement(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (got.length !== ref.length) throw new Error(`worstElement: ${got.length} values against ${ref.length}`);
  let w = 0;
  for (let i = 0; i < ref.length; i++) w = Math.max(w, Math.abs(got[i]! - ref[i]!) / (1 + Math.abs(ref[i]!)));
  return w;
}

/**
 * The largest |got - ref| / (1 + rms of ref's row) over rows of `width` (hidden states, residual streams):
 * an error judged against the size of the numbers it came from.
 */
export function worstRows(got: ArrayLike<number>, ref: readonly ArrayLike<number>[], width = ref[0]!.length): number {
  let w = 0;
  ref.forEach((row, t) => {
    let ss = 0;
    for (let i = 0; i < width; i++) ss += row[i]! ** 2;
    const scale = 1 + Math.sqrt(ss / width);
    for (let i = 0; i < width; i++) w = Math.max(w, Math.abs(got[t * width + i]! - row[i]!) / scale);
  });
  return w;
}

/** Whether a WebGPU adapter can be had (lavapipe here and in CI, where its absence is a failure). */
export async function hasWebGPU(): Promise<boolean> {
  return import('../src/backend/webgpu.js').then((w) => w.createWebGPUBackend()).then((b) => (b.dispose(), true), (e: Error) => {
    if (process.env.CI) throw new Error(`no WebGPU adapter in CI: ${e.message}`);
    return false;
  });
}
