// Choosing the next token from logits. The chain follows llama.cpp's order:
//   penalties (repetition, presence, frequency) -> top-k -> top-p -> min-p -> temperature -> random draw
// (top-p and min-p judge probabilities before temperature). Temperature 0 means greedy argmax.
// Each filter works on a Candidates list sorted by logit, highest first.

import { InvalidInputError } from '../base/errors.js';
import { Heap } from '../base/heap.js';

export interface SamplingOptions {
  /** 0 = greedy. Default 0.8. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 = off. Default 40. */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p; 1 = off. Default 0.95. */
  topP?: number;
  /** Drop tokens less likely than minP x the most likely one; 0 = off. Default 0.05. */
  minP?: number;
  /** Divide positive (multiply negative) logits of recently seen tokens; 1 = off. Default 1. */
  repeatPenalty?: number;
  /** Subtract this from the logits of tokens seen in the last repeatLastN (OpenAI's presence_penalty, -2..2). Default 0. */
  presencePenalty?: number;
  /** Subtract this times a token's count in the last repeatLastN (OpenAI's frequency_penalty, -2..2). Default 0. */
  frequencyPenalty?: number;
  /** How many recent tokens the penalties look at. Default 64. */
  repeatLastN?: number;
  /** RNG seed; the same seed, prompt and options give the same text. Default: random. */
  seed?: number;
}

export const SAMPLING_DEFAULTS = { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1, presencePenalty: 0, frequencyPenalty: 0, repeatLastN: 64 } as const;

/** Token ids and their logits, sorted by logit, highest first. */
export interface Candidates {
  ids: number[];
  logits: number[];
}

/** Small, fast, seedable PRNG (xoshiro128**), seeded through splitmix32. */
export class Rng {
  private s = new Uint32Array(4);
  constructor(seed: number) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }
  /** Uniform in [0, 1). */
  next(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result / 4294967296;
  }
}
function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/** llama.cpp's repetition penalty over the distinct tokens of `recent`, in place. */
export function applyRepetitionPenalty(logits: Float32Array, recent: readonly number[], penalty: number): void {
  if (penalty === 1) return;
  for (const id of new Set(recent)) {
    const l = logits[id]!;
    logits[id] = l > 0 ? l / penalty : l * penalty;
  }
}

/** A seen token's logit after the penalties, as llama.cpp applies them: repetition, then presence and frequency. */
export function penalized(l: number, count: number, o: { repeatPenalty: number; presencePenalty: number; frequencyPenalty: number }): number {
  if (count === 0) return l;
  const r = o.repeatPenalty === 1 ? l : l > 0 ? l / o.repeatPenalty : l * o.repeatPenalty;
  return r - count * o.frequencyPenalty - o.presencePenalty;
}

/** How often each token occurs in `recent`. */
function counts(recent: readonly number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const id of recent) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}

/** All tokens, or only the k best when k > 0 (a bounded selection, not a full sort). Sorted. */
export function sortedCandidates(logits: ArrayLike<number>, k = 0): Candidates {
  const n = logits.length;
  let ids: number[];
  if (k > 0 && k < n) {
    // Keep the k best in a heap whose top is the worst of them (ties: the lower id wins, as a stable sort would).
    const worse = (a: number, b: number) => logits[a]! < logits[b]! || (logits[a] === logits[b] && a > b);
    const heap = new Heap<number>(worse);
    // (floor: the worst kept logit; a logit at or below it is not better, an equal one having a higher id)
    let floor = -Infinity;
    for (let id = 0; id < n; id++) {
      if (heap.size < k) {
        heap.push(id);
        if (heap.size === k) floor = logits[heap.peek()!]!;
      } else if (!(logits[id]! <= floor) && worse(heap.peek()!, id)) {
        heap.replaceTop(id);
        floor = logits[heap.peek()!]!;
      }
    }
    ids = heap.toArray();
  } else {
    ids = Array.from({ length: n }, (_, i) => i);
  }
  ids.sort((a, b) => logits[b]! - logits[a]! || a - b);
  return { ids, logits: ids.map((i) => logits[i]!) };
}

/** Softmax probabilities of sorted candidates (at temperature 1). */
export function candidateProbs(c: Candidates): number[] {
  const max = c.logits[0] ?? 0;
  const e = c.logits.map((l) => Math.exp(l - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

function keep(c: Candidates, n: number): Candidates {
  return { ids: c.ids.slice(0, n), logits: c.logits.slice(0, n) };
}

/** The k most likely candidates (all of them when k <= 0 or k >= their count). */
export function topK(c: Candidates, k: number): Candidates {
  return k > 0 && k < c.ids.length ? keep(c, k) : c;
}

/** The smallest prefix whose probability mass reaches p (at least one candidate). */
export function topP(c: Candidates, p: number): Candidates {
  if (p >= 1) return c;
  const probs = candidateProbs(c);
  let cum = 0;
  for (let i = 0; i < probs.length; i++) {
    cum += probs[i]!;
    if (cum >= p) return keep(c, i + 1);
  }
  return c;
}

/** Candidates whose probability is at least p times the best one's (at least one candidate). */
export function minP(c: Candidates, p: number): Candidates {
  if (p <= 0) return c;
  const probs = candidateProbs(c);
  const threshold = p * probs[0]!;
  let n = 1;
  while (n < probs.length && probs[n]! >= threshold) n++;
  return keep(c, n);
}

/** Draw one id from the candidates' softmax at `temperature` (> 0). */
export function drawCandidate(c: Candidates, temperature: number, rng: Rng): number {
  const scaled = { ids: c.ids, logits: c.logits.map((l) => l / temperature) };
  const probs = candidateProbs(scaled);
  let r = rng.next();
  for (let i = 0; i < probs.length; i++) {
    r -= probs[i]!;
    if (r < 0) return c.ids[i]!;
  }
  return c.ids[c.ids.length - 1]!;
}

export function validateSampling(o: SamplingOptions): void {
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new InvalidInputError(what);
  };
  if (o.temperature !== undefined) check(Number.isFinite(o.temperature) && o.temperature >= 0, `temperature must be a number >= 0, got ${o.temperature}`);
  if (o.topK !== undefined) check(Number.isInteger(o.topK) && o.topK >= 0, `top-k must be an integer >= 0, got ${o.topK}`);
  if (o.topP !== undefined) check(o.topP > 0 && o.topP <= 1, `top-p must be in (0, 1], got ${o.topP}`);
  if (o.minP !== undefined) check(o.minP >= 0 && o.minP <= 1, `min-p must be in [0, 1], got ${o.minP}`);
  if (o.repeatPenalty !== undefined) check(Number.isFinite(o.repeatPenalty) && o.repeatPenalty > 0, `repeat penalty must be > 0, got ${o.repeatPenalty}`);
  if (o.presencePenalty !== undefined) check(o.presencePenalty >= -2 && o.presencePenalty <= 2, `presence penalty must be in [-2, 2], got ${o.presencePenalty}`);
  if (o.frequencyPenalty !== undefined) check(o.frequencyPenalty >= -2 && o.frequencyPenalty <= 2, `frequency penalty must be in [-2, 2], got ${o.frequencyPenalty}`);
  if (o.repeatLastN !== undefined) check(Number.isInteger(o.repeatLastN) && o.repeatLastN >= 0, `repeat-last-n must be an integer >= 0, got ${o.repeatLastN}`);
  if (o.seed !== undefined) check(Number.isInteger(o.seed), `seed must be an integer, got ${o.seed}`);
}

/** A configured sampler: call `sample(logits, history)` once per generated token. */
export class Sampler {
  private readonly o: Required<Omit<SamplingOptions, 'seed'>>;
  private readonly rng: Rng;
  constructor(options: SamplingOptions = {}) {
    validateSampling(options);
    this.o = { ...SAMPLING_DEFAULTS, ...stripUndefined(options) };
    this.rng = new Rng(options.seed ?? (Math.random() * 2 ** 32) >>> 0);
  }
  /** Picks the next token. May modify `logits` (the penalties). */
  sample(logits: Float32Array, history: readonly number[]): number {
    const o = this.o;
    this.penalize(logits, history);
    if (o.temperature === 0) return argmax(logits);
    return this.draw(sortedCandidates(logits, o.topK));
  }

  /**
   * Picks the next token among those `allowed` says yes to (constrained decoding): greedy takes the
   * best allowed token; sampling takes the top-k allowed ones (all allowed ones when top-k is off),
   * then the rest of the chain. Tokens are tried best first, so usually only a few are. May modify
   * `logits`. Returns -1 when no token is allowed.
   */
  sampleAllowed(logits: Float32Array, history: readonly number[], allowed: (id: number) => boolean): number {
    const o = this.o;
    this.penalize(logits, history);
    const want = o.temperature === 0 ? 1 : o.topK > 0 ? o.topK : Infinity;
    let picked: Candidates = { ids: [], logits: [] };
    // The best few hundred first; the whole vocabulary only when too few of them are allowed.
    for (const pool of [256, 0]) {
      const c = sortedCandidates(logits, pool);
      picked = { ids: [], logits: [] };
      for (let i = 0; i < c.ids.length && picked.ids.length < want; i++)
        if (allowed(c.ids[i]!)) { picked.ids.push(c.ids[i]!); picked.logits.push(c.logits[i]!); }
      if (picked.ids.length >= want || pool === 0 || c.ids.length === logits.length) break;
    }
    if (picked.ids.length === 0) return -1;
    return o.temperature === 0 ? picked.ids[0]! : this.draw(picked);
  }

  /** The penalties over the last repeatLastN tokens, in place. */
  private penalize(logits: Float32Array, history: readonly number[]): void {
    const o = this.o;
    if (o.repeatLastN === 0 || (o.repeatPenalty === 1 && o.presencePenalty === 0 && o.frequencyPenalty === 0)) return;
    for (const [id, n] of counts(history.slice(-o.repeatLastN))) logits[id] = penalized(logits[id]!, n, o);
  }

  /**
   * When sampling needs only the best few logits, how many: top-k plus one per distinct penalized
   * token. A penalty >= 1 only lowers logits, so the true top k after it lie among the top
   * (k + penalized) before it. Undefined when the whole distribution is needed (no top-k, greedy
   * with a penalty, or a penalty < 1, which raises logits).
   */
  candidatesNeeded(history: readonly number[]): number | undefined {
    const o = this.o;
    if (o.temperature === 0 || o.topK <= 0 || o.repeatPenalty < 1 || o.presencePenalty < 0 || o.frequencyPenalty < 0) return undefined;
    const active = o.repeatLastN > 0 && (o.repeatPenalty !== 1 || o.presencePenalty !== 0 || o.frequencyPenalty !== 0);
    return o.topK + (active ? new Set(history.slice(-o.repeatLastN)).size : 0);
  }

  /** Like `sample`, from the `candidatesNeeded(history)` best logits (sorted): the same token, the same random draws. */
  sampleCandidates(best: Candidates, history: readonly number[]): number {
    const o = this.o;
    let c = best;
    if (o.repeatLastN > 0 && (o.repeatPenalty !== 1 || o.presencePenalty !== 0 || o.frequencyPenalty !== 0)) {
      const seen = counts(history.slice(-o.repeatLastN));
      // Math.fround: the full-logits path applies the penalties in a Float32Array.
      const logits = c.logits.map((l, i) => (seen.has(c.ids[i]!) ? Math.fround(penalized(l, seen.get(c.ids[i]!)!, o)) : l));
      const order = c.ids.map((_, i) => i).sort((a, b) => logits[b]! - logits[a]! || c.ids[a]! - c.ids[b]!);
      c = { ids: order.map((i) => c.ids[i]!), logits: order.map((i) => logits[i]!) };
    }
    return this.draw(topK(c, o.topK));
  }

  /** The chain after top-k: top-p, min-p, then a draw at the temperature. */
  private draw(c: Candidates): number {
    return drawCandidate(minP(topP(c, this.o.topP), this.o.minP), this.o.temperature, this.rng);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
