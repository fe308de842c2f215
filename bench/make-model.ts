// Generate a random-weight GGUF with a real model's shape, for speed measurements (speed does not
// depend on weight values). Default: SmolLM2-135M's shape with the Llama 2 32000-token vocabulary;
// --tokenizer puts a Hugging Face tokenizer.json in instead (the vocabulary's size sets the embedding's),
// e.g. SmolLM2's own byte-level BPE from ../shared, for memory figures of the file a real model carries.
//
//   node dist/bench/make-model.js [--out PATH] [--type f32|f16] [--tokenizer tokenizer.json]

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseGGUF, type GGUFValue } from '../src/format/gguf.js';
import type { GGUFWriteTensor } from '../src/format/gguf-writer.js';
import { llamaMetadata } from '../src/format/llama2c.js';
import { writeGGUFFile } from '../src/load/node-io.js';
import { GGMLType, f32ToF16 } from '../src/base/tensor.js';
import { readModelFile } from '../src/format/model-file.js';
import { quantizeModel, type QuantizeTarget } from '../src/quant/quantize.js';
import { loadTokenizer } from '../src/tokenizer/load.js';
import { vocabMetadata } from '../src/format/vocab.js';

export interface Shape {
  name: string;
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  vocab: number;
  ctx: number;
  ropeTheta: number;
}

export const SMOLLM2_135M: Shape = { name: 'smollm2-135m-shape', dim: 576, layers: 30, heads: 9, kvHeads: 3, ffn: 1536, vocab: 32000, ctx: 2048, ropeTheta: 100000 };
/** A small shape whose every matrix row splits into 256-value blocks, so that K-quants are used throughout. */
export const K_SHAPE: Shape = { name: 'k-shape', dim: 256, layers: 4, heads: 4, kvHeads: 2, ffn: 768, vocab: 32000, ctx: 512, ropeTheta: 10000 };

/** Tokenizer metadata: the real Llama 2 vocabulary from ../shared when present. */
function llamaVocabMetadata(shared: string): [string, GGUFValue][] {
  const path = join(shared, 'vocab', 'ggml-vocab-llama-spm.gguf');
  if (!existsSync(path)) throw new Error(`${path} not found: set POCKETLM_SHARED to the reference data folder`);
  const f = parseGGUF(new Uint8Array(readFileSync(path)), path);
  return [...f.metadata].filter(([k]) => k.startsWith('tokenizer.'));
}

/** `vocab`: the tokenizer.* metadata to write (its size must be shape.vocab); by default the Llama 2 vocabulary's. */
export function makeRandomModel(shape: Shape, type: 'f32' | 'f16', out: string, shared: string, vocab?: [string, GGUFValue][]): void {
  let state = 0x9e3779b9;
  const rand = () => {
    // xorshift32 -> uniform in [-1, 1)
    state ^= state << 13; state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5; state >>>= 0;
    return state / 2147483648 - 1;
  };
  const scale = 0.035; // uniform(-0.035, 0.035) has std ~0.02, like a freshly initialised transformer
  const hd = shape.dim / shape.heads;
  const tensor = (name: string, dims: number[]): GGUFWriteTensor => {
    const n = dims.reduce((a, b) => a * b, 1);
    if (dims.length === 1) return { name, shape: dims, type: GGMLType.F32, data: new Uint8Array(new Float32Array(n).fill(1).buffer) };
    if (type === 'f16') {
      const h = new Uint16Array(n);
      for (let i = 0; i < n; i++) h[i] = f32ToF16(rand() * scale);
      return { name, shape: dims, type: GGMLType.F16, data: new Uint8Array(h.buffer) };
    }
    const f = new Float32Array(n);
    for (let i = 0; i < n; i++) f[i] = rand() * scale;
    return { name, shape: dims, type: GGMLType.F32, data: new Uint8Array(f.buffer) };
  };
  const tensors = [tensor('token_embd.weight', [shape.dim, shape.vocab])];
  for (let l = 0; l < shape.layers; l++) {
    const p = `blk.${l}.`;
    tensors.push(
      tensor(p + 'attn_norm.weight', [shape.dim]),
      tensor(p + 'attn_q.weight', [shape.dim, shape.heads * hd]),
      tensor(p + 'attn_k.weight', [shape.dim, shape.kvHeads * hd]),
      tensor(p + 'attn_v.weight', [shape.dim, shape.kvHeads * hd]),
      tensor(p + 'attn_output.weight', [shape.heads * hd, shape.dim]),
      tensor(p + 'ffn_norm.weight', [shape.dim]),
      tensor(p + 'ffn_gate.weight', [shape.dim, shape.ffn]),
      tensor(p + 'ffn_down.weight', [shape.ffn, shape.dim]),
      tensor(p + 'ffn_up.weight', [shape.dim, shape.ffn]),
    );
  }
  tensors.push(tensor('output_norm.weight', [shape.dim])); // output head tied to token_embd, as in SmolLM2
  const metadata = new Map<string, GGUFValue>([
    ...llamaMetadata({ name: `${shape.name} (random weights)`, dim: shape.dim, hiddenDim: shape.ffn, nLayers: shape.layers, nHeads: shape.heads, nKvHeads: shape.kvHeads, vocabSize: shape.vocab, contextLength: shape.ctx, rmsEps: 1e-5, ropeTheta: shape.ropeTheta, fileType: type === 'f16' ? 1 : 0 }),
    ...(vocab ?? llamaVocabMetadata(shared)),
  ]);
  writeGGUFFile(out, { metadata, tensors });
}

/**
 * The 135M-shaped benchmark file of `type` (f32, or a pocketlm quantize target such as q8_0) under
 * bench/models in `root`, made (random weights) and quantized from the F32 file the first time.
 */
export function benchModelFile(type: string, root: string, shared: string): string {
  const shaped = join(root, 'bench', 'models', `${SMOLLM2_135M.name}-f32.gguf`);
  if (!existsSync(shaped)) {
    console.error(`generating ${shaped} (random weights, SmolLM2-135M shape)...`);
    mkdirSync(dirname(shaped), { recursive: true });
    makeRandomModel(SMOLLM2_135M, 'f32', shaped, shared);
  }
  if (type === 'f32') return shaped;
  const path = join(root, 'bench', 'models', `${SMOLLM2_135M.name}-${type}.gguf`);
  if (!existsSync(path)) {
    console.error(`quantizing ${path}...`);
    writeGGUFFile(path, quantizeModel(readModelFile(new Uint8Array(readFileSync(shaped)), shaped), type as QuantizeTarget).input);
  }
  return path;
}

if (process.argv[1]?.endsWith('make-model.js')) {
  const { values } = parseArgs({ options: { out: { type: 'string' }, type: { type: 'string', default: 'f32' }, tokenizer: { type: 'string' } } });
  const type = values.type === 'f16' ? 'f16' : 'f32';
  const out = values.out ?? join('bench', 'models', `${SMOLLM2_135M.name}-${type}.gguf`);
  const tokenizer = values.tokenizer ? (await loadTokenizer(values.tokenizer)).vocab : undefined;
  const shape = tokenizer ? { ...SMOLLM2_135M, vocab: tokenizer.tokens.length } : SMOLLM2_135M;
  makeRandomModel(shape, type, out, process.env.POCKETLM_SHARED ?? join('..', 'shared'), tokenizer && vocabMetadata(tokenizer));
  console.error(`wrote ${out}`);
}
