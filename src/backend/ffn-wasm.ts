// The WebAssembly SIMD twin of ffn.ts's gated(), for the CPU backend in Node: each worker thread
// applies the gate's activation to the rows of the gate and up products it computed itself
// (parallel.ts's runGated). One exported function, part of matmul-wasm.ts's module:
//
//   gated(gate, up, n, rows, r0, r1, act)   gate[t][r] = act(gate[t][r]) * up[t][r] for every input
//                                           t < n and row r in [r0, r1); act 0 = SiLU, 1 = GELU (tanh)
//
// Pointers are byte offsets into the shared memory ([n][rows] f32 each). Both activations are
// x * sigmoid(z), with z = x (SiLU) or z = 2 sqrt(2/pi) (x + 0.044715 x^3) (GELU's tanh form, as
// ffn.ts's geluTanh), and sigmoid(z) = 1 / (1 + e) for z >= 0, e / (1 + e) below, e = exp(-|z|)
// (wasm-emit.ts's expX4: never overflows). Eight values a step as two f32x4 (their exp chains
// overlap: about 1.3x one vector a step), then four; the last (r1 - r0) % 4 of each input's rows go one at
// a time through the same f32x4 arithmetic (lane 0), so every value is computed alike.
// Precision: f32: exp within a few ulp of e, z within 5 roundings for GELU (an error of 5 |z| ulp
// in e), then four roundings; e is clamped at e^-87, so below z = -87 a value is off by at most
// |x| * 1.6e-38 (test/parallel.test.ts checks the bound against float64). ffn.ts's JavaScript computes
// in float64 and rounds once.

import { I32, V128, op, whileLess, f32x4, v128, expX4, ifThen, bodyWithConstants, type Konst } from './wasm-emit.js';
import { GELU_K } from '../stages/ffn.js';

const [GATE, UP, N, ROWS, R0, R1, ACT] = [0, 1, 2, 3, 4, 5, 6];
const [T, P, PU, END, END4] = [7, 8, 9, 10, 11];
/** Two sets of v128 locals: two vectors a step, whose exp chains overlap. */
const LANES = [[12, 13, 14, 15, 16], [17, 18, 19, 20, 21]] as const;
const LOCALS = [[5, I32], [10, V128]];
/** The kernel's v128 constants, hoisted into locals while it is emitted (wasm-emit.ts's bodyWithConstants). */
let k: Konst = (v) => f32x4.const(v);

/** act(x) * up(at PU + offset) on the stack, x in the set's first local; `gelu` picks z. */
function activated(gelu: boolean, load: (ptr: number, offset: number) => number[], set: readonly number[], offset = 0): number[] {
  const [XV, Z, E, TMP, R] = set as [number, number, number, number, number];
  const z = gelu
    ? [...op.get(XV), ...op.get(XV), ...f32x4.mul, ...op.get(XV), ...f32x4.mul, ...k(0.044715), ...f32x4.mul, ...op.get(XV), ...f32x4.add, ...k(2 * GELU_K), ...f32x4.mul]
    : op.get(XV);
  return [
    ...z, ...op.set(Z),
    ...op.get(Z), ...f32x4.abs, ...f32x4.neg, ...expX4(TMP, R, k), ...op.set(E),
    // sigmoid(z) = (z < 0 ? e : 1) / (1 + e)
    ...op.get(E), ...k(1), ...op.get(Z), ...k(0), ...f32x4.lt, ...v128.bitselect,
    ...k(1), ...op.get(E), ...f32x4.add, ...f32x4.div,
    ...op.get(XV), ...f32x4.mul, ...load(PU, offset), ...f32x4.mul,
  ];
}

function rowsOf(gelu: boolean): number[] {
  const vecLoad = (ptr: number, offset: number) => [...op.get(ptr), ...op.v128Load(offset)];
  const oneLoad = (ptr: number) => [...op.get(ptr), ...op.f32Load(), ...f32x4.splat];
  const [A, B] = LANES;
  const at = (base: number, row: number[]) => [...op.get(base), ...op.get(T), ...op.get(ROWS), ...op.i32Mul, ...row, ...op.i32Add, ...op.i32(2), ...op.i32Shl, ...op.i32Add];
  return [
    ...op.i32(0), ...op.set(T),
    ...whileLess(T, N, 1, [
      ...at(GATE, op.get(R0)), ...op.set(P), ...at(UP, op.get(R0)), ...op.set(PU), ...at(GATE, op.get(R1)), ...op.set(END),
      // eight values a step, then four, then one at a time (whileLess steps P itself; PU alongside)
      ...op.get(P), ...op.get(R1), ...op.get(R0), ...op.i32Sub, ...op.i32(~7), ...op.i32And, ...op.i32(2), ...op.i32Shl, ...op.i32Add, ...op.set(END4),
      ...whileLess(P, END4, 32, [
        ...vecLoad(P, 0), ...op.set(A[0]), ...vecLoad(P, 16), ...op.set(B[0]),
        ...op.get(P), ...activated(gelu, vecLoad, A), ...op.v128Store(), ...op.get(P), ...activated(gelu, vecLoad, B, 16), ...op.v128Store(16),
        ...op.get(PU), ...op.i32(32), ...op.i32Add, ...op.set(PU),
      ]),
      ...op.get(P), ...op.get(END), ...op.get(P), ...op.i32Sub, ...op.i32(~15), ...op.i32And, ...op.i32Add, ...op.set(END4),
      ...whileLess(P, END4, 16, [...vecLoad(P, 0), ...op.set(A[0]), ...op.get(P), ...activated(gelu, vecLoad, A), ...op.v128Store(), ...op.get(PU), ...op.i32(16), ...op.i32Add, ...op.set(PU)]),
      ...whileLess(P, END, 4, [...oneLoad(P), ...op.set(A[0]), ...op.get(P), ...activated(gelu, oneLoad, A), ...f32x4.extract(0), ...op.f32Store, ...op.get(PU), ...op.i32(4), ...op.i32Add, ...op.set(PU)]),
    ]),
  ];
}

function body(): number[] {
  const inline = k;
  return bodyWithConstants(7, LOCALS, (hoisted) => {
    k = hoisted;
    try {
      return [...op.get(ACT), ...ifThen(rowsOf(true), rowsOf(false))];
    } finally {
      k = inline;
    }
  });
}

/** The kernel's name, signature and body, for matmul-wasm.ts's module. */
export function gatedKernel(): { name: string; params: number[]; body: number[] } {
  return { name: 'gated', params: new Array(7).fill(I32), body: body() };
}

export interface GatedWasm {
  gated(gate: number, up: number, n: number, rows: number, r0: number, r1: number, act: number): void;
}
