// The WebAssembly SIMD twin of the CPU backend's residual add (out += x; kernels/add.wgsl's on WebGPU),
// which also adds an accumulating matmul's product into its output. The executor runs it on the calling
// thread. One exported function, part of matmul-wasm.ts's module:
//
//   add(out, x, length)   out[i] += x[i] for i < length (byte offsets into the shared memory, f32)
//
// Four values a step, then one at a time. Precision: one f32 addition each, as JavaScript's
// out[i] + x[i] rounded to f32 (a float64 sum of two f32 rounds to the f32 sum), so bit for bit the same.

import { I32, op, uleb, vec, whileLess } from './wasm-emit.js';

const [OUT, X, LENGTH] = [0, 1, 2];
const [I, END4, END] = [3, 4, 5];
const LOCALS = [[3, I32]];

function body(): number[] {
  const code = [
    ...op.get(LENGTH), ...op.i32(2), ...op.i32Shl, ...op.set(END),
    ...op.get(LENGTH), ...op.i32(~3), ...op.i32And, ...op.i32(2), ...op.i32Shl, ...op.set(END4),
    ...op.i32(0), ...op.set(I),
    ...whileLess(I, END4, 16, [
      ...op.get(OUT), ...op.get(I), ...op.i32Add,
      ...op.get(OUT), ...op.get(I), ...op.i32Add, ...op.v128Load(), ...op.get(X), ...op.get(I), ...op.i32Add, ...op.v128Load(), ...op.f32x4Add,
      ...op.v128Store(),
    ]),
    ...whileLess(I, END, 4, [
      ...op.get(OUT), ...op.get(I), ...op.i32Add,
      ...op.get(OUT), ...op.get(I), ...op.i32Add, ...op.f32Load(), ...op.get(X), ...op.get(I), ...op.i32Add, ...op.f32Load(), ...op.f32Add,
      ...op.f32Store,
    ]),
  ];
  return [...vec(LOCALS.map(([n, t]) => [...uleb(n!), t!])), ...code, ...op.end];
}

/** The kernel's name, signature and body, for matmul-wasm.ts's module. */
export function addKernel(): { name: string; params: number[]; body: number[] } {
  return { name: 'add', params: [I32, I32, I32], body: body() };
}

export interface AddWasm {
  add(out: number, x: number, length: number): void;
}
