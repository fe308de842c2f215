// Q6_K: super-blocks of 256 values, 210 bytes:
//   ql[128] (low 4 bits) | qh[64] (high 2 bits) | scales[16] (int8, one per 16 values) | d (f16)
// value = d * scale_k * (q - 32), q in 0..63 (6 bits).
// Bit layout, per half of 128 values (ql += 64, qh += 32, scales += 8 for the second half): for l < 32,
//   value l      = ql[l] & 15      | (qh[l] >> 0 & 3) << 4, scale[l / 16]
//   value l + 32 = ql[l + 32] & 15 | (qh[l] >> 2 & 3) << 4, scale[l / 16 + 2]
//   value l + 64 = ql[l] >> 4      | (qh[l] >> 4 & 3) << 4, scale[l / 16 + 4]
//   value l + 96 = ql[l + 32] >> 4 | (qh[l] >> 6 & 3) << 4, scale[l / 16 + 6]
// Quantize (ggml's reference): per 16 values a scale by make_qx_quants (weights x^2, 19 candidate
// scales), the scales to int8 against the largest (d = max / -128), then values re-rounded to -32..31.

import type { QuantFormat } from './block.js';
import { f16At, f32BitsOf, nearestInt, wordAt } from './block.js';
import { f16ToF32, f32ToF16, GGMLType } from '../base/tensor.js';

const fr = Math.fround;

/**
 * ggml's make_qx_quants with rmse_type 1: signed levels in -nmax..nmax-1 (stored + nmax in L) and
 * the scale that minimises the x^2-weighted squared error over 19 candidates. Returns the scale.
 */
export function makeQxQuants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number): number {
  let max = 0, amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]!);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i]!;
    }
  }
  if (amax < 1e-30) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  const level = (iscale: number, v: number) => Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * v)));
  let iscale = fr(-nmax / max);
  let sumLX = 0, sumL2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i]!;
    const l = level(iscale, v);
    L[lo + i] = l + nmax;
    sumLX += v * v * v * l;
    sumL2 += v * v * l * l;
  }
  let scale = sumLX / sumL2;
  let best = scale * sumLX;
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-(nmax + 0.1 * is) / max);
    sumLX = sumL2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i]!;
      const l = level(iscale, v);
      sumLX += v * v * v * l;
      sumL2 += v * v * l * l;
    }
    if (sumL2 > 0 && sumLX * sumLX > best * sumL2) {
      for (let i = 0; i < n; i++) L[lo + i] = nmax + level(iscale, x[xo + i]!);
      scale = sumLX / sumL2;
      best = scale * sumLX;
    }
  }
  return fr(scale);
}

export const Q6_K: QuantFormat = {
  type: GGMLType.Q6_K,
  blockSize: 256,
  blockBytes: 210,
  scaleOffsets: [208],
  dequantize(src, off, out, o) {
    const d = f16At(src, off + 208);
    for (let half = 0; half < 2; half++) {
      const ql = off + 64 * half, qh = off + 128 + 32 * half, sc = off + 192 + 8 * half, y = o + 128 * half;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = src[qh + l]!;
        const q1 = ((src[ql + l]! & 0xf) | ((h & 3) << 4)) - 32;
        const q2 = ((src[ql + l + 32]! & 0xf) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((src[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((src[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
        const s = (k: number) => fr(d * ((src[sc + is + k]! << 24) >> 24));
        out[y + l] = fr(s(0) * q1);
        out[y + l + 32] = fr(s(2) * q2);
        out[y + l + 64] = fr(s(4) * q3);
        out[y + l + 96] = fr(s(6) * q4);
      }
    }
  },
  quantize(x, xo, dst, off) {
    const L = new Int8Array(256);
    const scales = new Float64Array(16);
    let maxScale = 0, maxAbs = 0;
    for (let ib = 0; ib < 16; ib++) {
      const s = makeQxQuants(16, 32, x, xo + 16 * ib, L, 16 * ib);
      scales[ib] = s;
      if (Math.abs(s) > maxAbs) {
        maxAbs = Math.abs(s);
        maxScale = s;
      }
    }
    dst.fill(0, off, off + 210);
    if (maxAbs < 1e-30) return; // all zeros: d = 0
    const iscale = fr(-128 / maxScale);
    const hd = f32ToF16(fr(1 / iscale));
    dst[off + 208] = hd & 0xff;
    dst[off + 209] = hd >> 8;
    const d = f16ToF32(hd);
    for (let ib = 0; ib < 16; ib++) dst[off + 192 + ib] = Math.min(127, nearestInt(iscale * scales[ib]!)) & 0xff;
    for (let j = 0; j < 16; j++) {
      const dj = fr(d * ((dst[off + 192 + j]! << 24) >> 24));
      if (!dj) continue;
      for (let i = 0; i < 16; i++) L[16 * j + i] = Math.max(-32, Math.min(31, nearestInt(x[xo + 16 * j + i]! / dj))) + 32;
    }
    for (let half = 0; half < 2; half++) {
      const ql = off + 64 * half, qh = off + 128 + 32 * half, j = 128 * half;
      for (let l = 0; l < 32; l++) {
        const [a, b, c, e] = [L[j + l]!, L[j + l + 32]!, L[j + l + 64]!, L[j + l + 96]!];
        dst[ql + l] = (a & 0xf) | ((c & 0xf) << 4);
        dst[ql + l + 32] = (b & 0xf) | ((e & 0xf) << 4);
        dst[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
      }
    }
  },
  // GPU: [16 scales d*sc_k as f32][ql: 128 bytes in 32 words][qh: 64 bytes in 16 words]
  gpuBlockWords: 64,
  gpuWords(src, off, out, o) {
    const d = f16At(src, off + 208);
    for (let k = 0; k < 16; k++) out[o + k] = f32BitsOf(fr(d * ((src[off + 192 + k]! << 24) >> 24)));
    for (let k = 0; k < 48; k++) out[o + 16 + k] = wordAt(src, off + 4 * k);
  },
};
