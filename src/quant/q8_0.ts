// Q8_0: blocks of 32 values, 34 bytes: d (f16) then 32 signed bytes q; value = d * q.
// Quantize (ggml's reference): d = max|x| / 127, q = roundf(x / d) (ties away from zero).
// Error per value: at most d/2 = max|x| / 254 (plus d's f16 rounding, relative 2^-11).

import type { QuantFormat } from './block.js';
import { f16At, f32BitsOf, roundAway, wordAt } from './block.js';
import { f32ToF16, GGMLType } from '../base/tensor.js';

const fr = Math.fround;

export const Q8_0: QuantFormat = {
  type: GGMLType.Q8_0,
  blockSize: 32,
  blockBytes: 34,
  scaleOffsets: [0],
  dequantize(src, off, out, o) {
    const d = f16At(src, off);
    for (let j = 0; j < 32; j++) out[o + j] = fr(d * ((src[off + 2 + j]! << 24) >> 24));
  },
  quantize(x, xo, dst, off) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[xo + j]!));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    const h = f32ToF16(d);
    dst[off] = h & 0xff;
    dst[off + 1] = h >> 8;
    for (let j = 0; j < 32; j++) dst[off + 2 + j] = roundAway(fr(x[xo + j]! * id)) & 0xff;
  },
  // GPU: [d as f32][32 int8 codes in 8 words]
  gpuBlockWords: 9,
  gpuWords(src, off, out, o) {
    out[o] = f32BitsOf(f16At(src, off));
    for (let k = 0; k < 8; k++) out[o + 1 + k] = wordAt(src, off + 2 + 4 * k);
  },
};
