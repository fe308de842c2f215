// WordPiece (GGUF tokenizer.ggml.model = "bert": BERT, MiniLM, BGE...), as llama.cpp does it:
//   1. NFD-normalize; drop NUL, U+FFFD, control characters and combining marks (accents); lower-case;
//   2. split at whitespace, and make every punctuation character, ASCII symbol and CJK ideograph a
//      word of its own;
//   3. for each word, "▁" + word is covered greedily by the longest vocabulary tokens (GGUF stores
//      word-initial pieces with "▁" and continuations bare, where BERT's vocab.txt uses "##");
//      a word that cannot be covered becomes [UNK].

import type { TokenizerAlgorithm } from './algorithm.js';
import { SPACE_MARK, type Vocab } from '../format/vocab.js';

/** CJK Unified Ideographs and their extensions, as BERT defines "Chinese characters". */
export function isChineseChar(cp: number): boolean {
  return (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x20000 && cp <= 0x2a6df) || (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b820 && cp <= 0x2ceaf) || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f);
}

const WHITESPACE = /\s/u;
const CONTROL = /\p{C}/u;
const ACCENT = /\p{Mn}/u;
const PUNCT = /\p{P}/u;
const SYMBOL = /\p{S}/u;

/** Character classes, decided once per ASCII character (the common case) and by regex otherwise. */
const enum Class { Letter, Space, Drop, Alone }
const ASCII_CLASS: Class[] = Array.from({ length: 128 }, (_, cp) => classify(String.fromCharCode(cp), cp, false));
const ASCII_CLASS_HF: Class[] = Array.from({ length: 128 }, (_, cp) => classify(String.fromCharCode(cp), cp, true));

function classify(ch: string, cp: number, controlBeforeWhitespace: boolean): Class {
  const control = ch !== '\t' && ch !== '\n' && ch !== '\r' && CONTROL.test(ch);
  if (controlBeforeWhitespace && control) return Class.Drop;
  if (WHITESPACE.test(ch)) return Class.Space;
  if (cp === 0 || cp === 0xfffd || CONTROL.test(ch) || ACCENT.test(ch)) return Class.Drop;
  if (PUNCT.test(ch) || (cp < 0x7f && SYMBOL.test(ch)) || isChineseChar(cp)) return Class.Alone;
  return Class.Letter;
}

/**
 * The words WordPiece sees. `controlBeforeWhitespace`: drop control characters before testing for
 * whitespace, as Hugging Face's BertNormalizer does ("a\vb" is one word); llama.cpp tests whitespace
 * first (two words).
 */
export function wordPieceWords(text: string, controlBeforeWhitespace = false): string[] {
  const ascii = controlBeforeWhitespace ? ASCII_CLASS_HF : ASCII_CLASS;
  const words: string[] = [];
  let word = '';
  for (const ch of text.normalize('NFD')) {
    const cp = ch.codePointAt(0)!;
    const cls = cp < 128 ? ascii[cp]! : classify(ch, cp, controlBeforeWhitespace);
    if (cls === Class.Letter) { word += cp < 128 ? (cp >= 65 && cp <= 90 ? String.fromCharCode(cp + 32) : ch) : ch.toLowerCase(); continue; }
    if (cls === Class.Drop) continue;
    if (word) words.push(word);
    word = '';
    if (cls === Class.Alone) words.push(ch.toLowerCase());
  }
  if (word) words.push(word);
  return words;
}

export class WordPieceTokenizer implements TokenizerAlgorithm {
  readonly stripsLeadingSpace = true;
  private readonly maxLen: number;
  private readonly enc = new TextEncoder();

  constructor(
    private readonly vocab: Vocab,
    private readonly ids: Map<string, number>,
  ) {
    this.maxLen = vocab.tokens.reduce((m, t) => Math.max(m, [...t].length), 1);
  }

  encode(text: string, out: number[]): void {
    const max = this.vocab.maxWordChars;
    for (const word of wordPieceWords(text, this.vocab.controlBeforeWhitespace)) {
      // Too long (in code points; the UTF-16 length is an upper bound): [UNK] without looking further.
      if (max !== undefined && word.length > max && [...word].length > max) {
        out.push(this.vocab.unkId);
        continue;
      }
      const w = SPACE_MARK + word;
      // Code point boundaries, as UTF-16 offsets: pieces are cut only there.
      const at: number[] = [];
      for (let i = 0; i < w.length; i += w.codePointAt(i)! > 0xffff ? 2 : 1) at.push(i);
      at.push(w.length);
      const nChars = at.length - 1;
      const start = out.length;
      for (let i = 0; i < nChars; ) {
        let j = Math.min(nChars, i + this.maxLen);
        for (; j > i; j--) {
          const id = this.ids.get(w.substring(at[i]!, at[j]!));
          if (id !== undefined) { out.push(id); break; }
        }
        if (j === i) { out.length = start; break; } // no piece fits: the whole word is unknown
        i = j;
      }
      if (out.length === start) out.push(this.vocab.unkId);
    }
  }

  tokenBytes(id: number): Uint8Array {
    return this.enc.encode(this.vocab.tokens[id]!.replaceAll(SPACE_MARK, ' '));
  }
}
