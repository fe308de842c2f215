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
import { interleaveHeads, type HFMapping } from './hf.js';
import type { Architecture } from './transformer.js';
import type { AttentionWeights, FfnWeights, Linear, Norm, WeightReader } from './weights.js';

export interface LlamaConfig extends ModelConfig {
  eps: number;
  rope: Rope;
  /** Sliding-window attention (Mistral): each token sees this many positions, itself included. */
  window?: number;
  /** The q/k/v biases are part of the architecture (Qwen2): a file without them is damaged. */
  attnBias?: 'required';
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

/** Hugging Face Llama / Mistral folders, as llama.cpp's converter maps them (q/k rows to interleaved pairs). */
const hf: HFMapping = {
  classes: ['LlamaForCausalLM', 'MistralForCausalLM'],
  convert(h) {
    h.arch('llama');
    const { nLayers, nHeads, nKv, headDim } = h.standard();
    h.rope(headDim, headDim, ['linear', 'llama3']);
    h.f32('attention.layer_norm_rms_epsilon', h.num('rms_norm_eps', 1e-6));
    if (h.has('sliding_window')) h.u32('attention.sliding_window', h.int('sliding_window'));
    h.map('token_embd.weight', 'model.embed_tokens.weight');
    for (let l = 0; l < nLayers; l++) {
      const [p, q] = [`blk.${l}.`, `model.layers.${l}.`];
      h.map(p + 'attn_norm.weight', q + 'input_layernorm.weight');
      for (const b of ['weight', 'bias']) {
        // Biases as config.json says: attention_bias (q, k, v, o) and mlp_bias (gate, up, down).
        const [attnOptional, mlpOptional] = b === 'bias' ? [!h.bool('attention_bias', false), !h.bool('mlp_bias', false)] : [false, false];
        h.map(p + `attn_q.${b}`, q + `self_attn.q_proj.${b}`, (t) => interleaveHeads(t, nHeads), attnOptional);
        h.map(p + `attn_k.${b}`, q + `self_attn.k_proj.${b}`, (t) => interleaveHeads(t, nKv), attnOptional);
        h.map(p + `attn_v.${b}`, q + `self_attn.v_proj.${b}`, undefined, attnOptional);
        h.map(p + `attn_output.${b}`, q + `self_attn.o_proj.${b}`, undefined, attnOptional);
        h.map(p + `ffn_gate.${b}`, q + `mlp.gate_proj.${b}`, undefined, mlpOptional);
        h.map(p + `ffn_up.${b}`, q + `mlp.up_proj.${b}`, undefined, mlpOptional);
        h.map(p + `ffn_down.${b}`, q + `mlp.down_proj.${b}`, undefined, mlpOptional);
      }
      h.map(p + 'ffn_norm.weight', q + 'post_attention_layernorm.weight');
    }
    h.map('output_norm.weight', 'model.norm.weight');
    h.map('output.weight', 'lm_head.weight', undefined, true);
    h.ignore(/rotary_emb\.inv_freq$/);
  },
};

export const llama: Architecture<LlamaConfig, LlamaWeights> = {
  family: 'llama',
  gguf: ['llama'],
  hf,

  config(file: ModelFile): LlamaConfig {
    const c = baseConfig(file, 'llama', embeddingRows(file));
    const h = c.hyper;
    const rope = ropeParams(file, h, c.headDim, 'interleaved');
    const window = h.number('attention.sliding_window');
    const traits = [ropeTrait(rope), ...(window ? [`sliding-window attention (${window})`] : []), file.tensors.has('output.weight') ? 'separate output head' : 'output head tied to the embedding'];
    return { ...c, eps: h.positive('attention.layer_norm_rms_epsilon', 1e-5)!, rope, window: window || undefined, traits };
  },

  weights<T extends Handle>(read: WeightReader<T>, c: LlamaConfig): LlamaWeights<T> {
    const tokenEmbd = read.matrix('token_embd.weight', c.vocabSize, c.dim);
    return {
      tokenEmbd,
      layers: Array.from({ length: c.nLayers }, (_, l) => {
        const p = `blk.${l}.`;
        return {
          attnNorm: read.rmsNorm(p + 'attn_norm', c.dim, c.eps),
          attn: read.attention(p, c, c.attnBias),
          ffnNorm: read.rmsNorm(p + 'ffn_norm', c.dim, c.eps),
          ffn: read.ffn(p, c.dim, c.hiddenDim, 'silu'),
        };
      }),
      outputNorm: read.rmsNorm('output_norm', c.dim, c.eps),
      output: read.head(c.vocabSize, c.dim, tokenEmbd),
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
    llama.unembed!(f, c, f.logitRows(f.x));
  },

  unembed(f, _c, x) {
    f.norm(f.h, x, f.w.outputNorm);                                                 // logits = Wout rmsnorm(x)
    f.logits(f.h, f.w.output);
  },
};
