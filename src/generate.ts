// The generation loop: prompt -> tokens -> prefill -> (sample -> forward)* -> streamed text.
// Text comes out as soon as it is complete UTF-8 and cannot be the start of a stop string.
// `Sequence` is one sequence's side of it (sampling, stops, constraints, log-probabilities), so that
// `Generation` can run one alone and a server many in one batch (src/server/scheduler.ts).

import { DeviceLostError, InvalidInputError } from './base/errors.js';
import type { State, Transformer } from './arch/transformer.js';
import type { Handle } from './backend/backend.js';
import { compileSchema, jsonDone, jsonFeed, jsonObjectConstraint, jsonStart, type JsonSchema, type JsonState } from './constrain/json.js';
import { Sampler, sortedCandidates, type Candidates, type SamplingOptions } from './stages/sampling.js';
import type { Tokenizer } from './tokenizer/tokenizer.js';

export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate. Default 256. */
  maxTokens?: number;
  /** Stop (and drop the stop string) when the output contains one of these. */
  stop?: string[];
  /** Keep going past the end-of-sequence token (and stopTokenIds). Default false. */
  ignoreEos?: boolean;
  /** More token ids that end the generation like EOS does (chat uses the end-of-turn tokens). */
  stopTokenIds?: readonly number[];
  /** Context size of this generation (KV cache length). Default: the model's, at most 4096. */
  contextLength?: number;
  /** Where notices go (e.g. "WebGPU device lost; continuing on the CPU"). Default: console.warn. */
  onNotice?: (message: string) => void;
  /**
   * Constrain the output to JSON: 'object' for any JSON object, or `{ schema }` for a document valid
   * for that JSON Schema (src/constrain/json.ts lists the keywords enforced). Generation stops when
   * the document is complete.
   */
  json?: 'object' | { schema: JsonSchema };
  /** Record each generated token's log-probability and its `logprobs` best alternatives (0: none) in Generation.logprobs. */
  logprobs?: number;
  /**
   * Stop when this signal aborts (a page's stop button): the text so far stands and stats.stopReason
   * is 'aborted'. Checked before the prompt and between tokens (a stream lets the page run there).
   */
  signal?: AbortSignal;
}

/** A generated token's log-probability under the model (its softmax at temperature 1), with the best alternatives. */
export interface TokenLogprob {
  id: number;
  logprob: number;
  top: { id: number; logprob: number }[];
}

/** A way to carry on when the GPU goes away: a CPU model of the same weights. */
export type Fallback = () => Promise<Transformer<Handle>>;

export type StopReason = 'eos' | 'max-tokens' | 'stop-string' | 'context-full' | 'json-complete' | 'aborted';

export interface GenerationStats {
  promptTokens: number;
  promptMs: number;
  generatedTokens: number;
  generateMs: number;
  stopReason: StopReason | undefined;
}

/** Holds back the tail of the text that could still turn into a stop string. */
export class StopMatcher {
  private pending = '';
  constructor(private readonly stops: readonly string[]) {
    if (stops.some((s) => s.length === 0)) throw new InvalidInputError('a stop string must not be empty');
  }
  /** Add text; returns what can be emitted and whether a stop string was hit. */
  push(text: string): { emit: string; stopped: boolean } {
    this.pending += text;
    let cut = -1;
    for (const s of this.stops) {
      const i = this.pending.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      const emit = this.pending.slice(0, cut);
      this.pending = '';
      return { emit, stopped: true };
    }
    // Longest suffix of pending that is a proper prefix of some stop string must wait.
    let hold = 0;
    for (const s of this.stops)
      for (let k = Math.min(s.length - 1, this.pending.length); k > hold; k--)
        if (this.pending.endsWith(s.slice(0, k))) { hold = k; break; }
    const emit = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return { emit, stopped: false };
  }
  flush(): string {
    const p = this.pending;
    this.pending = '';
    return p;
  }
}

/** What a sequence needs from the logits of its next position: their argmax, the best k, or all of them. */
export type Need = { kind: 'argmax' } | { kind: 'topk'; k: number } | { kind: 'logits' };

/**
 * One sequence being generated, apart from the forward passes: its prompt, sampler, stop strings,
 * end tokens, JSON constraint and log-probabilities. The caller runs `need()`'s forward pass, gives
 * the result to `choose()`, and the chosen token to `accept()`, until `done`.
 */
export class Sequence {
  readonly promptTokens: number[];
  /** Prompt and generated tokens. */
  readonly history: number[];
  /** Generated tokens. */
  readonly tokens: number[] = [];
  readonly logprobs: TokenLogprob[] = [];
  readonly stats: GenerationStats = { promptTokens: 0, promptMs: 0, generatedTokens: 0, generateMs: 0, stopReason: undefined };
  /** Context size (KV cache length) this sequence runs in. */
  readonly contextLength: number;
  done = false;
  private readonly maxTokens: number;
  private readonly sampler: Sampler;
  private readonly stop: StopMatcher;
  private readonly decoder;
  private readonly endIds: Set<number>;
  private json?: JsonState;

  constructor(private readonly tokenizer: Tokenizer, modelContext: number, prompt: string | readonly number[], private readonly o: GenerateOptions) {
    this.maxTokens = o.maxTokens ?? 256;
    if (!(Number.isInteger(this.maxTokens) && this.maxTokens >= 0)) throw new InvalidInputError(`max tokens must be an integer >= 0, got ${this.maxTokens}`);
    if (o.logprobs !== undefined && !(Number.isInteger(o.logprobs) && o.logprobs >= 0 && o.logprobs <= 20)) throw new InvalidInputError(`logprobs must be an integer from 0 to 20, got ${o.logprobs}`);
    this.sampler = new Sampler(o);
    this.stop = new StopMatcher(o.stop ?? []);
    this.promptTokens = typeof prompt === 'string'
      ? prompt === '' ? [tokenizer.bosId] : tokenizer.encode(prompt, { addSpecial: false, addBos: tokenizer.vocab.addBos })
      : [...prompt];
    if (this.promptTokens.length === 0) throw new InvalidInputError('the prompt has no tokens; give text, or at least the BOS token');
    const ctx = o.contextLength ?? Math.min(modelContext, 4096);
    if (!(Number.isInteger(ctx) && ctx > 0)) throw new InvalidInputError(`context length must be a positive integer, got ${ctx}`);
    if (this.promptTokens.length > ctx)
      throw new InvalidInputError(`the prompt is ${this.promptTokens.length} tokens, longer than the context of ${ctx} tokens: shorten it${ctx < modelContext ? ` or raise the context length (the model allows ${modelContext})` : ''}`);
    this.contextLength = ctx;
    this.history = [...this.promptTokens];
    this.stats.promptTokens = this.promptTokens.length;
    this.decoder = tokenizer.streamDecoder({ atStart: this.promptTokens.length === 1 && this.promptTokens[0] === tokenizer.bosId });
    this.endIds = new Set([tokenizer.eosId, ...(o.stopTokenIds ?? [])]);
    if (o.json) this.json = jsonStart(o.json === 'object' ? jsonObjectConstraint() : compileSchema(o.json.schema));
    if (this.maxTokens === 0) this.end('max-tokens');
  }

  /** What the next choice needs. Greedy needs only the argmax and top-k sampling the best few, which the backend finds where the logits are. */
  need(): Need {
    const o = this.o;
    if (this.json || o.logprobs !== undefined) return { kind: 'logits' };
    if (o.temperature === 0 && (o.repeatPenalty ?? 1) === 1 && !o.presencePenalty && !o.frequencyPenalty) return { kind: 'argmax' };
    const k = this.sampler.candidatesNeeded(this.history);
    return k !== undefined ? { kind: 'topk', k } : { kind: 'logits' };
  }

  /** The next token, from what `need()` asked for (may modify the logits). */
  choose(r: number | Candidates | Float32Array): number {
    if (typeof r === 'number') return r;
    if (!(r instanceof Float32Array)) return this.sampler.sampleCandidates(r, this.history);
    // Log-probabilities are the model's own: taken before the penalties change the logits.
    const lp = this.o.logprobs !== undefined ? logprobsOf(r, this.o.logprobs) : undefined;
    let id: number;
    if (!this.json) id = this.sampler.sample(r, this.history);
    else {
      const state = this.json;
      const done = jsonDone(state);
      id = this.sampler.sampleAllowed(r, this.history, (t) => (this.endIds.has(t) ? done : this.fits(state, t)));
      if (id < 0) throw new InvalidInputError('no token of this vocabulary can continue the JSON document (the schema asks for text the tokenizer cannot write)');
    }
    if (lp) this.logprobs.push({ id, logprob: lp.of(id), top: lp.top });
    return id;
  }

  /** Can token t continue the JSON document from `state`? (Control tokens write nothing, so never.) */
  private fits(state: JsonState, t: number): boolean {
    const bytes = this.tokenizer.tokenBytes(t);
    return bytes.length > 0 && jsonFeed(state, bytes) !== null;
  }

  /**
   * Take the chosen token; returns the text that may be shown now. `cached`: how many tokens are in the
   * sequence's KV cache (the token will need a forward pass unless the sequence is done).
   */
  accept(id: number, cached: number): string {
    if (this.done) return '';
    if (this.endIds.has(id) && !this.o.ignoreEos) {
      if (this.logprobs.at(-1)?.id === id) this.logprobs.pop(); // an end token is not part of the text
      return this.end('eos');
    }
    this.tokens.push(id);
    this.history.push(id);
    this.stats.generatedTokens = this.tokens.length;
    const { emit, stopped } = this.stop.push(this.decoder.push(id));
    if (this.json) this.json = jsonFeed(this.json, this.tokenizer.tokenBytes(id)) ?? this.json;
    if (stopped) return emit + this.end('stop-string');
    if (this.json && jsonDone(this.json)) return emit + this.end('json-complete');
    if (this.tokens.length >= this.maxTokens) return emit + this.end('max-tokens');
    if (cached >= this.contextLength) return emit + this.end('context-full');
    return emit;
  }

  /** Finish with `why`: returns the text held back (an incomplete UTF-8 sequence, a possible stop string). */
  end(why: StopReason): string {
    if (this.done) return '';
    this.done = true;
    this.stats.stopReason = why;
    if (why === 'stop-string') return '';
    const { emit, stopped } = this.stop.push(this.decoder.flush());
    if (stopped) this.stats.stopReason = 'stop-string';
    return emit + (stopped ? '' : this.stop.flush());
  }
}

/** Log-softmax at temperature 1 of `logits`: any token's (`of`, from a copy) and the best n. */
function logprobsOf(logits: Float32Array, n: number): { of: (id: number) => number; top: TokenLogprob['top'] } {
  let max = -Infinity;
  for (const l of logits) if (l > max) max = l;
  let sum = 0;
  for (const l of logits) sum += Math.exp(l - max);
  const lse = max + Math.log(sum);
  const raw = logits.slice();
  const top = n > 0 ? sortedCandidates(raw, n).ids.map((id) => ({ id, logprob: raw[id]! - lse })) : [];
  return { of: (id) => raw[id]! - lse, top };
}

/** One generation: iterate it for text pieces; `tokens` and `stats` fill in as it runs. */
export class Generation implements AsyncIterable<string> {
  private started = false;
  private seq?: Sequence;

  constructor(
    private model: Transformer<Handle>,
    private readonly tokenizer: Tokenizer,
    private readonly prompt: string | readonly number[],
    private readonly options: GenerateOptions,
    private readonly fallback?: Fallback,
  ) {}

  /** Generated token ids so far. */
  get tokens(): readonly number[] {
    return this.seq?.tokens ?? [];
  }
  get stats(): GenerationStats {
    return this.seq?.stats ?? { promptTokens: 0, promptMs: 0, generatedTokens: 0, generateMs: 0, stopReason: undefined };
  }
  /** With options.logprobs: each generated token's log-probability and best alternatives. */
  get logprobs(): readonly TokenLogprob[] {
    return this.seq?.logprobs ?? [];
  }

  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    if (this.started) throw new InvalidInputError('a Generation can be iterated only once; call generate() again');
    this.started = true;
    yield* this.run();
  }

  /** All the text, for callers that do not stream. */
  async text(): Promise<string> {
    let s = '';
    for await (const piece of this) s += piece;
    return s;
  }

  private async *run(): AsyncGenerator<string> {
    const o = this.options;
    let model = this.model;
    const seq = (this.seq = new Sequence(this.tokenizer, model.config.contextLength, this.prompt, o));
    let state = model.newState(seq.contextLength);
    const step = (tokens: readonly number[]) => evaluate(model, state, tokens, seq);
    // If the GPU goes away, keep the text so far: rebuild the KV cache on the CPU from the whole
    // history (which already holds `tokens`) and carry on there.
    const nextToken = async (tokens: readonly number[]) => {
      try {
        return await step(tokens);
      } catch (e) {
        if (!(e instanceof DeviceLostError) || !this.fallback) throw e;
        (o.onNotice ?? console.warn)(`${e.message}; continuing on the CPU (${seq.history.length} tokens so far are kept)`);
        model = this.model = await this.fallback();
        state.dispose();
        state = model.newState(seq.contextLength);
        return step(seq.history);
      }
    };

    // (the KV cache goes back to the backend when the text ends, fails, or the caller stops reading)
    try {
      const aborted = () => o.signal?.aborted === true;
      if (!seq.done && aborted()) seq.end('aborted');
      let t0 = performance.now();
      let next = seq.done ? -1 : await nextToken(seq.promptTokens);
      seq.stats.promptMs = performance.now() - t0;
      t0 = performance.now();
      while (!seq.done) {
        const text = seq.accept(next, state.position);
        if (text) yield text;
        if (seq.done) break;
        await nextTask();
        if (aborted()) {
          const rest = seq.end('aborted');
          if (rest) yield rest;
          break;
        }
        next = await nextToken([next]);
        seq.stats.generateMs = performance.now() - t0;
      }
      seq.stats.generateMs = performance.now() - t0;
    } finally {
      state.dispose();
    }
  }
}

/**
 * Resolves once the event loop has run other tasks: timers, I/O, a page's input and painting. The CPU
 * computes a token without awaiting anything, so a stream read with `for await` would otherwise hold
 * the thread from its first token to its last (nothing painted, no click, timer or request handled,
 * data written to a socket sent only at the end). setImmediate in Node; elsewhere a message to itself,
 * an ordinary task, so that the page's timers get their turn too (a nested setTimeout would be clamped
 * to 4 ms; scheduler.yield's continuation goes ahead of other tasks, and a timer never ran in Chromium).
 */
const nextTask: () => Promise<void> = (() => {
  const g = globalThis as { setImmediate?: (f: () => void) => void };
  if (typeof g.setImmediate === 'function') return () => new Promise<void>((r) => g.setImmediate!(r));
  if (typeof MessageChannel === 'function') {
    const channel = new MessageChannel();
    const waiting: (() => void)[] = [];
    channel.port1.onmessage = () => waiting.shift()?.();
    return () => new Promise<void>((r) => { waiting.push(r); channel.port2.postMessage(0); });
  }
  return () => new Promise<void>((r) => setTimeout(r, 0));
})();

/** Run `tokens` through `model` at `state` and choose the next token as `seq` needs. */
export async function evaluate(model: Transformer<Handle>, state: State<Handle>, tokens: readonly number[], seq: Sequence): Promise<number> {
  const need = seq.need();
  if (need.kind === 'argmax') return model.forwardArgmax(state, tokens);
  if (need.kind === 'topk' && need.k < model.config.vocabSize) return seq.choose(await model.forwardTopK(state, tokens, need.k));
  return seq.choose(await model.forward(state, tokens));
}
