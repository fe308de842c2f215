// Independent float64 forward passes of every decoder family, written from the math of Hugging Face's
// modeling code (modeling_llama, _mistral, _qwen2, _qwen3, _gemma, _gemma2, _gemma3, _phi, _phi3, _gpt2,
// _gpt_neox, _opt), reading the Hugging Face folder itself: its config.json keys and tensor names, in
// PyTorch's layouts (rotate-half RoPE, Conv1D weights, per-head fused q/k/v, Gemma's (1 + w) norms).
// No code of src/arch/ is used: only the safetensors parser, to read the file. Deliberately naive:
// the whole sequence at once, an explicit causal (and sliding-window) mask, no KV cache.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSafetensors, rawTensor } from '../../src/format/safetensors.js';
import { toFloat32 } from '../../src/base/tensor.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;
type Vec = Float64Array;

export interface ReferenceOptions {
  /** Phi-3 longrope: use the long factors (as for a context beyond the original one). */
  longRope?: boolean;
  /**
   * Llama-like families (Llama, Mistral, Qwen2/3, Phi-3): record each layer's intermediate values here
   * (resid_post: the residual stream after layer l; pattern: attention probabilities [head][query][key];
   * z: the heads' outputs before the output projection), for the inspection tests.
   */
  trace?: { resid_post: Vec[][]; pattern: Float64Array[]; z: Vec[][] };
  /** Llama-like families: zero one head's output (z) before the output projection. */
  ablate?: { layer: number; head: number };
}

/** A folder's config.json, and its tensors by Hugging Face name as float64 (T) with a presence test (has). */
export function readReferenceFolder(folder: string): { c: Json; T: (name: string) => Vec; has: (name: string) => boolean } {
  const c: Json = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8'));
  const file = parseSafetensors(new Uint8Array(readFileSync(join(folder, 'model.safetensors'))), folder);
  const tensors = new Map(file.tensors.map((t) => [t.name, t]));
  const T = (name: string): Vec => {
    const t = tensors.get(name);
    if (!t) throw new Error(`reference: ${name} missing`);
    const r = rawTensor(t, folder);
    return Float64Array.from(toFloat32(r.type, r.data.slice(), t.shape.reduce((a, b) => a * b, 1)));
  };
  return { c, T, has: (name) => tensors.has(name) };
}

/** Logits [tokens.length][vocab] of the folder's model for `tokens`, in float64. */
export function hfReferenceLogits(folder: string, tokens: number[], o: ReferenceOptions = {}): Float64Array[] {
  const { c, T, has } = readReferenceFolder(folder);
  const cls = c.architectures[0] as string;
  switch (cls) {
    case 'LlamaForCausalLM': case 'MistralForCausalLM': case 'Qwen2ForCausalLM': case 'Qwen3ForCausalLM': case 'Phi3ForCausalLM':
      return llamaLike(c, T, has, tokens, cls, o);
    case 'GemmaForCausalLM': case 'Gemma2ForCausalLM': case 'Gemma3ForCausalLM':
      return gemma(c, T, tokens, cls);
    case 'PhiForCausalLM': return phi2(c, T, tokens);
    case 'GPT2LMHeadModel': return gpt2(c, T, has, tokens);
    case 'GPTNeoXForCausalLM': return neox(c, T, tokens);
    case 'OPTForCausalLM': return opt(c, T, has, tokens);
    default: throw new Error(`reference: no reference for ${cls}`);
  }
}

// --- float64 math ---

/** y = W x (+ b), W row-major [out][in] (nn.Linear). */
function linear(W: Vec, x: Vec, out: number, b?: Vec): Vec {
  const n = x.length;
  const y = new Float64Array(out);
  for (let r = 0; r < out; r++) {
    let s = b ? b[r]! : 0;
    for (let i = 0; i < n; i++) s += W[r * n + i]! * x[i]!;
    y[r] = s;
  }
  return y;
}
/** y = x W + b, W row-major [in][out] (GPT-2's Conv1D). */
function conv1d(W: Vec, b: Vec, x: Vec): Vec {
  const out = b.length;
  const y = Float64Array.from(b);
  for (let i = 0; i < x.length; i++) for (let o = 0; o < out; o++) y[o] += x[i]! * W[i * out + o]!;
  return y;
}
function rmsnorm(x: Vec, w: Vec, eps: number, plusOne = false): Vec {
  let ss = 0;
  for (const v of x) ss += v * v;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * r * (plusOne ? 1 + w[i]! : w[i]!));
}
export function layernorm(x: Vec, w: Vec, b: Vec, eps: number): Vec {
  const mean = x.reduce((a, v) => a + v, 0) / x.length;
  const varc = x.reduce((a, v) => a + (v - mean) ** 2, 0) / x.length;
  const r = 1 / Math.sqrt(varc + eps);
  return x.map((v, i) => (v - mean) * r * w[i]! + b[i]!);
}
export const add = (a: Vec, b: Vec): Vec => a.map((v, i) => v + b[i]!);
const silu = (v: number) => v / (1 + Math.exp(-v));
/** GELU, tanh form (gelu_new / gelu_pytorch_tanh) as written in the papers. */
export const geluTanh = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
/**
 * Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), with erf from the series of positive terms
 * erf(x) = 2/sqrt(pi) e^(-x^2) sum_n 2^n x^(2n+1) / (1 * 3 * ... * (2n+1)) (no cancellation; a different
 * method from the engine's).
 */
function erf(x: number): number {
  const a = Math.abs(x);
  if (a > 6) return Math.sign(x);
  let term = a, sum = a;
  for (let n = 1; n < 400 && term > 1e-18 * sum; n++) {
    term *= (2 * a * a) / (2 * n + 1);
    sum += term;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum;
}
export const geluErf = (v: number) => 0.5 * v * (1 + erf(v / Math.SQRT2));

/** Rotate-half RoPE on the first `rot` dims of one head vector: x * cos + rotate_half(x) * sin, cos/sin of pos * invFreq (times mscale). */
function ropeHalf(x: Vec, pos: number, invFreq: number[], rot: number, mscale = 1): Vec {
  const y = Float64Array.from(x);
  const half = rot / 2;
  for (let i = 0; i < half; i++) {
    const ang = pos * invFreq[i]!;
    const cos = Math.cos(ang) * mscale, sin = Math.sin(ang) * mscale;
    y[i] = x[i]! * cos - x[i + half]! * sin;
    y[i + half] = x[i + half]! * cos + x[i]! * sin;
  }
  return y;
}
const invFreqs = (base: number, rot: number) => Array.from({ length: rot / 2 }, (_, i) => 1 / Math.pow(base, (2 * i) / rot));

/**
 * Multi-head causal attention for the whole sequence: q [t][H*hd], k/v [t][KV*hd] (GQA: head h reads kv
 * head h / (H / KV)); scores scaled, soft-capped, masked to p <= t and t - p < window.
 */
function attend(q: Vec[], k: Vec[], v: Vec[], H: number, KV: number, hd: number, o: { scale: number; softcap?: number; window?: number; record?: Float64Array }): Vec[] {
  const n = q.length;
  return q.map((qt, t) => {
    const out = new Float64Array(H * hd);
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / (H / KV));
      const s: number[] = [];
      for (let p = 0; p < q.length; p++) {
        if (p > t || (o.window !== undefined && t - p >= o.window)) { s.push(-Infinity); continue; }
        let d = 0;
        for (let i = 0; i < hd; i++) d += qt[h * hd + i]! * k[p]![g * hd + i]!;
        d *= o.scale;
        if (o.softcap) d = Math.tanh(d / o.softcap) * o.softcap;
        s.push(d);
      }
      const m = Math.max(...s);
      const e = s.map((z) => Math.exp(z - m));
      const z = e.reduce((a, b) => a + b, 0);
      if (o.record) for (let p = 0; p < n; p++) o.record[(h * n + t) * n + p] = e[p]! / z;
      for (let p = 0; p < q.length; p++) {
        if (e[p] === 0) continue;
        for (let i = 0; i < hd; i++) out[h * hd + i] += (e[p]! / z) * v[p]![g * hd + i]!;
      }
    }
    return out;
  });
}
/** Apply a per-head function to each head of a [heads * hd] vector. */
function perHead(x: Vec, heads: number, hd: number, f: (head: Vec) => Vec): Vec {
  const y = new Float64Array(x.length);
  for (let h = 0; h < heads; h++) y.set(f(x.subarray(h * hd, (h + 1) * hd)), h * hd);
  return y;
}
const embed = (E: Vec, dim: number, id: number) => E.slice(id * dim, (id + 1) * dim);

// --- families ---

function llamaLike(c: Json, T: (n: string) => Vec, has: (n: string) => boolean, tokens: number[], cls: string, o: ReferenceOptions): Vec[] {
  const D = c.hidden_size, H = c.num_attention_heads, KV = c.num_key_value_heads ?? H, hd = c.head_dim ?? D / H, V = c.vocab_size, F = c.intermediate_size;
  const phi3 = cls === 'Phi3ForCausalLM';
  const rot = phi3 ? 2 * Math.floor(((c.partial_rotary_factor ?? 1) * hd) / 2) : hd;
  let inv = invFreqs(c.rope_theta ?? 10000, rot);
  let mscale = 1;
  const rs = c.rope_scaling;
  if (rs && (rs.rope_type ?? rs.type) === 'llama3') {
    // transformers' _compute_llama3_parameters
    const { factor, low_freq_factor: lf, high_freq_factor: hf, original_max_position_embeddings: old } = rs;
    const lowWave = old / lf, highWave = old / hf;
    inv = inv.map((f) => {
      const wave = (2 * Math.PI) / f;
      const scaled = wave > lowWave ? f / factor : f;
      const smooth = (old / wave - lf) / (hf - lf);
      const medium = !(wave < highWave) && !(wave > lowWave);
      return medium ? ((1 - smooth) * scaled) / factor + smooth * scaled : scaled;
    });
  }
  if (rs && (rs.rope_type ?? rs.type) === 'longrope') {
    // transformers' _compute_longrope_parameters: inv_freq / ext_factors, cos and sin times the attention factor
    const ext = (o.longRope ? rs.long_factor : rs.short_factor) as number[];
    inv = inv.map((f, i) => f / ext[i]!);
    const original = c.original_max_position_embeddings ?? rs.original_max_position_embeddings;
    const scale = c.max_position_embeddings / original;
    mscale = rs.attention_factor ?? (scale <= 1 ? 1 : Math.sqrt(1 + Math.log(scale) / Math.log(original)));
  }
  const window = cls === 'MistralForCausalLM' || phi3 ? c.sliding_window ?? undefined : undefined;
  const E = T('model.embed_tokens.weight');
  let xs = tokens.map((t) => embed(E, D, t));
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    const bias = (n: string) => (has(p + n + '.bias') ? T(p + n + '.bias') : undefined);
    const hs = xs.map((x) => rmsnorm(x, T(p + 'input_layernorm.weight'), c.rms_norm_eps));
    let q: Vec[], k: Vec[], v: Vec[];
    if (phi3) {
      const W = T(p + 'self_attn.qkv_proj.weight');
      const qkv = hs.map((h) => linear(W, h, (H + 2 * KV) * hd));
      [q, k, v] = [qkv.map((a) => a.slice(0, H * hd)), qkv.map((a) => a.slice(H * hd, (H + KV) * hd)), qkv.map((a) => a.slice((H + KV) * hd))];
    } else {
      q = hs.map((h) => linear(T(p + 'self_attn.q_proj.weight'), h, H * hd, bias('self_attn.q_proj')));
      k = hs.map((h) => linear(T(p + 'self_attn.k_proj.weight'), h, KV * hd, bias('self_attn.k_proj')));
      v = hs.map((h) => linear(T(p + 'self_attn.v_proj.weight'), h, KV * hd, bias('self_attn.v_proj')));
    }
    if (cls === 'Qwen3ForCausalLM') {
      const qn = T(p + 'self_attn.q_norm.weight'), kn = T(p + 'self_attn.k_norm.weight');
      q = q.map((x) => perHead(x, H, hd, (y) => rmsnorm(y, qn, c.rms_norm_eps)));
      k = k.map((x) => perHead(x, KV, hd, (y) => rmsnorm(y, kn, c.rms_norm_eps)));
    }
    q = q.map((x, pos) => perHead(x, H, hd, (y) => ropeHalf(y, pos, inv, rot, mscale)));
    k = k.map((x, pos) => perHead(x, KV, hd, (y) => ropeHalf(y, pos, inv, rot, mscale)));
    const record = o.trace ? new Float64Array(H * tokens.length * tokens.length) : undefined;
    const att = attend(q, k, v, H, KV, hd, { scale: 1 / Math.sqrt(hd), window, record });
    if (o.ablate?.layer === l) for (const a of att) a.fill(0, o.ablate.head * hd, (o.ablate.head + 1) * hd);
    if (o.trace) {
      o.trace.pattern.push(record!);
      o.trace.z.push(att);
    }
    const Wo = T(p + 'self_attn.o_proj.weight');
    xs = xs.map((x, t) => add(x, linear(Wo, att[t]!, D)));
    xs = xs.map((x) => {
      const h = rmsnorm(x, T(p + 'post_attention_layernorm.weight'), c.rms_norm_eps);
      let a: Vec;
      if (phi3) {
        const gu = linear(T(p + 'mlp.gate_up_proj.weight'), h, 2 * F);
        a = gu.slice(0, F).map((g, i) => silu(g) * gu[F + i]!);
      } else {
        const g = linear(T(p + 'mlp.gate_proj.weight'), h, F), u = linear(T(p + 'mlp.up_proj.weight'), h, F);
        a = g.map((gv, i) => silu(gv) * u[i]!);
      }
      return add(x, linear(T(p + 'mlp.down_proj.weight'), a, D));
    });
    o.trace?.resid_post.push(xs);
  }
  const head = c.tie_word_embeddings ? E : T('lm_head.weight');
  return xs.map((x) => linear(head, rmsnorm(x, T('model.norm.weight'), c.rms_norm_eps), V));
}

function gemma(c: Json, T: (n: string) => Vec, tokens: number[], cls: string): Vec[] {
  const version = cls === 'GemmaForCausalLM' ? 1 : cls === 'Gemma2ForCausalLM' ? 2 : 3;
  const D = c.hidden_size, H = c.num_attention_heads, KV = c.num_key_value_heads, hd = c.head_dim, V = c.vocab_size, F = c.intermediate_size, eps = c.rms_norm_eps;
  const scale = version === 1 ? 1 / Math.sqrt(hd) : c.query_pre_attn_scalar ** -0.5;
  const norm = (x: Vec, name: string) => rmsnorm(x, T(name), eps, true); // Gemma's RMSNorm: x * (1 + w)
  const E = T('model.embed_tokens.weight');
  let xs = tokens.map((t) => embed(E, D, t).map((v) => v * Math.sqrt(D)));
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    // Gemma 2: even layers slide; Gemma 3: all but every sliding_window_pattern-th.
    const sliding = version === 2 ? l % 2 === 0 : version === 3 ? (l + 1) % c.sliding_window_pattern !== 0 : false;
    const base = version === 3 && sliding ? c.rope_local_base_freq : c.rope_theta;
    let factor = 1;
    if (version === 3 && !sliding && c.rope_scaling?.rope_type === 'linear') factor = c.rope_scaling.factor;
    const inv = invFreqs(base, hd).map((f) => f / factor);
    const hs = xs.map((x) => norm(x, p + 'input_layernorm.weight'));
    let q = hs.map((h) => linear(T(p + 'self_attn.q_proj.weight'), h, H * hd));
    let k = hs.map((h) => linear(T(p + 'self_attn.k_proj.weight'), h, KV * hd));
    const v = hs.map((h) => linear(T(p + 'self_attn.v_proj.weight'), h, KV * hd));
    if (version === 3) {
      q = q.map((x) => perHead(x, H, hd, (y) => rmsnorm(y, T(p + 'self_attn.q_norm.weight'), eps, true)));
      k = k.map((x) => perHead(x, KV, hd, (y) => rmsnorm(y, T(p + 'self_attn.k_norm.weight'), eps, true)));
    }
    q = q.map((x, pos) => perHead(x, H, hd, (y) => ropeHalf(y, pos, inv, hd)));
    k = k.map((x, pos) => perHead(x, KV, hd, (y) => ropeHalf(y, pos, inv, hd)));
    const att = attend(q, k, v, H, KV, hd, { scale, softcap: version >= 2 ? c.attn_logit_softcapping ?? undefined : undefined, window: sliding ? c.sliding_window : undefined });
    const Wo = T(p + 'self_attn.o_proj.weight');
    xs = xs.map((x, t) => {
      let o = linear(Wo, att[t]!, D);
      if (version >= 2) o = norm(o, p + 'post_attention_layernorm.weight');
      const y = add(x, o);
      const h = norm(y, p + (version === 1 ? 'post_attention_layernorm.weight' : 'pre_feedforward_layernorm.weight'));
      const g = linear(T(p + 'mlp.gate_proj.weight'), h, F), u = linear(T(p + 'mlp.up_proj.weight'), h, F);
      let m = linear(T(p + 'mlp.down_proj.weight'), g.map((gv, i) => geluTanh(gv) * u[i]!), D);
      if (version >= 2) m = norm(m, p + 'post_feedforward_layernorm.weight');
      return add(y, m);
    });
  }
  const cap = c.final_logit_softcapping;
  return xs.map((x) => linear(E, norm(x, 'model.norm.weight'), V).map((z) => (cap ? Math.tanh(z / cap) * cap : z)));
}

function phi2(c: Json, T: (n: string) => Vec, tokens: number[]): Vec[] {
  const D = c.hidden_size, H = c.num_attention_heads, hd = D / H, V = c.vocab_size, F = c.intermediate_size, eps = c.layer_norm_eps;
  const rot = Math.floor(c.partial_rotary_factor * hd);
  const inv = invFreqs(c.rope_theta, rot);
  const E = T('model.embed_tokens.weight');
  let xs = tokens.map((t) => embed(E, D, t));
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    const L = (n: string) => [T(p + n + '.weight'), T(p + n + '.bias')] as const;
    const hs = xs.map((x) => layernorm(x, ...L('input_layernorm'), eps));
    const proj = (n: string, h: Vec, out: number) => linear(L(n)[0], h, out, L(n)[1]);
    const q = hs.map((h, pos) => perHead(proj('self_attn.q_proj', h, D), H, hd, (y) => ropeHalf(y, pos, inv, rot)));
    const k = hs.map((h, pos) => perHead(proj('self_attn.k_proj', h, D), H, hd, (y) => ropeHalf(y, pos, inv, rot)));
    const v = hs.map((h) => proj('self_attn.v_proj', h, D));
    const att = attend(q, k, v, H, H, hd, { scale: 1 / Math.sqrt(hd) });
    // Parallel: attention and MLP from the same normed input, both added to the residual.
    xs = xs.map((x, t) => {
      const a = proj('self_attn.dense', att[t]!, D);
      const m = proj('mlp.fc2', proj('mlp.fc1', hs[t]!, F).map(geluTanh), D);
      return add(add(x, a), m);
    });
  }
  return xs.map((x) => linear(T('lm_head.weight'), layernorm(x, T('model.final_layernorm.weight'), T('model.final_layernorm.bias'), eps), V, T('lm_head.bias')));
}

function gpt2(c: Json, T: (n: string) => Vec, has: (n: string) => boolean, tokens: number[]): Vec[] {
  const D = c.n_embd, H = c.n_head, hd = D / H, V = c.vocab_size, eps = c.layer_norm_epsilon;
  const t = has('transformer.wte.weight') ? 'transformer.' : '';
  const E = T(`${t}wte.weight`), P = T(`${t}wpe.weight`);
  let xs = tokens.map((id, pos) => add(embed(E, D, id), embed(P, D, pos)));
  for (let l = 0; l < c.n_layer; l++) {
    const p = `${t}h.${l}.`;
    const W = (n: string) => [T(p + n + '.weight'), T(p + n + '.bias')] as const;
    const hs = xs.map((x) => layernorm(x, ...W('ln_1'), eps));
    const qkv = hs.map((h) => conv1d(...W('attn.c_attn'), h));
    const att = attend(qkv.map((a) => a.slice(0, D)), qkv.map((a) => a.slice(D, 2 * D)), qkv.map((a) => a.slice(2 * D)), H, H, hd, { scale: 1 / Math.sqrt(hd) });
    xs = xs.map((x, i) => add(x, conv1d(...W('attn.c_proj'), att[i]!)));
    xs = xs.map((x) => {
      const h = layernorm(x, ...W('ln_2'), eps);
      return add(x, conv1d(...W('mlp.c_proj'), conv1d(...W('mlp.c_fc'), h).map(geluTanh)));
    });
  }
  return xs.map((x) => linear(E, layernorm(x, T(`${t}ln_f.weight`), T(`${t}ln_f.bias`), eps), V));
}

function neox(c: Json, T: (n: string) => Vec, tokens: number[]): Vec[] {
  const D = c.hidden_size, H = c.num_attention_heads, hd = D / H, V = c.vocab_size, F = c.intermediate_size, eps = c.layer_norm_eps;
  const rot = Math.floor(hd * c.rotary_pct);
  const inv = invFreqs(c.rotary_emb_base, rot);
  const act = c.hidden_act === 'gelu' ? geluErf : geluTanh;
  const E = T('gpt_neox.embed_in.weight');
  let xs = tokens.map((t) => embed(E, D, t));
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `gpt_neox.layers.${l}.`;
    const W = (n: string) => [T(p + n + '.weight'), T(p + n + '.bias')] as const;
    const h1 = xs.map((x) => layernorm(x, ...W('input_layernorm'), eps));
    // query_key_value output, viewed as [heads][3][hd]: query, key, value per head.
    const qkv = h1.map((h) => linear(W('attention.query_key_value')[0], h, 3 * D, W('attention.query_key_value')[1]));
    const part = (j: number) => qkv.map((a) => { const y = new Float64Array(D); for (let h = 0; h < H; h++) y.set(a.subarray((3 * h + j) * hd, (3 * h + j + 1) * hd), h * hd); return y; });
    const q = part(0).map((x, pos) => perHead(x, H, hd, (y) => ropeHalf(y, pos, inv, rot)));
    const k = part(1).map((x, pos) => perHead(x, H, hd, (y) => ropeHalf(y, pos, inv, rot)));
    const att = attend(q, k, part(2), H, H, hd, { scale: 1 / Math.sqrt(hd) });
    xs = xs.map((x, t) => {
      const a = linear(W('attention.dense')[0], att[t]!, D, W('attention.dense')[1]);
      const mlp = (h: Vec) => linear(W('mlp.dense_4h_to_h')[0], linear(W('mlp.dense_h_to_4h')[0], h, F, W('mlp.dense_h_to_4h')[1]).map(act), D, W('mlp.dense_4h_to_h')[1]);
      if (c.use_parallel_residual) return add(add(x, a), mlp(layernorm(x, ...W('post_attention_layernorm'), eps)));
      const y = add(x, a);
      return add(y, mlp(layernorm(y, ...W('post_attention_layernorm'), eps)));
    });
  }
  return xs.map((x) => linear(T('embed_out.weight'), layernorm(x, T('gpt_neox.final_layer_norm.weight'), T('gpt_neox.final_layer_norm.bias'), eps), V));
}

function opt(c: Json, T: (n: string) => Vec, has: (n: string) => boolean, tokens: number[]): Vec[] {
  const D = c.hidden_size, H = c.num_attention_heads, hd = D / H, V = c.vocab_size, F = c.ffn_dim, E = c.word_embed_proj_dim ?? D, eps = 1e-5;
  const d = has('model.decoder.embed_tokens.weight') ? 'model.decoder.' : 'decoder.';
  const Emb = T(d + 'embed_tokens.weight'), P = T(d + 'embed_positions.weight');
  // OPTLearnedPositionalEmbedding: position p (no padding) is row p + 2.
  let xs = tokens.map((id, pos) => {
    let e = embed(Emb, E, id);
    if (E !== D) e = linear(T(d + 'project_in.weight'), e, D);
    return add(e, embed(P, D, pos + 2));
  });
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `${d}layers.${l}.`;
    const W = (n: string) => [T(p + n + '.weight'), T(p + n + '.bias')] as const;
    const lin = (n: string, x: Vec, out: number) => linear(W(n)[0], x, out, W(n)[1]);
    const pre = c.do_layer_norm_before;
    const hs = pre ? xs.map((x) => layernorm(x, ...W('self_attn_layer_norm'), eps)) : xs;
    const q = hs.map((h) => lin('self_attn.q_proj', h, D).map((v) => v * hd ** -0.5)); // OPT scales q before the product
    const k = hs.map((h) => lin('self_attn.k_proj', h, D)), v = hs.map((h) => lin('self_attn.v_proj', h, D));
    const att = attend(q, k, v, H, H, hd, { scale: 1 });
    xs = xs.map((x, t) => {
      let y = add(x, lin('self_attn.out_proj', att[t]!, D));
      if (!pre) y = layernorm(y, ...W('self_attn_layer_norm'), eps);
      const h = pre ? layernorm(y, ...W('final_layer_norm'), eps) : y;
      let z = add(y, lin('fc2', lin('fc1', h, F).map((u) => Math.max(u, 0)), D));
      if (!pre) z = layernorm(z, ...W('final_layer_norm'), eps);
      return z;
    });
  }
  return xs.map((x) => {
    let y = c.do_layer_norm_before ? layernorm(x, T(d + 'final_layer_norm.weight'), T(d + 'final_layer_norm.bias'), eps) : x;
    if (E !== D) y = linear(T(d + 'project_out.weight'), y, E);
    return linear(Emb, y, V);
  });
}
