// WebAssembly SIMD twins of matmul.ts's kernels, for speed on the CPU (f32x4 lanes).
// The module is emitted byte by byte below (no toolchain needed); each instruction is named.
//
// Exports (pointers are byte offsets into the imported memory, row-major like matmul.ts):
//   matvec(w, x, out, cols, r0, r1)            out[r] = W[r] . x for r in [r0, r1); any cols
//   matmul4(w, x, out, n, rows, cols, r0, r1)  out[t][r] = W[r] . X[t]; cols % 4 == 0; four inputs
//                                              share each weight load
// Precision: f32 accumulation in 16 (matvec) or 4 (matmul4) partial sums, so the error is at most
// about (cols / 4) * 2^-24 * sum |w x| (the classic f32 dot-product bound), unlike the float64
// accumulation of the JavaScript kernels.

// --- a tiny WebAssembly emitter ----------------------------------------------------------------
const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) { out.push(b); return out; }
    out.push(b | 0x80);
  }
};
const str = (s: string) => [...uleb(s.length), ...new TextEncoder().encode(s)];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];

const I32 = 0x7f, F32 = 0x7d, V128 = 0x7b, VOID = 0x40;
const op = {
  block: [0x02, VOID], loop: [0x03, VOID], end: [0x0b],
  br: (d: number) => [0x0c, ...uleb(d)], brIf: (d: number) => [0x0d, ...uleb(d)],
  get: (i: number) => [0x20, ...uleb(i)], set: (i: number) => [0x21, ...uleb(i)],
  i32: (v: number) => [0x41, ...sleb(v)],
  i32Add: [0x6a], i32Mul: [0x6c], i32And: [0x71], i32Shl: [0x74], i32GeU: [0x4f],
  f32Load: (offset = 0) => [0x2a, 2, ...uleb(offset)], f32Store: [0x38, 2, 0],
  f32Add: [0x92], f32Mul: [0x94], f32Zero: [0x43, 0, 0, 0, 0],
  v128Load: (offset = 0) => [0xfd, ...uleb(0x00), 2, ...uleb(offset)],
  v128Zero: [0xfd, ...uleb(0x0c), ...new Array(16).fill(0)],
  f32x4Add: [0xfd, ...uleb(0xe4)], f32x4Mul: [0xfd, ...uleb(0xe6)],
  lane: (i: number) => [0xfd, ...uleb(0x1f), i],
};

/** while (local[i] < local[limit]) { body; local[i] += step } — as block/loop/br_if. */
const whileLess = (i: number, limit: number, step: number, body: number[]) => [
  ...op.block, ...op.loop,
  ...op.get(i), ...op.get(limit), ...op.i32GeU, ...op.brIf(1),
  ...body,
  ...op.get(i), ...op.i32(step), ...op.i32Add, ...op.set(i),
  ...op.br(0), ...op.end, ...op.end,
];
/** acc += load(a + c) * load(b + c) as f32x4; offset in bytes. */
const fmaV = (acc: number, a: number, b: number, c: number, offset = 0) => [
  ...op.get(acc),
  ...op.get(a), ...op.get(c), ...op.i32Add, ...op.v128Load(offset),
  ...op.get(b), ...op.get(c), ...op.i32Add, ...op.v128Load(offset),
  ...op.f32x4Mul, ...op.f32x4Add, ...op.set(acc),
];
/** Push lane0 + lane1 + lane2 + lane3 of local v. */
const hsum = (v: number) => [...op.get(v), ...op.lane(0), ...op.get(v), ...op.lane(1), ...op.f32Add, ...op.get(v), ...op.lane(2), ...op.f32Add, ...op.get(v), ...op.lane(3), ...op.f32Add];
/** local[dst] = local[a] + local[b] * k (k a constant or a local via `kLocal`). */
const addMul = (dst: number, a: number, b: number, kLocal: number) => [...op.get(a), ...op.get(b), ...op.get(kLocal), ...op.i32Mul, ...op.i32Add, ...op.set(dst)];
const shl2 = (dst: number, src: number, mask = -1) => [...op.get(src), ...op.i32(mask), ...op.i32And, ...op.i32(2), ...op.i32Shl, ...op.set(dst)];

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

/** The module's bytes. It imports a shared memory "env.memory". */
export function matmulWasmBytes(): Uint8Array<ArrayBuffer> {
  const fn = (params: number[]) => [0x60, ...vec(params.map((p) => [p])), 0];
  const bodies = [matvecBody(), matmul4Body()];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([fn(new Array(6).fill(I32)), fn(new Array(8).fill(I32))])),
    ...section(2, vec([[...str('env'), ...str('memory'), 0x02, 0x03, ...uleb(1), ...uleb(65536)]])), // shared, 1..65536 pages
    ...section(3, vec([[0], [1]])),
    ...section(7, vec([[...str('matvec'), 0x00, 0], [...str('matmul4'), 0x00, 1]])),
    ...section(10, vec(bodies.map((b) => [...uleb(b.length), ...b]))),
  ]);
}

export interface MatmulWasm {
  matvec(w: number, x: number, out: number, cols: number, r0: number, r1: number): void;
  matmul4(w: number, x: number, out: number, n: number, rows: number, cols: number, r0: number, r1: number): void;
}

/** Can this runtime run the kernels (SIMD and shared memory)? */
export function wasmSimdAvailable(): boolean {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(matmulWasmBytes()) && typeof SharedArrayBuffer === 'function';
  } catch {
    return false;
  }
}
