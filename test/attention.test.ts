import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { attention } from '../src/stages/attention.js';
import { smallFloat } from './helpers.js';

// Reference: the textbook formula with an explicit mask, in float64:
//   S = cap(Q K^T * scale) with S[t][p] = -inf for p > start + t or start + t - p >= window (causal; a
//   bidirectional step masks nothing among its start + n positions);
//   O = softmax(S) V, query head h using kv head floor(h * nKv / nHeads); scale 1/sqrt(d) unless
//   given, cap(s) = c tanh(s / c) with a soft-cap c. The engine also works in float64 and rounds
// each output once to f32, so |err| <= 2^-24 * max|v| + float64 noise: we allow 1e-6 * (max|v| + 1e-30).
interface Opts { scale?: number; softcap?: number; window?: number; causal?: boolean }
function reference(q: Float32Array, k: Float32Array, v: Float32Array, n: number, start: number, nHeads: number, nKv: number, d: number, o: Opts = {}) {
  const out = new Float64Array(n * nHeads * d);
  for (let t = 0; t < n; t++)
    for (let h = 0; h < nHeads; h++) {
      const kvh = Math.floor((h * nKv) / nHeads);
      const len = start + n; // every cached position, masked below
      const s = new Float64Array(len);
      for (let p = 0; p < len; p++) {
        if (o.causal !== false && (p > start + t || (o.window !== undefined && start + t - p >= o.window))) { s[p] = -Infinity; continue; }
        let dot = 0;
        for (let i = 0; i < d; i++) dot += q[(t * nHeads + h) * d + i]! * k[(p * nKv + kvh) * d + i]!;
        s[p] = dot * (o.scale ?? 1 / Math.sqrt(d));
        if (o.softcap) s[p] = o.softcap * Math.tanh(s[p]! / o.softcap);
      }
      const m = Math.max(...s);
      const e = s.map((x) => Math.exp(x - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let p = 0; p < len; p++)
        for (let i = 0; i < d; i++) out[(t * nHeads + h) * d + i]! += (e[p]! / z) * v[(p * nKv + kvh) * d + i]!;
    }
  return out;
}

/** A case's shape with its nHeads and random q [n][nHeads][d], k and v [start + n][nKv][d]. */
function withTensors<C extends { nKv: number; group: number; d: number; start: number; n: number }>(c: C) {
  const nHeads = c.nKv * c.group;
  const len = c.start + c.n;
  const arr = (m: number) => fc.array(smallFloat(fc, 3), { minLength: m, maxLength: m }).map((a) => Float32Array.from(a));
  return fc.record({ c: fc.constant({ ...c, nHeads }), q: arr(c.n * nHeads * c.d), k: arr(len * c.nKv * c.d), v: arr(len * c.nKv * c.d) });
}

/** Gemma 2's options, for every case set: a scale other than 1/sqrt(d) and a soft-cap, each present or not. */
const gemmaOptions = {
  scale: fc.option(fc.double({ min: 0.05, max: 1, noNaN: true }), { nil: undefined }),
  softcap: fc.option(fc.double({ min: 0.5, max: 6, noNaN: true }), { nil: undefined }),
};

const cases = fc
  .record({
    nKv: fc.integer({ min: 1, max: 4 }),
    group: fc.integer({ min: 1, max: 4 }), // GQA ratio; 1 = MHA, nKv = 1 = MQA
    d: fc.integer({ min: 1, max: 20 }), // (16: the WebAssembly kernel's four-chunk row loop)
    start: fc.integer({ min: 0, max: 40 }),
    n: fc.integer({ min: 1, max: 6 }),
    // Gemma 2's options (gemmaOptions) and a sliding window (Mistral, Gemma).
    ...gemmaOptions,
    window: fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined }),
    // Encoders: every row sees every position of the step (one case in four).
    causal: fc.oneof(fc.constant(true), fc.constant(true), fc.constant(true), fc.constant(false)),
  })
  .chain(withTensors);
const opts = (c: Opts): Opts => ({ scale: c.scale, softcap: c.softcap, window: c.window, causal: c.causal });

describe('attention', () => {
  it('matches masked softmax(cap(QK^T scale))V in float64 for MHA, GQA and MQA, with scales, soft-caps and sliding windows, causal and bidirectional', () => {
    fc.assert(
      fc.property(cases, ({ c, q, k, v }) => {
        const out = new Float32Array(c.n * c.nHeads * c.d);
        attention(out, q, k, v, c.n, c.start, { nHeads: c.nHeads, nKvHeads: c.nKv, headDim: c.d, ...opts(c) }, new Float64Array(c.start + c.n));
        const ref = reference(q, k, v, c.n, c.start, c.nHeads, c.nKv, c.d, opts(c));
        const vmax = v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
        ref.forEach((r, i) => expect(Math.abs(out[i]! - r)).toBeLessThanOrEqual(1e-6 * vmax + 1e-30));
      }),
      { numRuns: 200 },
    );
  });

  it('is causal: a token does not see later positions', () => {
    const d = 2, nHeads = 1;
    const q = Float32Array.from([1, 0, 1, 0]);
    const k = Float32Array.from([1, 0, 1, 0]);
    const v1 = Float32Array.from([5, 5, 7, 7]);
    const v2 = Float32Array.from([5, 5, -100, 100]);
    const o1 = new Float32Array(4), o2 = new Float32Array(4);
    const s = { nHeads, nKvHeads: 1, headDim: d };
    attention(o1, q, k, v1, 2, 0, s, new Float64Array(2));
    attention(o2, q, k, v2, 2, 0, s, new Float64Array(2));
    expect(Array.from(o1.subarray(0, 2))).toEqual([5, 5]); // first token only sees itself
    expect(Array.from(o2.subarray(0, 2))).toEqual([5, 5]);
  });

  it('is bidirectional when asked: the first token sees the second', () => {
    const s = { nHeads: 1, nKvHeads: 1, headDim: 2, causal: false };
    const q = Float32Array.from([1, 0, 1, 0]);
    const k = Float32Array.from([1, 0, 1, 0]); // equal scores: each row averages both values
    const o = new Float32Array(4);
    attention(o, q, k, Float32Array.from([5, 5, 7, 7]), 2, 0, s, new Float64Array(2));
    expect(Array.from(o)).toEqual([6, 6, 6, 6]);
  });
});

/**
 * The WebAssembly kernels' bound on |out - reference| for one case. f32 throughout (u = 2^-24). Each
 * score: an f32 dot product in 4 lanes of d/4 terms, a 4-way sum and the scaling, so |error| <= delta =
 * (d/4 + 6) u sum|q k| / sqrt(d). Perturbed scores change each softmax weight by a factor within
 * e^(+-2 delta). exp in the kernel: within 16u relative; the online softmax rescales the sum and the row
 * at most once per position (17u each) and sums len positive weights and len weighted values (u each per
 * term); the final division adds 2u (attentionTile: no rescaling, the sums as said, then a reciprocal
 * and a product, 2u, and masked weights of e^-87 ~ 1.6e-38 zeroed, their share of sums >= 1 below half
 * an ulp). So |out - ref| <= (2.1 delta + (20 len + 40) u) max|v| (weights sum to 1). A custom scale
 * replaces 1/sqrt(d) in delta. A soft-cap c tanh(s / c) passes score errors on shrunk (its slope is <= 1)
 * and adds its own: tanh as (1 - e) / (1 + e) from the kernel's exp (16u relative), slope <= 2 in e, and
 * 4 roundings: <= 40u c. A decode step split by positions across `merged` threads (attentionPart) runs
 * each share as above and merges them: per share one rescaling (exp 16u, a product u), a sum of `merged`
 * terms and the division (2u): (merged + 20)u more.
 */
function wasmBound(c: { n: number; start: number; nHeads: number; nKv: number; d: number; causal: boolean; scale?: number; softcap?: number }, q: Float32Array, k: Float32Array, v: Float32Array, merged = 0): number {
  const u = 2 ** -24;
  const len = c.start + c.n;
  let delta = 0;
  for (let t = 0; t < c.n; t++)
    for (let h = 0; h < c.nHeads; h++)
      for (let p = 0; p < (c.causal === false ? len : c.start + t + 1); p++) {
        const kvh = Math.floor((h * c.nKv) / c.nHeads);
        let mag = 0;
        for (let i = 0; i < c.d; i++) mag += Math.abs(q[(t * c.nHeads + h) * c.d + i]! * k[(p * c.nKv + kvh) * c.d + i]!);
        delta = Math.max(delta, (c.d / 4 + 6) * u * mag * (c.scale ?? 1 / Math.sqrt(c.d)));
      }
  if (c.softcap) delta += 40 * u * c.softcap;
  const vmax = v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  return (2.1 * delta + (20 * len + 40 + (merged ? merged + 20 : 0)) * u) * vmax + 1e-30;
}

/** The executor's attention on `threads` threads against the float64 reference, within wasmBound, for `runs` cases. */
async function matchesReference(threads: number, relaxedSimd: boolean, arbitrary: typeof cases, runs: number, merged = 0): Promise<void> {
  const { createWorkerExecutor } = await import('../src/backend/parallel.js');
  const { relaxedSimd: detect } = await import('../src/backend/matmul-wasm.js');
  if (relaxedSimd && !detect().madd) return;
  const exec = await createWorkerExecutor(threads, { relaxedSimd });
  try {
    fc.assert(
      fc.property(arbitrary, ({ c, q, k, v }) => {
        const put = (a: Float32Array) => { const b = exec.alloc(a.length); b.set(a); return b; };
        const out = exec.alloc(c.n * c.nHeads * c.d).fill(NaN);
        exec.attention(out, put(q), put(k), put(v), c.n, c.start, { nHeads: c.nHeads, nKvHeads: c.nKv, headDim: c.d, ...opts(c) });
        const ref = reference(q, k, v, c.n, c.start, c.nHeads, c.nKv, c.d, opts(c));
        const bound = wasmBound(c, q, k, v, merged);
        ref.forEach((r, i) => expect(Math.abs(out[i]! - r)).toBeLessThanOrEqual(bound));
      }),
      { numRuns: runs },
    );
  } finally {
    exec.dispose();
  }
}

describe('attention with the WebAssembly SIMD kernel (attention-wasm.ts), split across threads', () => {
  // Relaxed SIMD (FMA) rounds once where mul then add rounds twice: the same bound holds.
  for (const [threads, relaxedSimd] of [[1, false], [2, false], [2, true]] as const)
    it(`matches the float64 reference within its f32 bound for MHA, GQA and MQA (${threads} thread(s), ${relaxedSimd ? 'relaxed SIMD' : 'SIMD 1.0'})`, async () => {
      await matchesReference(threads, relaxedSimd, cases.filter(({ c }) => c.d % 4 === 0), 150);
    });

  // Prompt steps of 4+ tokens with head sizes that are multiples of 8 go through attentionTile (four
  // rows of a head at a time, the rest of each head's share through attention); three threads split
  // heads mid-way at shares that are not multiples of four. Head sizes 8 and 24 take the one-chunk
  // row loop, 16 and 64 the four-chunk one; windows shorter than start + n send the step to attention.
  // Up to 173 positions: the values' pass goes 8 to 64 positions a chunk (8 where cache rows are 4 KiB
  // apart: 4 KV heads of 256; 16 at 2 KiB, 32 at 1 KiB). Decode steps (one token) of models
  // whose KV groups hold 4+ heads go through attentionTile too, four heads of a group at a time (three
  // left: a block that repeats its last head; one or two: attention's head pairs).
  const prompts = fc
    .record({
      nKv: fc.integer({ min: 1, max: 4 }),
      group: fc.integer({ min: 1, max: 7 }),
      d: fc.constantFrom(8, 16, 24, 64, 128, 256),
      start: fc.integer({ min: 0, max: 150 }),
      n: fc.oneof(fc.integer({ min: 4, max: 23 }), fc.constant(1)),
      ...gemmaOptions,
      window: fc.option(fc.integer({ min: 1, max: 70 }), { nil: undefined }),
      causal: fc.oneof(fc.constant(true), fc.constant(true), fc.constant(false)),
    })
    .chain(withTensors);
  for (const [threads, relaxedSimd] of [[1, false], [3, false], [3, true]] as const)
    it(`prompt and decode steps through attentionTile (four rows a time) match the float64 reference within the same bound (${threads} thread(s), ${relaxedSimd ? 'relaxed SIMD' : 'SIMD 1.0'})`, async () => {
      await matchesReference(threads, relaxedSimd, prompts, 100);
    });

  // Decode steps of 384+ positions with KV groups of 2 or 3 heads on 2+ threads are split by positions
  // (attentionPart: each thread all heads over its share, in blocks of 128 KiB of key rows: 256 positions
  // for heads of 128, 512 for 64, so up to three blocks a share; one for the small heads; attentionMerge
  // on the calling thread). Three threads give shares that are not multiples of 8 or 4; windows from 1
  // position (one thread's share empty, skipped by the merge) to past the context. Head sizes 4-20 take
  // the one-chunk row loop, 64 and 128 the four-chunk one.
  const longDecode = fc
    .record({
      nKv: fc.integer({ min: 1, max: 3 }),
      group: fc.integer({ min: 2, max: 3 }),
      d: fc.constantFrom(4, 8, 12, 20, 64, 128),
      start: fc.integer({ min: 383, max: 1100 }),
      n: fc.constant(1),
      ...gemmaOptions,
      window: fc.option(fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 9, max: 1200 })), { nil: undefined }),
      causal: fc.constant(true),
    })
    .chain(withTensors);
  for (const [threads, relaxedSimd] of [[2, false], [3, false], [3, true]] as const)
    it(`long decode steps split by positions (attentionPart, attentionMerge) match the float64 reference within the same bound (${threads} threads, ${relaxedSimd ? 'relaxed SIMD' : 'SIMD 1.0'})`, async () => {
      await matchesReference(threads, relaxedSimd, longDecode, 40, threads);
    });
});
