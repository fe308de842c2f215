// The WebAssembly SIMD twin of rmsnorm.ts, for the CPU backend: the executor runs it on the calling
// thread (a 128-token step of 576-wide rows takes it about 20 us, less than a hand-off to the workers
// would save). One exported function, part of matmul-wasm.ts's module:
//
//   rmsnorm(x, w, out, dim, n, eps)   out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w for rows t < n
//
// Pointers are byte offsets into the shared memory ([n][dim] f32; w [dim] f32); eps is an f64, as
// rmsnorm.ts's. out may be x (each value is read before it is written).
// Precision: as rmsnorm.ts, in float64: the squares are exact, summed in four running f64 sums (two
// f64x2, lanes 0..3 of every four values) where rmsnorm.ts sums in order; scale = 1 / sqrt(ss / dim +
// eps) in f64; each output (x * scale) * w in f64, rounded once to f32. So the outputs are those of
// rmsnorm.ts but for the sum's order: ss within dim * 2^-53 relative of its value, the outputs within
// one f32 rounding (test/rmsnorm.test.ts).

import { F64, I32, V128, op, uleb, vec, whileLess, shuffle32 } from './wasm-emit.js';

const [X, W, OUT, DIM, N, EPS] = [0, 1, 2, 3, 4, 5];
const [T, XP, OP, I, END4, ROWB] = [6, 7, 8, 9, 10, 11];
const [SS, SC] = [12, 13];
const [A0, A1, V, SV] = [14, 15, 16, 17];
const LOCALS = [[6, I32], [2, F64], [4, V128]];

const f64 = { add: [0xa0], mul: [0xa2], div: [0xa3], sqrt: [0x9f], convertI32U: [0xb8], promoteF32: [0xbb], demote: [0xb6] };
const f64x2 = { add: op.simd(0xf0), mul: op.simd(0xf2), splat: op.simd(0x14), extract: (l: number) => [...op.simd(0x21), l], promoteLow: op.simd(0x5f), demote: op.simd(0x5e) };
/** The f32x4 on the stack's lanes 2, 3 as lanes 0, 1. */
const high = [...shuffle32([2, 3, 2, 3])];

function body(): number[] {
  const square = (acc: number) => [...op.get(acc), ...op.get(V), ...op.get(V), ...f64x2.mul, ...f64x2.add, ...op.set(acc)];
  /** (value * scale) * weight in f64 for two values: the f32x4s x (local V) and w (local SV) halves (`hi`: lanes 2, 3), to two f32 lanes. */
  const scaled = (hi: boolean) => [
    ...op.get(V), ...(hi ? [...op.get(V), ...high] : []), ...f64x2.promoteLow,
    ...op.get(SC), ...f64x2.splat, ...f64x2.mul,
    ...op.get(SV), ...(hi ? [...op.get(SV), ...high] : []), ...f64x2.promoteLow, ...f64x2.mul,
    ...f64x2.demote,
  ];
  const code = [
    ...op.get(DIM), ...op.i32(2), ...op.i32Shl, ...op.set(ROWB),
    ...op.get(DIM), ...op.i32(~3), ...op.i32And, ...op.i32(2), ...op.i32Shl, ...op.set(END4),
    ...op.i32(0), ...op.set(T),
    ...whileLess(T, N, 1, [
      ...op.get(X), ...op.get(T), ...op.get(ROWB), ...op.i32Mul, ...op.i32Add, ...op.set(XP),
      ...op.get(OUT), ...op.get(T), ...op.get(ROWB), ...op.i32Mul, ...op.i32Add, ...op.set(OP),
      // ss: four values a step into two f64x2 sums, then the rest one at a time
      ...op.v128Zero, ...op.set(A0), ...op.v128Zero, ...op.set(A1),
      ...op.i32(0), ...op.set(I),
      ...whileLess(I, END4, 16, [
        ...op.get(XP), ...op.get(I), ...op.i32Add, ...op.v128Load(), ...op.set(SV),
        ...op.get(SV), ...f64x2.promoteLow, ...op.set(V), ...square(A0),
        ...op.get(SV), ...op.get(SV), ...high, ...f64x2.promoteLow, ...op.set(V), ...square(A1),
      ]),
      ...op.get(A0), ...f64x2.extract(0), ...op.get(A0), ...f64x2.extract(1), ...f64.add,
      ...op.get(A1), ...f64x2.extract(0), ...op.get(A1), ...f64x2.extract(1), ...f64.add, ...f64.add, ...op.set(SS),
      ...whileLess(I, ROWB, 4, [
        ...op.get(XP), ...op.get(I), ...op.i32Add, ...op.f32Load(), ...f64.promoteF32, ...op.set(SC),
        ...op.get(SS), ...op.get(SC), ...op.get(SC), ...f64.mul, ...f64.add, ...op.set(SS),
      ]),
      // scale = 1 / sqrt(ss / dim + eps)
      ...op.f64Const(1), ...op.get(SS), ...op.get(DIM), ...f64.convertI32U, ...f64.div, ...op.get(EPS), ...f64.add, ...f64.sqrt, ...f64.div, ...op.set(SC),
      ...op.i32(0), ...op.set(I),
      ...whileLess(I, END4, 16, [
        ...op.get(XP), ...op.get(I), ...op.i32Add, ...op.v128Load(), ...op.set(V),
        ...op.get(W), ...op.get(I), ...op.i32Add, ...op.v128Load(), ...op.set(SV),
        ...op.get(OP), ...op.get(I), ...op.i32Add,
        ...scaled(false), ...scaled(true), ...shuffle32([0, 1, 4, 5]),
        ...op.v128Store(),
      ]),
      ...whileLess(I, ROWB, 4, [
        ...op.get(OP), ...op.get(I), ...op.i32Add,
        ...op.get(XP), ...op.get(I), ...op.i32Add, ...op.f32Load(), ...f64.promoteF32, ...op.get(SC), ...f64.mul,
        ...op.get(W), ...op.get(I), ...op.i32Add, ...op.f32Load(), ...f64.promoteF32, ...f64.mul, ...f64.demote,
        ...op.f32Store,
      ]),
    ]),
  ];
  return [...vec(LOCALS.map(([n, t]) => [...uleb(n!), t!])), ...code, ...op.end];
}

/** The kernel's name, signature and body, for matmul-wasm.ts's module. */
export function rmsnormKernel(): { name: string; params: number[]; body: number[] } {
  return { name: 'rmsnorm', params: [I32, I32, I32, I32, I32, F64], body: body() };
}

export interface RmsnormWasm {
  rmsnorm(x: number, w: number, out: number, dim: number, n: number, eps: number): void;
}
