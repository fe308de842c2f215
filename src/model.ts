// The Llama forward pass on the CPU, one readable stage at a time (see docs/architecture.md).
//
//   x = embed(tokens)                                   [n][dim]
//   for each layer:
//     h = rmsnorm(x) ; q,k,v = Wq h, Wk h, Wv h ; rope(q, k) ; cache k, v
//     x += Wo attention(q, Kcache, Vcache)              (causal, grouped-query)
//     h = rmsnorm(x) ; x += Wdown (silu(Wgate h) * Wup h)
//   logits = Wout rmsnorm(x)                            [n][vocab]

import { attention } from './attention.js';
import type { ModelConfig } from './config.js';
import { embed } from './embedding.js';
import { InvalidInputError } from './errors.js';
import { swiglu } from './ffn.js';
import { serialExecutor, type MatmulExecutor, type MatmulJob } from './matmul.js';
import { rmsnorm } from './rmsnorm.js';
import { rope, ropeFrequencies } from './rope.js';

export interface LayerWeights {
  attnNorm: Float32Array; // [dim]
  wq: Float32Array; // [nHeads*headDim][dim]
  wk: Float32Array; // [nKvHeads*headDim][dim]
  wv: Float32Array; // [nKvHeads*headDim][dim]
  wo: Float32Array; // [dim][nHeads*headDim]
  ffnNorm: Float32Array; // [dim]
  wGate: Float32Array; // [hiddenDim][dim]
  wUp: Float32Array; // [hiddenDim][dim]
  wDown: Float32Array; // [dim][hiddenDim]
}

export interface LlamaWeights {
  tokenEmbedding: Float32Array; // [vocab][dim]
  layers: LayerWeights[];
  outputNorm: Float32Array; // [dim]
  output: Float32Array; // [vocab][dim], the token embedding itself when tied
}

/** Tokens processed per forward step during prefill; bounds the scratch memory. */
export const MAX_BATCH = 32;

/** Per-sequence state: the KV cache and scratch activations. */
export class LlamaState {
  readonly kCache: Float32Array[]; // per layer [contextLength][kvDim]
  readonly vCache: Float32Array[];
  /** Tokens already in the cache. */
  position = 0;
  readonly x: Float32Array; // residual stream [batch][dim]
  readonly h: Float32Array; // normed input [batch][dim]
  readonly q: Float32Array; // [batch][qDim]
  readonly k: Float32Array; // [batch][kvDim]
  readonly v: Float32Array;
  readonly att: Float32Array; // attention output [batch][qDim]
  readonly proj: Float32Array; // projection back to the residual [batch][dim]
  readonly gate: Float32Array; // [batch][hiddenDim]
  readonly up: Float32Array;
  readonly logits: Float32Array; // [batch][vocab]
  readonly scores: Float64Array; // [contextLength]

  constructor(c: ModelConfig, readonly contextLength: number, exec: MatmulExecutor) {
    const kvDim = c.nKvHeads * c.headDim;
    const qDim = c.nHeads * c.headDim;
    const B = MAX_BATCH;
    this.kCache = Array.from({ length: c.nLayers }, () => new Float32Array(contextLength * kvDim));
    this.vCache = Array.from({ length: c.nLayers }, () => new Float32Array(contextLength * kvDim));
    this.x = exec.alloc(B * c.dim);
    this.h = exec.alloc(B * c.dim);
    this.q = exec.alloc(B * qDim);
    this.k = exec.alloc(B * kvDim);
    this.v = exec.alloc(B * kvDim);
    this.att = exec.alloc(B * qDim);
    this.proj = exec.alloc(B * c.dim);
    this.gate = exec.alloc(B * c.hiddenDim);
    this.up = exec.alloc(B * c.hiddenDim);
    this.logits = exec.alloc(B * c.vocabSize);
    this.scores = new Float64Array(contextLength);
  }
}

export class LlamaModel {
  private readonly ropeFreqs: Float64Array;

  constructor(
    readonly config: ModelConfig,
    readonly weights: LlamaWeights,
    readonly exec: MatmulExecutor = serialExecutor,
  ) {
    this.ropeFreqs = ropeFrequencies(config.rope);
  }

  newState(contextLength = this.config.contextLength): LlamaState {
    return new LlamaState(this.config, contextLength, this.exec);
  }

  /**
   * Run `tokens` through the model at the state's current position and advance it.
   * Returns logits [tokens.length][vocab] when `allLogits`, otherwise those of the last token [vocab].
   */
  forward(state: LlamaState, tokens: readonly number[], allLogits = false): Float32Array {
    const c = this.config;
    if (state.position + tokens.length > state.contextLength)
      throw new InvalidInputError(`${state.position + tokens.length} tokens do not fit the context of ${state.contextLength}: shorten the prompt or lower max tokens`);
    for (const t of tokens)
      if (!(Number.isInteger(t) && t >= 0 && t < c.vocabSize)) throw new InvalidInputError(`token id ${t} is outside the vocabulary (0..${c.vocabSize - 1})`);
    const out = allLogits ? new Float32Array(tokens.length * c.vocabSize) : new Float32Array(c.vocabSize);
    for (let i = 0; i < tokens.length; i += MAX_BATCH) {
      const chunk = tokens.slice(i, i + MAX_BATCH);
      const last = i + chunk.length === tokens.length;
      this.forwardBatch(state, chunk, allLogits || last);
      if (allLogits) out.set(state.logits.subarray(0, chunk.length * c.vocabSize), i * c.vocabSize);
      else if (last) out.set(state.logits.subarray((chunk.length - 1) * c.vocabSize, chunk.length * c.vocabSize));
    }
    return out;
  }

  /** One batch of n <= MAX_BATCH tokens; fills state.logits for all n rows when `logits`. */
  private forwardBatch(s: LlamaState, tokens: readonly number[], logits: boolean): void {
    const c = this.config;
    const n = tokens.length;
    const start = s.position;
    tokens.forEach((tok, t) => embed(s.x, t * c.dim, this.weights.tokenEmbedding, tok, c.dim));
    for (let l = 0; l < c.nLayers; l++) {
      const w = this.weights.layers[l]!;
      this.attentionBlock(s, l, w, n, start);
      this.feedForwardBlock(s, w, n);
    }
    s.position += n;
    if (!logits) return;
    rmsnorm(s.h, s.x, this.weights.outputNorm, c.dim, c.rmsEps, n);
    this.matmuls([{ out: s.logits, w: this.weights.output, x: s.h, n, rows: c.vocabSize, cols: c.dim }]);
  }

  /** x += Wo . attention(rope(Wq h), rope(Wk h), Wv h), h = rmsnorm(x). */
  private attentionBlock(s: LlamaState, layer: number, w: LayerWeights, n: number, start: number): void {
    const c = this.config;
    const qDim = c.nHeads * c.headDim;
    const kvDim = c.nKvHeads * c.headDim;
    rmsnorm(s.h, s.x, w.attnNorm, c.dim, c.rmsEps, n);
    this.matmuls([
      { out: s.q, w: w.wq, x: s.h, n, rows: qDim, cols: c.dim },
      { out: s.k, w: w.wk, x: s.h, n, rows: kvDim, cols: c.dim },
      { out: s.v, w: w.wv, x: s.h, n, rows: kvDim, cols: c.dim },
    ]);
    for (let t = 0; t < n; t++) {
      rope(s.q, t * qDim, c.nHeads, start + t, c.rope, this.ropeFreqs);
      rope(s.k, t * kvDim, c.nKvHeads, start + t, c.rope, this.ropeFreqs);
    }
    s.kCache[layer]!.set(s.k.subarray(0, n * kvDim), start * kvDim);
    s.vCache[layer]!.set(s.v.subarray(0, n * kvDim), start * kvDim);
    attention(s.att, s.q, s.kCache[layer]!, s.vCache[layer]!, n, start, c, s.scores);
    this.matmuls([{ out: s.proj, w: w.wo, x: s.att, n, rows: c.dim, cols: qDim }]);
    addInPlace(s.x, s.proj, n * c.dim);
  }

  /** x += Wdown . (silu(Wgate h) * Wup h), h = rmsnorm(x). */
  private feedForwardBlock(s: LlamaState, w: LayerWeights, n: number): void {
    const c = this.config;
    rmsnorm(s.h, s.x, w.ffnNorm, c.dim, c.rmsEps, n);
    this.matmuls([
      { out: s.gate, w: w.wGate, x: s.h, n, rows: c.hiddenDim, cols: c.dim },
      { out: s.up, w: w.wUp, x: s.h, n, rows: c.hiddenDim, cols: c.dim },
    ]);
    swiglu(s.gate, s.up, n * c.hiddenDim);
    this.matmuls([{ out: s.proj, w: w.wDown, x: s.gate, n, rows: c.dim, cols: c.hiddenDim }]);
    addInPlace(s.x, s.proj, n * c.dim);
  }

  private matmuls(jobs: MatmulJob[]): void {
    this.exec.run(jobs);
  }
}

/** Residual connection: x += y over the first `len` elements. */
export function addInPlace(x: Float32Array, y: Float32Array, len: number): void {
  for (let i = 0; i < len; i++) x[i] = x[i]! + y[i]!;
}
