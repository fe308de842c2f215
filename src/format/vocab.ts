// A tokenizer vocabulary as GGUF stores it (tokenizer.ggml.*), whatever file it came from.

import { ModelFormatError, UnsupportedModelError } from '../base/errors.js';
import { metaArray, metaBool, metaNumber, metaString, type GGUFValue, type MetaHolder } from './gguf.js';
import { gguf } from './gguf-writer.js';

/** SentencePiece's visible space, U+2581, as vocabularies spell a word-initial space. */
export const SPACE_MARK = '\u2581';

/** llama.cpp's token attribute types (tokenizer.ggml.token_type). */
export enum TokenType {
  UNDEFINED = 0,
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}

/**
 * tokenizer.ggml.model: 'llama' = SentencePiece-style BPE with scores; 'gpt2' = byte-level BPE with
 * merges and a pre-tokenizer; 'bert' = WordPiece.
 */
export type TokenizerKind = 'llama' | 'gpt2' | 'bert';

export interface Vocab {
  model: TokenizerKind;
  tokens: string[];
  scores: number[];
  types: TokenType[];
  /** Byte-level BPE merges, "left right", best first. */
  merges?: string[];
  /** Pre-tokenizer family (tokenizer.ggml.pre), for byte-level BPE. */
  pre?: string;
  bosId: number;
  eosId: number;
  unkId: number;
  addBos: boolean;
  addEos: boolean;
  addSpacePrefix: boolean;
  /** WordPiece: longer words become [UNK] (tokenizer.json's max_input_chars_per_word). */
  maxWordChars?: number;
  /**
   * WordPiece: drop control characters before testing for whitespace, as Hugging Face's
   * BertNormalizer does (so "a\vb" is one word); llama.cpp tests whitespace first (two words).
   */
  controlBeforeWhitespace?: boolean;
  /** Unicode normalization applied to text before tokenizing (tokenizer.json's NFC normalizer, GPT-NeoX). */
  normalizer?: 'nfc';
  /** Decoding tidies tokenization spaces (" ," -> ",", " n't" -> "n't"...), as tokenizer.json's WordPiece decoder "cleanup" asks. */
  cleanupDecoded?: boolean;
  /** Jinja chat template (GGUF tokenizer.chat_template, or tokenizer_config.json's chat_template). */
  chatTemplate?: string;
  /** End-of-turn token (tokenizer.ggml.eot_token_id), where chat generation also stops. */
  eotId?: number;
}

const KINDS: TokenizerKind[] = ['llama', 'gpt2', 'bert'];

export function vocabFromMetadata(file: MetaHolder): Vocab {
  const kind = metaString(file, 'tokenizer.ggml.model');
  if (kind === undefined) throw new ModelFormatError(file.source, 'has no tokenizer (metadata "tokenizer.ggml.model" is missing)');
  if (!KINDS.includes(kind as TokenizerKind))
    throw new UnsupportedModelError(file.source, `tokenizer kind "${kind}" is not supported; pocketlm reads ${KINDS.map((k) => `"${k}"`).join(', ')}`);
  const model = kind as TokenizerKind;
  const tokens = metaArray(file, 'tokenizer.ggml.tokens');
  if (!tokens || tokens.some((t) => typeof t !== 'string'))
    throw new ModelFormatError(file.source, 'metadata "tokenizer.ggml.tokens" is missing or not an array of strings');
  const n = tokens.length;
  const scores = (metaArray(file, 'tokenizer.ggml.scores') ?? new Array<number>(n).fill(0)).map(Number);
  const types = (metaArray(file, 'tokenizer.ggml.token_type') ?? new Array<number>(n).fill(TokenType.NORMAL)).map(Number) as TokenType[];
  if (scores.length !== n || types.length !== n)
    throw new ModelFormatError(file.source, `tokenizer arrays disagree: ${n} tokens, ${scores.length} scores, ${types.length} token types`);
  const merges = metaArray(file, 'tokenizer.ggml.merges');
  if (model === 'gpt2' && (!merges || merges.some((m) => typeof m !== 'string' || m.split(' ').length !== 2)))
    throw new ModelFormatError(file.source, 'a "gpt2" tokenizer needs "tokenizer.ggml.merges": an array of "left right" strings');
  const id = (key: string, fallback: number) => {
    const v = metaNumber(file, key, fallback);
    if (!(Number.isInteger(v) && v >= 0 && v < n)) throw new ModelFormatError(file.source, `metadata "${key}" = ${v} is not a token id (vocabulary has ${n} tokens)`);
    return v;
  };
  // Defaults as llama.cpp's: BERT wraps text in [CLS] ... [SEP]; SentencePiece adds BOS; GPT-2 adds nothing.
  const bert = model === 'bert';
  return {
    model,
    tokens: tokens as string[],
    scores,
    types,
    merges: merges as string[] | undefined,
    pre: metaString(file, 'tokenizer.ggml.pre'),
    bosId: id(bert ? 'tokenizer.ggml.cls_token_id' : 'tokenizer.ggml.bos_token_id', bert ? 101 : model === 'llama' ? 1 : 0),
    eosId: id(bert ? 'tokenizer.ggml.seperator_token_id' : 'tokenizer.ggml.eos_token_id', bert ? 102 : model === 'llama' ? 2 : 0),
    unkId: id('tokenizer.ggml.unknown_token_id', bert ? 100 : 0),
    addBos: metaBool(file, 'tokenizer.ggml.add_bos_token', model !== 'gpt2'),
    addEos: metaBool(file, 'tokenizer.ggml.add_eos_token', bert),
    addSpacePrefix: metaBool(file, 'tokenizer.ggml.add_space_prefix', model === 'llama'),
    chatTemplate: metaString(file, 'tokenizer.chat_template'),
    eotId: file.metadata.has('tokenizer.ggml.eot_token_id') ? id('tokenizer.ggml.eot_token_id', 0) : undefined,
  };
}

/** The inverse of vocabFromMetadata: the tokenizer.* metadata keys a GGUF file holds for `vocab`. */
export function vocabMetadata(vocab: Vocab): [string, GGUFValue][] {
  const bert = vocab.model === 'bert';
  const out: [string, GGUFValue][] = [
    ['tokenizer.ggml.model', gguf.str(vocab.model)],
    ['tokenizer.ggml.tokens', gguf.strings(vocab.tokens)],
    ['tokenizer.ggml.scores', gguf.f32s(vocab.scores)],
    ['tokenizer.ggml.token_type', gguf.i32s(vocab.types)],
  ];
  if (vocab.merges) out.push(['tokenizer.ggml.merges', gguf.strings(vocab.merges)]);
  if (vocab.pre) out.push(['tokenizer.ggml.pre', gguf.str(vocab.pre)]);
  out.push(
    [bert ? 'tokenizer.ggml.cls_token_id' : 'tokenizer.ggml.bos_token_id', gguf.u32(vocab.bosId)],
    [bert ? 'tokenizer.ggml.seperator_token_id' : 'tokenizer.ggml.eos_token_id', gguf.u32(vocab.eosId)],
    ['tokenizer.ggml.unknown_token_id', gguf.u32(vocab.unkId)],
    ['tokenizer.ggml.add_bos_token', gguf.bool(vocab.addBos)],
    ['tokenizer.ggml.add_eos_token', gguf.bool(vocab.addEos)],
    ['tokenizer.ggml.add_space_prefix', gguf.bool(vocab.addSpacePrefix)],
  );
  if (vocab.eotId !== undefined) out.push(['tokenizer.ggml.eot_token_id', gguf.u32(vocab.eotId)]);
  if (vocab.chatTemplate !== undefined) out.push(['tokenizer.chat_template', gguf.str(vocab.chatTemplate)]);
  return out;
}

/** The vocabulary padded to `size` tokens with unused "[PAD<i>]" entries, as llama.cpp's converter pads a model whose embedding has more rows than its tokenizer has tokens. */
export function padVocab(vocab: Vocab, size: number): Vocab {
  if (vocab.tokens.length >= size) return vocab;
  const extra = size - vocab.tokens.length;
  return {
    ...vocab,
    tokens: [...vocab.tokens, ...Array.from({ length: extra }, (_, i) => `[PAD${vocab.tokens.length + i}]`)],
    scores: [...vocab.scores, ...new Array<number>(extra).fill(0)],
    types: [...vocab.types, ...new Array<TokenType>(extra).fill(TokenType.UNUSED)],
  };
}
