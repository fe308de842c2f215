// The WebAssembly SIMD twin of attention.ts, for the CPU backend in Node (worker threads split it).
// Exported functions, part of matmul-wasm.ts's module: `attention` (below: any step, one or two rows
// at a time with an online softmax), `attentionPart` and `attentionMerge` (further down: a decode step
// split by positions across threads, for long contexts) and `attentionTile` (last: a prompt step's rows
// four at a time over a scratch of scores, where the head size is a multiple of 8 and no sliding window
// applies; the executor sends each head's blocks of four tokens there and the rest here):
//
//   attention(q, k, v, out, n, start, nHeads, nKvHeads, headDim, i0, i1, scale, softcap, window, bidirectional)
//
// computes the (query token t, head h) pairs numbered i = h * n + t for i in [i0, i1) (head-major, so
// that a thread's share holds whole heads and costs about the same as another's). Pointers are byte
// offsets into the shared memory, layouts as attention.ts: q, out [n][nHeads*headDim]; k, v
// [ctx][nKvHeads*headDim]. headDim must be a multiple of 4. scale multiplies q . k (f32); softcap > 0
// caps the scores at softcap * tanh(s / softcap) (tanh from the same exp, as (1 - e) / (1 + e) with
// e = exp(-2|y|) and the sign of y); window > 0 limits a query at pos to positions > pos - window.
// bidirectional = 1 (encoders): every query sees positions [0, start + n), the window is ignored.
//
// One pass over the positions with an online softmax (the running maximum m and sum l; the output row
// itself holds the running weighted sum of values, rescaled by exp(m_old - m_new) when m grows), so
// no scores scratch is needed. Positions go eight at a time while eight remain, then four, then one
// (`positions`: scores per load of q, exp in f32x4 lanes, one rescaling and one pass over the row per
// block; four were 1.5x the one-at-a-time loop on a 512-token prefill). In a prompt step, two query rows
// of one head (tokens t and t + 1, consecutive items) go together where both see the same first position
// (`pairPositions`: their shared positions four at a time, each key and value chunk loaded once for both;
// then each row's rest alone): one thread, a 512-token causal step of the 135M shape 1.11-1.13x, two
// threads (Node 24) 1.10-1.19x. In a decode step (one token) two heads of one KV group pair the same
// way (they read the same key and value rows): the 135M shape's decode attention at 512 positions,
// two threads, 27 -> 24 us a layer. exp is computed in the kernel: x = n ln2 + r with |r| <= ln2/2, e^r by
// its degree-7 Taylor polynomial (truncation below 5e-9 relative), times 2^n from the exponent bits;
// arguments are clamped at -87 (e^-87 ~ 1.6e-38: negligible against the sum, which is >= 1); the
// exponent's conversion to an integer saturates, so a NaN or infinite score gives NaN, never a trap.
// Precision: f32 throughout: score errors of about (headDim/4 + 2) * 2^-24 * sum|q k| / sqrt(headDim),
// weights within a few f32 roundings per position (see test/attention.test.ts for the bound).

import { F32, I32, V128, op, whileLess, hsum, madd, f32x4, i32x4, v128, shuffle32, expX4, ifThen, bodyWithConstants, uleb, vec, type Konst } from './wasm-emit.js';

// Parameters, then locals.
const [Q, K, V, OUT, N, START, NHEADS, NKV, HEAD_DIM, I, I1, SCALE, CAP, WINDOW, BIDIR] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
const [H, T, P, POS, QP, KP, VP, OP, ROWB, KVB, D, END] = [15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26];
const [M, L, S, E, Y, X, R, NF] = [27, 28, 29, 30, 31, 32, 33, 34];
const [XL, EL, RL, NFL] = [X, E, R, NF];
const ACC = 35;
// for four positions at a time: their key and value rows' offsets (1, 2, 3 rows on), the last start of four
const [K1, K2, K3, END4] = [36, 37, 38, 39];
const BM = 40;
const [QV, A0, A1, A2, A3, SV, W0, W1, W2, W3] = [41, 42, 43, 44, 45, 46, 47, 48, 49, 50];
// for eight positions at a time: the key and value pointers four rows on, the last start of eight, and
// the second four's sums, scores and weights
const [KP4, VP4, END8] = [51, 52, 53];
const [A4, A5, A6, A7, SV1, W4, W5, W6, W7] = [54, 55, 56, 57, 58, 59, 60, 61, 62];
// for two query rows at a time (the same head, tokens t and t + 1): the second row's q and out
// pointers, end, running maximum and sum, block maximum and q chunk; where the pair's shared
// positions ended (position and key and value pointers), for the second row's own rest
const [QP2, OP2, END2, P0, KP0, VP0] = [63, 64, 65, 66, 67, 68];
const [M2, L2, BM2] = [69, 70, 71];
const QV2 = 72;
// (1: the pair is two heads of one KV group at one token, a decode step's; 0: two tokens of one head)
const HP = 73;
const LOCALS = [[12, I32], [8, F32], [1, V128], [4, I32], [1, F32], [10, V128], [3, I32], [9, V128], [6, I32], [3, F32], [1, V128], [1, I32]];
/** expX4's constants while a kernel is emitted: its hoisted v128 locals (withKonst). */
let konst: Konst | undefined;

const f32 = {
  div: [0x95], max: [0x97], gt: [0x5e], nearest: [0x90], sub: [0x93], mul: [0x94], add: [0x92], sqrt: [0x91],
  convertI32U: [0xb3], truncSatToI32: [0xfc, 0x00], abs: [0x8b], copysign: [0x98],
};
const i32 = { ltU: [0x49], eqz: [0x45], and: [0x71] };

/** local E = exp(local X) for X <= 0 (see the header). Uses R and NF (other locals where given: attentionMerge's). */
function exp({ X, E, R, NF } = { X: XL, E: EL, R: RL, NF: NFL }): number[] {
  const taylor = [1 / 5040, 1 / 720, 1 / 120, 1 / 24, 1 / 6, 1 / 2, 1, 1];
  const horner: number[] = [...op.f32Const(taylor[0]!)];
  for (const c of taylor.slice(1)) horner.push(...op.get(R), ...f32.mul, ...op.f32Const(c), ...f32.add);
  return [
    ...op.get(X), ...op.f32Const(-87), ...f32.max, ...op.set(X),
    ...op.get(X), ...op.f32Const(Math.LOG2E), ...f32.mul, ...f32.nearest, ...op.set(NF),
    // r = x - n ln2, with ln2 split in two so that n * ln2_hi is exact
    ...op.get(X), ...op.get(NF), ...op.f32Const(0.693145751953125), ...f32.mul, ...f32.sub,
    ...op.get(NF), ...op.f32Const(1.428606765330187e-6), ...f32.mul, ...f32.sub, ...op.set(R),
    ...horner,
    ...op.get(NF), ...f32.truncSatToI32, ...op.i32(127), ...op.i32Add, ...op.i32(23), ...op.i32Shl, ...op.f32ReinterpretI32,
    ...f32.mul, ...op.set(E),
  ];
}

/** Lane-wise sums of x's and y's interleaved halves (a step of four dot products' horizontal sums). */
const pairs = (x: number, y: number) => [...op.get(x), ...op.get(y), ...shuffle32([0, 4, 1, 5]), ...op.get(x), ...op.get(y), ...shuffle32([2, 6, 3, 7]), ...f32x4.add];
const lane = (v: number, l: number) => [...op.get(v), ...f32x4.extract(l)];
/** [s0, s1, s2, s3] * scale into local `out` from the four sums in locals a[0..3] (a[0] and a[2] reused as scratch). */
const four = (a: number[], out: number) => [
  ...pairs(a[0]!, a[1]!), ...op.set(a[0]!), ...pairs(a[2]!, a[3]!), ...op.set(a[2]!),
  ...op.get(a[0]!), ...op.get(a[2]!), ...shuffle32([0, 1, 4, 5]), ...op.get(a[0]!), ...op.get(a[2]!), ...shuffle32([2, 3, 6, 7]), ...f32x4.add,
  ...op.get(SCALE), ...f32x4.splat, ...f32x4.mul, ...op.set(out),
];
/** Soft-cap of the four scores in local sv, as the one-position code does it: copysign(cap (1 - e) / (1 + e), s), e = exp(-2 |s| / cap) (t0, t1 as scratch: W0, W1 unless given). */
const cap = (sv: number, t0 = W0, t1 = W1) => [
  ...op.get(sv), ...f32x4.abs, ...f32x4.const(-2), ...f32x4.mul, ...op.get(CAP), ...f32x4.splat, ...f32x4.div, ...expX4(t0, t1, konst), ...op.set(t0),
  ...op.get(CAP), ...f32x4.splat, ...f32x4.const(1), ...op.get(t0), ...f32x4.sub, ...f32x4.mul, ...f32x4.const(1), ...op.get(t0), ...f32x4.add, ...f32x4.div,
  ...f32x4.abs, ...op.get(sv), ...f32x4.const(-0), ...v128.and, ...v128.or, ...op.set(sv),
];

/**
 * `count` positions (4 or 8) at once: KP, VP and the rows K1, K2, K3 bytes on (and, for eight, the same
 * from KP4 = KP + 4 rows, VP4). Their scores as one vector per four (four dot products sharing each
 * load of q, summed by two rounds of interleaving), soft-capped and exponentiated in f32x4 form; the
 * running maximum moves once per block (rescaling the sum and the row at most once), and the row takes
 * the weighted value rows in one pass over it. Eight positions keep eight independent multiply-add
 * chains in the scores (four leave the loop waiting on their latency).
 */
function positions(relaxed: boolean, count: 4 | 8): number[] {
  const eight = count === 8;
  const accs = eight ? [A0, A1, A2, A3, A4, A5, A6, A7] : [A0, A1, A2, A3];
  const weights = eight ? [W0, W1, W2, W3, W4, W5, W6, W7] : [W0, W1, W2, W3];
  const scores = eight ? [SV, SV1] : [SV];
  const row = (base: number, base4: number, k: number, o: number) => [...op.get(k < 4 ? base : base4), ...op.get(D), ...op.i32Add, ...(k % 4 ? [...op.get([0, K1, K2, K3][k % 4]!), ...op.i32Add] : []), ...op.v128Load(o)];
  const rows = eight ? 8 : 4;
  return [
    ...(eight ? [...op.get(KP), ...op.get(K3), ...op.get(KVB), ...op.i32Add, ...op.i32Add, ...op.set(KP4), ...op.get(VP), ...op.get(K3), ...op.get(KVB), ...op.i32Add, ...op.i32Add, ...op.set(VP4)] : []),
    ...accs.flatMap((a) => [...op.v128Zero, ...op.set(a)]),
    ...overRow((o) => [
      ...op.get(QP), ...op.get(D), ...op.i32Add, ...op.v128Load(o), ...op.set(QV),
      ...accs.flatMap((a, k) => [...madd(relaxed, op.get(a), op.get(QV), row(KP, KP4, k, o)), ...op.set(a)]),
    ]),
    ...four(accs.slice(0, 4), SV), ...(eight ? four(accs.slice(4), SV1) : []),
    ...op.get(CAP), ...op.f32Zero, ...f32.gt,
    ...ifThen(scores.flatMap((sv) => cap(sv)), []),
    // the block's maximum; a new running maximum rescales the sum and the row by exp(m - bm)
    ...(eight ? [...op.get(SV), ...op.get(SV1), ...f32x4.max, ...op.set(QV)] : [...op.get(SV), ...op.set(QV)]),
    ...lane(QV, 0), ...lane(QV, 1), ...f32.max, ...lane(QV, 2), ...f32.max, ...lane(QV, 3), ...f32.max, ...op.set(BM),
    ...op.get(BM), ...op.get(M), ...f32.gt,
    ...ifThen([...op.get(M), ...op.get(BM), ...f32.sub, ...op.set(X), ...exp(), ...op.get(L), ...op.get(E), ...f32.mul, ...op.set(L), ...rowUpdate(relaxed, E, undefined, 0), ...op.get(BM), ...op.set(M)], []),
    // weights exp(s - m), their sum, and the row += sum_k w_k v_k
    ...scores.flatMap((sv) => [...op.get(sv), ...op.get(M), ...f32x4.splat, ...f32x4.sub, ...expX4(W0, W1, konst), ...op.set(sv), ...op.get(L), ...hsum(sv), ...f32.add, ...op.set(L)]),
    ...weights.flatMap((w, k) => [...lane(scores[k >> 2]!, k % 4), ...f32x4.splat, ...op.set(w)]),
    ...overRow((o) => [
      ...op.get(OP), ...op.get(D), ...op.i32Add,
      ...weights.reduce<number[]>((acc, w, k) => madd(relaxed, acc, op.get(w), row(VP, VP4, k, o)), [...op.get(OP), ...op.get(D), ...op.i32Add, ...op.v128Load(o)]),
      ...op.v128Store(o),
    ]),
    ...op.get(KP), ...op.get(KVB), ...op.i32(rows), ...op.i32Mul, ...op.i32Add, ...op.set(KP),
    ...op.get(VP), ...op.get(KVB), ...op.i32(rows), ...op.i32Mul, ...op.i32Add, ...op.set(VP),
  ];
}

/**
 * `chunk(o)` for o = D + (0, 16, ...) over a head row (ROWB bytes; other locals d and rowBytes if given): four chunks per step when the row
 * is a multiple of 64 bytes (head sizes of 16, 32, 64, 128, 256: the loop's own cost shared by four),
 * else one.
 */
function overRow(chunk: (offset: number) => number[], d = D, rowBytes = ROWB): number[] {
  return [
    ...op.i32(0), ...op.set(d),
    ...op.get(rowBytes), ...op.i32(63), ...i32.and, ...i32.eqz,
    ...ifThen(whileLess(d, rowBytes, 64, [0, 16, 32, 48].flatMap(chunk)), whileLess(d, rowBytes, 16, chunk(0))),
  ];
}

/** out row (headDim floats at local `out`, OP unless said) = out row * local `by` + local `alpha` * row at `src` (alpha omitted: just the scaling). */
function rowUpdate(relaxed: boolean, by: number | undefined, alpha: number | undefined, src: number, out = OP): number[] {
  const body: number[] = [...op.get(out), ...op.get(D), ...op.i32Add];
  const row = [...op.get(out), ...op.get(D), ...op.i32Add, ...op.v128Load()];
  const scaled = by !== undefined ? [...row, ...op.get(by), ...f32x4.splat, ...op.f32x4Mul] : row;
  if (alpha !== undefined) body.push(...madd(relaxed, scaled, [...op.get(alpha), ...f32x4.splat], [...op.get(src), ...op.get(D), ...op.i32Add, ...op.v128Load()]));
  else body.push(...scaled);
  body.push(...op.v128Store());
  return [...op.i32(0), ...op.set(D), ...whileLess(D, ROWB, 16, body)];
}

/**
 * Four positions for two query rows of one head at once (tokens t and t + 1, pointers QP / OP and
 * QP2 / OP2, running maxima and sums M, L and M2, L2): each key and value chunk is loaded once for
 * both rows, halving the loads per multiply-add, which is what limits the one-row loop (its key and
 * value rows come from L2 at 512 positions). Eight independent score chains, as eight positions of
 * one row have. The rows' softmax states are each as `positions` keeps them.
 */
function pairPositions(relaxed: boolean): number[] {
  const [acc1, acc2] = [[A0, A1, A2, A3], [A4, A5, A6, A7]];
  const at = (base: number, k: number, o: number) => [...op.get(base), ...op.get(D), ...op.i32Add, ...(k ? [...op.get([0, K1, K2, K3][k]!), ...op.i32Add] : []), ...op.v128Load(o)];
  // a row's block maximum bm of its scores sv; a new running maximum rescales its sum and out row by exp(m - bm)
  const settle = (sv: number, bm: number, m: number, l: number, out: number) => [
    ...lane(sv, 0), ...lane(sv, 1), ...f32.max, ...lane(sv, 2), ...f32.max, ...lane(sv, 3), ...f32.max, ...op.set(bm),
    ...op.get(bm), ...op.get(m), ...f32.gt,
    ...ifThen([...op.get(m), ...op.get(bm), ...f32.sub, ...op.set(X), ...exp(), ...op.get(l), ...op.get(E), ...f32.mul, ...op.set(l), ...rowUpdate(relaxed, E, undefined, 0, out), ...op.get(bm), ...op.set(m)], []),
    ...op.get(sv), ...op.get(m), ...f32x4.splat, ...f32x4.sub, ...expX4(W0, W1, konst), ...op.set(sv), ...op.get(l), ...hsum(sv), ...f32.add, ...op.set(l),
  ];
  return [
    ...[...acc1, ...acc2].flatMap((a) => [...op.v128Zero, ...op.set(a)]),
    ...overRow((o) => [
      ...op.get(QP), ...op.get(D), ...op.i32Add, ...op.v128Load(o), ...op.set(QV),
      ...op.get(QP2), ...op.get(D), ...op.i32Add, ...op.v128Load(o), ...op.set(QV2),
      ...[0, 1, 2, 3].flatMap((k) => [
        ...at(KP, k, o), ...op.set(ACC),
        ...madd(relaxed, op.get(acc1[k]!), op.get(QV), op.get(ACC)), ...op.set(acc1[k]!),
        ...madd(relaxed, op.get(acc2[k]!), op.get(QV2), op.get(ACC)), ...op.set(acc2[k]!),
      ]),
    ]),
    ...four(acc1, SV), ...four(acc2, SV1),
    ...op.get(CAP), ...op.f32Zero, ...f32.gt,
    ...ifThen([...cap(SV), ...cap(SV1)], []),
    ...settle(SV, BM, M, L, OP), ...settle(SV1, BM2, M2, L2, OP2),
    ...[W0, W1, W2, W3].flatMap((w, k) => [...lane(SV, k), ...f32x4.splat, ...op.set(w)]),
    ...[W4, W5, W6, W7].flatMap((w, k) => [...lane(SV1, k), ...f32x4.splat, ...op.set(w)]),
    // both out rows += sum_k w_k v_k, each value chunk loaded once (into A0..A3, free by now)
    ...overRow((o) => [
      ...[0, 1, 2, 3].flatMap((k) => [...at(VP, k, o), ...op.set(acc1[k]!)]),
      ...op.get(OP), ...op.get(D), ...op.i32Add,
      ...[W0, W1, W2, W3].reduce<number[]>((acc, w, k) => madd(relaxed, acc, op.get(w), op.get(acc1[k]!)), [...op.get(OP), ...op.get(D), ...op.i32Add, ...op.v128Load(o)]),
      ...op.v128Store(o),
      ...op.get(OP2), ...op.get(D), ...op.i32Add,
      ...[W4, W5, W6, W7].reduce<number[]>((acc, w, k) => madd(relaxed, acc, op.get(w), op.get(acc1[k]!)), [...op.get(OP2), ...op.get(D), ...op.i32Add, ...op.v128Load(o)]),
      ...op.v128Store(o),
    ]),
    ...op.get(KP), ...op.get(KVB), ...op.i32(4), ...op.i32Mul, ...op.i32Add, ...op.set(KP),
    ...op.get(VP), ...op.get(KVB), ...op.i32(4), ...op.i32Mul, ...op.i32Add, ...op.set(VP),
  ];
}

/** One position (POS, its key and value at KP and VP) for the row at QP / OP with its running M and L. */
function onePosition(relaxed: boolean): number[] {
  return [
    // s = (q . k_pos) * scale
    ...op.v128Zero, ...op.set(ACC), ...op.i32(0), ...op.set(D),
    ...whileLess(D, ROWB, 16, [
      ...madd(relaxed, op.get(ACC), [...op.get(QP), ...op.get(D), ...op.i32Add, ...op.v128Load()], [...op.get(KP), ...op.get(D), ...op.i32Add, ...op.v128Load()]), ...op.set(ACC),
    ]),
    ...hsum(ACC), ...op.get(SCALE), ...f32.mul, ...op.set(S),
    // soft-cap: s = copysign(cap * (1 - e) / (1 + e), s), e = exp(-2 |s| / cap)
    ...op.get(CAP), ...op.f32Zero, ...f32.gt,
    ...ifThen([
      ...op.get(S), ...f32.abs, ...op.f32Const(-2), ...f32.mul, ...op.get(CAP), ...f32.div, ...op.set(X), ...exp(),
      ...op.get(CAP), ...op.f32Const(1), ...op.get(E), ...f32.sub, ...f32.mul, ...op.f32Const(1), ...op.get(E), ...f32.add, ...f32.div,
      ...op.get(S), ...f32.copysign, ...op.set(S),
    ], []),
    ...op.get(S), ...op.get(M), ...f32.gt,
    ...ifThen(
      // a new maximum: rescale the sum and the row by exp(m - s), then this position weighs 1
      [...op.get(M), ...op.get(S), ...f32.sub, ...op.set(X), ...exp(), ...op.get(L), ...op.get(E), ...f32.mul, ...op.set(L), ...rowUpdate(relaxed, E, undefined, 0), ...op.get(S), ...op.set(M), ...op.f32Const(1), ...op.set(E)],
      [...op.get(S), ...op.get(M), ...f32.sub, ...op.set(X), ...exp()],
    ),
    ...op.get(L), ...op.get(E), ...f32.add, ...op.set(L),
    ...rowUpdate(relaxed, undefined, E, VP),
    ...op.get(KP), ...op.get(KVB), ...op.i32Add, ...op.set(KP),
    ...op.get(VP), ...op.get(KVB), ...op.i32Add, ...op.set(VP),
  ];
}

/** The positions [POS, END) of the row at QP / OP: eight at a time while eight remain, then four, then one; then out = row / l. */
function rowRest(relaxed: boolean): number[] {
  return [
    ...op.get(END), ...op.i32(7), ...op.i32Sub, ...op.i32(0), ...op.get(END), ...op.i32(7), ...op.i32GeU, ...op.select, ...op.set(END8),
    ...op.get(END), ...op.i32(3), ...op.i32Sub, ...op.i32(0), ...op.get(END), ...op.i32(3), ...op.i32GeU, ...op.select, ...op.set(END4),
    ...whileLess(POS, END8, 8, positions(relaxed, 8)),
    ...whileLess(POS, END4, 4, positions(relaxed, 4)),
    ...whileLess(POS, END, 1, onePosition(relaxed)),
    ...op.f32Const(1), ...op.get(L), ...f32.div, ...op.set(X), ...rowUpdate(relaxed, X, undefined, 0),
  ];
}

/** A kernel's body with expX4's constants hoisted (`konst` while `code` emits it). */
function withKonst(params: number, locals: number[][], code: () => number[]): number[] {
  return bodyWithConstants(params, locals, (k) => {
    konst = k;
    try {
      return code();
    } finally {
      konst = undefined;
    }
  });
}

function body(relaxed: boolean): number[] {
  return withKonst(15, LOCALS, () => code(relaxed));
}

function code(relaxed: boolean): number[] {
  const zeroRow = (out: number) => [...op.i32(0), ...op.set(D), ...whileLess(D, ROWB, 16, [...op.get(out), ...op.get(D), ...op.i32Add, ...op.v128Zero, ...op.v128Store()])];
  // Two rows of one head at once (pairPositions) where the item after this one is the next token's row of the
  // same head in this share, and both rows see the same first position (no sliding window, or bidirectional):
  // their shared positions four at a time, then each row's rest on its own.
  // (the second row: the next token's, nHeads rows on, or with HP the next head's, one row on)
  const next = [...op.get(ROWB), ...op.get(NHEADS), ...op.get(ROWB), ...op.i32Mul, ...op.get(HP), ...op.select];
  const pair = [
    ...op.get(QP), ...next, ...op.i32Add, ...op.set(QP2),
    ...op.get(OP), ...next, ...op.i32Add, ...op.set(OP2),
    ...zeroRow(OP2),
    ...op.f32Const(-Infinity), ...op.set(M2), ...op.f32Zero, ...op.set(L2),
    ...op.get(END), ...op.get(END), ...op.i32(1), ...op.i32Add, ...op.get(BIDIR), ...op.get(HP), ...[0x72], ...op.select, ...op.set(END2), // (bidirectional, or the same token: the same end) (i32.or)
    ...op.get(END), ...op.i32(3), ...op.i32Sub, ...op.i32(0), ...op.get(END), ...op.i32(3), ...op.i32GeU, ...op.select, ...op.set(END4),
    ...whileLess(POS, END4, 4, pairPositions(relaxed)),
    ...op.get(POS), ...op.set(P0), ...op.get(KP), ...op.set(KP0), ...op.get(VP), ...op.set(VP0),
    ...rowRest(relaxed),
    // the second row from where the pair stopped
    ...op.get(QP2), ...op.set(QP), ...op.get(OP2), ...op.set(OP), ...op.get(M2), ...op.set(M), ...op.get(L2), ...op.set(L),
    ...op.get(P0), ...op.set(POS), ...op.get(KP0), ...op.set(KP), ...op.get(VP0), ...op.set(VP), ...op.get(END2), ...op.set(END),
    ...rowRest(relaxed),
    ...op.get(I), ...op.i32(1), ...op.i32Add, ...op.set(I), // (the item loop adds the other)
  ];
  const code = [
    ...op.get(HEAD_DIM), ...op.i32(2), ...op.i32Shl, ...op.set(ROWB), // bytes per head row
    ...op.get(NKV), ...op.get(HEAD_DIM), ...op.i32Mul, ...op.i32(2), ...op.i32Shl, ...op.set(KVB), // bytes per cache row
    ...op.get(KVB), ...op.set(K1), ...op.get(KVB), ...op.i32(1), ...op.i32Shl, ...op.set(K2), ...op.get(K1), ...op.get(K2), ...op.i32Add, ...op.set(K3),
    ...whileLess(I, I1, 1, [
      // h = i / n, t = i % n; pos = start + t
      ...op.get(I), ...op.get(N), ...[0x6e], ...op.set(H), // i32.div_u
      ...op.get(I), ...op.get(H), ...op.get(N), ...op.i32Mul, ...op.i32Sub, ...op.set(T),
      // end = start + n (bidirectional) or start + t + 1 (causal)
      ...op.get(BIDIR),
      ...ifThen([...op.get(START), ...op.get(N), ...op.i32Add, ...op.set(END)], [...op.get(START), ...op.get(T), ...op.i32Add, ...op.i32(1), ...op.i32Add, ...op.set(END)]),
      // q row and out row: (t * nHeads + h) * headDim floats
      ...op.get(T), ...op.get(NHEADS), ...op.i32Mul, ...op.get(H), ...op.i32Add, ...op.get(ROWB), ...op.i32Mul, ...op.set(P),
      ...op.get(Q), ...op.get(P), ...op.i32Add, ...op.set(QP),
      ...op.get(OUT), ...op.get(P), ...op.i32Add, ...op.set(OP),
      // this head's K/V column: kv head h / (nHeads / nKvHeads)
      ...op.get(H), ...op.get(NHEADS), ...op.get(NKV), ...[0x6e], ...[0x6e], ...op.get(ROWB), ...op.i32Mul, ...op.set(P),
      ...op.get(K), ...op.get(P), ...op.i32Add, ...op.set(KP),
      ...op.get(V), ...op.get(P), ...op.i32Add, ...op.set(VP),
      ...zeroRow(OP),
      ...op.f32Const(-Infinity), ...op.set(M), ...op.f32Zero, ...op.set(L),
      // the first visible position: end - window with a sliding window shorter than end, else 0
      ...op.i32(0), ...op.set(POS),
      ...op.get(WINDOW), ...op.get(END), ...i32.ltU, ...op.get(WINDOW), ...i32.eqz, ...i32.eqz, ...i32.and, ...op.get(BIDIR), ...i32.eqz, ...i32.and,
      ...ifThen([...op.get(END), ...op.get(WINDOW), ...op.i32Sub, ...op.set(POS)], []),
      ...op.get(KP), ...op.get(POS), ...op.get(KVB), ...op.i32Mul, ...op.i32Add, ...op.set(KP),
      ...op.get(VP), ...op.get(POS), ...op.get(KVB), ...op.i32Mul, ...op.i32Add, ...op.set(VP),
      // pair with the next item where i + 1 < i1 and either t + 1 < n (no window, or bidirectional: both
      // rows see the same first position) or, one token a step (decode), the next head reads the same
      // KV head: h + 1 < nHeads and (h + 1) / group = h / group, group = nHeads / nKvHeads (HP; P, free by
      // now, holds the group)
      ...op.get(N), ...op.i32(1), ...[0x46], // (i32.eq)
      ...op.get(H), ...op.i32(1), ...op.i32Add, ...op.get(NHEADS), ...op.get(NKV), ...[0x6e], ...op.set(P), ...op.get(P), ...[0x6e],
      ...op.get(H), ...op.get(P), ...[0x6e], ...[0x46], ...i32.and, ...op.set(HP),
      ...op.get(I), ...op.i32(1), ...op.i32Add, ...op.get(I1), ...i32.ltU,
      ...op.get(T), ...op.i32(1), ...op.i32Add, ...op.get(N), ...i32.ltU,
      ...op.get(WINDOW), ...i32.eqz, ...op.get(BIDIR), ...[0x72], ...i32.and, // (i32.or)
      ...op.get(HP), ...[0x72], ...i32.and,
      ...ifThen(pair, rowRest(relaxed)),
    ]),
  ];
  return code;
}

// ---- attentionPart and attentionMerge: a decode step split by positions (split-K) ----
//
//   attentionPart(q, k, v, part, n, start, nHeads, nKvHeads, headDim, p0, p1, scale, softcap, window, bidirectional)
//
// One token's attention (a decode step, causal) over the positions [p0, p1) only, for every head: per
// head h, the online softmax's state over those positions, unnormalized, at part + h * (headDim * 4 +
// 16): [m, l, -, -] (the running maximum and sum, as `attention` keeps them in locals) then the row o =
// sum_p exp(s_p - m) v_p. n, start, window and bidirectional are not read (the caller gives the
// positions: a sliding window's are [start + 1 - window, start + 1)). The positions go a block at a
// time (128 KiB of key rows of one KV head: 512 positions of a 64-value head), and within a block the
// heads of the KV group in turn, two at a time as `attention` pairs them (pairPositions), so that the
// cache keeps each block for the group's other heads (the 135M shape's cache is 71 MB at 1536
// positions). The executor splits [p0, p1) across its threads, every thread taking all heads, so that
// threads share the work evenly whatever the heads (two threads split 9 heads 4 / 5 by heads).
//
//   attentionMerge(out, part, nHeads, headDim, count, threads, partBytes)
//
// out rows (nHeads x headDim f32) from the threads' parts (thread j's at part + j * partBytes; those
// whose share of `count` positions, [floor(count j / threads), floor(count (j + 1) / threads)), is
// empty are skipped): with m = max_j m_j and c_j = exp(m_j - m), out = (sum_j c_j o_j) / (sum_j c_j l_j).
// Precision: each share as `attention` computes its positions (the same score and weight chains); the
// merge adds one rescaling per share (exp 16u, a product u), a sum of `threads` terms and the division.

const [GG, GS, GH1, BLK, BEND, BSZ, PB, PB2] = [74, 75, 76, 77, 78, 79, 80, 81];

/** The head row at local `row` (ROWB bytes) set to zeros. */
const zeroRow = (row: number) => [...op.i32(0), ...op.set(D), ...whileLess(D, ROWB, 16, [...op.get(row), ...op.get(D), ...op.i32Add, ...op.v128Zero, ...op.v128Store()])];

function partCode(relaxed: boolean): number[] {
  // head h's part: PB = part + h * (ROWB + 16), its row at OP = PB + 16
  const partOf = (h: number[]) => [...op.get(OUT), ...h, ...op.get(ROWB), ...op.i32(16), ...op.i32Add, ...op.i32Mul, ...op.i32Add, ...op.set(PB), ...op.get(PB), ...op.i32(16), ...op.i32Add, ...op.set(OP)];
  const below = (local: number, back: number) => [...op.get(local), ...op.i32(back), ...op.i32Sub, ...op.i32(0), ...op.get(local), ...op.i32(back), ...op.i32GeU, ...op.select];
  return [
    ...op.get(HEAD_DIM), ...op.i32(2), ...op.i32Shl, ...op.set(ROWB),
    ...op.get(NKV), ...op.get(HEAD_DIM), ...op.i32Mul, ...op.i32(2), ...op.i32Shl, ...op.set(KVB),
    ...op.get(KVB), ...op.set(K1), ...op.get(KVB), ...op.i32(1), ...op.i32Shl, ...op.set(K2), ...op.get(K1), ...op.get(K2), ...op.i32Add, ...op.set(K3),
    ...op.get(NHEADS), ...op.get(NKV), ...[0x6e], ...op.set(GS), // heads per KV group (i32.div_u)
    // positions a block: 128 KiB of key rows, a multiple of 8, at least 8
    ...op.i32(1 << 17), ...op.get(ROWB), ...[0x6e], ...op.i32(-8), ...op.i32And, ...op.set(BSZ),
    ...op.get(BSZ), ...op.i32(8), ...op.get(BSZ), ...op.i32(8), ...op.i32GeU, ...op.select, ...op.set(BSZ),
    // every head's state: m = -inf, l = 0, o = 0
    ...op.i32(0), ...op.set(H),
    ...whileLess(H, NHEADS, 1, [
      ...partOf(op.get(H)),
      ...op.get(PB), ...op.f32Const(-Infinity), ...op.f32Store, ...op.get(PB), ...op.i32(4), ...op.i32Add, ...op.f32Zero, ...op.f32Store,
      ...zeroRow(OP),
    ]),
    ...op.i32(0), ...op.set(GG),
    ...whileLess(GG, NKV, 1, [
      ...op.get(I), ...op.set(BLK),
      ...whileLess(BLK, I1, { local: BSZ }, [
        ...op.get(BLK), ...op.get(BSZ), ...op.i32Add, ...op.get(I1), ...op.get(BLK), ...op.get(BSZ), ...op.i32Add, ...op.get(I1), ...i32.ltU, ...op.select, ...op.set(BEND),
        ...op.get(GG), ...op.get(GS), ...op.i32Mul, ...op.set(H), ...op.get(H), ...op.get(GS), ...op.i32Add, ...op.set(GH1),
        ...whileLess(H, GH1, 1, [
          ...op.get(Q), ...op.get(H), ...op.get(ROWB), ...op.i32Mul, ...op.i32Add, ...op.set(QP),
          ...partOf(op.get(H)),
          ...op.get(PB), ...op.f32Load(), ...op.set(M), ...op.get(PB), ...op.f32Load(4), ...op.set(L),
          ...op.get(BLK), ...op.set(POS), ...op.get(BEND), ...op.set(END),
          ...op.get(GG), ...op.get(ROWB), ...op.i32Mul, ...op.get(POS), ...op.get(KVB), ...op.i32Mul, ...op.i32Add, ...op.set(P),
          ...op.get(K), ...op.get(P), ...op.i32Add, ...op.set(KP),
          ...op.get(V), ...op.get(P), ...op.i32Add, ...op.set(VP),
          ...op.get(H), ...op.i32(1), ...op.i32Add, ...op.get(GH1), ...i32.ltU,
          ...ifThen([
            // two heads (h, h + 1) at once: their shared positions four at a time (pairPositions), then
            // each one's last few alone
            ...op.get(QP), ...op.get(ROWB), ...op.i32Add, ...op.set(QP2),
            ...op.get(PB), ...op.get(ROWB), ...op.i32(16), ...op.i32Add, ...op.i32Add, ...op.set(PB2), ...op.get(PB2), ...op.i32(16), ...op.i32Add, ...op.set(OP2),
            ...op.get(PB2), ...op.f32Load(), ...op.set(M2), ...op.get(PB2), ...op.f32Load(4), ...op.set(L2),
            ...below(END, 3), ...op.set(END4),
            ...whileLess(POS, END4, 4, pairPositions(relaxed)),
            ...op.get(POS), ...op.set(P0), ...op.get(KP), ...op.set(KP0), ...op.get(VP), ...op.set(VP0),
            ...whileLess(POS, END, 1, onePosition(relaxed)),
            ...op.get(PB), ...op.get(M), ...op.f32Store, ...op.get(PB), ...op.i32(4), ...op.i32Add, ...op.get(L), ...op.f32Store,
            ...op.get(QP2), ...op.set(QP), ...op.get(OP2), ...op.set(OP), ...op.get(M2), ...op.set(M), ...op.get(L2), ...op.set(L), ...op.get(PB2), ...op.set(PB),
            ...op.get(P0), ...op.set(POS), ...op.get(KP0), ...op.set(KP), ...op.get(VP0), ...op.set(VP),
            ...whileLess(POS, END, 1, onePosition(relaxed)),
            ...op.get(H), ...op.i32(1), ...op.i32Add, ...op.set(H), // (the loop adds the other)
          ], [
            ...below(END, 7), ...op.set(END8), ...below(END, 3), ...op.set(END4),
            ...whileLess(POS, END8, 8, positions(relaxed, 8)),
            ...whileLess(POS, END4, 4, positions(relaxed, 4)),
            ...whileLess(POS, END, 1, onePosition(relaxed)),
          ]),
          ...op.get(PB), ...op.get(M), ...op.f32Store, ...op.get(PB), ...op.i32(4), ...op.i32Add, ...op.get(L), ...op.f32Store,
        ]),
      ]),
    ]),
  ];
}

// attentionMerge's parameters and locals
const [MOUT, MPART, MHEADS, MDIM, MCOUNT, MTHREADS, MBYTES] = [0, 1, 2, 3, 4, 5, 6];
const [MH, MT, MPT, MROWB, MD, MOP] = [7, 8, 9, 10, 11, 12];
const [MMAX, MSUM, MX, ME, MR, MNF] = [13, 14, 15, 16, 17, 18];

function mergeCode(relaxed: boolean): number[] {
  // for each thread j with a share: body (MPT: its part of head MH)
  const shares = (body: number[]) => [
    ...op.i32(0), ...op.set(MT),
    ...whileLess(MT, MTHREADS, 1, [
      // floor(count (j + 1) / threads) > floor(count j / threads)
      ...op.get(MCOUNT), ...op.get(MT), ...op.i32(1), ...op.i32Add, ...op.i32Mul, ...op.get(MTHREADS), ...[0x6e],
      ...op.get(MCOUNT), ...op.get(MT), ...op.i32Mul, ...op.get(MTHREADS), ...[0x6e], ...[0x4b], // (i32.gt_u)
      ...ifThen([
        ...op.get(MPART), ...op.get(MT), ...op.get(MBYTES), ...op.i32Mul, ...op.i32Add,
        ...op.get(MH), ...op.get(MROWB), ...op.i32(16), ...op.i32Add, ...op.i32Mul, ...op.i32Add, ...op.set(MPT),
        ...body,
      ], []),
    ]),
  ];
  const overRowM = (chunk: number[]) => [...op.i32(0), ...op.set(MD), ...whileLess(MD, MROWB, 16, chunk)];
  const outAt = [...op.get(MOP), ...op.get(MD), ...op.i32Add];
  return [
    ...op.get(MDIM), ...op.i32(2), ...op.i32Shl, ...op.set(MROWB),
    ...op.i32(0), ...op.set(MH),
    ...whileLess(MH, MHEADS, 1, [
      ...op.get(MOUT), ...op.get(MH), ...op.get(MROWB), ...op.i32Mul, ...op.i32Add, ...op.set(MOP),
      ...op.f32Const(-Infinity), ...op.set(MMAX),
      ...shares([...op.get(MMAX), ...op.get(MPT), ...op.f32Load(), ...f32.max, ...op.set(MMAX)]),
      ...op.f32Zero, ...op.set(MSUM),
      ...overRowM([...outAt, ...op.v128Zero, ...op.v128Store()]),
      ...shares([
        ...op.get(MPT), ...op.f32Load(), ...op.get(MMAX), ...f32.sub, ...op.set(MX), ...exp({ X: MX, E: ME, R: MR, NF: MNF }),
        ...op.get(MSUM), ...op.get(ME), ...op.get(MPT), ...op.f32Load(4), ...f32.mul, ...f32.add, ...op.set(MSUM),
        ...overRowM([...outAt, ...madd(relaxed, [...outAt, ...op.v128Load()], [...op.get(ME), ...f32x4.splat], [...op.get(MPT), ...op.get(MD), ...op.i32Add, ...op.v128Load(16)]), ...op.v128Store()]),
      ]),
      ...op.f32Const(1), ...op.get(MSUM), ...f32.div, ...op.set(MX),
      ...overRowM([...outAt, ...outAt, ...op.v128Load(), ...op.get(MX), ...f32x4.splat, ...f32x4.mul, ...op.v128Store()]),
    ]),
  ];
}

// ---- attentionTile: four query rows at a time (tokens of a head, or heads of a KV group), in three passes over a scratch of scores ----
//
//   attentionTile(q, k, v, out, n, start, nHeads, nKvHeads, headDim, i0, i1, scale, softcap, window, bidirectional, scratch, heads)
//
// computes the items [i0, i1) as `attention` does, four at a time. heads = 0 (a prompt step): items
// i .. i + 3 must be tokens t .. t + 3 of one head (the caller splits a thread's share so: i1 - i0 a
// multiple of 4, no block across a head's end). heads = 1 (a decode step, n = 1): the items are heads
// h .. h + 3 of one KV group, which read the same keys and values (the caller passes one group's heads
// of its share at a time; a last block of fewer than four repeats its last head). headDim a multiple of
// 8, and no sliding window that hides a position from any of the rows (the caller passes window 0 or
// one no shorter than start + n; the kernel ignores it). scratch: 16 bytes per position (start + n
// positions at most), this thread's own.
// For the block's positions [0, E) (E = start + t + 4 causal, start + t + 1 for heads, start + n bidirectional):
//   1. scores: s[p] = [q_t . k_p, ..., q_t+3 . k_p] * scale (soft-capped) as one f32x4 at scratch + 16 p:
//      two positions a pass over the head row, eight multiply-add chains (4 rows x 2 positions), each key
//      chunk loaded once for four rows and each q chunk once for two positions; a causal block's last
//      three positions get -inf in the lanes of the rows that do not see them (row j sees p < E - 3 + j);
//   2. softmax across positions with the four rows in the lanes: m = max_p s[p], w[p] = exp(s[p] - m)
//      (the masked lanes then set to 0; their exp(-87) ~ 1.6e-38 was added to sums >= 1, below half an
//      ulp), l = sum_p w[p];
//   3. out rows = (sum_p w[p] v_p) / l, eight columns at a time: 4 rows x 2 f32x4 accumulators over a
//      chunk of positions, each weight a load32_splat of its lane, each value chunk loaded once for four
//      rows; the accumulators go from and back to the out rows between chunks. A chunk is 64 positions,
//      fewer where the cache's rows are 1 KiB or more apart (8 at 4 KiB: rows that far apart fall in
//      the same L1 sets, and every column tile passes over the chunk's rows again).
// Decode (heads = 1) is worth it for KV groups of 4+ heads (the executor's TILE_GROUP_MIN; one or two
// heads left over in a group go to `attention`'s head pairs): two threads, 512 positions, 16 / 4 heads
// of 64: 35.6 -> 25.5 us, 32 / 8: 65 -> 50, 24 / 4 of 128: 81.6 -> 66.4; groups of 3 (the 135M shape) ran
// no faster and groups of 2 up to twice as slow (one or two lanes of four idle), so they keep `attention`.
// Unlike `attention`'s online softmax, nothing is rescaled; every accumulator is an independent chain.
// Precision: the scores as `attention`'s (the same dot-product order: 4 lanes of headDim/4 terms, then the
// lanes summed pairwise); the weights one exp each; l and each output column a running f32 sum over the
// positions (one rounding a term), then one multiplication by 1/l (two roundings).

// Parameters as attention's, then the scratch and the rows' kind (1: heads); then locals.
const [SCR, HEADS] = [15, 16];
const [TH, TT, TE, TROWB, TKVB, TQS, TD, TQ0, TQ1, TQ2, TQ3, TDO, TKP, TKP1, TVP, TSP, TEND, TE1, TPC, TCE, TCH] = [17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37];
const TA = [38, 39, 40, 41, 42, 43, 44, 45];
const [TK0, TK1, TQV, TSV, TSV1, TMX, TLV, TW0, TW1] = [46, 47, 48, 49, 50, 51, 52, 53, 54];

const load32Splat = (offset = 0) => [...op.simd(0x09), 2, ...uleb(offset)];

/** A v128 constant whose first `lanes` 32-bit lanes are all ones. */
const laneMask = (lanes: number) => op.v128Const(Array.from({ length: 16 }, (_, b) => (b < 4 * lanes ? 0xff : 0)));

function tileBody(relaxed: boolean): number[] {
  return withKonst(17, [[21, I32], [17, V128]], () => tileCode(relaxed));
}

function tileCode(relaxed: boolean): number[] {
  const qs = [TQ0, TQ1, TQ2, TQ3];
  const zero = (locals: number[]) => locals.flatMap((a) => [...op.v128Zero, ...op.set(a)]);
  // the scores of position p (TKP) and, with `two`, p + 1 (TKP1) into the scratch at TSP
  const scores = (two: boolean) => [
    ...zero(two ? TA : TA.slice(0, 4)),
    ...overRow((o) => [
      ...op.get(TKP), ...op.get(TD), ...op.i32Add, ...op.v128Load(o), ...op.set(TK0),
      ...(two ? [...op.get(TKP1), ...op.get(TD), ...op.i32Add, ...op.v128Load(o), ...op.set(TK1)] : []),
      ...qs.flatMap((qp, j) => [
        ...op.get(qp), ...op.get(TD), ...op.i32Add, ...op.v128Load(o), ...op.set(TQV),
        ...madd(relaxed, op.get(TA[j]!), op.get(TQV), op.get(TK0)), ...op.set(TA[j]!),
        ...(two ? [...madd(relaxed, op.get(TA[4 + j]!), op.get(TQV), op.get(TK1)), ...op.set(TA[4 + j]!)] : []),
      ]),
    ], TD, TROWB),
    ...four(TA.slice(0, 4), TSV), ...(two ? four(TA.slice(4), TSV1) : []),
    ...op.get(CAP), ...op.f32Zero, ...f32.gt,
    ...ifThen([...cap(TSV, TW0, TW1), ...(two ? cap(TSV1, TW0, TW1) : [])], []),
    ...op.get(TSP), ...op.get(TSV), ...op.v128Store(0),
    ...(two ? [...op.get(TSP), ...op.get(TSV1), ...op.v128Store(16)] : []),
  ];
  const at = (back: number) => [...op.get(TEND), ...op.i32(back), ...op.i32Sub];
  // the out row of the q row at local qp, at column byte TD
  const outAt = (qp: number) => [...op.get(qp), ...op.get(TDO), ...op.i32Add, ...op.get(TD), ...op.i32Add];
  // a causal block's last three positions: lanes 0, 0..1, 0..2 (rows that do not see them) set to -inf, or after the exp to 0
  const hide = [[48, 1], [32, 2], [16, 3]].flatMap(([back, lanes]) => [...at(back!), ...f32x4.const(-Infinity), ...at(back!), ...op.v128Load(), ...laneMask(lanes!), ...v128.bitselect, ...op.v128Store()]);
  const clear = [[48, 1], [32, 2], [16, 3]].flatMap(([back, lanes]) => [...at(back!), ...at(back!), ...op.v128Load(), ...laneMask(lanes!), ...v128.andnot, ...op.v128Store()]);
  const code = [
    ...op.get(HEAD_DIM), ...op.i32(2), ...op.i32Shl, ...op.set(TROWB),
    ...op.get(NKV), ...op.get(HEAD_DIM), ...op.i32Mul, ...op.i32(2), ...op.i32Shl, ...op.set(TKVB),
    // (the rows' stride: the next token's row, nHeads heads on, or with `heads` the next head's)
    ...op.get(TROWB), ...op.get(NHEADS), ...op.get(TROWB), ...op.i32Mul, ...op.get(HEADS), ...op.select, ...op.set(TQS),
    ...op.get(OUT), ...op.get(Q), ...op.i32Sub, ...op.set(TDO), // (out rows lie where q rows do, this far on)
    // pass 3's chunk of positions: value rows kvBytes apart share the L1 cache's 64 sets (4 KiB a turn)
    // with every row gcd(kvBytes, 4096) / 4096 of a turn on; 8 rows a set at most (the cache has 12 ways),
    // and at most 64 positions: min(64, 8 * 4096 / gcd), gcd the lowest set bit of kvBytes up to 4096;
    // TCH is the chunk's bytes of scratch (16 a position)
    ...op.get(TKVB), ...op.i32(0), ...op.get(TKVB), ...op.i32Sub, ...op.i32And, ...op.set(TCH),
    ...op.i32(32768), ...op.get(TCH), ...op.i32(4096), ...op.get(TCH), ...op.i32(4096), ...i32.ltU, ...op.select, ...[0x6e], ...op.set(TCH), // (i32.div_u)
    ...op.get(TCH), ...op.i32(64), ...op.get(TCH), ...op.i32(64), ...i32.ltU, ...op.select, ...op.i32(4), ...op.i32Shl, ...op.set(TCH),
    ...whileLess(I, I1, 4, [
      // h = i / n, t = i % n; the block's positions [0, E)
      ...op.get(I), ...op.get(N), ...[0x6e], ...op.set(TH), // i32.div_u
      ...op.get(I), ...op.get(TH), ...op.get(N), ...op.i32Mul, ...op.i32Sub, ...op.set(TT),
      ...op.get(START), ...op.get(N), ...op.i32Add,
      ...op.get(START), ...op.get(TT), ...op.i32Add, ...op.i32(1), ...op.i32(4), ...op.get(HEADS), ...op.select, ...op.i32Add,
      ...op.get(BIDIR), ...op.select, ...op.set(TE),
      // q rows (t + j) * nHeads + h, or with `heads` t * nHeads + h + j; past i1 (a KV group of fewer
      // than four heads left) the last row again, its output written twice alike
      ...op.get(Q), ...op.get(TT), ...op.get(NHEADS), ...op.i32Mul, ...op.get(TH), ...op.i32Add, ...op.get(TROWB), ...op.i32Mul, ...op.i32Add, ...op.set(TQ0),
      ...[TQ1, TQ2, TQ3].flatMap((qp, j) => [...op.get(qs[j]!), ...op.get(TQS), ...op.i32(0), ...op.get(I1), ...op.get(I), ...op.i32Sub, ...op.i32(j + 1), ...[0x4b], ...op.select, ...op.i32Add, ...op.set(qp)]), // (i32.gt_u)
      // this head's K/V column: kv head h / (nHeads / nKvHeads)
      ...op.get(TH), ...op.get(NHEADS), ...op.get(NKV), ...[0x6e], ...[0x6e], ...op.get(TROWB), ...op.i32Mul, ...op.set(TVP),
      ...op.get(K), ...op.get(TVP), ...op.i32Add, ...op.set(TKP),
      ...op.get(TKP), ...op.get(TKVB), ...op.i32Add, ...op.set(TKP1),
      ...op.get(V), ...op.get(TVP), ...op.i32Add, ...op.set(TVP),
      ...op.get(SCR), ...op.get(TE), ...op.i32(4), ...op.i32Shl, ...op.i32Add, ...op.set(TEND),
      ...op.get(TEND), ...op.i32(16), ...op.i32Sub, ...op.set(TE1),
      // 1. scores, two positions at a time, then the last one if E is odd
      ...op.get(SCR), ...op.set(TSP),
      ...whileLess(TSP, TE1, 32, [
        ...scores(true),
        ...[TKP, TKP1].flatMap((p) => [...op.get(p), ...op.get(TKVB), ...op.i32(1), ...op.i32Shl, ...op.i32Add, ...op.set(p)]),
      ]),
      ...op.get(TSP), ...op.get(TEND), ...i32.ltU, ...ifThen(scores(false), []),
      ...op.get(BIDIR), ...op.get(HEADS), ...op.i32Or, ...i32.eqz, ...ifThen(hide, []),
      // 2. the rows' maxima, then the weights and their sums
      ...f32x4.const(-Infinity), ...op.set(TMX),
      ...op.get(SCR), ...op.set(TSP),
      ...whileLess(TSP, TEND, 16, [...op.get(TMX), ...op.get(TSP), ...op.v128Load(), ...f32x4.pmax, ...op.set(TMX)]), // (pmax: one maxps; a NaN score makes its weight NaN below)
      ...op.v128Zero, ...op.set(TLV),
      ...op.get(SCR), ...op.set(TSP),
      ...whileLess(TSP, TEND, 16, [
        ...op.get(TSP), ...op.v128Load(), ...op.get(TMX), ...f32x4.sub, ...expX4(TW0, TW1, konst), ...op.set(TSV),
        ...op.get(TSP), ...op.get(TSV), ...op.v128Store(),
        ...op.get(TLV), ...op.get(TSV), ...f32x4.add, ...op.set(TLV),
      ]),
      ...op.get(BIDIR), ...op.get(HEADS), ...op.i32Or, ...i32.eqz, ...ifThen(clear, []),
      ...f32x4.const(1), ...op.get(TLV), ...f32x4.div, ...op.set(TLV), // (1 / l from here on)
      // 3. out rows: zeroed, then a chunk of positions at a time (TCH), eight columns at a time (each tile's
      // accumulators from and back to the rows, times 1 / l when the last chunk stores them; a repeated
      // row computes the same sums from the same loads, so its two stores agree)
      ...qs.flatMap((qp) => [...op.i32(0), ...op.set(TD), ...whileLess(TD, TROWB, 16, [...outAt(qp), ...op.v128Zero, ...op.v128Store()])]),
      ...op.get(SCR), ...op.set(TPC), ...op.get(TVP), ...op.set(TKP1), // (TKP1: the chunk's first value row)
      ...whileLess(TPC, TEND, { local: TCH }, [
        ...op.get(TPC), ...op.get(TCH), ...op.i32Add, ...op.get(TEND), ...op.get(TPC), ...op.get(TCH), ...op.i32Add, ...op.get(TEND), ...i32.ltU, ...op.select, ...op.set(TCE),
        // (the factor the tiles' sums are stored with: 1 / l in the last chunk, else 1; TMX is free by now)
        ...op.get(TLV), ...f32x4.const(1), ...op.i32(0), ...op.get(TCE), ...op.get(TEND), ...[0x46], ...op.i32Sub, ...op.simd(0x11), ...v128.bitselect, ...op.set(TMX), // (i32.eq; i32x4.splat)
        ...op.i32(0), ...op.set(TD),
        ...whileLess(TD, TROWB, 32, [
          ...qs.flatMap((qp, j) => [...outAt(qp), ...op.v128Load(0), ...op.set(TA[j]!), ...outAt(qp), ...op.v128Load(16), ...op.set(TA[4 + j]!)]),
          ...op.get(TPC), ...op.set(TSP),
          ...op.get(TKP1), ...op.get(TD), ...op.i32Add, ...op.set(TKP),
          ...whileLess(TSP, TCE, 16, [
            ...op.get(TKP), ...op.v128Load(0), ...op.set(TK0),
            ...op.get(TKP), ...op.v128Load(16), ...op.set(TK1),
            ...qs.flatMap((_, j) => [
              ...op.get(TSP), ...load32Splat(4 * j), ...op.set(TQV),
              ...madd(relaxed, op.get(TA[j]!), op.get(TQV), op.get(TK0)), ...op.set(TA[j]!),
              ...madd(relaxed, op.get(TA[4 + j]!), op.get(TQV), op.get(TK1)), ...op.set(TA[4 + j]!),
            ]),
            ...op.get(TKP), ...op.get(TKVB), ...op.i32Add, ...op.set(TKP),
          ]),
          ...qs.flatMap((qp, j) => [
            ...op.get(TMX), ...op.get(TMX), ...shuffle32([j, j, j, j]), ...op.set(TQV),
            ...outAt(qp), ...op.get(TA[j]!), ...op.get(TQV), ...f32x4.mul, ...op.v128Store(0),
            ...outAt(qp), ...op.get(TA[4 + j]!), ...op.get(TQV), ...f32x4.mul, ...op.v128Store(16),
          ]),
        ]),
        ...op.get(TKP1), ...op.get(TKVB), ...op.get(TCH), ...op.i32(4), ...op.i32ShrU, ...op.i32Mul, ...op.i32Add, ...op.set(TKP1),
      ]),
    ]),
  ];
  return code;
}

/** The tiled kernel's name, signature and body, for matmul-wasm.ts's module. */
export function attentionTileKernel(relaxed: boolean): { name: string; params: number[]; body: number[] } {
  return { name: 'attentionTile', params: [...new Array(11).fill(I32), F32, F32, I32, I32, I32, I32], body: tileBody(relaxed) };
}

/** attentionPart's and attentionMerge's names, signatures and bodies, for matmul-wasm.ts's module. */
export function attentionSplitKernels(relaxed: boolean): { name: string; params: number[]; body: number[] }[] {
  return [
    { name: 'attentionPart', params: [...new Array(11).fill(I32), F32, F32, I32, I32], body: withKonst(15, [...LOCALS, [8, I32]], () => partCode(relaxed)) },
    { name: 'attentionMerge', params: new Array(7).fill(I32), body: [...vec([[6, I32], [6, F32]].map(([n, t]) => [...uleb(n!), t!])), ...mergeCode(relaxed), ...op.end] },
  ];
}

/** The kernel's name, signature and body, for matmul-wasm.ts's module. */
export function attentionKernel(relaxed: boolean): { name: string; params: number[]; body: number[] } {
  return { name: 'attention', params: [...new Array(11).fill(I32), F32, F32, I32, I32], body: body(relaxed) };
}

export interface AttentionWasm {
  attention(q: number, k: number, v: number, out: number, n: number, start: number, nHeads: number, nKvHeads: number, headDim: number, i0: number, i1: number, scale: number, softcap: number, window: number, bidirectional: number): void;
  attentionTile(q: number, k: number, v: number, out: number, n: number, start: number, nHeads: number, nKvHeads: number, headDim: number, i0: number, i1: number, scale: number, softcap: number, window: number, bidirectional: number, scratch: number, heads: number): void;
  attentionPart(q: number, k: number, v: number, part: number, n: number, start: number, nHeads: number, nKvHeads: number, headDim: number, p0: number, p1: number, scale: number, softcap: number, window: number, bidirectional: number): void;
  attentionMerge(out: number, part: number, nHeads: number, headDim: number, count: number, threads: number, partBytes: number): void;
}
