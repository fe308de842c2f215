// WebAssembly SIMD kernels for quantized matrix-vector products, read straight from ggml's blocks:
// each block is unpacked in registers (bytes -> i16 -> i32 -> f32 lanes; Q8_0, Q4_0, Q4_K and Q6_K by shifts within
// the i32 lanes, reading inputs permuted to match: see dotLanes), multiplied with the f32 input and
// summed in f32x4 partial sums, then scaled once per block or sub-block. The input stays f32 (no
// activation quantization), so these compute the dequantized product up to f32 rounding.
//
// Every kernel: (w, side, x, xsum, out, rowBytes, nBlocks, r0, r1, xStride, xsumStride, outStride),
// byte pointers into the shared memory; out[r] = W[r] . x for r in [r0, r1). Each has an "x4" twin for
// prefill: four inputs (x + t * xStride, out + t * outStride) share every unpacked block.
//   q8_0, q4_0, q5_0  read the f16 block scale from the block itself (its f32 value from the table at F16_TABLE).
//   q4_1, q5_1  the same, and the f16 offset m, whose term m * (sum of the block's inputs) reads xsum.
//   q4_k, q5_k  side: per super-block 16 f32 [scale0, min0, ..., scale7, min7] (d * sc, dmin * m,
//               unpacked once when the weight is loaded); xsum: the sum of each 32 inputs.
//   q6_k        side: per super-block 16 f32 scales (d * sc). xsum unused.
// Precision: f32 partial sums per block (4 lanes), then block sums scaled and added: error about
// (cols / 4) * 2^-24 * sum |w x|, like the f32 kernels.
//
// Each kernel also has integer-input twins ("_i16": values as i16, for 16-bit inputs and for 8-bit
// ones on SIMD 1.0; "_i8": 8-bit values as i8, with the relaxed dot product), the way llama.cpp's CPU backend
// multiplies: the input was quantized beforehand by quantizeActivations (below) to integers q (|q| <=
// 127) with one f32 scale per 32 values, so the block products are exact integer dot products, scaled
// once per block by (weight scale * input scale): with SIMD 1.0 the values are stored as i16 for
// i32x4.dot_i16x8_s (eight multiply-adds per instruction instead of f32 lanes); with relaxed SIMD as
// i8 for i32x4.relaxed_dot_i8x16_i7x16_add_s (sixteen; its second operand 0..127: unsigned quants as
// they are, signed ones as |w| with the sign moved onto x, see dot16). For these, x points at the values (input t at
// x + t * xStride) and xsum at f32 pairs per 32 values [d, d * sum q] (input t at xsum + t * xsumStride).
// They compute the product of the dequantized weights with the *dequantized input*; the input's
// quantization error is at most d/2 per value (d = max|x| / 127 over its block; for 16-bit inputs, read
// by the "_i16" kernels alike, d = max|x| / 32639: quantizeActivations' bits 16). The K-quants' integer
// kernels convert and scale several groups' sums at once (Q4_K and Q5_K two sub-blocks, pairInto; Q6_K's
// i16 kernels four 16-value groups, q6kGroups), folding them in integers first.
//
// Q5_0, Q4_K, Q5_K and Q6_K also have "_s16" twins, built into modules with the relaxed dot product: the
// 16-bit inputs as two byte planes per 16 values (splitPlanes: q = 256 h + l), multiplied by two relaxed
// dot products with the unsigned weights (their offsets taken off in integers), per 32 inputs [d, d sum
// q, sum q of each 16]. The integer sums are the "_i16" kernels' exactly; only the f32 additions' order differs.
// Q4_0 has "_p16" twins instead, in every module: 16-bit inputs as i16 in the order qrows16p writes them
// (per 32 values the even values of the first 16, their odd ones, the same for the second 16), so that
// its nibbles come out of 16-bit lanes by shifts alone (see q4_0); the integer sums are again the "_i16"
// kernels' exactly. A 1536 x 576 matrix, one thread: 46.6 -> 40.5 us (Node 20), four inputs 175 -> 145.
//
// And a "_dequant" kernel per format, for prefill: rows [r0, r1) dequantized to f32 at x + r * xStride
// (the same block decoding, with each value scaled and stored instead of multiplied; for Q4_K, minus
// its sub-block's min), so that a register-blocked f32 kernel (matmul-wasm.ts's matmul2x4) can reuse
// each dequantized row for every token of the batch. The values equal dequantizeRow's up to f32
// rounding of scale * q (one rounding; Q4_K's min subtraction is a second).

import { F32, I32, V128, op, simd, uleb, vec, whileLess, hsum, madd, addTo, shuffle32, type RelaxedSimd } from './wasm-emit.js';
import type { QuantMatrix } from '../quant/formats.js';
import { subBlockScales } from '../quant/q4_k.js';
import { f16ToF32, f32ToF16, GGMLType } from '../base/tensor.js';
import { f16At, nearestInt, signedMax } from '../quant/block.js';

/** Locals by name: the parameters first, then what a kernel asks for. */
class Locals {
  private readonly types: number[] = [];
  private next = PARAMS;
  add(type: number): number {
    this.types.push(type);
    return this.next++;
  }
  many(type: number, n: number): number[] {
    return Array.from({ length: n }, () => this.add(type));
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

// Parameters: (w, side, x, xsum, out, rowBytes, nBlocks, r0, r1, xStride, xsumStride, outStride).
// The strides (bytes between consecutive inputs, their sums and outputs) serve the 4-input variants.
const [W, SIDE, X, XSUM, OUT, ROW_BYTES, NBLOCKS, R, R1, X_STRIDE, XSUM_STRIDE, OUT_STRIDE] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const PARAMS = 12;
const s = (name: keyof typeof simd) => op.simd(simd[name]);
/**
 * Byte constants as i8x16 splats. While a kernel is emitted (`hoisting`), each is made once into a
 * local at the function's start (V8 does not hoist them out of the block loop: three instructions
 * each time otherwise).
 */
let hoisting: { locals: Locals; made: Map<number, number> } | undefined;
const splat8 = (v: number): number[] => {
  if (!hoisting) return [...op.i32(v), ...s('i8x16Splat')];
  let local = hoisting.made.get(v);
  if (local === undefined) hoisting.made.set(v, (local = hoisting.locals.add(V128)));
  return op.get(local);
};
/**
 * Byte-wise v >> n and v << n where the bits that cross into a neighbouring byte are masked off
 * afterwards (or cannot occur): x86-64 has no byte shifts, so V8 emulates i8x16 shifts in several
 * instructions, and a 16-bit shift is one.
 */
const shr16 = [...op.simd(0x8d)]; // i16x8.shr_u
const shl16 = [...op.simd(0x8b)]; // i16x8.shl
const load = (ptr: number, offset = 0) => [...op.get(ptr), ...op.v128Load(offset)];

/**
 * Where the executor's memory holds the f32 value of every f16 bit pattern (65536 f32, filled once by
 * fillF16Table): a block's scale is then one table load (3 instructions instead of 10 that move the
 * bits). Block scales of one model take few distinct values, so their entries stay in cache.
 */
export const F16_TABLE = 64;
export const F16_TABLE_BYTES = 65536 * 4;
/** The table at F16_TABLE: entry h is the f32 value of the f16 with bits h (infinities and NaNs included). */
export function fillF16Table(memory: ArrayBufferLike): void {
  if (!f16Values) {
    f16Values = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Values[h] = f16ToF32(h);
  }
  new Float32Array(memory, F16_TABLE, 65536).set(f16Values);
}
/** (made once per process, copied into each executor's memory) */
let f16Values: Float32Array | undefined;

/** Push the f32 value of the little-endian f16 at local `ptr` + offset, read from the table at F16_TABLE. */
export function pushF16(ptr: number, offset: number): number[] {
  return [...op.get(ptr), ...op.i32Load16u(offset), ...op.i32(2), ...op.i32Shl, ...op.f32Load(F16_TABLE)];
}

/** A kernel's input form: f32 (false), integers (true: i16, or i8 for the relaxed dot product), 16-bit ones as byte planes ('split') or permuted ('perm': Q4_0's "_p16", qrows16p's order), or none ('store': "_dequant"). */
type Form = boolean | 'store' | 'split' | 'perm';

/** Bytes per input value: f32; 8-bit inputs as i16 (SIMD 1.0's i32x4.dot_i16x8_s) or as i8 (relaxed SIMD's 8-bit dot product, `dot`). */
export const inputBytes = (int8: boolean, dot: boolean): 4 | 2 | 1 => (!int8 ? 4 : dot ? 1 : 2);

/** One kernel's working set: per input t, its x and xsum pointers, accumulators and block sums. */
interface Inputs {
  /** The input's form: f32 values, or int8 values (as i16, or as i8 with relaxed SIMD) with per-32 scales (the "_i8" kernels). */
  int8: boolean;
  /** Emit f32x4.relaxed_madd (see wasm-emit.ts's madd). */
  relaxed: boolean;
  /** 8-bit inputs as i8 for i32x4.relaxed_dot_i8x16_i7x16_add_s (else as i16 for i32x4.dot_i16x8_s). */
  dot8: boolean;
  /**
   * ("_s16" kernels) 16-bit inputs as two byte planes per 16 values (splitPlanes), multiplied with the
   * relaxed dot product; the weight values must be 0..127 (the formats that offset theirs take the offset
   * times the inputs' sums off in integers); per 32 inputs 16 bytes [d, d sum q, sum q, sum q].
   */
  split: boolean;
  /** ("_p16" kernels, Q4_0) 16-bit inputs as i16 in qrows16p's order per 32 values: 0, 2, ..., 14, 1, 3, ..., 15, 16, 18, ..., 30, 17, ..., 31. */
  perm: boolean;
  /** "_dequant" kernels: store the unpacked values (at xp[0] + 4 * value index) instead of multiplying. */
  store: boolean;
  /** store: the value indices of the 16-value groups stored since the last scaleInto. */
  pending: number[];
  xp: number[];
  xs: number[];
  acc: number[];
  minSum: number[];
  /** (kernels that ask for it, see pairInto) per input, min terms in lanes 1 and 3, subtracted at the row's end */
  minVec: number[];
  bs: number[];
  /** scratch: the bytes being unpacked, their i16 half, their f32 quarter, a scale */
  v: number;
  w16: number;
  f: number;
  scale: number;
}

/**
 * For every input t: bs_t += (the 16 signed bytes on the stack) . (the 16 inputs from value index
 * `at`). f32 inputs: each quarter of the bytes is widened to f32 once and used for all inputs.
 * int8 inputs: each half is widened to i16 once; integer dot products into i32 lanes.
 * store mode: the 16 values widened to f32 and stored (scaled later by scaleInto).
 * `unsigned` (the relaxed dot product only; elsewhere the bytes are taken as signed, as they fit): the
 * bytes are 0..127 (Q4_1's and Q4_K's nibbles, 5-bit values), the dot product's second operand as they
 * are, without moving signs; with `offset` (one input: Q4_0's n - 8, Q5_0's n - 16, Q6_K's n - 32, given as the stored
 * n), offset . x also goes into the local `into`, for storedOffset's `settle` to take off: both sums are exact
 * integers in the same lanes, so the difference is the block's dot product as signed values give it.
 */
function dot16(k: Inputs, at: number, unsigned: boolean | { offset: 8 | 16 | 32; into: number } = false, fresh = false): number[] {
  const out: number[] = [...op.set(k.v)];
  const sum = (bs: number) => (fresh ? op.v128Zero : op.get(bs));
  if (k.split) {
    // bs += (16 weights, 0..127) . (l + 256 h): the h plane's dot product times 256 is the l plane's accumulator
    const rdot = s('i32x4RelaxedDotI8x16I7x16AddS');
    k.bs.forEach((bs, t) => out.push(
      ...load(k.xp[t]!, 2 * at), ...op.get(k.v),
      ...load(k.xp[t]!, 2 * at + 16), ...op.get(k.v), ...op.v128Zero, ...rdot, ...op.i32(8), ...s('i32x4Shl'), ...(fresh ? [] : [...op.get(bs), ...s('i32x4Add')]),
      ...rdot, ...op.set(bs),
    ));
    return out;
  }
  if (k.store) k.pending.push(at);
  if (k.int8 && k.dot8 && unsigned) {
    const rdot = s('i32x4RelaxedDotI8x16I7x16AddS');
    k.bs.forEach((bs, t) => {
      if (unsigned === true) return out.push(...load(k.xp[t]!, at), ...op.get(k.v), ...sum(bs), ...rdot, ...op.set(bs));
      out.push(
        ...load(k.xp[t]!, at), ...op.set(k.f),
        ...op.get(k.f), ...op.get(k.v), ...sum(bs), ...rdot, ...op.set(bs),
        ...op.get(k.f), ...splat8(unsigned.offset), ...op.get(unsigned.into), ...rdot, ...op.set(unsigned.into),
      );
    });
    return out;
  }
  if (k.int8 && k.dot8) {
    // One relaxed 8-bit dot product per input (16 multiply-adds): its second operand must be 0..127,
    // so |w| goes there and w's sign moves onto x ((x ^ m) - m negates x where m, w < 0, is all ones).
    // |w| <= 127 in every valid block (a Q8_0 byte of -128, which ggml never writes, gives an
    // implementation-defined product: wrong values, never a trap); |x| <= 127 (quantizeActivations).
    const [aw, mw] = [k.w16, k.f];
    // (m as w < 0: x86-64 has a byte compare but no byte shift, so i8x16.shr_s would take several instructions)
    out.push(...op.get(k.v), ...s('i8x16Abs'), ...op.set(aw), ...op.get(k.v), ...op.v128Zero, ...s('i8x16LtS'), ...op.set(mw));
    k.bs.forEach((bs, t) =>
      out.push(
        ...load(k.xp[t]!, at), ...op.get(mw), ...s('v128Xor'), ...op.get(mw), ...s('i8x16Sub'),
        ...op.get(aw), ...sum(bs), ...s('i32x4RelaxedDotI8x16I7x16AddS'), ...op.set(bs),
      ),
    );
    return out;
  }
  if (k.int8) {
    const [lo, hi] = [k.w16, k.f];
    out.push(...op.get(k.v), ...s('i16x8ExtendLowS'), ...op.set(lo), ...op.get(k.v), ...s('i16x8ExtendHighS'), ...op.set(hi));
    k.bs.forEach((bs, t) =>
      out.push(
        ...(fresh ? [] : op.get(bs)),
        ...op.get(lo), ...load(k.xp[t]!, 2 * at), ...s('i32x4DotI16x8S'), ...(fresh ? [] : s('i32x4Add')),
        ...op.get(hi), ...load(k.xp[t]!, 2 * at + 16), ...s('i32x4DotI16x8S'), ...s('i32x4Add'),
        ...op.set(bs),
      ),
    );
    return out;
  }
  for (const [half, ext] of [[0, 'i16x8ExtendLowS'], [1, 'i16x8ExtendHighS']] as const) {
    out.push(...op.get(k.v), ...s(ext), ...op.set(k.w16));
    for (const [q, ext32] of [[0, 'i32x4ExtendLowS'], [1, 'i32x4ExtendHighS']] as const) {
      const o = 4 * (at + half * 8 + q * 4); // these 4 values' byte offset in the input (or the stored row)
      out.push(...op.get(k.w16), ...s(ext32), ...s('f32x4ConvertI32S'), ...op.set(k.f));
      if (k.store) out.push(...op.get(k.xp[0]!), ...op.get(k.f), ...op.v128Store(o));
      else k.bs.forEach((bs, t) => out.push(...madd(k.relaxed, op.get(bs), op.get(k.f), load(k.xp[t]!, o)), ...op.set(bs)));
    }
  }
  return out;
}

/**
 * f32 inputs in lane order (see permuteInputs), for Q8_0, Q4_0, Q4_K and Q6_K: the 32-bit lanes of the
 * v128 on the stack hold 4 bytes (`bytes`: value e is byte e) or 8 nibbles (`nibbles`: byte e's low
 * nibble is value e, its high nibble value e + 16), signed (two's complement) or `unsigned`, and part j
 * of every lane is taken out by two shifts (up to the top, then down with or without its sign),
 * converted and multiplied with inputs that were permuted once per call to match: part j of the four
 * lanes meets the four inputs at x + 4 * (at + 4 j). With `high`, the high nibbles' products go to those
 * block sums instead (Q4_K: the low and high nibbles are two sub-blocks). Widening bytes to i16 then i32
 * instead costs 9 vector instructions per 16 values on x86-64 (7 here) and, for nibbles, a mask and a
 * subtraction more.
 */
function dotLanes(k: Inputs, at: number, form: 'bytes' | 'nibbles', o: { unsigned?: boolean; high?: number[] } = {}): number[] {
  const out: number[] = [...op.set(k.v)];
  const [bits, parts] = form === 'bytes' ? [8, 4] : [4, 8];
  for (let j = 0; j < parts; j++) {
    const up = 32 - bits * (j + 1);
    out.push(...op.get(k.v), ...(up ? [...op.i32(up), ...s('i32x4Shl')] : []), ...op.i32(32 - bits), ...s(o.unsigned ? 'i32x4ShrU' : 'i32x4ShrS'), ...s('f32x4ConvertI32S'), ...op.set(k.f));
    const sums = o.high && j % 2 === 1 ? o.high : k.bs;
    sums.forEach((bs, t) => out.push(...madd(k.relaxed, op.get(bs), op.get(k.f), load(k.xp[t]!, 4 * (at + 4 * j))), ...op.set(bs)));
  }
  return out;
}

/**
 * acc_t += bs_t * scale for every input (scale pushed by `scale`), then the block sums are cleared
 * (`clear` false: not, where the next block's first dot16 is `fresh`, writing them without reading).
 * int8 inputs: the integer sums are converted and the scale is multiplied by the input's scale for
 * its 32 values number `group` of this block.
 */
const scaleInto = (k: Inputs, scale: number[], group: number, clear = true): number[] => k.store ? scaleStored(k, scale) : [
  ...scale, ...op.set(k.scale),
  ...k.acc.flatMap((acc, t) => [
    ...madd(k.relaxed, op.get(acc),
      [...op.get(k.bs[t]!), ...(k.int8 ? s('f32x4ConvertI32S') : [])],
      [...(k.int8 ? [...op.get(k.scale), ...op.get(k.xs[t]!), ...op.f32Load(pairBytes(k) * group), ...op.f32Mul] : op.get(k.scale)), ...s('f32x4Splat')]),
    ...op.set(acc),
  ]),
  ...(clear ? k.bs.flatMap(zero) : []),
];
/** Integer inputs (not the f32 ones' dot16, which adds to the block sums): a block's first dot16 may write its sums fresh, and scaleInto need not clear them. */
const freshSums = (k: Inputs) => k.int8 && !k.store;
/**
 * Integer inputs, two 32-value sub-blocks at once (Q4_K, Q5_K): for every input, the sub-blocks' block
 * sums (bs_t, and hi_t for the second) folded into [bs0 + bs2, bs1 + bs3, hi0 + hi2, hi1 + hi3] (exact:
 * each lane sums 16 products of |q| <= 32639 and a weight value <= 31, under 2^24, so the conversion to
 * f32 is exact too), converted once and multiplied by [s0, s0, s1, s1], where [s0, n0, s1, n1] = the side's
 * [scale0, min0, scale1, min1] times the input's [d0, d0 sum q0, d1, d1 sum q1] in one f32x4 product (the
 * same f32 products scaleInto and the scalar min terms make): n0 and n1 go into minVec's lanes 1 and 3,
 * taken off at the row's end. Replaces, per sub-block, scaleInto's scalar loads, product and splat and
 * the min's scalar chain, which V8 kept on the stack.
 */
function pairInto(k: Inputs, hi: number[], side: number[], prod: number): number[] {
  return k.acc.flatMap((acc, t) => [
    ...side, ...(k.split ? twoBlocks(k, t, 0, [0, 1, 4, 5]) : [...op.get(k.xs[t]!), ...op.v128Load(0)]), ...op.f32x4Mul, ...op.set(prod),
    ...op.get(k.minVec[t]!), ...op.get(prod), ...op.f32x4Add, ...op.set(k.minVec[t]!),
    ...madd(k.relaxed, op.get(acc),
      [...op.get(k.bs[t]!), ...op.get(hi[t]!), ...shuffle32([0, 1, 4, 5]), ...op.get(k.bs[t]!), ...op.get(hi[t]!), ...shuffle32([2, 3, 6, 7]), ...s('i32x4Add'), ...s('f32x4ConvertI32S')],
      [...op.get(prod), ...lanes([0, 0, 2, 2])]),
    ...op.set(acc),
  ]);
}
/** The v128 on the stack's 32-bit lanes rearranged (a shuffle whose second operand goes unread). */
const lanes = (from: number[]) => [...op.v128Zero, ...shuffle32(from)];
/** The integer block sums (i32x4 locals) of four value groups folded into one vector, pushed: [sum a, sum b, sum c, sum d] (`tmp`: two v128 scratch locals). */
function fold([a, b, c, d]: number[], tmp: [number, number]): number[] {
  const halves = (x: number, y: number, lo: number[], hi: number[]) => [...op.get(x), ...op.get(y), ...shuffle32(lo), ...op.get(x), ...op.get(y), ...shuffle32(hi), ...s('i32x4Add')];
  return [
    ...halves(a!, b!, [0, 4, 1, 5], [2, 6, 3, 7]), ...op.set(tmp[0]), // [a0 + a2, b0 + b2, a1 + a3, b1 + b3]
    ...halves(c!, d!, [0, 4, 1, 5], [2, 6, 3, 7]), ...op.set(tmp[1]),
    ...halves(tmp[0], tmp[1], [0, 1, 4, 5], [2, 3, 6, 7]),
  ];
}
/** store mode: the values stored since the last call, times the scale. */
function scaleStored(k: Inputs, scale: number[]): number[] {
  const out = [...scale, ...s('f32x4Splat'), ...op.set(k.f)];
  for (const at of k.pending.splice(0))
    for (let i = 0; i < 16; i += 4) out.push(...op.get(k.xp[0]!), ...op.get(k.xp[0]!), ...op.v128Load(4 * (at + i)), ...op.get(k.f), ...s('f32x4Mul'), ...op.v128Store(4 * (at + i)));
  return out;
}
/** store mode: the 32 stored values from index `at`, minus the min (pushed by `min`). */
function subtractStored(k: Inputs, at: number, min: number[]): number[] {
  const out = [...min, ...s('f32x4Splat'), ...op.set(k.f)];
  for (let i = 0; i < 32; i += 4) out.push(...op.get(k.xp[0]!), ...op.get(k.xp[0]!), ...op.v128Load(4 * (at + i)), ...op.get(k.f), ...s('f32x4Sub'), ...op.v128Store(4 * (at + i)));
  return out;
}
/** Push input t's sum of its 32 values number `group` of this block (f32 inputs: the sums of x; int8: d * sum q). */
const groupSum = (k: Inputs, t: number, group: number) => [...op.get(k.xs[t]!), ...op.f32Load(k.int8 ? pairBytes(k) * group + 4 : 4 * group)];
/** Bytes of per-32 input data: f32 sums 4; integer inputs' [d, d sum q] 8; split planes' [d, d sum q, sum q, sum q] 16. */
const pairBytes = (k: Inputs) => (k.split ? 16 : k.int8 ? 8 : 4);
/** Bytes per input value: f32 4; integer inputs as inputBytes says; split planes 2 (a byte in each). */
const valueBytes = (k: Inputs) => (k.split ? 2 : inputBytes(k.int8, k.dot8));
/** Push input t's per-32 data at xs + `offset` (bytes) for blocks b and b + 1 as one v128 of their lanes `lanes` (0..3 of b, 4..7 of b + 1). */
const twoBlocks = (k: Inputs, t: number, offset: number, lanes: number[]) => [...op.get(k.xs[t]!), ...op.v128Load(offset), ...op.get(k.xs[t]!), ...op.v128Load(offset + pairBytes(k)), ...shuffle32(lanes)];
function zero(v: number): number[] {
  return [...op.v128Zero, ...op.set(v)];
}
/**
 * Q4_0's, Q5_0's and Q6_K's stored n, whose value is n - `by`: the subtraction before each dot16 (`minus`), or
 * for one input with the relaxed dot product none, dot16's `dot` option instead and `settle` after
 * the block (its block sum minus the offset sums dot16 put into their own local, which is cleared).
 */
function storedOffset(k: Inputs, l: Locals, inputs: number, by: 8 | 16 | 32): { minus: number[]; dot: false | { offset: 8 | 16 | 32; into: number }; settle: number[] } {
  if (!(k.int8 && k.dot8 && inputs === 1)) return { minus: [...splat8(by), ...s('i8x16Sub')], dot: false, settle: [] };
  const into = l.add(V128);
  return { minus: [], dot: { offset: by, into }, settle: [...op.get(k.bs[0]!), ...op.get(into), ...s('i32x4Sub'), ...op.set(k.bs[0]!), ...zero(into)] };
}

/**
 * The row loop shared by all kernels, for `inputs` inputs (1, or 4 sharing each unpacked block), f32
 * or int8 (see dot16):
 * per row, `perBlock` runs nBlocks times; input t's result is hsum(acc_t) - minSum_t.
 */
function kernel(relaxed: RelaxedSimd, inputs: number, int8: Form, blockValues: number, blockBytes: number, sideStep: number, perBlock: (k: Inputs & { P: number; S: number }, l: Locals) => number[], minVec = false): number[] {
  const store = int8 === 'store', split = int8 === 'split', perm = int8 === 'perm';
  if (store) int8 = false;
  if (split || perm) int8 = true;
  const l = new Locals();
  const [P, S, B] = [l.add(I32), l.add(I32), l.add(I32)];
  // Bytes per block of the input, and of its per-32 data (f32 sums, or int8 [d, d * sum q] pairs).
  const k: Inputs = {
    int8: int8 as boolean, relaxed: relaxed.madd, dot8: relaxed.dot, split, perm, store, pending: [],
    xp: l.many(I32, inputs), xs: l.many(I32, inputs), acc: l.many(V128, inputs), minSum: l.many(F32, inputs), minVec: minVec ? l.many(V128, inputs) : [], bs: l.many(V128, inputs),
    v: l.add(V128), w16: l.add(V128), f: l.add(V128), scale: l.add(F32),
  };
  const [xStep, xsumStep] = [blockValues * valueBytes(k), (blockValues / 32) * pairBytes(k)];
  hoisting = { locals: l, made: new Map() };
  let block: number[], made: Map<number, number>;
  try {
    block = perBlock({ ...k, P, S }, l);
  } finally {
    made = hoisting.made;
    hoisting = undefined;
  }
  const constants = [...made].flatMap(([v, local]) => [...op.i32(v), ...s('i8x16Splat'), ...op.set(local)]);
  const code = whileLess(R, R1, 1, [
    ...op.get(W), ...op.get(R), ...op.get(ROW_BYTES), ...op.i32Mul, ...op.i32Add, ...op.set(P),
    ...op.get(SIDE), ...op.get(R), ...op.get(NBLOCKS), ...op.i32Mul, ...op.i32(sideStep), ...op.i32Mul, ...op.i32Add, ...op.set(S),
    // (store: the row's output, x + r * xStride; else input t)
    ...k.xp.flatMap((xp, t) => [...op.get(X), ...op.get(X_STRIDE), ...(store ? op.get(R) : op.i32(t)), ...op.i32Mul, ...op.i32Add, ...op.set(xp)]),
    ...k.xs.flatMap((xs, t) => [...op.get(XSUM), ...op.get(XSUM_STRIDE), ...op.i32(t), ...op.i32Mul, ...op.i32Add, ...op.set(xs)]),
    ...k.acc.flatMap(zero), ...k.bs.flatMap(zero), ...k.minVec.flatMap(zero), ...k.minSum.flatMap((m) => [...op.f32Zero, ...op.set(m)]),
    ...op.i32(0), ...op.set(B),
    ...whileLess(B, NBLOCKS, 1, [
      ...block,
      ...addTo(P, blockBytes), ...(sideStep ? addTo(S, sideStep) : []), ...k.xp.flatMap((xp) => addTo(xp, xStep)), ...k.xs.flatMap((xs) => addTo(xs, xsumStep)),
    ]),
    ...(store ? [] : k.acc.flatMap((acc, t) => [
      ...op.get(OUT), ...op.get(OUT_STRIDE), ...op.i32(t), ...op.i32Mul, ...op.i32Add, ...op.get(R), ...op.i32(4), ...op.i32Mul, ...op.i32Add,
      ...hsum(acc), ...op.get(k.minSum[t]!), ...op.f32Sub,
      ...(minVec ? [...op.get(k.minVec[t]!), ...op.lane(1), ...op.get(k.minVec[t]!), ...op.lane(3), ...op.f32Add, ...op.f32Sub] : []),
      ...op.f32Store,
    ])),
  ]);
  return [...l.declaration(), ...constants, ...code, ...op.end];
}

function q8_0(relaxed: RelaxedSimd, inputs: number, int8: Form): number[] {
  return kernel(relaxed, inputs, int8, 32, 34, 0, (k) => {
    if (!k.int8 && !k.store) return [...load(k.P, 2), ...dotLanes(k, 0, 'bytes'), ...load(k.P, 18), ...dotLanes(k, 16, 'bytes'), ...scaleInto(k, pushF16(k.P, 0), 0)];
    const fresh = freshSums(k);
    return [...load(k.P, 2), ...dot16(k, 0, false, fresh), ...load(k.P, 18), ...dot16(k, 16), ...scaleInto(k, pushF16(k.P, 0), 0, !fresh)];
  });
}

function q4_0(relaxed: RelaxedSimd, inputs: number, int8: Form): number[] {
  return kernel(relaxed, inputs, int8, 32, 18, 0, (k, l) => {
    const q = l.add(V128);
    // f32 inputs: the nibbles n as two's complement n - 8 (n ^ 8), taken apart in lanes
    if (!k.int8 && !k.store) return [...load(k.P, 2), ...splat8(0x88), ...s('v128Xor'), ...dotLanes(k, 0, 'nibbles'), ...scaleInto(k, pushF16(k.P, 0), 0)];
    if (k.perm) {
      // 16-bit inputs in permuted order (qrows16p): the block's 16 bytes as eight 16-bit lanes, lane i
      // holding values 2i, 2i + 16, 2i + 1, 2i + 17 in its four nibbles; n ^ 8 is n - 8 as a signed
      // nibble, taken out by a shift up to the lane's top and an arithmetic shift down (8 instructions
      // for 32 values, where widening bytes to 16-bit lanes and subtracting 8 takes 11 on x86-64).
      const shrS16 = op.simd(0x8c); // i16x8.shr_s
      const part = (up: number) => [...op.get(q), ...(up ? [...op.i32(up), ...shl16] : []), ...op.i32(12), ...shrS16];
      const ups = [12, 4, 8, 0]; // values 2i, 2i + 1, 2i + 16, 2i + 17: the inputs' order in qrows16p
      // (several inputs: the parts made once, into scratch locals, q the last: the others read it)
      const scratch = [k.v, k.w16, k.f, q];
      const parts = inputs === 1 ? ups.map(part) : scratch.map((v) => op.get(v));
      const out: number[] = [...load(k.P, 2), ...splat8(0x88), ...s('v128Xor'), ...op.set(q)];
      if (inputs > 1) out.push(...ups.flatMap((up, j) => [...part(up), ...op.set(scratch[j]!)]));
      k.bs.forEach((bs, t) => out.push(
        ...parts.flatMap((p, j) => [...p, ...load(k.xp[t]!, 16 * j), ...s('i32x4DotI16x8S'), ...(j ? s('i32x4Add') : [])]),
        ...op.set(bs),
      ));
      return [...out, ...scaleInto(k, pushF16(k.P, 0), 0, false)];
    }
    const n = storedOffset(k, l, inputs, 8);
    const fresh = freshSums(k);
    return [
      ...load(k.P, 2), ...op.set(q),
      ...nibbles(q, 'low'), ...n.minus, ...dot16(k, 0, n.dot, fresh), // values 0..15
      ...nibbles(q, 'high'), ...n.minus, ...dot16(k, 16, n.dot), // values 16..31
      ...n.settle, ...scaleInto(k, pushF16(k.P, 0), 0, !fresh),
    ];
  });
}

/**
 * Byte planes of a Q5_0 block, whose stored values n stand for n - 16: 16 times the inputs' two sums q
 * of 16 (lanes 2 and 3 of the block's data) off the block sums' lanes 2 and 3, so that the lanes' total
 * is the block's dot product with the signed values.
 */
const offsetBySums = (k: Inputs) => k.bs.flatMap((bs, t) => [
  ...op.get(bs), ...op.get(k.xs[t]!), ...op.v128Load(0), ...op.v128Const([...new Array(8).fill(0), ...new Array(8).fill(0xff)]), ...s('v128And'), ...op.i32(4), ...s('i32x4Shl'), ...s('i32x4Sub'), ...op.set(bs),
]);

/**
 * Q5_0 / Q5_1's 5th bits for 16 values: qh (a u32 splatted in local `qh`) spread so that lane j holds
 * byte firstByte + j / 8 (swizzle), tested against its bit (j % 8), turned into 0x10 where set.
 */
const fifthBits = (qh: number, firstByte: number) => [
  ...op.get(qh), ...op.v128Const([...new Array(8).fill(firstByte), ...new Array(8).fill(firstByte + 1)]), ...s('i8x16Swizzle'),
  ...op.v128Const([1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128]), ...s('v128And'),
  ...op.v128Zero, ...s('i8x16Ne'), ...splat8(0x10), ...s('v128And'),
];
/** The 16 low or high nibbles of the bytes in local q, as bytes 0..15. */
const nibbles = (q: number, which: 'low' | 'high', from = op.get(q)) => [...from, ...(which === 'high' ? [...op.i32(4), ...shr16] : []), ...splat8(0x0f), ...s('v128And')];

function q5_0(relaxed: RelaxedSimd, inputs: number, int8: Form): number[] {
  return kernel(relaxed, inputs, int8, 32, 22, 0, (k, l) => {
    const [q, qh] = [l.add(V128), l.add(V128)];
    if (k.split)
      // byte planes: n (0..31) as it is, then 16 times the block's sums q off
      return [
        ...op.get(k.P), ...op.i32Load(2), ...s('i32x4Splat'), ...op.set(qh),
        ...load(k.P, 6), ...op.set(q),
        ...nibbles(q, 'low'), ...fifthBits(qh, 0), ...s('v128Or'), ...dot16(k, 0, true, true),
        ...nibbles(q, 'high'), ...fifthBits(qh, 2), ...s('v128Or'), ...dot16(k, 16, true),
        ...offsetBySums(k), ...scaleInto(k, pushF16(k.P, 0), 0, false),
      ];
    const n = storedOffset(k, l, inputs, 16);
    const fresh = freshSums(k);
    return [
      ...op.get(k.P), ...op.i32Load(2), ...s('i32x4Splat'), ...op.set(qh),
      ...load(k.P, 6), ...op.set(q),
      ...nibbles(q, 'low'), ...fifthBits(qh, 0), ...s('v128Or'), ...n.minus, ...dot16(k, 0, n.dot, fresh), // values 0..15
      ...nibbles(q, 'high'), ...fifthBits(qh, 2), ...s('v128Or'), ...n.minus, ...dot16(k, 16, n.dot), // values 16..31
      ...n.settle, ...scaleInto(k, pushF16(k.P, 0), 0, !fresh),
    ];
  });
}

/**
 * Q4_1 / Q5_1's "+ m": store mode adds m to the block's 32 stored values; otherwise m * (the block's
 * input sum) goes into minSum with a minus (the kernels' result is hsum(acc) - minSum).
 */
function plusOffset(k: Inputs, pushM: number[], mv: number): number[] {
  if (k.store) return subtractStored(k, 0, [...pushM, ...f32Neg]);
  return [...pushM, ...op.set(mv), ...k.minSum.flatMap((ms, t) => [...op.get(ms), ...op.get(mv), ...groupSum(k, t, 0), ...op.f32Mul, ...op.f32Sub, ...op.set(ms)])];
}
const f32Neg = [0x8c];

function q4_1(relaxed: RelaxedSimd, inputs: number, int8: Form): number[] {
  return kernel(relaxed, inputs, int8, 32, 20, 0, (k, l) => {
    const [q, mv] = [l.add(V128), l.add(F32)];
    return [
      ...load(k.P, 4), ...op.set(q),
      ...nibbles(q, 'low'), ...dot16(k, 0, true), // values 0..15
      ...nibbles(q, 'high'), ...dot16(k, 16, true), // values 16..31
      ...scaleInto(k, pushF16(k.P, 0), 0),
      ...plusOffset(k, pushF16(k.P, 2), mv),
    ];
  });
}

function q5_1(relaxed: RelaxedSimd, inputs: number, int8: Form): number[] {
  return kernel(relaxed, inputs, int8, 32, 24, 0, (k, l) => {
    const [q, qh, mv] = [l.add(V128), l.add(V128), l.add(F32)];
    return [
      ...op.get(k.P), ...op.i32Load(4), ...s('i32x4Splat'), ...op.set(qh),
      ...load(k.P, 8), ...op.set(q),
      ...nibbles(q, 'low'), ...fifthBits(qh, 0), ...s('v128Or'), ...dot16(k, 0, true), // values 0..15
      ...nibbles(q, 'high'), ...fifthBits(qh, 2), ...s('v128Or'), ...dot16(k, 16, true), // values 16..31
      ...scaleInto(k, pushF16(k.P, 0), 0),
      ...plusOffset(k, pushF16(k.P, 2), mv),
    ];
  });
}

/**
 * A K-quant super-block as a loop over its parts (`n` iterations of `values` values) instead of unrolled
 * code: measured about 2x faster here (the unrolled 256-value bodies ran at half the speed per value of
 * Q4_0's). `body` emits part 0, with k's pointers standing for the part's: P (+ pStep per part), S
 * (+ sStep), the inputs (+ `values`) and their per-32 data, and Q = P + q.offset (+ q.step) when asked;
 * G counts the parts.
 */
function partLoop(k: Inputs & { P: number; S: number }, l: Locals, n: number, values: number, pStep: number, sStep: number, q: { offset: number; step: number } | undefined, body: (part: Inputs & { P: number; S: number }, G: number, Q: number) => number[]): number[] {
  const [G, GN, PG, SG, Q] = [l.add(I32), l.add(I32), l.add(I32), l.add(I32), l.add(I32)];
  const xg = k.xp.map(() => l.add(I32));
  const xsg = k.xs.map(() => l.add(I32));
  const [xStep, xsStep] = [values * valueBytes(k), (values / 32) * pairBytes(k)];
  const bump = (v: number, by: number) => [...op.get(v), ...op.i32(by), ...op.i32Add, ...op.set(v)];
  return [
    ...op.get(k.P), ...op.set(PG), ...op.get(k.S), ...op.set(SG), ...op.get(k.P), ...op.i32(q?.offset ?? 0), ...op.i32Add, ...op.set(Q),
    ...xg.flatMap((v, t) => [...op.get(k.xp[t]!), ...op.set(v)]), ...xsg.flatMap((v, t) => [...op.get(k.xs[t]!), ...op.set(v)]),
    ...op.i32(0), ...op.set(G), ...op.i32(n), ...op.set(GN),
    ...whileLess(G, GN, 1, [
      ...body({ ...k, P: PG, S: SG, xp: xg, xs: xsg }, G, Q),
      ...bump(PG, pStep), ...bump(SG, sStep), ...bump(Q, q?.step ?? 0), ...xg.flatMap((v) => bump(v, xStep)), ...xsg.flatMap((v) => bump(v, xsStep)),
    ]),
  ];
}

/**
 * `body` twice as a loop (locals `counter`, `limit`), each [local, step] of `bumps` moved on after each
 * pass: the K-quants' f32 paths take their two 16-byte columns this way, since unrolled V8 hoists
 * both columns' input loads and spills.
 */
const twice = (counter: number, limit: number, body: number[], bumps: [number, number][]) => [
  ...op.i32(0), ...op.set(counter), ...op.i32(2), ...op.set(limit),
  ...whileLess(counter, limit, 1, [...body, ...bumps.flatMap(([v, by]) => addTo(v, by))]),
];

function q4_k(relaxed: RelaxedSimd, inputs: number, int8: Form): number[] {
  return kernel(relaxed, inputs, int8, 256, 144, 64, (k, l) => {
    const [q0, q1, prod] = [l.add(V128), l.add(V128), l.add(V128)];
    const high = k.bs.map(() => l.add(V128)); // (f32 inputs: the high nibbles' block sums)
    // (f32 inputs: the part's two 16-byte halves as a loop of two, its pointers and counters; unrolled,
    // V8 hoists all 16 input loads of the part and spills)
    const [C, C2, PC] = [l.add(I32), l.add(I32), l.add(I32)];
    const xc = k.xp.map(() => l.add(I32));
    return partLoop(k, l, 4, 64, 32, 16, undefined, (g) => {
      const minus = (sub: number) => g.minSum.flatMap((ms, t) => [...op.get(ms), ...op.get(g.S), ...op.f32Load(8 * sub + 4), ...groupSum(g, t, sub), ...op.f32Mul, ...op.f32Add, ...op.set(ms)]);
      if (!g.int8 && !g.store)
        // both sub-blocks at once, in lane order: low nibbles into bs, high into `high`
        return [
          ...op.get(g.P), ...op.set(PC), ...xc.flatMap((v, t) => [...op.get(g.xp[t]!), ...op.set(v)]),
          ...twice(C, C2, [...load(PC, 16), ...dotLanes({ ...g, xp: xc }, 0, 'nibbles', { unsigned: true, high })], [[PC, 16], ...xc.map((v): [number, number] => [v, 32 * 4])]),
          ...scaleInto(g, [...op.get(g.S), ...op.f32Load(0)], 0), ...minus(0),
          ...scaleInto({ ...g, bs: high }, [...op.get(g.S), ...op.f32Load(8)], 1), ...minus(1),
        ];
      const out: number[] = [...load(g.P, 16), ...op.set(q0), ...load(g.P, 32), ...op.set(q1)];
      if (!g.store)
        // integer inputs: the two sub-blocks' sums into bs and `high`, scaled together (pairInto)
        return [
          ...out,
          ...nibbles(q0, 'low'), ...dot16(g, 0, true, true), ...nibbles(q1, 'low'), ...dot16(g, 16, true),
          ...nibbles(q0, 'high'), ...dot16({ ...g, bs: high }, 32, true, true), ...nibbles(q1, 'high'), ...dot16({ ...g, bs: high }, 48, true),
          ...pairInto(g, high, load(g.S), prod),
        ];
      // ("_dequant": each sub-block's values stored, scaled, less its min)
      for (const [sub, nibble] of [[0, 'low'], [1, 'high']] as const) {
        const pick = (q: number) => nibbles(q, nibble);
        const at = 32 * sub; // this sub-block's 32 values
        out.push(...pick(q0), ...dot16(g, at, true), ...pick(q1), ...dot16(g, at + 16, true), ...scaleInto(g, [...op.get(g.S), ...op.f32Load(8 * sub)], sub));
        out.push(...subtractStored(g, at, [...op.get(g.S), ...op.f32Load(8 * sub + 4)]));
      }
      return out;
    });
  }, int8 === true || int8 === 'split');
}

function q5_k(relaxed: RelaxedSimd, inputs: number, int8: Form): number[] {
  return kernel(relaxed, inputs, int8, 256, 176, 64, (k, l) => {
    const [q0, q1, h0, h1, prod] = [l.add(V128), l.add(V128), l.add(V128), l.add(V128), l.add(V128)];
    const high = k.bs.map(() => l.add(V128)); // (integer inputs: the second sub-block's sums, see pairInto)
    const qh = [...load(k.P, 16), ...op.set(h0), ...load(k.P, 32), ...op.set(h1)]; // the 5th bits, for all four groups
    return [...qh, ...partLoop(k, l, 4, 64, 32, 16, undefined, (g, G) => {
      const out: number[] = [...load(g.P, 48), ...op.set(q0), ...load(g.P, 64), ...op.set(q1)];
      // the 5th bit of each value: bit 2G + sub of its qh byte, moved to bit 4
      const fifth = (h: number, sub: number) => [...op.get(h), ...op.get(G), ...op.get(G), ...op.i32Add, ...op.i32(sub), ...op.i32Add, ...shr16, ...splat8(1), ...s('v128And'), ...op.i32(4), ...shl16, ...s('v128Or')];
      if (g.int8)
        return [
          ...out,
          ...nibbles(q0, 'low'), ...fifth(h0, 0), ...dot16(g, 0, true, true), ...nibbles(q1, 'low'), ...fifth(h1, 0), ...dot16(g, 16, true),
          ...nibbles(q0, 'high'), ...fifth(h0, 1), ...dot16({ ...g, bs: high }, 32, true, true), ...nibbles(q1, 'high'), ...fifth(h1, 1), ...dot16({ ...g, bs: high }, 48, true),
          ...pairInto(g, high, load(g.S), prod),
        ];
      for (const [sub, nibble] of [[0, 'low'], [1, 'high']] as const) {
        const pick = (q: number) => nibbles(q, nibble);
        const at = 32 * sub;
        out.push(...pick(q0), ...fifth(h0, sub), ...dot16(g, at, true), ...pick(q1), ...fifth(h1, sub), ...dot16(g, at + 16, true), ...scaleInto(g, [...op.get(g.S), ...op.f32Load(8 * sub)], sub));
        if (g.store) out.push(...subtractStored(g, at, [...op.get(g.S), ...op.f32Load(8 * sub + 4)]));
        else g.minSum.forEach((ms, t) => out.push(...op.get(ms), ...op.get(g.S), ...op.f32Load(8 * sub + 4), ...groupSum(g, t, sub), ...op.f32Mul, ...op.f32Add, ...op.set(ms)));
      }
      return out;
    })];
  }, int8 === true || int8 === 'split');
}
function q6_k(relaxed: RelaxedSimd, inputs: number, int8: Form): number[] {
  return kernel(relaxed, inputs, int8, 256, 210, 64, (k, l) => {
    const [a, b, hi] = [l.add(V128), l.add(V128), l.add(V128)];
    // (f32 inputs: the two 16-byte columns c as a loop of two, with their own pointers, as Q4_K's halves)
    const [C, C2, PC, QC, SC] = [l.add(I32), l.add(I32), l.add(I32), l.add(I32), l.add(I32)];
    const xc = k.xp.map(() => l.add(I32));
    // Two halves of 128 values: low bits at P + 64 half, high bits at Q = P + 128 + 32 half, 8 scales each.
    const groupSums = k.bs.map(() => l.many(V128, 4));
    const tmp: [number, number] = [l.add(V128), l.add(V128)];
    return partLoop(k, l, 2, 128, 64, 32, { offset: 128, step: 32 }, (h, _G, Q) => {
      if (h.int8 && (!h.dot8 || h.split)) return q6kGroups(h, Q, groupSums, tmp);
      const out: number[] = [];
      const lanes = !h.int8 && !h.store;
      const n = storedOffset(h, l, inputs, 32);
      for (let c = 0; c < (lanes ? 1 : 2); c++) {
        // (lanes: column c = C, at PC, QC, SC and xc; the loop below runs this body twice)
        const [P, Qp, S, xp] = lanes ? [PC, QC, SC, xc] : [h.P, Q, h.S, h.xp];
        const hc = { ...h, P, S, xp };
        out.push(...load(P, 16 * c), ...op.set(a), ...load(P, 32 + 16 * c), ...op.set(b), ...load(Qp, 16 * c), ...op.set(hi));
        // q = (low 4 bits from a or b) | (2 bits of hi) << 4, minus 32
        const parts: [number, boolean, number, number][] = [[a, false, 0, 0], [b, false, 2, 32], [a, true, 4, 64], [b, true, 6, 96]];
        for (const [src, upper, shift, at] of parts) {
          const low4 = nibbles(src, upper ? 'high' : 'low');
          const high2 = [...op.get(hi), ...op.i32(shift), ...shr16, ...splat8(3), ...s('v128And'), ...op.i32(4), ...shl16];
          const scaleIndex = c + shift; // ggml: sc[is + 0/2/4/6], is = l / 16 = c (in this half)
          out.push(
            ...low4, ...high2, ...s('v128Or'), ...n.minus,
            ...(lanes ? dotLanes(hc, at, 'bytes') : [...dot16(hc, at + 16 * c, n.dot), ...n.settle]),
            ...scaleInto(hc, [...op.get(S), ...op.f32Load(4 * scaleIndex)], at / 32),
          );
        }
      }
      if (!lanes) return out;
      return [
        ...op.get(h.P), ...op.set(PC), ...op.get(Q), ...op.set(QC), ...op.get(h.S), ...op.set(SC), ...xc.flatMap((v, t) => [...op.get(h.xp[t]!), ...op.set(v)]),
        ...twice(C, C2, out, [[PC, 16], [QC, 16], [SC, 4], ...xc.map((v): [number, number] => [v, 16 * 4])]),
      ];
    });
  });
}

/**
 * Q6_K with i16 inputs or byte planes, one half super-block (128 values: low 4 bits at P, two high bits at
 * Q, its 8 scales at S, the inputs' 4 per-32 data at xs): each 16-value group's q - 32 multiplied in
 * integers into its own block sums (sums[t][j]), and every four groups folded into one vector (exact: 16
 * products of |q - 32| <= 32 and |x| <= 32639 stay under 2^24), converted once and multiplied by the
 * groups' scales times their inputs' d. Group g's values are ggml's: low bits from the low (g < 4) or
 * high nibbles of bytes 16 (g % 2) + 32 (g / 2 % 2), high bits 2 (g / 2) of byte 16 (g % 2) at Q. Byte
 * planes (split) multiply q itself (0..63) and take 32 * each group's sum q off the folded sums.
 */
function q6kGroups(h: Inputs & { P: number; S: number }, Q: number, sums: number[][], tmp: [number, number]): number[] {
  const out: number[] = [];
  for (let first = 0; first < 8; first += 4) {
    for (let g = first; g < first + 4; g++) {
      const low4 = nibbles(0, g < 4 ? 'low' : 'high', [...op.get(h.P), ...op.v128Load(16 * (g % 2) + 32 * ((g >> 1) % 2))]);
      const shift = 2 * (g >> 1); // the high bits' place in the byte: moved to bits 4-5 and masked (a 16-bit shift leaks only into masked bits)
      const high2 = [...op.get(Q), ...op.v128Load(16 * (g % 2)), ...(shift < 4 ? [...op.i32(4 - shift), ...shl16] : shift > 4 ? [...op.i32(shift - 4), ...shr16] : []), ...splat8(0x30), ...s('v128And')];
      out.push(...low4, ...high2, ...s('v128Or'), ...(h.split ? [] : [...splat8(32), ...s('i8x16Sub')]), ...dot16({ ...h, bs: sums.map((j) => j[g - first]!) }, 16 * g, false, true));
    }
    // (the four groups' inputs: blocks first / 2 and first / 2 + 1 of this half)
    const at = (first / 2) * pairBytes(h);
    // scales: [s_first, ...] times the inputs' d of each group (one d per two groups)
    const scales = (t: number) => [...op.get(h.S), ...op.v128Load(4 * first), ...(h.split ? twoBlocks(h, t, at, [0, 0, 4, 4]) : [...op.get(h.xs[t]!), ...op.v128Load(at), ...lanes([0, 0, 2, 2])]), ...op.f32x4Mul];
    const offset = (t: number) => (h.split ? [...twoBlocks(h, t, at, [2, 3, 6, 7]), ...op.i32(5), ...s('i32x4Shl'), ...s('i32x4Sub')] : []);
    h.acc.forEach((acc, t) => out.push(...madd(h.relaxed, op.get(acc), [...fold(sums[t]!, tmp), ...offset(t), ...s('f32x4ConvertI32S')], scales(t)), ...op.set(acc)));
  }
  return out;
}

/** Formats with "_s16" kernels (in modules with the relaxed dot product): their weight values are 0..127 once their offsets are taken apart. */
export const SPLIT_TYPES: ReadonlySet<GGMLType> = new Set([GGMLType.Q5_0, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K]);

/** The kernels' names, signature and bodies, for matmul-wasm.ts's module. */
export function quantKernels(relaxed: RelaxedSimd): { name: string; params: number[]; body: number[] }[] {
  const params = new Array(PARAMS).fill(I32);
  const builders = { q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k };
  const i16: RelaxedSimd = { ...relaxed, dot: false };
  const split = new Set([...SPLIT_TYPES].map((t) => GGMLType[t].toLowerCase()));
  return Object.entries(builders).flatMap(([name, build]) => [
    { name, params, body: build(relaxed, 1, false) },
    { name: `${name}x4`, params, body: build(relaxed, 4, false) },
    // (integer inputs as i16: 8-bit ones in a SIMD 1.0 module, 16-bit ones in any; as i8: the relaxed dot product's)
    { name: `${name}_i16`, params, body: build(i16, 1, true) },
    { name: `${name}x4_i16`, params, body: build(i16, 4, true) },
    // (Q4_0: 16-bit inputs in qrows16p's order, for its nibbles taken out of 16-bit lanes)
    ...(name === 'q4_0' ? [{ name: `${name}_p16`, params, body: build(i16, 1, 'perm') }, { name: `${name}x4_p16`, params, body: build(i16, 4, 'perm') }] : []),
    ...(relaxed.dot ? [
      { name: `${name}_i8`, params, body: build(relaxed, 1, true) },
      { name: `${name}x4_i8`, params, body: build(relaxed, 4, true) },
      // (16-bit inputs as byte planes, multiplied with the relaxed dot product)
      ...(split.has(name) ? [
        { name: `${name}_s16`, params, body: build(relaxed, 1, 'split') },
        { name: `${name}x4_s16`, params, body: build(relaxed, 4, 'split') },
      ] : []),
    ] : []),
    { name: `${name}_dequant`, params, body: build(relaxed, 1, 'store') },
  ]);
}

/** (w, side, x, xsum, out, rowBytes, nBlocks, r0, r1, xStride, xsumStride, outStride); the x4 variants take 4 inputs. */
type QuantKernel = (w: number, side: number, x: number, xsum: number, out: number, rowBytes: number, nBlocks: number, r0: number, r1: number, xStride: number, xsumStride: number, outStride: number) => void;
type Kernels<N extends string> = { [K in N | `${N}x4` | `${N}_i16` | `${N}x4_i16` | `${N}_dequant`]: QuantKernel } & { [K in `${N}_i8` | `${N}x4_i8` | `${N}_s16` | `${N}x4_s16` | `${N}_p16` | `${N}x4_p16`]?: QuantKernel };
export type QuantWasm = Kernels<'q8_0' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q4_k' | 'q5_k' | 'q6_k'>;

/**
 * The per-sub-block scales (and mins) the K-quant kernels read, unpacked from the blocks once:
 * Q4_K 16 f32 per super-block [d*sc0, dmin*m0, ...], Q6_K 16 f32 per super-block [d*sc0, ...].
 * Empty for Q8_0 and Q4_0, whose kernels read the block's own f16 scale.
 */
export function wasmSideLength(m: QuantMatrix): number {
  return m.type === GGMLType.Q4_K || m.type === GGMLType.Q5_K || m.type === GGMLType.Q6_K ? m.rows * (m.cols / 256) * 16 : 0;
}

export function fillWasmSide(m: QuantMatrix, side: Float32Array): void {
  const blocks = m.rows * (m.cols / 256);
  const kBytes = m.type === GGMLType.Q4_K ? 144 : 176; // Q4_K and Q5_K: the same scale and min packing
  for (let b = 0; b < blocks && (m.type === GGMLType.Q4_K || m.type === GGMLType.Q5_K); b++) side.set(subBlockScales(m.data, b * kBytes), 16 * b);
  for (let b = 0; b < blocks && m.type === GGMLType.Q6_K; b++) {
    const off = b * 210;
    const d = f16At(m.data, off + 208);
    for (let k = 0; k < 16; k++) side[16 * b + k] = d * ((m.data[off + 192 + k]! << 24) >> 24);
  }
}

/** Sums of each 32 consecutive inputs, for the min / offset terms of the Q4_1, Q5_1, Q4_K and Q5_K kernels: xsum[t][cols / 32]. */
export function fillXSums(x: Float32Array, n: number, cols: number, xsum: Float32Array): void {
  for (let t = 0; t < n; t++)
    for (let j = 0; j < cols / 32; j++) {
      let sum = 0;
      for (let i = 0; i < 32; i++) sum += x[t * cols + 32 * j + i]!;
      xsum[t * (cols / 32) + j] = sum;
    }
}

/** Formats whose f32-input kernels read the inputs in lane order (see dotLanes and permuteInputs). */
export const LANE_ORDER = new Set<GGMLType>([GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_K, GGMLType.Q6_K]);

/**
 * The inputs (n vectors of `cols` values) reordered for a LANE_ORDER format's f32 kernels, into `out`
 * (slot s of the kernels' reading order holds value v; see dotLanes): Q8_0 and Q6_K per 16 values,
 * out[4j + i] = x[4i + j] (lane i's byte j); Q4_0 per 32 values, out[4k + i] = x[4i + b + 16h] and Q4_K
 * per 64 values, out[32c + 4k + i] = x[32h + 16c + 4i + b], with k = 2b + h (lane i's nibble k of the
 * c-th 16 bytes).
 */
export function permuteInputs(type: GGMLType, x: Float32Array, n: number, cols: number, out: Float32Array): void {
  const len = n * cols;
  if (type === GGMLType.Q8_0 || type === GGMLType.Q6_K)
    for (let o = 0; o < len; o += 16)
      for (let j = 0; j < 4; j++) for (let i = 0; i < 4; i++) out[o + 4 * j + i] = x[o + 4 * i + j]!;
  else if (type === GGMLType.Q4_0)
    for (let o = 0; o < len; o += 32)
      for (let k = 0; k < 8; k++) for (let i = 0; i < 4; i++) out[o + 4 * k + i] = x[o + 4 * i + (k >> 1) + 16 * (k & 1)]!;
  else if (type === GGMLType.Q4_K)
    for (let o = 0; o < len; o += 64)
      for (let c = 0; c < 2; c++)
        for (let k = 0; k < 8; k++) for (let i = 0; i < 4; i++) out[o + 32 * c + 4 * k + i] = x[o + 32 * (k & 1) + 16 * c + 4 * i + (k >> 1)]!;
  else throw new RangeError(`permuteInputs: ${GGMLType[type]} kernels read their inputs in order`);
}

/**
 * The activation blocks a weight type's "_i8" kernels read, as llama.cpp's CPU pairs them: Q8_0
 * (32 values, scale rounded to f16) for Q8_0, Q4_0 and Q5_0 weights; Q8_K (256 values, f32 scale)
 * for the K-quants (Q4_K, Q5_K, Q6_K).
 */
export function activationBlock(type: GGMLType): 32 | 256 {
  return type === GGMLType.Q4_K || type === GGMLType.Q5_K || type === GGMLType.Q6_K ? 256 : 32;
}

/**
 * The 16-bit inputs' largest |q|: 127 * 256 + 127, so that every q is 256 h + l with h and l signed
 * bytes (l = q's low byte read as signed, h = (q - l) / 256), the two byte planes the "_s16" kernels
 * multiply with the relaxed 8-bit dot product (see splitPlanes). 0.4% short of i16's 32767.
 */
export const Q16_MAX = 32639;

/**
 * The "_s16" kernels' inputs (int-tile-wasm.ts's qrows16s writes the same): 16-bit q (quantizeActivations'
 * bits 16, |q| <= Q16_MAX) and their [d, d sum q] pairs ds, as byte planes per 16 values, q = 256 h + l
 * with l = q's low byte read as signed: l's 16 bytes then h's 16; and per 32 values [d, d sum q] (f32)
 * then the sums of q of its two 16-value halves (i32), 16 bytes in `data`.
 */
export function splitPlanes(q: Int16Array, ds: Float32Array, planes: Int8Array, data: ArrayBuffer | SharedArrayBuffer, dataOffset = 0): void {
  const f = new Float32Array(data, dataOffset, q.length / 8), i = new Int32Array(data, dataOffset, q.length / 8);
  for (let g = 0; g < q.length / 16; g++) {
    let sum = 0;
    for (let j = 0; j < 16; j++) {
      const v = q[16 * g + j]!, l = (v << 24) >> 24;
      planes[32 * g + j] = l;
      planes[32 * g + 16 + j] = (v - l) / 256;
      sum += v;
    }
    const b = g >> 1; // (the 32-value block: [d, d sum q, sum of its first 16, of its second 16])
    i[4 * b + 2 + (g & 1)] = sum;
    if ((g & 1) === 0) [f[4 * b], f[4 * b + 1]] = [ds[2 * b]!, ds[2 * b + 1]!];
  }
}

/**
 * Quantize n input vectors of `cols` values to 8 bits for the "_i8" / "_i16" kernels, with ggml's rounding:
 * block 32 as x86 llama.cpp's quantize_row_q8_0 (d = max|x| / 127 stored as f16, q = round-to-even
 * (x * 127 / max|x|)); block 256 as quantize_row_q8_K (d = max / -127 in f32 with max the signed value of
 * largest magnitude, q = min(127, round-to-even(x / d))). Out: q [n][cols] (as i16, |q| <= 127) and,
 * per 32 values, the pair [d, d * sum q] in ds [n][cols / 32][2]. q: i16 for the SIMD 1.0 kernels, i8 for the relaxed ones.
 * `bits` 16 (block 32 only; the 16-bit inputs, WasmExecutor's activations 'int16'): d = max|x| / Q16_MAX
 * (32639) kept in f32, q = round-to-even(x / d) clamped to +-Q16_MAX (0 where d is 0), into an Int16Array: |x - d q|
 * <= d / 2 up to the f32 rounding of x / d.
 */
export function quantizeActivations(x: Float32Array, n: number, cols: number, block: 32 | 256, q: Int16Array | Int8Array, ds: Float32Array, bits: 8 | 16 = 8): void {
  if (bits === 16 && (block !== 32 || !(q instanceof Int16Array))) throw new RangeError('quantizeActivations: 16-bit inputs are quantized per 32 values into an Int16Array');
  const fr = Math.fround;
  for (let b = 0; b < (n * cols) / block; b++) {
    const o = b * block;
    let d: number, id: number;
    if (block === 32) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[o + j]!));
      if (bits === 16) {
        d = fr(amax / Q16_MAX);
        let sum = 0;
        for (let j = o; j < o + 32; j++) {
          const v = Math.max(-Q16_MAX, Math.min(Q16_MAX, nearestInt(fr(x[j]! / (d || 1)))));
          q[j] = v;
          sum += v;
        }
        ds[o / 16] = d;
        ds[o / 16 + 1] = fr(d * sum);
        continue;
      }
      d = f16ToF32(f32ToF16(fr(amax / 127)));
      id = amax ? fr(127 / amax) : 0;
    } else {
      const max = signedMax(x, o, 256);
      id = max ? fr(-127 / max) : 0;
      d = max ? fr(1 / id) : 0;
    }
    for (let g = 0; g < block; g += 32) {
      let sum = 0;
      for (let j = g; j < g + 32; j++) {
        const v = Math.min(127, nearestInt(fr(x[o + j]! * id)));
        q[o + j] = v;
        sum += v;
      }
      ds[(o + g) / 16] = d;
      ds[(o + g) / 16 + 1] = fr(d * sum);
    }
  }
}
