// BERT and its small descendants (MiniLM, TinyBERT, bge-small: BERT's shape; DistilBERT: BERT without
// token types; ALBERT: a factorized embedding and one layer's weights shared by every layer): a
// bidirectional encoder of post-norm blocks, biases everywhere.
//
//   x = LN(E[tokens] + P[positions] + T[0])            token type 0 for a single text; ALBERT: width E,
//   x = W_in x + b_in                                     then projected to the hidden width (ALBERT only)
//   for each layer (ALBERT: the same weights each time):
//     x = LN(x + Wo attention(Wq x, Wk x, Wv x) + bo)     bidirectional: every token sees the whole text
//     x = LN(x + W2 act(W1 x + b1) + b2)                  act: exact GELU (BERT), tanh GELU (ALBERT)
//   heads, when the checkpoint has them:
//     classify   logits = Wc pool(x[CLS]) + bc,   pool(h) = tanh(Wp h + bp)  (DistilBERT: relu)
//     fill-mask  logits = E LN(act(Wt x + bt)) + b  for the masked rows (the decoder tied to E)
//
// GGUF names are llama.cpp's for its `bert` architecture (token_types, token_embd_norm,
// attn_output_norm, layer_output_norm; the pooler as `cls` and the classifier as `cls.output`), plus
// pocketlm's own for what llama.cpp does not run: `token_embd_proj` (ALBERT), `mlm.dense`, `mlm.norm`,
// `mlm.output.bias` (the masked-LM head) and the keys `{arch}.feed_forward_activation`, `{arch}.pooler_activation`.

import { ModelFormatError, UnsupportedModelError } from '../base/errors.js';
import type { Handle } from '../backend/backend.js';
import { metaArray, metaNumber, metaString } from '../format/gguf.js';
import { gguf } from '../format/gguf-writer.js';
import type { ModelFile } from '../format/model-file.js';
import type { Activation } from '../stages/ffn.js';
import { baseConfig, embeddingRows, type ModelConfig } from './config.js';
import type { HFConverter, HFMapping } from './hf.js';
import type { Architecture } from './transformer.js';
import type { AttentionWeights, FfnWeights, Linear, Norm, WeightReader } from './weights.js';

/** How a sentence embedding is pooled from the final hidden states. */
export type Pooling = 'mean' | 'cls' | 'last' | 'none';
/** llama.cpp's pooling_type numbers. */
export const POOLING: Record<number, Pooling> = { 0: 'none', 1: 'mean', 2: 'cls', 3: 'last' };

export interface BertConfig extends ModelConfig {
  eps: number;
  act: Activation;
  /** Width of the embeddings before ALBERT's projection (dim otherwise). */
  embedWidth: number;
  /** One layer's weights run nLayers times (ALBERT). */
  sharedLayers: boolean;
  /** Sentence embedding pooling the model was trained with (sentence-transformers' config, GGUF pooling_type). */
  pooling: Pooling;
  /** The classifier's labels, when the checkpoint has a classification head. */
  labels?: string[];
  poolerAct: 'tanh' | 'relu';
  /** The checkpoint has a masked-LM head (fill-mask). */
  hasMlmHead: boolean;
}

interface Layer<T> {
  attn: AttentionWeights<T>;
  attnNorm: Norm<T>;
  ffn: FfnWeights<T>;
  outNorm: Norm<T>;
}

export interface BertWeights<T = Handle> {
  tokenEmbd: T;
  positionEmbd: T;
  tokenTypes?: T;
  embdNorm: Norm<T>;
  embdProj?: Linear<T>;
  layers: Layer<T>[];
  pooler?: Linear<T>;
  classifier?: Linear<T>;
  mlm?: { dense: Linear<T>; norm: Norm<T>; decoder: Linear<T> };
}

/** The most times an ALBERT runs its shared layer (the file does not bound it: the weights are stored once). */
const MAX_SHARED_LAYERS = 128;

export const ACTIVATIONS: Record<string, Activation> = { gelu: 'gelu_erf', gelu_erf: 'gelu_erf', gelu_new: 'gelu', gelu_pytorch_tanh: 'gelu', gelu_tanh: 'gelu', relu: 'relu' };

export const bert: Architecture<BertConfig, BertWeights> = {
  family: 'bert',
  gguf: ['bert', 'albert'],
  encoder: true,
  hf: {
    classes: ['BertModel', 'BertForMaskedLM', 'BertForSequenceClassification', 'DistilBertModel', 'DistilBertForMaskedLM', 'DistilBertForSequenceClassification', 'AlbertModel', 'AlbertForMaskedLM', 'AlbertForSequenceClassification'],
    convert(h) {
      const cls = h.hf.config.architectures[0] as string;
      if (cls.startsWith('DistilBert')) distilbertFromHF(h);
      else if (cls.startsWith('Albert')) albertFromHF(h);
      else bertFromHF(h);
    },
  } satisfies HFMapping,

  config(file: ModelFile): BertConfig {
    const c = baseConfig(file, 'bert', embeddingRows(file));
    const h = c.hyper;
    const positions = embeddingRows(file, 'position_embd.weight');
    const actName = h.string('feed_forward_activation') ?? 'gelu_erf';
    const act = ACTIVATIONS[actName];
    if (!act) throw new UnsupportedModelError(file.source, `"${c.architecture}.feed_forward_activation" = "${actName}" is not one pocketlm computes (${Object.keys(ACTIVATIONS).join(', ')})`);
    if (c.nKvHeads !== c.nHeads) throw new ModelFormatError(file.source, `an encoder has as many key/value heads as query heads (${c.nHeads}), not ${c.nKvHeads}`);
    const embd = file.tensors.get('token_embd.weight')!;
    const embedWidth = embd.shape[0]!;
    const sharedLayers = c.architecture === 'albert';
    // Shared weights make the layer count free in the file but not in time: bound it (released ALBERTs run 12 or 24).
    if (sharedLayers && c.nLayers > MAX_SHARED_LAYERS) throw new ModelFormatError(file.source, `block_count ${c.nLayers} for one shared layer: ALBERT models run 12 to 24 times; pocketlm runs at most ${MAX_SHARED_LAYERS}`);
    if (embedWidth !== c.dim && !file.tensors.has('token_embd_proj.weight')) throw new ModelFormatError(file.source, `token_embd.weight is ${embedWidth} wide, not the hidden ${c.dim}, and there is no token_embd_proj.weight to project it`);
    const poolingType = metaNumber(file, `${c.architecture}.pooling_type`);
    const pooling = poolingType === undefined ? 'mean' : POOLING[poolingType];
    if (!pooling) throw new UnsupportedModelError(file.source, `"${c.architecture}.pooling_type" = ${poolingType}: pocketlm pools none (0), mean (1), cls (2) or last (3)`);
    const labels = file.tensors.has('cls.output.weight') ? classifierLabels(file, c.architecture) : undefined;
    const poolerAct = metaString(file, `${c.architecture}.pooler_activation`) ?? 'tanh';
    if (poolerAct !== 'tanh' && poolerAct !== 'relu') throw new UnsupportedModelError(file.source, `"${c.architecture}.pooler_activation" = "${poolerAct}": pocketlm computes tanh or relu`);
    const traits = [
      'bidirectional encoder, post-norm blocks (LayerNorm after each residual add), biases everywhere',
      `learned absolute positions (${positions})${file.tensors.has('token_types.weight') ? ' and token types' : ''}`,
      act === 'gelu_erf' ? 'GELU (exact, erf)' : act === 'gelu' ? 'GELU (tanh)' : 'ReLU',
      ...(sharedLayers ? [`one layer's weights shared by all ${c.nLayers} layers`] : []),
      ...(embedWidth !== c.dim ? [`factorized embedding (${embedWidth} projected to ${c.dim})`] : []),
      `${pooling} pooling for sentence embeddings`,
      ...(labels ? [`classification head (${labels.length} labels)`] : []),
      ...(file.tensors.has('mlm.dense.weight') ? ['masked-LM head (fill-mask)'] : []),
    ];
    return {
      ...c, contextLength: Math.min(c.contextLength, positions), maxContext: positions, eps: h.positive('attention.layer_norm_epsilon', 1e-12)!,
      act, embedWidth, sharedLayers, pooling, labels, poolerAct, hasMlmHead: file.tensors.has('mlm.dense.weight'), traits,
    };
  },

  weights<T extends Handle>(read: WeightReader<T>, c: BertConfig): BertWeights<T> {
    const E = c.embedWidth;
    const tokenEmbd = read.matrix('token_embd.weight', c.vocabSize, E);
    const layer = (l: number): Layer<T> => {
      const p = `blk.${l}.`;
      return {
        attn: read.attention(p, { ...c, eps: c.eps }),
        attnNorm: read.layerNorm(p + 'attn_output_norm', c.dim, c.eps),
        ffn: read.ffn(p, c.dim, c.hiddenDim, c.act),
        outNorm: read.layerNorm(p + 'layer_output_norm', c.dim, c.eps),
      };
    };
    const shared = c.sharedLayers ? layer(0) : undefined;
    return {
      tokenEmbd,
      positionEmbd: read.matrix('position_embd.weight', embeddingRows(read.file, 'position_embd.weight'), E),
      tokenTypes: read.has('token_types.weight') ? read.matrix('token_types.weight', embeddingRows(read.file, 'token_types.weight'), E) : undefined,
      embdNorm: read.layerNorm('token_embd_norm', E, c.eps),
      embdProj: E !== c.dim ? read.linear('token_embd_proj', c.dim, E) : undefined,
      layers: Array.from({ length: c.nLayers }, (_, l) => shared ?? layer(l)),
      pooler: read.has('cls.weight') ? read.linear('cls', c.dim, c.dim) : undefined,
      classifier: c.labels ? read.linear('cls.output', c.labels.length, c.dim) : undefined,
      mlm: c.hasMlmHead ? { dense: read.linear('mlm.dense', E, c.dim), norm: read.layerNorm('mlm.norm', E, c.eps), decoder: { w: tokenEmbd, b: read.vector('mlm.output.bias', c.vocabSize), rows: c.vocabSize, cols: E } } : undefined,
    };
  },

  forward(f, c) {
    const w = f.w;
    const E = c.embedWidth;
    const e = w.embdProj ? f.buffer('embd', E) : f.x;
    f.embed(e, w.tokenEmbd, { width: E });                                         // x = E[tokens]
    f.positions(e, w.positionEmbd, { width: E });                                  //   + P[positions]
    if (w.tokenTypes) f.addRow(e, w.tokenTypes, 0, E);                             //   + T[0]
    f.norm(e, e, w.embdNorm);                                                      // x = LN(x)
    if (w.embdProj) f.linear(f.x, e, w.embdProj);                                  // x = W_in x + b_in (ALBERT)
    for (let l = 0; l < c.nLayers; l++) {
      const L = w.layers[l]!;
      f.attention(l, f.o, f.x, L.attn, { causal: false });                        // o = Wo attention(Wq x, Wk x, Wv x) + bo
      f.add(f.x, f.o);
      f.norm(f.x, f.x, L.attnNorm);                                                // x = LN(x + o)
      f.ffn(f.o, f.x, L.ffn);                                                      // o = W2 act(W1 x + b1) + b2
      f.add(f.x, f.o);
      f.norm(f.x, f.x, L.outNorm);                                                 // x = LN(x + o)
    }
    if (f.task === 'classify') {
      const cls = f.headRows(f.x, 'first');                                        // each text's [CLS] row
      f.linear(f.h, cls, w.pooler!);
      f.activate(f.h, c.poolerAct);                                                // pooled = tanh(Wp h + bp)
      f.logits(f.h, w.classifier!);                                                // logits = Wc pooled + bc
    } else if (f.task === 'fill-mask') {
      const m = f.headRows(f.x, 'picked');                                         // the masked rows
      const t = f.buffer('mlm', E);
      f.linear(t, m, w.mlm!.dense);
      f.activate(t, c.act, E);
      f.norm(t, t, w.mlm!.norm);                                                   // t = LN(act(Wt x + bt))
      f.logits(t, w.mlm!.decoder);                                                 // logits = E t + b
    }
  },
};

/** The classifier's labels: `{arch}.classifier.output_labels` (llama.cpp's key), else LABEL_0.. by its rows. */
export function classifierLabels(file: ModelFile, arch: string): string[] {
  const rows = file.tensors.get('cls.output.weight')!.shape[1]!;
  const listed = metaArray(file, `${arch}.classifier.output_labels`);
  if (listed === undefined) return Array.from({ length: rows }, (_, i) => `LABEL_${i}`);
  if (listed.length !== rows || listed.some((l) => typeof l !== 'string')) throw new ModelFormatError(file.source, `"${arch}.classifier.output_labels" lists ${listed.length} labels for a classifier of ${rows} rows`);
  return listed as string[];
}

// --- Hugging Face folders ---

/** The keys every encoder sets: sizes, eps, activation, labels (id2label), pooling (sentence-transformers). */
export function encoderKeys(h: HFConverter, o: { dim: string; layers: string; heads: string; ffn: string; eps?: number; act: string; defaultAct: string }): { dim: number; nLayers: number } {
  const dim = h.int(o.dim), nLayers = h.int(o.layers), nHeads = h.int(o.heads);
  if (dim % nHeads) throw new ModelFormatError(h.source, `"${o.dim}" = ${dim} is not divisible by "${o.heads}" = ${nHeads}`);
  h.u32('context_length', h.int('max_position_embeddings'));
  h.u32('embedding_length', dim);
  h.u32('block_count', nLayers);
  h.u32('feed_forward_length', h.int(o.ffn));
  h.u32('attention.head_count', nHeads);
  h.u32('attention.head_count_kv', nHeads);
  h.f32('attention.layer_norm_epsilon', o.eps ?? h.num('layer_norm_eps', 1e-12));
  h.set('attention.causal', gguf.bool(false));
  const act = h.str(o.act) ?? o.defaultAct;
  if (!ACTIVATIONS[act]) throw new UnsupportedModelError(h.source, `"${o.act}" = "${act}" is not an activation pocketlm computes for this family (${Object.keys(ACTIVATIONS).join(', ')})`);
  h.set('feed_forward_activation', gguf.str(act === 'gelu' ? 'gelu_erf' : act));
  const id2label = h.raw('id2label');
  if (id2label && typeof id2label === 'object') {
    const n = Object.keys(id2label).length;
    h.set('classifier.output_labels', gguf.strings(Array.from({ length: n }, (_, i) => String(id2label[i] ?? id2label[String(i)] ?? `LABEL_${i}`))));
  }
  const pool = h.hf.pooling;
  if (pool) h.u32('pooling_type', pool.pooling_mode_cls_token ? 2 : pool.pooling_mode_lasttoken ? 3 : pool.pooling_mode_mean_tokens ? 1 : 0);
  return { dim, nLayers };
}

/** BertModel / BertForMaskedLM / BertForSequenceClassification (MiniLM, TinyBERT, bge...). */
function bertFromHF(h: HFConverter): void {
  h.arch('bert');
  const { nLayers } = encoderKeys(h, { dim: 'hidden_size', layers: 'num_hidden_layers', heads: 'num_attention_heads', ffn: 'intermediate_size', act: 'hidden_act', defaultAct: 'gelu' });
  if ((h.str('position_embedding_type') ?? 'absolute') !== 'absolute') throw new UnsupportedModelError(h.source, `"position_embedding_type" = "${h.str('position_embedding_type')}": pocketlm computes absolute positions`);
  const b = h.hf.tensors.has('bert.embeddings.word_embeddings.weight') ? 'bert.' : '';
  h.map('token_embd.weight', `${b}embeddings.word_embeddings.weight`);
  h.map('position_embd.weight', `${b}embeddings.position_embeddings.weight`);
  h.map('token_types.weight', `${b}embeddings.token_type_embeddings.weight`);
  h.metadata.set('tokenizer.ggml.token_type_count', gguf.u32(h.int('type_vocab_size', 2))); // llama.cpp requires it
  h.mapWeightBias('token_embd_norm', `${b}embeddings.LayerNorm`);
  for (let l = 0; l < nLayers; l++) {
    const [p, q] = [`blk.${l}.`, `${b}encoder.layer.${l}.`];
    h.mapWeightBias(p + 'attn_q', q + 'attention.self.query');
    h.mapWeightBias(p + 'attn_k', q + 'attention.self.key');
    h.mapWeightBias(p + 'attn_v', q + 'attention.self.value');
    h.mapWeightBias(p + 'attn_output', q + 'attention.output.dense');
    h.mapWeightBias(p + 'attn_output_norm', q + 'attention.output.LayerNorm');
    h.mapWeightBias(p + 'ffn_up', q + 'intermediate.dense');
    h.mapWeightBias(p + 'ffn_down', q + 'output.dense');
    h.mapWeightBias(p + 'layer_output_norm', q + 'output.LayerNorm');
  }
  if (h.hf.tensors.has(`${b}pooler.dense.weight`)) h.mapWeightBias('cls', `${b}pooler.dense`);
  if (h.hf.tensors.has('classifier.weight')) h.mapWeightBias('cls.output', 'classifier');
  if (h.hf.tensors.has('cls.predictions.transform.dense.weight')) {
    h.mapWeightBias('mlm.dense', 'cls.predictions.transform.dense');
    h.mapWeightBias('mlm.norm', 'cls.predictions.transform.LayerNorm');
    h.map('mlm.output.bias', 'cls.predictions.bias');
  }
  // Position-id buffers; the masked-LM decoder, which is the word embedding (tied) with the bias above.
  h.ignore(/embeddings\.position_ids$|^cls\.predictions\.decoder\.(weight|bias)$/);
}

/** DistilBertModel / ...ForMaskedLM / ...ForSequenceClassification: BERT's blocks without token types. */
function distilbertFromHF(h: HFConverter): void {
  h.arch('bert');
  const { nLayers } = encoderKeys(h, { dim: 'dim', layers: 'n_layers', heads: 'n_heads', ffn: 'hidden_dim', eps: 1e-12, act: 'activation', defaultAct: 'gelu' });
  if (h.bool('sinusoidal_pos_embds', false)) throw new UnsupportedModelError(h.source, '"sinusoidal_pos_embds" = true: pocketlm reads learned position embeddings');
  const d = h.hf.tensors.has('distilbert.embeddings.word_embeddings.weight') ? 'distilbert.' : '';
  h.map('token_embd.weight', `${d}embeddings.word_embeddings.weight`);
  h.map('position_embd.weight', `${d}embeddings.position_embeddings.weight`);
  h.mapWeightBias('token_embd_norm', `${d}embeddings.LayerNorm`);
  for (let l = 0; l < nLayers; l++) {
    const [p, q] = [`blk.${l}.`, `${d}transformer.layer.${l}.`];
    h.mapWeightBias(p + 'attn_q', q + 'attention.q_lin');
    h.mapWeightBias(p + 'attn_k', q + 'attention.k_lin');
    h.mapWeightBias(p + 'attn_v', q + 'attention.v_lin');
    h.mapWeightBias(p + 'attn_output', q + 'attention.out_lin');
    h.mapWeightBias(p + 'attn_output_norm', q + 'sa_layer_norm');
    h.mapWeightBias(p + 'ffn_up', q + 'ffn.lin1');
    h.mapWeightBias(p + 'ffn_down', q + 'ffn.lin2');
    h.mapWeightBias(p + 'layer_output_norm', q + 'output_layer_norm');
  }
  if (h.hf.tensors.has('pre_classifier.weight')) {
    h.mapWeightBias('cls', 'pre_classifier');
    h.mapWeightBias('cls.output', 'classifier');
    h.set('pooler_activation', gguf.str('relu'));
  }
  if (h.hf.tensors.has('vocab_transform.weight')) {
    h.mapWeightBias('mlm.dense', 'vocab_transform');
    h.mapWeightBias('mlm.norm', 'vocab_layer_norm');
    h.map('mlm.output.bias', 'vocab_projector.bias');
  }
  h.ignore(/embeddings\.position_ids$|^vocab_projector\.weight$/);
}

/** AlbertModel / ...ForMaskedLM / ...ForSequenceClassification: one layer group of one layer, shared. */
function albertFromHF(h: HFConverter): void {
  h.arch('albert');
  encoderKeys(h, { dim: 'hidden_size', layers: 'num_hidden_layers', heads: 'num_attention_heads', ffn: 'intermediate_size', act: 'hidden_act', defaultAct: 'gelu_new' });
  if (h.int('num_hidden_groups', 1) !== 1 || h.int('inner_group_num', 1) !== 1) throw new UnsupportedModelError(h.source, 'ALBERT with more than one layer group or inner layer: pocketlm runs num_hidden_groups = inner_group_num = 1 (every released ALBERT)');
  const a = h.hf.tensors.has('albert.embeddings.word_embeddings.weight') ? 'albert.' : '';
  h.map('token_embd.weight', `${a}embeddings.word_embeddings.weight`);
  h.map('position_embd.weight', `${a}embeddings.position_embeddings.weight`);
  h.map('token_types.weight', `${a}embeddings.token_type_embeddings.weight`);
  h.mapWeightBias('token_embd_norm', `${a}embeddings.LayerNorm`);
  h.mapWeightBias('token_embd_proj', `${a}encoder.embedding_hidden_mapping_in`);
  const q = `${a}encoder.albert_layer_groups.0.albert_layers.0.`;
  h.mapWeightBias('blk.0.attn_q', q + 'attention.query');
  h.mapWeightBias('blk.0.attn_k', q + 'attention.key');
  h.mapWeightBias('blk.0.attn_v', q + 'attention.value');
  h.mapWeightBias('blk.0.attn_output', q + 'attention.dense');
  h.mapWeightBias('blk.0.attn_output_norm', q + 'attention.LayerNorm');
  h.mapWeightBias('blk.0.ffn_up', q + 'ffn');
  h.mapWeightBias('blk.0.ffn_down', q + 'ffn_output');
  h.mapWeightBias('blk.0.layer_output_norm', q + 'full_layer_layer_norm');
  if (h.hf.tensors.has(`${a}pooler.weight`)) h.mapWeightBias('cls', `${a}pooler`);
  if (h.hf.tensors.has('classifier.weight')) h.mapWeightBias('cls.output', 'classifier');
  if (h.hf.tensors.has('predictions.dense.weight')) {
    h.mapWeightBias('mlm.dense', 'predictions.dense');
    h.mapWeightBias('mlm.norm', 'predictions.LayerNorm');
    h.map('mlm.output.bias', 'predictions.bias');
  }
  h.ignore(/embeddings\.position_ids$|^predictions\.decoder\.(weight|bias)$/);
}
