// GPT-2 and Cerebras-GPT: learned absolute positions and pre-LayerNorm blocks, biases everywhere:
//
//   x = E[tokens] + P[positions]
//   for each layer:
//     h = layernorm(x)
//     x += Wo attention(Wq h, Wk h, Wv h) + bo             no RoPE; q/k/v one fused matrix (c_attn)
//     h = layernorm(x)
//     x += W2 gelu(W1 h + b1) + b2                          tanh GELU ("gelu_new")
//   logits = E layernorm(x)                                 the head tied to the embedding
//
// Hugging Face's GPT-2 stores its projections as Conv1D weights [in][out]: the converter transposes
// them into Linear's [out][in] once, as llama.cpp's does.

import type { Handle } from '../backend/backend.js';
import type { ModelFile } from '../format/model-file.js';
import { baseConfig, embeddingRows, type ModelConfig } from './config.js';
import { transpose, type HFMapping } from './hf.js';
import type { Architecture } from './transformer.js';
import type { AttentionWeights, FfnWeights, Linear, Norm, WeightReader } from './weights.js';

export interface Gpt2Config extends ModelConfig {
  eps: number;
}

interface Layer<T> {
  attnNorm: Norm<T>;
  attn: AttentionWeights<T>;
  ffnNorm: Norm<T>;
  ffn: FfnWeights<T>;
}

export interface Gpt2Weights<T = Handle> {
  tokenEmbd: T;
  positionEmbd: T;
  layers: Layer<T>[];
  outputNorm: Norm<T>;
  output: Linear<T>;
}

const hf: HFMapping = {
  classes: ['GPT2LMHeadModel'],
  convert(h) {
    h.arch('gpt2');
    h.activation(['activation_function'], { gelu_new: 'gelu', gelu_pytorch_tanh: 'gelu', gelu_fast: 'gelu' });
    const { nLayers } = h.standard();
    h.f32('attention.layer_norm_epsilon', h.num('layer_norm_epsilon', 1e-5));
    // Checkpoints name their tensors with or without the "transformer." prefix.
    const t = h.hf.tensors.has('transformer.wte.weight') ? 'transformer.' : '';
    h.map('token_embd.weight', `${t}wte.weight`);
    h.map('position_embd.weight', `${t}wpe.weight`);
    for (let l = 0; l < nLayers; l++) {
      const [p, q] = [`blk.${l}.`, `${t}h.${l}.`];
      for (const [to, from, conv] of [['attn_norm', 'ln_1', false], ['attn_qkv', 'attn.c_attn', true], ['attn_output', 'attn.c_proj', true], ['ffn_norm', 'ln_2', false], ['ffn_up', 'mlp.c_fc', true], ['ffn_down', 'mlp.c_proj', true]] as const) {
        h.map(`${p}${to}.weight`, `${q}${from}.weight`, conv ? transpose : undefined);
        h.map(`${p}${to}.bias`, `${q}${from}.bias`);
      }
    }
    h.map('output_norm.weight', `${t}ln_f.weight`);
    h.map('output_norm.bias', `${t}ln_f.bias`);
    h.ignore(/^lm_head\.weight$|\.attn\.(masked_)?bias$/); // the tied head; causal-mask buffers
  },
};

export const gpt2: Architecture<Gpt2Config, Gpt2Weights> = {
  family: 'gpt2',
  gguf: ['gpt2'],
  hf,

  config(file: ModelFile): Gpt2Config {
    const c = baseConfig(file, 'gpt2', embeddingRows(file));
    const positions = embeddingRows(file, 'position_embd.weight');
    const contextLength = Math.min(c.contextLength, positions);
    const traits = [`learned absolute positions (${positions})`, 'LayerNorm with bias, fused q/k/v with bias, GELU (tanh)', file.tensors.has('output.weight') ? 'separate output head' : 'output head tied to the embedding'];
    return { ...c, contextLength, maxContext: positions, eps: c.hyper.positive('attention.layer_norm_epsilon', 1e-5)!, traits };
  },

  weights<T extends Handle>(read: WeightReader<T>, c: Gpt2Config): Gpt2Weights<T> {
    const tokenEmbd = read.matrix('token_embd.weight', c.vocabSize, c.dim);
    return {
      tokenEmbd,
      positionEmbd: read.matrix('position_embd.weight', embeddingRows(read.file, 'position_embd.weight'), c.dim),
      layers: Array.from({ length: c.nLayers }, (_, l) => {
        const p = `blk.${l}.`;
        return {
          attnNorm: read.layerNorm(p + 'attn_norm', c.dim, c.eps),
          attn: read.attention(p, c),
          ffnNorm: read.layerNorm(p + 'ffn_norm', c.dim, c.eps),
          ffn: read.ffn(p, c.dim, c.hiddenDim, 'gelu'),
        };
      }),
      outputNorm: read.layerNorm('output_norm', c.dim, c.eps),
      output: read.head(c.vocabSize, c.dim, tokenEmbd),
    };
  },

  forward(f, c) {
    const w = f.w;
    f.embed(f.x, w.tokenEmbd);                                                     // x = E[tokens]
    f.positions(f.x, w.positionEmbd);                                              //   + P[positions]
    for (let l = 0; l < c.nLayers; l++) {
      const L = w.layers[l]!;
      f.norm(f.h, f.x, L.attnNorm);                                                // h = layernorm(x)
      f.attention(l, f.x, f.h, L.attn, { add: true });                             // x += Wo attn(Wq h, Wk h, Wv h) + bo
      f.norm(f.h, f.x, L.ffnNorm);                                                 // h = layernorm(x)
      f.ffn(f.x, f.h, L.ffn, { add: true });                                       // x += W2 gelu(W1 h + b1) + b2
    }
    gpt2.unembed!(f, c, f.logitRows(f.x));
  },

  unembed(f, _c, x) {
    f.norm(f.h, x, f.w.outputNorm);                                                // logits = E layernorm(x)
    f.logits(f.h, f.w.output);
  },
};
