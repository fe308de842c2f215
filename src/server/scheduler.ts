// Continuous batching: many generations on one model at once. Each of `parallel` slots holds a KV
// cache; a request takes a free slot (the one whose cached tokens share the longest prefix with its
// prompt, whose KV entries are reused instead of recomputed), or waits in a bounded queue. Each step
// prefills at most one newly admitted prompt, then decodes every other active sequence in one forward
// pass (Transformer.forwardMany: one row per sequence, every weight read once for all of them). New
// requests join at the next step; finished or cancelled ones leave it.

import { DeviceLostError, InvalidInputError, NonFiniteError, PocketLMError } from '../base/errors.js';
import type { Candidates } from '../stages/sampling.js';
import { MAX_BATCH, Workspace, type State, type Transformer } from '../arch/transformer.js';
import type { Handle } from '../backend/backend.js';
import type { Model } from '../engine.js';
import { evaluate, Sequence, type GenerateOptions } from '../generate.js';

/** The queue is full: try again later (a server answers 503 with Retry-After). */
export class QueueFullError extends PocketLMError {}

export interface SchedulerOptions {
  /** Sequences decoded together (each slot has its own KV cache of contextLength tokens). Default 4. */
  parallel?: number;
  /** Requests that may wait for a slot; beyond that, submit() throws QueueFullError. Default 64. */
  queue?: number;
  /** Each slot's context length. Default: the model's, at most 4096. */
  contextLength?: number;
  onNotice?: (message: string) => void;
}

/** A request in the scheduler: iterate it for its text pieces; `seq` holds its tokens, stats and stop reason. */
export class Job implements AsyncIterable<string> {
  readonly submittedAt = performance.now();
  /** When its first generated text came out (time to first token = this - submittedAt). */
  firstTextAt?: number;
  cancelled = false;
  private readonly pieces: string[] = [];
  private ended = false;
  private error?: unknown;
  private wake?: () => void;
  /** Run once when the job ends (the abort listener on its signal goes). */
  private readonly onEnd: (() => void)[] = [];

  constructor(readonly seq: Sequence) {}

  /** Stop generating; the slot is freed at the next step. */
  cancel(): void {
    this.cancelled = true;
    this.finish();
  }

  /** @internal */ push(text: string): void {
    if (!text) return;
    this.firstTextAt ??= performance.now();
    this.pieces.push(text);
    this.wake?.();
  }
  /** @internal */ finish(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    for (const f of this.onEnd.splice(0)) f();
    this.wake?.();
  }

  /** @internal */ whenEnded(f: () => void): void {
    if (this.ended) f();
    else this.onEnd.push(f);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    for (;;) {
      if (this.pieces.length) yield this.pieces.shift()!;
      else if (this.ended) {
        if (this.error !== undefined && !this.cancelled) throw this.error;
        return;
      } else await new Promise<void>((r) => (this.wake = r));
    }
  }

  /** All of its text. */
  async text(): Promise<string> {
    let s = '';
    for await (const p of this) s += p;
    return s;
  }
}

interface Slot {
  state: State<Handle>;
  /** The tokens whose keys and values the cache holds, in order (a prefix of the last sequence it ran). */
  cached: number[];
  job?: Job;
  lastUsed: number;
}

export interface SchedulerStats {
  active: number;
  queued: number;
  requests: number;
  promptTokens: number;
  /** Prompt tokens whose KV entries came from a slot's cache instead of a forward pass. */
  reusedTokens: number;
  generatedTokens: number;
  errors: number;
  steps: number;
}

export class Scheduler {
  readonly parallel: number;
  readonly contextLength: number;
  private readonly queueLimit: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private ws?: Workspace<Handle>;
  private running = false;
  private closed = false;
  private clock = 0;
  readonly stats: SchedulerStats = { active: 0, queued: 0, requests: 0, promptTokens: 0, reusedTokens: 0, generatedTokens: 0, errors: 0, steps: 0 };

  constructor(readonly model: Model, private readonly o: SchedulerOptions = {}) {
    this.parallel = o.parallel ?? 4;
    if (!(Number.isInteger(this.parallel) && this.parallel >= 1 && this.parallel <= MAX_BATCH)) throw new InvalidInputError(`parallel must be an integer from 1 to ${MAX_BATCH}, got ${this.parallel}`);
    this.queueLimit = o.queue ?? 64;
    if (!(Number.isInteger(this.queueLimit) && this.queueLimit >= 0)) throw new InvalidInputError(`queue must be an integer >= 0, got ${this.queueLimit}`);
    this.contextLength = o.contextLength ?? Math.min(model.config.contextLength, 4096);
  }

  /**
   * Start a generation. Throws InvalidInputError for a bad request (before queueing it) and
   * QueueFullError when every slot is busy and the queue is full.
   */
  submit(prompt: string | readonly number[], options: GenerateOptions = {}): Job {
    if (this.closed) throw new InvalidInputError('the scheduler is closed');
    if (this.model.isEncoder) throw new InvalidInputError(`${this.model.config.name} is an encoder (${this.model.config.architecture}): it serves /v1/embeddings, but cannot generate text`);
    const seq = new Sequence(this.model.tokenizer, this.model.config.contextLength, prompt, { ...options, contextLength: this.contextLength });
    // Waiting requests beyond those the free slots take at the next step count against the queue.
    const free = this.parallel - this.slots.filter((s) => s.job).length;
    if (this.queue.length >= this.queueLimit + free)
      throw new QueueFullError(`all ${this.parallel} slots are busy and ${this.queue.length - free} requests are waiting: try again shortly`);
    const job = new Job(seq);
    this.stats.requests++;
    this.stats.promptTokens += seq.promptTokens.length;
    if (seq.done) job.finish(); // maxTokens 0
    else {
      this.queue.push(job);
      void this.run();
    }
    // options.signal: an abort cancels the job (its slot freed at the next step), the text so far standing
    const signal = options.signal;
    if (signal) {
      const abort = () => {
        if (!seq.done) job.push(seq.end('aborted'));
        job.cancel();
      };
      if (signal.aborted) abort();
      else {
        signal.addEventListener('abort', abort, { once: true });
        job.whenEnded(() => signal.removeEventListener('abort', abort));
      }
    }
    return job;
  }

  /** Stop taking requests; those in flight finish. Resolves when the last one has. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running) await new Promise((r) => setTimeout(r, 5));
  }

  /** Cancel everything and free the caches. */
  dispose(): void {
    this.closed = true;
    for (const j of [...this.queue, ...this.slots.map((s) => s.job)]) j?.cancel();
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.admit() || this.slots.some((s) => s.job)) {
        try {
          await this.step();
        } catch (e) {
          if (e instanceof DeviceLostError) await this.recover(e);
          else this.failAll(e);
        }
        // Let the server read requests and write streams between steps.
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.running = false;
      this.stats.active = 0;
    }
  }

  /** Give free slots to waiting requests; true when any request is active. */
  private admit(): boolean {
    for (let i = 0; i < this.queue.length; ) {
      const job = this.queue[i]!;
      if (job.cancelled) { this.queue.splice(i, 1); continue; }
      let slot: Slot | undefined;
      try {
        slot = this.freeSlot(job.seq.promptTokens);
      } catch (e) {
        // A new slot's KV cache could not be made (out of memory...): this request fails, the others go on.
        this.queue.splice(i, 1);
        this.stats.errors++;
        job.finish(e);
        continue;
      }
      if (!slot) break;
      this.queue.splice(i, 1);
      // Reuse the cached prefix, keeping at least one prompt token to run (its logits start the reply).
      const reuse = Math.min(commonPrefix(slot.cached, job.seq.promptTokens), job.seq.promptTokens.length - 1);
      slot.state.position = reuse;
      slot.cached.length = reuse;
      slot.job = job;
      this.stats.reusedTokens += reuse;
    }
    this.stats.queued = this.queue.length;
    this.stats.active = this.slots.filter((s) => s.job).length;
    return this.stats.active > 0;
  }

  /** The free slot sharing the longest prefix with `prompt` (least recently used among equals), made if need be. */
  private freeSlot(prompt: readonly number[]): Slot | undefined {
    let best: Slot | undefined;
    let bestLength = -1;
    for (const s of this.slots) {
      if (s.job) continue;
      const l = commonPrefix(s.cached, prompt);
      if (l > bestLength || (l === bestLength && s.lastUsed < best!.lastUsed)) [best, bestLength] = [s, l];
    }
    if ((!best || bestLength === 0) && this.slots.length < this.parallel) {
      const s: Slot = { state: this.model.transformer.newState(this.contextLength), cached: [], lastUsed: 0 };
      this.slots.push(s);
      return s;
    }
    return best;
  }

  /** One step: a waiting prompt's prefill, or one token for every decoding sequence. */
  private async step(): Promise<void> {
    this.stats.steps++;
    const t = this.model.transformer;
    for (const s of this.slots) if (s.job?.cancelled) this.release(s);
    const active = this.slots.filter((s) => s.job);
    // The tokens each sequence has not run yet: its prompt (or what the cache lacks), or its last token.
    const prefill = active.find((s) => s.job!.seq.history.length - s.state.position > 1);
    if (prefill) {
      const job = prefill.job!;
      const tokens = job.seq.history.slice(prefill.state.position);
      const t0 = performance.now();
      await this.guard(prefill, async () => {
        const next = await evaluate(t, prefill.state, tokens, job.seq);
        job.seq.stats.promptMs += performance.now() - t0;
        this.take(prefill, next);
      });
      return;
    }
    if (active.length === 0) return;
    this.ws ??= new Workspace(t.backend);
    const V = t.config.vocabSize;
    const logits = t.forwardMany(this.ws, active.map((s) => ({ state: s.state, tokens: [s.job!.seq.history.at(-1)!] })));
    const needs = active.map((s) => s.job!.seq.need());
    const all = needs.some((n) => n.kind === 'logits') ? await t.backend.read(logits, active.length * V) : undefined;
    for (const [i, s] of active.entries()) {
      const n = needs[i]!;
      const seq = s.job!.seq;
      await this.guard(s, async () => {
        if (all) for (let j = i * V; j < (i + 1) * V; j++) if (!Number.isFinite(all[j]!)) throw nonFinite(s);
        const next =
          n.kind === 'argmax' ? await t.backend.argmax(logits, i * V, V)
          : n.kind === 'topk' && n.k < V ? seq.choose(await nonEmpty(t.backend.topk(logits, i * V, V, n.k), s))
          : seq.choose(all ? all.subarray(i * V, (i + 1) * V) : (await t.backend.read(logits, (i + 1) * V)).subarray(i * V));
        if (next < 0) throw nonFinite(s);
        this.take(s, next);
      });
    }
  }

  /** Run one sequence's part of a step; its own failure (a bad constraint, overflowing activations) ends it alone. */
  private async guard(slot: Slot, f: () => Promise<void>): Promise<void> {
    try {
      await f();
    } catch (e) {
      if (e instanceof DeviceLostError || !(e instanceof PocketLMError)) throw e;
      this.stats.errors++;
      slot.job!.finish(e);
      slot.job = undefined;
      slot.cached = [];
    }
  }

  /** Give the chosen token to its sequence; stream its text; free the slot when it is done. */
  private take(slot: Slot, next: number): void {
    const job = slot.job!;
    const before = job.seq.tokens.length;
    job.push(job.seq.accept(next, slot.state.position));
    this.stats.generatedTokens += job.seq.tokens.length - before;
    if (job.seq.done) {
      job.finish();
      this.release(slot);
    }
  }

  private release(slot: Slot): void {
    const job = slot.job;
    if (job) slot.cached = job.seq.history.slice(0, slot.state.position);
    slot.job = undefined;
    slot.lastUsed = ++this.clock;
  }

  private failAll(e: unknown): void {
    this.stats.errors++;
    for (const s of this.slots) {
      s.job?.finish(e);
      s.job = undefined;
      s.cached = [];
    }
  }

  /** The GPU went away: carry on on the CPU, every sequence's cache rebuilt from its tokens at its next step. */
  private async recover(e: DeviceLostError): Promise<void> {
    let t: Transformer<Handle>;
    try {
      t = await this.model.recover();
    } catch {
      return this.failAll(e);
    }
    (this.o.onNotice ?? console.warn)(`${e.message}; continuing on the CPU`);
    this.ws = undefined;
    for (const s of this.slots) {
      s.state.dispose();
      s.state = t.newState(this.contextLength);
      s.cached = [];
    }
  }
}

function nonFinite(s: Slot): NonFiniteError {
  return new NonFiniteError(`the logits at position ${s.state.position - 1} are NaN or infinite: the model's activations overflowed f32; its output cannot be trusted from here on`);
}

async function nonEmpty(c: Promise<Candidates>, s: Slot): Promise<Candidates> {
  const r = await c;
  if (r.ids.length === 0) throw nonFinite(s);
  return r;
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}
