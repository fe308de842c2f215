// Q4_1: blocks of 32 values, 20 bytes: d (f16) | m (f16) | 16 bytes of nibbles as in Q4_0 (byte j: value
// j low, value j + 16 high); value = d * q + m, q in 0..15.
// Quantize (ggml's quantize_row_q4_1_ref): m = the block's minimum, d = (max - min) / 15,
// q = min(15, trunc((x - min) / d + 0.5)). Error per value: at most d/2 = (max - min) / 30 (plus the f16
// rounding of d and m).

import type { QuantFormat } from './block.js';
import { f32ToF16, GGMLType } from '../base/tensor.js';
import { f16At, f32BitsOf, wordAt } from './block.js';

const fr = Math.fround;

/** The block's [min, max] over x[xo .. xo + n). */
export function minMax(x: Float32Array, xo: number, n: number): [number, number] {
  let min = Infinity, max = -Infinity;
  for (let j = 0; j < n; j++) {
    const v = x[xo + j]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

/** Write the f16 scale d and offset m at dst[off ..]; returns the f32 factor 1/d (0 when d = 0). */
export function writeScaleMin(dst: Uint8Array, off: number, min: number, max: number, levels: number): number {
  const d = fr((max - min) / levels);
  const [hd, hm] = [f32ToF16(d), f32ToF16(min)];
  dst[off] = hd & 0xff;
  dst[off + 1] = hd >> 8;
  dst[off + 2] = hm & 0xff;
  dst[off + 3] = hm >> 8;
  return d ? fr(1 / d) : 0;
}

export const Q4_1: QuantFormat = {
  type: GGMLType.Q4_1,
  blockSize: 32,
  blockBytes: 20,
  scaleOffsets: [0, 2],
  dequantize(src, off, out, o) {
    const [d, m] = [f16At(src, off), f16At(src, off + 2)];
    for (let j = 0; j < 16; j++) {
      const b = src[off + 4 + j]!;
      out[o + j] = fr(fr((b & 0xf) * d) + m);
      out[o + j + 16] = fr(fr((b >> 4) * d) + m);
    }
  },
  quantize(x, xo, dst, off) {
    const [min, max] = minMax(x, xo, 32);
    const id = writeScaleMin(dst, off, min, max, 15);
    const q = (v: number) => Math.min(15, Math.trunc(fr(fr(fr(v - min) * id) + 0.5)));
    for (let j = 0; j < 16; j++) dst[off + 4 + j] = q(x[xo + j]!) | (q(x[xo + j + 16]!) << 4);
  },
  // GPU: [d as f32][m as f32][16 bytes of nibbles in 4 words]
  gpuBlockWords: 6,
  gpuWords(src, off, out, o) {
    out[o] = f32BitsOf(f16At(src, off));
    out[o + 1] = f32BitsOf(f16At(src, off + 2));
    for (let k = 0; k < 4; k++) out[o + 2 + k] = wordAt(src, off + 4 + 4 * k);
  },
};
