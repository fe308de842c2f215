// Q5_K: super-blocks of 256 values, 176 bytes:
//   d (f16) | dmin (f16) | scales[12]: eight 6-bit scales and eight 6-bit mins, packed as Q4_K's |
//   qh[32]: the 5th bits | qs[128]: the low 4 bits
// The 256 values are 8 sub-blocks of 32; sub-block j has scale sc_j and min m_j (Q4_K's packing, see
// q4_k.ts), and value = d * sc_j * q - dmin * m_j, q in 0..31.
// Bits: in each 64-value group g, qs byte 32g + l holds value 64g + l (low nibble) and 64g + 32 + l
// (high nibble); their 5th bits are bits 2g and 2g + 1 of qh[l].
// Quantize (ggml's quantize_row_q5_K_ref): as Q4_K with 5-bit levels: per sub-block a weighted
// least-squares search for (scale, min) (make_qkx2_quants with nmax 31, weights av|x| + |x|, 16 candidate
// scales from rmin -0.5 in steps of 0.1), scales and mins to 6 bits against the block's largest, then
// each value re-rounded against the stored scale and min. Error per value: half a step d * sc_j, or a
// clamp at the grid's ends.

import type { QuantFormat } from './block.js';
import { wordAt } from './block.js';
import { gpuScaleWords, quantizeScalesK, subBlockScales } from './q4_k.js';
import { GGMLType } from '../base/tensor.js';

const fr = Math.fround;

export const Q5_K: QuantFormat = {
  type: GGMLType.Q5_K,
  blockSize: 256,
  blockBytes: 176,
  scaleOffsets: [0, 2],
  dequantize(src, off, out, o) {
    const sm = subBlockScales(src, off);
    for (let g = 0; g < 4; g++) {
      const [d1, dm1, d2, dm2] = [sm[4 * g]!, sm[4 * g + 1]!, sm[4 * g + 2]!, sm[4 * g + 3]!];
      for (let l = 0; l < 32; l++) {
        const q = src[off + 48 + 32 * g + l]!;
        const h = src[off + 16 + l]! >> (2 * g);
        out[o + 64 * g + l] = fr(fr(d1 * ((q & 0xf) | ((h & 1) << 4))) - dm1);
        out[o + 64 * g + 32 + l] = fr(fr(d2 * ((q >> 4) | ((h & 2) << 3))) - dm2);
      }
    }
  },
  quantize(x, xo, dst, off) {
    const L = quantizeScalesK(x, xo, dst, off, 31, -0.5, 15);
    dst.fill(0, off + 16, off + 48);
    for (let g = 0; g < 4; g++)
      for (let l = 0; l < 32; l++) {
        const [lo, hi] = [L[64 * g + l]!, L[64 * g + 32 + l]!];
        dst[off + 48 + 32 * g + l] = (lo & 0xf) | ((hi & 0xf) << 4);
        dst[off + 16 + l]! |= ((lo >> 4) << (2 * g)) | ((hi >> 4) << (2 * g + 1));
      }
  },
  // GPU: [8 scales d*sc_j as f32][8 mins dmin*m_j as f32][qh: 32 bytes in 8 words][qs: 128 bytes in 32 words]
  gpuBlockWords: 56,
  gpuWords(src, off, out, o) {
    gpuScaleWords(src, off, out, o);
    for (let k = 0; k < 40; k++) out[o + 16 + k] = wordAt(src, off + 16 + 4 * k);
  },
};
