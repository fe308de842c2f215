// Prefill with integer activations (WasmExecutor's activations 'int16', the default, and 'int8', as
// llama.cpp's CPU backend multiplies a batch): Q8_0 and Q4_0 weights (and with 16-bit inputs Q4_K and
// Q5_K: itilem, Q6_K: itileh, below) times inputs quantized to 16 or 8 bits per 32 values, in integers, each 32-value
// block's integer dot product scaled once by (weight scale x input scale). 16-bit inputs go through the
// i16 tile below as 8-bit ones do on SIMD 1.0.
//
// The weights go through a tile as in the f32 path (parallel.ts's runSlice): 64 rows at a time are
// unpacked to i16 values (`q8_0_itile`, `q4_0_itile`: row r at tile + r * cols * 2, its blocks'
// f32 scales at scales + (r * nBlocks + b) * 4), then multiplied with every input by `itile`:
// 2 rows x 8 inputs a pass, with the inputs' values in lanes: i32x4.dot_i16x8_s of a row's pair of
// values (w[2j], w[2j+1]) splatted to the four lanes with four inputs' pairs (lane k: input k's
// x[2j], x[2j+1]) gives four inputs' two products summed, eight multiply-adds an instruction where
// f32x4 FMA does four, and only one load of the row per four inputs. After each 32-value block the
// four i32 sums are converted and multiplied with (row scale x the four inputs' scales) into f32 sums.
//
//   itile(tile, scales, xp, xd, out, n8, n, rows, cols, r0, r1)
//     out[t][r] for t < n and r in [r0, r1) (r1 - r0 rounded up to pairs: the tile holds a row past
//     its last), inputs packed by qpack (below; packInputs is its JavaScript statement): xp holds groups of four inputs, per 32-value block 16
//     pairs x 4 inputs x 2 i16 (256 bytes); xd [group][block][4] their f32 scales; n8 = n rounded up
//     to 8 (packInputs pads with zeros).
//
// With the relaxed dot product (a module built with it: Node 22+, current browsers), Q4_0 has a twin
// path with 16 multiply-adds an instruction: `q4_0_itile8` unpacks the stored nibbles n (value n - 8) to
// bytes, `qpack8` packs the inputs as i8 (packInputs' i8 form), and `itile8` multiplies them (productBody's u8
// form), taking 8 * (each input's block sum q) off each block sum; Q8_0's twin, `q8_0_itile8` and
// `itile8x2`, splits each value in two such bytes (the u8x2 form).
//
// Precision: the block products are exact (|w q| <= 128 * 127 * 32, with 16-bit inputs 128 * 32639 *
// 32 < 2^31; Q4_K's and Q5_K's q are at most 31); each is scaled in f32
// (two roundings) and summed in f32 per (row, input): the product of the dequantized weights with the
// dequantized inputs, up to f32 rounding, as the "_i8" decode kernels compute it (quant-wasm.ts).

import { I32, F32, V128, op, simd, uleb, vec, whileLess, f32x4, i32x4, v128, ifThen, addTo } from './wasm-emit.js';
import { pushF16, Q16_MAX } from './quant-wasm.js';
import { GGMLType } from '../base/tensor.js';

const s = (name: keyof typeof simd) => op.simd(simd[name]);
const load32Splat = (offset: number) => [...op.simd(0x09), 2, ...uleb(offset)];
const f32 = { abs: [0x8b], max: [0x97], div: [0x95], mul: [0x94], nearest: [0x90], ne: [0x5c], ge: [0x60] };
const i32x4MinS = op.simd(0xb6), i32x4MaxS = op.simd(0xb8), i32x4TruncSat = op.simd(0xf8), i16x8Narrow = op.simd(0x85), i32Extract = (l: number) => [...op.simd(0x1b), l];

/** Pairs of values per step of the block loop (1, 2, 4, 8 and 16 measured: 1 the fastest, 16 the slowest: V8 hoists the loads of an unrolled block and spills). */
const PAIRS = 1;

/**
 * itile for RN rows x GN groups of four inputs a pass: 2 x 2 is used (the i16 tile, one thread, a 64 x
 * 576 tile times 120 inputs, GMAC/s: 2 x 2 20-30, 2 x 3 20-30, 3 x 2 17-22, 1 x 3 16-24; the i32 and f32
 * sums of larger blocks do not fit x86-64's 16 vector registers. u8x2 too: a 135M Q8_0 prefill on Node
 * 24 ran 1.12-1.24x as fast as with the i16 tile at 2 x 2, 0.95x at 2 x 1, 0.99x at 1 x 2).
 * `u8` (itile8): the tile holds Q4_0's stored nibbles n as bytes and the inputs are packed as i8 by
 * qpack8: each step takes four values of a row (splatted) and of four inputs (lane k: input k's four)
 * into one i32x4.relaxed_dot_i8x16_i7x16_add_s (16 multiply-adds; n in 0..15 is its 0..127 operand as
 * it is); after the block, 8 * (sum q of each input's 32 values, from qpack8) is taken off each sum, so
 * that it is the block's product with n - 8, exactly.
 * `u8x2` (itile8x2, Q8_0): each value w is two such bytes in the tile, l = w & 15 and h = (w >> 4) + 8
 * (each block's 32 l, then its 32 h), so w = 16 h + l - 128: two dot products a step, and after the
 * block 16 * (the h sums) + (the l sums) - 128 * sum q, exactly.
 */
function productBody(form: 'i16' | 'i16m' | 'i16h' | 'u8' | 'u8x2' = 'i16', RN = 2, GN = 2): number[] {
  const u8 = form === 'u8' || form === 'u8x2', x2 = form === 'u8x2', mins = form === 'i16m', halves = form === 'i16h';
  const [TILE, SCALES, XP, XD, OUT, N8, N, ROWS, COLS, R0, R1, MINS] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const params = mins ? 12 : 11;
  let next = params;
  const take = () => next++;
  const many = (k: number) => Array.from({ length: k }, take);
  const [RR, TG, B, NB, ROWB, XSTEP, DSTEP, T, WEND, XC] = many(10) as [number, number, number, number, number, number, number, number, number, number];
  // pointers: rows' values and scales (i16m: and mins), groups' values, scales (and u8: sums q; i16m: the blocks' sums d sum q)
  const WP = many(RN), SP = many(RN), MP = many(mins ? RN : 0), XPG = many(GN), DP = many(GN), CP = many(u8 || mins ? GN : 0);
  const i32s = next - params;
  const I = many(RN * GN); // i32 block sums [row][group] (u8x2: of the l bytes)
  const IH = many(x2 || halves ? RN * GN : 0); // (u8x2: the h bytes' sums; i16h: the block's second 16 values')
  const F = many(RN * GN); // f32 sums [row][group]
  const W = many(RN), WH = many(x2 ? RN : 0), X = many(GN);
  const C = many(u8 ? 1 : 0)[0]; // (u8: a group's 8 * sum q for the block; u8x2: 128 * sum q)
  const locals = [[i32s, I32], [next - params - i32s, V128]];
  const at = (r: number, g: number) => GN * r + g;
  // One block: 16 pairs, PAIRS a step (i16h: the first 8 into I, the next 8 into IH).
  const stepsInto = (I: number[]): number[] => {
    const steps: number[] = [];
    for (let j = 0; j < PAIRS; j++) {
      for (let r = 0; r < RN; r++) steps.push(...op.get(WP[r]!), ...load32Splat(4 * j), ...op.set(W[r]!));
      for (let r = 0; r < (x2 ? RN : 0); r++) steps.push(...op.get(WP[r]!), ...load32Splat(32 + 4 * j), ...op.set(WH[r]!));
      for (let g = 0; g < GN; g++) steps.push(...op.get(XPG[g]!), ...op.v128Load(16 * j), ...op.set(X[g]!));
      const rdot = (acc: number, w: number, g: number) => [...op.get(X[g]!), ...op.get(w), ...op.get(acc), ...s('i32x4RelaxedDotI8x16I7x16AddS'), ...op.set(acc)];
      for (let r = 0; r < RN; r++)
        for (let g = 0; g < GN; g++)
          steps.push(...(u8
            ? [...rdot(I[at(r, g)]!, W[r]!, g), ...(x2 ? rdot(IH[at(r, g)]!, WH[r]!, g) : [])]
            : [...op.get(I[at(r, g)]!), ...op.get(W[r]!), ...op.get(X[g]!), ...s('i32x4DotI16x8S'), ...s('i32x4Add'), ...op.set(I[at(r, g)]!)]));
    }
    steps.push(...WP.slice(1).flatMap((p) => addTo(p, 4 * PAIRS)), ...XPG.flatMap((p) => addTo(p, 16 * PAIRS)));
    return steps;
  };
  const block: number[] = [
    ...[...I, ...IH].flatMap((a) => [...op.v128Zero, ...op.set(a)]),
    ...op.get(WP[0]!), ...op.i32(u8 || halves ? 32 : 64), ...op.i32Add, ...op.set(WEND), // (the block's bytes of a tile row; u8x2: of its l bytes; i16h: its first half)
    ...whileLess(WP[0]!, WEND, 4 * PAIRS, stepsInto(I)),
    ...(halves ? [...op.get(WP[0]!), ...op.i32(32), ...op.i32Add, ...op.set(WEND), ...whileLess(WP[0]!, WEND, 4 * PAIRS, stepsInto(IH))] : []),
    ...(x2 ? WP.flatMap((p) => addTo(p, 32)) : []), // (past the h bytes)
  ];
  // F[r][g] += convert(I[r][g] (u8: - 8 sum q; u8x2: + 16 IH[r][g] - 128 sum q)) * (splat(row scale) * input scales)
  // (i16m: then F[r][g] -= splat(row min) * the inputs' block sums d sum q: Q4_K's w = scale q - min)
  for (let g = 0; g < GN; g++) {
    if (u8) block.push(...op.get(CP[g]!), ...op.v128Load(), ...op.i32(x2 ? 7 : 3), ...i32x4.shl, ...op.set(C!));
    for (let r = 0; r < RN; r++)
      block.push(
        ...op.get(F[at(r, g)]!),
        ...(halves
          // (i16h: each half's sum times its own scale, Q6_K's 16-value sub-blocks)
          ? [...op.get(I[at(r, g)]!), ...s('f32x4ConvertI32S'), ...op.get(SP[r]!), ...op.f32Load(), ...f32x4.splat, ...f32x4.mul,
            ...op.get(IH[at(r, g)]!), ...s('f32x4ConvertI32S'), ...op.get(SP[r]!), ...op.f32Load(4), ...f32x4.splat, ...f32x4.mul, ...f32x4.add,
            ...op.get(DP[g]!), ...op.v128Load(), ...f32x4.mul]
          : [...op.get(I[at(r, g)]!), ...(x2 ? [...op.get(IH[at(r, g)]!), ...op.i32(4), ...i32x4.shl, ...i32x4.add] : []), ...(u8 ? [...op.get(C!), ...s('i32x4Sub')] : []), ...s('f32x4ConvertI32S'),
            ...op.get(SP[r]!), ...op.f32Load(), ...f32x4.splat, ...op.get(DP[g]!), ...op.v128Load(), ...f32x4.mul,
            ...f32x4.mul]),
        ...f32x4.add,
        ...(mins ? [...op.get(MP[r]!), ...op.f32Load(), ...f32x4.splat, ...op.get(CP[g]!), ...op.v128Load(), ...f32x4.mul, ...f32x4.sub] : []),
        ...op.set(F[at(r, g)]!),
      );
  }
  block.push(...SP.flatMap((p) => addTo(p, halves ? 8 : 4)), ...MP.flatMap((p) => addTo(p, 4)), ...DP.flatMap((p) => addTo(p, 16)), ...CP.flatMap((p) => addTo(p, 16)));
  // out[t][row] = lane k of F[r][g], t = TG + 4g + k, for t < n and row < r1
  const stores: number[] = [];
  for (let r = 0; r < RN; r++)
    for (let g = 0; g < GN; g++)
      for (let k = 0; k < 4; k++)
        stores.push(
          ...op.get(TG), ...op.i32(4 * g + k), ...op.i32Add, ...op.set(T),
          ...op.get(T), ...op.get(N), ...op.i32LtU, ...op.get(RR), ...op.i32(r), ...op.i32Add, ...op.get(R1), ...op.i32LtU, ...[0x71], // i32.and
          ...ifThen([
            ...op.get(OUT), ...op.get(T), ...op.get(ROWS), ...op.i32Mul, ...op.get(RR), ...op.i32Add, ...op.i32(r), ...op.i32Add, ...op.i32(2), ...op.i32Shl, ...op.i32Add,
            ...op.get(F[at(r, g)]!), ...f32x4.extract(k), ...op.f32Store,
          ]),
        );
  const code = [
    ...op.get(COLS), ...op.i32(5), ...op.i32ShrU, ...op.set(NB),
    ...op.get(COLS), ...op.i32(form === 'u8' ? 0 : 1), ...op.i32Shl, ...op.set(ROWB), // bytes per tile row (i16, u8x2's two bytes, or u8)
    ...op.get(NB), ...op.i32(u8 ? 7 : 8), ...op.i32Shl, ...op.set(XSTEP), // bytes per input group (256 per block, u8 128)
    ...op.get(NB), ...op.i32(4), ...op.i32Shl, ...op.set(DSTEP), // bytes of scales per input group
    // (u8: the sums q after the scales, [group][block][4] i32)
    ...op.get(XD), ...op.get(N8), ...op.i32(2), ...op.i32ShrU, ...op.get(DSTEP), ...op.i32Mul, ...op.i32Add, ...op.set(XC),
    ...op.get(R0), ...op.set(RR),
    ...whileLess(RR, R1, RN, [
      ...whileLessFrom(TG, N8, 4 * GN, [
        ...WP.flatMap((p, r) => [...op.get(TILE), ...op.get(RR), ...op.i32(r), ...op.i32Add, ...op.get(ROWB), ...op.i32Mul, ...op.i32Add, ...op.set(p)]),
        ...SP.flatMap((p, r) => [...op.get(SCALES), ...op.get(RR), ...op.i32(r), ...op.i32Add, ...op.get(NB), ...op.i32Mul, ...op.i32(halves ? 3 : 2), ...op.i32Shl, ...op.i32Add, ...op.set(p)]),
        ...MP.flatMap((p, r) => [...op.get(MINS), ...op.get(RR), ...op.i32(r), ...op.i32Add, ...op.get(NB), ...op.i32Mul, ...op.i32(2), ...op.i32Shl, ...op.i32Add, ...op.set(p)]),
        ...XPG.flatMap((p, g) => [...op.get(XP), ...op.get(TG), ...op.i32(2), ...op.i32ShrU, ...op.i32(g), ...op.i32Add, ...op.get(XSTEP), ...op.i32Mul, ...op.i32Add, ...op.set(p)]),
        ...DP.flatMap((p, g) => [...op.get(XD), ...op.get(TG), ...op.i32(2), ...op.i32ShrU, ...op.i32(g), ...op.i32Add, ...op.get(DSTEP), ...op.i32Mul, ...op.i32Add, ...op.set(p)]),
        ...CP.flatMap((p, g) => [...op.get(XC), ...op.get(TG), ...op.i32(2), ...op.i32ShrU, ...op.i32(g), ...op.i32Add, ...op.get(DSTEP), ...op.i32Mul, ...op.i32Add, ...op.set(p)]),
        ...F.flatMap((a) => [...op.v128Zero, ...op.set(a)]),
        ...whileLessFrom(B, NB, 1, block),
        ...stores,
      ]),
    ]),
  ];
  return [...vec(locals.map(([n, t]) => [...uleb(n!), t!])), ...code, ...op.end];
}

/** local i = 0; while (i < limit) { body; i += step }. */
function whileLessFrom(i: number, limit: number, step: number, body: number[]): number[] {
  return [...op.i32(0), ...op.set(i), ...whileLess(i, limit, step, body)];
}

/**
 * Rows [r0, r1) of a Q8_0 or Q4_0 matrix (w, rowBytes a row) unpacked to i16 at tile + r * cols * 2,
 * with their blocks' f32 scales at scales + (r * nBlocks + b) * 4. Params: (w, rowBytes, nBlocks, r0, r1, tile, scales).
 * 'q4_0_u8' (for itile8): Q4_0's stored nibbles n (the value is n - 8) as bytes at tile + r * cols.
 */
function unpackBody(type: 'q8_0' | 'q4_0' | 'q4_0_u8' | 'q8_0_u8x2'): number[] {
  const [Wp, ROW_BYTES, NBLOCKS, R, R1, TILE, SCALES] = [0, 1, 2, 3, 4, 5, 6];
  const [P, Q, SP, B] = [7, 8, 9, 10];
  const [V, LO, HI] = [11, 12, 13];
  const locals = [[4, I32], [3, V128]];
  const widen = (src: number, at: number) => [
    ...op.get(Q), ...op.get(src), ...s('i16x8ExtendLowS'), ...op.v128Store(at),
    ...op.get(Q), ...op.get(src), ...s('i16x8ExtendHighS'), ...op.v128Store(at + 16),
  ];
  const nibbleBytes = [
    ...op.get(P), ...op.v128Load(2), ...op.set(V),
    ...op.get(Q), ...op.get(V), ...op.i32(0x0f), ...s('i8x16Splat'), ...v128.and, ...op.v128Store(0),
    ...op.get(Q), ...op.get(V), ...op.i32(4), ...op.simd(0x8d), ...op.i32(0x0f), ...s('i8x16Splat'), ...v128.and, ...op.v128Store(16),
  ];
  // (q8_0_u8x2: each half's bytes w as l = w & 15, then h = (w >> 4) + 8, the top nibble's bits xor 8)
  const splitBytes = [0, 16].flatMap((half) => [
    ...op.get(P), ...op.v128Load(2 + half), ...op.set(V),
    ...op.get(Q), ...op.get(V), ...op.i32(0x0f), ...s('i8x16Splat'), ...v128.and, ...op.v128Store(half),
    ...op.get(Q), ...op.get(V), ...op.i32(4), ...op.simd(0x8d), ...op.i32(0x0f), ...s('i8x16Splat'), ...v128.and, ...op.i32(8), ...s('i8x16Splat'), ...op.simd(0x51), ...op.v128Store(32 + half), // (v128.xor)
  ]);
  const perBlock = type === 'q8_0_u8x2' ? splitBytes : type === 'q4_0_u8' ? nibbleBytes : type === 'q8_0'
    ? [...op.get(P), ...op.v128Load(2), ...op.set(LO), ...op.get(P), ...op.v128Load(18), ...op.set(HI), ...widen(LO, 0), ...widen(HI, 32)]
    : [
      // values 0..15: the low nibbles, 16..31: the high ones, each minus 8
      ...op.get(P), ...op.v128Load(2), ...op.set(V),
      ...op.get(V), ...op.i32(0x0f), ...s('i8x16Splat'), ...v128.and, ...op.i32(8), ...s('i8x16Splat'), ...s('i8x16Sub'), ...op.set(LO),
      ...op.get(V), ...op.i32(4), ...op.simd(0x8d), ...op.i32(0x0f), ...s('i8x16Splat'), ...v128.and, ...op.i32(8), ...s('i8x16Splat'), ...s('i8x16Sub'), ...op.set(HI), // (i16x8.shr_u, then the mask)
      ...widen(LO, 0), ...widen(HI, 32),
    ];
  const code = whileLess(R, R1, 1, [
    ...op.get(Wp), ...op.get(R), ...op.get(ROW_BYTES), ...op.i32Mul, ...op.i32Add, ...op.set(P),
    ...op.get(TILE), ...op.get(R), ...op.get(NBLOCKS), ...op.i32Mul, ...op.i32(type === 'q4_0_u8' ? 5 : 6), ...op.i32Shl, ...op.i32Add, ...op.set(Q), // 64 bytes a block (u8: 32)
    ...op.get(SCALES), ...op.get(R), ...op.get(NBLOCKS), ...op.i32Mul, ...op.i32(2), ...op.i32Shl, ...op.i32Add, ...op.set(SP),
    ...whileLessFrom(B, NBLOCKS, 1, [
      ...op.get(SP), ...pushF16(P, 0), ...op.f32Store,
      ...perBlock,
      ...addTo(P, type.startsWith('q8_0') ? 34 : 18), ...addTo(Q, type === 'q4_0_u8' ? 32 : 64), ...addTo(SP, 4),
    ]),
  ]);
  return [...vec(locals.map(([n, t]) => [...uleb(n!), t!])), ...code, ...op.end];
}

/**
 * q4_k_itile(w, rowBytes, nBlocks, r0, r1, tile, scales, side, mins): rows [r0, r1) of a Q4_K matrix
 * for itilem: each super-block's 4-bit q (144 bytes: d, dmin, 12 bytes of 6-bit scales and mins, then
 * 128 bytes of nibbles: in each 32 bytes the low nibbles are 32 values, the high ones the next 32) as
 * i16 at tile + r * cols * 2, and per 32 values the scale d * sc and the min dmin * m (the side table
 * quant-wasm.ts's K-quant kernels read, [scale, min] x 8 per super-block) at scales and mins + (r *
 * nBlocks + b) * 4, so that w = scale * q - min exactly as the side table's values give it.
 * q5_k_itile: Q5_K the same way (176 bytes: the nibbles at 48, and at 16 the 32 bytes qh whose bit 2 j
 * (low nibbles) or 2 j + 1 (high) of byte l is the fifth bit of value l of the j-th 64).
 */
function unpackK(type: 'q4_k' | 'q5_k'): number[] {
  const q5 = type === 'q5_k';
  const [Wp, ROW_BYTES, NBLOCKS, R, R1, TILE, SCALES, SIDE, MINS] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [P, Q, SP, MP, SD, B, NS] = [9, 10, 11, 12, 13, 14, 15];
  const [V, H0, H1] = [16, 17, 18];
  const locals = [[7, I32], [3, V128]];
  const qs = q5 ? 48 : 16;
  const widen = (at: number) => [
    ...op.get(Q), ...op.get(V), ...s('i16x8ExtendLowS'), ...op.v128Store(at),
    ...op.get(Q), ...op.get(V), ...s('i16x8ExtendHighS'), ...op.v128Store(at + 16),
  ];
  // (i16x8.shr_u then a byte mask: each byte's own bits, as quant-wasm.ts's nibbles)
  const nibbles = (half: 'low' | 'high', src: number) => [
    ...op.get(P), ...op.v128Load(src),
    ...(half === 'high' ? [...op.i32(4), ...op.simd(0x8d)] : []),
    ...op.i32(0x0f), ...s('i8x16Splat'), ...v128.and,
  ];
  // Q5_K: | bit `bit` of each qh byte, moved to bit 4 (i16x8.shr_u, the byte mask, i16x8.shl)
  const fifth = (h: number, bit: number) => [
    ...op.get(h), ...(bit ? [...op.i32(bit), ...op.simd(0x8d)] : []), ...op.i32(1), ...s('i8x16Splat'), ...v128.and, ...op.i32(4), ...op.simd(0x8b), ...v128.or,
  ];
  const superBlock: number[] = q5 ? [...op.get(P), ...op.v128Load(16), ...op.set(H0), ...op.get(P), ...op.v128Load(32), ...op.set(H1)] : [];
  for (let j = 0; j < 4; j++)
    // values 64 j + 0..31: the low nibbles of the j-th 32 bytes; 64 j + 32..63: their high nibbles
    for (const [half, base, bit] of [['low', 0, 2 * j], ['high', 32, 2 * j + 1]] as const)
      for (const [c, h] of [[0, H0], [16, H1]] as const) superBlock.push(...nibbles(half, qs + 32 * j + c), ...(q5 ? fifth(h, bit) : []), ...op.set(V), ...widen(2 * (64 * j + base + c)));
  for (let i = 0; i < 8; i++)
    superBlock.push(
      ...op.get(SP), ...op.get(SD), ...op.f32Load(8 * i), ...[0x38, 2, ...uleb(4 * i)], // f32.store offset 4 i
      ...op.get(MP), ...op.get(SD), ...op.f32Load(8 * i + 4), ...[0x38, 2, ...uleb(4 * i)],
    );
  const rows = superBlockRows({ Wp, ROW_BYTES, NBLOCKS, R, R1, TILE, SIDE, P, Q, SD, B, NS }, q5 ? 176 : 144, [[SCALES, SP, 2], [MINS, MP, 2]], superBlock);
  return [...vec(locals.map(([n, t]) => [...uleb(n!), t!])), ...rows, ...op.end];
}

/**
 * A K-quant unpacking kernel's loops: for each row of [R, R1), P at its first super-block (ROW_BYTES a
 * row), Q at its tile row (64 bytes a 32-value block), SD at its side-table row (16 f32 a super-block)
 * and each `perBlock` [base local, pointer local, log2 of its bytes per 32-value block] at its row; then
 * `superBlock` for each of its NBLOCKS / 8 super-blocks, every pointer moved on by one.
 */
function superBlockRows(l: { Wp: number; ROW_BYTES: number; NBLOCKS: number; R: number; R1: number; TILE: number; SIDE: number; P: number; Q: number; SD: number; B: number; NS: number }, blockBytes: number, perBlock: [number, number, number][], superBlock: number[]): number[] {
  const rowPointer = (base: number, count: number, shift: number, into: number) => [...op.get(base), ...op.get(l.R), ...op.get(count), ...op.i32Mul, ...op.i32(shift), ...op.i32Shl, ...op.i32Add, ...op.set(into)];
  return [
    ...op.get(l.NBLOCKS), ...op.i32(3), ...op.i32ShrU, ...op.set(l.NS), // super-blocks a row
    ...whileLess(l.R, l.R1, 1, [
      ...op.get(l.Wp), ...op.get(l.R), ...op.get(l.ROW_BYTES), ...op.i32Mul, ...op.i32Add, ...op.set(l.P),
      ...rowPointer(l.TILE, l.NBLOCKS, 6, l.Q),
      ...perBlock.flatMap(([base, p, shift]) => rowPointer(base, l.NBLOCKS, shift, p)),
      ...rowPointer(l.SIDE, l.NS, 6, l.SD),
      ...whileLessFrom(l.B, l.NS, 1, [...superBlock, ...addTo(l.P, blockBytes), ...addTo(l.Q, 512), ...perBlock.flatMap(([, p, shift]) => addTo(p, 8 << shift)), ...addTo(l.SD, 64)]),
    ]),
  ];
}

/**
 * q6_k_itile(w, rowBytes, nBlocks, r0, r1, tile, scales, side): rows [r0, r1) of a Q6_K matrix for
 * itileh: each super-block's values q - 32 (210 bytes: 128 bytes of low nibbles ql, 64 of 2-bit highs
 * qh, the 8-bit scales, d; in each half of 128 values, for l < 32: value l from ql[l]'s low nibble and
 * qh[l]'s bits 0-1, l + 32 from ql[l + 32] and bits 2-3, l + 64 from ql[l]'s high nibble and bits 4-5,
 * l + 96 from ql[l + 32]'s high nibble and bits 6-7) as i16 at tile + r * cols * 2, and each 16
 * values' scale d * sc (the side table's, 16 a super-block) at scales + (r * 2 nBlocks + i) * 4.
 */
function unpackQ6K(): number[] {
  const [Wp, ROW_BYTES, NBLOCKS, R, R1, TILE, SCALES, SIDE] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [P, Q, SP, SD, B, NS] = [8, 9, 10, 11, 12, 13];
  const [A, BV, H, V] = [14, 15, 16, 17];
  const locals = [[6, I32], [4, V128]];
  const mask = (m: number) => [...op.i32(m), ...s('i8x16Splat'), ...v128.and];
  const shr = (k: number) => (k ? [...op.i32(k), ...op.simd(0x8d)] : []); // (i16x8.shr_u: each byte's bits after the mask)
  const superBlock: number[] = [];
  for (let h = 0; h < 2; h++)
    for (const c of [0, 16]) {
      superBlock.push(...op.get(P), ...op.v128Load(64 * h + c), ...op.set(A), ...op.get(P), ...op.v128Load(64 * h + 32 + c), ...op.set(BV), ...op.get(P), ...op.v128Load(128 + 32 * h + c), ...op.set(H));
      // part p: (low nibble of A, of B, high nibble of A, of B) | (bits 2p, 2p + 1 of H) << 4, minus 32
      ([[A, 0], [BV, 0], [A, 4], [BV, 4]] as const).forEach(([src, nib], p) =>
        superBlock.push(
          ...op.get(src), ...shr(nib), ...mask(0x0f),
          ...op.get(H), ...shr(2 * p), ...mask(3), ...op.i32(4), ...op.simd(0x8b), ...v128.or, // (i16x8.shl)
          ...op.i32(32), ...s('i8x16Splat'), ...s('i8x16Sub'), ...op.set(V),
          ...op.get(Q), ...op.get(V), ...s('i16x8ExtendLowS'), ...op.v128Store(2 * (128 * h + 32 * p + c)),
          ...op.get(Q), ...op.get(V), ...s('i16x8ExtendHighS'), ...op.v128Store(2 * (128 * h + 32 * p + c) + 16),
        ));
    }
  for (let i = 0; i < 4; i++) superBlock.push(...op.get(SP), ...op.get(SD), ...op.v128Load(16 * i), ...op.v128Store(16 * i));
  // (two scales a 32-value block)
  const rows = superBlockRows({ Wp, ROW_BYTES, NBLOCKS, R, R1, TILE, SIDE, P, Q, SD, B, NS }, 210, [[SCALES, SP, 3]], superBlock);
  return [...vec(locals.map(([n, t]) => [...uleb(n!), t!])), ...rows, ...op.end];
}

/**
 * qpack(x, n, cols, xp, xd): n f32 inputs quantized to 8 bits per 32 values as quant-wasm.ts's
 * quantizeActivations does it for block 32 (llama.cpp's quantize_row_q8_0: d = max|x| / 127 rounded to
 * f16, q = round-to-even(x * (127 / max|x|)), at most 127), written in itile's order (packInputs); inputs
 * past n up to a multiple of 8 are zeros.
 */
/**
 * The 8-bit quantization of one 32-value block of f32 at local SRC, as quant-wasm.ts's quantizeActivations
 * does it (llama.cpp's quantize_row_q8_0): `amax` sets AMAX (V scratch), `d` sets D (the scale rounded
 * to f16; QUANT scratch) and ID (127 / amax, 0 for a zero block), quant(i) pushes the q of values
 * 4i..4i+3 as i32x4 (|q| <= 127).
 * `bits` 16 (quantizeActivations' 16-bit form): D = amax / Q16_MAX (32639) in f32 and q = x / D rounded to even,
 * clamped to +-Q16_MAX (a division, not a multiplication by Q16_MAX / amax: that reciprocal overflows to
 * infinity for blocks under 1e-34; a block whose D is 0 divides by 1 and gets zeros).
 */
function blockQuantization(SRC: number, V: number, AMAX: number, D: number, ID: number, QUANT: number, bits: 8 | 16 = 8): { amax: number[]; d: number[]; quant: (i: number) => number[] } {
  // amax over the block's 8 vectors, then across the lanes
  const amax = [
    ...op.v128Zero, ...op.set(V),
    ...Array.from({ length: 8 }, (_, i) => [...op.get(V), ...op.get(SRC), ...op.v128Load(16 * i), ...f32x4.abs, ...f32x4.max, ...op.set(V)]).flat(),
    ...op.get(V), ...f32x4.extract(0), ...op.get(V), ...f32x4.extract(1), ...f32.max, ...op.get(V), ...f32x4.extract(2), ...f32.max, ...op.get(V), ...f32x4.extract(3), ...f32.max, ...op.set(AMAX),
  ];
  // d = fr(amax / 127) rounded to f16: to its quantum, 2^(exponent - 10) or 2^-24 below f16's normals, to
  // even; 65536 and up is f16's infinity
  const d = bits === 16 ? [
    // (16 bits: d = fr(amax / Q16_MAX) kept in f32; ID is the divisor, d or 1 for a block whose d is 0)
    ...op.get(AMAX), ...op.f32Const(Q16_MAX), ...f32.div, ...op.set(D),
    ...op.get(D), ...op.f32Const(1), ...op.get(D), ...op.f32Const(0), ...f32.ne, ...op.select, ...op.set(ID),
  ] : [
    ...op.get(AMAX), ...op.f32Const(127), ...f32.div, ...op.set(D),
    ...op.get(D), ...[0xbc], ...op.i32(0x7f800000), ...op.i32And, ...op.i32(0x05000000), ...op.i32Sub, // i32.reinterpret_f32
    ...op.i32(0x33800000), ...op.get(D), ...[0xbc], ...op.i32(0x7f800000), ...op.i32And, ...op.i32(0x05000000), ...op.i32Sub, ...op.i32(0x33800000), ...[0x4a], ...op.select, // i32.gt_s: the larger quantum
    ...op.f32ReinterpretI32, ...op.set(QUANT),
    ...op.get(D), ...op.get(QUANT), ...f32.div, ...f32.nearest, ...op.get(QUANT), ...f32.mul, ...op.set(D),
    ...op.f32Const(Infinity), ...op.get(D), ...op.get(D), ...op.f32Const(65536), ...f32.ge, ...op.select, ...op.set(D),
    ...op.f32Const(127), ...op.get(AMAX), ...f32.div, ...op.f32Const(0), ...op.get(AMAX), ...op.f32Const(0), ...f32.ne, ...op.select, ...op.set(ID),
  ];
  const quant = (i: number) => bits === 16
    ? [...op.get(SRC), ...op.v128Load(16 * i), ...op.get(ID), ...f32x4.splat, ...f32x4.div, ...f32x4.nearest, ...i32x4TruncSat, ...i32x4.const(Q16_MAX), ...i32x4MinS, ...i32x4.const(-Q16_MAX), ...i32x4MaxS]
    : [...op.get(SRC), ...op.v128Load(16 * i), ...op.get(ID), ...f32x4.splat, ...f32x4.mul, ...f32x4.nearest, ...i32x4TruncSat, ...i32x4.const(127), ...i32x4MinS];
  return { amax, d, quant };
}
/**
 * qrows(x, n, cols, q, ds) (i16 q) and qrows8 (i8 q): quant-wasm.ts's quantizeActivations for 32-value
 * blocks, bit for bit (blockQuantization, as qpack): q [n][cols] row by row and ds [n][cols / 32] the
 * pairs [d, d * sum q] (the exact product rounded once), for the decode kernels' 8-bit inputs.
 * qrows16: the 16-bit form (i16 q); qround16 the same rounding, each value written back as fr(q d) in f32;
 * qrows16p the same q in Q4_0's "_p16" kernels' order per 32 values (0, 2, ..., 14, 1, 3, ..., 15, 16, 18,
 * ..., 30, 17, ..., 31); qrows16s the same q as two byte planes per 16 values (quant-wasm.ts's splitPlanes: the "_s16" kernels'
 * inputs), ds per 32 values [d, d * sum q, sum q of the first 16, of the second 16] (two f32, two i32).
 */
function qrowsBody(i8: boolean, bits: 8 | 16 = 8, f32Out = false, split = false, perm = false): number[] {
  const [Xp, N, COLS, QP, DS] = [0, 1, 2, 3, 4];
  const [T, NB, B, SRC, QOUT, DAT] = [5, 6, 7, 8, 9, 10];
  const [AMAX, D, ID, QUANT] = [11, 12, 13, 14];
  const [V, Q0, Q1, Q2, Q3, SUM, A, Bv, LA, LB] = [15, 16, 17, 18, 19, 20, 21, 22, 23, 24];
  const locals = [[6, I32], [4, F32], [10, V128]];
  const { amax, d, quant } = blockQuantization(SRC, V, AMAX, D, ID, QUANT, bits);
  const block: number[] = [...amax, ...d, ...op.get(DAT), ...op.get(D), ...op.f32Store, ...op.v128Zero, ...op.set(SUM)];
  // (split, qrows16s: each 16 values' q as two byte planes, l = q's low byte as signed and h = (q - l) / 256
  // (|q| <= Q16_MAX keeps h a signed byte), l's 16 then h's 16; and each 16 values' sum q (i32) after the pair)
  const [i16Shl, i16ShrS, i16Sub, i8Narrow] = [op.simd(0x8b), op.simd(0x8c), op.simd(0x91), op.simd(0x65)];
  for (let h = 0; h < (split ? 2 : 0); h++) {
    [Q0, Q1, Q2, Q3].forEach((q, i) => block.push(...quant(4 * h + i), ...op.set(q)));
    block.push(
      ...op.get(Q0), ...op.get(Q1), ...i32x4.add, ...op.get(Q2), ...i32x4.add, ...op.get(Q3), ...i32x4.add, ...op.set(V),
      ...op.get(SUM), ...op.get(V), ...i32x4.add, ...op.set(SUM),
      ...op.get(DAT), ...[0, 1, 2, 3].flatMap((l) => [...op.get(V), ...i32Extract(l), ...(l ? op.i32Add : [])]), ...op.i32Store(8 + 4 * h),
      ...op.get(Q0), ...op.get(Q1), ...i16x8Narrow, ...op.set(A), ...op.get(Q2), ...op.get(Q3), ...i16x8Narrow, ...op.set(Bv),
      ...op.get(A), ...op.i32(8), ...i16Shl, ...op.i32(8), ...i16ShrS, ...op.set(LA),
      ...op.get(Bv), ...op.i32(8), ...i16Shl, ...op.i32(8), ...i16ShrS, ...op.set(LB),
      ...op.get(QOUT), ...op.get(LA), ...op.get(LB), ...i8Narrow, ...op.v128Store(32 * h),
      ...op.get(QOUT), ...op.get(A), ...op.get(LA), ...i16Sub, ...op.i32(8), ...i16ShrS, ...op.get(Bv), ...op.get(LB), ...i16Sub, ...op.i32(8), ...i16ShrS, ...i8Narrow, ...op.v128Store(32 * h + 16),
    );
  }
  const qs = i8 ? [Q0, Q1, Q2, Q3] : [Q0, Q1]; // the vectors of one store: 16 values as i8, 8 as i16
  // (f32Out: each four values' q converted and times d, stored as f32: the rounded inputs themselves)
  for (let i = 0; i < 8 && f32Out; i++)
    block.push(...quant(i), ...op.set(Q0), ...op.get(SUM), ...op.get(Q0), ...i32x4.add, ...op.set(SUM),
      ...op.get(QOUT), ...op.get(Q0), ...op.simd(0xfa), ...op.get(D), ...f32x4.splat, ...f32x4.mul, ...op.v128Store(16 * i)); // f32x4.convert_i32x4_s
  // (perm, qrows16p: the 32 values' i16 q as 0, 2, ..., 14, then 1, 3, ..., 15, then 16, 18, ..., 30, then
  // 17, 19, ..., 31: Q4_0's "_p16" kernels' order)
  const halves = [A, Bv, LA, LB];
  for (let h = 0; h < (perm ? 4 : 0); h++)
    block.push(...[Q0, Q1].flatMap((q, i) => [...quant(2 * h + i), ...op.set(q), ...op.get(SUM), ...op.get(q), ...i32x4.add, ...op.set(SUM)]), ...op.get(Q0), ...op.get(Q1), ...i16x8Narrow, ...op.set(halves[h]!));
  const lanes16 = (odd: number) => [...op.simd(0x0d), ...Array.from({ length: 8 }, (_, j) => [4 * j + 2 * odd, 4 * j + 2 * odd + 1]).flat()]; // i8x16.shuffle: 16-bit lanes 0, 2, .. 14 (+ odd) of the pair
  for (let g = 0; g < (perm ? 4 : 0); g++) block.push(...op.get(QOUT), ...op.get(halves[2 * (g >> 1)]!), ...op.get(halves[2 * (g >> 1) + 1]!), ...lanes16(g & 1), ...op.v128Store(16 * g));
  for (let h = 0; h < (f32Out || split || perm ? 0 : 32 / (4 * qs.length)); h++) {
    qs.forEach((q, i) => block.push(...quant(qs.length * h + i), ...op.set(q), ...op.get(SUM), ...op.get(q), ...i32x4.add, ...op.set(SUM)));
    block.push(...op.get(QOUT), ...op.get(Q0), ...op.get(Q1), ...i16x8Narrow);
    if (i8) block.push(...op.get(Q2), ...op.get(Q3), ...i16x8Narrow, ...op.simd(0x65)); // i8x16.narrow_i16x8_s
    block.push(...op.v128Store(16 * h));
  }
  // d * sum q: the sum converts exactly, so one rounding of the exact product, as quantizeActivations' fround(d * sum)
  block.push(...op.get(DAT), ...[0, 1, 2, 3].flatMap((l) => [...op.get(SUM), ...i32Extract(l), ...(l ? op.i32Add : [])]), ...op.f32ConvertI32S, ...op.get(D), ...f32.mul, ...[0x38, 2, 4]); // f32.store offset 4
  const code = [
    ...op.get(COLS), ...op.i32(5), ...op.i32ShrU, ...op.set(NB),
    ...whileLessFrom(T, N, 1, [
      ...op.get(Xp), ...op.get(T), ...op.get(COLS), ...op.i32Mul, ...op.i32(2), ...op.i32Shl, ...op.i32Add, ...op.set(SRC),
      ...op.get(QP), ...op.get(T), ...op.get(COLS), ...op.i32Mul, ...op.i32(f32Out ? 2 : i8 ? 0 : 1), ...op.i32Shl, ...op.i32Add, ...op.set(QOUT),
      ...op.get(DS), ...op.get(T), ...op.get(NB), ...op.i32Mul, ...op.i32(split ? 4 : 3), ...op.i32Shl, ...op.i32Add, ...op.set(DAT),
      ...whileLessFrom(B, NB, 1, [...block, ...addTo(SRC, 128), ...addTo(QOUT, f32Out ? 128 : i8 ? 32 : 64), ...addTo(DAT, split ? 16 : 8)]),
    ]),
  ];
  return [...vec(locals.map(([n, t]) => [...uleb(n!), t!])), ...code, ...op.end];
}

function qpackBody(form: 'i16' | 'i8' | 'i16x16' = 'i16'): number[] {
  const i8 = form === 'i8', x16 = form === 'i16x16';
  // (i16x16, qpack16: a sixth parameter, where the blocks' sums d sum q go)
  const [Xp, N, COLS, XPp, XD, XCP] = [0, 1, 2, 3, 4, 5];
  const o = x16 ? 6 : 5;
  const [T, N8, NB, B, SRC, PAIR, DAT, K, CAT, XC] = Array.from({ length: 10 }, (_, i) => o + i) as [number, number, number, number, number, number, number, number, number, number];
  const [AMAX, D, ID, QUANT] = [o + 10, o + 11, o + 12, o + 13];
  const [V, Q0, Q1, Q2, Q3, SUM] = [o + 14, o + 15, o + 16, o + 17, o + 18, o + 19];
  const locals = [[10, I32], [4, F32], [6, V128]];
  const { amax, d, quant } = blockQuantization(SRC, V, AMAX, D, ID, QUANT, form === 'i16x16' ? 16 : 8);
  const pairs: number[] = [];
  if (x16) {
    // (and the block's sum of q, times d: one rounding of the exact product, as quantizeActivations' ds pairs)
    pairs.push(...op.v128Zero, ...op.set(SUM));
    for (let h = 0; h < 4; h++) {
      pairs.push(...quant(2 * h), ...op.set(Q1), ...quant(2 * h + 1), ...op.set(Q2), ...op.get(SUM), ...op.get(Q1), ...i32x4.add, ...op.get(Q2), ...i32x4.add, ...op.set(SUM));
      pairs.push(...op.get(Q1), ...op.get(Q2), ...i16x8Narrow, ...op.set(Q0));
      for (let l = 0; l < 4; l++) pairs.push(...op.get(PAIR), ...op.get(Q0), ...i32Extract(l), ...op.i32Store(16 * (4 * h + l)));
    }
    pairs.push(...op.get(CAT), ...[0, 1, 2, 3].flatMap((l) => [...op.get(SUM), ...i32Extract(l), ...(l ? op.i32Add : [])]), ...op.f32ConvertI32S, ...op.get(D), ...f32.mul, ...op.f32Store);
  } else if (!i8)
    for (let h = 0; h < 4; h++) {
      pairs.push(...quant(2 * h), ...quant(2 * h + 1), ...i16x8Narrow, ...op.set(Q0));
      for (let l = 0; l < 4; l++) pairs.push(...op.get(PAIR), ...op.get(Q0), ...i32Extract(l), ...op.i32Store(16 * (4 * h + l)));
    }
  else {
    // i8 (qpack8): 16 values narrowed to bytes, each four (an i32 lane) to its place: values 4j..4j+3 of
    // input k at PAIR + 16 j; and sum q of the block at CAT
    pairs.push(...op.v128Zero, ...op.set(SUM));
    for (let h = 0; h < 2; h++) {
      const qs = [Q0, Q1, Q2, Q3];
      qs.forEach((q, i) => pairs.push(...quant(4 * h + i), ...op.set(q), ...op.get(SUM), ...op.get(q), ...i32x4.add, ...op.set(SUM)));
      pairs.push(...op.get(Q0), ...op.get(Q1), ...i16x8Narrow, ...op.get(Q2), ...op.get(Q3), ...i16x8Narrow, ...op.simd(0x65), ...op.set(Q0)); // i8x16.narrow_i16x8_s
      for (let l = 0; l < 4; l++) pairs.push(...op.get(PAIR), ...op.get(Q0), ...i32Extract(l), ...op.i32Store(16 * (4 * h + l)));
    }
    pairs.push(...op.get(CAT), ...[0, 1, 2, 3].flatMap((l) => [...op.get(SUM), ...i32Extract(l), ...(l ? op.i32Add : [])]), ...op.i32Store());
  }
  const zeros: number[] = [];
  for (let j = 0; j < (i8 ? 8 : 16); j++) zeros.push(...op.get(PAIR), ...op.i32(0), ...op.i32Store(16 * j));
  if (i8 || x16) zeros.push(...op.get(CAT), ...op.i32(0), ...op.i32Store());
  const code = [
    ...op.get(COLS), ...op.i32(5), ...op.i32ShrU, ...op.set(NB),
    ...op.get(N), ...op.i32(7), ...op.i32Add, ...op.i32(~7), ...op.i32And, ...op.set(N8),
    // (i8: the sums q after the scales: xc = xd + (n8 / 4) * nb * 16; i16x16: the sums d sum q where the sixth parameter says)
    ...(x16 ? [...op.get(XCP), ...op.set(XC)] : [...op.get(XD), ...op.get(N8), ...op.i32(2), ...op.i32ShrU, ...op.get(NB), ...op.i32Mul, ...op.i32(4), ...op.i32Shl, ...op.i32Add, ...op.set(XC)]),
    ...whileLessFrom(T, N8, 1, [
      ...op.get(T), ...op.i32(3), ...op.i32And, ...op.set(K),
      ...op.get(Xp), ...op.get(T), ...op.get(COLS), ...op.i32Mul, ...op.i32(2), ...op.i32Shl, ...op.i32Add, ...op.set(SRC),
      // input k of group g = t / 4: block b's pairs at xp + ((g * nb + b) * 16) * 16 + 4 k (i8: its fours at
      // xp + ((g * nb + b) * 8) * 16 + 4 k), its scale at xd + ((g * nb + b) * 4 + k) * 4 (and i8: sum q at the same place of xc)
      ...op.get(XPp), ...op.get(T), ...op.i32(2), ...op.i32ShrU, ...op.get(NB), ...op.i32Mul, ...op.i32(i8 ? 7 : 8), ...op.i32Shl, ...op.i32Add, ...op.get(K), ...op.i32(2), ...op.i32Shl, ...op.i32Add, ...op.set(PAIR),
      ...op.get(XD), ...op.get(T), ...op.i32(2), ...op.i32ShrU, ...op.get(NB), ...op.i32Mul, ...op.i32(4), ...op.i32Shl, ...op.i32Add, ...op.get(K), ...op.i32(2), ...op.i32Shl, ...op.i32Add, ...op.set(DAT),
      ...op.get(XC), ...op.get(T), ...op.i32(2), ...op.i32ShrU, ...op.get(NB), ...op.i32Mul, ...op.i32(4), ...op.i32Shl, ...op.i32Add, ...op.get(K), ...op.i32(2), ...op.i32Shl, ...op.i32Add, ...op.set(CAT),
      ...whileLessFrom(B, NB, 1, [
        ...op.get(T), ...op.get(N), ...op.i32LtU,
        ...ifThen([...amax, ...d, ...op.get(DAT), ...op.get(D), ...op.f32Store, ...pairs], [...op.get(DAT), ...op.f32Const(0), ...op.f32Store, ...zeros]),
        ...addTo(SRC, 128), ...addTo(PAIR, i8 ? 128 : 256), ...addTo(DAT, 16), ...addTo(CAT, 16),
      ]),
    ]),
  ];
  return [...vec(locals.map(([n, t]) => [...uleb(n!), t!])), ...code, ...op.end];
}

/** The kernels' names, signatures and bodies, for matmul-wasm.ts's module. */
export function intTileKernels(dot: boolean): { name: string; params: number[]; body: number[] }[] {
  return [
    { name: 'itile', params: new Array(11).fill(I32), body: productBody() },
    { name: 'qpack', params: new Array(5).fill(I32), body: qpackBody() },
    { name: 'qpack16', params: new Array(6).fill(I32), body: qpackBody('i16x16') },
    { name: 'itilem', params: new Array(12).fill(I32), body: productBody('i16m') },
    { name: 'q4_k_itile', params: new Array(9).fill(I32), body: unpackK('q4_k') },
    { name: 'q5_k_itile', params: new Array(9).fill(I32), body: unpackK('q5_k') },
    { name: 'itileh', params: new Array(11).fill(I32), body: productBody('i16h') },
    { name: 'q6_k_itile', params: new Array(8).fill(I32), body: unpackQ6K() },
    { name: 'qrows', params: new Array(5).fill(I32), body: qrowsBody(false) },
    { name: 'qrows8', params: new Array(5).fill(I32), body: qrowsBody(true) },
    { name: 'qrows16', params: new Array(5).fill(I32), body: qrowsBody(false, 16) },
    { name: 'qround16', params: new Array(5).fill(I32), body: qrowsBody(false, 16, true) },
    { name: 'qrows16s', params: new Array(5).fill(I32), body: qrowsBody(false, 16, false, true) },
    { name: 'qrows16p', params: new Array(5).fill(I32), body: qrowsBody(false, 16, false, false, true) },
    { name: 'q8_0_itile', params: new Array(7).fill(I32), body: unpackBody('q8_0') },
    { name: 'q4_0_itile', params: new Array(7).fill(I32), body: unpackBody('q4_0') },
    // (the relaxed dot product's: only in a module built with it)
    ...(dot ? [
      { name: 'itile8', params: new Array(11).fill(I32), body: productBody('u8') },
      { name: 'qpack8', params: new Array(5).fill(I32), body: qpackBody('i8') },
      { name: 'q4_0_itile8', params: new Array(7).fill(I32), body: unpackBody('q4_0_u8') },
      { name: 'itile8x2', params: new Array(11).fill(I32), body: productBody('u8x2', 2, 2) },
      { name: 'q8_0_itile8', params: new Array(7).fill(I32), body: unpackBody('q8_0_u8x2') },
    ] : []),
  ];
}

export interface IntTileWasm {
  itile(tile: number, scales: number, xp: number, xd: number, out: number, n8: number, n: number, rows: number, cols: number, r0: number, r1: number): void;
  qpack(x: number, n: number, cols: number, xp: number, xd: number): void;
  /** 16-bit inputs packed as qpack's, and each block's d * sum q at xc [group][block][4] (f32) for itilem. */
  qpack16(x: number, n: number, cols: number, xp: number, xd: number, xc: number): void;
  /** itile, less each block's row min times the inputs' block sums (from qpack16): Q4_K's tile (q4_k_itile). */
  itilem(tile: number, scales: number, xp: number, xd: number, out: number, n8: number, n: number, rows: number, cols: number, r0: number, r1: number, mins: number): void;
  /** Rows [r0, r1) of a Q4_K matrix: its 4-bit q as i16 at tile + r * cols * 2, each 32 values' scale and min (from the side table) at scales / mins + (r * nBlocks + b) * 4; nBlocks counts 32-value blocks. */
  q4_k_itile(w: number, rowBytes: number, nBlocks: number, r0: number, r1: number, tile: number, scales: number, side: number, mins: number): void;
  /** The same for Q5_K (its fifth bits from qh). */
  q5_k_itile(w: number, rowBytes: number, nBlocks: number, r0: number, r1: number, tile: number, scales: number, side: number, mins: number): void;
  /** itile with two scales a block, one per 16 values (scales + (r * 2 nBlocks + i) * 4): Q6_K's tile (q6_k_itile). */
  itileh(tile: number, scales: number, xp: number, xd: number, out: number, n8: number, n: number, rows: number, cols: number, r0: number, r1: number): void;
  /** Rows [r0, r1) of a Q6_K matrix: q - 32 as i16 at tile + r * cols * 2, each 16 values' scale (from the side table) at scales + (r * 2 nBlocks + i) * 4. */
  q6_k_itile(w: number, rowBytes: number, nBlocks: number, r0: number, r1: number, tile: number, scales: number, side: number): void;
  /** quantizeActivations for 32-value blocks: q as i16 (qrows) or i8 (qrows8), ds the [d, d * sum q] pairs. */
  qrows(x: number, n: number, cols: number, q: number, ds: number): void;
  qrows8(x: number, n: number, cols: number, q: number, ds: number): void;
  /** quantizeActivations' 16-bit form (bits 16): q as i16, ds the [d, d * sum q] pairs with d in f32. */
  qrows16(x: number, n: number, cols: number, q: number, ds: number): void;
  /** The same q as two byte planes per 16 values, ds per 32 values [d, d * sum q, sum q (i32) of each 16] (quant-wasm.ts's splitPlanes). */
  qrows16s(x: number, n: number, cols: number, q: number, ds: number): void;
  /** qrows16's q and ds, each 32 values' q in Q4_0's "_p16" kernels' order: 0, 2, ..., 14, 1, 3, ..., 15, 16, 18, ..., 30, 17, ..., 31. */
  qrows16p(x: number, n: number, cols: number, q: number, ds: number): void;
  /** qrows16's rounding written back as f32: out [n][cols] = fr(q d) (ds as qrows16's), the inputs the f32 tiles multiply with 16-bit inputs. */
  qround16(x: number, n: number, cols: number, out: number, ds: number): void;
  q8_0_itile(w: number, rowBytes: number, nBlocks: number, r0: number, r1: number, tile: number, scales: number): void;
  q4_0_itile(w: number, rowBytes: number, nBlocks: number, r0: number, r1: number, tile: number, scales: number): void;
  /** With the relaxed dot product only (see intTileKernels): Q4_0 in u8 tiles times i8 inputs. */
  itile8?(tile: number, scales: number, xp: number, xd: number, out: number, n8: number, n: number, rows: number, cols: number, r0: number, r1: number): void;
  qpack8?(x: number, n: number, cols: number, xp: number, xd: number): void;
  q4_0_itile8?(w: number, rowBytes: number, nBlocks: number, r0: number, r1: number, tile: number, scales: number): void;
  /** Q8_0's twin of itile8 (the same inputs, two bytes a value in the tile): see productBody's u8x2. */
  itile8x2?(tile: number, scales: number, xp: number, xd: number, out: number, n8: number, n: number, rows: number, cols: number, r0: number, r1: number): void;
  q8_0_itile8?(w: number, rowBytes: number, nBlocks: number, r0: number, r1: number, tile: number, scales: number): void;
}

/** The formats with an integer tile (8- and 16-bit inputs). */
export const INT_TILE_TYPES = new Set<GGMLType>([GGMLType.Q8_0, GGMLType.Q4_0]);
/** ... and with 16-bit inputs also Q4_K and Q5_K (itilem: their mins need the inputs' block sums, which qpack16 writes) and Q6_K (itileh). */
export const INT16_TILE_TYPES = new Set<GGMLType>([GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K]);

/**
 * Bytes packInputs writes for n inputs of cols values: i16 values, then f32 scales; `i8` (its i8 form,
 * qpack8): i8 values, f32 scales, then i32 sums q as many as the scales (their bytes counted in `scales`);
 * `sums` (qpack16's: 16-bit inputs): i16 values, f32 scales, then as many f32 sums d sum q (counted in `scales`).
 */
export function packedBytes(n: number, cols: number, i8 = false, sums = i8): { values: number; scales: number } {
  const groups = Math.ceil(n / 8) * 2;
  return { values: groups * cols * (i8 ? 4 : 8), scales: groups * (cols / 32) * 16 * (sums ? 2 : 1) };
}

/**
 * n inputs quantized to 8 bits (q [n][cols] with |q| <= 127, per 32 values [d, d * sum q] in ds, as
 * quant-wasm.ts's quantizeActivations makes them) in itile's order (what qpack writes): xp (i16) groups
 * of four inputs, per 32-value block 16 pairs x 4 inputs x 2 values; xd [group][block][4] the scales d.
 * With an Int8Array xp, itile8's (what qpack8 writes): per group and block 8 steps of 16 bytes (input
 * k's values 4j..4j+3 at 16 j + 4 k), and xs [group][block][4] each block's sum q. With an Int16Array xp
 * and a Float32Array xs (qpack16's form), xs [group][block][4] each block's d sum q from ds. Inputs past
 * n, up to a multiple of 8, are zeros.
 */
export function packInputs(q: Int16Array | Int8Array, ds: Float32Array, n: number, cols: number, xp: Int16Array | Int8Array, xd: Float32Array, xs?: Int32Array | Float32Array): void {
  const nb = cols / 32;
  const groups = Math.ceil(n / 8) * 2;
  const i8 = xp instanceof Int8Array;
  if (i8 && !xs) throw new RangeError('packInputs: the i8 form also writes the blocks\' sums q (xs)');
  for (let g = 0; g < groups; g++)
    for (let k = 0; k < 4; k++) {
      const t = 4 * g + k;
      for (let b = 0; b < nb; b++) {
        const at = (g * nb + b) * 4 + k; // this input's block in xd (and xs)
        const value = (j: number) => (t < n ? q[t * cols + 32 * b + j]! : 0);
        xd[at] = t < n ? ds[(t * nb + b) * 2]! : 0;
        if (!i8) {
          // (with xs: qpack16's block sums d sum q, as ds holds them)
          if (xs) xs[at] = t < n ? ds[(t * nb + b) * 2 + 1]! : 0;
          const o = ((g * nb + b) * 16) * 8 + 2 * k; // (block's 16 pairs) x 8 i16 each, input k's pair at 2k
          for (let j = 0; j < 16; j++) { xp[o + 8 * j] = value(2 * j); xp[o + 8 * j + 1] = value(2 * j + 1); }
          continue;
        }
        const o = (g * nb + b) * 128 + 4 * k;
        let sum = 0;
        for (let j = 0; j < 32; j++) {
          xp[o + 16 * (j >> 2) + (j & 3)] = value(j);
          sum += value(j);
        }
        xs![at] = sum;
      }
    }
}
