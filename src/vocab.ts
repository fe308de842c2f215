// A tokenizer vocabulary as GGUF stores it (tokenizer.ggml.*), whatever file it came from.

import { ModelFormatError, UnsupportedModelError } from './errors.js';
import { metaArray, metaBool, metaNumber, metaString, type MetaHolder } from './gguf.js';

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

export interface Vocab {
  /** tokenizer.ggml.model: 'llama' is SentencePiece-style BPE with scores. */
  model: 'llama';
  tokens: string[];
  scores: number[];
  types: TokenType[];
  bosId: number;
  eosId: number;
  unkId: number;
  addBos: boolean;
  addEos: boolean;
  addSpacePrefix: boolean;
}

export function vocabFromMetadata(file: MetaHolder): Vocab {
  const kind = metaString(file, 'tokenizer.ggml.model');
  if (kind === undefined) throw new ModelFormatError(file.source, 'has no tokenizer (metadata "tokenizer.ggml.model" is missing)');
  if (kind !== 'llama')
    throw new UnsupportedModelError(file.source, `tokenizer kind "${kind}" is not supported yet; this version reads SentencePiece-style "llama" vocabularies`);
  const tokens = metaArray(file, 'tokenizer.ggml.tokens');
  if (!tokens || tokens.some((t) => typeof t !== 'string'))
    throw new ModelFormatError(file.source, 'metadata "tokenizer.ggml.tokens" is missing or not an array of strings');
  const n = tokens.length;
  const scores = (metaArray(file, 'tokenizer.ggml.scores') ?? new Array<number>(n).fill(0)).map(Number);
  const types = (metaArray(file, 'tokenizer.ggml.token_type') ?? new Array<number>(n).fill(TokenType.NORMAL)).map(Number) as TokenType[];
  if (scores.length !== n || types.length !== n)
    throw new ModelFormatError(file.source, `tokenizer arrays disagree: ${n} tokens, ${scores.length} scores, ${types.length} token types`);
  const id = (key: string, fallback: number) => {
    const v = metaNumber(file, key, fallback);
    if (!(Number.isInteger(v) && v >= 0 && v < n)) throw new ModelFormatError(file.source, `metadata "${key}" = ${v} is not a token id (vocabulary has ${n} tokens)`);
    return v;
  };
  return {
    model: 'llama',
    tokens: tokens as string[],
    scores,
    types,
    bosId: id('tokenizer.ggml.bos_token_id', 1),
    eosId: id('tokenizer.ggml.eos_token_id', 2),
    unkId: id('tokenizer.ggml.unknown_token_id', 0),
    addBos: metaBool(file, 'tokenizer.ggml.add_bos_token', true),
    addEos: metaBool(file, 'tokenizer.ggml.add_eos_token', false),
    addSpacePrefix: metaBool(file, 'tokenizer.ggml.add_space_prefix', true),
  };
}
