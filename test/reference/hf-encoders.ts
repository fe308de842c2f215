// Independent float64 forward passes of the encoder families, written from the math of Hugging Face's
// modeling code (modeling_bert, modeling_distilbert, modeling_albert, modeling_mobilebert), reading the folder itself:
// config.json keys and tensor names as PyTorch holds them. No code of src/arch/ is used: only the
// safetensors parser, to read the file (through hf-models.ts's readReferenceFolder). Deliberately naive: one text at a time, no padding, no mask
// (a single unpadded text attends to all of its tokens), every layer's output kept.

import { add, geluErf, geluTanh, layernorm, readReferenceFolder } from './hf-models.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;
type Vec = Float64Array;

export interface EncoderReference {
  /** The embeddings' output, then each layer's: [layers + 1][tokens] vectors of the hidden width. */
  hidden: Vec[][];
  /** Classification logits [labels], when the checkpoint has a classifier. */
  classify?: Vec;
  /** Masked-LM logits [tokens][vocab], when it has the head. */
  mlm?: Vec[];
}

export function hfEncoderReference(folder: string, tokens: number[]): EncoderReference {
  const { c, T, has } = readReferenceFolder(folder);
  const cls = c.architectures[0] as string;
  if (cls.startsWith('DistilBert')) return distilbert(c, T, has, tokens);
  if (cls.startsWith('Albert')) return albert(c, T, has, tokens);
  if (cls.startsWith('MobileBert')) return mobilebert(c, T, has, tokens);
  return bert(c, T, has, tokens);
}

// --- float64 math ---

function linear(W: Vec, b: Vec, x: Vec): Vec {
  const n = x.length, out = b.length;
  const y = Float64Array.from(b);
  for (let r = 0; r < out; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += W[r * n + i]! * x[i]!;
    y[r]! += s;
  }
  return y;
}
const ACT: Record<string, (x: number) => number> = {
  gelu: geluErf,
  gelu_new: geluTanh,
  relu: (x) => Math.max(x, 0),
};
function act(name: string): (x: number) => number {
  const f = ACT[name];
  if (!f) throw new Error(`reference: no activation ${name}`);
  return f;
}

/** Unmasked multi-head self-attention over the whole text: softmax(q k^T / sqrt(hd)) v per head. */
function selfAttention(q: Vec[], k: Vec[], v: Vec[], heads: number): Vec[] {
  const n = q.length, D = q[0]!.length, hd = D / heads;
  return q.map((qt) => {
    const out = new Float64Array(D);
    for (let h = 0; h < heads; h++) {
      const s = k.map((kp) => {
        let d = 0;
        for (let i = 0; i < hd; i++) d += qt[h * hd + i]! * kp[h * hd + i]!;
        return d / Math.sqrt(hd);
      });
      const m = Math.max(...s);
      const e = s.map((x) => Math.exp(x - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let p = 0; p < n; p++) for (let i = 0; i < hd; i++) out[h * hd + i]! += (e[p]! / z) * v[p]![h * hd + i]!;
    }
    return out;
  });
}

const row = (M: Vec, r: number, width: number): Vec => M.slice(r * width, (r + 1) * width);

/** The tied decoder: logits = E t + bias, E [vocab][width]. */
function tiedLogits(E: Vec, bias: Vec, t: Vec): Vec {
  return linear(E, bias, t);
}

// --- the families ---

function bert(c: Json, T: (n: string) => Vec, has: (n: string) => boolean, tokens: number[]): EncoderReference {
  const D = c.hidden_size, H = c.num_attention_heads, eps = c.layer_norm_eps ?? 1e-12, f = act(c.hidden_act ?? 'gelu');
  const b = has('bert.embeddings.word_embeddings.weight') ? 'bert.' : '';
  const word = T(`${b}embeddings.word_embeddings.weight`), pos = T(`${b}embeddings.position_embeddings.weight`), type = T(`${b}embeddings.token_type_embeddings.weight`);
  let x = tokens.map((id, t) => layernorm(add(add(row(word, id, D), row(pos, t, D)), row(type, 0, D)), T(`${b}embeddings.LayerNorm.weight`), T(`${b}embeddings.LayerNorm.bias`), eps));
  const hidden = [x];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `${b}encoder.layer.${l}.`;
    const L = (n: string) => [T(`${p}${n}.weight`), T(`${p}${n}.bias`)] as const;
    const proj = (n: string) => x.map((h) => linear(...L(n), h));
    const ctx = selfAttention(proj('attention.self.query'), proj('attention.self.key'), proj('attention.self.value'), H);
    x = x.map((h, t) => layernorm(add(linear(...L('attention.output.dense'), ctx[t]!), h), ...L('attention.output.LayerNorm'), eps));
    x = x.map((h) => layernorm(add(linear(...L('output.dense'), linear(...L('intermediate.dense'), h).map(f)), h), ...L('output.LayerNorm'), eps));
    hidden.push(x);
  }
  const out: EncoderReference = { hidden };
  if (has('classifier.weight')) {
    const pooled = linear(T(`${b}pooler.dense.weight`), T(`${b}pooler.dense.bias`), x[0]!).map(Math.tanh);
    out.classify = linear(T('classifier.weight'), T('classifier.bias'), pooled);
  }
  if (has('cls.predictions.bias')) {
    out.mlm = x.map((h) => {
      const t = layernorm(linear(T('cls.predictions.transform.dense.weight'), T('cls.predictions.transform.dense.bias'), h).map(f), T('cls.predictions.transform.LayerNorm.weight'), T('cls.predictions.transform.LayerNorm.bias'), eps);
      return tiedLogits(word, T('cls.predictions.bias'), t);
    });
  }
  return out;
}

function distilbert(c: Json, T: (n: string) => Vec, has: (n: string) => boolean, tokens: number[]): EncoderReference {
  const D = c.dim, H = c.n_heads, eps = 1e-12, f = act(c.activation ?? 'gelu');
  const d = 'distilbert.';
  const word = T(`${d}embeddings.word_embeddings.weight`), pos = T(`${d}embeddings.position_embeddings.weight`);
  let x = tokens.map((id, t) => layernorm(add(row(word, id, D), row(pos, t, D)), T(`${d}embeddings.LayerNorm.weight`), T(`${d}embeddings.LayerNorm.bias`), eps));
  const hidden = [x];
  for (let l = 0; l < c.n_layers; l++) {
    const p = `${d}transformer.layer.${l}.`;
    const L = (n: string) => [T(`${p}${n}.weight`), T(`${p}${n}.bias`)] as const;
    const proj = (n: string) => x.map((h) => linear(...L(n), h));
    const ctx = selfAttention(proj('attention.q_lin'), proj('attention.k_lin'), proj('attention.v_lin'), H);
    x = x.map((h, t) => layernorm(add(linear(...L('attention.out_lin'), ctx[t]!), h), ...L('sa_layer_norm'), eps));
    x = x.map((h) => layernorm(add(linear(...L('ffn.lin2'), linear(...L('ffn.lin1'), h).map(f)), h), ...L('output_layer_norm'), eps));
    hidden.push(x);
  }
  const out: EncoderReference = { hidden };
  if (has('classifier.weight')) {
    const pooled = linear(T('pre_classifier.weight'), T('pre_classifier.bias'), x[0]!).map((v) => Math.max(v, 0));
    out.classify = linear(T('classifier.weight'), T('classifier.bias'), pooled);
  }
  if (has('vocab_projector.bias')) {
    out.mlm = x.map((h) => tiedLogits(word, T('vocab_projector.bias'), layernorm(linear(T('vocab_transform.weight'), T('vocab_transform.bias'), h).map(f), T('vocab_layer_norm.weight'), T('vocab_layer_norm.bias'), eps)));
  }
  return out;
}

function albert(c: Json, T: (n: string) => Vec, has: (n: string) => boolean, tokens: number[]): EncoderReference {
  const E = c.embedding_size, H = c.num_attention_heads, eps = c.layer_norm_eps ?? 1e-12, f = act(c.hidden_act ?? 'gelu_new');
  const a = 'albert.';
  const word = T(`${a}embeddings.word_embeddings.weight`), pos = T(`${a}embeddings.position_embeddings.weight`), type = T(`${a}embeddings.token_type_embeddings.weight`);
  const e = tokens.map((id, t) => layernorm(add(add(row(word, id, E), row(pos, t, E)), row(type, 0, E)), T(`${a}embeddings.LayerNorm.weight`), T(`${a}embeddings.LayerNorm.bias`), eps));
  let x = e.map((h) => linear(T(`${a}encoder.embedding_hidden_mapping_in.weight`), T(`${a}encoder.embedding_hidden_mapping_in.bias`), h));
  const hidden = [x];
  const q = `${a}encoder.albert_layer_groups.0.albert_layers.0.`;
  const L = (n: string) => [T(`${q}${n}.weight`), T(`${q}${n}.bias`)] as const;
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const proj = (n: string) => x.map((h) => linear(...L(n), h));
    const ctx = selfAttention(proj('attention.query'), proj('attention.key'), proj('attention.value'), H);
    x = x.map((h, t) => layernorm(add(linear(...L('attention.dense'), ctx[t]!), h), ...L('attention.LayerNorm'), eps));
    x = x.map((h) => layernorm(add(linear(...L('ffn_output'), linear(...L('ffn'), h).map(f)), h), ...L('full_layer_layer_norm'), eps));
    hidden.push(x);
  }
  const out: EncoderReference = { hidden };
  if (has('classifier.weight')) {
    const pooled = linear(T(`${a}pooler.weight`), T(`${a}pooler.bias`), x[0]!).map(Math.tanh);
    out.classify = linear(T('classifier.weight'), T('classifier.bias'), pooled);
  }
  if (has('predictions.bias')) {
    out.mlm = x.map((h) => tiedLogits(word, T('predictions.bias'), layernorm(linear(T('predictions.dense.weight'), T('predictions.dense.bias'), h).map(f), T('predictions.LayerNorm.weight'), T('predictions.LayerNorm.bias'), eps)));
  }
  return out;
}

function mobilebert(c: Json, T: (n: string) => Vec, has: (n: string) => boolean, tokens: number[]): EncoderReference {
  const H = c.hidden_size, E = c.embedding_size, heads = c.num_attention_heads, eps = c.layer_norm_eps ?? 1e-12, f = act(c.hidden_act ?? 'relu');
  const m = 'mobilebert.';
  const noNorm = (x: Vec, name: string): Vec => { const w = T(`${name}.weight`), b = T(`${name}.bias`); return x.map((v, i) => v * w[i]! + b[i]!); };
  const L = (name: string) => [T(`${name}.weight`), T(`${name}.bias`)] as const;
  const word = T(`${m}embeddings.word_embeddings.weight`), pos = T(`${m}embeddings.position_embeddings.weight`), type = T(`${m}embeddings.token_type_embeddings.weight`);
  const e = tokens.map((id) => row(word, id, E));
  const zero = new Float64Array(E);
  // trigram_input: [e[t+1], e[t], e[t-1]] concatenated (zeros past the ends), then embedding_transformation.
  let x = tokens.map((_, t) => {
    const cat = new Float64Array(3 * E);
    cat.set(e[t + 1] ?? zero, 0);
    cat.set(e[t]!, E);
    cat.set(e[t - 1] ?? zero, 2 * E);
    const h = add(add(linear(...L(`${m}embeddings.embedding_transformation`), cat), row(pos, t, H)), row(type, 0, H));
    return noNorm(h, `${m}embeddings.LayerNorm`);
  });
  const hidden = [x];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `${m}encoder.layer.${l}.`;
    const layerInput = x.map((h) => noNorm(linear(...L(p + 'bottleneck.input.dense'), h), p + 'bottleneck.input.LayerNorm'));
    const shared = x.map((h) => noNorm(linear(...L(p + 'bottleneck.attention.dense'), h), p + 'bottleneck.attention.LayerNorm'));
    const ctx = selfAttention(shared.map((h) => linear(...L(p + 'attention.self.query'), h)), shared.map((h) => linear(...L(p + 'attention.self.key'), h)), x.map((h) => linear(...L(p + 'attention.self.value'), h)), heads);
    let a = ctx.map((v, t) => noNorm(add(linear(...L(p + 'attention.output.dense'), v), layerInput[t]!), p + 'attention.output.LayerNorm'));
    for (let j = 0; j < c.num_feedforward_networks - 1; j++) {
      const q = `${p}ffn.${j}.`;
      a = a.map((h) => noNorm(add(linear(...L(q + 'output.dense'), linear(...L(q + 'intermediate.dense'), h).map(f)), h), q + 'output.LayerNorm'));
    }
    const o = a.map((h) => noNorm(add(linear(...L(p + 'output.dense'), linear(...L(p + 'intermediate.dense'), h).map(f)), h), p + 'output.LayerNorm'));
    x = o.map((h, t) => noNorm(add(linear(...L(p + 'output.bottleneck.dense'), h), x[t]!), p + 'output.bottleneck.LayerNorm'));
    hidden.push(x);
  }
  const out: EncoderReference = { hidden };
  if (has('classifier.weight')) out.classify = linear(...L('classifier'), linear(...L(`${m}pooler.dense`), x[0]!).map(Math.tanh));
  if (has('cls.predictions.bias')) {
    // logits = t . cat([decoder.weight^T (E x V), dense.weight ((H - E) x V)]) + bias, decoder.weight = the word embeddings.
    const extra = T('cls.predictions.dense.weight'), bias = T('cls.predictions.bias'), V = bias.length;
    out.mlm = x.map((h) => {
      const t = layernorm(linear(...L('cls.predictions.transform.dense'), h).map(f), T('cls.predictions.transform.LayerNorm.weight'), T('cls.predictions.transform.LayerNorm.bias'), eps);
      return Float64Array.from({ length: V }, (_, v) => {
        let s = bias[v]!;
        for (let i = 0; i < E; i++) s += t[i]! * word[v * E + i]!;
        for (let i = 0; i < H - E; i++) s += t[E + i]! * extra[i * V + v]!;
        return s;
      });
    });
  }
  return out;
}
