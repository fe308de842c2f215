// Gemma 1, 2 and 3 (text), one file, the versions as options:
//
//   x = E[tokens] * sqrt(dim)
//   for each layer:
//     h = rmsnorm(x)
//     o = Wo attention(rope(Wq h), rope(Wk h), Wv h)       Gemma 3: q and k RMSNormed per head first
//     x += o                  | Gemma 2/3: x += rmsnorm(o)   (post-attention norm)
//     h = rmsnorm(x)
//     o = Wdown (gelu(Wgate h) * Wup h)                    GeGLU (tanh GELU)
//     x += o                  | Gemma 2/3: x += rmsnorm(o)   (post-FFN norm)
//   logits = E rmsnorm(x)     | Gemma 2: 30 tanh(logits / 30)  (final soft-cap)
//
// RMSNorm weights are applied as stored: Gemma's own (1 + w) is folded in by the converters (ours
// and llama.cpp's). Attention: scores scaled by 1/sqrt(query_pre_attn_scalar) (the GGUF key
// attention.scale where our converter wrote it; else llama.cpp's rule: 1/sqrt(dim / heads) for the 27B
// models, 1/sqrt(head size) otherwise); Gemma 2 soft-caps them at 50 tanh(s / 50); Gemma 2 and 3
// alternate local layers (sliding window) with global ones (2: every other layer, 3: five local, then
// one global), and Gemma 3's local layers rotate with their own RoPE base (10000) and no scaling.

import type { ModelFile } from '../format/model-file.js';
import { baseConfig, embeddingRows, ropeParams, ropeTrait, type ModelConfig, type Rope } from './config.js';
import { plusOne, type HFMapping } from './hf.js';
import type { Handle } from '../backend/backend.js';
import type { Architecture } from './transformer.js';
import type { AttentionWeights, FfnWeights, Linear, Norm, WeightReader } from './weights.js';
import { metaArray } from '../format/gguf.js';
import { gguf } from '../format/gguf-writer.js';
import { ModelFormatError } from '../base/errors.js';

export interface GemmaConfig extends ModelConfig {
  version: 1 | 2 | 3;
  eps: number;
  /** Global layers' RoPE, and the local (sliding-window) layers' RoPE. */
  rope: Rope;
  localRope: Rope;
  scale: number;
  attnSoftcap?: number;
  finalSoftcap?: number;
  window?: number;
  /** Which layers attend locally (sliding window). */
  local: boolean[];
}

interface Layer<T> {
  attnNorm: Norm<T>;
  attn: AttentionWeights<T>;
  postAttnNorm?: Norm<T>;
  ffnNorm: Norm<T>;
  ffn: FfnWeights<T>;
  postFfnNorm?: Norm<T>;
}

export interface GemmaWeights<T = Handle> {
  tokenEmbd: T;
  layers: Layer<T>[];
  outputNorm: Norm<T>;
  output: Linear<T>;
}

const hf: HFMapping = {
  classes: ['GemmaForCausalLM', 'Gemma2ForCausalLM', 'Gemma3ForCausalLM'],
  convert(h) {
    const cls = h.raw('architectures')[0] as string;
    const version = cls === 'GemmaForCausalLM' ? 1 : cls === 'Gemma2ForCausalLM' ? 2 : 3;
    h.arch(version === 1 ? 'gemma' : `gemma${version}`);
    h.activation(['hidden_activation', 'hidden_act'], { gelu_pytorch_tanh: 'gelu', gelu: 'gelu' });
    const { nLayers, headDim } = h.standard();
    h.rope(headDim, headDim, version === 3 ? ['linear'] : []);
    h.f32('attention.layer_norm_rms_epsilon', h.num('rms_norm_eps', 1e-6));
    if (version >= 2) {
      h.f32('attention.scale', 1 / Math.sqrt(h.num('query_pre_attn_scalar', headDim)));
      h.u32('attention.sliding_window', h.int('sliding_window', 4096));
      const types = h.raw('layer_types');
      const pattern = Array.isArray(types) ? types.map((t: string) => t === 'sliding_attention') : Array.from({ length: nLayers }, (_, l) => (l + 1) % h.int('sliding_window_pattern', version === 2 ? 2 : 6) !== 0);
      if (pattern.length !== nLayers) throw new ModelFormatError(h.source, `"layer_types" lists ${pattern.length} layers, the model has ${nLayers}`);
      h.set('attention.sliding_window_pattern', gguf.bools(pattern)); // which layers are local
    }
    if (version === 2) {
      h.f32('attn_logit_softcapping', h.num('attn_logit_softcapping', 50));
      h.f32('final_logit_softcapping', h.num('final_logit_softcapping', 30));
    }
    if (version === 3) {
      h.f32('rope.freq_base_swa', h.num('rope_local_base_freq', 10000));
      if (h.has('final_logit_softcapping')) h.f32('final_logit_softcapping', h.num('final_logit_softcapping'));
      if (h.has('attn_logit_softcapping')) h.f32('attn_logit_softcapping', h.num('attn_logit_softcapping'));
    }
    h.map('token_embd.weight', 'model.embed_tokens.weight');
    for (let l = 0; l < nLayers; l++) {
      const [p, q] = [`blk.${l}.`, `model.layers.${l}.`];
      h.map(p + 'attn_norm.weight', q + 'input_layernorm.weight', plusOne);
      for (const [to, from] of [['attn_q', 'q_proj'], ['attn_k', 'k_proj'], ['attn_v', 'v_proj'], ['attn_output', 'o_proj']]) h.map(`${p}${to}.weight`, `${q}self_attn.${from}.weight`);
      if (version === 3) {
        h.map(p + 'attn_q_norm.weight', q + 'self_attn.q_norm.weight', plusOne);
        h.map(p + 'attn_k_norm.weight', q + 'self_attn.k_norm.weight', plusOne);
      }
      if (version === 1) h.map(p + 'ffn_norm.weight', q + 'post_attention_layernorm.weight', plusOne);
      else {
        h.map(p + 'post_attention_norm.weight', q + 'post_attention_layernorm.weight', plusOne);
        h.map(p + 'ffn_norm.weight', q + 'pre_feedforward_layernorm.weight', plusOne);
        h.map(p + 'post_ffw_norm.weight', q + 'post_feedforward_layernorm.weight', plusOne);
      }
      h.map(p + 'ffn_gate.weight', q + 'mlp.gate_proj.weight');
      h.map(p + 'ffn_up.weight', q + 'mlp.up_proj.weight');
      h.map(p + 'ffn_down.weight', q + 'mlp.down_proj.weight');
    }
    h.map('output_norm.weight', 'model.norm.weight', plusOne);
    h.ignore(/^lm_head\.weight$|rotary_emb\.inv_freq$/); // the head is the embedding
  },
};

export const gemma: Architecture<GemmaConfig, GemmaWeights> = {
  family: 'gemma',
  gguf: ['gemma', 'gemma2', 'gemma3'],
  hf,

  config(file: ModelFile): GemmaConfig {
    const c = baseConfig(file, 'gemma', embeddingRows(file));
    const h = c.hyper;
    const version = c.architecture === 'gemma' ? 1 : c.architecture === 'gemma2' ? 2 : 3;
    const rope = ropeParams(file, h, c.headDim, 'neox');
    const localRope = version === 3 ? ropeParams(file, h, c.headDim, 'neox', { base: h.positive('rope.freq_base_swa', 10000), scaled: false }) : rope;
    // llama.cpp's scale where the file does not state it: the 27B models (46 or 62 layers) use dim / heads.
    const big = (version === 2 && c.nLayers === 46) || (version === 3 && c.nLayers === 62);
    const scale = version === 1 ? 1 / Math.sqrt(c.headDim) : h.positive('attention.scale') ?? 1 / Math.sqrt(big ? c.dim / c.nHeads : c.headDim);
    const window = version === 1 ? undefined : h.size('attention.sliding_window', version === 2 ? 4096 : undefined);
    const pattern = metaArray(file, `${c.architecture}.attention.sliding_window_pattern`);
    const local = Array.from({ length: c.nLayers }, (_, l) => {
      if (version === 1) return false;
      if (pattern) {
        if (pattern.length !== c.nLayers || pattern.some((v) => typeof v !== 'boolean')) throw new ModelFormatError(file.source, `metadata "${c.architecture}.attention.sliding_window_pattern" must list a true/false per layer (${c.nLayers})`);
        return pattern[l] as boolean;
      }
      return (l + 1) % (version === 2 ? 2 : 6) !== 0; // llama.cpp's fixed patterns
    });
    const attnSoftcap = version === 2 ? h.positive('attn_logit_softcapping', 50) : h.positive('attn_logit_softcapping');
    const finalSoftcap = version === 2 ? h.positive('final_logit_softcapping', 30) : h.positive('final_logit_softcapping');
    const traits = [
      `Gemma ${version}: embedding scaled by sqrt(dim), GeGLU (tanh GELU)`,
      ropeTrait(rope) + (version === 3 ? `; local layers: base ${localRope.theta}` : ''),
      ...(version >= 2 ? [`post-attention and post-FFN RMSNorms; attention scale ${Number(scale.toPrecision(6))}`] : []),
      ...(window ? [`sliding window ${window} on ${local.filter(Boolean).length} of ${c.nLayers} layers`] : []),
      ...(attnSoftcap ? [`attention soft-cap ${attnSoftcap}`] : []),
      ...(finalSoftcap ? [`final logit soft-cap ${finalSoftcap}`] : []),
      ...(version === 3 ? ['per-head q/k RMSNorm'] : []),
    ];
    return { ...c, version, eps: h.positive('attention.layer_norm_rms_epsilon', 1e-6)!, rope, localRope, scale, attnSoftcap, finalSoftcap, window, local, traits };
  },

  weights<T extends Handle>(read: WeightReader<T>, c: GemmaConfig): GemmaWeights<T> {
    const tokenEmbd = read.matrix('token_embd.weight', c.vocabSize, c.dim);
    const post = (name: string) => (c.version >= 2 ? read.rmsNorm(name, c.dim, c.eps) : undefined);
    return {
      tokenEmbd,
      layers: Array.from({ length: c.nLayers }, (_, l) => {
        const p = `blk.${l}.`;
        return {
          attnNorm: read.rmsNorm(p + 'attn_norm', c.dim, c.eps),
          attn: read.attention(p, c),
          postAttnNorm: post(p + 'post_attention_norm'),
          ffnNorm: read.rmsNorm(p + 'ffn_norm', c.dim, c.eps),
          ffn: read.ffn(p, c.dim, c.hiddenDim, 'gelu'),
          postFfnNorm: post(p + 'post_ffw_norm'),
        };
      }),
      outputNorm: read.rmsNorm('output_norm', c.dim, c.eps),
      output: read.head(c.vocabSize, c.dim, tokenEmbd),
    };
  },

  forward(f, c) {
    const w = f.w;
    f.embed(f.x, w.tokenEmbd, { scale: Math.sqrt(c.dim) });                       // x = E[tokens] * sqrt(dim)
    for (let l = 0; l < c.nLayers; l++) {
      const L = w.layers[l]!;
      const local = c.local[l]!;
      const attend = { rope: local ? c.localRope : c.rope, scale: c.scale, softcap: c.attnSoftcap, window: local ? c.window : undefined };
      f.norm(f.h, f.x, L.attnNorm);                                               // h = rmsnorm(x)
      if (L.postAttnNorm) {
        f.attention(l, f.o, f.h, L.attn, attend);                                 // o = Wo attn(rope(Wq h), rope(Wk h), Wv h)
        f.norm(f.h, f.o, L.postAttnNorm);                                         // x += rmsnorm(o)
        f.add(f.x, f.h);
      } else f.attention(l, f.x, f.h, L.attn, { ...attend, add: true });          // x += o
      f.norm(f.h, f.x, L.ffnNorm);                                                // h = rmsnorm(x)
      if (L.postFfnNorm) {
        f.ffn(f.o, f.h, L.ffn);                                                   // o = Wdown (gelu(Wgate h) * Wup h)
        f.norm(f.h, f.o, L.postFfnNorm);                                          // x += rmsnorm(o)
        f.add(f.x, f.h);
      } else f.ffn(f.x, f.h, L.ffn, { add: true });                               // x += o
    }
    gemma.unembed!(f, c, f.logitRows(f.x));
  },

  unembed(f, c, x) {
    f.norm(f.h, x, f.w.outputNorm);                                               // logits = E rmsnorm(x), soft-capped
    f.logits(f.h, f.w.output, { softcap: c.finalSoftcap });
  },
};
