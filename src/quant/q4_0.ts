// Q4_0: blocks of 32 values, 18 bytes: d (f16) then 16 bytes; byte j holds value j in its low nibble
// and value j + 16 in its high nibble; value = d * (q - 8), q in 0..15.
// Quantize (ggml's reference): m = the value of largest magnitude (with its sign), d = m / -8, so m
// maps to q = 0 exactly; q = min(15, trunc(x / d + 8.5)). Error per value: at most |d|/2 = max|x| / 16,
// except that values beyond the 15 side are clamped (at most |d| away).

import type { QuantFormat } from './block.js';
import { f32ToF16, GGMLType } from '../base/tensor.js';
import { f16At, f32BitsOf, signedMax, wordAt } from './block.js';

const fr = Math.fround;

export const Q4_0: QuantFormat = {
  type: GGMLType.Q4_0,
  blockSize: 32,
  blockBytes: 18,
  scaleOffsets: [0],
  dequantize(src, off, out, o) {
    const d = f16At(src, off);
    for (let j = 0; j < 16; j++) {
      const b = src[off + 2 + j]!;
      out[o + j] = fr(((b & 0xf) - 8) * d);
      out[o + j + 16] = fr(((b >> 4) - 8) * d);
    }
  },
  quantize(x, xo, dst, off) {
    const d = fr(signedMax(x, xo, 32) / -8);
    const id = d ? fr(1 / d) : 0;
    const h = f32ToF16(d);
    dst[off] = h & 0xff;
    dst[off + 1] = h >> 8;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(fr(fr(x[xo + j]! * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(fr(fr(x[xo + j + 16]! * id) + 8.5)));
      dst[off + 2 + j] = q0 | (q1 << 4);
    }
  },
  // GPU: [d as f32][16 bytes of nibbles in 4 words]
  gpuBlockWords: 5,
  gpuWords(src, off, out, o) {
    out[o] = f32BitsOf(f16At(src, off));
    for (let k = 0; k < 4; k++) out[o + 1 + k] = wordAt(src, off + 2 + 4 * k);
  },
};
