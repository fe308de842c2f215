// The common form of a model, whatever file it came from: typed GGUF metadata plus raw tensors.
// A GGUF file gives views into its bytes; a llama2.c checkpoint is converted to the same form.

import { ModelFormatError, UnsupportedModelError } from './errors.js';
import { parseGGUF, tensorData, type GGUFFile, type MetaHolder } from './gguf.js';
import type { GGUFWriteInput } from './gguf-writer.js';
import { llama2cToGGUF } from './llama2c.js';
import { configFromMetadata, type ModelConfig } from './config.js';
import type { LayerWeights, LlamaWeights } from './model.js';
import { GGMLType, numElements, toFloat32, typeName } from './tensor.js';
import { vocabFromMetadata, type Vocab } from './vocab.js';
import { isQuantType, type QuantMatrix } from './quant.js';

/** A weight matrix as loaded: f32 values, or quantized blocks. */
export type WeightData = Float32Array | QuantMatrix;

export interface RawTensor {
  shape: number[];
  type: GGMLType;
  data: Uint8Array;
}

export interface ModelFile extends MetaHolder {
  format: 'gguf' | 'llama2c';
  tensors: Map<string, RawTensor>;
  /** Total bytes of tensor data. */
  tensorBytes: number;
}

export function isGGUF(bytes: Uint8Array): boolean {
  return bytes.byteLength >= 4 && bytes[0] === 0x47 && bytes[1] === 0x47 && bytes[2] === 0x55 && bytes[3] === 0x46;
}

export function modelFileFromGGUF(file: GGUFFile): ModelFile {
  const tensors = new Map<string, RawTensor>();
  for (const t of file.tensors) {
    if (tensors.has(t.name)) throw new ModelFormatError(file.source, `tensor "${t.name}" appears twice`);
    tensors.set(t.name, { shape: t.shape, type: t.type, data: tensorData(file, t) });
  }
  return { format: 'gguf', source: file.source, metadata: file.metadata, tensors, tensorBytes: file.tensors.reduce((n, t) => n + t.byteLength, 0) };
}

export function modelFileFromWriteInput(input: GGUFWriteInput, source: string, format: ModelFile['format']): ModelFile {
  const tensors = new Map(input.tensors.map((t) => [t.name, { shape: t.shape, type: t.type, data: t.data }] as const));
  return { format, source, metadata: input.metadata, tensors, tensorBytes: input.tensors.reduce((n, t) => n + t.data.byteLength, 0) };
}

/** Parse model bytes: GGUF, or a llama2.c checkpoint (which needs its tokenizer file). */
export function readModelFile(bytes: Uint8Array, source: string, tokenizer?: { bytes: Uint8Array; source: string }): ModelFile {
  if (isGGUF(bytes)) return modelFileFromGGUF(parseGGUF(bytes, source));
  if (!tokenizer)
    throw new ModelFormatError(source, 'is not a GGUF file; if it is a llama2.c checkpoint, also give its tokenizer .bin (--tokenizer PATH, or { tokenizer } in loadModel)');
  const name = source.split(/[\\/]/).pop()!.replace(/\.bin$/, '');
  return modelFileFromWriteInput(llama2cToGGUF(bytes, source, tokenizer.bytes, tokenizer.source, name), source, 'llama2c');
}

export interface LoadedParts {
  config: ModelConfig;
  vocab: Vocab;
  /** Vectors as f32; matrices as f32 or, from quantized files, still quantized. */
  weights: LlamaWeights<WeightData, Float32Array>;
  /** Weights whose file tensors were F16 (a backend may keep them in f16 without loss). */
  half: Set<Float32Array>;
}

/**
 * Check every tensor's presence, type and shape, and view (or convert) it as f32. Where the weights
 * finally live is the backend's business (Backend.weight).
 */
export function loadParts(file: ModelFile): LoadedParts {
  const vocab = vocabFromMetadata(file);
  const embd = file.tensors.get('token_embd.weight');
  if (!embd) throw new ModelFormatError(file.source, 'tensor "token_embd.weight" is missing');
  const vocabSize = embd.shape[1] ?? 0;
  const config = configFromMetadata(file, vocabSize);
  if (vocab.tokens.length !== vocabSize)
    throw new ModelFormatError(file.source, `the tokenizer has ${vocab.tokens.length} tokens but token_embd.weight has ${vocabSize} rows`);
  const c = config;
  const qDim = c.nHeads * c.headDim;
  const kvDim = c.nKvHeads * c.headDim;
  const half = new Set<Float32Array>();
  const tensor = (name: string, shape: number[]) => {
    const t = file.tensors.get(name);
    if (!t) throw new ModelFormatError(file.source, `tensor "${name}" is missing`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw new ModelFormatError(file.source, `tensor "${name}" has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}] for this model's hyper-parameters`);
    return t;
  };
  /** A vector (norm weights): always f32. */
  const vector = (name: string, shape: number[]): Float32Array => {
    const t = tensor(name, shape);
    if (t.type !== GGMLType.F32 && t.type !== GGMLType.F16 && t.type !== GGMLType.BF16)
      throw new UnsupportedModelError(file.source, `tensor "${name}" is ${typeName(t.type)}; vectors must be F32, F16 or BF16`);
    return toFloat32(t.type, t.data, numElements(shape));
  };
  /** A matrix [rows][cols] (GGUF shape [cols, rows]): f32, or kept quantized. */
  const get = (name: string, shape: number[]): WeightData => {
    const t = tensor(name, shape);
    if (isQuantType(t.type)) return { type: t.type, data: t.data, rows: shape[1]!, cols: shape[0]! };
    if (t.type !== GGMLType.F32 && t.type !== GGMLType.F16 && t.type !== GGMLType.BF16)
      throw new UnsupportedModelError(file.source, `tensor "${name}" is ${typeName(t.type)}; pocketlm computes with F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K weights (requantize from the original with pocketlm quantize)`);
    const f32 = toFloat32(t.type, t.data, numElements(shape));
    if (t.type === GGMLType.F16) half.add(f32);
    return f32;
  };
  const layers: LayerWeights<WeightData, Float32Array>[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `blk.${l}.`;
    layers.push({
      attnNorm: vector(p + 'attn_norm.weight', [c.dim]),
      wq: get(p + 'attn_q.weight', [c.dim, qDim]),
      wk: get(p + 'attn_k.weight', [c.dim, kvDim]),
      wv: get(p + 'attn_v.weight', [c.dim, kvDim]),
      wo: get(p + 'attn_output.weight', [qDim, c.dim]),
      ffnNorm: vector(p + 'ffn_norm.weight', [c.dim]),
      wGate: get(p + 'ffn_gate.weight', [c.dim, c.hiddenDim]),
      wUp: get(p + 'ffn_up.weight', [c.dim, c.hiddenDim]),
      wDown: get(p + 'ffn_down.weight', [c.hiddenDim, c.dim]),
    });
  }
  const tokenEmbedding = get('token_embd.weight', [c.dim, vocabSize]);
  const output = file.tensors.has('output.weight') ? get('output.weight', [c.dim, vocabSize]) : tokenEmbedding;
  return { config, vocab, weights: { tokenEmbedding, layers, outputNorm: vector('output_norm.weight', [c.dim]), output }, half };
}
