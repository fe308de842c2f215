// WebAssembly SIMD kernels for choosing the next token on the CPU (kernels/argmax.wgsl's twins): the
// greedy choice (sampling.ts's argmax, after the check that every logit is finite) and the first pass of
// a top-k. The executor runs them on the calling thread. Two exported functions, part of
// matmul-wasm.ts's module (x: f32 logits, out: i32, byte offsets into the shared memory):
//
//   argmax(x, n) -> i32         the index of the first largest of x[0..n); -1 if any of them is NaN or
//                               infinite; 0 for n = 0
//   above(x, n, floor, out) -> i32   the indices i < n with x[i] >= floor, in order, written to out;
//                               returns how many (a top-k's candidates, given a floor at or below its
//                               k-th largest value: CpuBackend.topk)
//
// argmax:
// Four lanes a step, each keeping its first largest value and where it was (strict >, so the earlier
// of equal values stays), the lanes then compared with the earlier index winning ties, then the last
// n % 4 values one at a time. Every value also goes into a sum of (v - v), which is +0 for finite v
// and NaN for NaN and +-Infinity, so one check at the end finds them. above: four comparisons a step,
// and only where one of them holds (i32x4.bitmask) are the indices written, one lane at a time. Exact:
// only comparisons, so the same results as the JavaScript's for any input.

import { F32, I32, V128, op, uleb, vec, whileLess, ifThen, v128, f32x4, i32x4 } from './wasm-emit.js';

const [X, N] = [0, 1];
const [I, END4, END, BEST_I, LANE_I] = [2, 3, 4, 5, 6];
const [BEST_V, V] = [7, 8];
const [BEST, IDX, CUR, BAD, STEP, VEC, GT] = [9, 10, 11, 12, 13, 14, 15];
const LOCALS = [[5, I32], [2, F32], [7, V128]];

const f32Gt = [0x5e];
const f32Eq = [0x5b];
const f32Ne = [0x5c];

/** if (v > bestV || (v == bestV && i < bestI)) { bestV = v; bestI = i } for the value in V and the index in LANE_I. */
const better = [
  ...op.get(V), ...op.get(BEST_V), ...f32Gt,
  ...op.get(V), ...op.get(BEST_V), ...f32Eq, ...op.get(LANE_I), ...op.get(BEST_I), ...op.i32LtU, ...op.i32And,
  ...op.i32Or,
  ...ifThen([...op.get(V), ...op.set(BEST_V), ...op.get(LANE_I), ...op.set(BEST_I)]),
];

function body(): number[] {
  const code = [
    ...op.get(N), ...op.i32(2), ...op.i32Shl, ...op.set(END),
    ...op.get(N), ...op.i32(~3), ...op.i32And, ...op.i32(2), ...op.i32Shl, ...op.set(END4),
    ...op.f32Const(-Infinity), ...f32x4.splat, ...op.set(BEST),
    ...i32x4.lanes([0, 1, 2, 3]), ...op.set(CUR),
    ...i32x4.const(4), ...op.set(STEP),
    ...op.i32(0), ...op.set(I),
    // four lanes a step: best = v where v > best, with its index
    ...whileLess(I, END4, 16, [
      ...op.get(X), ...op.get(I), ...op.i32Add, ...op.v128Load(), ...op.set(VEC),
      ...op.get(BAD), ...op.get(VEC), ...op.get(VEC), ...f32x4.sub, ...f32x4.add, ...op.set(BAD),
      ...op.get(VEC), ...op.get(BEST), ...f32x4.gt, ...op.set(GT),
      ...op.get(VEC), ...op.get(BEST), ...op.get(GT), ...v128.bitselect, ...op.set(BEST),
      ...op.get(CUR), ...op.get(IDX), ...op.get(GT), ...v128.bitselect, ...op.set(IDX),
      ...op.get(CUR), ...op.get(STEP), ...i32x4.add, ...op.set(CUR),
    ]),
    // the lanes: lane 0 first, then each later one where it is larger, or equal and earlier
    ...op.get(BEST), ...op.lane(0), ...op.set(BEST_V), ...op.get(IDX), ...i32x4.extract(0), ...op.set(BEST_I),
    ...[1, 2, 3].flatMap((l) => [...op.get(BEST), ...op.lane(l), ...op.set(V), ...op.get(IDX), ...i32x4.extract(l), ...op.set(LANE_I), ...better]),
    // the last n % 4 values, one at a time (their indices come after every lane's)
    ...whileLess(I, END, 4, [
      ...op.get(X), ...op.get(I), ...op.i32Add, ...op.f32Load(), ...op.set(V),
      ...op.get(V), ...op.get(V), ...op.f32Sub, ...op.f32Const(0), ...f32Ne,
      ...ifThen([...op.f32Const(NaN), ...f32x4.splat, ...op.set(BAD)]),
      ...op.get(V), ...op.get(BEST_V), ...f32Gt,
      ...ifThen([...op.get(V), ...op.set(BEST_V), ...op.get(I), ...op.i32(2), ...op.i32ShrU, ...op.set(BEST_I)]),
    ]),
    ...op.i32(-1), ...op.get(BEST_I), ...op.get(BAD), ...op.get(BAD), ...f32x4.ne, ...v128.anyTrue, ...op.select,
  ];
  return [...vec(LOCALS.map(([n, t]) => [...uleb(n!), t!])), ...code, ...op.end];
}

function aboveBody(): number[] {
  const [X, N, FLOOR, OUT] = [0, 1, 2, 3];
  const [I, END4, END, COUNT, BITS, L, FOUR] = [4, 5, 6, 7, 8, 9, 10];
  const [FV] = [11];
  const locals = [[7, I32], [1, V128]];
  // out[count++] = (I >> 2) + lane
  const emit = (lane: number[]) => [
    ...op.get(OUT), ...op.get(COUNT), ...op.i32(2), ...op.i32Shl, ...op.i32Add,
    ...op.get(I), ...op.i32(2), ...op.i32ShrU, ...lane, ...op.i32Add, ...op.i32Store(),
    ...op.get(COUNT), ...op.i32(1), ...op.i32Add, ...op.set(COUNT),
  ];
  const code = [
    ...op.get(N), ...op.i32(2), ...op.i32Shl, ...op.set(END),
    ...op.get(N), ...op.i32(~3), ...op.i32And, ...op.i32(2), ...op.i32Shl, ...op.set(END4),
    ...op.get(FLOOR), ...f32x4.splat, ...op.set(FV),
    ...op.i32(4), ...op.set(FOUR),
    ...whileLess(I, END4, 16, [
      ...op.get(X), ...op.get(I), ...op.i32Add, ...op.v128Load(), ...op.get(FV), ...f32x4.ge, ...i32x4.bitmask, ...op.set(BITS),
      ...op.get(BITS),
      ...ifThen([
        ...op.i32(0), ...op.set(L),
        ...whileLess(L, FOUR, 1, [
          ...op.get(BITS), ...op.get(L), ...op.i32ShrU, ...op.i32(1), ...op.i32And,
          ...ifThen(emit(op.get(L))),
        ]),
      ]),
    ]),
    ...whileLess(I, END, 4, [
      ...op.get(X), ...op.get(I), ...op.i32Add, ...op.f32Load(), ...op.get(FLOOR), 0x60, // f32.ge
      ...ifThen(emit(op.i32(0))),
    ]),
    ...op.get(COUNT),
  ];
  return [...vec(locals.map(([n, t]) => [...uleb(n!), t!])), ...code, ...op.end];
}

/** The kernels' names, signatures and bodies, for matmul-wasm.ts's module. */
export function argmaxKernels(): { name: string; params: number[]; results: number[]; body: number[] }[] {
  return [
    { name: 'argmax', params: [I32, I32], results: [I32], body: body() },
    { name: 'above', params: [I32, I32, F32, I32], results: [I32], body: aboveBody() },
  ];
}

export interface ArgmaxWasm {
  argmax(x: number, n: number): number;
  above(x: number, n: number, floor: number, out: number): number;
}
