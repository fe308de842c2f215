// The generation loop: prompt -> tokens -> prefill -> (sample -> forward)* -> streamed text.
// Text comes out as soon as it is complete UTF-8 and cannot be the start of a stop string.

import { DeviceLostError, InvalidInputError } from './base/errors.js';
import type { Transformer } from './arch/transformer.js';
import type { Handle } from './backend/backend.js';
import { Sampler, type SamplingOptions } from './stages/sampling.js';
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
}

/** A way to carry on when the GPU goes away: a CPU model of the same weights. */
export type Fallback = () => Promise<Transformer<Handle>>;

export type StopReason = 'eos' | 'max-tokens' | 'stop-string' | 'context-full';

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

/** One generation: iterate it for text pieces; `tokens` and `stats` fill in as it runs. */
export class Generation implements AsyncIterable<string> {
  readonly tokens: number[] = [];
  readonly stats: GenerationStats = { promptTokens: 0, promptMs: 0, generatedTokens: 0, generateMs: 0, stopReason: undefined };
  private started = false;

  constructor(
    private model: Transformer<Handle>,
    private readonly tokenizer: Tokenizer,
    private readonly prompt: string | readonly number[],
    private readonly options: GenerateOptions,
    private readonly fallback?: Fallback,
  ) {}

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
    const { tokenizer, options: o } = this;
    let model = this.model;
    const maxTokens = o.maxTokens ?? 256;
    if (!(Number.isInteger(maxTokens) && maxTokens >= 0)) throw new InvalidInputError(`max tokens must be an integer >= 0, got ${maxTokens}`);
    const sampler = new Sampler(o);
    const stop = new StopMatcher(o.stop ?? []);
    const promptTokens = typeof this.prompt === 'string'
      ? this.prompt === '' ? [tokenizer.bosId] : tokenizer.encode(this.prompt, { addSpecial: false, addBos: tokenizer.vocab.addBos })
      : [...this.prompt];
    if (promptTokens.length === 0) throw new InvalidInputError('the prompt has no tokens; give text, or at least the BOS token');
    const ctx = o.contextLength ?? Math.min(model.config.contextLength, 4096);
    if (!(Number.isInteger(ctx) && ctx > 0)) throw new InvalidInputError(`context length must be a positive integer, got ${ctx}`);
    if (promptTokens.length > ctx)
      throw new InvalidInputError(`the prompt is ${promptTokens.length} tokens, longer than the context of ${ctx} tokens: shorten it${ctx < model.config.contextLength ? ` or raise the context length (the model allows ${model.config.contextLength})` : ''}`);
    let state = model.newState(ctx);
    const decoder = tokenizer.streamDecoder({ atStart: promptTokens.length === 1 && promptTokens[0] === tokenizer.bosId });
    const history = [...promptTokens];
    const endIds = new Set([tokenizer.eosId, ...(o.stopTokenIds ?? [])]);

    // Greedy without a penalty needs only the argmax, which the backend computes where the logits are.
    const greedy = o.temperature === 0 && (o.repeatPenalty ?? 1) === 1;
    // Top-k sampling needs only the best few logits, which the backend selects where the logits are.
    const step = async (tokens: readonly number[]) => {
      if (greedy) return model.forwardArgmax(state, tokens);
      const k = sampler.candidatesNeeded(history);
      if (k !== undefined && k < model.config.vocabSize) return sampler.sampleCandidates(await model.forwardTopK(state, tokens, k), history);
      return sampler.sample(await model.forward(state, tokens), history);
    };
    // If the GPU goes away, keep the text so far: rebuild the KV cache on the CPU from the whole
    // history (which already holds `tokens`) and carry on there.
    const nextToken = async (tokens: readonly number[]) => {
      try {
        return await step(tokens);
      } catch (e) {
        if (!(e instanceof DeviceLostError) || !this.fallback) throw e;
        (o.onNotice ?? console.warn)(`${e.message}; continuing on the CPU (${history.length} tokens so far are kept)`);
        model = this.model = await this.fallback();
        state = model.newState(ctx);
        return step(history);
      }
    };

    let t0 = performance.now();
    let next = await nextToken(promptTokens);
    this.stats.promptTokens = promptTokens.length;
    this.stats.promptMs = performance.now() - t0;
    t0 = performance.now();
    for (;;) {
      if (this.tokens.length >= maxTokens) { this.stats.stopReason = 'max-tokens'; break; }
      if (endIds.has(next) && !o.ignoreEos) { this.stats.stopReason = 'eos'; break; }
      this.tokens.push(next);
      history.push(next);
      this.stats.generatedTokens = this.tokens.length;
      const { emit, stopped } = stop.push(decoder.push(next));
      if (emit) yield emit;
      if (stopped) { this.stats.stopReason = 'stop-string'; break; }
      if (state.position >= ctx) { this.stats.stopReason = 'context-full'; break; }
      if (this.tokens.length < maxTokens) next = await nextToken([next]);
      this.stats.generateMs = performance.now() - t0;
    }
    this.stats.generateMs = performance.now() - t0;
    if (this.stats.stopReason !== 'stop-string') {
      const { emit, stopped } = stop.push(decoder.flush());
      const rest = emit + (stopped ? '' : stop.flush());
      if (stopped) this.stats.stopReason = 'stop-string';
      if (rest) yield rest;
    }
  }
}
