// GPT-NeoX (Pythia): partial NeoX RoPE and, by default, a parallel residual:
//
//   x = E[tokens]
//   for each layer:
//     a = Wo attention(rope(q), rope(k), v) + bo,  [q; k; v] = Wqkv layernorm1(x) + bqkv
//     m = W2 gelu(W1 layernorm2(x) + b1) + b2        the MLP reads x too, not x + a
//     x += a + m                                      (use_parallel_residual false: x += a, then m from x)
//   logits = Wout layernorm(x)
//
// RoPE turns the first rotary_pct of each head (Pythia: 25%, 16 of 64 dims) on NeoX pairs. The MLP's
// GELU is the exact, erf-based one Pythia was trained with (its config says "gelu"); llama.cpp's
// gptneox uses the tanh approximation instead (docs/architecture.md): the GGUF key
// gptneox.feed_forward_activation, written by our converter, says which ("gelu_erf", "gelu").

import { UnsupportedModelError } from '../base/errors.js';
import type { Handle } from '../backend/backend.js';
import type { ModelFile } from '../format/model-file.js';
import { gguf } from '../format/gguf-writer.js';
import type { Activation } from '../stages/ffn.js';
import { baseConfig, embeddingRows, ropeParams, ropeTrait, type ModelConfig, type Rope } from './config.js';
import { blockQKV, type HFMapping } from './hf.js';
import type { Architecture } from './transformer.js';
import type { AttentionWeights, FfnWeights, Linear, Norm, WeightReader } from './weights.js';

export interface GptNeoXConfig extends ModelConfig {
  eps: number;
  rope: Rope;
  parallel: boolean;
  act: Activation;
}

interface Layer<T> {
  attnNorm: Norm<T>;
  attn: AttentionWeights<T>;
  ffnNorm: Norm<T>;
  ffn: FfnWeights<T>;
}

export interface GptNeoXWeights<T = Handle> {
  tokenEmbd: T;
  layers: Layer<T>[];
  outputNorm: Norm<T>;
  output: Linear<T>;
}

const hf: HFMapping = {
  classes: ['GPTNeoXForCausalLM'],
  convert(h) {
    h.arch('gptneox');
    const heads = h.int('num_attention_heads');
    const headDim = h.int('hidden_size') / heads;
    const ropeDims = 2 * Math.floor((h.num('rotary_pct', 1) * headDim) / 2);
    const { nLayers, nHeads } = h.standard({ ropeDims });
    h.f32('rope.freq_base', h.num(['rotary_emb_base', 'rope_theta'], 10000));
    h.f32('attention.layer_norm_epsilon', h.num('layer_norm_eps', 1e-5));
    h.set('use_parallel_residual', gguf.bool(h.bool('use_parallel_residual', true)));
    h.set('feed_forward_activation', gguf.str(h.activation(['hidden_act'], { gelu: 'gelu_erf', gelu_new: 'gelu', gelu_fast: 'gelu', gelu_pytorch_tanh: 'gelu' })));
    if (h.raw('rope_scaling')) throw new UnsupportedModelError(h.source, `rope_scaling ${JSON.stringify(h.raw('rope_scaling'))} is not supported for GPT-NeoX`);
    h.map('token_embd.weight', 'gpt_neox.embed_in.weight');
    for (let l = 0; l < nLayers; l++) {
      const [p, q] = [`blk.${l}.`, `gpt_neox.layers.${l}.`];
      for (const b of ['weight', 'bias']) {
        h.map(`${p}attn_norm.${b}`, `${q}input_layernorm.${b}`);
        h.map(`${p}attn_qkv.${b}`, `${q}attention.query_key_value.${b}`, (t) => blockQKV(t, nHeads));
        h.map(`${p}attn_output.${b}`, `${q}attention.dense.${b}`);
        h.map(`${p}ffn_norm.${b}`, `${q}post_attention_layernorm.${b}`);
        h.map(`${p}ffn_up.${b}`, `${q}mlp.dense_h_to_4h.${b}`);
        h.map(`${p}ffn_down.${b}`, `${q}mlp.dense_4h_to_h.${b}`);
      }
    }
    h.map('output_norm.weight', 'gpt_neox.final_layer_norm.weight');
    h.map('output_norm.bias', 'gpt_neox.final_layer_norm.bias');
    h.map('output.weight', 'embed_out.weight');
    h.ignore(/\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)$/);
  },
};

export const gptneox: Architecture<GptNeoXConfig, GptNeoXWeights> = {
  family: 'gptneox',
  gguf: ['gptneox'],
  hf,

  config(file: ModelFile): GptNeoXConfig {
    const c = baseConfig(file, 'gptneox', embeddingRows(file));
    const h = c.hyper;
    const rope = ropeParams(file, h, c.headDim, 'neox');
    const parallel = h.bool('use_parallel_residual', true);
    const act = (h.string('feed_forward_activation') ?? 'gelu_erf') as Activation;
    if (act !== 'gelu_erf' && act !== 'gelu') throw new UnsupportedModelError(file.source, `metadata "gptneox.feed_forward_activation" = "${act}": pocketlm computes gelu_erf and gelu`);
    const traits = [ropeTrait(rope), parallel ? 'parallel residual (attention and MLP from the same x)' : 'sequential residual', `LayerNorm with bias, fused q/k/v with bias, ${act === 'gelu_erf' ? 'exact (erf) GELU' : 'tanh GELU'}`];
    return { ...c, eps: h.positive('attention.layer_norm_epsilon', 1e-5)!, rope, parallel, act, traits };
  },

  weights<T extends Handle>(read: WeightReader<T>, c: GptNeoXConfig): GptNeoXWeights<T> {
    const tokenEmbd = read.matrix('token_embd.weight', c.vocabSize, c.dim);
    return {
      tokenEmbd,
      layers: Array.from({ length: c.nLayers }, (_, l) => {
        const p = `blk.${l}.`;
        return {
          attnNorm: read.layerNorm(p + 'attn_norm', c.dim, c.eps),
          attn: read.attention(p, c),
          ffnNorm: read.layerNorm(p + 'ffn_norm', c.dim, c.eps),
          ffn: read.ffn(p, c.dim, c.hiddenDim, c.act),
        };
      }),
      outputNorm: read.layerNorm('output_norm', c.dim, c.eps),
      output: read.head(c.vocabSize, c.dim, tokenEmbd),
    };
  },

  forward(f, c) {
    const w = f.w;
    f.embed(f.x, w.tokenEmbd);                                                     // x = E[tokens]
    for (let l = 0; l < c.nLayers; l++) {
      const L = w.layers[l]!;
      f.norm(f.h, f.x, L.attnNorm);                                                // h = layernorm1(x)
      if (c.parallel) f.norm(f.h2, f.x, L.ffnNorm);                                // h2 = layernorm2(x), before x changes
      f.attention(l, f.x, f.h, L.attn, { rope: c.rope, add: true });               // x += Wo attn(rope(q), rope(k), v) + bo
      if (!c.parallel) f.norm(f.h2, f.x, L.ffnNorm);                               // sequential: h2 = layernorm2(x + a)
      f.ffn(f.x, f.h2, L.ffn, { add: true });                                      // x += W2 gelu(W1 h2 + b1) + b2
    }
    gptneox.unembed!(f, c, f.logitRows(f.x));
  },

  unembed(f, _c, x) {
    f.norm(f.h, x, f.w.outputNorm);                                                // logits = Wout layernorm(x)
    f.logits(f.h, f.w.output);
  },
};
