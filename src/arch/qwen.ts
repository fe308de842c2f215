// Qwen2 / Qwen2.5 and Qwen3: Llama's computation (src/arch/llama.ts's forward, shared), with
//   RoPE on NeoX pairs (v[i], v[i + headDim/2]) instead of interleaved ones;
//   Qwen2: biases on the q, k and v projections (read where the file has them);
//   Qwen3: no biases, but a per-head RMSNorm of q and of k (weights [headDim]) before RoPE.
// Both mostly tie the output head to the embedding (0.5B-class models), a 151936-row vocabulary.

import type { ModelFile } from '../format/model-file.js';
import { UnsupportedModelError } from '../base/errors.js';
import { baseConfig, embeddingRows, ropeParams, ropeTrait } from './config.js';
import type { HFMapping } from './hf.js';
import { llama, type LlamaConfig, type LlamaWeights } from './llama.js';
import type { Architecture } from './transformer.js';

const hf: HFMapping = {
  classes: ['Qwen2ForCausalLM', 'Qwen3ForCausalLM'],
  convert(h) {
    const qwen3 = h.raw('architectures')[0] === 'Qwen3ForCausalLM';
    h.arch(qwen3 ? 'qwen3' : 'qwen2');
    if (h.bool('use_sliding_window', false)) throw new UnsupportedModelError(h.source, 'use_sliding_window: true (Qwen2 sliding windows per max_window_layers) is not supported');
    const { nLayers, headDim } = h.standard();
    h.rope(headDim, headDim, ['linear']);
    h.f32('attention.layer_norm_rms_epsilon', h.num('rms_norm_eps', 1e-6));
    h.map('token_embd.weight', 'model.embed_tokens.weight');
    for (let l = 0; l < nLayers; l++) {
      const [p, q] = [`blk.${l}.`, `model.layers.${l}.`];
      h.map(p + 'attn_norm.weight', q + 'input_layernorm.weight');
      for (const [to, from] of [['attn_q', 'q_proj'], ['attn_k', 'k_proj'], ['attn_v', 'v_proj'], ['attn_output', 'o_proj']]) {
        h.map(`${p}${to}.weight`, `${q}self_attn.${from}.weight`);
        // Qwen2 has q/k/v biases; Qwen3 only with attention_bias (and then on the output too).
        const bias = qwen3 ? h.bool('attention_bias', false) : to !== 'attn_output';
        if (bias) h.map(`${p}${to}.bias`, `${q}self_attn.${from}.bias`);
      }
      h.map(p + 'attn_q_norm.weight', q + 'self_attn.q_norm.weight', undefined, !qwen3);
      h.map(p + 'attn_k_norm.weight', q + 'self_attn.k_norm.weight', undefined, !qwen3);
      h.map(p + 'ffn_norm.weight', q + 'post_attention_layernorm.weight');
      h.map(p + 'ffn_gate.weight', q + 'mlp.gate_proj.weight');
      h.map(p + 'ffn_up.weight', q + 'mlp.up_proj.weight');
      h.map(p + 'ffn_down.weight', q + 'mlp.down_proj.weight');
    }
    h.map('output_norm.weight', 'model.norm.weight');
    h.map('output.weight', 'lm_head.weight', undefined, true);
    h.ignore(/rotary_emb\.inv_freq$/);
  },
};

export const qwen: Architecture<LlamaConfig, LlamaWeights> = {
  family: 'qwen',
  gguf: ['qwen2', 'qwen3'],
  hf,

  config(file: ModelFile): LlamaConfig {
    const c = baseConfig(file, 'qwen', embeddingRows(file));
    const h = c.hyper;
    const rope = ropeParams(file, h, c.headDim, 'neox');
    const traits = [
      ropeTrait(rope),
      ...(file.tensors.has('blk.0.attn_q.bias') ? ['q/k/v biases'] : []),
      ...(file.tensors.has('blk.0.attn_q_norm.weight') ? ['per-head q/k RMSNorm'] : []),
      file.tensors.has('output.weight') ? 'separate output head' : 'output head tied to the embedding',
    ];
    return { ...c, eps: h.positive('attention.layer_norm_rms_epsilon', 1e-6)!, rope, traits, attnBias: c.architecture === 'qwen2' ? 'required' : undefined };
  },

  weights: llama.weights,
  forward: llama.forward,
  unembed: llama.unembed,
};
