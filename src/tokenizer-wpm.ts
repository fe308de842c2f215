// WordPiece (GGUF tokenizer.ggml.model = "bert": BERT, MiniLM, BGE...), as llama.cpp does it:
//   1. NFD-normalize; drop NUL, U+FFFD, control characters and combining marks (accents); lower-case;
//   2. split at whitespace, and make every punctuation character, ASCII symbol and CJK ideograph a
//      word of its own;
//   3. for each word, "▁" + word is covered greedily by the longest vocabulary tokens (GGUF stores
//      word-initial pieces with "▁" and continuations bare, where BERT's vocab.txt uses "##");
//      a word that cannot be covered becomes [UNK].

import { SPACE_MARK } from './tokenizer-spm.js';
import type { TokenizerAlgorithm } from './tokenizer.js';
import type { Vocab } from './vocab.js';

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

/** Control characters, not counting tab, newline and carriage return (which are whitespace). */
const isControl = (ch: string) => ch !== '\t' && ch !== '\n' && ch !== '\r' && CONTROL.test(ch);

export function wordPieceWords(text: string, controlBeforeWhitespace = false): string[] {
  const words: string[] = [''];
  for (const ch of text.normalize('NFD')) {
    const cp = ch.codePointAt(0)!;
    if (controlBeforeWhitespace && isControl(ch)) continue;
    if (WHITESPACE.test(ch)) {
      if (words.at(-1)) words.push('');
      continue;
    }
    if (cp === 0 || cp === 0xfffd || CONTROL.test(ch) || ACCENT.test(ch)) continue;
    const lower = ch.toLowerCase();
    if (PUNCT.test(ch) || (cp < 0x7f && SYMBOL.test(ch)) || isChineseChar(cp)) {
      if (words.at(-1)) words.push('');
      words[words.length - 1] = lower;
      words.push('');
    } else {
      words[words.length - 1] += lower;
    }
  }
  return words.filter((w) => w.length > 0);
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
    for (const word of wordPieceWords(text, this.vocab.controlBeforeWhitespace)) {
      const chars = [...(SPACE_MARK + word)];
      const start = out.length;
      if (this.vocab.maxWordChars !== undefined && chars.length - 1 > this.vocab.maxWordChars) {
        out.push(this.vocab.unkId);
        continue;
      }
      for (let i = 0; i < chars.length; ) {
        let j = Math.min(chars.length, i + this.maxLen);
        for (; j > i; j--) {
          const id = this.ids.get(chars.slice(i, j).join(''));
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
