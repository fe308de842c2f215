// The WebAssembly SIMD twin of rope.ts's ropeRows, for the CPU backend: the executor runs it on the
// calling thread. One exported function, part of matmul-wasm.ts's module:
//
//   rope(x, table, nHeads, headDim, ropeDims, n, neox)   rotate rows t < n of x (nHeads heads of headDim f32)
//
// x is a byte offset into the shared memory ([n][nHeads * headDim] f32), rotated in place; table holds
// each row's rotations as f64, laid out for the kernel by ropeTable below from rope.ts's ropeAngles:
//   neox = 1 (pairs (v[i], v[i + half]), half = ropeDims / 2, which must be even): per row, [cos_i] then
//     [sin_i] for i < half, two pairs a step in f64x2 lanes;
//   neox = 0 (interleaved pairs (v[2i], v[2i + 1])): per row and pair, [cos_i, cos_i, -sin_i, sin_i].
// Precision: the same float64 arithmetic as rope.ts, x0 cos - x1 sin and x0 sin + x1 cos from the f32
// values promoted, rounded once to f32 (interleaved: x0 cos + x1 (-sin), x1 cos + x0 sin: the same
// values), so the results are rope.ts's bit for bit (test/rope.test.ts).

import { I32, V128, op, uleb, vec, whileLess } from './wasm-emit.js';

const [X, TABLE, NHEADS, HEAD_DIM, ROPE_DIMS, N, NEOX] = [0, 1, 2, 3, 4, 5, 6];
const [T, H, P, TP, I, HALFB, ROWB, TROW] = [7, 8, 9, 10, 11, 12, 13, 14];
const [A, B, C, S] = [15, 16, 17, 18];
const LOCALS = [[8, I32], [4, V128]];

const f64x2 = { add: op.simd(0xf0), sub: op.simd(0xf1), mul: op.simd(0xf2), promoteLow: op.simd(0x5f), demote: op.simd(0x5e) };
const load64Zero = (offset = 0) => [...op.simd(0x5d), 3, ...uleb(offset)];
const store64Lane0 = (offset = 0) => [...op.simd(0x5b), 3, ...uleb(offset), 0];
/** The f64x2 on the stack with its lanes swapped. */
const swap = [...op.simd(0x0d), 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7];

function body(): number[] {
  const at = (base: number, off: number[]) => [...op.get(base), ...off, ...op.i32Add];
  // neox: two pairs (i, i + half), (i + 1, i + 1 + half) at P + I and P + I + halfBytes; cos / sin at TP + 2 I and TP + 2 (I + halfBytes)
  const neox = whileLess(I, HALFB, 8, [
    ...at(P, op.get(I)), ...load64Zero(), ...f64x2.promoteLow, ...op.set(A),
    ...at(P, [...op.get(I), ...op.get(HALFB), ...op.i32Add]), ...load64Zero(), ...f64x2.promoteLow, ...op.set(B),
    ...at(TP, [...op.get(I), ...op.i32(1), ...op.i32Shl]), ...op.v128Load(), ...op.set(C),
    ...at(TP, [...op.get(I), ...op.get(HALFB), ...op.i32Add, ...op.i32(1), ...op.i32Shl]), ...op.v128Load(), ...op.set(S),
    ...at(P, op.get(I)), ...op.get(A), ...op.get(C), ...f64x2.mul, ...op.get(B), ...op.get(S), ...f64x2.mul, ...f64x2.sub, ...f64x2.demote, ...store64Lane0(),
    ...at(P, [...op.get(I), ...op.get(HALFB), ...op.i32Add]), ...op.get(A), ...op.get(S), ...f64x2.mul, ...op.get(B), ...op.get(C), ...f64x2.mul, ...f64x2.add, ...f64x2.demote, ...store64Lane0(),
  ]);
  // interleaved: one pair (v[2i], v[2i + 1]) at P + I (I steps 8 bytes), [cos, cos] and [-sin, sin] at TP + 4 I
  const interleaved = whileLess(I, ROWB, 8, [
    ...at(P, op.get(I)), ...load64Zero(), ...f64x2.promoteLow, ...op.set(A),
    ...at(P, op.get(I)),
    ...op.get(A), ...at(TP, [...op.get(I), ...op.i32(2), ...op.i32Shl]), ...op.v128Load(), ...f64x2.mul,
    ...op.get(A), ...op.get(A), ...swap, ...at(TP, [...op.get(I), ...op.i32(2), ...op.i32Shl]), ...op.v128Load(16), ...f64x2.mul,
    ...f64x2.add, ...f64x2.demote, ...store64Lane0(),
  ]);
  const code = [
    ...op.get(ROPE_DIMS), ...op.i32(1), ...op.i32Shl, ...op.set(HALFB), // half * 4 bytes = ropeDims * 2
    ...op.get(ROPE_DIMS), ...op.i32(2), ...op.i32Shl, ...op.set(ROWB), // the rotated part of a head, in bytes
    ...op.get(ROPE_DIMS), ...op.i32(4), ...op.get(NEOX), ...op.i32Sub, ...op.i32Shl, ...op.set(TROW), // a row's table: ropeDims / 2 x 32 bytes (interleaved) or ropeDims x 8 (neox: 1)
    ...op.i32(0), ...op.set(T),
    ...whileLess(T, N, 1, [
      ...op.get(TABLE), ...op.get(T), ...op.get(TROW), ...op.i32Mul, ...op.i32Add, ...op.set(TP),
      ...op.i32(0), ...op.set(H),
      ...whileLess(H, NHEADS, 1, [
        ...op.get(X), ...op.get(T), ...op.get(NHEADS), ...op.i32Mul, ...op.get(H), ...op.i32Add, ...op.get(HEAD_DIM), ...op.i32Mul, ...op.i32(2), ...op.i32Shl, ...op.i32Add, ...op.set(P),
        ...op.i32(0), ...op.set(I),
        ...op.get(NEOX), ...[0x04, 0x40], ...neox, 0x05, ...interleaved, ...op.end,
      ]),
    ]),
  ];
  return [...vec(LOCALS.map(([n, t]) => [...uleb(n!), t!])), ...code, ...op.end];
}

/** The kernel's name, signature and body, for matmul-wasm.ts's module. */
export function ropeKernel(): { name: string; params: number[]; body: number[] } {
  return { name: 'rope', params: new Array(7).fill(I32), body: body() };
}

/**
 * The kernel's table from rope.ts's ropeAngles ([n][half][cos, sin], f64) for rows of `style`, into
 * `out` (ropeTableLength(n, half) f64): neox per row [cos_i...] then [sin_i...]; interleaved per row and
 * pair [cos, cos, -sin, sin].
 */
export function ropeTable(angles: Float64Array, n: number, half: number, neox: boolean, out: Float64Array): void {
  for (let t = 0; t < n; t++)
    for (let i = 0; i < half; i++) {
      const [cos, sin] = [angles[(t * half + i) * 2]!, angles[(t * half + i) * 2 + 1]!];
      if (neox) [out[t * 2 * half + i], out[t * 2 * half + half + i]] = [cos, sin];
      else out.set([cos, cos, -sin, sin], (t * half + i) * 4);
    }
}
/** f64 values in ropeTable's table for n rows of `half` pairs (the larger, interleaved, layout). */
export const ropeTableLength = (n: number, half: number) => n * half * 4;

export interface RopeWasm {
  rope(x: number, table: number, nHeads: number, headDim: number, ropeDims: number, n: number, neox: number): void;
}
