// WebAssembly SIMD twins of matmul.ts's kernels, for speed on the CPU (f32x4 lanes).
// The module is emitted byte by byte below (no toolchain needed); each instruction is named.
//
// Exports (pointers are byte offsets into the imported memory, row-major like matmul.ts):
//   matvec(w, x, out, cols, r0, r1)            out[r] = W[r] . x for r in [r0, r1); any cols
//   matmul4(w, x, out, n, rows, cols, r0, r1)  out[t][r] = W[r] . X[t]; cols % 4 == 0; four inputs
//                                              share each weight load
//   matmul2x4(same)                            the same for pairs of rows and n % 4 == 0: 2 rows x 4 inputs per pass
//   q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k  quantized products (+ x4, _i8, x4_i8), _dequant (quant-wasm.ts)
//   attention                                  causal attention over the KV cache (attention-wasm.ts)
// Precision: f32 accumulation in 16 (matvec) or 4 (matmul4) partial sums, so the error is at most
// about (cols / 4) * 2^-24 * sum |w x| (the classic f32 dot-product bound), unlike the float64
// accumulation of the JavaScript kernels.

import { I32, F32, V128, op, uleb, vec, section, str, whileLess, fmaV, madd, hsum, addMul, shl2 } from './wasm-emit.js';
import { quantKernels, type QuantWasm } from './quant-wasm.js';
import { attentionKernel, type AttentionWasm } from './attention-wasm.js';

function matvecBody(relaxed: boolean): number[] {
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
      ...whileLess(C, END16, 64, [...fmaV(relaxed, A0, ROW, X, C, 0), ...fmaV(relaxed, A1, ROW, X, C, 16), ...fmaV(relaxed, A2, ROW, X, C, 32), ...fmaV(relaxed, A3, ROW, X, C, 48)]),
      ...op.get(A0), ...op.get(A1), ...op.f32x4Add, ...op.get(A2), ...op.get(A3), ...op.f32x4Add, ...op.f32x4Add, ...op.set(A0),
      ...whileLess(C, END4, 16, fmaV(relaxed, A0, ROW, X, C)),
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

function matmul4Body(relaxed: boolean): number[] {
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
  const fmaW = (acc: number, xk: number) => [...madd(relaxed, op.get(acc), op.get(WV), [...op.get(xk), ...op.get(C), ...op.i32Add, ...op.v128Load()]), ...op.set(acc)];
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
        ...whileLess(C, END4, 16, fmaV(relaxed, A0, ROW, X0, C)),
        ...store(0, A0),
      ]),
    ]),
  ];
  return [...vec(locals.map(([n, t]) => [...uleb(n!), t!])), ...code, ...op.end];
}

/**
 * Prefill's register-blocked product: R weight rows times T inputs per pass (R*T accumulators), so
 * each loaded weight vector serves T inputs and each loaded input vector R rows. Rows [r0, r1) with
 * (r1 - r0) % R == 0, n % T == 0, cols % 4 == 0 (runSlice hands the rest to matmul4 / matvec).
 * 2 x 4 is used: on this project's x86-64 VM it beat 1x4 (matmul4), 3x4, 2x6, 4x2, 4x3 and 2x8 (more
 * accumulators spill: x86-64 has 16 vector registers).
 */
function matmulBlockBody(R: number, T: number, relaxed: boolean): number[] {
  // params: 0 w, 1 x, 2 out, 3 n, 4 rows, 5 cols, 6 r0, 7 r1
  const [W, X, OUT, N, ROWS, COLS, RR, R1] = [0, 1, 2, 3, 4, 5, 6, 7];
  let next = 8;
  const ROWP = Array.from({ length: R }, () => next++);
  const XP = Array.from({ length: T }, () => next++);
  const [C, ROWB, TT, O, FOUR] = [next++, next++, next++, next++, next++];
  const i32s = next - 8;
  const ACC = Array.from({ length: R * T }, () => next++); // [row][input]
  const WV = Array.from({ length: R }, () => next++);
  const XV = next++;
  const locals = [[i32s, I32], [R * T + R + 1, V128]];
  const store = (row: number, k: number) => [
    ...op.get(TT), ...op.i32(k), ...op.i32Add, ...op.get(ROWS), ...op.i32Mul, ...op.get(RR), ...op.i32Add, ...op.i32(row), ...op.i32Add, ...op.get(FOUR), ...op.i32Mul, ...op.get(OUT), ...op.i32Add, ...op.set(O),
    ...op.get(O), ...hsum(ACC[T * row + k]!), ...op.f32Store,
  ];
  const inner: number[] = ROWP.flatMap((p, r) => [...op.get(p), ...op.get(C), ...op.i32Add, ...op.v128Load(), ...op.set(WV[r]!)]);
  for (let k = 0; k < T; k++) {
    inner.push(...op.get(XP[k]!), ...op.get(C), ...op.i32Add, ...op.v128Load(), ...op.set(XV));
    for (let r = 0; r < R; r++) inner.push(...madd(relaxed, op.get(ACC[T * r + k]!), op.get(WV[r]!), op.get(XV)), ...op.set(ACC[T * r + k]!));
  }
  const code = [
    ...shl2(ROWB, COLS), ...op.i32(4), ...op.set(FOUR),
    ...whileLess(RR, R1, R, [
      ...ROWP.flatMap((p, r) => [...addMul(p, W, RR, ROWB), ...(r ? [...op.get(p), ...op.get(ROWB), ...op.i32(r), ...op.i32Mul, ...op.i32Add, ...op.set(p)] : [])]),
      ...op.i32(0), ...op.set(TT),
      ...whileLess(TT, N, T, [
        ...XP.flatMap((p, k) => [...addMul(p, X, TT, ROWB), ...(k ? [...op.get(p), ...op.get(ROWB), ...op.i32(k), ...op.i32Mul, ...op.i32Add, ...op.set(p)] : [])]),
        ...ACC.flatMap((a) => [...op.v128Zero, ...op.set(a)]),
        ...op.i32(0), ...op.set(C),
        ...whileLess(C, ROWB, 16, inner),
        ...Array.from({ length: R }, (_, r) => r).flatMap((r) => Array.from({ length: T }, (_, k) => k).flatMap((k) => store(r, k))),
      ]),
    ]),
  ];
  return [...vec(locals.map(([n, t]) => [...uleb(n!), t!])), ...code, ...op.end];
}

/**
 * The module's bytes. It imports a shared memory "env.memory". `relaxed`: use relaxed-SIMD
 * instructions (FMA through f32x4.relaxed_madd; only where relaxedSimdAvailable() says the runtime
 * has them); false: SIMD 1.0 only, which every WebAssembly runtime with SIMD runs.
 */
export function matmulWasmBytes(relaxed = false): Uint8Array<ArrayBuffer> {
  const fn = (params: number[]) => [0x60, ...vec(params.map((p) => [p])), 0];
  const quant = quantKernels(relaxed);
  const funcs = [
    { name: 'matvec', params: new Array(6).fill(I32), body: matvecBody(relaxed) },
    { name: 'matmul4', params: new Array(8).fill(I32), body: matmul4Body(relaxed) },
    { name: 'matmul2x4', params: new Array(8).fill(I32), body: matmulBlockBody(2, 4, relaxed) },
    ...quant,
    attentionKernel(relaxed),
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

/** (func (param v128 v128 v128) (result v128) f32x4.relaxed_madd and i32x4.relaxed_dot_i8x16_i7x16_add_s): does this runtime take relaxed SIMD? */
const RELAXED_PROBE = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 8, 1, 0x60, 3, V128, V128, V128, 1, V128, 3, 2, 1, 0, 10, 20, 1, 18, 0,
  0x20, 0, 0x20, 1, 0x20, 2, 0xfd, 0x85, 0x02, 0x20, 1, 0x20, 2, 0xfd, 0x93, 0x02, 0x0b]);

let relaxed: boolean | undefined;
/**
 * Can the kernels use relaxed SIMD (FMA, 8-bit dot products)? Chrome 114+, Firefox 120+ and Node 22+
 * have it on; Node 20 has it behind a V8 flag, which is turned on here (v8.setFlagsFromString before any
 * module that needs it is compiled; it only adds instructions). POCKETLM_RELAXED_SIMD=0 in the
 * environment says no (to measure or test the SIMD 1.0 kernels).
 */
export function relaxedSimdAvailable(): boolean {
  if (relaxed !== undefined) return relaxed;
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined>; getBuiltinModule?: (id: string) => unknown } }).process;
  if (proc?.env?.POCKETLM_RELAXED_SIMD === '0') return (relaxed = false);
  try {
    if (typeof WebAssembly !== 'object') return (relaxed = false);
    if (!WebAssembly.validate(RELAXED_PROBE)) (proc?.getBuiltinModule?.('node:v8') as { setFlagsFromString?: (f: string) => void } | undefined)?.setFlagsFromString?.('--experimental-wasm-relaxed-simd');
    return (relaxed = WebAssembly.validate(RELAXED_PROBE) && WebAssembly.validate(matmulWasmBytes(true)));
  } catch {
    return (relaxed = false);
  }
}
