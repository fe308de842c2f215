// MobileBERT: a deep, thin BERT whose layers work in a narrow bottleneck (T = 128 wide inside a 512-wide
// residual stream), with stacked feed-forward networks and NoNorm (x * w + b, no statistics):
//
//   e = E[tokens]                                          128 wide
//   x = NoNorm(W_next e[t+1] + W_cur e[t] + W_prev e[t-1] + b + P[positions] + T[0])
//                                                          a width-3 convolution over the embeddings
//                                                          (zeros past the text's ends), 512 wide
//   for each layer:
//     r  = NoNorm(W_in x + b_in)                           the layer's input in the bottleneck (T wide)
//     qk = NoNorm(W_qk x + b_qk)                           queries and keys share another bottleneck
//     a  = NoNorm(r + Wo attention(Wq qk, Wk qk, Wv x) + bo)    bidirectional; values from x itself
//     repeat (feed-forward networks - 1) times:  a = NoNorm(a + W2 relu(W1 a + b1) + b2)
//     o  = NoNorm(a + W2 relu(W1 a + b1) + b2)
//     x  = NoNorm(x + W_out o + b_out)                     back out of the bottleneck
//   heads: classify as BERT's (tanh pooler on [CLS]); fill-mask: t = LN(relu(Wt x + bt)),
//     logits = [E | D] t + b, the 128-wide embedding extended by 384 more learned columns.
//
// Every released MobileBERT uses this variant (use_bottleneck, key_query_shared_bottleneck,
// trigram_input, normalization_type no_norm); other settings are refused by name. llama.cpp does not
// run MobileBERT: the GGUF names below are pocketlm's own.

import { ModelFormatError, UnsupportedModelError } from '../base/errors.js';
import type { Handle } from '../backend/backend.js';
import { GGMLType, numElements, toFloat32 } from '../base/tensor.js';
import { metaNumber } from '../format/gguf.js';
import { gguf } from '../format/gguf-writer.js';
import type { ModelFile, RawTensor } from '../format/model-file.js';
import { ACTIVATIONS, classifierLabels, encoderKeys, POOLING, type BertConfig } from './bert.js';
import { baseConfig, embeddingRows } from './config.js';
import type { HFConverter } from './hf.js';
import type { Architecture } from './transformer.js';
import type { AttentionWeights, FfnWeights, Linear, Norm, WeightReader } from './weights.js';

export interface MobileBertConfig extends BertConfig {
  /** The bottleneck width T (true_hidden_size). */
  bottleneck: number;
  /** Feed-forward networks per layer (the last one's output leaves the bottleneck). */
  ffnCount: number;
}

interface Layer<T> {
  inBottleneck: Linear<T>;
  inNorm: Norm<T>;
  qkBottleneck: Linear<T>;
  qkNorm: Norm<T>;
  attn: AttentionWeights<T>;
  attnNorm: Norm<T>;
  stacked: { ffn: FfnWeights<T>; norm: Norm<T> }[];
  ffn: FfnWeights<T>;
  ffnNorm: Norm<T>;
  outBottleneck: Linear<T>;
  outNorm: Norm<T>;
}

export interface MobileBertWeights<T = Handle> {
  tokenEmbd: T;
  /** The width-3 convolution over the embeddings: the next, current and previous token's columns. */
  next: Linear<T>;
  cur: Linear<T>;
  prev: Linear<T>;
  positionEmbd: T;
  tokenTypes: T;
  embdNorm: Norm<T>;
  /** A row of zeros as wide as the embeddings (the convolution's padding). */
  zeros: T;
  layers: Layer<T>[];
  pooler?: Linear<T>;
  classifier?: Linear<T>;
  mlm?: { dense: Linear<T>; norm: Norm<T>; decoder: Linear<T> };
}

export const mobilebert: Architecture<MobileBertConfig, MobileBertWeights> = {
  family: 'mobilebert',
  gguf: ['mobilebert'],
  encoder: true,
  hf: { classes: ['MobileBertModel', 'MobileBertForMaskedLM', 'MobileBertForSequenceClassification'], convert: mobilebertFromHF },

  config(file: ModelFile): MobileBertConfig {
    const c = baseConfig(file, 'mobilebert', embeddingRows(file));
    const h = c.hyper;
    const positions = embeddingRows(file, 'position_embd.weight');
    const act = ACTIVATIONS[h.string('feed_forward_activation') ?? 'relu'];
    if (!act) throw new UnsupportedModelError(file.source, `"mobilebert.feed_forward_activation" = "${h.string('feed_forward_activation')}" is not one pocketlm computes`);
    const bottleneck = h.size('bottleneck_length');
    if (c.nHeads * c.headDim !== bottleneck) throw new ModelFormatError(file.source, `head_count ${c.nHeads} x key_length ${c.headDim} must equal bottleneck_length ${bottleneck}`);
    const ffnCount = h.size('feed_forward_count', 1);
    const poolingType = metaNumber(file, 'mobilebert.pooling_type');
    const pooling = poolingType === undefined ? 'mean' : POOLING[poolingType];
    if (!pooling) throw new UnsupportedModelError(file.source, `"mobilebert.pooling_type" = ${poolingType}: pocketlm pools none (0), mean (1), cls (2) or last (3)`);
    const labels = file.tensors.has('cls.output.weight') ? classifierLabels(file, 'mobilebert') : undefined;
    const embedWidth = file.tensors.get('token_embd.weight')!.shape[0]!;
    return {
      ...c, contextLength: Math.min(c.contextLength, positions), maxContext: positions, eps: h.positive('attention.layer_norm_epsilon', 1e-12)!,
      act, embedWidth, sharedLayers: false, pooling, labels, poolerAct: 'tanh', hasMlmHead: file.tensors.has('mlm.dense.weight'), bottleneck, ffnCount,
      traits: [
        `bidirectional encoder in a ${bottleneck}-wide bottleneck of a ${c.dim}-wide residual stream; queries and keys from a shared bottleneck, values from the stream`,
        `NoNorm (x * w + b) instead of LayerNorm; ${ffnCount} stacked feed-forward networks per layer, ${act === 'relu' ? 'ReLU' : act}`,
        `${embedWidth}-wide embeddings through a width-3 convolution; learned absolute positions (${positions}) and token types`,
        `${pooling} pooling for sentence embeddings`,
        ...(labels ? [`classification head (${labels.length} labels)`] : []),
        ...(file.tensors.has('mlm.dense.weight') ? ['masked-LM head (fill-mask)'] : []),
      ],
    };
  },

  weights<T extends Handle>(read: WeightReader<T>, c: MobileBertConfig): MobileBertWeights<T> {
    const [H, T, E, I] = [c.dim, c.bottleneck, c.embedWidth, c.hiddenDim];
    const tokenEmbd = read.matrix('token_embd.weight', c.vocabSize, E);
    const attention = (p: string): AttentionWeights<T> => ({
      q: read.linear(`${p}attn_q`, T, T, 'required'), k: read.linear(`${p}attn_k`, T, T, 'required'), v: read.linear(`${p}attn_v`, T, H, 'required'), o: read.linear(`${p}attn_output`, T, T, 'required'),
    });
    return {
      tokenEmbd,
      next: read.linear('token_embd_proj_next', H, E, 'none'),
      cur: read.linear('token_embd_proj', H, E, 'required'),
      prev: read.linear('token_embd_proj_prev', H, E, 'none'),
      positionEmbd: read.matrix('position_embd.weight', embeddingRows(read.file, 'position_embd.weight'), H),
      tokenTypes: read.matrix('token_types.weight', embeddingRows(read.file, 'token_types.weight'), H),
      embdNorm: read.noNorm('token_embd_norm', H),
      zeros: read.zeros(E),
      layers: Array.from({ length: c.nLayers }, (_, l) => {
        const p = `blk.${l}.`;
        return {
          inBottleneck: read.linear(`${p}bneck_in`, T, H, 'required'),
          inNorm: read.noNorm(`${p}bneck_in_norm`, T),
          qkBottleneck: read.linear(`${p}bneck_qk`, T, H, 'required'),
          qkNorm: read.noNorm(`${p}bneck_qk_norm`, T),
          attn: attention(p),
          attnNorm: read.noNorm(`${p}attn_output_norm`, T),
          stacked: Array.from({ length: c.ffnCount - 1 }, (_, j) => ({ ffn: read.ffn(`${p}stack.${j}.`, T, I, c.act), norm: read.noNorm(`${p}stack.${j}.ffn_norm`, T) })),
          ffn: read.ffn(p, T, I, c.act),
          ffnNorm: read.noNorm(`${p}ffn_norm`, T),
          outBottleneck: read.linear(`${p}bneck_out`, H, T, 'required'),
          outNorm: read.noNorm(`${p}bneck_out_norm`, H),
        };
      }),
      pooler: read.has('cls.weight') ? read.linear('cls', H, H) : undefined,
      classifier: c.labels ? read.linear('cls.output', c.labels.length, H) : undefined,
      mlm: c.hasMlmHead ? { dense: read.linear('mlm.dense', H, H), norm: read.layerNorm('mlm.norm', H, c.eps), decoder: read.linear('mlm.output', c.vocabSize, H, 'required') } : undefined,
    };
  },

  forward(f, c) {
    const w = f.w;
    const [T, E] = [c.bottleneck, c.embedWidth];
    const e = f.buffer('embd', E), shifted = f.buffer('shifted', E);
    const r = f.buffer('r', T), qk = f.buffer('qk', T), a = f.buffer('a', T), o = f.buffer('o2', T);
    f.embed(e, w.tokenEmbd, { width: E });                                         // e = E[tokens]
    f.linear(f.x, e, w.cur);                                                       // x = W_cur e[t] + b
    f.shiftRows(shifted, e, +1, w.zeros, E);
    f.linear(f.x, shifted, w.next, { add: true });                                 //   + W_next e[t+1]
    f.shiftRows(shifted, e, -1, w.zeros, E);
    f.linear(f.x, shifted, w.prev, { add: true });                                 //   + W_prev e[t-1]
    f.positions(f.x, w.positionEmbd);                                              //   + P[positions]
    f.addRow(f.x, w.tokenTypes, 0);                                                //   + T[0]
    f.norm(f.x, f.x, w.embdNorm);                                                  // x = NoNorm(x)
    for (let l = 0; l < c.nLayers; l++) {
      const L = w.layers[l]!;
      f.linear(r, f.x, L.inBottleneck);
      f.norm(r, r, L.inNorm);                                                      // r = NoNorm(W_in x + b_in)
      f.linear(qk, f.x, L.qkBottleneck);
      f.norm(qk, qk, L.qkNorm);                                                    // qk = NoNorm(W_qk x + b_qk)
      f.attention(l, a, qk, L.attn, { causal: false, valueInput: f.x });          // a = Wo attention(Wq qk, Wk qk, Wv x) + bo
      f.add(a, r, T);
      f.norm(a, a, L.attnNorm);                                                    // a = NoNorm(r + a)
      for (const S of L.stacked) {
        f.ffn(o, a, S.ffn);
        f.add(a, o, T);
        f.norm(a, a, S.norm);                                                      // a = NoNorm(a + W2 relu(W1 a + b1) + b2)
      }
      f.ffn(o, a, L.ffn);
      f.add(o, a, T);
      f.norm(o, o, L.ffnNorm);                                                     // o = NoNorm(a + W2 relu(W1 a + b1) + b2)
      f.linear(f.x, o, L.outBottleneck, { add: true });
      f.norm(f.x, f.x, L.outNorm);                                                 // x = NoNorm(x + W_out o + b_out)
    }
    if (f.task === 'classify') {
      const cls = f.headRows(f.x, 'first');
      f.linear(f.h, cls, w.pooler!);
      f.activate(f.h, 'tanh');                                                     // pooled = tanh(Wp x[CLS] + bp)
      f.logits(f.h, w.classifier!);
    } else if (f.task === 'fill-mask') {
      const m = f.headRows(f.x, 'picked');
      f.linear(f.h, m, w.mlm!.dense);
      f.activate(f.h, c.act);
      f.norm(f.h, f.h, w.mlm!.norm);                                               // t = LN(relu(Wt x + bt))
      f.logits(f.h, w.mlm!.decoder);                                               // logits = [E | D] t + b
    }
  },
};

// --- Hugging Face folders ---

/** Columns [c0, c1) of a [rows][cols] matrix (GGUF shape [cols, rows]), as an F32 tensor. */
function columns(t: RawTensor, c0: number, c1: number): RawTensor {
  const [cols, rows] = t.shape as [number, number];
  const v = toFloat32(t.type, t.data, numElements(t.shape));
  const out = new Float32Array(rows * (c1 - c0));
  for (let r = 0; r < rows; r++) out.set(v.subarray(r * cols + c0, r * cols + c1), r * (c1 - c0));
  return { shape: [c1 - c0, rows], type: GGMLType.F32, data: new Uint8Array(out.buffer) };
}

/** The masked-LM decoder [vocab][hidden]: each token's embedding (E wide) then its column of dense.weight [hidden - E][vocab]. */
function mlmDecoder(embedding: RawTensor, extra: RawTensor, source: string): RawTensor {
  const [E, V] = embedding.shape as [number, number];
  const [V2, rest] = extra.shape as [number, number];
  if (V2 !== V) throw new ModelFormatError(source, `predictions.dense.weight has ${V2} columns, the vocabulary ${V}`);
  const emb = toFloat32(embedding.type, embedding.data, E * V), ext = toFloat32(extra.type, extra.data, V * rest);
  const out = new Float32Array(V * (E + rest));
  for (let v = 0; v < V; v++) {
    out.set(emb.subarray(v * E, (v + 1) * E), v * (E + rest));
    for (let i = 0; i < rest; i++) out[v * (E + rest) + E + i] = ext[i * V + v]!;
  }
  return { shape: [E + rest, V], type: GGMLType.F32, data: new Uint8Array(out.buffer) };
}

function mobilebertFromHF(h: HFConverter): void {
  h.arch('mobilebert');
  const { dim } = encoderKeys(h, { dim: 'hidden_size', layers: 'num_hidden_layers', heads: 'num_attention_heads', ffn: 'intermediate_size', act: 'hidden_act', defaultAct: 'relu' });
  for (const [key, want] of [['use_bottleneck', true], ['key_query_shared_bottleneck', true], ['use_bottleneck_attention', false], ['trigram_input', true]] as const)
    if (h.bool(key, want) !== want) throw new UnsupportedModelError(h.source, `"${key}" = ${!want}: pocketlm runs MobileBERT as released (use_bottleneck, key_query_shared_bottleneck, trigram_input; no use_bottleneck_attention)`);
  if ((h.str('normalization_type') ?? 'no_norm') !== 'no_norm') throw new UnsupportedModelError(h.source, `"normalization_type" = "${h.str('normalization_type')}": pocketlm runs MobileBERT's no_norm`);
  if (!h.bool('classifier_activation', true)) throw new UnsupportedModelError(h.source, '"classifier_activation" = false: pocketlm runs the tanh pooler');
  const T = h.int('intra_bottleneck_size', 128), heads = h.int('num_attention_heads'), E = h.int('embedding_size', 128), nLayers = h.int('num_hidden_layers');
  const nFfn = h.int('num_feedforward_networks', 4);
  if (T % heads) throw new ModelFormatError(h.source, `"intra_bottleneck_size" = ${T} is not divisible by "num_attention_heads" = ${heads}`);
  h.u32('attention.key_length', T / heads);
  h.u32('attention.value_length', T / heads);
  h.u32('bottleneck_length', T);
  h.u32('feed_forward_count', nFfn);
  const m = h.hf.tensors.has('mobilebert.embeddings.word_embeddings.weight') ? 'mobilebert.' : '';
  const word = h.take(`${m}embeddings.word_embeddings.weight`);
  h.put('token_embd.weight', word);
  const conv = h.take(`${m}embeddings.embedding_transformation.weight`);
  if (conv.shape[0] !== 3 * E || conv.shape[1] !== dim) throw new ModelFormatError(h.source, `embeddings.embedding_transformation.weight is [${[...conv.shape].reverse().join(', ')}], expected [${dim}, ${3 * E}]`);
  // Its input is [e[t+1], e[t], e[t-1]] side by side: one matrix per shifted copy.
  h.put('token_embd_proj_next.weight', columns(conv, 0, E));
  h.put('token_embd_proj.weight', columns(conv, E, 2 * E));
  h.put('token_embd_proj_prev.weight', columns(conv, 2 * E, 3 * E));
  h.map('token_embd_proj.bias', `${m}embeddings.embedding_transformation.bias`);
  h.map('position_embd.weight', `${m}embeddings.position_embeddings.weight`);
  h.map('token_types.weight', `${m}embeddings.token_type_embeddings.weight`);
  h.metadata.set('tokenizer.ggml.token_type_count', gguf.u32(h.int('type_vocab_size', 2)));
  h.mapWeightBias('token_embd_norm', `${m}embeddings.LayerNorm`);
  for (let l = 0; l < nLayers; l++) {
    const [p, q] = [`blk.${l}.`, `${m}encoder.layer.${l}.`];
    h.mapWeightBias(p + 'bneck_in', q + 'bottleneck.input.dense');
    h.mapWeightBias(p + 'bneck_in_norm', q + 'bottleneck.input.LayerNorm');
    h.mapWeightBias(p + 'bneck_qk', q + 'bottleneck.attention.dense');
    h.mapWeightBias(p + 'bneck_qk_norm', q + 'bottleneck.attention.LayerNorm');
    h.mapWeightBias(p + 'attn_q', q + 'attention.self.query');
    h.mapWeightBias(p + 'attn_k', q + 'attention.self.key');
    h.mapWeightBias(p + 'attn_v', q + 'attention.self.value');
    h.mapWeightBias(p + 'attn_output', q + 'attention.output.dense');
    h.mapWeightBias(p + 'attn_output_norm', q + 'attention.output.LayerNorm');
    for (let j = 0; j < nFfn - 1; j++) {
      h.mapWeightBias(`${p}stack.${j}.ffn_up`, `${q}ffn.${j}.intermediate.dense`);
      h.mapWeightBias(`${p}stack.${j}.ffn_down`, `${q}ffn.${j}.output.dense`);
      h.mapWeightBias(`${p}stack.${j}.ffn_norm`, `${q}ffn.${j}.output.LayerNorm`);
    }
    h.mapWeightBias(p + 'ffn_up', q + 'intermediate.dense');
    h.mapWeightBias(p + 'ffn_down', q + 'output.dense');
    h.mapWeightBias(p + 'ffn_norm', q + 'output.LayerNorm');
    h.mapWeightBias(p + 'bneck_out', q + 'output.bottleneck.dense');
    h.mapWeightBias(p + 'bneck_out_norm', q + 'output.bottleneck.LayerNorm');
  }
  if (h.hf.tensors.has(`${m}pooler.dense.weight`)) h.mapWeightBias('cls', `${m}pooler.dense`);
  if (h.hf.tensors.has('classifier.weight')) h.mapWeightBias('cls.output', 'classifier');
  if (h.hf.tensors.has('cls.predictions.bias')) {
    h.mapWeightBias('mlm.dense', 'cls.predictions.transform.dense');
    h.mapWeightBias('mlm.norm', 'cls.predictions.transform.LayerNorm');
    h.put('mlm.output.weight', mlmDecoder(word, h.take('cls.predictions.dense.weight'), h.source));
    h.map('mlm.output.bias', 'cls.predictions.bias');
  }
  h.ignore(/embeddings\.position_ids$|^cls\.predictions\.decoder\.(weight|bias)$/);
}
