// WebAssembly SIMD twins of matmul.ts's kernels, for speed on the CPU (f32x4 lanes).
// The module is emitted byte by byte below (no toolchain needed); each instruction is named.
//
// Exports (pointers are byte offsets into the imported memory, row-major like matmul.ts):
//   matvec(w, x, out, cols, r0, r1)            out[r] = W[r] . x for r in [r0, r1); any cols
//   matmul4(w, x, out, n, rows, cols, r0, r1)  out[t][r] = W[r] . X[t]; cols % 4 == 0; four inputs
//                                              share each weight load
//   q8_0, q4_0, q5_0, q4_k, q6_k (+ x4, _i8)   quantized matrix-vector products (quant-wasm.ts)
//   attention                                  causal attention over the KV cache (attention-wasm.ts)
// Precision: f32 accumulation in 16 (matvec) or 4 (matmul4) partial sums, so the error is at most
// about (cols / 4) * 2^-24 * sum |w x| (the classic f32 dot-product bound), unlike the float64
// accumulation of the JavaScript kernels.

import { I32, F32, V128, op, uleb, vec, section, str, whileLess, fmaV, hsum, addMul, shl2 } from './wasm-emit.js';
import { quantKernels, type QuantWasm } from './quant-wasm.js';
import { attentionKernel, type AttentionWasm } from './attention-wasm.js';

function matvecBody(): number[] {
  // params: 0 w, 1 x, 2 out, 3 cols, 4 r0, 5 r1
  const [W, X, OUT, COLS, R, R1] = [0, 1, 2, 3, 4, 5];
  const [ROW, C, END16, END4, ROWB, A0, A1, A2, A3, S, FOUR] = [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
  const locals = [[5, I32], [4, V128], [1, F32], [1, I32]];
  const code = [
    ...shl2(ROWB, COLS), ...shl2(END16, COLS, ~15), ...shl2(END4, COLS, ~3), ...op.i32(4), ...op.set(FOUR),
    ...whileLess(R, R1, 1, [
      ...addMul(ROW, W, R, ROWB),
      ...op.v128Zero, ...op.set(A0), ...op.v128Zero, ...op.set(A1), ...op.v128Zero, ...op.set(A2), ...op.v128Zero, ...op.set(A3),
      ...op.i32(0), ...op.set(C),
      ...whileLess(C, END16, 64, [...fmaV(A0, ROW, X, C, 0), ...fmaV(A1, ROW, X, C, 16), ...fmaV(A2, ROW, X, C, 32), ...fmaV(A3, ROW, X, C, 48)]),
      ...op.get(A0), ...op.get(A1), ...op.f32x4Add, ...op.get(A2), ...op.get(A3), ...op.f32x4Add, ...op.f32x4Add, ...op.set(A0),
      ...whileLess(C, END4, 16, fmaV(A0, ROW, X, C)),
      ...hsum(A0), ...op.set(S),
      ...whileLess(C, ROWB, 4, [
        ...op.get(S),
        ...op.get(ROW), ...op.get(C), ...op.i32Add, ...op.f32Load(),
        ...op.get(X), ...op.get(C), ...op.i32Add, ...op.f32Load(),
        ...op.f32Mul, ...op.f32Add, ...op.set(S),
      ]),
      ...op.get(OUT), ...op.get(R), ...op.get(FOUR), ...op.i32Mul, ...op.i32Add, ...op.get(S), ...op.f32Store,
    ]),
  ];
  return [...vec(locals.map(([n, t]) => [...uleb(n!), t!])), ...code, ...op.end];
}

function matmul4Body(): number[] {
  // params: 0 w, 1 x, 2 out, 3 n, 4 rows, 5 cols, 6 r0, 7 r1
  const [W, X, OUT, N, ROWS, COLS, R, R1] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [ROW, C, END4, ROWB, T, N4, X0, X1, X2, X3, O, FOUR] = [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
  const [A0, A1, A2, A3, WV] = [20, 21, 22, 23, 24];
  const locals = [[12, I32], [5, V128]];
  /** out[(t + k) * rows + r] = hsum(acc) */
  const store = (k: number, acc: number) => [
    ...op.get(T), ...op.i32(k), ...op.i32Add, ...op.get(ROWS), ...op.i32Mul, ...op.get(R), ...op.i32Add, ...op.get(FOUR), ...op.i32Mul, ...op.get(OUT), ...op.i32Add, ...op.set(O),
    ...op.get(O), ...hsum(acc), ...op.f32Store,
  ];
  /** acc += wv * load(xk + c) */
  const fmaW = (acc: number, xk: number) => [...op.get(acc), ...op.get(WV), ...op.get(xk), ...op.get(C), ...op.i32Add, ...op.v128Load(), ...op.f32x4Mul, ...op.f32x4Add, ...op.set(acc)];
  const code = [
    ...shl2(ROWB, COLS), ...shl2(END4, COLS, ~3), ...op.get(N), ...op.i32(~3), ...op.i32And, ...op.set(N4), ...op.i32(4), ...op.set(FOUR),
    ...whileLess(R, R1, 1, [
      ...addMul(ROW, W, R, ROWB),
      ...op.i32(0), ...op.set(T),
      ...whileLess(T, N4, 4, [
        ...addMul(X0, X, T, ROWB), ...op.get(X0), ...op.get(ROWB), ...op.i32Add, ...op.set(X1),
        ...op.get(X1), ...op.get(ROWB), ...op.i32Add, ...op.set(X2), ...op.get(X2), ...op.get(ROWB), ...op.i32Add, ...op.set(X3),
        ...op.v128Zero, ...op.set(A0), ...op.v128Zero, ...op.set(A1), ...op.v128Zero, ...op.set(A2), ...op.v128Zero, ...op.set(A3),
        ...op.i32(0), ...op.set(C),
        ...whileLess(C, END4, 16, [
          ...op.get(ROW), ...op.get(C), ...op.i32Add, ...op.v128Load(), ...op.set(WV),
          ...fmaW(A0, X0), ...fmaW(A1, X1), ...fmaW(A2, X2), ...fmaW(A3, X3),
        ]),
        ...store(0, A0), ...store(1, A1), ...store(2, A2), ...store(3, A3),
      ]),
      // The last n % 4 inputs, one at a time.
      ...whileLess(T, N, 1, [
        ...addMul(X0, X, T, ROWB), ...op.v128Zero, ...op.set(A0), ...op.i32(0), ...op.set(C),
        ...whileLess(C, END4, 16, fmaV(A0, ROW, X0, C)),
        ...store(0, A0),
      ]),
    ]),
  ];
  return [...vec(locals.map(([n, t]) => [...uleb(n!), t!])), ...code, ...op.end];
}

/**
 * Prefill's register-blocked product: two weight rows times four inputs per pass (8 accumulators),
 * so each loaded weight vector serves 4 inputs and each loaded input vector 2 rows. Rows [r0, r1)
 * with r1 - r0 even, n % 4 == 0, cols % 4 == 0 (runSlice hands the rest to matmul4 / matvec).
 */
function matmul2x4Body(): number[] {
  // params: 0 w, 1 x, 2 out, 3 n, 4 rows, 5 cols, 6 r0, 7 r1
  const [W, X, OUT, N, ROWS, COLS, R, R1] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [ROW0, ROW1, C, ROWB, T, XT, O, FOUR] = [8, 9, 10, 11, 12, 13, 14, 15];
  const ACC = [16, 17, 18, 19, 20, 21, 22, 23]; // [row][input]
  const [W0, W1, XV] = [24, 25, 26];
  const locals = [[8, I32], [11, V128]];
  const store = (row: number, k: number) => [
    ...op.get(T), ...op.i32(k), ...op.i32Add, ...op.get(ROWS), ...op.i32Mul, ...op.get(R), ...op.i32Add, ...op.i32(row), ...op.i32Add, ...op.get(FOUR), ...op.i32Mul, ...op.get(OUT), ...op.i32Add, ...op.set(O),
    ...op.get(O), ...hsum(ACC[4 * row + k]!), ...op.f32Store,
  ];
  const inner: number[] = [
    ...op.get(ROW0), ...op.get(C), ...op.i32Add, ...op.v128Load(), ...op.set(W0),
    ...op.get(ROW1), ...op.get(C), ...op.i32Add, ...op.v128Load(), ...op.set(W1),
  ];
  for (let k = 0; k < 4; k++) {
    inner.push(...op.get(XT), ...op.get(C), ...op.i32Add, ...op.v128Load(k === 0 ? 0 : 0), ...op.set(XV));
    if (k > 0) inner.length -= 0;
    for (const row of [0, 1]) inner.push(...op.get(ACC[4 * row + k]!), ...op.get(row ? W1 : W0), ...op.get(XV), ...op.f32x4Mul, ...op.f32x4Add, ...op.set(ACC[4 * row + k]!));
    // the next input's row: XT + k * rowBytes is kept by stepping XT below
    if (k < 3) inner.push(...op.get(XT), ...op.get(ROWB), ...op.i32Add, ...op.set(XT));
  }
  inner.push(...op.get(XT), ...op.get(ROWB), ...op.i32(3), ...op.i32Mul, ...op.i32Sub, ...op.set(XT)); // back to input t
  const code = [
    ...shl2(ROWB, COLS), ...op.i32(4), ...op.set(FOUR),
    ...whileLess(R, R1, 2, [
      ...addMul(ROW0, W, R, ROWB), ...op.get(ROW0), ...op.get(ROWB), ...op.i32Add, ...op.set(ROW1),
      ...op.i32(0), ...op.set(T),
      ...whileLess(T, N, 4, [
        ...addMul(XT, X, T, ROWB),
        ...ACC.flatMap((a) => [...op.v128Zero, ...op.set(a)]),
        ...op.i32(0), ...op.set(C),
        ...whileLess(C, ROWB, 16, inner),
        ...[0, 1].flatMap((row) => [0, 1, 2, 3].flatMap((k) => store(row, k))),
      ]),
    ]),
  ];
  return [...vec(locals.map(([n, t]) => [...uleb(n!), t!])), ...code, ...op.end];
}

/** The module's bytes. It imports a shared memory "env.memory". */
export function matmulWasmBytes(): Uint8Array<ArrayBuffer> {
  const fn = (params: number[]) => [0x60, ...vec(params.map((p) => [p])), 0];
  const quant = quantKernels();
  const funcs = [
    { name: 'matvec', params: new Array(6).fill(I32), body: matvecBody() },
    { name: 'matmul4', params: new Array(8).fill(I32), body: matmul4Body() },
    { name: 'matmul2x4', params: new Array(8).fill(I32), body: matmul2x4Body() },
    ...quant,
    attentionKernel(),
  ];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(funcs.map((f) => fn(f.params)))),
    ...section(2, vec([[...str('env'), ...str('memory'), 0x02, 0x03, ...uleb(1), ...uleb(65536)]])), // shared, 1..65536 pages
    ...section(3, vec(funcs.map((_, i) => [i]))),
    ...section(7, vec(funcs.map((f, i) => [...str(f.name), 0x00, i]))),
    ...section(10, vec(funcs.map((f) => [...uleb(f.body.length), ...f.body]))),
  ]);
}

export interface MatmulWasm extends QuantWasm, AttentionWasm {
  matvec(w: number, x: number, out: number, cols: number, r0: number, r1: number): void;
  matmul4(w: number, x: number, out: number, n: number, rows: number, cols: number, r0: number, r1: number): void;
  matmul2x4(w: number, x: number, out: number, n: number, rows: number, cols: number, r0: number, r1: number): void;
}

/** Can this runtime run the kernels (SIMD and shared memory)? */
export function wasmSimdAvailable(): boolean {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(matmulWasmBytes()) && typeof SharedArrayBuffer === 'function';
  } catch {
    return false;
  }
}
