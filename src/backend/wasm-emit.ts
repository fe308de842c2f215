// A tiny WebAssembly emitter: just what the kernels in matmul-wasm.ts and quant-wasm.ts need, each
// instruction named. SIMD instructions are 0xfd followed by their LEB128 opcode.

export const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
export const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) { out.push(b); return out; }
    out.push(b | 0x80);
  }
};
export const str = (s: string) => [...uleb(s.length), ...new TextEncoder().encode(s)];
export const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
export const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];

/** The relaxed-SIMD instructions the kernels may use: f32x4.relaxed_madd (FMA) and i32x4.relaxed_dot_i8x16_i7x16_add_s. */
export interface RelaxedSimd {
  madd: boolean;
  dot: boolean;
}
export const NO_RELAXED_SIMD: RelaxedSimd = Object.freeze({ madd: false, dot: false });

export const I32 = 0x7f, F32 = 0x7d, F64 = 0x7c, V128 = 0x7b, VOID = 0x40;
export const op = {
  block: [0x02, VOID], loop: [0x03, VOID], end: [0x0b],
  br: (d: number) => [0x0c, ...uleb(d)], brIf: (d: number) => [0x0d, ...uleb(d)],
  get: (i: number) => [0x20, ...uleb(i)], set: (i: number) => [0x21, ...uleb(i)],
  i32: (v: number) => [0x41, ...sleb(v)],
  i32Add: [0x6a], i32Mul: [0x6c], i32And: [0x71], i32Shl: [0x74], i32GeU: [0x4f],
  f32Load: (offset = 0) => [0x2a, 2, ...uleb(offset)], f32Store: [0x38, 2, 0],
  f32Add: [0x92], f32Mul: [0x94], f32Zero: [0x43, 0, 0, 0, 0],
  v128Load: (offset = 0) => [0xfd, ...uleb(0x00), 2, ...uleb(offset)], v128Store: (offset = 0) => [0xfd, ...uleb(0x0b), 2, ...uleb(offset)],
  v128Zero: [0xfd, ...uleb(0x0c), ...new Array(16).fill(0)],
  f32x4Add: [0xfd, ...uleb(0xe4)], f32x4Mul: [0xfd, ...uleb(0xe6)],
  lane: (i: number) => [0xfd, ...uleb(0x1f), i],
  // for the quantized kernels
  i32Load16u: (offset = 0) => [0x2f, 1, ...uleb(offset)], i32Load: (offset = 0) => [0x28, 2, ...uleb(offset)], i32Store: (offset = 0) => [0x36, 2, ...uleb(offset)],
  i32Sub: [0x6b], i32Or: [0x72], i32ShrU: [0x76], i32LtU: [0x49], select: [0x1b],
  f32Const: (v: number) => [0x43, ...new Uint8Array(Float32Array.of(v).buffer)],
  f64Const: (v: number) => [0x44, ...new Uint8Array(Float64Array.of(v).buffer)],
  f32Sub: [0x93], f32ReinterpretI32: [0xbe], f32ConvertI32S: [0xb2], f32Load4: (offset = 0) => [0x2a, 2, ...uleb(offset)],
  simd: (code: number) => [0xfd, ...uleb(code)],
  v128Const: (bytes: number[]) => [0xfd, ...uleb(0x0c), ...bytes],
};
/** SIMD opcodes by name (the WebAssembly SIMD proposal's numbering). */
export const simd = {
  i8x16Swizzle: 0x0e, i8x16Splat: 0x0f, i32x4Splat: 0x11, f32x4Splat: 0x13, i8x16Ne: 0x24, v128And: 0x4e, v128Or: 0x50, i8x16Shl: 0x6b, i8x16ShrU: 0x6d, i8x16Sub: 0x71,
  i16x8ExtendLowS: 0x87, i16x8ExtendHighS: 0x88, i16x8ExtendLowU: 0x89, i16x8ExtendHighU: 0x8a,
  i32x4ExtendLowS: 0xa7, i32x4ExtendHighS: 0xa8, i32x4Add: 0xae, i32x4Sub: 0xb1, i32x4DotI16x8S: 0xba, f32x4ConvertI32S: 0xfa, f32x4Add: 0xe4, f32x4Sub: 0xe5, f32x4Mul: 0xe6,
  i8x16Abs: 0x60, i8x16LtS: 0x25, v128Xor: 0x51, i32x4Shl: 0xab, i32x4ShrS: 0xac, i32x4ShrU: 0xad,
  // relaxed SIMD (see `madd` and quant-wasm.ts's dot16)
  f32x4RelaxedMadd: 0x105, i32x4RelaxedDotI8x16I7x16AddS: 0x113,
};

/**
 * acc + a * b in f32x4 lanes, left on the stack (a, b, acc: code that pushes each). With relaxed SIMD,
 * one f32x4.relaxed_madd: fused (one rounding) where the CPU has FMA, mul then add where it does not,
 * so never less exact than the plain form's mul then add, which is what runs without relaxed SIMD.
 */
export const madd = (relaxed: boolean, acc: number[], a: number[], b: number[]): number[] =>
  relaxed ? [...a, ...b, ...acc, ...op.simd(simd.f32x4RelaxedMadd)] : [...acc, ...a, ...b, ...op.f32x4Mul, ...op.f32x4Add];

/** if (condition on the stack) { then } else { otherwise } (no else without `otherwise`). */
export const ifThen = (then: number[], otherwise?: number[]) => [0x04, 0x40, ...then, ...(otherwise ? [0x05, ...otherwise] : []), ...op.end];
/** local += k (a constant). */
export const addTo = (local: number, k: number) => [...op.get(local), ...op.i32(k), ...op.i32Add, ...op.set(local)];

/** while (local[i] < local[limit]) { body; local[i] += step } — as block/loop/br_if. step: a constant, or { local } for a local's value. */
export const whileLess = (i: number, limit: number, step: number | { local: number }, body: number[]) => [
  ...op.block, ...op.loop,
  ...op.get(i), ...op.get(limit), ...op.i32GeU, ...op.brIf(1),
  ...body,
  ...op.get(i), ...(typeof step === 'number' ? op.i32(step) : op.get(step.local)), ...op.i32Add, ...op.set(i),
  ...op.br(0), ...op.end, ...op.end,
];
/** acc += load(a + c) * load(b + c) as f32x4 (see madd); offset in bytes. */
export const fmaV = (relaxed: boolean, acc: number, a: number, b: number, c: number, offset = 0) => [
  ...madd(relaxed, op.get(acc), [...op.get(a), ...op.get(c), ...op.i32Add, ...op.v128Load(offset)], [...op.get(b), ...op.get(c), ...op.i32Add, ...op.v128Load(offset)]),
  ...op.set(acc),
];
/** Push lane0 + lane1 + lane2 + lane3 of local v. */
export const hsum = (v: number) => [...op.get(v), ...op.lane(0), ...op.get(v), ...op.lane(1), ...op.f32Add, ...op.get(v), ...op.lane(2), ...op.f32Add, ...op.get(v), ...op.lane(3), ...op.f32Add];
/** local[dst] = local[a] + local[b] * k (k a constant or a local via `kLocal`). */
export const addMul = (dst: number, a: number, b: number, kLocal: number) => [...op.get(a), ...op.get(b), ...op.get(kLocal), ...op.i32Mul, ...op.i32Add, ...op.set(dst)];
export const shl2 = (dst: number, src: number, mask = -1) => [...op.get(src), ...op.i32(mask), ...op.i32And, ...op.i32(2), ...op.i32Shl, ...op.set(dst)];


// f32x4 / i32x4 / v128 instructions by name (the attention and activation kernels').
const simdOp = (code: number) => op.simd(code);
export const f32x4 = {
  splat: simdOp(0x13), extract: (l: number) => [...simdOp(0x1f), l], abs: simdOp(0xe0), add: simdOp(0xe4), sub: simdOp(0xe5), mul: simdOp(0xe6), div: simdOp(0xe7),
  max: simdOp(0xe9), pmax: simdOp(0xeb), lt: simdOp(0x43), gt: simdOp(0x44), ge: simdOp(0x46), ne: simdOp(0x42), neg: simdOp(0xe1), nearest: simdOp(0x6a), truncSatToI32: simdOp(0xf8), const: (v: number) => op.v128Const([...new Uint8Array(Float32Array.of(v, v, v, v).buffer)]),
};
export const v128 = { and: simdOp(0x4e), or: simdOp(0x50), andnot: simdOp(0x4f), bitselect: simdOp(0x52), anyTrue: simdOp(0x53) };
export const i32x4 = {
  add: simdOp(0xae), shl: simdOp(0xab), bitmask: simdOp(0xa4), extract: (l: number) => [...simdOp(0x1b), l],
  const: (v: number) => op.v128Const([...new Uint8Array(Int32Array.of(v, v, v, v).buffer)]),
  /** Four different lanes. */
  lanes: (v: [number, number, number, number]) => op.v128Const([...new Uint8Array(Int32Array.from(v).buffer)]),
};
export const shuffle32 = (lanes: number[]) => [...simdOp(0x0d), ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3])];

/**
 * exp of the f32x4 on the stack, lane by lane, for x <= 0 (locals `tmp` and `r`, v128, are scratch):
 * x = n ln2 + r with |r| <= ln2/2 (ln2 split in two so that n * ln2_hi is exact), e^r by its degree-7
 * Taylor polynomial (truncation below 5e-9 relative), times 2^n from the exponent bits. Arguments are
 * clamped at -87 (e^-87 ~ 1.6e-38) by f32x4.pmax (one maxps; x < -87 ? -87 : x, so NaN stays NaN).
 * n = nearest(x log2 e) comes from adding 1.5 * 2^23, whose sum keeps n (ties to even, as f32x4.nearest)
 * in its low mantissa bits: t - 1.5 * 2^23 is n as a float, and (bits(t) + 127) << 23 is 2^n (the
 * constant's own bits shift out), two instructions where f32x4.nearest and the saturating conversion
 * take about ten on x86. The same values bit for bit as nearest and trunc_sat; NaN gives NaN, never a trap.
 * `k` pushes the constants (a kernel's hoisted locals, see `hoisted`; inline v128.const by default).
 */
export function expX4(tmp: number, r: number, k: Konst = inlineConst): number[] {
  const taylor = [1 / 5040, 1 / 720, 1 / 120, 1 / 24, 1 / 6, 1 / 2, 1, 1];
  const horner: number[] = [...k(taylor[0]!)];
  for (const c of taylor.slice(1)) horner.push(...op.get(r), ...f32x4.mul, ...k(c), ...f32x4.add);
  const magic = 12582912; // 1.5 * 2^23
  return [
    ...k(-87), ...f32x4.pmax, ...op.set(tmp), // x
    ...op.get(tmp), ...k(Math.LOG2E), ...f32x4.mul, ...k(magic), ...f32x4.add, ...op.set(r), // t = x log2 e + 1.5 * 2^23 (in r for now)
    ...op.get(tmp), ...op.get(r), ...k(magic), ...f32x4.sub, ...k(0.693145751953125), ...f32x4.mul, ...f32x4.sub,
    ...op.get(r), ...k(magic), ...f32x4.sub, ...k(1.428606765330187e-6), ...f32x4.mul, ...f32x4.sub, // r = x - n ln2
    ...op.get(r), ...k(127, 'i32'), ...i32x4.add, ...op.i32(23), ...i32x4.shl, ...op.set(tmp), // 2^n
    ...op.set(r), ...horner, ...op.get(tmp), ...f32x4.mul,
  ];
}

/** Code that pushes a v128 constant, v in every f32 (or i32) lane. */
export type Konst = (v: number, lanes?: 'f32' | 'i32') => number[];
const inlineConst: Konst = (v, lanes = 'f32') => (lanes === 'f32' ? f32x4.const(v) : i32x4.const(v));

/**
 * v128 constants made once, into locals, at a kernel's start: V8 does not hoist a v128.const out of a
 * loop, and x86 has no vector immediates (two to four instructions a use). `k` pushes a constant
 * (its local numbered from `first` on, made on first use); `init` is the code that fills the locals, to
 * go before the kernel's code, and `count` how many v128 locals to declare. (Kernels use it through
 * bodyWithConstants.)
 */
function hoisted(first: number): { k: Konst; init: () => number[]; count: () => number } {
  const made = new Map<string, { local: number; code: number[] }>();
  const k: Konst = (v, lanes = 'f32') => {
    const key = `${lanes}:${Object.is(v, -0) ? '-0' : v}`;
    let c = made.get(key);
    if (!c) made.set(key, (c = { local: first + made.size, code: inlineConst(v, lanes) }));
    return op.get(c.local);
  };
  return { k, init: () => [...made.values()].flatMap((c) => [...c.code, ...op.set(c.local)]), count: () => made.size };
}

/**
 * A function body whose v128 constants are hoisted: `build(k)` emits the code (k pushes a constant), and
 * the body declares `locals` ([count, type] groups after `params` parameters), then one v128 local per
 * constant, fills those first and runs the code.
 */
export function bodyWithConstants(params: number, locals: number[][], build: (k: Konst) => number[]): number[] {
  const consts = hoisted(params + locals.reduce((sum, [n]) => sum + n!, 0));
  const code = build(consts.k); // (first: it makes the constants)
  return [...vec([...locals, [consts.count(), V128]].map(([n, t]) => [...uleb(n!), t!])), ...consts.init(), ...code, ...op.end];
}
