// The Llama forward pass, one readable stage at a time, on any Backend (see docs/architecture.md).
//
//   x = embed(tokens)                                   [n][dim]
//   for each layer:
//     h = rmsnorm(x) ; q,k,v = Wq h, Wk h, Wv h ; rope(q, k) ; cache k, v
//     x += Wo attention(q, Kcache, Vcache)              (causal, grouped-query)
//     h = rmsnorm(x) ; x += Wdown (silu(Wgate h) * Wup h)
//   logits = Wout rmsnorm(x)                            [n][vocab]

import type { Backend, Handle } from './backend.js';
import type { ModelConfig } from './config.js';
import { InvalidInputError } from './errors.js';
import type { Candidates } from './sampling.js';
import type { WeightData } from './model-file.js';

export interface LayerWeights<T = Float32Array, V = T> {
  attnNorm: V; // [dim]
  wq: T; // [nHeads*headDim][dim]
  wk: T; // [nKvHeads*headDim][dim]
  wv: T; // [nKvHeads*headDim][dim]
  wo: T; // [dim][nHeads*headDim]
  ffnNorm: V; // [dim]
  wGate: T; // [hiddenDim][dim]
  wUp: T; // [hiddenDim][dim]
  wDown: T; // [dim][hiddenDim]
}

/** T: matrices, V: vectors (as loaded, matrices may be quantized while vectors are f32). */
export interface LlamaWeights<T = Float32Array, V = T> {
  tokenEmbedding: T; // [vocab][dim]
  layers: LayerWeights<T, V>[];
  outputNorm: V; // [dim]
  output: T; // [vocab][dim], the token embedding itself when tied
}

/** Tokens processed per forward step during prefill; bounds the scratch memory. */
export const MAX_BATCH = 32;

/** Per-sequence state: the KV cache and scratch activations, on the backend. */
export class LlamaState<T extends Handle = Handle> {
  readonly kCache: T[]; // per layer [contextLength][kvDim]
  readonly vCache: T[];
  /** Tokens already in the cache. */
  position = 0;
  readonly x: T; // residual stream [batch][dim]
  readonly h: T; // normed input [batch][dim]
  readonly q: T; // [batch][qDim]
  readonly k: T; // [batch][kvDim]
  readonly v: T;
  readonly att: T; // attention output [batch][qDim]
  readonly last: T; // the last token's residual row, when only its logits are wanted [dim]
  readonly gate: T; // [batch][hiddenDim]
  readonly up: T;
  readonly logits: T; // the last token's logits [vocab]
  /** Logits of every token of a batch [batch][vocab], allocated the first time they are asked for. */
  allLogits?: T;

  /** `halfKv`: the backend may keep the KV cache in f16 (done for models whose weights are f16). */
  constructor(c: ModelConfig, readonly contextLength: number, b: Backend<T>, halfKv = false) {
    const kvDim = c.nKvHeads * c.headDim;
    const qDim = c.nHeads * c.headDim;
    const B = MAX_BATCH;
    this.kCache = Array.from({ length: c.nLayers }, () => b.kvCache(contextLength * kvDim, halfKv));
    this.vCache = Array.from({ length: c.nLayers }, () => b.kvCache(contextLength * kvDim, halfKv));
    this.x = b.scratch(B * c.dim);
    this.h = b.scratch(B * c.dim);
    this.q = b.scratch(B * qDim);
    this.k = b.scratch(B * kvDim);
    this.v = b.scratch(B * kvDim);
    this.att = b.scratch(B * qDim);
    this.last = b.scratch(c.dim);
    this.gate = b.scratch(B * c.hiddenDim);
    this.up = b.scratch(B * c.hiddenDim);
    this.logits = b.scratch(c.vocabSize);
  }
}

export class LlamaModel<T extends Handle = Handle> {
  readonly weights: LlamaWeights<T>;
  /** The weights came from an f16 file: the KV cache may be f16 too (an f32 model keeps f32 precision). */
  readonly halfKv: boolean;

  constructor(
    readonly config: ModelConfig,
    weights: LlamaWeights<WeightData, Float32Array>,
    readonly backend: Backend<T>,
    /** Matrices whose values came from f16 tensors (the backend may keep them in f16). */
    half: ReadonlySet<Float32Array> = new Set(),
  ) {
    const c = config;
    const wq = weights.layers[0]?.wq;
    this.halfKv = wq instanceof Float32Array && half.has(wq);
    const up = (w: WeightData, rowLength?: number) => backend.weight(w, w instanceof Float32Array && half.has(w), rowLength);
    const tokenEmbedding = up(weights.tokenEmbedding, c.dim);
    this.weights = {
      tokenEmbedding,
      layers: weights.layers.map((l) => ({
        attnNorm: up(l.attnNorm), wq: up(l.wq, c.dim), wk: up(l.wk, c.dim), wv: up(l.wv, c.dim), wo: up(l.wo, c.nHeads * c.headDim),
        ffnNorm: up(l.ffnNorm), wGate: up(l.wGate, c.dim), wUp: up(l.wUp, c.dim), wDown: up(l.wDown, c.hiddenDim),
      })),
      outputNorm: up(weights.outputNorm),
      output: weights.output === weights.tokenEmbedding ? tokenEmbedding : up(weights.output, c.dim),
    };
  }

  newState(contextLength = this.config.contextLength): LlamaState<T> {
    return new LlamaState(this.config, contextLength, this.backend, this.halfKv);
  }

  /**
   * Run `tokens` through the model at the state's current position and advance it.
   * Returns logits [tokens.length][vocab] when `allLogits`, otherwise those of the last token [vocab].
   */
  async forward(state: LlamaState<T>, tokens: readonly number[], allLogits = false): Promise<Float32Array> {
    const V = this.config.vocabSize;
    this.check(state, tokens);
    const out = allLogits ? new Float32Array(tokens.length * V) : new Float32Array(V);
    for (let i = 0; i < tokens.length; i += MAX_BATCH) {
      const chunk = tokens.slice(i, i + MAX_BATCH);
      const last = i + chunk.length === tokens.length;
      this.forwardBatch(state, chunk, allLogits ? 'all' : last ? 'last' : 'none');
      if (allLogits) out.set(await this.backend.read(state.allLogits!, chunk.length * V), i * V);
      else if (last) out.set(await this.backend.read(state.logits, V));
    }
    return out;
  }

  /** Like forward, but returns only the most likely next token, computed where the logits are. */
  async forwardArgmax(state: LlamaState<T>, tokens: readonly number[]): Promise<number> {
    this.forwardToLastLogits(state, tokens);
    return this.backend.argmax(state.logits, 0, this.config.vocabSize);
  }

  /** Like forward, but returns only the k most likely next tokens (sorted), selected where the logits are. */
  async forwardTopK(state: LlamaState<T>, tokens: readonly number[], k: number): Promise<Candidates> {
    this.forwardToLastLogits(state, tokens);
    return this.backend.topk(state.logits, 0, this.config.vocabSize, k);
  }

  /** Record the steps for `tokens`, leaving the last token's logits in state.logits (on the backend). */
  private forwardToLastLogits(state: LlamaState<T>, tokens: readonly number[]): void {
    this.check(state, tokens);
    for (let i = 0; i < tokens.length; i += MAX_BATCH) {
      const chunk = tokens.slice(i, i + MAX_BATCH);
      this.forwardBatch(state, chunk, i + chunk.length === tokens.length ? 'last' : 'none');
    }
  }

  private check(state: LlamaState<T>, tokens: readonly number[]): void {
    const c = this.config;
    if (state.position + tokens.length > state.contextLength)
      throw new InvalidInputError(`${state.position + tokens.length} tokens do not fit the context of ${state.contextLength}: shorten the prompt or lower max tokens`);
    for (const t of tokens)
      if (!(Number.isInteger(t) && t >= 0 && t < c.vocabSize)) throw new InvalidInputError(`token id ${t} is outside the vocabulary (0..${c.vocabSize - 1})`);
  }

  /** One batch of n <= MAX_BATCH tokens. Logits: every row (to state.allLogits), the last row (to state.logits), or none. */
  private forwardBatch(s: LlamaState<T>, tokens: readonly number[], logits: 'all' | 'last' | 'none'): void {
    const c = this.config;
    const b = this.backend;
    const n = tokens.length;
    const start = s.position;
    b.embed(s.x, this.weights.tokenEmbedding, tokens, c.dim);
    for (let l = 0; l < c.nLayers; l++) {
      this.attentionBlock(s, l, this.weights.layers[l]!, n, start);
      this.feedForwardBlock(s, this.weights.layers[l]!, n);
    }
    s.position += n;
    if (logits === 'none') return;
    // Only the last token's logits are wanted while generating: its row alone goes through the head.
    const rows = logits === 'all' ? n : 1;
    let last = s.x;
    if (logits === 'last' && n > 1) {
      b.copyRows(s.last, 0, s.x, n - 1, 1, c.dim);
      last = s.last;
    }
    b.rmsnorm(s.h, last, this.weights.outputNorm, c.dim, c.rmsEps, rows);
    if (logits === 'all') s.allLogits ??= b.scratch(MAX_BATCH * c.vocabSize);
    b.matmul([{ out: logits === 'all' ? s.allLogits! : s.logits, w: this.weights.output, x: s.h, n: rows, rows: c.vocabSize, cols: c.dim }]);
  }

  /** x += Wo . attention(rope(Wq h), rope(Wk h), Wv h), h = rmsnorm(x). */
  private attentionBlock(s: LlamaState<T>, layer: number, w: LayerWeights<T>, n: number, start: number): void {
    const c = this.config;
    const b = this.backend;
    const qDim = c.nHeads * c.headDim;
    const kvDim = c.nKvHeads * c.headDim;
    b.rmsnorm(s.h, s.x, w.attnNorm, c.dim, c.rmsEps, n);
    b.matmul([
      { out: s.q, w: w.wq, x: s.h, n, rows: qDim, cols: c.dim },
      { out: s.k, w: w.wk, x: s.h, n, rows: kvDim, cols: c.dim },
      { out: s.v, w: w.wv, x: s.h, n, rows: kvDim, cols: c.dim },
    ]);
    b.rope(s.q, c.nHeads, start, n, c.rope);
    b.rope(s.k, c.nKvHeads, start, n, c.rope);
    b.copyRows(s.kCache[layer]!, start, s.k, 0, n, kvDim);
    b.copyRows(s.vCache[layer]!, start, s.v, 0, n, kvDim);
    b.attention(s.att, s.q, s.kCache[layer]!, s.vCache[layer]!, n, start, c);
    b.matmul([{ out: s.x, w: w.wo, x: s.att, n, rows: c.dim, cols: qDim, accumulate: true }]);
  }

  /** x += Wdown . (silu(Wgate h) * Wup h), h = rmsnorm(x). */
  private feedForwardBlock(s: LlamaState<T>, w: LayerWeights<T>, n: number): void {
    const c = this.config;
    const b = this.backend;
    b.rmsnorm(s.h, s.x, w.ffnNorm, c.dim, c.rmsEps, n);
    b.gatedMatmul(s.gate, w.wGate, w.wUp, s.h, s.up, n, c.hiddenDim, c.dim); // silu(Wgate h) * (Wup h)
    b.matmul([{ out: s.x, w: w.wDown, x: s.gate, n, rows: c.dim, cols: c.hiddenDim, accumulate: true }]);
  }
}
