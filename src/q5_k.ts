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

import type { QuantFormat } from './quant.js';
import { f16At, f32BitsOf, nearestInt, wordAt } from './block.js';
import { makeQkx2Quants, scaleMinK4 } from './q4_k.js';
import { f16ToF32, f32ToF16, GGMLType } from './tensor.js';

const fr = Math.fround;

export const Q5_K: QuantFormat = {
  type: GGMLType.Q5_K,
  blockSize: 256,
  blockBytes: 176,
  dequantize(src, off, out, o) {
    const d = f16At(src, off);
    const dmin = f16At(src, off + 2);
    for (let g = 0; g < 4; g++) {
      const [sc1, m1] = scaleMinK4(2 * g, src, off + 4);
      const [sc2, m2] = scaleMinK4(2 * g + 1, src, off + 4);
      const [d1, dm1, d2, dm2] = [fr(d * sc1), fr(dmin * m1), fr(d * sc2), fr(dmin * m2)];
      for (let l = 0; l < 32; l++) {
        const q = src[off + 48 + 32 * g + l]!;
        const h = src[off + 16 + l]! >> (2 * g);
        out[o + 64 * g + l] = fr(fr(d1 * ((q & 0xf) | ((h & 1) << 4))) - dm1);
        out[o + 64 * g + 32 + l] = fr(fr(d2 * ((q >> 4) | ((h & 2) << 3))) - dm2);
      }
    }
  },
  quantize(x, xo, dst, off) {
    const L = new Uint8Array(256);
    const w = new Float64Array(32);
    const scales = new Float64Array(8);
    const mins = new Float64Array(8);
    let maxScale = 0, maxMin = 0;
    for (let j = 0; j < 8; j++) {
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) sumX2 += x[xo + 32 * j + l]! ** 2;
      const av = Math.sqrt(sumX2 / 32);
      for (let l = 0; l < 32; l++) w[l] = av + Math.abs(x[xo + 32 * j + l]!);
      [scales[j], mins[j]] = makeQkx2Quants(32, 31, x, xo + 32 * j, w, L, 32 * j, -0.5, 0.1, 15);
      maxScale = Math.max(maxScale, scales[j]!);
      maxMin = Math.max(maxMin, mins[j]!);
    }
    const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
    const s = dst.subarray(off + 4, off + 16);
    s.fill(0);
    for (let j = 0; j < 8; j++) {
      const ls = Math.min(63, nearestInt(invScale * scales[j]!));
      const lm = Math.min(63, nearestInt(invMin * mins[j]!));
      if (j < 4) {
        s[j] = ls;
        s[j + 4] = lm;
      } else {
        s[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
        s[j - 4]! |= (ls >> 4) << 6;
        s[j]! |= (lm >> 4) << 6;
      }
    }
    const hd = f32ToF16(fr(maxScale / 63));
    const hm = f32ToF16(fr(maxMin / 63));
    dst[off] = hd & 0xff;
    dst[off + 1] = hd >> 8;
    dst[off + 2] = hm & 0xff;
    dst[off + 3] = hm >> 8;
    const d = f16ToF32(hd);
    const dmin = f16ToF32(hm);
    for (let j = 0; j < 8; j++) {
      const [sc, m] = scaleMinK4(j, dst, off + 4);
      const dj = fr(d * sc);
      if (!dj) continue;
      const dm = fr(dmin * m);
      for (let i = 0; i < 32; i++) L[32 * j + i] = Math.max(0, Math.min(31, nearestInt(fr(x[xo + 32 * j + i]! + dm) / dj)));
    }
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
    const d = f16At(src, off);
    const dmin = f16At(src, off + 2);
    for (let j = 0; j < 8; j++) {
      const [sc, m] = scaleMinK4(j, src, off + 4);
      out[o + j] = f32BitsOf(fr(d * sc));
      out[o + 8 + j] = f32BitsOf(fr(dmin * m));
    }
    for (let k = 0; k < 40; k++) out[o + 16 + k] = wordAt(src, off + 16 + 4 * k);
  },
};
