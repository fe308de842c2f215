// Hugging Face tokenizer.json (+ tokenizer_config.json) -> the same Vocab a GGUF file gives, for the
// variants real small models use. Anything else is refused with the variant's name, never
// approximated:
//   BPE with a ByteLevel pre-tokenizer (GPT-2 style), alone or after Digits (SmolLM), or after a Split
//     with Llama 3's or Qwen2's pattern; an NFC normalizer (GPT-NeoX / Pythia) is applied to the text;
//   BPE with byte_fallback, SentencePiece converted (Llama 2, Gemma, Phi-3, Mistral): spaces become
//     U+2581 through a Replace normalizer (Gemma), Prepend + Replace (Llama 2), or a Metaspace
//     pre-tokenizer without splitting; read as the SentencePiece vocabulary it came from, each token's
//     score the rank of the first merge that makes it (Hugging Face's converter lists merges by the
//     merged piece's score, so the order is SentencePiece's own); byte tokens <0xXX> are the fallback;
//   WordPiece with BertNormalizer + BertPreTokenizer (BERT, MiniLM, BGE).
// And GPT-2's older pair of files, vocab.json + merges.txt (OPT, GPT-2), as byte-level BPE.
// Added tokens become control tokens (special: true) or user-defined tokens; WordPiece vocabularies
// are respelled as GGUF has them ("##x" -> "x", word-initial "x" -> "▁x").

import { ModelFormatError, UnsupportedModelError } from '../base/errors.js';
import { SPACE_MARK, TokenType, type Vocab } from './vocab.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;

const LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** One more than the largest token id, every id checked to be an integer from 0 to 2^22. */
function vocabularySize(ids: unknown[], source: string): number {
  let max = -1;
  for (const id of ids) {
    if (!(Number.isInteger(id) && (id as number) >= 0 && (id as number) < 1 << 22)) throw new ModelFormatError(source, `token id ${JSON.stringify(id)} is not an integer from 0 to 2^22`);
    if ((id as number) > max) max = id as number;
  }
  if (max < 0) throw new ModelFormatError(source, 'the vocabulary is empty');
  // Vocabularies are dense: ids far beyond the number listed would make a tiny file claim a huge table.
  if (max >= ids.length + 1024) throw new ModelFormatError(source, `token ids reach ${max} but only ${ids.length} are listed: not a valid vocabulary`);
  return max + 1;
}

function describe(x: Json): string {
  return x === null || x === undefined ? 'none' : JSON.stringify(x).slice(0, 160);
}

/** The llama.cpp pre-tokenizer family a BPE tokenizer.json's pre_tokenizer amounts to. */
function bpePreFamily(pre: Json, source: string): string {
  const steps: Json[] = pre?.type === 'Sequence' ? pre.pretokenizers : pre ? [pre] : [];
  const kinds = steps.map((s) => s.type).join('+');
  const last = steps.at(-1);
  if (last?.type === 'ByteLevel' && last.add_prefix_space) throw new UnsupportedModelError(source, 'ByteLevel pre-tokenizer with add_prefix_space is not supported');
  if (kinds === 'ByteLevel' && last.use_regex !== false) return 'gpt-2';
  if (kinds === 'Digits+ByteLevel' && steps[0].individual_digits && last.use_regex !== false) return 'smollm';
  if (kinds === 'Split+ByteLevel' && last.use_regex === false) {
    const pattern = steps[0].pattern?.Regex;
    if (pattern === LLAMA3_SPLIT) return 'llama-bpe';
    if (pattern === QWEN2_SPLIT) return 'qwen2';
  }
  throw new UnsupportedModelError(source, `unsupported BPE pre-tokenizer ${describe(pre)}; pocketlm reads ByteLevel, Digits + ByteLevel, and the Llama 3 / Qwen2 Split patterns`);
}

/** tokenizer_config.json's chat_template: a string, or a list of named templates ("default" wins). */
function chatTemplateOf(config: Json): string | undefined {
  const t = config?.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) return (t.find((x: Json) => x.name === 'default') ?? t[0])?.template;
  return undefined;
}

export function vocabFromTokenizerJson(json: Json, config: Json = {}, source = 'tokenizer.json'): Vocab {
  if (typeof config !== 'object' || config === null) config = {};
  try {
    const vocab = vocabFromTokenizerJsonModel(json, config, source);
    return { ...vocab, chatTemplate: chatTemplateOf(config) };
  } catch (e) {
    // The checks above name what they expect; a structure they did not foresee (a number where an
    // object belongs...) still gets a typed error naming the file, never a TypeError from deep inside.
    if (e instanceof TypeError || e instanceof RangeError) throw new ModelFormatError(source, `is not a well-formed tokenizer.json (${e.message})`);
    throw e;
  }
}

/** model.merges as "left right" strings: each a string with one space, or a [left, right] pair. */
function mergeList(merges: Json, source: string): string[] {
  if (!Array.isArray(merges)) throw new ModelFormatError(source, '"model.merges" must be a list');
  return merges.map((m, i) => {
    if (typeof m === 'string' && m.split(' ').length === 2) return m;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return `${m[0]} ${m[1]}`;
    throw new ModelFormatError(source, `merge #${i} is ${JSON.stringify(m).slice(0, 60)}, not "left right" or ["left", "right"]`);
  });
}

function vocabFromTokenizerJsonModel(json: Json, config: Json, source: string): Vocab {
  const model = json?.model;
  if (!model?.vocab) throw new ModelFormatError(source, 'not a tokenizer.json: no "model.vocab"');
  if (typeof model.vocab !== 'object' || (json.added_tokens !== undefined && !Array.isArray(json.added_tokens))) throw new ModelFormatError(source, '"model.vocab" must be an object and "added_tokens" a list');
  const size = vocabularySize([...Object.values<unknown>(model.vocab), ...(json.added_tokens ?? []).map((t: Json) => t?.id)], source);
  for (const t of json.added_tokens ?? []) if (typeof t.content !== 'string') throw new ModelFormatError(source, `added token ${JSON.stringify(t).slice(0, 80)} has no "content" string`);
  const tokens: string[] = new Array(size).fill('');
  const types: TokenType[] = new Array(size).fill(TokenType.UNUSED);
  for (const [t, id] of Object.entries<number>(model.vocab)) { tokens[id] = t; types[id] = TokenType.NORMAL; }
  for (const t of json.added_tokens ?? []) { tokens[t.id] = t.content; types[t.id] = t.special ? TokenType.CONTROL : TokenType.USER_DEFINED; }
  const idOf = (name: string | undefined | Json) => {
    const content = typeof name === 'string' ? name : name?.content;
    const i = content === undefined ? -1 : tokens.indexOf(content);
    return i >= 0 ? i : undefined;
  };

  if (model.type === 'BPE' && model.byte_fallback) return sentencePieceBpe(json, config, source, tokens, types, idOf);
  if (model.type === 'BPE') {
    const nfc = json.normalizer?.type === 'NFC';
    if (json.normalizer && !nfc) throw new UnsupportedModelError(source, `unsupported normalizer ${describe(json.normalizer)} for a byte-level BPE tokenizer (pocketlm applies NFC, or none)`);
    if (model.continuing_subword_prefix || model.end_of_word_suffix)
      throw new UnsupportedModelError(source, 'BPE with a subword prefix or end-of-word suffix is not supported');
    const merges = mergeList(model.merges, source);
    const post = json.post_processor;
    const bos = idOf(config.bos_token) ?? idOf('<|endoftext|>') ?? 0;
    const eos = idOf(config.eos_token) ?? idOf('<|endoftext|>') ?? 0;
    if (post && post.type !== 'ByteLevel' && post.type !== 'TemplateProcessing') throw new UnsupportedModelError(source, `unsupported post_processor ${describe(post)}`);
    const template = post?.type === 'TemplateProcessing' ? post.single.map((p: Json) => p.SpecialToken?.id ?? 'A') : ['A'];
    return {
      model: 'gpt2', tokens, types, scores: new Array(size).fill(0), merges, pre: bpePreFamily(json.pre_tokenizer, source),
      bosId: template[0] !== 'A' ? idOf(template[0]) ?? bos : bos, eosId: eos, unkId: idOf(model.unk_token) ?? 0,
      addBos: template[0] !== 'A', addEos: template.at(-1) !== 'A', addSpacePrefix: false, ...(nfc ? { normalizer: 'nfc' as const } : {}),
    };
  }

  if (model.type === 'WordPiece') {
    const norm = json.normalizer;
    if (norm?.type !== 'BertNormalizer' || json.pre_tokenizer?.type !== 'BertPreTokenizer')
      throw new UnsupportedModelError(source, `unsupported WordPiece pipeline: normalizer ${describe(norm)}, pre_tokenizer ${describe(json.pre_tokenizer)}`);
    if (norm.lowercase === false || norm.strip_accents === false || norm.handle_chinese_chars === false || norm.clean_text === false)
      throw new UnsupportedModelError(source, `unsupported BertNormalizer options ${describe(norm)}: pocketlm implements the uncased BERT normalizer`);
    const prefix: string = model.continuing_subword_prefix ?? '##';
    for (let id = 0; id < size; id++) {
      if (types[id] !== TokenType.NORMAL) continue;
      tokens[id] = tokens[id]!.startsWith(prefix) ? tokens[id]!.slice(prefix.length) : SPACE_MARK + tokens[id];
    }
    const unk = idOf(model.unk_token) ?? 100;
    types[unk] = TokenType.UNKNOWN;
    return {
      model: 'bert', tokens, types, scores: new Array(size).fill(0),
      bosId: idOf('[CLS]') ?? 101, eosId: idOf('[SEP]') ?? 102, unkId: unk,
      addBos: json.post_processor?.type === 'TemplateProcessing' || json.post_processor?.type === 'BertProcessing',
      addEos: json.post_processor?.type === 'TemplateProcessing' || json.post_processor?.type === 'BertProcessing',
      addSpacePrefix: false, maxWordChars: model.max_input_chars_per_word ?? 100, controlBeforeWhitespace: true,
      cleanupDecoded: json.decoder?.type === 'WordPiece' && json.decoder.cleanup !== false,
    };
  }
  throw new UnsupportedModelError(source, `unsupported tokenizer model "${model.type}"; pocketlm reads BPE (byte-level) and WordPiece tokenizer.json files (SentencePiece models: use their GGUF)`);
}

/** The SentencePiece settings a converted tokenizer.json's normalizer and pre-tokenizer amount to: does it prepend a space? */
function sentencePieceSpaces(json: Json, source: string): boolean {
  const norm = json.normalizer;
  const steps: Json[] = norm?.type === 'Sequence' ? norm.normalizers : norm ? [norm] : [];
  const isReplace = (n: Json) => n.type === 'Replace' && n.pattern?.String === ' ' && n.content === SPACE_MARK;
  const pre = json.pre_tokenizer;
  if (pre) {
    if (pre.type !== 'Metaspace' || pre.replacement !== SPACE_MARK || pre.split === true || steps.length)
      throw new UnsupportedModelError(source, `unsupported SentencePiece pre-tokenizer ${describe(pre)} with normalizer ${describe(norm)}; pocketlm reads Metaspace without splitting`);
    return (pre.prepend_scheme ?? (pre.add_prefix_space === false ? 'never' : 'always')) !== 'never';
  }
  if (steps.length === 1 && isReplace(steps[0])) return false; // Gemma
  if (steps.length === 2 && steps[0].type === 'Prepend' && steps[0].prepend === SPACE_MARK && isReplace(steps[1])) return true; // Llama 2
  throw new UnsupportedModelError(source, `unsupported SentencePiece normalizer ${describe(norm)}; pocketlm reads Replace(" ", "\u2581"), with or without Prepend("\u2581")`);
}

/** tokenizer.json's BPE with byte fallback: a SentencePiece vocabulary in Hugging Face's form (see the header). */
function sentencePieceBpe(json: Json, config: Json, source: string, tokens: string[], types: TokenType[], idOf: (t: Json) => number | undefined): Vocab {
  const model = json.model;
  const addSpacePrefix = sentencePieceSpaces(json, source);
  const merges = mergeList(model.merges ?? [], source);
  const scores = new Array<number>(tokens.length).fill(-1e9);
  const ids = new Map<string, number>();
  tokens.forEach((t, id) => { if (types[id] === TokenType.NORMAL && !ids.has(t)) ids.set(t, id); });
  merges.forEach((m, rank) => {
    const [a, b] = m.split(' ');
    const id = ids.get(`${a}${b}`);
    if (id !== undefined && scores[id] === -1e9) scores[id] = -rank;
  });
  for (let id = 0; id < tokens.length; id++) {
    if (types[id] !== TokenType.NORMAL) continue;
    if (/^<0x[0-9A-F]{2}>$/.test(tokens[id]!)) types[id] = TokenType.BYTE;
    else if ([...tokens[id]!].length === 1) scores[id] = 0; // single characters: where every word starts
  }
  const unk = idOf(model.unk_token);
  if (unk !== undefined) types[unk] = TokenType.UNKNOWN;
  const post = json.post_processor;
  const template: string[] = post?.type === 'TemplateProcessing' ? post.single.map((p: Json) => p.SpecialToken?.id ?? 'A') : [];
  const bos = idOf(config.bos_token) ?? idOf('<s>') ?? idOf('<bos>') ?? 1;
  const eos = idOf(config.eos_token) ?? idOf('</s>') ?? idOf('<eos>') ?? 2;
  return {
    model: 'llama', tokens, types, scores, bosId: bos, eosId: eos, unkId: unk ?? 0,
    addBos: config.add_bos_token ?? (template.length ? template[0] !== 'A' : true),
    addEos: config.add_eos_token ?? (template.length ? template.at(-1) !== 'A' : false),
    addSpacePrefix,
  };
}

/** GPT-2's vocab.json + merges.txt (OPT, GPT-2): byte-level BPE with GPT-2's pre-tokenizer. */
export function vocabFromGpt2Files(vocabJson: Json, mergesText: string, config: Json = {}, source = 'vocab.json'): Vocab {
  if (typeof vocabJson !== 'object' || vocabJson === null) throw new ModelFormatError(source, 'not a JSON object of token -> id');
  const entries = Object.entries<unknown>(vocabJson);
  const size = vocabularySize(entries.map(([, id]) => id), source);
  const tokens: string[] = new Array(size).fill('');
  const types: TokenType[] = new Array(size).fill(TokenType.UNUSED);
  for (const [t, id] of entries) { tokens[id as number] = t; types[id as number] = TokenType.NORMAL; }
  const merges = mergesText.split('\n').filter((l) => l && !l.startsWith('#version'));
  if (merges.some((m) => m.split(' ').length !== 2)) throw new ModelFormatError(source.replace(/vocab\.json$/, 'merges.txt'), 'every line must be a pair "left right"');
  const idOf = (t: Json) => { const c = typeof t === 'string' ? t : t?.content; const i = c === undefined ? -1 : tokens.indexOf(c); return i >= 0 ? i : undefined; };
  for (const [id, t] of Object.entries<Json>(config.added_tokens_decoder ?? {})) {
    const i = Number(id);
    if (i >= 0 && i < size && typeof t?.content === 'string' && tokens[i] === t.content) types[i] = t.special ? TokenType.CONTROL : TokenType.USER_DEFINED;
  }
  const bos = idOf(config.bos_token) ?? idOf('<|endoftext|>') ?? 0;
  const eos = idOf(config.eos_token) ?? idOf('<|endoftext|>') ?? 0;
  for (const id of [bos, eos]) if (types[id] === TokenType.NORMAL && /^<.*>$/.test(tokens[id]!)) types[id] = TokenType.CONTROL;
  return {
    model: 'gpt2', tokens, types, scores: new Array(size).fill(0), merges, pre: 'gpt-2', bosId: bos, eosId: eos, unkId: idOf(config.unk_token) ?? eos,
    addBos: config.add_bos_token ?? false, addEos: false, addSpacePrefix: false, chatTemplate: chatTemplateOf(config),
  };
}
