// Q5_1: blocks of 32 values, 24 bytes: d (f16) | m (f16) | qh (u32, little-endian: bit j = the 5th bit of
// value j) | 16 bytes of nibbles as in Q4_0; value = d * q + m, q in 0..31.
// Quantize (ggml's quantize_row_q5_1_ref): m = the block's minimum, d = (max - min) / 31,
// q = min(31, trunc((x - min) / d + 0.5)). Error per value: at most d/2 = (max - min) / 62 (plus the f16
// rounding of d and m).

import type { QuantFormat } from './block.js';
import { GGMLType } from '../base/tensor.js';
import { f16At, f32BitsOf, wordAt } from './block.js';
import { minMax, writeScaleMin } from './q4_1.js';

const fr = Math.fround;

export const Q5_1: QuantFormat = {
  type: GGMLType.Q5_1,
  blockSize: 32,
  blockBytes: 24,
  scaleOffsets: [0, 2],
  dequantize(src, off, out, o) {
    const [d, m] = [f16At(src, off), f16At(src, off + 2)];
    const qh = wordAt(src, off + 4);
    for (let j = 0; j < 16; j++) {
      const b = src[off + 8 + j]!;
      out[o + j] = fr(fr(((b & 0xf) | (((qh >>> j) & 1) << 4)) * d) + m);
      out[o + j + 16] = fr(fr(((b >> 4) | (((qh >>> (j + 16)) & 1) << 4)) * d) + m);
    }
  },
  quantize(x, xo, dst, off) {
    const [min, max] = minMax(x, xo, 32);
    const id = writeScaleMin(dst, off, min, max, 31);
    const q = (v: number) => Math.min(31, Math.trunc(fr(fr(fr(v - min) * id) + 0.5)));
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const [q0, q1] = [q(x[xo + j]!), q(x[xo + j + 16]!)];
      dst[off + 8 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      qh |= ((q0 >> 4) << j) | ((q1 >> 4) << (j + 16));
    }
    for (let k = 0; k < 4; k++) dst[off + 4 + k] = (qh >>> (8 * k)) & 0xff;
  },
  // GPU: [d as f32][m as f32][qh][16 bytes of nibbles in 4 words]
  gpuBlockWords: 7,
  gpuWords(src, off, out, o) {
    out[o] = f32BitsOf(f16At(src, off));
    out[o + 1] = f32BitsOf(f16At(src, off + 2));
    for (let k = 0; k < 5; k++) out[o + 2 + k] = wordAt(src, off + 4 + 4 * k);
  },
};
