// The Backend interface: the stages of a transformer, on tensors that live wherever the backend keeps
// them. model.ts calls stages by name; backend-cpu.ts runs them at once on Float32Arrays,
// backend-webgpu.ts records them as compute passes and submits one command buffer per forward step.

import type { AttentionShape } from './attention.js';
import type { RopeParams } from './rope.js';
import type { Candidates } from './sampling.js';
import type { QuantMatrix } from './quant.js';

/** A tensor handle: what it is depends on the backend (a Float32Array on the CPU, a GPU buffer on WebGPU). */
export type Handle = object;

export interface MatmulOp<T extends Handle> {
  /** [n][rows]; with `accumulate` the product is added to it (a residual add, fused). */
  out: T;
  w: T; // [rows][cols]
  x: T; // [n][cols]
  n: number;
  rows: number;
  cols: number;
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

  /** out[t] = table[tokens[t]], rows of `dim`. */
  embed(out: T, table: T, tokens: readonly number[], dim: number): void;
  /** out = x / rms(x) * w for n rows of dim. */
  rmsnorm(out: T, x: T, w: T, dim: number, eps: number, n: number): void;
  /** Independent products (a backend may run them together). */
  matmul(ops: MatmulOp<T>[]): void;
  /**
   * The gated FFN input: out = silu(Wgate x) * (Wup x) for n inputs, matrices [rows][cols]; `up` is
   * scratch of the same size that a backend may use (WebGPU fuses it into one pass when decoding).
   */
  gatedMatmul(out: T, wGate: T, wUp: T, x: T, up: T, n: number, rows: number, cols: number): void;
  /** Rotate n rows of nHeads heads, row t at position start + t. */
  rope(x: T, nHeads: number, start: number, n: number, p: RopeParams): void;
  /** dst rows [dstRow, dstRow + count) = src rows [srcRow, srcRow + count), rows of `width` floats (dst may be a KV cache). */
  copyRows(dst: T, dstRow: number, src: T, srcRow: number, count: number, width: number): void;
  /** Causal grouped-query attention of n queries at positions start.. over the cache. */
  attention(out: T, q: T, kCache: T, vCache: T, n: number, start: number, s: AttentionShape): void;
  /** out = (x - mean) / sqrt(var + eps) * w + b for n rows of dim (b: zeros when the model has no bias). */
  layernorm(out: T, x: T, w: T, b: T, dim: number, eps: number, n: number): void;
  /** Softmax of each of n rows of `length`, in place. */
  softmax(x: T, length: number, n: number): void;
  /** gate = silu(gate) * up over `length` elements. */
  swiglu(gate: T, up: T, length: number): void;
  /** x = gelu(x) (tanh approximation) over `length` elements. */
  gelu(x: T, length: number): void;

  /** Finish the step and read `length` floats of `src` back. */
  read(src: T, length: number): Promise<Float32Array>;
  /** Finish the step and return the index of the largest of `length` floats at src[offset..]. */
  argmax(src: T, offset: number, length: number): Promise<number>;
  /** Finish the step and return the k largest of `length` floats at src[offset..], sorted (ties: lower index first). */
  topk(src: T, offset: number, length: number, k: number): Promise<Candidates>;
  dispose(): void;
}
