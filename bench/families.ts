// Random-weight Hugging Face folders (config.json, model.safetensors, tokenizer files) for every family
// pocketlm runs, each shaped after a real model's config (its head size, GQA ratio, partial rotary,
// biases, norms, soft-caps, windows), scaled down in width, depth and vocabulary so that the
// correctness tests run in seconds; `scale: 'real'` keeps the real widths for the benchmarks.
// Written by our own safetensors writer. Weights are drawn so that logits are peaked (logit standard
// deviation about 4): the top-1 token then means something when two engines are compared.
//
// Tokenizers come from ../shared: SentencePiece families get a tokenizer.json in Hugging Face's
// converted form built from the Llama 2 vocabulary (Gemma's without the prepended space), byte-level
// BPE families a truncated SmolLM2 tokenizer.json, OPT the same as GPT-2's vocab.json + merges.txt.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { GGMLType, f32ToBF16, f32ToF16 } from '../src/base/tensor.js';
import { parseGGUF, metaArray } from '../src/format/gguf.js';
import { serializeSafetensors } from '../src/format/safetensors.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;

export type TokenizerKind = 'spm' | 'spm-gemma' | 'bpe' | 'gpt2-files' | 'wordpiece';
/** What a tensor is, which sets how its random values are drawn. */
type Kind = 'matrix' | 'embed' | 'head' | 'norm' | 'norm0' | 'bias' | 'position';

export interface Family {
  /** Short id: llama3, mistral, qwen2, qwen3, gemma, gemma2, gemma3, phi2, phi3, gpt2, gptneox, opt, opt-350m. */
  id: string;
  /** The real model whose config it follows. */
  seed: string;
  /** GGUF general.architecture of its conversion (llama.cpp runs all but OPT). */
  arch: string;
  tokenizer: TokenizerKind;
  /** config.json for a vocabulary of `vocab` tokens; `scale` 'tiny' (tests) or 'real' (benchmarks). */
  config(vocab: number, scale: 'tiny' | 'real'): Json;
  /** The tensors: Hugging Face name, PyTorch shape (outermost first), kind. */
  tensors(c: Json): [string, number[], Kind][];
  /** Special tokens the family's vocabulary adds after the base one (llama.cpp's phi3 requires <|endoftext|>). */
  added?: string[];
  /** Embedding rows beyond the tokenizer's tokens (real checkpoints pad: Phi-3 32064 for 32011 tokens). */
  pad?: number;
  /**
   * config.json changes under which llama.cpp computes the same model, where it ignores an option:
   * the sliding window of `llama` files (Mistral) and of Phi-3 (llama.cpp turns Phi's off), Gemma 2's
   * query_pre_attn_scalar (llama.cpp uses the head size except for the 27B model).
   */
  llamaCpp?: Json;
  /** Files besides config, weights and tokenizer (sentence-transformers' 1_Pooling/config.json). */
  extra?: Record<string, string>;
}

const pick = (scale: 'tiny' | 'real', tiny: Json, real: Json) => (scale === 'tiny' ? tiny : real);

// --- the standard layouts ---

function llamaTensors(c: Json, o: { qkBias?: boolean; qkNorm?: boolean; gemma?: 1 | 2 | 3 } = {}): [string, number[], Kind][] {
  const D = c.hidden_size, F = c.intermediate_size, H = c.num_attention_heads, KV = c.num_key_value_heads ?? H, hd = c.head_dim ?? D / H, V = c.vocab_size;
  const norm: Kind = o.gemma ? 'norm0' : 'norm';
  const t: [string, number[], Kind][] = [['model.embed_tokens.weight', [V, D], c.tie_word_embeddings === false ? 'embed' : 'head']];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    t.push([p + 'input_layernorm.weight', [D], norm]);
    t.push([p + 'self_attn.q_proj.weight', [H * hd, D], 'matrix'], [p + 'self_attn.k_proj.weight', [KV * hd, D], 'matrix'], [p + 'self_attn.v_proj.weight', [KV * hd, D], 'matrix'], [p + 'self_attn.o_proj.weight', [D, H * hd], 'matrix']);
    if (o.qkBias) t.push([p + 'self_attn.q_proj.bias', [H * hd], 'bias'], [p + 'self_attn.k_proj.bias', [KV * hd], 'bias'], [p + 'self_attn.v_proj.bias', [KV * hd], 'bias']);
    if (o.qkNorm) t.push([p + 'self_attn.q_norm.weight', [hd], norm], [p + 'self_attn.k_norm.weight', [hd], norm]);
    if (o.gemma && o.gemma >= 2) t.push([p + 'pre_feedforward_layernorm.weight', [D], norm], [p + 'post_feedforward_layernorm.weight', [D], norm]);
    t.push([p + 'post_attention_layernorm.weight', [D], norm]);
    t.push([p + 'mlp.gate_proj.weight', [F, D], 'matrix'], [p + 'mlp.up_proj.weight', [F, D], 'matrix'], [p + 'mlp.down_proj.weight', [D, F], 'matrix']);
  }
  t.push(['model.norm.weight', [D], norm]);
  if (c.tie_word_embeddings === false) t.push(['lm_head.weight', [V, D], 'head']);
  return t;
}

export const FAMILIES: Family[] = [
  {
    id: 'llama3', seed: 'Llama-3.2-1B (GQA 4:1, head 64, Llama 3 RoPE scaling, tied head)', arch: 'llama', tokenizer: 'spm',
    config: (V, s) => ({
      architectures: ['LlamaForCausalLM'], vocab_size: V, ...pick(s, { hidden_size: 256, intermediate_size: 768, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 1 }, { hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8 }),
      head_dim: 64, max_position_embeddings: 131072, rms_norm_eps: 1e-5, rope_theta: 500000, tie_word_embeddings: true, hidden_act: 'silu',
      rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    }),
    tensors: (c) => llamaTensors(c),
  },
  {
    id: 'mistral', seed: 'Mistral-7B-v0.1 (GQA 4:1, head 128, sliding window, separate head)', arch: 'llama', tokenizer: 'spm',
    config: (V, s) => ({
      architectures: ['MistralForCausalLM'], vocab_size: V, ...pick(s, { hidden_size: 256, intermediate_size: 896, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 1, sliding_window: 16 }, { hidden_size: 1024, intermediate_size: 3584, num_hidden_layers: 8, num_attention_heads: 8, num_key_value_heads: 2, sliding_window: 4096 }),
      head_dim: 128, max_position_embeddings: 32768, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false, hidden_act: 'silu',
    }),
    tensors: (c) => llamaTensors(c),
    llamaCpp: { sliding_window: 4096 },
  },
  {
    id: 'qwen2', seed: 'Qwen2.5-0.5B (GQA 7:1, head 64, q/k/v biases, NeoX RoPE, tied head)', arch: 'qwen2', tokenizer: 'bpe',
    config: (V, s) => ({
      architectures: ['Qwen2ForCausalLM'], vocab_size: V, ...pick(s, { hidden_size: 448, intermediate_size: 1216, num_hidden_layers: 2 }, { hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24 }),
      num_attention_heads: s === 'tiny' ? 7 : 14, num_key_value_heads: s === 'tiny' ? 1 : 2, max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true, use_sliding_window: false, hidden_act: 'silu',
    }),
    tensors: (c) => llamaTensors(c, { qkBias: true }),
  },
  {
    id: 'qwen3', seed: 'Qwen3-0.6B (GQA 2:1, head 128 > dim/heads, q/k RMSNorm, tied head)', arch: 'qwen3', tokenizer: 'bpe',
    config: (V, s) => ({
      architectures: ['Qwen3ForCausalLM'], vocab_size: V, ...pick(s, { hidden_size: 256, intermediate_size: 768, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 }, { hidden_size: 1024, intermediate_size: 3072, num_hidden_layers: 28, num_attention_heads: 16, num_key_value_heads: 8 }),
      head_dim: 128, max_position_embeddings: 40960, rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true, attention_bias: false, hidden_act: 'silu',
    }),
    tensors: (c) => llamaTensors(c, { qkNorm: true }),
  },
  {
    id: 'gemma', seed: 'Gemma-2B (MQA, head 256, GeGLU, sqrt(dim) embedding scale, tied head)', arch: 'gemma', tokenizer: 'spm-gemma',
    config: (V, s) => ({
      architectures: ['GemmaForCausalLM'], vocab_size: V, ...pick(s, { hidden_size: 256, intermediate_size: 1024, num_hidden_layers: 2, num_attention_heads: 2 }, { hidden_size: 2048, intermediate_size: 16384, num_hidden_layers: 18, num_attention_heads: 8 }),
      num_key_value_heads: 1, head_dim: 256, max_position_embeddings: 8192, rms_norm_eps: 1e-6, rope_theta: 10000, hidden_activation: 'gelu_pytorch_tanh', tie_word_embeddings: true,
    }),
    tensors: (c) => llamaTensors(c, { gemma: 1 }),
  },
  {
    id: 'gemma2', seed: 'Gemma-2-2B (GQA 2:1, post-norms, soft-caps, alternating sliding window)', arch: 'gemma2', tokenizer: 'spm-gemma',
    config: (V, s) => ({
      architectures: ['Gemma2ForCausalLM'], vocab_size: V, ...pick(s, { hidden_size: 256, intermediate_size: 768, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 64, query_pre_attn_scalar: 96, sliding_window: 16, attn_logit_softcapping: 4, final_logit_softcapping: 6 }, { hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26, num_attention_heads: 8, num_key_value_heads: 4, head_dim: 256, query_pre_attn_scalar: 256, sliding_window: 4096, attn_logit_softcapping: 50, final_logit_softcapping: 30 }),
      max_position_embeddings: 8192, rms_norm_eps: 1e-6, rope_theta: 10000, hidden_activation: 'gelu_pytorch_tanh', tie_word_embeddings: true,
    }),
    tensors: (c) => llamaTensors(c, { gemma: 2 }),
    llamaCpp: { query_pre_attn_scalar: 64 },
  },
  {
    id: 'gemma3', seed: 'Gemma-3-270m (MQA, head 256, q/k norms, 5 local : 1 global layers, local RoPE base)', arch: 'gemma3', tokenizer: 'spm-gemma',
    config: (V, s) => ({
      architectures: ['Gemma3ForCausalLM'], vocab_size: V, ...pick(s, { hidden_size: 256, intermediate_size: 512, num_hidden_layers: 6, num_attention_heads: 4, head_dim: 64, query_pre_attn_scalar: 64, sliding_window: 16 }, { hidden_size: 640, intermediate_size: 2048, num_hidden_layers: 18, num_attention_heads: 4, head_dim: 256, query_pre_attn_scalar: 256, sliding_window: 512 }),
      num_key_value_heads: 1, max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1000000, rope_local_base_freq: 10000, sliding_window_pattern: 6, hidden_activation: 'gelu_pytorch_tanh', tie_word_embeddings: true, final_logit_softcapping: null, attn_logit_softcapping: null,
    }),
    tensors: (c) => llamaTensors(c, { gemma: 3, qkNorm: true }),
  },
  {
    id: 'phi2', seed: 'Phi-2 (head 80, partial rotary 40%, parallel attention + MLP, biases, head bias)', arch: 'phi2', tokenizer: 'bpe',
    config: (V, s) => ({
      architectures: ['PhiForCausalLM'], vocab_size: V, ...pick(s, { hidden_size: 320, intermediate_size: 1280, num_hidden_layers: 2, num_attention_heads: 4 }, { hidden_size: 2560, intermediate_size: 10240, num_hidden_layers: 32, num_attention_heads: 32 }),
      partial_rotary_factor: 0.4, max_position_embeddings: 2048, layer_norm_eps: 1e-5, rope_theta: 10000, hidden_act: 'gelu_new', tie_word_embeddings: false,
    }),
    tensors: (c) => {
      const D = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
      const t: [string, number[], Kind][] = [['model.embed_tokens.weight', [V, D], 'embed']];
      for (let l = 0; l < c.num_hidden_layers; l++) {
        const p = `model.layers.${l}.`;
        t.push([p + 'input_layernorm.weight', [D], 'norm'], [p + 'input_layernorm.bias', [D], 'bias']);
        for (const m of ['q_proj', 'k_proj', 'v_proj', 'dense']) t.push([`${p}self_attn.${m}.weight`, [D, D], 'matrix'], [`${p}self_attn.${m}.bias`, [D], 'bias']);
        t.push([p + 'mlp.fc1.weight', [F, D], 'matrix'], [p + 'mlp.fc1.bias', [F], 'bias'], [p + 'mlp.fc2.weight', [D, F], 'matrix'], [p + 'mlp.fc2.bias', [D], 'bias']);
      }
      t.push(['model.final_layernorm.weight', [D], 'norm'], ['model.final_layernorm.bias', [D], 'bias'], ['lm_head.weight', [V, D], 'head'], ['lm_head.bias', [V], 'bias']);
      return t;
    },
  },
  {
    id: 'phi3', seed: 'Phi-3-mini-4k (fused qkv and gate/up, RMSNorm, SwiGLU, sliding window)', arch: 'phi3', tokenizer: 'spm',
    config: (V, s) => ({
      architectures: ['Phi3ForCausalLM'], vocab_size: V, ...pick(s, { hidden_size: 256, intermediate_size: 512, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 4, sliding_window: 16 }, { hidden_size: 3072, intermediate_size: 8192, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, sliding_window: 2047 }),
      max_position_embeddings: 4096, original_max_position_embeddings: 4096, rms_norm_eps: 1e-5, rope_theta: 10000, rope_scaling: null, hidden_act: 'silu', tie_word_embeddings: false,
    }),
    tensors: (c) => {
      const D = c.hidden_size, F = c.intermediate_size, H = c.num_attention_heads, KV = c.num_key_value_heads, hd = D / H, V = c.vocab_size;
      const t: [string, number[], Kind][] = [['model.embed_tokens.weight', [V, D], 'embed']];
      for (let l = 0; l < c.num_hidden_layers; l++) {
        const p = `model.layers.${l}.`;
        t.push([p + 'input_layernorm.weight', [D], 'norm'], [p + 'self_attn.qkv_proj.weight', [(H + 2 * KV) * hd, D], 'matrix'], [p + 'self_attn.o_proj.weight', [D, D], 'matrix']);
        t.push([p + 'post_attention_layernorm.weight', [D], 'norm'], [p + 'mlp.gate_up_proj.weight', [2 * F, D], 'matrix'], [p + 'mlp.down_proj.weight', [D, F], 'matrix']);
      }
      t.push(['model.norm.weight', [D], 'norm'], ['lm_head.weight', [V, D], 'head']);
      return t;
    },
    added: ['<|endoftext|>', '<|assistant|>', '<|placeholder1|>', '<|placeholder2|>', '<|placeholder3|>', '<|placeholder4|>', '<|system|>', '<|end|>', '<|placeholder5|>', '<|placeholder6|>', '<|user|>'],
    pad: 5,
    llamaCpp: { sliding_window: 2047 },
  },
  {
    id: 'gpt2', seed: 'Cerebras-GPT-111M / GPT-2 (learned positions, Conv1D weights, tied head)', arch: 'gpt2', tokenizer: 'bpe',
    config: (V, s) => ({
      architectures: ['GPT2LMHeadModel'], vocab_size: V, ...pick(s, { n_embd: 128, n_layer: 2, n_head: 4 }, { n_embd: 768, n_layer: 10, n_head: 12 }),
      n_positions: 2048, n_inner: null, layer_norm_epsilon: 1e-5, activation_function: 'gelu_new', tie_word_embeddings: true,
    }),
    tensors: (c) => {
      const D = c.n_embd, F = c.n_inner ?? 4 * D, V = c.vocab_size;
      const t: [string, number[], Kind][] = [['transformer.wte.weight', [V, D], 'head'], ['transformer.wpe.weight', [c.n_positions, D], 'position']];
      for (let l = 0; l < c.n_layer; l++) {
        const p = `transformer.h.${l}.`;
        t.push([p + 'ln_1.weight', [D], 'norm'], [p + 'ln_1.bias', [D], 'bias'], [p + 'attn.c_attn.weight', [D, 3 * D], 'matrix'], [p + 'attn.c_attn.bias', [3 * D], 'bias'], [p + 'attn.c_proj.weight', [D, D], 'matrix'], [p + 'attn.c_proj.bias', [D], 'bias']);
        t.push([p + 'ln_2.weight', [D], 'norm'], [p + 'ln_2.bias', [D], 'bias'], [p + 'mlp.c_fc.weight', [D, F], 'matrix'], [p + 'mlp.c_fc.bias', [F], 'bias'], [p + 'mlp.c_proj.weight', [F, D], 'matrix'], [p + 'mlp.c_proj.bias', [D], 'bias']);
      }
      t.push(['transformer.ln_f.weight', [D], 'norm'], ['transformer.ln_f.bias', [D], 'bias']);
      return t;
    },
  },
  {
    id: 'gptneox', seed: 'Pythia-160m (rotary 25%, parallel residual, exact GELU, separate head)', arch: 'gptneox', tokenizer: 'bpe',
    config: (V, s) => ({
      architectures: ['GPTNeoXForCausalLM'], vocab_size: V, ...pick(s, { hidden_size: 256, intermediate_size: 1024, num_hidden_layers: 2, num_attention_heads: 4 }, { hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12 }),
      rotary_pct: 0.25, rotary_emb_base: 10000, max_position_embeddings: 2048, layer_norm_eps: 1e-5, use_parallel_residual: true, hidden_act: 'gelu', tie_word_embeddings: false,
    }),
    tensors: (c) => {
      const D = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
      const t: [string, number[], Kind][] = [['gpt_neox.embed_in.weight', [V, D], 'embed']];
      for (let l = 0; l < c.num_hidden_layers; l++) {
        const p = `gpt_neox.layers.${l}.`;
        t.push([p + 'input_layernorm.weight', [D], 'norm'], [p + 'input_layernorm.bias', [D], 'bias'], [p + 'post_attention_layernorm.weight', [D], 'norm'], [p + 'post_attention_layernorm.bias', [D], 'bias']);
        t.push([p + 'attention.query_key_value.weight', [3 * D, D], 'matrix'], [p + 'attention.query_key_value.bias', [3 * D], 'bias'], [p + 'attention.dense.weight', [D, D], 'matrix'], [p + 'attention.dense.bias', [D], 'bias']);
        t.push([p + 'mlp.dense_h_to_4h.weight', [F, D], 'matrix'], [p + 'mlp.dense_h_to_4h.bias', [F], 'bias'], [p + 'mlp.dense_4h_to_h.weight', [D, F], 'matrix'], [p + 'mlp.dense_4h_to_h.bias', [D], 'bias']);
      }
      t.push(['gpt_neox.final_layer_norm.weight', [D], 'norm'], ['gpt_neox.final_layer_norm.bias', [D], 'bias'], ['embed_out.weight', [V, D], 'head']);
      return t;
    },
  },
  ...(['opt', 'opt-350m'] as const).map((id): Family => ({
    id, seed: id === 'opt' ? 'OPT-125m (learned positions + 2, pre-norm, ReLU, tied head)' : 'OPT-350m (post-norm, 512-wide embedding projected to 1024)', arch: 'opt', tokenizer: 'gpt2-files',
    config: (V, s) => ({
      architectures: ['OPTForCausalLM'], vocab_size: V, activation_function: 'relu', max_position_embeddings: 2048, enable_bias: true, layer_norm_elementwise_affine: true, tie_word_embeddings: true,
      ...(id === 'opt'
        ? { ...pick(s, { hidden_size: 128, ffn_dim: 512, num_hidden_layers: 2, num_attention_heads: 4 }, { hidden_size: 768, ffn_dim: 3072, num_hidden_layers: 12, num_attention_heads: 12 }), word_embed_proj_dim: s === 'tiny' ? 128 : 768, do_layer_norm_before: true }
        : { ...pick(s, { hidden_size: 256, ffn_dim: 1024, num_hidden_layers: 2, num_attention_heads: 4 }, { hidden_size: 1024, ffn_dim: 4096, num_hidden_layers: 24, num_attention_heads: 16 }), word_embed_proj_dim: s === 'tiny' ? 128 : 512, do_layer_norm_before: false }),
    }),
    tensors: (c) => {
      const D = c.hidden_size, F = c.ffn_dim, V = c.vocab_size, E = c.word_embed_proj_dim;
      const d = 'model.decoder.';
      const t: [string, number[], Kind][] = [[d + 'embed_tokens.weight', [V, E], 'head'], [d + 'embed_positions.weight', [c.max_position_embeddings + 2, D], 'position']];
      if (E !== D) t.push([d + 'project_in.weight', [D, E], 'matrix'], [d + 'project_out.weight', [E, D], 'matrix']);
      for (let l = 0; l < c.num_hidden_layers; l++) {
        const p = `${d}layers.${l}.`;
        for (const m of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) t.push([`${p}self_attn.${m}.weight`, [D, D], 'matrix'], [`${p}self_attn.${m}.bias`, [D], 'bias']);
        t.push([p + 'self_attn_layer_norm.weight', [D], 'norm'], [p + 'self_attn_layer_norm.bias', [D], 'bias'], [p + 'fc1.weight', [F, D], 'matrix'], [p + 'fc1.bias', [F], 'bias'], [p + 'fc2.weight', [D, F], 'matrix'], [p + 'fc2.bias', [D], 'bias'], [p + 'final_layer_norm.weight', [D], 'norm'], [p + 'final_layer_norm.bias', [D], 'bias']);
      }
      if (c.do_layer_norm_before) t.push([d + 'final_layer_norm.weight', [D], 'norm'], [d + 'final_layer_norm.bias', [D], 'bias']);
      return t;
    },
  })),
];

// --- encoders ---

/** BERT's tensors (Hugging Face names) under `b` ("" for BertModel, "bert." for the heads' classes). */
function bertTensors(c: Json, b: string): [string, number[], Kind][] {
  const D = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  const lin = (name: string, out: number, inp: number): [string, number[], Kind][] => [[`${name}.weight`, [out, inp], 'matrix'], [`${name}.bias`, [out], 'bias']];
  const ln = (name: string, d = D): [string, number[], Kind][] => [[`${name}.weight`, [d], 'norm'], [`${name}.bias`, [d], 'bias']];
  const t: [string, number[], Kind][] = [[`${b}embeddings.word_embeddings.weight`, [V, D], 'embed'], [`${b}embeddings.position_embeddings.weight`, [c.max_position_embeddings, D], 'embed'], [`${b}embeddings.token_type_embeddings.weight`, [c.type_vocab_size, D], 'embed'], ...ln(`${b}embeddings.LayerNorm`)];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `${b}encoder.layer.${l}.`;
    t.push(...lin(p + 'attention.self.query', D, D), ...lin(p + 'attention.self.key', D, D), ...lin(p + 'attention.self.value', D, D), ...lin(p + 'attention.output.dense', D, D), ...ln(p + 'attention.output.LayerNorm'));
    t.push(...lin(p + 'intermediate.dense', F, D), ...lin(p + 'output.dense', D, F), ...ln(p + 'output.LayerNorm'));
  }
  return t;
}

const lin = (name: string, out: number, inp: number): [string, number[], Kind][] => [[`${name}.weight`, [out, inp], 'matrix'], [`${name}.bias`, [out], 'bias']];
const ln = (name: string, d: number): [string, number[], Kind][] => [[`${name}.weight`, [d], 'norm'], [`${name}.bias`, [d], 'bias']];

/**
 * The encoder families (issue 12), tiny-scaled from real configs: MiniLM-L6 (BertModel with
 * sentence-transformers' mean pooling), TinyBERT-4L-312 (its 26-wide heads; masked-LM head), bge-small
 * with a classification head, DistilBERT (masked LM; classification), ALBERT-base (128-wide factorized
 * embedding, one shared layer, tanh GELU; masked LM).
 */
export const ENCODERS: Family[] = [
  {
    id: 'minilm', seed: 'all-MiniLM-L6-v2 (BertModel, mean pooling)', arch: 'bert', tokenizer: 'wordpiece',
    config: (V, s) => ({ architectures: ['BertModel'], model_type: 'bert', vocab_size: V, hidden_act: 'gelu', layer_norm_eps: 1e-12, max_position_embeddings: 512, type_vocab_size: 2, position_embedding_type: 'absolute', ...pick(s, { hidden_size: 96, intermediate_size: 384, num_hidden_layers: 2, num_attention_heads: 3 }, { hidden_size: 384, intermediate_size: 1536, num_hidden_layers: 6, num_attention_heads: 12 }) }),
    tensors: (c) => [...bertTensors(c, ''), ...lin('pooler.dense', c.hidden_size, c.hidden_size)],
    extra: { '1_Pooling/config.json': JSON.stringify({ word_embedding_dimension: 0, pooling_mode_cls_token: false, pooling_mode_mean_tokens: true, pooling_mode_max_tokens: false, pooling_mode_lasttoken: false }) },
  },
  {
    id: 'tinybert-mlm', seed: 'TinyBERT General 4L-312 (26-wide heads) with a masked-LM head', arch: 'bert', tokenizer: 'wordpiece',
    config: (V, s) => ({ architectures: ['BertForMaskedLM'], model_type: 'bert', vocab_size: V, hidden_act: 'gelu', layer_norm_eps: 1e-12, max_position_embeddings: 512, type_vocab_size: 2, ...pick(s, { hidden_size: 156, intermediate_size: 600, num_hidden_layers: 2, num_attention_heads: 6 }, { hidden_size: 312, intermediate_size: 1200, num_hidden_layers: 4, num_attention_heads: 12 }) }),
    tensors: (c) => [...bertTensors(c, 'bert.'), ...lin('cls.predictions.transform.dense', c.hidden_size, c.hidden_size), ...ln('cls.predictions.transform.LayerNorm', c.hidden_size), ['cls.predictions.bias', [c.vocab_size], 'bias']],
  },
  {
    id: 'bge-cls', seed: 'bge-small-en-v1.5 shape with a 3-label classification head', arch: 'bert', tokenizer: 'wordpiece',
    config: (V, s) => ({ architectures: ['BertForSequenceClassification'], model_type: 'bert', vocab_size: V, hidden_act: 'gelu', layer_norm_eps: 1e-12, max_position_embeddings: 512, type_vocab_size: 2, id2label: { 0: 'negative', 1: 'neutral', 2: 'positive' }, ...pick(s, { hidden_size: 128, intermediate_size: 512, num_hidden_layers: 3, num_attention_heads: 4 }, { hidden_size: 384, intermediate_size: 1536, num_hidden_layers: 12, num_attention_heads: 12 }) }),
    tensors: (c) => [...bertTensors(c, 'bert.'), ...lin('bert.pooler.dense', c.hidden_size, c.hidden_size), ...lin('classifier', 3, c.hidden_size)],
  },
  ...(['distilbert-mlm', 'distilbert-cls'] as const).map((id): Family => ({
    id, seed: `DistilBERT-base shape (no token types) with a ${id === 'distilbert-mlm' ? 'masked-LM' : '2-label classification'} head`, arch: 'bert', tokenizer: 'wordpiece',
    config: (V, s) => ({ architectures: [id === 'distilbert-mlm' ? 'DistilBertForMaskedLM' : 'DistilBertForSequenceClassification'], model_type: 'distilbert', vocab_size: V, activation: 'gelu', max_position_embeddings: 512, sinusoidal_pos_embds: false, ...(id === 'distilbert-cls' ? { id2label: { 0: 'NEGATIVE', 1: 'POSITIVE' } } : {}), ...pick(s, { dim: 128, hidden_dim: 512, n_layers: 2, n_heads: 4 }, { dim: 768, hidden_dim: 3072, n_layers: 6, n_heads: 12 }) }),
    tensors: (c) => {
      const D = c.dim, d = 'distilbert.';
      const t: [string, number[], Kind][] = [[d + 'embeddings.word_embeddings.weight', [c.vocab_size, D], 'embed'], [d + 'embeddings.position_embeddings.weight', [c.max_position_embeddings, D], 'embed'], ...ln(d + 'embeddings.LayerNorm', D)];
      for (let l = 0; l < c.n_layers; l++) {
        const p = `${d}transformer.layer.${l}.`;
        t.push(...lin(p + 'attention.q_lin', D, D), ...lin(p + 'attention.k_lin', D, D), ...lin(p + 'attention.v_lin', D, D), ...lin(p + 'attention.out_lin', D, D), ...ln(p + 'sa_layer_norm', D));
        t.push(...lin(p + 'ffn.lin1', c.hidden_dim, D), ...lin(p + 'ffn.lin2', D, c.hidden_dim), ...ln(p + 'output_layer_norm', D));
      }
      if (id === 'distilbert-mlm') t.push(...lin('vocab_transform', D, D), ...ln('vocab_layer_norm', D), ['vocab_projector.bias', [c.vocab_size], 'bias']);
      else t.push(...lin('pre_classifier', D, D), ...lin('classifier', 2, D));
      return t;
    },
  })),
  {
    id: 'albert-mlm', seed: 'ALBERT-base-v2 (128-wide embedding projected, one shared layer, tanh GELU) with a masked-LM head', arch: 'albert', tokenizer: 'wordpiece',
    config: (V, s) => ({ architectures: ['AlbertForMaskedLM'], model_type: 'albert', vocab_size: V, hidden_act: 'gelu_new', layer_norm_eps: 1e-12, max_position_embeddings: 512, type_vocab_size: 2, num_hidden_groups: 1, inner_group_num: 1, ...pick(s, { embedding_size: 32, hidden_size: 128, intermediate_size: 512, num_hidden_layers: 3, num_attention_heads: 4 }, { embedding_size: 128, hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12 }) }),
    tensors: (c) => {
      const D = c.hidden_size, E = c.embedding_size, a = 'albert.', q = 'albert.encoder.albert_layer_groups.0.albert_layers.0.';
      return [
        [a + 'embeddings.word_embeddings.weight', [c.vocab_size, E], 'embed'], [a + 'embeddings.position_embeddings.weight', [c.max_position_embeddings, E], 'embed'], [a + 'embeddings.token_type_embeddings.weight', [c.type_vocab_size, E], 'embed'], ...ln(a + 'embeddings.LayerNorm', E),
        ...lin(a + 'encoder.embedding_hidden_mapping_in', D, E),
        ...lin(q + 'attention.query', D, D), ...lin(q + 'attention.key', D, D), ...lin(q + 'attention.value', D, D), ...lin(q + 'attention.dense', D, D), ...ln(q + 'attention.LayerNorm', D),
        ...lin(q + 'ffn', c.intermediate_size, D), ...lin(q + 'ffn_output', D, c.intermediate_size), ...ln(q + 'full_layer_layer_norm', D),
        ...lin(a + 'pooler', D, D), ...lin('predictions.dense', E, D), ...ln('predictions.LayerNorm', E), ['predictions.bias', [c.vocab_size], 'bias'],
      ];
    },
  },
  ...(['mobilebert-mlm', 'mobilebert-cls'] as const).map((id): Family => ({
    id, seed: `MobileBERT (${id === 'mobilebert-mlm' ? 'masked LM' : '2-label classifier'}): bottlenecks, NoNorm, 4 stacked FFNs, width-3 embedding convolution`, arch: 'mobilebert', tokenizer: 'wordpiece',
    config: (V, s) => ({
      architectures: [id === 'mobilebert-mlm' ? 'MobileBertForMaskedLM' : 'MobileBertForSequenceClassification'], model_type: 'mobilebert', vocab_size: V, hidden_act: 'relu', layer_norm_eps: 1e-12, max_position_embeddings: 512, type_vocab_size: 2,
      use_bottleneck: true, key_query_shared_bottleneck: true, use_bottleneck_attention: false, trigram_input: true, normalization_type: 'no_norm', classifier_activation: true, num_feedforward_networks: 4,
      ...(id === 'mobilebert-cls' ? { id2label: { 0: 'NEGATIVE', 1: 'POSITIVE' } } : {}),
      ...pick(s, { hidden_size: 128, embedding_size: 32, intra_bottleneck_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4 }, { hidden_size: 512, embedding_size: 128, intra_bottleneck_size: 128, intermediate_size: 512, num_hidden_layers: 24, num_attention_heads: 4 }),
    }),
    tensors: (c) => {
      const H = c.hidden_size, E = c.embedding_size, T = c.intra_bottleneck_size, I = c.intermediate_size, m = 'mobilebert.';
      const t: [string, number[], Kind][] = [[m + 'embeddings.word_embeddings.weight', [c.vocab_size, E], 'embed'], [m + 'embeddings.position_embeddings.weight', [c.max_position_embeddings, H], 'position'], [m + 'embeddings.token_type_embeddings.weight', [2, H], 'position'], ...lin(m + 'embeddings.embedding_transformation', H, 3 * E), ...ln(m + 'embeddings.LayerNorm', H)];
      for (let l = 0; l < c.num_hidden_layers; l++) {
        const p = `${m}encoder.layer.${l}.`;
        t.push(...lin(p + 'attention.self.query', T, T), ...lin(p + 'attention.self.key', T, T), ...lin(p + 'attention.self.value', T, H), ...lin(p + 'attention.output.dense', T, T), ...ln(p + 'attention.output.LayerNorm', T));
        t.push(...lin(p + 'intermediate.dense', I, T), ...lin(p + 'output.dense', T, I), ...ln(p + 'output.LayerNorm', T), ...lin(p + 'output.bottleneck.dense', H, T), ...ln(p + 'output.bottleneck.LayerNorm', H));
        t.push(...lin(p + 'bottleneck.input.dense', T, H), ...ln(p + 'bottleneck.input.LayerNorm', T), ...lin(p + 'bottleneck.attention.dense', T, H), ...ln(p + 'bottleneck.attention.LayerNorm', T));
        for (let j = 0; j < c.num_feedforward_networks - 1; j++) t.push(...lin(`${p}ffn.${j}.intermediate.dense`, I, T), ...lin(`${p}ffn.${j}.output.dense`, T, I), ...ln(`${p}ffn.${j}.output.LayerNorm`, T));
      }
      if (id === 'mobilebert-mlm') t.push(...lin('cls.predictions.transform.dense', H, H), ...ln('cls.predictions.transform.LayerNorm', H), ['cls.predictions.dense.weight', [H - E, c.vocab_size], 'matrix'], ['cls.predictions.bias', [c.vocab_size], 'bias']);
      else t.push(...lin(m + 'pooler.dense', H, H), ...lin('classifier', 2, H));
      return t;
    },
  })),
];

export function family(id: string): Family {
  const f = [...FAMILIES, ...ENCODERS].find((x) => x.id === id);
  if (!f) throw new Error(`unknown family ${id}; known: ${FAMILIES.map((x) => x.id).join(', ')}`);
  return f;
}

// --- tokenizers from ../shared ---

/** SmolLM2's byte-level BPE tokenizer.json cut to its first `n` ids (merges kept where all three pieces survive). */
export function truncatedBpe(shared: string, n: number): Json {
  const t = JSON.parse(readFileSync(join(shared, 'tokenizers', 'smollm2-135m-instruct', 'tokenizer.json'), 'utf8'));
  const vocab = Object.fromEntries(Object.entries<number>(t.model.vocab).filter(([, id]) => id < n));
  const merges = (t.model.merges as string[]).filter((m) => {
    const [a, b] = m.split(' ');
    return a! in vocab && b! in vocab && `${a}${b}` in vocab;
  });
  return { ...t, added_tokens: t.added_tokens.filter((a: Json) => a.id < n), model: { ...t.model, vocab, merges } };
}

/**
 * The Llama 2 SentencePiece vocabulary (../shared's llama-spm GGUF) cut to its first `n` ids, as a
 * Hugging Face tokenizer.json: BPE with byte fallback, merges listed the way Hugging Face's converter
 * lists them (every split of a piece into two pieces of the vocabulary, ordered by the piece's score),
 * a Prepend + Replace normalizer (Llama 2) or a Replace normalizer alone (Gemma).
 */
export function sentencePieceTokenizerJson(shared: string, n: number, gemma: boolean): Json {
  const f = parseGGUF(new Uint8Array(readFileSync(join(shared, 'vocab', 'ggml-vocab-llama-spm.gguf'))), 'llama-spm');
  const tokens = (metaArray(f, 'tokenizer.ggml.tokens') as string[]).slice(0, n);
  const scores = (metaArray(f, 'tokenizer.ggml.scores') as number[]).slice(0, n);
  const types = (metaArray(f, 'tokenizer.ggml.token_type') as number[]).slice(0, n);
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => (vocab[t] = i));
  const merges: [string, string, number, number][] = [];
  tokens.forEach((piece, id) => {
    if (types[id] !== 1) return; // normal pieces only
    const chars = [...piece];
    const local: [string, string, number, number][] = [];
    for (let i = 1; i < chars.length; i++) {
      const [l, r] = [chars.slice(0, i).join(''), chars.slice(i).join('')];
      if (l in vocab && r in vocab && types[vocab[l]!] === 1 && types[vocab[r]!] === 1) local.push([l, r, scores[id]!, id]);
    }
    local.sort((a, b) => vocab[a[0]]! - vocab[b[0]]! || vocab[a[1]]! - vocab[b[1]]!);
    merges.push(...local);
  });
  merges.sort((a, b) => b[2] - a[2]); // stable: by score, best first
  const special = (id: number) => ({ id, content: tokens[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [0, 1, 2].map(special),
    normalizer: gemma ? { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' } : { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '\u2581' }, { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] },
    pre_tokenizer: null,
    post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: tokens[1], type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }], pair: [], special_tokens: {} },
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '\u2581' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }] },
    model: { type: 'BPE', dropout: null, unk_token: tokens[0], continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: merges.map(([l, r]) => [l, r]) },
  };
}

/** MiniLM's WordPiece tokenizer.json (BERT's uncased vocabulary) cut to its first `n` ids. */
export function truncatedWordPiece(shared: string, n: number): Json {
  const t = JSON.parse(readFileSync(join(shared, 'tokenizers', 'all-MiniLM-L6-v2', 'tokenizer.json'), 'utf8'));
  const vocab = Object.fromEntries(Object.entries<number>(t.model.vocab).filter(([, id]) => id < n));
  return { ...t, truncation: null, padding: null, added_tokens: t.added_tokens.filter((a: Json) => a.id < n), model: { ...t.model, vocab } };
}

/** The files a tokenizer of `kind` (cut to `n` ids, then `added` special tokens) is written as in a model folder. */
export function tokenizerFiles(kind: TokenizerKind, shared: string, n: number, added: string[] = []): Record<string, string> {
  if (kind === 'wordpiece') return { 'tokenizer.json': JSON.stringify(truncatedWordPiece(shared, n)), 'tokenizer_config.json': readFileSync(join(shared, 'tokenizers', 'all-MiniLM-L6-v2', 'tokenizer_config.json'), 'utf8') };
  if (kind === 'spm' || kind === 'spm-gemma') {
    const json = sentencePieceTokenizerJson(shared, n, kind === 'spm-gemma');
    added.forEach((content, i) => json.added_tokens.push({ id: n + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
    return { 'tokenizer.json': JSON.stringify(json), 'tokenizer_config.json': JSON.stringify({ bos_token: json.added_tokens[1].content, eos_token: json.added_tokens[2].content, add_bos_token: true }) };
  }
  if (added.length) throw new Error('added tokens are only written for SentencePiece tokenizers');
  const bpe = truncatedBpe(shared, n);
  if (kind === 'bpe') return { 'tokenizer.json': JSON.stringify(bpe), 'tokenizer_config.json': JSON.stringify({ bos_token: '<|endoftext|>', eos_token: '<|endoftext|>' }) };
  // GPT-2's older pair of files; OPT prepends its BOS (</s> in OPT's own vocabulary; <|endoftext|> here).
  return {
    'vocab.json': JSON.stringify(Object.fromEntries([...Object.entries<number>(bpe.model.vocab)])),
    'merges.txt': ['#version: 0.2', ...bpe.model.merges].join('\n') + '\n',
    'tokenizer_config.json': JSON.stringify({ bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', add_bos_token: true }),
  };
}

/** The vocabulary size each tokenizer kind has when cut to `n` (SentencePiece keeps n; BPE keeps ids below n). */
export const TEST_VOCAB = 2000;

// --- the folder ---

export interface MakeOptions {
  scale?: 'tiny' | 'real';
  /** Vocabulary size (default TEST_VOCAB). */
  vocab?: number;
  /** Weight dtype in the safetensors file (default F32). */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** config.json entries to change (a smaller window, a RoPE scaling...). */
  config?: Json;
  seed?: number;
}

/** Write a random-weight Hugging Face folder of family `f` to `dir` (created); returns its config. */
export function makeHFFolder(f: Family, dir: string, shared: string, o: MakeOptions = {}): Json {
  const vocab = o.vocab ?? TEST_VOCAB;
  const rows = vocab + (f.added?.length ?? 0) + (f.pad ?? 0);
  const config = { ...f.config(rows, o.scale ?? 'tiny'), ...o.config, torch_dtype: 'float32' };
  let state = (o.seed ?? 0x9e3779b9) >>> 0 || 1;
  const rand = () => {
    state ^= state << 13; state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5; state >>>= 0;
    return state / 2147483648 - 1; // uniform [-1, 1): standard deviation 1/sqrt(3)
  };
  const s3 = Math.sqrt(3);
  const draw = (kind: Kind, shape: number[]): number => {
    switch (kind) {
      case 'matrix': return (rand() * s3) / Math.sqrt(shape[1]!); // std 1/sqrt(fan-in): activations stay about unit
      case 'embed': return rand() * s3;
      case 'head': return (rand() * s3 * 4) / Math.sqrt(shape[1]!); // logit std about 4 on unit-variance inputs
      case 'position': return rand() * s3 * 0.3;
      case 'norm': return 1 + 0.1 * rand();
      case 'norm0': return 0.1 * rand(); // Gemma's (1 + w) weights
      case 'bias': return 0.1 * rand();
    }
  };
  const tensors = f.tensors(config).map(([name, shape, kind]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const dtype = o.dtype ?? 'F32';
    let data: Uint8Array;
    if (dtype === 'F32') {
      const v = new Float32Array(n);
      for (let i = 0; i < n; i++) v[i] = draw(kind, shape);
      data = new Uint8Array(v.buffer);
    } else {
      const v = new Uint16Array(n);
      for (let i = 0; i < n; i++) v[i] = dtype === 'F16' ? f32ToF16(draw(kind, shape)) : f32ToBF16(draw(kind, shape));
      data = new Uint8Array(v.buffer);
    }
    return { name, shape: [...shape].reverse(), type: dtype === 'F32' ? GGMLType.F32 : dtype === 'F16' ? GGMLType.F16 : GGMLType.BF16, data };
  });
  mkdirSync(dir, { recursive: true });
  const chunks = serializeSafetensors(tensors, { format: 'pt' });
  const bytes = new Uint8Array(chunks.reduce((a, c) => a + c.byteLength, 0));
  chunks.reduce((at, c) => (bytes.set(c, at), at + c.byteLength), 0);
  writeFileSync(join(dir, 'model.safetensors'), bytes);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, _name_or_path: `random/${f.id}` }, null, 1));
  for (const [name, text] of Object.entries({ ...tokenizerFiles(f.tokenizer, shared, vocab, f.added), ...f.extra })) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return config;
}

/** The folder for `f` under `root` (made once; reused while its config is unchanged). */
export function hfFolder(f: Family, root: string, shared: string, o: MakeOptions = {}): string {
  const tag = [f.id, o.scale ?? 'tiny', o.vocab ?? TEST_VOCAB, o.dtype ?? 'F32', o.seed ?? 0, JSON.stringify(o.config ?? {}), JSON.stringify(f.config(0, o.scale ?? 'tiny')), f.added?.length ?? 0, f.pad ?? 0].join('|');
  let h = 0;
  for (const ch of tag) h = (Math.imul(h, 31) + ch.charCodeAt(0)) | 0;
  const dir = join(root, `${f.id}-${(h >>> 0).toString(16)}`);
  if (!existsSync(join(dir, 'model.safetensors'))) makeHFFolder(f, dir, shared, o);
  return dir;
}
