// Quantized weights: the formats pocketlm reads, runs and writes (ggml's block layouts, bit for bit),
// and what they have in common. Each format's layout, dequantize and quantize live in its own module
// (q8_0.ts, q4_0.ts, q4_1.ts, q5_0.ts, q5_1.ts, q4_k.ts, q5_k.ts, q6_k.ts), its WGSL twin in kernels/ under the same name.
//
// A quantized matrix is stored row by row; each row of `cols` values is cols / blockSize blocks of
// blockBytes bytes, so rows never share a block (cols must be a multiple of the block size).

import { InvalidInputError } from '../base/errors.js';
import { GGMLType, typeName } from '../base/tensor.js';
import { Q4_0 } from './q4_0.js';
import { Q4_1 } from './q4_1.js';
import { Q5_0 } from './q5_0.js';
import { Q5_1 } from './q5_1.js';
import { Q4_K } from './q4_k.js';
import { Q5_K } from './q5_k.js';
import { Q6_K } from './q6_k.js';
import { Q8_0 } from './q8_0.js';
export { nearestInt, roundAway } from './block.js';
import type { QuantFormat, QuantMatrix, QuantType } from './block.js';
export type { QuantFormat, QuantMatrix, QuantType } from './block.js';

/** A quantized matrix in the GPU layout: rows of (cols / blockSize) * gpuBlockWords words. */
export function gpuLayout(m: QuantMatrix, r0 = 0, r1 = m.rows): Uint32Array {
  const f = QUANT_FORMATS[m.type];
  const nb = m.cols / f.blockSize;
  const rb = rowBytes(m.type, m.cols);
  const out = new Uint32Array((r1 - r0) * nb * f.gpuBlockWords);
  for (let r = r0; r < r1; r++)
    for (let b = 0; b < nb; b++) f.gpuWords(m.data, r * rb + b * f.blockBytes, out, ((r - r0) * nb + b) * f.gpuBlockWords);
  return out;
}

export const QUANT_FORMATS: Record<QuantType, QuantFormat> = {
  [GGMLType.Q8_0]: Q8_0,
  [GGMLType.Q4_0]: Q4_0,
  [GGMLType.Q4_1]: Q4_1,
  [GGMLType.Q5_0]: Q5_0,
  [GGMLType.Q5_1]: Q5_1,
  [GGMLType.Q4_K]: Q4_K,
  [GGMLType.Q5_K]: Q5_K,
  [GGMLType.Q6_K]: Q6_K,
};

export function isQuantType(type: number): type is QuantType {
  return type in QUANT_FORMATS;
}

export function isQuantMatrix(w: unknown): w is QuantMatrix {
  return typeof w === 'object' && w !== null && 'type' in w && 'data' in w && (w as QuantMatrix).data instanceof Uint8Array;
}

/** Bytes per row of `cols` values. */
export function rowBytes(type: QuantType, cols: number): number {
  const f = QUANT_FORMATS[type];
  if (cols % f.blockSize !== 0) throw new InvalidInputError(`${typeName(type)} needs rows of a multiple of ${f.blockSize} values, not ${cols}`);
  return (cols / f.blockSize) * f.blockBytes;
}

/** Quantize a row-major [rows][cols] f32 matrix. NaN or infinite values are refused (they have no block encoding). */
export function quantizeMatrix(type: QuantType, x: Float32Array, rows: number, cols: number, name = 'tensor'): QuantMatrix {
  const f = QUANT_FORMATS[type];
  const rb = rowBytes(type, cols);
  for (let i = 0; i < rows * cols; i++)
    if (!Number.isFinite(x[i]!)) throw new InvalidInputError(`${name} holds ${x[i]} at row ${Math.floor(i / cols)}, column ${i % cols}: NaN and infinite weights cannot be quantized (the model file is damaged?)`);
  const data = new Uint8Array(rows * rb);
  const check = new Float32Array(f.blockSize);
  for (let r = 0; r < rows; r++)
    for (let b = 0; b < cols / f.blockSize; b++) {
      f.quantize(x, r * cols + b * f.blockSize, data, r * rb + b * f.blockBytes);
      f.dequantize(data, r * rb + b * f.blockBytes, check, 0);
      if (!check.every(Number.isFinite))
        throw new InvalidInputError(`${name}, row ${r}, columns ${b * f.blockSize}..${(b + 1) * f.blockSize - 1}: values up to ${Math.max(...Array.from(x.subarray(r * cols + b * f.blockSize, r * cols + (b + 1) * f.blockSize), Math.abs))} are too large for ${typeName(type)}'s f16 scales`);
    }
  return { type, data, rows, cols };
}

/** Row r of a quantized matrix as f32, into out[o ..]. */
export function dequantizeRow(m: QuantMatrix, r: number, out: Float32Array, o = 0): void {
  const f = QUANT_FORMATS[m.type];
  const rb = rowBytes(m.type, m.cols);
  for (let b = 0; b < m.cols / f.blockSize; b++) f.dequantize(m.data, r * rb + b * f.blockBytes, out, o + b * f.blockSize);
}

/** The whole matrix as f32 (for tests and references; the engine never needs it). */
export function dequantizeMatrix(m: QuantMatrix): Float32Array {
  const out = new Float32Array(m.rows * m.cols);
  for (let r = 0; r < m.rows; r++) dequantizeRow(m, r, out, r * m.cols);
  return out;
}


/**
 * out[t][r] = W[r] . x[t] for rows [r0, r1) and n inputs, straight from the blocks: each block is
 * dequantized into a small buffer and used for all n inputs, never the whole matrix. Float64
 * accumulation, so this is the exact dequantized product rounded once (the reference for the
 * WebAssembly and WGSL kernels).
 */
export function quantMatmul(out: Float32Array, w: QuantMatrix, x: Float32Array, n: number, r0 = 0, r1 = w.rows): void {
  const f = QUANT_FORMATS[w.type];
  const rb = rowBytes(w.type, w.cols);
  const bs = f.blockSize;
  const tmp = new Float32Array(bs);
  const acc = new Float64Array(n);
  for (let r = r0; r < r1; r++) {
    acc.fill(0);
    for (let b = 0; b < w.cols / bs; b++) {
      f.dequantize(w.data, r * rb + b * f.blockBytes, tmp, 0);
      for (let t = 0; t < n; t++) {
        const xo = t * w.cols + b * bs;
        let s = 0;
        for (let i = 0; i < bs; i++) s += tmp[i]! * x[xo + i]!;
        acc[t] = acc[t]! + s;
      }
    }
    for (let t = 0; t < n; t++) out[t * w.rows + r] = acc[t]!;
  }
}

/**
 * The first non-finite value of a quantized matrix, if any: a block whose f16 scale is NaN or Inf
 * (exponent bits all ones). Codes are integers, so the scales are all there is to check: one read per
 * scale, cheap enough to do at load.
 */
export function firstNonFinite(m: QuantMatrix): { row: number; block: number } | undefined {
  const f = QUANT_FORMATS[m.type];
  const [d, step, end] = [m.data, f.blockBytes, m.data.byteLength];
  // (one strided pass per scale of the block: a load at load time runs this over every block of the
  // file, 4 million on a 135M Q4_0 model, before the loop is optimized)
  let first = Infinity;
  for (const o of f.scaleOffsets)
    for (let i = o + 1; i < end; i += step)
      if ((d[i]! & 0x7c) === 0x7c) {
        first = Math.min(first, (i - o - 1) / step);
        break;
      }
  if (first === Infinity) return undefined;
  const perRow = m.cols / f.blockSize;
  return { row: Math.floor(first / perRow), block: first % perRow };
}
