// The Backend interface: the stages of a transformer, on tensors that live wherever the backend keeps
// them. model.ts calls stages by name; backend-cpu.ts runs them at once on Float32Arrays,
// backend-webgpu.ts records them as compute passes and submits one command buffer per forward step.

import type { AttentionShape } from '../stages/attention.js';
import type { Activation, GateActivation } from '../stages/ffn.js';
import type { RopeParams } from '../stages/rope.js';
import type { Candidates } from '../stages/sampling.js';
import type { StepRecorder } from '../stages/matmul.js';
import type { QuantMatrix } from '../quant/formats.js';

/** A tensor handle: what it is depends on the backend (a Float32Array on the CPU, a GPU buffer on WebGPU). */
export type Handle = object;

/** What ropeAttention applies to the packed projections before RoPE: q/k/v biases (Qwen2), per-head q/k RMSNorms (Qwen3, Gemma 3). */
export interface AttentionExtras<T extends Handle> {
  bias?: readonly [q: T, k: T, v: T];
  qNorm?: { w: T; eps: number };
  kNorm?: { w: T; eps: number };
}

/**
 * Rows still to be added to a tensor: `count` rows of its width one after another in `t` (the per-head
 * products of ropeAttention's projection, whose sum is Wo times attention's output).
 */
export interface PendingParts<T extends Handle> {
  t: T;
  count: number;
}

/** The output projection ropeAttention may take in: Wo [rows][nHeads * headDim]. */
export interface AttentionProjection<T extends Handle> {
  w: T;
  rows: number;
}

export interface MatmulOp<T extends Handle> {
  /** [n][rows]; with `accumulate` the product is added to it (a residual add, fused). */
  out: T;
  w: T; // [rows][cols]
  x: T; // [n][cols]
  n: number;
  rows: number;
  cols: number;
  accumulate?: boolean;
  /** [rows], added to every output row (a linear layer's bias). */
  bias?: T;
  /**
   * Only for a backend with `fusesNorm`: x holds raw rows, and the product is of rmsnorm(x) (as the
   * rmsnorm stage: weight w, eps), which the backend also stores in `out` for later readers. The
   * WebGPU backend folds the norm into the product's pass when decoding (n = 1).
   */
  norm?: NormFusion<T>;
  /** With accumulate: parts still owed to `out`, added before the product (out = out + parts + W x). */
  parts?: PendingParts<T>;
}

/** An RMSNorm folded into the product that reads its output (MatmulOp.norm, gatedMatmul). */
export interface NormFusion<T extends Handle> {
  w: T;
  eps: number;
  /** Where rmsnorm(x) is stored ([n][cols]). */
  out: T;
  /** Parts still owed to x (one row): the norm's input is x + parts (x itself is left as it is). */
  parts?: PendingParts<T>;
}

export interface EmbedOptions {
  /** Multiply the rows by this (Gemma scales its embeddings by sqrt(dim)). Default 1. */
  scale?: number;
  /** Add the rows to what `out` holds instead of storing them (learned position embeddings). */
  accumulate?: boolean;
}

export interface Backend<T extends Handle = Handle> {
  /** e.g. "cpu (2 threads)" or "webgpu (llvmpipe ...)". */
  readonly name: string;
  readonly device: 'cpu' | 'webgpu';
  /**
   * A weight, uploaded (or viewed) once; quantized matrices stay quantized (kernels read the blocks).
   * `half`: its values came from an f16 tensor, so a backend may
   * keep it in f16 without loss (the WebGPU backend does, with shader-f16). `rowLength`: for a matrix,
   * its row width, so that a backend may split it into row blocks (WebGPU, past maxStorageBufferBindingSize).
   */
  weight(data: Float32Array | QuantMatrix, half?: boolean, rowLength?: number): T;
  /** Scratch memory of `length` floats, zeroed. */
  scratch(length: number): T;
  /** One layer's K or V cache of `length` values; `half`: it may be kept in f16 (WebGPU with shader-f16). */
  kvCache(length: number, half?: boolean): T;

  /** out[t] = table[tokens[t]] (* scale), rows of `dim`; with `accumulate`, added to out[t]. */
  embed(out: T, table: T, tokens: readonly number[], dim: number, options?: EmbedOptions): void;
  /** out = x / rms(x) * w for n rows of dim (out may be x). */
  rmsnorm(out: T, x: T, w: T, dim: number, eps: number, n: number): void;
  /** Optional: rmsnorm(out, x, ...) then sum += out over the n rows, as one stage (out, x and sum three tensors). */
  rmsnormAdd?(out: T, x: T, w: T, dim: number, eps: number, n: number, sum: T): void;
  /** Independent products (a backend may run them together). */
  matmul(ops: MatmulOp<T>[]): void;
  /**
   * The gated FFN input: out = act(Wgate x) * (Wup x) for n inputs, matrices [rows][cols], act silu
   * (SwiGLU) or gelu (GeGLU); `up` is scratch of the same size that a backend may use (WebGPU fuses
   * it into one pass when decoding).
   */
  gatedMatmul(out: T, wGate: T, wUp: T, x: T, up: T, n: number, rows: number, cols: number, act?: GateActivation, norm?: NormFusion<T>): void;
  /** Whether matmul and gatedMatmul take `norm` (an RMSNorm folded in; see MatmulOp.norm). */
  readonly fusesNorm?: boolean;
  /**
   * The most prompt tokens of one sequence a prefill step takes (default and at least MAX_BATCH, 32):
   * larger steps read each weight once for more tokens (the CPU and WebGPU backends take 128).
   */
  readonly prefillRows?: number;
  /**
   * Optional: records a decode step's work and replays it for the next ones (the CPU's WebAssembly
   * executor: its kernel calls and hand-offs, without the JavaScript of the stages that chose them).
   * While it records, the stages that depend on the step's tokens or positions (embed, rope, copyRows,
   * attention) run inside `recorder.live` (Forward does so) or spoil the recording.
   */
  readonly recorder?: StepRecorder;
  /**
   * Optional, for one row (decode): out = [Wq | Wk | Wv] rmsnorm(x) in one pass (WebGPU: two where Wv's
   * format differs from Wq's and Wk's), q, k and v packed in one buffer (ropeAttention takes them so).
   * Returns false, having done nothing, where the matrices do not allow it.
   */
  projectQKV?(out: T, wq: T, wk: T, wv: T, x: T, qRows: number, kvRows: number, cols: number, norm: NormFusion<T>): boolean;
  /** Rotate rows [row0, row0 + n) of nHeads heads, row row0 + t at position start + t. */
  rope(x: T, nHeads: number, start: number, n: number, p: RopeParams, row0?: number): void;
  /**
   * Optional fusion of rope(q), rope(k) and the two cache writes of copyRows: rows [row0, row0 + n) of q
   * rotated in place (positions start..), those of k rotated into kCache and those of v copied into
   * vCache at rows start.. (k itself unchanged); p undefined: no rotation. A backend that dispatches
   * each stage (WebGPU) saves four dispatches a layer.
   */
  ropeCache?(q: T, k: T, v: T, kCache: T, vCache: T, nHeads: number, nKvHeads: number, headDim: number, start: number, n: number, p: RopeParams | undefined, row0?: number): void;
  /**
   * Optional, for one decode row after projectQKV, heads of a size takesRopeAttention accepts: what
   * comes between the projections and attention's output, as one stage (WebGPU: one dispatch instead of
   * up to six): the packed [q | k | v] plus the biases, q and k RMSNormed per head (`extra`), q and k
   * rotated (p; undefined: no rotation), k and v written to the caches at `start`, then causal attention
   * of q over the caches into out. With `project` (where projectsAttention says so), also Wo's product:
   * out then holds nHeads rows of project.rows, head h's output times Wo's columns for head h, whose sum
   * is Wo times attention's output; a later product takes them in (MatmulOp.parts, NormFusion.parts) or
   * addParts adds them (WebGPU: one dispatch instead of two).
   */
  ropeAttention?(out: T, qkv: T, kCache: T, vCache: T, start: number, s: AttentionShape, p: RopeParams | undefined, extra?: AttentionExtras<T>, project?: AttentionProjection<T>): void;
  /** Whether ropeAttention takes heads of this size. */
  takesRopeAttention?(headDim: number): boolean;
  /** Whether ropeAttention can take the projection by w in (with a backend that has both). */
  projectsAttention?(w: T, s: AttentionShape): boolean;
  /** x (one row of `width`) += the parts' rows, in order. Required with projectsAttention. */
  addParts?(x: T, parts: PendingParts<T>, width: number): void;
  /** dst rows [dstRow, dstRow + count) = src rows [srcRow, srcRow + count), rows of `width` floats (dst may be a KV cache). */
  copyRows(dst: T, dstRow: number, src: T, srcRow: number, count: number, width: number): void;
  /**
   * Causal grouped-query attention of n queries (rows [row0, row0 + n) of q, into the same rows of
   * out) at positions start.. over the cache (scale, soft-cap and window as `s` says).
   */
  attention(out: T, q: T, kCache: T, vCache: T, n: number, start: number, s: AttentionShape, row0?: number): void;
  /** out = (x - mean) / sqrt(var + eps) * w + b for n rows of dim (b: zeros when the model has no bias; out may be x). */
  layernorm(out: T, x: T, w: T, b: T, dim: number, eps: number, n: number): void;
  /** Give back a scratch, KV cache or weight made for one use (a finished sequence's cache, inspection's copies); backends that cannot free ignore it. */
  release?(t: T): void;
  /** out = x * w + b per element of n rows of dim (MobileBERT's NoNorm; out may be x). */
  affine(out: T, x: T, w: T, b: T, dim: number, n: number): void;
  /** Softmax of each of n rows of `length`, in place. */
  softmax(x: T, length: number, n: number): void;
  /** gate = act(gate) * up over `length` elements (SwiGLU, GeGLU). */
  gated(gate: T, up: T, length: number, act: GateActivation): void;
  /** x = act(x) over `length` elements (an ungated FFN's hidden layer). */
  activate(x: T, length: number, act: Activation): void;
  /** out += x over `length` elements (the residual stream). */
  add(out: T, x: T, length: number): void;
  /** x = cap * tanh(x / cap) over `length` elements (final logit soft-capping). */
  softcap(x: T, length: number, cap: number): void;

  /** Finish the step and read `length` floats of `src` back. */
  read(src: T, length: number): Promise<Float32Array>;
  /** Finish the step and return the index of the largest of `length` floats at src[offset..]; -1 if any is NaN or infinite. */
  argmax(src: T, offset: number, length: number): Promise<number>;
  /**
   * Finish the step and return the k largest of `length` floats at src[offset..], sorted (ties: lower
   * index first); none if any is NaN or infinite.
   */
  topk(src: T, offset: number, length: number, k: number): Promise<Candidates>;
  dispose(): void;
}
