// Hugging Face tokenizer.json (+ tokenizer_config.json) -> the same Vocab a GGUF file gives, for the
// variants real small models use. Anything else is refused with the variant's name, never
// approximated:
//   BPE with a ByteLevel pre-tokenizer (GPT-2 style), alone or after Digits (SmolLM), or after a Split
//     with Llama 3's or Qwen2's pattern;
//   WordPiece with BertNormalizer + BertPreTokenizer (BERT, MiniLM, BGE).
// Added tokens become control tokens (special: true) or user-defined tokens; WordPiece vocabularies
// are respelled as GGUF has them ("##x" -> "x", word-initial "x" -> "▁x").

import { ModelFormatError, UnsupportedModelError } from '../base/errors.js';
import { SPACE_MARK, TokenType, type Vocab } from './vocab.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;

const LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

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
  const vocab = vocabFromTokenizerJsonModel(json, config, source);
  return { ...vocab, chatTemplate: chatTemplateOf(config) };
}

function vocabFromTokenizerJsonModel(json: Json, config: Json, source: string): Vocab {
  const model = json?.model;
  if (!model?.vocab) throw new ModelFormatError(source, 'not a tokenizer.json: no "model.vocab"');
  const size = Math.max(...Object.values<number>(model.vocab), ...(json.added_tokens ?? []).map((t: Json) => t.id)) + 1;
  const tokens: string[] = new Array(size).fill('');
  const types: TokenType[] = new Array(size).fill(TokenType.UNUSED);
  for (const [t, id] of Object.entries<number>(model.vocab)) { tokens[id] = t; types[id] = TokenType.NORMAL; }
  for (const t of json.added_tokens ?? []) { tokens[t.id] = t.content; types[t.id] = t.special ? TokenType.CONTROL : TokenType.USER_DEFINED; }
  const idOf = (name: string | undefined | Json) => {
    const content = typeof name === 'string' ? name : name?.content;
    const i = content === undefined ? -1 : tokens.indexOf(content);
    return i >= 0 ? i : undefined;
  };

  if (model.type === 'BPE') {
    if (json.normalizer) throw new UnsupportedModelError(source, `unsupported normalizer ${describe(json.normalizer)} for a BPE tokenizer`);
    if (model.byte_fallback || model.continuing_subword_prefix || model.end_of_word_suffix)
      throw new UnsupportedModelError(source, 'BPE with byte_fallback / subword prefix / end-of-word suffix (SentencePiece-style BPE in tokenizer.json) is not supported: use the GGUF file');
    const merges = (model.merges as (string | [string, string])[]).map((m) => (typeof m === 'string' ? m : m.join(' ')));
    const post = json.post_processor;
    const bos = idOf(config.bos_token) ?? idOf('<|endoftext|>') ?? 0;
    const eos = idOf(config.eos_token) ?? idOf('<|endoftext|>') ?? 0;
    if (post && post.type !== 'ByteLevel' && post.type !== 'TemplateProcessing') throw new UnsupportedModelError(source, `unsupported post_processor ${describe(post)}`);
    const template = post?.type === 'TemplateProcessing' ? post.single.map((p: Json) => p.SpecialToken?.id ?? 'A') : ['A'];
    return {
      model: 'gpt2', tokens, types, scores: new Array(size).fill(0), merges, pre: bpePreFamily(json.pre_tokenizer, source),
      bosId: template[0] !== 'A' ? idOf(template[0]) ?? bos : bos, eosId: eos, unkId: idOf(model.unk_token) ?? 0,
      addBos: template[0] !== 'A', addEos: template.at(-1) !== 'A', addSpacePrefix: false,
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
