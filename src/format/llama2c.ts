// llama2.c files: the model checkpoint (v0 "legacy" format) and the tokenizer .bin.
//
// Model: 7 x int32 header (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len);
// vocab_size > 0 means the classifier shares the token embedding, < 0 means a separate one follows.
// Then f32 arrays: token_embedding[vocab][dim], rms_att[L][dim], wq[L][dim][dim], wk[L][kv_dim][dim],
// wv[L][kv_dim][dim], wo[L][dim][dim], rms_ffn[L][dim], w1[L][hidden][dim], w2[L][dim][hidden],
// w3[L][hidden][dim], rms_final[dim], freq_cis_real[seq][head/2], freq_cis_imag[seq][head/2],
// (wcls[vocab][dim] when not shared). Matrices are row-major [out][in], the same bytes as GGUF's
// [in, out] shapes, and llama2.c rotates interleaved pairs as GGUF's `llama` does, so no permutation
// is needed. We turn a checkpoint into GGUF metadata + tensor views, the common form every loader produces.
//
// Tokenizer: int32 max_token_length, then per token: f32 score, int32 byte length, bytes. Spaces are
// stored as ' ' (SentencePiece's U+2581 replaced), BOS/EOS as "\n<s>\n" / "\n</s>\n".

import { ModelFormatError } from '../base/errors.js';
import type { GGUFValue } from './gguf.js';
import { gguf, type GGUFWriteInput, type GGUFWriteTensor } from './gguf-writer.js';
import { GGMLType } from '../base/tensor.js';
import { TokenType, vocabMetadata, type Vocab } from './vocab.js';

export interface Llama2cHeader {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  sharedClassifier: boolean;
}

const HEADER_BYTES = 28;
const LIMIT = 1 << 20; // no sane dimension of a llama2.c model exceeds a million

export function readLlama2cHeader(bytes: Uint8Array, source: string): Llama2cHeader {
  if (bytes.byteLength < HEADER_BYTES)
    throw new ModelFormatError(source, `file is truncated: ${bytes.byteLength} bytes is shorter than the 28-byte llama2.c header`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabRaw, seqLen] = Array.from({ length: 7 }, (_, i) => v.getInt32(4 * i, true)) as [number, number, number, number, number, number, number];
  const h = { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: Math.abs(vocabRaw), seqLen, sharedClassifier: vocabRaw > 0 };
  const bad = (what: string) => {
    throw new ModelFormatError(source, `not a valid llama2.c checkpoint: ${what} (header: dim=${dim} hidden_dim=${hiddenDim} n_layers=${nLayers} n_heads=${nHeads} n_kv_heads=${nKvHeads} vocab_size=${vocabRaw} seq_len=${seqLen})`);
  };
  for (const [k, x] of Object.entries({ dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: h.vocabSize, seqLen }))
    if (!(x > 0 && x <= LIMIT)) bad(`${k} = ${x} is out of range 1..${LIMIT}`);
  if (dim % nHeads !== 0) bad(`dim ${dim} is not divisible by n_heads ${nHeads}`);
  if (nHeads % nKvHeads !== 0) bad(`n_heads ${nHeads} is not divisible by n_kv_heads ${nKvHeads}`);
  if ((dim / nHeads) % 2 !== 0) bad(`head size ${dim / nHeads} is odd, RoPE needs pairs`);
  return h;
}

/** Read a llama2.c checkpoint as GGUF metadata and tensors (views into `bytes`, no copy). */
export function llama2cModel(bytes: Uint8Array, source: string): { header: Llama2cHeader; tensors: GGUFWriteTensor[] } {
  const h = readLlama2cHeader(bytes, source);
  const headSize = h.dim / h.nHeads;
  const kvDim = headSize * h.nKvHeads;
  let offset = HEADER_BYTES;
  const tensors: GGUFWriteTensor[] = [];
  const sections: [string, number[]][] = [];
  const perLayer = (name: string, shape: number[]) => {
    for (let l = 0; l < h.nLayers; l++) sections.push([`blk.${l}.${name}`, shape]);
  };
  // Sections in file order. Shapes in ggml order: [in, out].
  sections.push(['token_embd.weight', [h.dim, h.vocabSize]]);
  perLayer('attn_norm.weight', [h.dim]);
  perLayer('attn_q.weight', [h.dim, h.dim]);
  perLayer('attn_k.weight', [h.dim, kvDim]);
  perLayer('attn_v.weight', [h.dim, kvDim]);
  perLayer('attn_output.weight', [h.dim, h.dim]);
  perLayer('ffn_norm.weight', [h.dim]);
  perLayer('ffn_gate.weight', [h.dim, h.hiddenDim]); // w1
  perLayer('ffn_down.weight', [h.hiddenDim, h.dim]); // w2
  perLayer('ffn_up.weight', [h.dim, h.hiddenDim]); // w3
  sections.push(['output_norm.weight', [h.dim]]);
  sections.push(['(freq_cis)', [h.seqLen * headSize]]); // legacy real + imag tables, unused
  if (!h.sharedClassifier) sections.push(['output.weight', [h.dim, h.vocabSize]]);

  const totalFloats = sections.reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);
  const expected = HEADER_BYTES + totalFloats * 4;
  if (bytes.byteLength < expected)
    throw new ModelFormatError(source, `file is truncated: this header (dim ${h.dim}, ${h.nLayers} layers, vocab ${h.vocabSize}) needs ${expected} bytes, the file has ${bytes.byteLength}`);
  for (const [name, shape] of sections) {
    const n = shape.reduce((a, b) => a * b, 1) * 4;
    if (!name.startsWith('(')) tensors.push({ name, shape, type: GGMLType.F32, data: bytes.subarray(offset, offset + n) });
    offset += n;
  }
  // Put tensors in the order llama.cpp's converters write them (per layer, all of one block together).
  const order = (n: string) => (n === 'token_embd.weight' ? -2 : n.startsWith('blk.') ? Number(n.split('.')[1]) : 1e9);
  tensors.sort((a, b) => order(a.name) - order(b.name));
  return { header: h, tensors };
}

/** Parse a llama2.c tokenizer file into a SentencePiece-style vocabulary. */
export function llama2cVocab(bytes: Uint8Array, source: string, expectedSize?: number): Vocab {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 4) throw new ModelFormatError(source, 'file is truncated: no max_token_length header');
  const maxLen = v.getInt32(0, true);
  if (!(maxLen > 0 && maxLen <= 1 << 16)) throw new ModelFormatError(source, `not a llama2.c tokenizer: max_token_length is ${maxLen}`);
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: TokenType[] = [];
  const utf8 = new TextDecoder();
  let p = 4;
  while (p < bytes.byteLength && (expectedSize === undefined || tokens.length < expectedSize)) {
    if (p + 8 > bytes.byteLength) throw new ModelFormatError(source, `file is truncated inside token #${tokens.length} at offset ${p}`);
    const score = v.getFloat32(p, true);
    const len = v.getInt32(p + 4, true);
    if (len < 0 || len > maxLen || p + 8 + len > bytes.byteLength)
      throw new ModelFormatError(source, `token #${tokens.length} at offset ${p} has length ${len}, outside 0..${maxLen} or past the end of the file`);
    let text = utf8.decode(bytes.subarray(p + 8, p + 8 + len));
    p += 8 + len;
    const id = tokens.length;
    let type = TokenType.NORMAL;
    if (id === 0) type = TokenType.UNKNOWN;
    else if (text === '\n<s>\n' || text === '\n</s>\n') { text = text.trim(); type = TokenType.CONTROL; }
    else if (/^<0x[0-9A-F]{2}>$/.test(text)) type = TokenType.BYTE;
    else text = text.replaceAll(' ', '\u2581');
    tokens.push(text);
    scores.push(score);
    types.push(type);
  }
  if (expectedSize !== undefined && tokens.length !== expectedSize)
    throw new ModelFormatError(source, `tokenizer has ${tokens.length} tokens but the model's vocabulary has ${expectedSize}: the file is truncated, or it is not the tokenizer that belongs to the model`);
  const bos = tokens.indexOf('<s>');
  const eos = tokens.indexOf('</s>');
  return { model: 'llama', tokens, scores, types, bosId: bos >= 0 ? bos : 1, eosId: eos >= 0 ? eos : 2, unkId: 0, addBos: true, addEos: false, addSpacePrefix: true };
}

/** A llama2.c model + tokenizer as GGUF (`llama` architecture, F32), ready to load or to write. */
export function llama2cToGGUF(model: Uint8Array, modelSource: string, tokenizer: Uint8Array, tokenizerSource: string, name = 'llama2.c model'): GGUFWriteInput {
  const { header: h, tensors } = llama2cModel(model, modelSource);
  const vocab = llama2cVocab(tokenizer, tokenizerSource, h.vocabSize);
  const metadata = new Map<string, GGUFValue>([
    ...llamaMetadata({ name, dim: h.dim, hiddenDim: h.hiddenDim, nLayers: h.nLayers, nHeads: h.nHeads, nKvHeads: h.nKvHeads, vocabSize: h.vocabSize, contextLength: h.seqLen, rmsEps: 1e-5, ropeTheta: 10000, fileType: 0 }),
    ...vocabMetadata(vocab),
  ]);
  return { metadata, tensors };
}

/** The metadata keys a GGUF `llama` model needs (what a llama2.c checkpoint converts to). */
export function llamaMetadata(c: { name: string; dim: number; hiddenDim: number; nLayers: number; nHeads: number; nKvHeads: number; vocabSize: number; contextLength: number; rmsEps: number; ropeTheta: number; fileType: number }): [string, GGUFValue][] {
  return [
    ['general.architecture', gguf.str('llama')],
    ['general.name', gguf.str(c.name)],
    ['general.file_type', gguf.u32(c.fileType)], // 0 = all F32, 1 = mostly F16
    ['llama.vocab_size', gguf.u32(c.vocabSize)],
    ['llama.context_length', gguf.u32(c.contextLength)],
    ['llama.embedding_length', gguf.u32(c.dim)],
    ['llama.block_count', gguf.u32(c.nLayers)],
    ['llama.feed_forward_length', gguf.u32(c.hiddenDim)],
    ['llama.rope.dimension_count', gguf.u32(c.dim / c.nHeads)],
    ['llama.rope.freq_base', gguf.f32(c.ropeTheta)],
    ['llama.attention.head_count', gguf.u32(c.nHeads)],
    ['llama.attention.head_count_kv', gguf.u32(c.nKvHeads)],
    ['llama.attention.layer_norm_rms_epsilon', gguf.f32(c.rmsEps)],
  ];
}
