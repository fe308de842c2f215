// Hyper-parameters as GGUF metadata states them ("{arch}.embedding_length"...), read and checked once,
// for every architecture: the shapes every transformer has (ModelConfig), and readers for the options
// only some have (RoPE scaling, sliding windows, soft-caps), each with a typed error that names the key.

import { ModelFormatError, UnsupportedModelError } from '../base/errors.js';
import { GGMLType, numElements, toFloat32 } from '../base/tensor.js';
import { metaBool, metaNumber, metaString, type MetaHolder } from '../format/gguf.js';
import type { ModelFile } from '../format/model-file.js';
import type { RopeParams, RopeStyle } from '../stages/rope.js';

/** What every decoder has, whatever its family. Families extend it with their options. */
export interface ModelConfig {
  /** GGUF general.architecture ("llama", "qwen2", "gemma2"...). */
  architecture: string;
  /** The family file that runs it (src/arch/<family>.ts). */
  family: string;
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
  /** The context length the model was trained for (for learned positions, the most it can take). */
  contextLength: number;
  /** Learned absolute positions (GPT-2, OPT): no context may be longer than the position table. */
  maxContext?: number;
  /** Width of the token embedding rows when it differs from dim (OPT-350m's 512). */
  embedDim?: number;
  /** How this model differs from plain Llama, one phrase each, for `pocketlm info`. */
  traits: string[];
}

/** Reads `{arch}.*` keys of one file, each missing or absurd value a ModelFormatError naming the key. */
export class Hyper {
  constructor(readonly file: MetaHolder, readonly arch: string) {}

  /** A positive integer size. */
  size(key: string, fallback?: number): number {
    const v = metaNumber(this.file, `${this.arch}.${key}`) ?? fallback;
    if (v === undefined) throw new ModelFormatError(this.file.source, `metadata "${this.arch}.${key}" is missing`);
    if (!(Number.isInteger(v) && v > 0 && v <= 1 << 24)) throw new ModelFormatError(this.file.source, `metadata "${this.arch}.${key}" = ${v} is not a sensible size`);
    return v;
  }
  /** A finite number. */
  number(key: string): number | undefined;
  number(key: string, fallback: number): number;
  number(key: string, fallback?: number): number | undefined {
    const v = metaNumber(this.file, `${this.arch}.${key}`) ?? fallback;
    if (v !== undefined && !Number.isFinite(v)) throw new ModelFormatError(this.file.source, `metadata "${this.arch}.${key}" = ${v} is not a finite number`);
    return v;
  }
  /** A positive finite number (an epsilon, a scale, a cap). */
  positive(key: string, fallback?: number): number | undefined {
    const v = this.number(key);
    if (v === undefined) return fallback;
    if (!(v > 0)) throw new ModelFormatError(this.file.source, `metadata "${this.arch}.${key}" = ${v} must be positive`);
    return v;
  }
  bool(key: string, fallback: boolean): boolean {
    return metaBool(this.file, `${this.arch}.${key}`, fallback);
  }
  string(key: string): string | undefined {
    return metaString(this.file, `${this.arch}.${key}`);
  }
}

/** The shapes every decoder has, from the standard keys; the vocabulary size from the embedding table. */
export function baseConfig(file: ModelFile, family: string, vocabSize: number): ModelConfig & { hyper: Hyper } {
  const arch = metaString(file, 'general.architecture')!;
  const h = new Hyper(file, arch);
  const dim = h.size('embedding_length');
  const nHeads = h.size('attention.head_count');
  const nKvHeads = h.size('attention.head_count_kv', nHeads);
  const bad = (what: string) => { throw new ModelFormatError(file.source, what); };
  if (h.number('attention.key_length') === undefined && dim % nHeads !== 0) bad(`embedding_length ${dim} is not divisible by head_count ${nHeads} (and attention.key_length does not give the head size)`);
  const headDim = h.size('attention.key_length', dim / nHeads);
  if (nHeads % nKvHeads !== 0) bad(`head_count ${nHeads} is not a multiple of head_count_kv ${nKvHeads}`);
  const value = h.number('attention.value_length');
  if (value !== undefined && value !== headDim) throw new UnsupportedModelError(file.source, `value_length ${value} differs from key_length ${headDim}; pocketlm needs them equal`);
  return {
    architecture: arch,
    family,
    name: metaString(file, 'general.name') ?? arch,
    dim,
    hiddenDim: h.size('feed_forward_length'),
    nLayers: h.size('block_count'),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize,
    contextLength: h.size('context_length'),
    traits: [],
    hyper: h,
  };
}

/** The RoPE scaling types pocketlm computes (as GGUF's rope.scaling.type names them). */
const ROPE_SCALING = ['none', 'linear', 'longrope'];

/**
 * RoPE parameters from `{arch}.rope.*`: dimension count (partial rotary), base, scaling (none, linear,
 * or longrope with Phi-3's rope_factors_long/short tensors), and Llama 3's rope_freqs.weight factors.
 * `base` overrides the file's frequency base (Gemma 3's local layers use 10000).
 */
export function ropeParams(file: ModelFile, h: Hyper, headDim: number, style: RopeStyle, o: { base?: number; scaled?: boolean } = {}): Rope {
  const ropeDims = h.size('rope.dimension_count', headDim);
  if (!(ropeDims <= headDim && ropeDims % 2 === 0))
    throw new ModelFormatError(file.source, `rope.dimension_count ${ropeDims} must be even and at most the head size ${headDim}`);
  const theta = o.base ?? h.positive('rope.freq_base', 10000)!;
  const type = h.string('rope.scaling.type') ?? 'none';
  if (!ROPE_SCALING.includes(type))
    throw new UnsupportedModelError(file.source, `RoPE scaling "${type}" (metadata "${h.arch}.rope.scaling.type") is not supported; pocketlm computes ${ROPE_SCALING.join(', ')} (and Llama 3's rope_freqs)`);
  const p: Rope = { headDim, ropeDims, theta, style };
  if (o.scaled === false) return p;
  const factor = h.positive('rope.scaling.factor') ?? h.positive('rope.scale_linear');
  if (type === 'linear' && factor !== undefined) p.freqScale = 1 / factor;
  const factors = (name: string) => {
    const t = file.tensors.get(name);
    if (!t) return undefined;
    if (t.shape.length !== 1 || t.shape[0] !== ropeDims / 2)
      throw new ModelFormatError(file.source, `tensor "${name}" has shape [${t.shape.join(', ')}], expected [${ropeDims / 2}] (one factor per rotated pair)`);
    if (t.type !== GGMLType.F32 && t.type !== GGMLType.F16) throw new UnsupportedModelError(file.source, `tensor "${name}" must be F32 or F16`);
    const f = toFloat32(t.type, t.data, numElements(t.shape));
    if (!f.every((v) => v > 0 && Number.isFinite(v))) throw new ModelFormatError(file.source, `tensor "${name}" holds factors that are not positive finite numbers`);
    return f;
  };
  p.factors = factors('rope_freqs.weight');
  if (type === 'longrope') {
    p.factors = factors('rope_factors_short.weight');
    const long = factors('rope_factors_long.weight');
    if (!p.factors || !long) throw new ModelFormatError(file.source, 'RoPE scaling "longrope" needs the tensors rope_factors_short.weight and rope_factors_long.weight');
    p.attnFactor = h.positive('rope.scaling.attn_factor', 1);
    p.longContext = { from: h.size('rope.scaling.original_context_length', h.size('context_length')) + 1, params: { ...p, factors: long } };
  }
  return p;
}

/** RoPE parameters, with the long-context variant Phi-3's longrope switches to. */
export interface Rope extends RopeParams {
  /** Contexts of at least `from` tokens use `params` (as llama.cpp decides, once per context, from its size). */
  longContext?: { from: number; params: RopeParams };
}

/** The RoPE parameters for a context of `contextLength` tokens (the same object every time, as backends cache by it). */
export function ropeFor(p: Rope, contextLength: number): RopeParams {
  return p.longContext && contextLength >= p.longContext.from ? p.longContext.params : p;
}

/** One trait line for a RoPE setup: "NeoX RoPE on 32 of 80 dims, base 10000, linear x8". */
export function ropeTrait(p: Rope): string {
  const parts = [`${p.style === 'neox' ? 'NeoX' : 'interleaved'} RoPE`];
  if (p.ropeDims < p.headDim) parts.push(`on ${p.ropeDims} of ${p.headDim} dims`);
  parts.push(`base ${p.theta}`);
  if (p.freqScale !== undefined && p.freqScale !== 1) parts.push(`linear x${Number((1 / p.freqScale).toPrecision(4))}`);
  if (p.longContext) parts.push(`longrope (long factors from ${p.longContext.from} tokens)`);
  else if (p.factors) parts.push('per-frequency factors (rope_freqs)');
  return parts.join(', ');
}

/** The row count of a [dim, rows] embedding table (the vocabulary size), or a ModelFormatError. */
export function embeddingRows(file: ModelFile, name = 'token_embd.weight'): number {
  const t = file.tensors.get(name);
  if (!t) throw new ModelFormatError(file.source, `tensor "${name}" is missing`);
  if (t.shape.length !== 2 || !(t.shape[1]! > 0)) throw new ModelFormatError(file.source, `tensor "${name}" has shape [${t.shape.join(', ')}]; expected [dim, rows]`);
  return t.shape[1]!;
}
