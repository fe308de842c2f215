// Hugging Face folder -> the GGUF form an architecture reads: each family's file says which config keys
// and tensor names map to which GGUF ones (its `hf` part), through the helpers here, which also do the
// few value changes llama.cpp's converter makes (Llama's q/k row permutation, Gemma's norm + 1, GPT-2's
// Conv1D transpose, GPT-NeoX's per-head q/k/v interleaving). Tensors that need no change are views of
// the safetensors bytes, never copies. The result loads like any GGUF file and writes as one
// (`pocketlm convert FOLDER -o model.gguf`).

import { ModelFormatError, UnsupportedModelError } from '../base/errors.js';
import { f16ToF32, GGMLType, numElements, toFloat32, typeName } from '../base/tensor.js';
import type { GGUFValue } from '../format/gguf.js';
import { gguf } from '../format/gguf-writer.js';
import type { HFModel } from '../format/hf.js';
import type { ModelFile, RawTensor } from '../format/model-file.js';
import { padVocab, vocabMetadata } from '../format/vocab.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;

/** How one family reads a Hugging Face folder. */
export interface HFMapping {
  /** config.json "architectures" entries this family converts. */
  readonly classes: readonly string[];
  /** Fill the converter's metadata and tensors (GGUF names), taking every tensor the model uses. */
  convert(h: HFConverter): void;
}

export class HFConverter {
  readonly metadata = new Map<string, GGUFValue>();
  readonly tensors = new Map<string, RawTensor>();
  /** GGUF name -> the folder's name, for messages. */
  private readonly origins = new Map<string, string>();
  private readonly used = new Set<string>();
  /** The GGUF architecture name, set by `arch()`. */
  name = '';

  constructor(readonly hf: HFModel) {}

  get source(): string {
    return `${this.hf.source}/config.json`;
  }

  /** Set general.architecture (and the prefix of the keys set by `set`). */
  arch(name: string): void {
    this.name = name;
    this.metadata.set('general.architecture', gguf.str(name));
  }

  // --- config.json ---

  has(key: string): boolean {
    return this.hf.config[key] !== undefined && this.hf.config[key] !== null;
  }
  /** A number from config.json (the first of `keys` present), or `fallback`; a ModelFormatError naming the key otherwise. */
  num(keys: string | string[], fallback?: number): number {
    for (const k of [keys].flat()) {
      const v = this.hf.config[k];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new ModelFormatError(this.source, `"${k}" = ${JSON.stringify(v)} is not a number`);
      return v;
    }
    if (fallback === undefined) throw new ModelFormatError(this.source, `"${[keys].flat().join('" / "')}" is missing`);
    return fallback;
  }
  /** A positive integer from config.json. */
  int(keys: string | string[], fallback?: number): number {
    const v = this.num(keys, fallback);
    if (!(Number.isInteger(v) && v > 0 && v <= 1 << 24)) throw new ModelFormatError(this.source, `"${[keys].flat()[0]}" = ${v} is not a sensible size`);
    return v;
  }
  bool(key: string, fallback: boolean): boolean {
    const v = this.hf.config[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw new ModelFormatError(this.source, `"${key}" = ${JSON.stringify(v)} is not true or false`);
    return v;
  }
  str(key: string): string | undefined {
    const v = this.hf.config[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new ModelFormatError(this.source, `"${key}" = ${JSON.stringify(v)} is not a string`);
    return v;
  }
  /** config.json's value as is (objects such as rope_scaling). */
  raw(key: string): Json {
    return this.hf.config[key];
  }
  /** An activation name from config.json, checked against the ones the family computes. */
  activation(keys: string[], allowed: Record<string, string>): string {
    for (const k of keys) {
      const v = this.str(k);
      if (v === undefined) continue;
      const a = allowed[v];
      if (!a) throw new UnsupportedModelError(this.source, `"${k}" = "${v}" is not an activation pocketlm computes for this family (${Object.keys(allowed).join(', ')})`);
      return a;
    }
    return Object.values(allowed)[0]!;
  }

  // --- metadata ---

  /** `{arch}.{key}` = value (or the key as is when it starts with general.). */
  set(key: string, value: GGUFValue): void {
    this.metadata.set(key.startsWith('general.') ? key : `${this.name}.${key}`, value);
  }
  u32(key: string, v: number): void {
    this.set(key, gguf.u32(v));
  }
  f32(key: string, v: number): void {
    this.set(key, gguf.f32(v));
  }

  // --- tensors ---

  /** The Hugging Face tensor, marked as used; a ModelFormatError naming it when it is missing. */
  take(name: string): RawTensor {
    const t = this.hf.tensors.get(name);
    if (!t) throw new ModelFormatError(this.hf.source, `tensor "${name}" is missing`);
    this.used.add(name);
    return t;
  }
  /** The tensor, if the folder has it. */
  maybe(name: string): RawTensor | undefined {
    return this.hf.tensors.has(name) ? this.take(name) : undefined;
  }
  /** Mark tensors the model does not compute with (rotary caches, attention-mask buffers) as known. */
  ignore(pattern: RegExp): void {
    for (const name of this.hf.tensors.keys()) if (pattern.test(name)) this.used.add(name);
  }
  put(name: string, t: RawTensor): void {
    this.tensors.set(name, t);
  }
  /** GGUF `name` = Hugging Face `from`, as it is or changed by `f`; nothing when optional and absent. */
  map(name: string, from: string, f: (t: RawTensor) => RawTensor = (t) => t, optional = false): void {
    const t = optional ? this.maybe(from) : this.take(from);
    if (!t) return;
    this.put(name, f(t));
    this.origins.set(name, from);
  }
  /** `to.weight` and `to.bias` = the folder's `from.weight` and `from.bias` (a Linear or a norm with its bias). */
  mapWeightBias(to: string, from: string): void {
    this.map(`${to}.weight`, `${from}.weight`);
    this.map(`${to}.bias`, `${from}.bias`);
  }

  /**
   * The standard decoder keys from the usual config.json names: sizes, heads, head size (key_length
   * when it is not dim / heads), context, RoPE base and rotated dims. Returns the sizes for the tensors.
   */
  standard(o: { ropeDims?: number; context?: string[]; ffn?: string[] } = {}): { dim: number; nLayers: number; nHeads: number; nKv: number; headDim: number; hidden: number } {
    const dim = this.int(['hidden_size', 'n_embd', 'd_model']);
    const nLayers = this.int(['num_hidden_layers', 'n_layer']);
    const nHeads = this.int(['num_attention_heads', 'n_head']);
    const nKv = this.int('num_key_value_heads', nHeads);
    const headDim = this.int('head_dim', Number.isInteger(dim / nHeads) ? dim / nHeads : undefined);
    const hidden = this.int(o.ffn ?? ['intermediate_size', 'n_inner', 'ffn_dim'], 4 * dim);
    this.u32('context_length', this.int(o.context ?? ['max_position_embeddings', 'n_positions']));
    this.u32('embedding_length', dim);
    this.u32('block_count', nLayers);
    this.u32('feed_forward_length', hidden);
    this.u32('attention.head_count', nHeads);
    this.u32('attention.head_count_kv', nKv);
    if (headDim * nHeads !== dim) {
      this.u32('attention.key_length', headDim);
      this.u32('attention.value_length', headDim);
    }
    this.u32('rope.dimension_count', o.ropeDims ?? headDim);
    return { dim, nLayers, nHeads, nKv, headDim, hidden };
  }

  /**
   * rope_theta and rope_scaling: none, linear (a factor), llama3 (per-frequency factors, as the tensor
   * rope_freqs.weight), longrope (Phi-3's short/long factors and attention factor) where `allow` lists
   * it; YaRN, dynamic NTK and other types are refused by name.
   */
  rope(headDim: number, ropeDims: number, allow: ('linear' | 'llama3' | 'longrope')[]): void {
    const theta = this.num('rope_theta', 10000);
    this.f32('rope.freq_base', theta);
    const s = this.raw('rope_scaling');
    if (s === undefined || s === null) return;
    const type = s.rope_type ?? s.type;
    if (type === 'default') return;
    if (!allow.includes(type)) throw new UnsupportedModelError(this.source, `rope_scaling ${JSON.stringify(s).slice(0, 120)}: "${type}" scaling is not supported for this family; pocketlm computes ${allow.join(', ') || 'none'}`);
    if (type === 'linear') {
      this.set('rope.scaling.type', gguf.str('linear'));
      this.f32('rope.scaling.factor', Number(s.factor));
    } else if (type === 'llama3') {
      this.put('rope_freqs.weight', f32Tensor(llama3RopeFactors(s, headDim, theta, this.source)));
    } else {
      const long = s.long_factor, short = s.short_factor;
      if (!Array.isArray(long) || !Array.isArray(short) || long.length !== ropeDims / 2 || short.length !== ropeDims / 2)
        throw new ModelFormatError(this.source, `rope_scaling: longrope needs long_factor and short_factor lists of ${ropeDims / 2} numbers`);
      const context = this.int('max_position_embeddings');
      const original = this.int('original_max_position_embeddings', Number(s.original_max_position_embeddings) || context);
      const scale = context / original;
      // Phi-3's attention factor: sqrt(1 + ln(scale) / ln(original)) when the context was extended.
      const attn = Number(s.attention_factor ?? (scale <= 1 ? 1 : Math.sqrt(1 + Math.log(scale) / Math.log(original))));
      this.set('rope.scaling.type', gguf.str('longrope'));
      this.f32('rope.scaling.attn_factor', attn);
      this.u32('rope.scaling.original_context_length', original);
      this.put('rope_factors_long.weight', f32Tensor(Float32Array.from(long.map(Number))));
      this.put('rope_factors_short.weight', f32Tensor(Float32Array.from(short.map(Number))));
    }
  }

  /** The GGUF-form model file, with the tokenizer's metadata (padded to the embedding's rows). */
  finish(): ModelFile {
    const embd = this.tensors.get('token_embd.weight');
    if (!embd || embd.shape.length !== 2) throw new ModelFormatError(this.hf.source, 'no token embedding was found');
    const vocabRows = embd.shape[1]!;
    const name = this.str('_name_or_path')?.split('/').pop() || this.hf.source.split(/[\\/]/).filter(Boolean).pop() || this.name;
    const unused = [...this.hf.tensors.keys()].filter((n) => !this.used.has(n));
    if (unused.length)
      throw new UnsupportedModelError(this.hf.source, `tensor${unused.length > 1 ? 's' : ''} ${unused.slice(0, 5).map((n) => `"${n}"`).join(', ')}${unused.length > 5 ? ` and ${unused.length - 5} more` : ''} ${unused.length > 1 ? 'are' : 'is'} not used by pocketlm's ${this.name} mapping: the folder holds a variant pocketlm does not know`);
    if (this.hf.vocab.tokens.length > vocabRows)
      throw new ModelFormatError(this.hf.source, `the tokenizer has ${this.hf.vocab.tokens.length} tokens but the embedding only ${vocabRows} rows`);
    this.metadata.set('general.name', gguf.str(name));
    this.u32('vocab_size', vocabRows);
    for (const [k, v] of vocabMetadata(padVocab(this.hf.vocab, vocabRows))) this.metadata.set(k, v);
    let bytes = 0;
    for (const t of this.tensors.values()) bytes += t.data.byteLength;
    return { format: 'hf', source: this.hf.source, metadata: this.metadata, tensors: this.tensors, tensorBytes: bytes, origins: this.origins };
  }
}

// --- value changes, each a new tensor (the source stays as it was) ---

const ELEMENT_BYTES: Partial<Record<GGMLType, number>> = { [GGMLType.F32]: 4, [GGMLType.F16]: 2, [GGMLType.BF16]: 2 };

function elementBytes(t: RawTensor): number {
  const size = ELEMENT_BYTES[t.type];
  if (!size) throw new UnsupportedModelError('safetensors', `a ${typeName(t.type)} tensor cannot be converted`);
  return size;
}

/** Rows of a [rows][cols] tensor in a new order: out row r = in row from(r). */
function reorderRows(t: RawTensor, rows: number, from: (r: number) => number): RawTensor {
  const rowBytes = (t.data.byteLength / rows) | 0;
  const out = new Uint8Array(t.data.byteLength);
  for (let r = 0; r < rows; r++) out.set(t.data.subarray(from(r) * rowBytes, (from(r) + 1) * rowBytes), r * rowBytes);
  return { ...t, data: out };
}

/**
 * Llama's q and k projections from Hugging Face's rotate-half layout (per head: the first halves of the
 * pairs, then the second halves) to GGUF's interleaved pairs, as llama.cpp's converter permutes them;
 * works for weights [heads * headDim][cols] and biases [heads * headDim] alike.
 */
export function interleaveHeads(t: RawTensor, heads: number): RawTensor {
  const rows = t.shape.length === 1 ? t.shape[0]! : t.shape[1]!;
  const hd = rows / heads;
  if (!Number.isInteger(hd) || hd % 2) throw new ModelFormatError('safetensors', `a q/k projection of ${rows} rows does not split into ${heads} heads of an even size`);
  return reorderRows(t, rows, (r) => {
    const h = Math.floor(r / hd), i = r % hd;
    return h * hd + (i % 2) * (hd / 2) + (i >> 1);
  });
}

/**
 * GPT-NeoX's fused query_key_value, laid out per head ([head][q, k, v][headDim] rows), to the [Q; K; V]
 * blocks GGUF's gptneox holds (as llama.cpp's converter reorders it); weights and biases alike.
 */
export function blockQKV(t: RawTensor, heads: number): RawTensor {
  const rows = t.shape.length === 1 ? t.shape[0]! : t.shape[1]!;
  const hd = rows / (3 * heads);
  if (!Number.isInteger(hd)) throw new ModelFormatError('safetensors', `a fused query_key_value of ${rows} rows does not split into 3 x ${heads} heads`);
  return reorderRows(t, rows, (r) => {
    const which = Math.floor(r / (heads * hd)), h = Math.floor((r % (heads * hd)) / hd), i = r % hd;
    return (h * 3 + which) * hd + i;
  });
}

/** GPT-2's Conv1D weights [in][out] as a Linear's [out][in] (a transpose; GGUF shape [in, out]). */
export function transpose(t: RawTensor): RawTensor {
  const [cols, rows] = t.shape as [number, number]; // GGUF order of a [rows][cols] PyTorch tensor
  const src = t.data.slice(); // aligned for the typed views below
  const n = rows * cols;
  const [a, o] = elementBytes(t) === 4 ? [new Uint32Array(src.buffer), new Uint32Array(n)] : [new Uint16Array(src.buffer), new Uint16Array(n)];
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) o[c * rows + r] = a[r * cols + c]!;
  return { ...t, shape: [rows, cols], data: new Uint8Array(o.buffer) };
}

/** Gemma's RMSNorm weights w, which it applies as (1 + w): stored as 1 + w in f32, as llama.cpp's converter does. */
export function plusOne(t: RawTensor): RawTensor {
  const n = numElements(t.shape);
  const f = Float32Array.from(toFloat32(t.type, t.data, n), (v) => v + 1);
  return { shape: t.shape, type: GGMLType.F32, data: new Uint8Array(f.buffer) };
}

/** A tensor as f32 values (for factors computed from config values). */
export function f32Tensor(values: Float32Array): RawTensor {
  return { shape: [values.length], type: GGMLType.F32, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

/** The values of a small float tensor (for checks). */
export function values(t: RawTensor): Float32Array {
  return t.type === GGMLType.F16 ? Float32Array.from(new Uint16Array(t.data.slice().buffer), f16ToF32) : toFloat32(t.type, t.data, numElements(t.shape));
}

/**
 * Llama 3's RoPE scaling (rope_type "llama3") as per-frequency divisors (GGUF's rope_freqs.weight), the
 * way llama.cpp's converter computes them: wavelengths beyond the low-frequency threshold are divided by
 * `factor`, those under the high-frequency one kept, and those between interpolated smoothly.
 */
export function llama3RopeFactors(s: Json, headDim: number, theta: number, source: string): Float32Array {
  const factor = Number(s.factor), low = Number(s.low_freq_factor ?? 1), high = Number(s.high_freq_factor ?? 4), original = Number(s.original_max_position_embeddings ?? 8192);
  if (![factor, low, high, original].every((v) => Number.isFinite(v) && v > 0) || high <= low)
    throw new ModelFormatError(source, `rope_scaling ${JSON.stringify(s)}: llama3 scaling needs positive factor, low_freq_factor < high_freq_factor and original_max_position_embeddings`);
  const lowWave = original / low, highWave = original / high;
  return Float32Array.from({ length: headDim / 2 }, (_, i) => {
    const wave = 2 * Math.PI * Math.pow(theta, (2 * i) / headDim); // 2 pi / inv_freq
    if (wave < highWave) return 1;
    if (wave > lowWave) return factor;
    const smooth = (original / wave - low) / (high - low);
    return 1 / ((1 - smooth) / factor + smooth);
  });
}

/** config.json's model class ("LlamaForCausalLM"...), which picks the family. */
export function hfClass(hf: HFModel): string {
  const list = hf.config.architectures;
  if (!Array.isArray(list) || typeof list[0] !== 'string') throw new ModelFormatError(`${hf.source}/config.json`, '"architectures" is missing: which model class is this?');
  return list[0];
}
