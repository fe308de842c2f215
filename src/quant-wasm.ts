// WebAssembly SIMD kernels for quantized matrix-vector products, read straight from ggml's blocks:
// each block is unpacked in registers (bytes -> i16 -> i32 -> f32 lanes), multiplied with the f32
// input and summed in f32x4 partial sums, then scaled once per block or sub-block. The input stays
// f32 (no activation quantization), so these compute the dequantized product up to f32 rounding.
//
// Every kernel: (w, side, x, xsum, out, rowBytes, nBlocks, r0, r1), byte pointers into the shared
// memory; out[r] = W[r] . x for r in [r0, r1).
//   q8_0, q4_0  read the f16 block scale from the block itself (converted in the kernel).
//   q4_k        side: per super-block 16 f32 [scale0, min0, ..., scale7, min7] (d * sc, dmin * m,
//               unpacked once when the weight is loaded); xsum: the sum of each 32 inputs.
//   q6_k        side: per super-block 16 f32 scales (d * sc). xsum unused.
// Precision: f32 partial sums per block (4 lanes), then block sums scaled and added: error about
// (cols / 4) * 2^-24 * sum |w x|, like the f32 kernels.

import { F32, I32, V128, op, simd, uleb, vec, whileLess, hsum } from './wasm-emit.js';
import type { QuantMatrix } from './quant.js';
import { scaleMinK4 } from './q4_k.js';
import { f16ToF32, GGMLType } from './tensor.js';

/** Locals by name: the 9 parameters first, then what a kernel asks for. */
class Locals {
  private readonly types: number[] = [];
  private next = 9;
  add(type: number): number {
    this.types.push(type);
    return this.next++;
  }
  declaration(): number[] {
    const groups: number[][] = [];
    for (const t of this.types) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]!++;
      else groups.push([1, t]);
    }
    return vec(groups.map(([n, t]) => [...uleb(n!), t!]));
  }
}

const [W, SIDE, X, XSUM, OUT, ROW_BYTES, NBLOCKS, R, R1] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
const s = (name: keyof typeof simd) => op.simd(simd[name]);
const splat8 = (v: number) => [...op.i32(v), ...s('i8x16Splat')];
const load = (ptr: number, offset = 0) => [...op.get(ptr), ...op.v128Load(offset)];

/** Push the f32 value of the little-endian f16 at local `ptr` + offset (normal and subnormal; no inf/NaN in valid blocks). */
function f16At(ptr: number, offset: number, h: number, m: number): number[] {
  return [
    ...op.get(ptr), ...op.i32Load16u(offset), ...op.set(h),
    // normal: sign << 16 | (exponent and mantissa << 13) + (127 - 15) << 23
    ...op.get(h), ...op.i32(0x8000), ...op.i32And, ...op.i32(16), ...op.i32Shl,
    ...op.get(h), ...op.i32(0x7fff), ...op.i32And, ...op.i32(13), ...op.i32Shl, ...op.i32(0x38000000), ...op.i32Add,
    ...op.i32Or, ...op.f32ReinterpretI32,
    // subnormal: +-mantissa * 2^-24
    ...op.get(h), ...op.i32(0x3ff), ...op.i32And, ...op.set(m),
    ...op.i32(0), ...op.get(m), ...op.i32Sub, ...op.get(m), ...op.get(h), ...op.i32(0x8000), ...op.i32And, ...op.select,
    ...op.f32ConvertI32S, ...op.f32Const(2 ** -24), ...op.f32Mul,
    ...op.get(h), ...op.i32(0x7c00), ...op.i32And, ...op.select,
  ];
}

/** bs += the 16 signed bytes on the stack (as f32) times the 16 f32 inputs at local `x` + offset. */
function dot16(v: number, w16: number, bs: number, x: number, offset: number): number[] {
  const out: number[] = [...op.set(v)];
  for (const [half, ext] of [[0, 'i16x8ExtendLowS'], [1, 'i16x8ExtendHighS']] as const) {
    out.push(...op.get(v), ...s(ext), ...op.set(w16));
    for (const [q, ext32] of [[0, 'i32x4ExtendLowS'], [1, 'i32x4ExtendHighS']] as const)
      out.push(
        ...op.get(bs),
        ...op.get(w16), ...s(ext32), ...s('f32x4ConvertI32S'),
        ...load(x, offset + (half * 8 + q * 4) * 4), ...s('f32x4Mul'),
        ...s('f32x4Add'), ...op.set(bs),
      );
  }
  return out;
}

/** acc += bs * scale (scale pushed by `scale`). */
const scaleInto = (acc: number, bs: number, scale: number[]) => [...op.get(acc), ...op.get(bs), ...scale, ...s('f32x4Splat'), ...s('f32x4Mul'), ...s('f32x4Add'), ...op.set(acc)];
const zero = (v: number) => [...op.v128Zero, ...op.set(v)];
const addTo = (local: number, k: number) => [...op.get(local), ...op.i32(k), ...op.i32Add, ...op.set(local)];

/** The row loop shared by all kernels: per row, `perBlock` runs nBlocks times; the row's sum is hsum(acc) - minSum. */
function rowLoop(l: Locals, blockBytes: number, xStride: number, sideStride: number, xsumStride: number, perBlock: (p: { P: number; XP: number; S: number; XS: number; acc: number; minSum: number }) => number[]): number[] {
  const [P, XP, S, XS, B] = [l.add(I32), l.add(I32), l.add(I32), l.add(I32), l.add(I32)];
  const acc = l.add(V128);
  const minSum = l.add(F32);
  return whileLess(R, R1, 1, [
    ...op.get(W), ...op.get(R), ...op.get(ROW_BYTES), ...op.i32Mul, ...op.i32Add, ...op.set(P),
    ...op.get(SIDE), ...op.get(R), ...op.get(NBLOCKS), ...op.i32Mul, ...op.i32(sideStride), ...op.i32Mul, ...op.i32Add, ...op.set(S),
    ...op.get(X), ...op.set(XP), ...op.get(XSUM), ...op.set(XS),
    ...zero(acc), ...op.f32Zero, ...op.set(minSum), ...op.i32(0), ...op.set(B),
    ...whileLess(B, NBLOCKS, 1, [
      ...perBlock({ P, XP, S, XS, acc, minSum }),
      ...addTo(P, blockBytes), ...addTo(XP, xStride), ...addTo(S, sideStride), ...addTo(XS, xsumStride),
    ]),
    ...op.get(OUT), ...op.get(R), ...op.i32(4), ...op.i32Mul, ...op.i32Add,
    ...hsum(acc), ...op.get(minSum), ...op.f32Sub, ...op.f32Store,
  ]);
}

function kernel(build: (l: Locals) => number[]): number[] {
  const l = new Locals();
  const code = build(l);
  return [...l.declaration(), ...code, ...op.end];
}

function q8_0(): number[] {
  return kernel((l) => {
    const [h, m, v, w16, bs] = [l.add(I32), l.add(I32), l.add(V128), l.add(V128), l.add(V128)];
    return rowLoop(l, 34, 128, 0, 0, ({ P, XP, acc }) => [
      ...zero(bs),
      ...load(P, 2), ...dot16(v, w16, bs, XP, 0),
      ...load(P, 18), ...dot16(v, w16, bs, XP, 64),
      ...scaleInto(acc, bs, f16At(P, 0, h, m)),
    ]);
  });
}

function q4_0(): number[] {
  return kernel((l) => {
    const [h, m, q, v, w16, bs] = [l.add(I32), l.add(I32), l.add(V128), l.add(V128), l.add(V128), l.add(V128)];
    return rowLoop(l, 18, 128, 0, 0, ({ P, XP, acc }) => [
      ...zero(bs), ...load(P, 2), ...op.set(q),
      ...op.get(q), ...splat8(0x0f), ...s('v128And'), ...splat8(8), ...s('i8x16Sub'), ...dot16(v, w16, bs, XP, 0), // values 0..15
      ...op.get(q), ...op.i32(4), ...s('i8x16ShrU'), ...splat8(8), ...s('i8x16Sub'), ...dot16(v, w16, bs, XP, 64), // values 16..31
      ...scaleInto(acc, bs, f16At(P, 0, h, m)),
    ]);
  });
}

function q4_k(): number[] {
  return kernel((l) => {
    const [q0, q1, v, w16, bs] = [l.add(V128), l.add(V128), l.add(V128), l.add(V128), l.add(V128)];
    return rowLoop(l, 144, 1024, 64, 32, ({ P, XP, S, XS, acc, minSum }) => {
      const out: number[] = [];
      for (let g = 0; g < 4; g++) {
        out.push(...load(P, 16 + 32 * g), ...op.set(q0), ...load(P, 32 + 32 * g), ...op.set(q1));
        for (const [sub, nibble] of [[2 * g, 'low'], [2 * g + 1, 'high']] as const) {
          const pick = (q: number) => (nibble === 'low' ? [...op.get(q), ...splat8(0x0f), ...s('v128And')] : [...op.get(q), ...op.i32(4), ...s('i8x16ShrU')]);
          const xo = 128 * sub; // this sub-block's 32 inputs, in bytes
          out.push(
            ...zero(bs), ...pick(q0), ...dot16(v, w16, bs, XP, xo), ...pick(q1), ...dot16(v, w16, bs, XP, xo + 64),
            ...scaleInto(acc, bs, [...op.get(S), ...op.f32Load(8 * sub)]),
            // minus min * (sum of the sub-block's inputs), kept apart and subtracted at the end
            ...op.get(minSum), ...op.get(S), ...op.f32Load(8 * sub + 4), ...op.get(XS), ...op.f32Load(4 * sub), ...op.f32Mul, ...op.f32Add, ...op.set(minSum),
          );
        }
      }
      return out;
    });
  });
}

function q6_k(): number[] {
  return kernel((l) => {
    const [a, b, hi, v, w16, bs] = [l.add(V128), l.add(V128), l.add(V128), l.add(V128), l.add(V128), l.add(V128)];
    return rowLoop(l, 210, 1024, 64, 0, ({ P, XP, S, acc }) => {
      const out: number[] = [];
      for (let half = 0; half < 2; half++)
        for (let c = 0; c < 2; c++) {
          out.push(...load(P, 64 * half + 16 * c), ...op.set(a), ...load(P, 64 * half + 32 + 16 * c), ...op.set(b), ...load(P, 128 + 32 * half + 16 * c), ...op.set(hi));
          // q = (low 4 bits from a or b) | (2 bits of hi) << 4, minus 32
          const parts: [number, boolean, number, number][] = [[a, false, 0, 0], [b, false, 2, 32], [a, true, 4, 64], [b, true, 6, 96]];
          for (const [src, upper, shift, at] of parts) {
            const low4 = upper ? [...op.get(src), ...op.i32(4), ...s('i8x16ShrU')] : [...op.get(src), ...splat8(0x0f), ...s('v128And')];
            const high2 = [...op.get(hi), ...op.i32(shift), ...s('i8x16ShrU'), ...splat8(3), ...s('v128And'), ...op.i32(4), ...s('i8x16Shl')];
            const scaleIndex = 8 * half + c + shift; // ggml: sc[is + 0/2/4/6], is = l / 16 = c
            out.push(
              ...zero(bs), ...low4, ...high2, ...s('v128Or'), ...splat8(32), ...s('i8x16Sub'),
              ...dot16(v, w16, bs, XP, 4 * (128 * half + at + 16 * c)),
              ...scaleInto(acc, bs, [...op.get(S), ...op.f32Load(4 * scaleIndex)]),
            );
          }
        }
      return out;
    });
  });
}

/** The kernels' names, signature and bodies, for matmul-wasm.ts's module. */
export function quantKernels(): { name: string; params: number[]; body: number[] }[] {
  const params = new Array(9).fill(I32);
  return [
    { name: 'q8_0', params, body: q8_0() },
    { name: 'q4_0', params, body: q4_0() },
    { name: 'q4_k', params, body: q4_k() },
    { name: 'q6_k', params, body: q6_k() },
  ];
}

export interface QuantWasm {
  q8_0(w: number, side: number, x: number, xsum: number, out: number, rowBytes: number, nBlocks: number, r0: number, r1: number): void;
  q4_0(w: number, side: number, x: number, xsum: number, out: number, rowBytes: number, nBlocks: number, r0: number, r1: number): void;
  q4_k(w: number, side: number, x: number, xsum: number, out: number, rowBytes: number, nBlocks: number, r0: number, r1: number): void;
  q6_k(w: number, side: number, x: number, xsum: number, out: number, rowBytes: number, nBlocks: number, r0: number, r1: number): void;
}

/**
 * The per-sub-block scales (and mins) the K-quant kernels read, unpacked from the blocks once:
 * Q4_K 16 f32 per super-block [d*sc0, dmin*m0, ...], Q6_K 16 f32 per super-block [d*sc0, ...].
 * Empty for Q8_0 and Q4_0, whose kernels read the block's own f16 scale.
 */
export function wasmSideLength(m: QuantMatrix): number {
  return m.type === GGMLType.Q4_K || m.type === GGMLType.Q6_K ? m.rows * (m.cols / 256) * 16 : 0;
}

export function fillWasmSide(m: QuantMatrix, side: Float32Array): void {
  const blocks = m.rows * (m.cols / 256);
  for (let b = 0; b < blocks && m.type === GGMLType.Q4_K; b++) {
    const off = b * 144;
    const d = f16ToF32(m.data[off]! | (m.data[off + 1]! << 8));
    const dmin = f16ToF32(m.data[off + 2]! | (m.data[off + 3]! << 8));
    for (let j = 0; j < 8; j++) {
      const [sc, mn] = scaleMinK4(j, m.data, off + 4);
      side[16 * b + 2 * j] = d * sc;
      side[16 * b + 2 * j + 1] = dmin * mn;
    }
  }
  for (let b = 0; b < blocks && m.type === GGMLType.Q6_K; b++) {
    const off = b * 210;
    const d = f16ToF32(m.data[off + 208]! | (m.data[off + 209]! << 8));
    for (let k = 0; k < 16; k++) side[16 * b + k] = d * ((m.data[off + 192 + k]! << 24) >> 24);
  }
}

/** Sums of each 32 consecutive inputs, for the Q4_K kernel's min term: xsum[t][cols / 32]. */
export function fillXSums(x: Float32Array, n: number, cols: number, xsum: Float32Array): void {
  for (let t = 0; t < n; t++)
    for (let j = 0; j < cols / 32; j++) {
      let sum = 0;
      for (let i = 0; i < 32; i++) sum += x[t * cols + 32 * j + i]!;
      xsum[t * (cols / 32) + j] = sum;
    }
}
