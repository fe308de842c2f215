// ModelConfig: the hyper-parameters of a model, read from GGUF metadata ("{arch}.embedding_length"...).

import { ModelFormatError, UnsupportedModelError } from './errors.js';
import { metaNumber, metaString, type GGUFValue, type MetaHolder } from './gguf.js';
import { gguf } from './gguf-writer.js';
import type { RopeParams, RopeStyle } from './rope.js';

export interface ModelConfig {
  architecture: string;
  name: string;
  /** Embedding width (hidden size). */
  dim: number;
  /** Feed-forward inner width. */
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  /** Key/value heads: nHeads for MHA, fewer for GQA, 1 for MQA. */
  nKvHeads: number;
  headDim: number;
  vocabSize: number;
  /** The context length the model was trained for. */
  contextLength: number;
  rmsEps: number;
  rope: RopeParams;
}

/** Architectures we run, and the RoPE pairing each uses in GGUF files. */
const ARCHITECTURES: Record<string, RopeStyle> = {
  llama: 'interleaved',
};

export function configFromMetadata(file: MetaHolder, vocabSize: number): ModelConfig {
  const arch = metaString(file, 'general.architecture');
  if (arch === undefined) throw new ModelFormatError(file.source, 'metadata "general.architecture" is missing');
  const ropeStyle = ARCHITECTURES[arch];
  if (!ropeStyle)
    throw new UnsupportedModelError(file.source, `unknown architecture "${arch}"; pocketlm runs: ${Object.keys(ARCHITECTURES).join(', ')}`);
  const need = (key: string) => {
    const v = metaNumber(file, `${arch}.${key}`);
    if (v === undefined) throw new ModelFormatError(file.source, `metadata "${arch}.${key}" is missing`);
    if (!(Number.isInteger(v) && v > 0 && v <= 1 << 24)) throw new ModelFormatError(file.source, `metadata "${arch}.${key}" = ${v} is not a sensible size`);
    return v;
  };
  const dim = need('embedding_length');
  const nHeads = need('attention.head_count');
  const nKvHeads = metaNumber(file, `${arch}.attention.head_count_kv`) ?? nHeads;
  const headDim = metaNumber(file, `${arch}.attention.key_length`) ?? dim / nHeads;
  const ropeDims = metaNumber(file, `${arch}.rope.dimension_count`) ?? headDim;
  const bad = (what: string) => { throw new ModelFormatError(file.source, what); };
  if (!Number.isInteger(headDim) || headDim <= 0) bad(`embedding_length ${dim} is not divisible by head_count ${nHeads}`);
  if (!(nKvHeads > 0 && nHeads % nKvHeads === 0)) bad(`head_count ${nHeads} is not a multiple of head_count_kv ${nKvHeads}`);
  if (!(ropeDims > 0 && ropeDims <= headDim && ropeDims % 2 === 0)) bad(`rope.dimension_count ${ropeDims} must be even and at most the head size ${headDim}`);
  const value = metaNumber(file, `${arch}.attention.value_length`);
  if (value !== undefined && value !== headDim) throw new UnsupportedModelError(file.source, `value_length ${value} differs from key_length ${headDim}`);
  return {
    architecture: arch,
    name: metaString(file, 'general.name') ?? arch,
    dim,
    hiddenDim: need('feed_forward_length'),
    nLayers: need('block_count'),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize,
    contextLength: need('context_length'),
    rmsEps: metaNumber(file, `${arch}.attention.layer_norm_rms_epsilon`, 1e-5),
    rope: { headDim, ropeDims, theta: metaNumber(file, `${arch}.rope.freq_base`, 10000), style: ropeStyle },
  };
}

/** The inverse of configFromMetadata for a `llama` model: the metadata keys a GGUF file needs. */
export function llamaMetadata(c: { name: string; dim: number; hiddenDim: number; nLayers: number; nHeads: number; nKvHeads: number; vocabSize: number; contextLength: number; rmsEps: number; ropeTheta: number; fileType: number }): [string, GGUFValue][] {
  return [
    ['general.architecture', gguf.str('llama')],
    ['general.name', gguf.str(c.name)],
    ['general.file_type', gguf.u32(c.fileType)], // 0 = all F32, 1 = mostly F16
    ['llama.vocab_size', gguf.u32(c.vocabSize)],
    ['llama.context_length', gguf.u32(c.contextLength)],
    ['llama.embedding_length', gguf.u32(c.dim)],
    ['llama.block_count', gguf.u32(c.nLayers)],
    ['llama.feed_forward_length', gguf.u32(c.hiddenDim)],
    ['llama.rope.dimension_count', gguf.u32(c.dim / c.nHeads)],
    ['llama.rope.freq_base', gguf.f32(c.ropeTheta)],
    ['llama.attention.head_count', gguf.u32(c.nHeads)],
    ['llama.attention.head_count_kv', gguf.u32(c.nKvHeads)],
    ['llama.attention.layer_norm_rms_epsilon', gguf.f32(c.rmsEps)],
  ];
}
