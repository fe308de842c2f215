// Llama (1, 2, 3.x), and the models built like it: TinyLlama, SmolLM2, Mistral (sliding-window
// attention), stories260K. The reference the other families are described against:
//
//   x = E[tokens]                                            [n][dim]
//   for each layer:
//     h = rmsnorm(x)
//     x += Wo attention(rope(Wq h), rope(Wk h), Wv h)          causal, grouped-query, KV cache
//     h = rmsnorm(x)
//     x += Wdown (silu(Wgate h) * Wup h)                       SwiGLU
//   logits = Wout rmsnorm(x)                                 [vocab]; Wout may be E itself (tied)
//
// RoPE on interleaved pairs (GGUF's convention for `llama`), with Llama 3's per-frequency factors
// (rope_freqs.weight) or linear scaling when the file has them.

import type { Handle } from '../backend/backend.js';
import type { ModelFile } from '../format/model-file.js';
import { baseConfig, embeddingRows, ropeParams, ropeTrait, type ModelConfig, type Rope } from './config.js';
import type { Architecture, AttentionWeights, FfnWeights } from './transformer.js';
import type { Linear, Norm, WeightReader } from './weights.js';

export interface LlamaConfig extends ModelConfig {
  eps: number;
  rope: Rope;
  /** Sliding-window attention (Mistral): each token sees this many positions, itself included. */
  window?: number;
}

interface Layer<T> {
  attnNorm: Norm<T>;
  attn: AttentionWeights<T>;
  ffnNorm: Norm<T>;
  ffn: FfnWeights<T>;
}

export interface LlamaWeights<T = Handle> {
  tokenEmbd: T;
  layers: Layer<T>[];
  outputNorm: Norm<T>;
  output: Linear<T>;
}

export const llama: Architecture<LlamaConfig, LlamaWeights> = {
  family: 'llama',
  gguf: ['llama'],

  config(file: ModelFile): LlamaConfig {
    const c = baseConfig(file, 'llama', embeddingRows(file));
    const h = c.hyper;
    const rope = ropeParams(file, h, c.headDim, 'interleaved');
    const window = h.number('attention.sliding_window');
    const traits = [ropeTrait(rope), ...(window ? [`sliding-window attention (${window})`] : []), file.tensors.has('output.weight') ? 'separate output head' : 'output head tied to the embedding'];
    return { ...c, eps: h.positive('attention.layer_norm_rms_epsilon', 1e-5)!, rope, window: window || undefined, traits };
  },

  weights<T extends Handle>(read: WeightReader<T>, c: LlamaConfig): LlamaWeights<T> {
    const qDim = c.nHeads * c.headDim;
    const kvDim = c.nKvHeads * c.headDim;
    const tokenEmbd = read.matrix('token_embd.weight', c.vocabSize, c.dim);
    return {
      tokenEmbd,
      layers: Array.from({ length: c.nLayers }, (_, l) => {
        const p = `blk.${l}.`;
        return {
          attnNorm: read.rmsNorm(p + 'attn_norm', c.dim, c.eps),
          attn: {
            q: read.linear(p + 'attn_q', qDim, c.dim),
            k: read.linear(p + 'attn_k', kvDim, c.dim),
            v: read.linear(p + 'attn_v', kvDim, c.dim),
            o: read.linear(p + 'attn_output', c.dim, qDim),
          },
          ffnNorm: read.rmsNorm(p + 'ffn_norm', c.dim, c.eps),
          ffn: {
            gate: read.linear(p + 'ffn_gate', c.hiddenDim, c.dim),
            up: read.linear(p + 'ffn_up', c.hiddenDim, c.dim),
            down: read.linear(p + 'ffn_down', c.dim, c.hiddenDim),
            act: 'silu',
          },
        };
      }),
      outputNorm: read.rmsNorm('output_norm', c.dim, c.eps),
      output: read.has('output.weight') ? read.linear('output', c.vocabSize, c.dim) : { w: tokenEmbd, rows: c.vocabSize, cols: c.dim },
    };
  },

  forward(f, c) {
    const w = f.w;
    f.embed(f.x, w.tokenEmbd);                                                      // x = E[tokens]
    for (let l = 0; l < c.nLayers; l++) {
      const L = w.layers[l]!;
      f.norm(f.h, f.x, L.attnNorm);                                                 // h = rmsnorm(x)
      f.attention(l, f.x, f.h, L.attn, { rope: c.rope, window: c.window, add: true }); // x += Wo attn(rope(Wq h), rope(Wk h), Wv h)
      f.norm(f.h, f.x, L.ffnNorm);                                                  // h = rmsnorm(x)
      f.ffn(f.x, f.h, L.ffn, { add: true });                                        // x += Wdown (silu(Wgate h) * Wup h)
    }
    const x = f.logitRows(f.x);
    f.norm(f.h, x, w.outputNorm);                                                   // logits = Wout rmsnorm(x)
    f.logits(f.h, w.output);
  },
};
