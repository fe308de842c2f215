// WebAssembly SIMD twins of matmul.ts's kernels, for speed on the CPU (f32x4 lanes).
// The module is emitted byte by byte below (no toolchain needed); each instruction is named.
//
// Exports (pointers are byte offsets into the imported memory, row-major like matmul.ts):
//   matvec(w, x, out, cols, r0, r1)            out[r] = W[r] . x for r in [r0, r1); any cols
//   matmul4(w, x, out, n, rows, cols, r0, r1)  out[t][r] = W[r] . X[t]; cols % 4 == 0; four inputs
//                                              share each weight load
//   matmul2x4(same)                            the same for pairs of rows and n % 4 == 0: 2 rows x 4 inputs per pass
//   q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k  quantized products (+ x4, _i16, x4_i16, and with the relaxed dot product _i8, x4_i8), _dequant (quant-wasm.ts)
//   attention, attentionTile                   causal attention over the KV cache (attention-wasm.ts)
//   gated                                      a gated FFN's activation, act(gate) * up (ffn-wasm.ts)
//   rmsnorm, rope, add                         RMSNorm, RoPE and the residual add (rmsnorm-wasm.ts, rope-wasm.ts, add-wasm.ts)
//   argmax, above                              the greedy choice over the logits (with their finiteness check), a top-k's candidates (argmax-wasm.ts)
//   itile, q8_0_itile, q4_0_itile              prefill with 8- or 16-bit activations in integers (int-tile-wasm.ts)
//   qrows, qrows8, qrows16, qround16, qpack, qpack16  the inputs quantized for them (int-tile-wasm.ts)
//   itile8, itile8x2, qpack8, q4_0_itile8, q8_0_itile8  the same in relaxed 8-bit dot products (modules built with them)
// Memory: the module imports one memory ("env", "memory"), whose bytes [F16_TABLE, KERNEL_MEMORY_START)
// hold the quantized kernels' f16-to-f32 table (quant-wasm.ts); prepareKernelMemory fills it once, and
// buffers go from KERNEL_MEMORY_START up.
// Precision: f32 accumulation in 16 (matvec) or 4 (matmul4) partial sums, so the error is at most
// about (cols / 4) * 2^-24 * sum |w x| (the classic f32 dot-product bound), unlike the float64
// accumulation of the JavaScript kernels.

import { I32, F32, V128, op, simd, uleb, vec, section, str, whileLess, fmaV, madd, hsum, addMul, shl2, NO_RELAXED_SIMD, type RelaxedSimd } from './wasm-emit.js';

export { NO_RELAXED_SIMD, type RelaxedSimd };
import { quantKernels, F16_TABLE, F16_TABLE_BYTES, fillF16Table, type QuantWasm } from './quant-wasm.js';
import { attentionKernel, attentionSplitKernels, attentionTileKernel, type AttentionWasm } from './attention-wasm.js';
import { gatedKernel, type GatedWasm } from './ffn-wasm.js';
import { rmsnormKernel, type RmsnormWasm } from './rmsnorm-wasm.js';
import { ropeKernel, type RopeWasm } from './rope-wasm.js';
import { addKernel, type AddWasm } from './add-wasm.js';
import { argmaxKernels, type ArgmaxWasm } from './argmax-wasm.js';
import { intTileKernels, type IntTileWasm } from './int-tile-wasm.js';

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
 * The module's bytes. It imports a shared memory "env.memory". `relaxed`: the relaxed-SIMD
 * instructions to use (only those relaxedSimd() says the runtime has); none: SIMD 1.0 only, which every
 * WebAssembly runtime with SIMD runs.
 */
export function matmulWasmBytes(relaxed: RelaxedSimd = NO_RELAXED_SIMD): Uint8Array<ArrayBuffer> {
  const fn = (params: number[], results: number[] = []) => [0x60, ...vec(params.map((p) => [p])), ...vec(results.map((r) => [r]))];
  const quant = quantKernels(relaxed);
  const funcs = [
    { name: 'matvec', params: new Array(6).fill(I32), body: matvecBody(relaxed.madd) },
    { name: 'matmul4', params: new Array(8).fill(I32), body: matmul4Body(relaxed.madd) },
    { name: 'matmul2x4', params: new Array(8).fill(I32), body: matmulBlockBody(2, 4, relaxed.madd) },
    ...quant,
    attentionKernel(relaxed.madd),
    attentionTileKernel(relaxed.madd),
    ...attentionSplitKernels(relaxed.madd),
    gatedKernel(),
    rmsnormKernel(),
    ropeKernel(),
    addKernel(),
    ...argmaxKernels(),
    ...intTileKernels(relaxed.dot),
  ] as { name: string; params: number[]; results?: number[]; body: number[] }[];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(funcs.map((f) => fn(f.params, f.results)))),
    ...section(2, vec([[...str('env'), ...str('memory'), 0x02, 0x03, ...uleb(1), ...uleb(65536)]])), // shared, 1..65536 pages
    ...section(3, vec(funcs.map((_, i) => [i]))),
    ...section(7, vec(funcs.map((f, i) => [...str(f.name), 0x00, i]))),
    ...section(10, vec(funcs.map((f) => [...uleb(f.body.length), ...f.body]))),
  ]);
}

export interface MatmulWasm extends QuantWasm, AttentionWasm, GatedWasm, IntTileWasm, RmsnormWasm, RopeWasm, AddWasm, ArgmaxWasm {
  matvec(w: number, x: number, out: number, cols: number, r0: number, r1: number): void;
  matmul4(w: number, x: number, out: number, n: number, rows: number, cols: number, r0: number, r1: number): void;
  matmul2x4(w: number, x: number, out: number, n: number, rows: number, cols: number, r0: number, r1: number): void;
}

/** The first byte of a kernel memory free for buffers (below it: address 0, unused, and the f16 table). */
export const KERNEL_MEMORY_START = F16_TABLE + F16_TABLE_BYTES;

/** Make `memory` ready for the kernels: grown to KERNEL_MEMORY_START if smaller, the f16 table written. */
export function prepareKernelMemory(memory: WebAssembly.Memory): void {
  const short = KERNEL_MEMORY_START - memory.buffer.byteLength;
  if (short > 0) memory.grow(Math.ceil(short / 65536));
  fillF16Table(memory.buffer);
}

/**
 * A module of one function with one SIMD 1.0 instruction (i32x4.add of two constants). SIMD 1.0 is one
 * feature, all or nothing: a runtime that validates this validates every kernel of matmulWasmBytes()
 * (the tests check both agree), and checking it costs no emission of the kernels' 100-140 KB module.
 */
export function simdProbeBytes(): Uint8Array<ArrayBuffer> {
  const body = [0, ...op.v128Const(new Array(16).fill(1)), ...op.v128Const(new Array(16).fill(2)), ...op.simd(simd.i32x4Add), 0x1a /* drop */, ...op.end];
  return new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...section(1, vec([[0x60, 0, 0]])), ...section(3, vec([[0]])), ...section(10, vec([[...uleb(body.length), ...body]]))]);
}

/**
 * Can this runtime run the kernels (SIMD and a shared WebAssembly.Memory)? A page that is not
 * cross-origin isolated has no SharedArrayBuffer constructor, but Chromium still makes shared memories
 * (which it cannot send to workers): the memory is tried itself.
 */
export function wasmSimdAvailable(): boolean {
  try {
    if (typeof WebAssembly !== 'object' || !WebAssembly.validate(simdProbeBytes())) return false;
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return true;
  } catch {
    return false;
  }
}


/** The relaxed dot product's test operands: a = [1, -2, 3, -4, ...] (i8), b = [1, 3, 5, ...] (0..127). */
const PROBE_A = Array.from({ length: 16 }, (_, i) => (i % 2 ? -1 : 1) * (i + 1));
const PROBE_B = Array.from({ length: 16 }, (_, i) => 2 * i + 1);

/** A module that runs both instructions on known operands: madd(2, 3, 1) in four lanes at 32, dot(a, b, 10) at 48. */
function probeBytes(): Uint8Array<ArrayBuffer> {
  const store = (at: number) => [...op.simd(0x0b), 2, ...uleb(at)];
  const splatF = (v: number) => [...op.f32Const(v), ...op.simd(simd.f32x4Splat)];
  const body = [
    0, ...op.i32(32), ...splatF(2), ...splatF(3), ...splatF(1), ...op.simd(simd.f32x4RelaxedMadd), ...store(0),
    ...op.i32(48), ...op.v128Const(PROBE_A.map((v) => v & 0xff)), ...op.v128Const(PROBE_B), ...op.i32(10), ...op.simd(simd.i32x4Splat), ...op.simd(simd.i32x4RelaxedDotI8x16I7x16AddS), ...store(0),
    ...op.end,
  ];
  return new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, vec([[0x60, 0, 0]])), ...section(2, vec([[...str('env'), ...str('memory'), 0x02, 0x00, 1]])),
    ...section(3, vec([[0]])), ...section(7, vec([[...str('probe'), 0x00, 0]])), ...section(10, vec([[...uleb(body.length), ...body]]))]);
}

let detected: RelaxedSimd | undefined;
/**
 * The relaxed-SIMD instructions this runtime has and computes as specified. Chrome 114+, Firefox
 * 120+ and Node 22+ have them; Node 20 behind a V8 flag, turned on here (v8.setFlagsFromString before
 * any module that needs it is compiled; it only adds instructions). Each is run once on known operands:
 * Node 20's relaxed dot product returns twice the dot product and drops the accumulator, so there only FMA is used. POCKETLM_RELAXED_SIMD=0
 * in the environment says none (to measure or test the SIMD 1.0 kernels), =madd only FMA.
 */
export function relaxedSimd(): RelaxedSimd {
  if (detected) return detected;
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined>; getBuiltinModule?: (id: string) => unknown } }).process;
  if (proc?.env?.POCKETLM_RELAXED_SIMD === '0') return (detected = NO_RELAXED_SIMD);
  try {
    const bytes = probeBytes();
    if (!WebAssembly.validate(bytes)) (proc?.getBuiltinModule?.('node:v8') as { setFlagsFromString?: (f: string) => void } | undefined)?.setFlagsFromString?.('--experimental-wasm-relaxed-simd');
    if (!WebAssembly.validate(bytes)) return (detected = NO_RELAXED_SIMD);
    const memory = new WebAssembly.Memory({ initial: 1 });
    (new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports.probe as () => void)();
    const madd = new Float32Array(memory.buffer, 32, 4).every((v) => v === 7);
    const dot = Array.from(new Int32Array(memory.buffer, 48, 4)).every((v, l) => v === 10 + [0, 1, 2, 3].reduce((sum, j) => sum + PROBE_A[4 * l + j]! * PROBE_B[4 * l + j]!, 0));
    return (detected = { madd, dot: dot && proc?.env?.POCKETLM_RELAXED_SIMD !== 'madd' });
  } catch {
    return (detected = NO_RELAXED_SIMD);
  }
}
