// Q4_K: super-blocks of 256 values, 144 bytes:
//   d (f16) | dmin (f16) | scales[12]: eight 6-bit scales and eight 6-bit mins, packed | qs[128]
// The 256 values are 8 sub-blocks of 32; sub-block j has scale sc_j and min m_j, and
//   value = d * sc_j * q - dmin * m_j, q in 0..15.
// Packing of scales (ggml's get_scale_min_k4): for j < 4, sc_j = s[j] & 63 and m_j = s[j + 4] & 63;
// for j >= 4, sc_j = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4 and m_j = (s[j + 4] >> 4) | (s[j] >> 6) << 4.
// Nibbles: qs byte l of each 32-byte group g (64 values) holds value 64g + l (low) and 64g + 32 + l (high).
// Quantize (ggml's reference): per sub-block, a weighted least-squares search for (scale, min)
// (make_qkx2_quants, weights av|x| + |x|, 20 steps), then scales and mins to 6 bits against the block's
// largest, then each value re-rounded against the stored scale and min.

import type { QuantFormat } from './block.js';
import { f16At, f32BitsOf, nearestInt, wordAt } from './block.js';
import { f16ToF32, f32ToF16, GGMLType } from '../base/tensor.js';

const fr = Math.fround;

/** Scale and min of sub-block j from the 12 packed bytes at s[off ..]. */
export function scaleMinK4(j: number, s: Uint8Array, off: number): [number, number] {
  if (j < 4) return [s[off + j]! & 63, s[off + j + 4]! & 63];
  return [(s[off + j + 4]! & 0xf) | ((s[off + j - 4]! >> 6) << 4), (s[off + j + 4]! >> 4) | ((s[off + j]! >> 6) << 4)];
}

/**
 * A Q4_K / Q5_K super-block's 8 sub-block scales and mins as f32, interleaved:
 * [d * sc_0, dmin * m_0, d * sc_1, dmin * m_1, ...] (the values the kernels multiply with).
 */
export function subBlockScales(src: Uint8Array, off: number): Float32Array {
  const d = f16At(src, off);
  const dmin = f16At(src, off + 2);
  const out = new Float32Array(16);
  for (let j = 0; j < 8; j++) {
    const [sc, m] = scaleMinK4(j, src, off + 4);
    out[2 * j] = d * sc;
    out[2 * j + 1] = dmin * m;
  }
  return out;
}

/** GPU layout of those scales: words 0..7 the scales, 8..15 the mins (f32 bits). */
export function gpuScaleWords(src: Uint8Array, off: number, out: Uint32Array, o: number): void {
  const sm = subBlockScales(src, off);
  for (let j = 0; j < 8; j++) {
    out[o + j] = f32BitsOf(sm[2 * j]!);
    out[o + 8 + j] = f32BitsOf(sm[2 * j + 1]!);
  }
}

/**
 * ggml's make_qkx2_quants: levels L[i] in 0..nmax and (scale, min) with x ~ scale * L - min, chosen by
 * weighted least squares over nstep + 1 candidate scales. Returns [scale, min] (min >= 0).
 */
export function makeQkx2Quants(n: number, nmax: number, x: Float32Array, xo: number, w: Float64Array, L: Uint8Array, lo: number, rmin: number, rdelta: number, nstep: number): [number, number] {
  let min = x[xo]!, max = x[xo]!, sumW = w[0]!, sumX = sumW * x[xo]!;
  for (let i = 1; i < n; i++) {
    const v = x[xo + i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    sumW += w[i]!;
    sumX += w[i]! * v;
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    return [0, -min];
  }
  let iscale = fr(nmax / (max - min));
  let scale = fr(1 / iscale);
  let best = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(iscale * (x[xo + i]! - min))));
    L[lo + i] = l;
    const diff = scale * l + min - x[xo + i]!;
    best += w[i]! * diff * diff;
  }
  const aux = new Uint8Array(n);
  for (let is = 0; is <= nstep; is++) {
    iscale = fr((rmin + rdelta * is + nmax) / (max - min));
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(0, Math.min(nmax, nearestInt(iscale * (x[xo + i]! - min))));
      aux[i] = l;
      sumL += w[i]! * l;
      sumL2 += w[i]! * l * l;
      sumXL += w[i]! * l * x[xo + i]!;
    }
    const D = sumW * sumL2 - sumL * sumL;
    if (D > 0) {
      let thisScale = (sumW * sumXL - sumX * sumL) / D;
      let thisMin = (sumL2 * sumX - sumL * sumXL) / D;
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = sumXL / sumL2;
      }
      let err = 0;
      for (let i = 0; i < n; i++) {
        const diff = thisScale * aux[i]! + thisMin - x[xo + i]!;
        err += w[i]! * diff * diff;
      }
      if (err < best) {
        L.set(aux, lo);
        best = err;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [fr(scale), fr(-min)];
}

/**
 * The part of ggml's Q4_K and Q5_K quantizers they share: per sub-block of 32 a weighted least-squares
 * (scale, min) (make_qkx2_quants with levels 0..nmax, weights av|x| + |x|, nstep + 1 candidate scales
 * from rmin), scales and mins to 6 bits against the block's largest, written with d and dmin to
 * dst[off .. off + 16); then each value re-rounded against the stored scale and min. Returns the 256 levels.
 */
export function quantizeScalesK(x: Float32Array, xo: number, dst: Uint8Array, off: number, nmax: number, rmin: number, nstep: number): Uint8Array {
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
    [scales[j], mins[j]] = makeQkx2Quants(32, nmax, x, xo + 32 * j, w, L, 32 * j, rmin, 0.1, nstep);
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
    for (let i = 0; i < 32; i++) L[32 * j + i] = Math.max(0, Math.min(nmax, nearestInt(fr(x[xo + 32 * j + i]! + dm) / dj)));
  }
  return L;
}

export const Q4_K: QuantFormat = {
  type: GGMLType.Q4_K,
  blockSize: 256,
  blockBytes: 144,
  scaleOffsets: [0, 2],
  dequantize(src, off, out, o) {
    const sm = subBlockScales(src, off);
    for (let g = 0; g < 4; g++) {
      const [d1, dm1, d2, dm2] = [sm[4 * g]!, sm[4 * g + 1]!, sm[4 * g + 2]!, sm[4 * g + 3]!];
      for (let l = 0; l < 32; l++) {
        const q = src[off + 16 + 32 * g + l]!;
        out[o + 64 * g + l] = fr(fr(d1 * (q & 0xf)) - dm1);
        out[o + 64 * g + 32 + l] = fr(fr(d2 * (q >> 4)) - dm2);
      }
    }
  },
  quantize(x, xo, dst, off) {
    const L = quantizeScalesK(x, xo, dst, off, 15, -1, 20);
    for (let g = 0; g < 4; g++)
      for (let l = 0; l < 32; l++) dst[off + 16 + 32 * g + l] = L[64 * g + l]! | (L[64 * g + 32 + l]! << 4);
  },
  // GPU: [8 scales d*sc_j as f32][8 mins dmin*m_j as f32][128 bytes of nibbles in 32 words]
  gpuBlockWords: 48,
  gpuWords(src, off, out, o) {
    gpuScaleWords(src, off, out, o);
    for (let k = 0; k < 32; k++) out[o + 16 + k] = wordAt(src, off + 16 + 4 * k);
  },
};
