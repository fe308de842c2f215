// Reading an architecture's tensors by their GGUF names: each one's presence, type and shape checked
// against the hyper-parameters (a typed error naming the tensor otherwise), viewed or converted to f32
// (quantized matrices stay quantized), and handed to the backend once. The handles are grouped the
// way the stages take them: a Linear (matrix + optional bias), a Norm (weight, optional bias, kind).

import { ModelFormatError, UnsupportedModelError } from '../base/errors.js';
import { GGMLType, toFloat32, typeName } from '../base/tensor.js';
import type { Backend, Handle } from '../backend/backend.js';
import { tensorLabel, type ModelFile, type RawTensor } from '../format/model-file.js';
import { firstNonFinite, isQuantType, rowBytes, type QuantMatrix } from '../quant/formats.js';
import type { Activation, GateActivation } from '../stages/ffn.js';

/** y = W x (+ b): W [rows][cols] as the backend holds it. */
export interface Linear<T = Handle> {
  w: T;
  b?: T;
  rows: number;
  cols: number;
}

/** RMSNorm (weight), LayerNorm (weight and bias; a zero bias where the model has none), or NoNorm (x * weight + bias, MobileBERT). */
export interface Norm<T = Handle> {
  kind: 'rms' | 'layer' | 'affine';
  w: T;
  b?: T;
  eps: number;
  dim: number;
}

/** One layer's attention weights: q/k/v/o projections (biases optional), optional per-head q/k RMSNorms. */
export interface AttentionWeights<T = Handle> {
  q: Linear<T>;
  k: Linear<T>;
  v: Linear<T>;
  o: Linear<T>;
  /** Per-head RMSNorm of q and k before RoPE (Qwen3, Gemma 3), weights [headDim]. */
  qNorm?: Norm<T>;
  kNorm?: Norm<T>;
}

/** One layer's feed-forward weights: gated (gate and up, SwiGLU / GeGLU) or plain (up, activation, down). */
export interface FfnWeights<T = Handle> {
  up: Linear<T>;
  /** Present for gated FFNs: out = down(act(gate x) * up x). */
  gate?: Linear<T>;
  down: Linear<T>;
  act: Activation | GateActivation;
}

/** A weight matrix as loaded: f32 values, or quantized blocks. */
export type WeightData = Float32Array | QuantMatrix;

const FLOAT_TYPES = new Set([GGMLType.F32, GGMLType.F16, GGMLType.BF16]);

export class WeightReader<T extends Handle = Handle> {
  /** Matrices read so far by kind: from F16 tensors, other float types, quantized. */
  readonly counts = { half: 0, float: 0, quantized: 0 };
  private readonly uploaded = new Map<string, T>();

  constructor(readonly file: ModelFile, readonly backend: Backend<T>) {}

  has(name: string): boolean {
    return this.file.tensors.has(name);
  }

  /** The tensor, checked to have exactly `shape` (GGUF order: innermost first). */
  raw(name: string, shape: number[]): RawTensor {
    const t = this.file.tensors.get(name);
    if (!t) throw new ModelFormatError(this.file.source, `tensor "${name}" is missing`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw new ModelFormatError(this.file.source, `tensor ${tensorLabel(this.file, name)} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}] for this model's hyper-parameters`);
    return t;
  }

  /** A vector (norm weight, bias): always f32 on the backend. */
  vector(name: string, length: number): T {
    return this.once(`v:${name}`, () => this.backend.weight(this.values(name, length)));
  }

  /** Refuse NaN and infinite weights, naming the tensor: they would spread through every later result. */
  private finite(name: string, v: Float32Array | QuantMatrix, cols: number): void {
    if (v instanceof Float32Array) {
      for (let i = 0; i < v.length; i++)
        if (!Number.isFinite(v[i]!)) throw new ModelFormatError(this.file.source, `tensor ${tensorLabel(this.file, name)} holds ${v[i]} at row ${Math.floor(i / cols)}, column ${i % cols}: the file is damaged (re-download or re-convert it)`);
      return;
    }
    const at = firstNonFinite(v);
    if (at) throw new ModelFormatError(this.file.source, `tensor ${tensorLabel(this.file, name)} has a NaN or infinite scale in row ${at.row}, block ${at.block}: the file is damaged (re-download or re-quantize it)`);
  }

  /** A vector as f32 values in memory (for what the CPU computes from at load, e.g. a zero bias). */
  values(name: string, length: number): Float32Array {
    const t = this.raw(name, [length]);
    if (!FLOAT_TYPES.has(t.type)) throw new UnsupportedModelError(this.file.source, `tensor "${name}" is ${typeName(t.type)}; vectors must be F32, F16 or BF16`);
    const v = toFloat32(t.type, t.data, length);
    this.finite(name, v, length);
    return v;
  }

  /** A vector of zeros (LayerNorm without a bias takes one), shared per length. */
  zeros(length: number): T {
    return this.once(`0:${length}`, () => this.backend.weight(new Float32Array(length)));
  }

  /** The matrix data [rows][cols] (GGUF shape [cols, rows]), rows [r0, r1) of it (a view, never a copy). */
  matrixData(name: string, rows: number, cols: number, r0 = 0, r1 = rows): { data: WeightData; half: boolean } {
    const t = this.raw(name, [cols, rows]);
    if (isQuantType(t.type)) {
      const rb = rowBytes(t.type, cols);
      const data: QuantMatrix = { type: t.type, data: t.data.subarray(r0 * rb, r1 * rb), rows: r1 - r0, cols };
      this.finite(name, data, cols);
      return { data, half: false };
    }
    if (!FLOAT_TYPES.has(t.type))
      throw new UnsupportedModelError(this.file.source, `tensor "${name}" is ${typeName(t.type)}; pocketlm computes with F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K weights (requantize from the original with pocketlm quantize)`);
    const size = t.type === GGMLType.F32 ? 4 : 2;
    const bytes = t.data.subarray(r0 * cols * size, r1 * cols * size);
    const values = toFloat32(t.type, bytes, (r1 - r0) * cols);
    this.finite(name, values, cols);
    return { data: values, half: t.type === GGMLType.F16 };
  }

  /** A weight matrix [rows][cols] on the backend (rows [r0, r1) of a fused tensor, as a view). */
  matrix(name: string, rows: number, cols: number, r0 = 0, r1 = rows): T {
    return this.once(`m:${name}:${r0}:${r1}`, () => {
      const { data, half } = this.matrixData(name, rows, cols, r0, r1);
      this.counts[data instanceof Float32Array ? (half ? 'half' : 'float') : 'quantized']++;
      return this.backend.weight(data, half, cols);
    });
  }

  /** `prefix.weight` [rows][cols], and `prefix.bias` [rows] when the file has it (or must, with bias: 'required'). */
  linear(prefix: string, rows: number, cols: number, bias: 'optional' | 'required' | 'none' = 'optional'): Linear<T> {
    const b = bias === 'required' || (bias === 'optional' && this.has(`${prefix}.bias`)) ? this.vector(`${prefix}.bias`, rows) : undefined;
    return { w: this.matrix(`${prefix}.weight`, rows, cols), b, rows, cols };
  }

  /**
   * Row blocks of one fused matrix (Phi's and GPT-2's attn_qkv, Phi-3's gate+up) as separate Linears,
   * each a view of its rows (with its share of the bias), so that nothing is copied.
   */
  split(prefix: string, parts: number[], cols: number, bias: 'optional' | 'required' | 'none' = 'optional'): Linear<T>[] {
    const rows = parts.reduce((a, b) => a + b, 0);
    const withBias = bias === 'required' || (bias === 'optional' && this.has(`${prefix}.bias`));
    const b = withBias ? this.values(`${prefix}.bias`, rows) : undefined;
    let r0 = 0;
    return parts.map((n) => {
      const l: Linear<T> = { w: this.matrix(`${prefix}.weight`, rows, cols, r0, r0 + n), rows: n, cols, b: b ? this.backend.weight(b.slice(r0, r0 + n)) : undefined };
      r0 += n;
      return l;
    });
  }

  /**
   * A layer's attention in llama.cpp's names (every family uses them): attn_q / attn_k / attn_v, or the
   * fused attn_qkv split into views; attn_output; the per-head attn_q_norm / attn_k_norm RMSNorms where
   * the file has them. Biases: `required` (Qwen2), or, by default, all three of q/k/v where the file has
   * the q (or fused) one; the output projection's where it has it.
   */
  attention(prefix: string, s: { dim: number; nHeads: number; nKvHeads: number; headDim: number; eps: number }, bias: 'optional' | 'required' = 'optional'): AttentionWeights<T> {
    const qDim = s.nHeads * s.headDim;
    const kvDim = s.nKvHeads * s.headDim;
    const fused = this.has(`${prefix}attn_qkv.weight`);
    const b = bias === 'required' || this.has(`${prefix}${fused ? 'attn_qkv' : 'attn_q'}.bias`) ? 'required' : 'none';
    const [q, k, v] = fused
      ? this.split(`${prefix}attn_qkv`, [qDim, kvDim, kvDim], s.dim, b)
      : [this.linear(`${prefix}attn_q`, qDim, s.dim, b), this.linear(`${prefix}attn_k`, kvDim, s.dim, b), this.linear(`${prefix}attn_v`, kvDim, s.dim, b)];
    const norm = (name: string) => (this.has(`${prefix}${name}.weight`) ? this.rmsNorm(`${prefix}${name}`, s.headDim, s.eps) : undefined);
    return { q: q!, k: k!, v: v!, o: this.linear(`${prefix}attn_output`, s.dim, qDim), qNorm: norm('attn_q_norm'), kNorm: norm('attn_k_norm') };
  }

  /**
   * A layer's feed-forward in llama.cpp's names: ffn_gate + ffn_up (gated), or ffn_up alone (plain), or
   * ffn_up holding gate and up stacked (Phi-3's fused gate_up: split into two views); ffn_down.
   */
  ffn(prefix: string, dim: number, hidden: number, act: FfnWeights['act']): FfnWeights<T> {
    const down = this.linear(`${prefix}ffn_down`, dim, hidden);
    const hasGate = this.has(`${prefix}ffn_gate.weight`);
    const up = this.file.tensors.get(`${prefix}ffn_up.weight`);
    if (!hasGate && (act === 'silu' || act === 'gelu') && up?.shape[1] === 2 * hidden) {
      const [gate, upHalf] = this.split(`${prefix}ffn_up`, [hidden, hidden], dim);
      return { gate: gate!, up: upHalf!, down, act };
    }
    // SwiGLU has no ungated form: without ffn_gate, reading it names the missing tensor.
    if (hasGate || act === 'silu') return { gate: this.linear(`${prefix}ffn_gate`, hidden, dim), up: this.linear(`${prefix}ffn_up`, hidden, dim), down, act };
    return { up: this.linear(`${prefix}ffn_up`, hidden, dim), down, act };
  }

  /** The output head: output.weight (with output.bias where present), or the token embedding itself when the file ties them. */
  head(vocab: number, dim: number, tokenEmbd: T): Linear<T> {
    return this.has('output.weight') ? this.linear('output', vocab, dim) : { w: tokenEmbd, rows: vocab, cols: dim };
  }

  /** An RMSNorm of `dim` (`prefix.weight`). */
  rmsNorm(prefix: string, dim: number, eps: number): Norm<T> {
    return { kind: 'rms', w: this.vector(`${prefix}.weight`, dim), eps, dim };
  }

  /** A LayerNorm of `dim`: `prefix.weight` and `prefix.bias` (zeros when the file has none). */
  layerNorm(prefix: string, dim: number, eps: number): Norm<T> {
    return { kind: 'layer', w: this.vector(`${prefix}.weight`, dim), b: this.has(`${prefix}.bias`) ? this.vector(`${prefix}.bias`, dim) : this.zeros(dim), eps, dim };
  }

  /** MobileBERT's NoNorm of `dim`: `prefix.weight` and `prefix.bias`, no statistics. */
  noNorm(prefix: string, dim: number): Norm<T> {
    return { kind: 'affine', w: this.vector(`${prefix}.weight`, dim), b: this.vector(`${prefix}.bias`, dim), eps: 0, dim };
  }

  /** The same tensor (name and row range) read twice is uploaded once: a tied head is the embedding. */
  private once(key: string, make: () => T): T {
    let t = this.uploaded.get(key);
    if (!t) this.uploaded.set(key, (t = make()));
    return t;
  }

  /** Every matrix came from F16 tensors: the backend may keep the KV cache in f16 as well. */
  get allHalf(): boolean {
    return this.counts.half > 0 && this.counts.float === 0 && this.counts.quantized === 0;
  }
}
