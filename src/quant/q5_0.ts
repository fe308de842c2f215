// Q5_0: blocks of 32 values, 22 bytes: d (f16) | qh (u32, little-endian: bit j = the 5th bit of value j)
// | 16 bytes of nibbles as in Q4_0 (byte j: value j low, value j + 16 high); value = d * (q - 16), q in 0..31.
// Quantize (ggml's reference): m = the value of largest magnitude (with its sign), d = m / -16, so m
// maps to q = 0; q = min(31, trunc(x / d + 16.5)). Error per value: at most |d|/2 = max|x| / 32, a
// whole step where 32 clamps to 31. llama.cpp writes Q5_0 where a K-quant's 256-value blocks do not fit.

import type { QuantFormat } from './block.js';
import { f32ToF16, GGMLType } from '../base/tensor.js';
import { f16At, f32BitsOf, signedMax, wordAt } from './block.js';

const fr = Math.fround;

export const Q5_0: QuantFormat = {
  type: GGMLType.Q5_0,
  blockSize: 32,
  blockBytes: 22,
  scaleOffsets: [0],
  dequantize(src, off, out, o) {
    const d = f16At(src, off);
    const qh = wordAt(src, off + 2);
    for (let j = 0; j < 16; j++) {
      const b = src[off + 6 + j]!;
      out[o + j] = fr((((b & 0xf) | (((qh >>> j) & 1) << 4)) - 16) * d);
      out[o + j + 16] = fr((((b >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * d);
    }
  },
  quantize(x, xo, dst, off) {
    const d = fr(signedMax(x, xo, 32) / -16);
    const id = d ? fr(1 / d) : 0;
    const h = f32ToF16(d);
    dst[off] = h & 0xff;
    dst[off + 1] = h >> 8;
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(31, Math.trunc(fr(fr(x[xo + j]! * id) + 16.5)));
      const q1 = Math.min(31, Math.trunc(fr(fr(x[xo + j + 16]! * id) + 16.5)));
      dst[off + 6 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      qh |= ((q0 >> 4) << j) | ((q1 >> 4) << (j + 16));
    }
    for (let k = 0; k < 4; k++) dst[off + 2 + k] = (qh >>> (8 * k)) & 0xff;
  },
  // GPU: [d as f32][qh][16 bytes of nibbles in 4 words]
  gpuBlockWords: 6,
  gpuWords(src, off, out, o) {
    out[o] = f32BitsOf(f16At(src, off));
    out[o + 1] = wordAt(src, off + 2);
    for (let k = 0; k < 4; k++) out[o + 2 + k] = wordAt(src, off + 6 + 4 * k);
  },
};
