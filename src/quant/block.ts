// What the block formats (q8_0.ts, q4_0.ts, q4_k.ts, q6_k.ts...) have in common: the QuantFormat
// contract each implements, the QuantMatrix they fill, ggml's rounding rules and the little-endian
// reads and writes of their layouts. A leaf module: the formats import it, and formats.ts (which lists
// them) imports them, so that no two modules import each other.

import { f16ToF32, type GGMLType } from '../base/tensor.js';

export type QuantType = GGMLType.Q8_0 | GGMLType.Q4_0 | GGMLType.Q4_1 | GGMLType.Q5_0 | GGMLType.Q5_1 | GGMLType.Q4_K | GGMLType.Q5_K | GGMLType.Q6_K;

/** One block format: its size and its two conversions, one block at a time. */
export interface QuantFormat {
  readonly type: QuantType;
  /** Values per block. */
  readonly blockSize: number;
  readonly blockBytes: number;
  /** Byte offsets of the block's f16 scales (d, and m / dmin where the format has one): the only values that can be NaN or Inf. */
  readonly scaleOffsets: readonly number[];
  /** out[o .. o + blockSize) = the block at src[off ..]. */
  dequantize(src: Uint8Array, off: number, out: Float32Array, o: number): void;
  /** The block at dst[off ..] = x[xo .. xo + blockSize), with ggml's reference rounding and scale choice. */
  quantize(x: Float32Array, xo: number, dst: Uint8Array, off: number): void;
  /** u32 words per block in the GPU layout (see the format's kernels/*.wgsl). */
  readonly gpuBlockWords: number;
  /** The block at src[off ..] in the GPU layout, at out[o ..]: scales as f32, codes in aligned words. */
  gpuWords(src: Uint8Array, off: number, out: Uint32Array, o: number): void;
}

/** A weight matrix [rows][cols] that stays quantized in memory. */
export interface QuantMatrix {
  readonly type: QuantType;
  readonly data: Uint8Array;
  readonly rows: number;
  readonly cols: number;
}

/** ggml's nearest_int: round to nearest, ties to even, in f32 (valid for |v| < 2^22). */
export function nearestInt(v: number): number {
  return Math.fround(Math.fround(v) + 12582912) - 12582912;
}

/** C's roundf: ties away from zero. */
export function roundAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/** The value of largest magnitude among x[xo .. xo + n), with its sign (the first such on ties). */
export function signedMax(x: Float32Array, xo: number, n: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < n; j++) {
    const v = x[xo + j]!;
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

/** The little-endian f16 at b[off], as a number. */
export function f16At(b: Uint8Array, off: number): number {
  return f16ToF32(b[off]! | (b[off + 1]! << 8));
}

const f32Bits = new Float32Array(1);
const u32Bits = new Uint32Array(f32Bits.buffer);
/** The bits of an f32 value, as the GPU layouts store scales. */
export function f32BitsOf(v: number): number {
  f32Bits[0] = v;
  return u32Bits[0]!;
}
/** Little-endian u32 from 4 bytes at b[off] (any alignment). */
export function wordAt(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

