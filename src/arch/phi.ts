// Phi-2 and Phi-3 / Phi-3.5 mini, one file, the versions as options:
//
//   Phi-2 (parallel attention and MLP from one LayerNorm, biases everywhere):
//     x = E[tokens]
//     for each layer:
//       h = layernorm(x)                                      (with bias)
//       x += Wo attention(rope(Wq h), rope(Wk h), Wv h)          q/k/v may be one fused matrix
//       x += W2 gelu(W1 h)                                     the same h: attention and MLP in parallel
//     logits = Wout layernorm(x) + bout
//   Phi-3 (Llama's sequence of blocks, with fused matrices):
//     x = E[tokens]
//     for each layer:
//       h = rmsnorm(x);  x += Wo attention(rope(q), rope(k), v), [q; k; v] = Wqkv h
//       h = rmsnorm(x);  x += Wdown (silu(g) * u), [g; u] = Wgate_up h
//     logits = Wout rmsnorm(x)
//
// RoPE on NeoX pairs, partial for Phi-2 (32 of 80 dims) and Phi-4-mini; Phi-3.5's longrope switches
// to its long factors for contexts beyond the original length, and scales cos and sin by its
// attention factor. Fused matrices are used as they are: their row blocks are views, not copies.

import type { Handle } from '../backend/backend.js';
import type { ModelFile } from '../format/model-file.js';
import { baseConfig, embeddingRows, ropeFor, ropeParams, ropeTrait, type ModelConfig, type Rope } from './config.js';
import type { HFMapping } from './hf.js';
import type { Architecture } from './transformer.js';
import type { AttentionWeights, FfnWeights, Linear, Norm, WeightReader } from './weights.js';

export interface PhiConfig extends ModelConfig {
  version: 2 | 3;
  eps: number;
  rope: Rope;
  window?: number;
}

interface Layer<T> {
  attnNorm: Norm<T>;
  attn: AttentionWeights<T>;
  /** Phi-3 only: Phi-2's MLP reads the attention's normed input. */
  ffnNorm?: Norm<T>;
  ffn: FfnWeights<T>;
}

export interface PhiWeights<T = Handle> {
  tokenEmbd: T;
  layers: Layer<T>[];
  outputNorm: Norm<T>;
  output: Linear<T>;
}

const hf: HFMapping = {
  classes: ['PhiForCausalLM', 'Phi3ForCausalLM'],
  convert(h) {
    const phi3 = h.raw('architectures')[0] === 'Phi3ForCausalLM';
    h.arch(phi3 ? 'phi3' : 'phi2');
    const heads = h.int('num_attention_heads');
    const headDim = h.int('head_dim', h.int('hidden_size') / heads);
    const ropeDims = 2 * Math.floor((h.num('partial_rotary_factor', 1) * headDim) / 2);
    const { nLayers } = h.standard({ ropeDims });
    h.rope(headDim, ropeDims, phi3 ? ['longrope', 'linear'] : []);
    const prefix = (l: number) => [`blk.${l}.`, `model.layers.${l}.`] as const;
    h.map('token_embd.weight', 'model.embed_tokens.weight');
    if (!phi3) {
      h.activation(['hidden_act'], { gelu_new: 'gelu', gelu_pytorch_tanh: 'gelu', gelu_fast: 'gelu' });
      h.f32('attention.layer_norm_epsilon', h.num('layer_norm_eps', 1e-5));
      for (let l = 0; l < nLayers; l++) {
        const [p, q] = prefix(l);
        for (const b of ['weight', 'bias']) {
          h.map(`${p}attn_norm.${b}`, `${q}input_layernorm.${b}`);
          for (const [to, from] of [['attn_q', 'q_proj'], ['attn_k', 'k_proj'], ['attn_v', 'v_proj'], ['attn_output', 'dense']]) h.map(`${p}${to}.${b}`, `${q}self_attn.${from}.${b}`);
          h.map(`${p}ffn_up.${b}`, `${q}mlp.fc1.${b}`);
          h.map(`${p}ffn_down.${b}`, `${q}mlp.fc2.${b}`);
        }
      }
      for (const b of ['weight', 'bias']) {
        h.map(`output_norm.${b}`, `model.final_layernorm.${b}`);
        h.map(`output.${b}`, `lm_head.${b}`);
      }
    } else {
      h.activation(['hidden_act'], { silu: 'silu' });
      h.f32('attention.layer_norm_rms_epsilon', h.num('rms_norm_eps', 1e-5));
      if (h.has('sliding_window')) h.u32('attention.sliding_window', h.int('sliding_window'));
      for (let l = 0; l < nLayers; l++) {
        const [p, q] = prefix(l);
        h.map(p + 'attn_norm.weight', q + 'input_layernorm.weight');
        h.map(p + 'attn_qkv.weight', q + 'self_attn.qkv_proj.weight');
        h.map(p + 'attn_output.weight', q + 'self_attn.o_proj.weight');
        h.map(p + 'ffn_norm.weight', q + 'post_attention_layernorm.weight');
        h.map(p + 'ffn_up.weight', q + 'mlp.gate_up_proj.weight'); // gate rows, then up rows
        h.map(p + 'ffn_down.weight', q + 'mlp.down_proj.weight');
      }
      h.map('output_norm.weight', 'model.norm.weight');
      h.map('output.weight', 'lm_head.weight', undefined, true);
    }
    h.ignore(/rotary_emb\.(inv_freq|long_inv_freq|short_inv_freq)$/);
  },
};

export const phi: Architecture<PhiConfig, PhiWeights> = {
  family: 'phi',
  gguf: ['phi2', 'phi3'],
  hf,

  config(file: ModelFile): PhiConfig {
    const c = baseConfig(file, 'phi', embeddingRows(file));
    const h = c.hyper;
    const version = c.architecture === 'phi2' ? 2 : 3;
    const rope = ropeParams(file, h, c.headDim, 'neox');
    const eps = version === 2 ? h.positive('attention.layer_norm_epsilon', 1e-5)! : h.positive('attention.layer_norm_rms_epsilon', 1e-5)!;
    const window = version === 3 ? h.number('attention.sliding_window') || undefined : undefined;
    const traits = version === 2
      ? ['Phi-2: LayerNorm with bias, attention and MLP in parallel from one norm, GELU (tanh), biases everywhere, output head with bias', ropeTrait(rope)]
      : ['Phi-3: fused q/k/v and gate/up matrices (used as views), RMSNorm, SwiGLU', ropeTrait(rope), ...(window ? [`sliding window ${window}`] : [])];
    return { ...c, version, eps, rope, window, traits };
  },

  weights<T extends Handle>(read: WeightReader<T>, c: PhiConfig): PhiWeights<T> {
    const norm = (name: string) => (c.version === 2 ? read.layerNorm(name, c.dim, c.eps) : read.rmsNorm(name, c.dim, c.eps));
    const tokenEmbd = read.matrix('token_embd.weight', c.vocabSize, c.dim);
    return {
      tokenEmbd,
      layers: Array.from({ length: c.nLayers }, (_, l) => {
        const p = `blk.${l}.`;
        return {
          attnNorm: norm(p + 'attn_norm'),
          attn: read.attention(p, c),
          ffnNorm: c.version === 3 ? norm(p + 'ffn_norm') : undefined,
          ffn: read.ffn(p, c.dim, c.hiddenDim, c.version === 2 ? 'gelu' : 'silu'),
        };
      }),
      outputNorm: norm('output_norm'),
      output: read.head(c.vocabSize, c.dim, tokenEmbd),
    };
  },

  forward(f, c) {
    const w = f.w;
    const rope = ropeFor(c.rope, f.contextLength);                               // longrope: short or long factors
    f.embed(f.x, w.tokenEmbd);                                                     // x = E[tokens]
    for (let l = 0; l < c.nLayers; l++) {
      const L = w.layers[l]!;
      f.norm(f.h, f.x, L.attnNorm);                                                // h = norm(x)
      f.attention(l, f.x, f.h, L.attn, { rope, window: c.window, add: true });     // x += Wo attn(rope(q), rope(k), v)
      if (L.ffnNorm) f.norm(f.h, f.x, L.ffnNorm);                                  // Phi-3: h = rmsnorm(x); Phi-2 keeps h
      f.ffn(f.x, f.h, L.ffn, { add: true });                                       // x += W2 gelu(W1 h) | Wdown (silu(g) * u)
    }
    phi.unembed!(f, c, f.logitRows(f.x));
  },

  unembed(f, _c, x) {
    f.norm(f.h, x, f.w.outputNorm);                                                // logits = Wout norm(x) (+ b)
    f.logits(f.h, f.w.output);
  },
};
