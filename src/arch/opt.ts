// OPT (Meta's 125M-66B): learned positions with an offset of 2, LayerNorm with bias, ReLU, biases
// everywhere. llama.cpp has no OPT, so its GGUF form ("opt") is pocketlm's own, written by
// `pocketlm convert`; Hugging Face folders load directly.
//
//   x = Win E[tokens] + P[positions + 2]                 Win (project_in) only where the embedding is
//                                                        narrower than the model (350M: 512 -> 1024)
//   for each layer, pre-norm (125M and most sizes):
//     x += Wo attention(Wq h, Wk h, Wv h) + bo,  h = layernorm1(x)
//     x += W2 relu(W1 h + b1) + b2,              h = layernorm2(x)
//   or post-norm (350M: do_layer_norm_before false):
//     x = layernorm1(x + attention(x));  x = layernorm2(x + mlp(x))
//   logits = E Wout layernorm(x)                         the final norm only for pre-norm models;
//                                                        Wout (project_out) back to the embedding width

import { UnsupportedModelError } from '../base/errors.js';
import type { Handle } from '../backend/backend.js';
import type { ModelFile } from '../format/model-file.js';
import { gguf } from '../format/gguf-writer.js';
import { baseConfig, embeddingRows, type ModelConfig } from './config.js';
import type { HFMapping } from './hf.js';
import type { Architecture } from './transformer.js';
import type { AttentionWeights, FfnWeights, Linear, Norm, WeightReader } from './weights.js';

export interface OptConfig extends ModelConfig {
  eps: number;
  preNorm: boolean;
  positionOffset: number;
}

interface Layer<T> {
  attnNorm: Norm<T>;
  attn: AttentionWeights<T>;
  ffnNorm: Norm<T>;
  ffn: FfnWeights<T>;
}

export interface OptWeights<T = Handle> {
  tokenEmbd: T;
  positionEmbd: T;
  projectIn?: Linear<T>;
  projectOut?: Linear<T>;
  layers: Layer<T>[];
  outputNorm?: Norm<T>;
  output: Linear<T>;
}

const hf: HFMapping = {
  classes: ['OPTForCausalLM'],
  convert(h) {
    h.arch('opt');
    h.activation(['activation_function'], { relu: 'relu' });
    if (!h.bool('layer_norm_elementwise_affine', true)) throw new UnsupportedModelError(h.source, 'layer_norm_elementwise_affine: false (LayerNorm without weights) is not supported');
    const { dim, nLayers } = h.standard({ ffn: ['ffn_dim'] });
    const embedDim = h.int('word_embed_proj_dim', dim);
    if (embedDim !== dim) h.u32('token_embedding_length', embedDim);
    h.f32('attention.layer_norm_epsilon', 1e-5); // nn.LayerNorm's default, which OPT uses
    const preNorm = h.bool('do_layer_norm_before', true);
    h.set('layer_norm_before', gguf.bool(preNorm));
    h.u32('position_offset', 2);
    const d = h.hf.tensors.has('model.decoder.embed_tokens.weight') ? 'model.decoder.' : 'decoder.';
    h.map('token_embd.weight', `${d}embed_tokens.weight`);
    h.map('position_embd.weight', `${d}embed_positions.weight`);
    h.map('project_in.weight', `${d}project_in.weight`, undefined, embedDim === dim);
    h.map('project_out.weight', `${d}project_out.weight`, undefined, embedDim === dim);
    for (let l = 0; l < nLayers; l++) {
      const [p, q] = [`blk.${l}.`, `${d}layers.${l}.`];
      for (const b of ['weight', 'bias']) {
        const optional = b === 'bias' && !h.bool('enable_bias', true);
        for (const [to, from] of [['attn_q', 'self_attn.q_proj'], ['attn_k', 'self_attn.k_proj'], ['attn_v', 'self_attn.v_proj'], ['attn_output', 'self_attn.out_proj'], ['ffn_up', 'fc1'], ['ffn_down', 'fc2']])
          h.map(`${p}${to}.${b}`, `${q}${from}.${b}`, undefined, optional);
        h.map(`${p}attn_norm.${b}`, `${q}self_attn_layer_norm.${b}`);
        h.map(`${p}ffn_norm.${b}`, `${q}final_layer_norm.${b}`);
      }
    }
    h.map('output_norm.weight', `${d}final_layer_norm.weight`, undefined, !preNorm);
    h.map('output_norm.bias', `${d}final_layer_norm.bias`, undefined, !preNorm);
    h.ignore(/^lm_head\.weight$/); // tied to the embedding
  },
};

export const opt: Architecture<OptConfig, OptWeights> = {
  family: 'opt',
  gguf: ['opt'],
  hf,

  config(file: ModelFile): OptConfig {
    const c = baseConfig(file, 'opt', embeddingRows(file));
    const h = c.hyper;
    const embedDim = h.size('token_embedding_length', c.dim);
    const positionOffset = h.number('position_offset', 2);
    if (!(Number.isInteger(positionOffset) && positionOffset >= 0)) throw new UnsupportedModelError(file.source, `metadata "opt.position_offset" = ${positionOffset} must be a non-negative integer`);
    const maxContext = embeddingRows(file, 'position_embd.weight') - positionOffset;
    const preNorm = h.bool('layer_norm_before', true);
    const traits = [
      `learned positions (offset ${positionOffset}), LayerNorm with bias, ReLU, biases everywhere`,
      preNorm ? 'pre-norm blocks, final LayerNorm' : 'post-norm blocks (LayerNorm after each residual add), no final LayerNorm',
      ...(embedDim !== c.dim ? [`embedding width ${embedDim}, projected in and out of ${c.dim}`] : []),
      'output head tied to the embedding',
    ];
    return { ...c, contextLength: Math.min(c.contextLength, maxContext), maxContext, embedDim, eps: h.positive('attention.layer_norm_epsilon', 1e-5)!, preNorm, positionOffset, traits };
  },

  weights<T extends Handle>(read: WeightReader<T>, c: OptConfig): OptWeights<T> {
    const e = c.embedDim ?? c.dim;
    const tokenEmbd = read.matrix('token_embd.weight', c.vocabSize, e);
    return {
      tokenEmbd,
      positionEmbd: read.matrix('position_embd.weight', embeddingRows(read.file, 'position_embd.weight'), c.dim),
      projectIn: e !== c.dim ? read.linear('project_in', c.dim, e, 'none') : undefined,
      projectOut: e !== c.dim ? read.linear('project_out', e, c.dim, 'none') : undefined,
      layers: Array.from({ length: c.nLayers }, (_, l) => {
        const p = `blk.${l}.`;
        return {
          attnNorm: read.layerNorm(p + 'attn_norm', c.dim, c.eps),
          attn: read.attention(p, c),
          ffnNorm: read.layerNorm(p + 'ffn_norm', c.dim, c.eps),
          ffn: read.ffn(p, c.dim, c.hiddenDim, 'relu'),
        };
      }),
      outputNorm: c.preNorm ? read.layerNorm('output_norm', c.dim, c.eps) : undefined,
      output: { w: tokenEmbd, rows: c.vocabSize, cols: e },
    };
  },

  forward(f, c) {
    const w = f.w;
    const e = c.embedDim ?? c.dim;
    const emb = w.projectIn ? f.buffer('e', e) : f.x;
    f.embed(emb, w.tokenEmbd, { width: e });                                       // x = E[tokens]
    if (w.projectIn) f.linear(f.x, emb, w.projectIn);                              //   (x = Win x)
    f.positions(f.x, w.positionEmbd, { offset: c.positionOffset });                //   + P[positions + 2]
    for (let l = 0; l < c.nLayers; l++) {
      const L = w.layers[l]!;
      if (c.preNorm) {
        f.norm(f.h, f.x, L.attnNorm);                                              // h = layernorm1(x)
        f.attention(l, f.x, f.h, L.attn, { add: true });                           // x += Wo attn(Wq h, Wk h, Wv h) + bo
        f.norm(f.h, f.x, L.ffnNorm);                                               // h = layernorm2(x)
        f.ffn(f.x, f.h, L.ffn, { add: true });                                     // x += W2 relu(W1 h + b1) + b2
      } else {
        f.attention(l, f.x, f.x, L.attn, { add: true });                           // x += attn(x)
        f.norm(f.x, f.x, L.attnNorm);                                              // x = layernorm1(x)
        f.ffn(f.x, f.x, L.ffn, { add: true });                                     // x += mlp(x)
        f.norm(f.x, f.x, L.ffnNorm);                                               // x = layernorm2(x)
      }
    }
    opt.unembed!(f, c, f.logitRows(f.x));
  },

  unembed(f, c, x) {
    const w = f.w;
    if (w.outputNorm) {
      f.norm(f.h, x, w.outputNorm);                                                // x = layernorm(x)
      x = f.h;
    }
    if (w.projectOut) {
      const out = f.buffer('e', c.embedDim ?? c.dim);
      f.linear(out, x, w.projectOut);                                              // x = Wout x
      x = out;
    }
    f.logits(x, w.output);                                                         // logits = E x
  },
};
