// SentencePiece-style BPE (GGUF tokenizer.ggml.model = "llama"; llama2.c tokenizer files), as
// llama.cpp's SPM tokenizer does it:
//   1. spaces become U+2581 ("▁"); a "▁" is prepended when add_space_prefix is set and the text
//      follows the start or a special token;
//   2. the text is split into Unicode characters;
//   3. repeatedly, the adjacent pair whose concatenation is a vocabulary token with the highest score
//      is merged (ties: the leftmost pair);
//   4. every final piece that is a token is emitted; any other piece falls back to one <0xXX> token
//      per UTF-8 byte (or <unk> when the vocabulary has no byte tokens).
// Speed, exactly: a merge joins two adjacent characters only if some token contains that pair, so the
// text is first cut wherever the pair occurs in no token; the chunks (about words) merge independently
// with the same result, and repeated chunks come from a cache.

import { Heap } from '../base/heap.js';
import type { TokenizerAlgorithm } from './algorithm.js';
import { SPACE_MARK, TokenType, type Vocab } from '../format/vocab.js';

/** A pair of adjacent symbols that could merge. */
interface Bigram {
  left: number;
  right: number;
  score: number;
  size: number;
}

const bigramBefore = (a: Bigram, b: Bigram) => a.score > b.score || (a.score === b.score && a.left < b.left);

export class SpmTokenizer implements TokenizerAlgorithm {
  readonly stripsLeadingSpace: boolean;
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly enc = new TextEncoder();
  /** Every pair of adjacent characters inside some token. */
  private readonly joinable = new Set<string>();
  private readonly cache = new Map<string, number[]>();

  constructor(
    private readonly vocab: Vocab,
    private readonly ids: Map<string, number>,
  ) {
    this.stripsLeadingSpace = vocab.addSpacePrefix;
    vocab.tokens.forEach((t, id) => {
      const m = vocab.types[id] === TokenType.BYTE && /^<0x([0-9A-Fa-f]{2})>$/.exec(t);
      if (m) this.byteIds[parseInt(m[1]!, 16)] = id;
      const chars = [...t];
      for (let i = 1; i < chars.length; i++) this.joinable.add(chars[i - 1]! + chars[i]!);
    });
  }

  encode(text: string, out: number[], afterSpecial: boolean): void {
    const prefixed = this.vocab.addSpacePrefix && afterSpecial ? ' ' + text : text;
    const marked = prefixed.replaceAll(' ', SPACE_MARK);
    let start = 0;
    let prev = '';
    for (let i = 0; i < marked.length; ) {
      const c = marked.codePointAt(i)!;
      const ch = c > 0xffff ? marked.slice(i, i + 2) : marked[i]!;
      if (i > 0 && !this.joinable.has(prev + ch)) {
        this.chunk(marked.slice(start, i), out);
        start = i;
      }
      prev = ch;
      i += ch.length;
    }
    if (start < marked.length) this.chunk(marked.slice(start), out);
  }

  private chunk(text: string, out: number[]): void {
    let ids = this.cache.get(text);
    if (!ids) {
      ids = [];
      this.bpe(text, ids);
      if (this.cache.size > 100_000) this.cache.clear();
      if (text.length < 256) this.cache.set(text, ids);
    }
    for (const id of ids) out.push(id);
  }

  tokenBytes(id: number): Uint8Array {
    const t = this.vocab.tokens[id]!;
    switch (this.vocab.types[id]) {
      case TokenType.BYTE: return new Uint8Array([parseInt(t.slice(3, 5), 16)]);
      case TokenType.UNKNOWN: return this.enc.encode('\u2585');
      default: return this.enc.encode(t.replaceAll(SPACE_MARK, ' '));
    }
  }

  private bpe(text: string, out: number[]): void {
    // Symbols: one per code point, as [start, length] in UTF-16 units, in a doubly linked list.
    const starts: number[] = [];
    const lens: number[] = [];
    for (let i = 0; i < text.length; ) {
      const c = text.charCodeAt(i);
      const n = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
      starts.push(i);
      lens.push(n);
      i += n;
    }
    const count = starts.length;
    const prev = Int32Array.from({ length: count }, (_, i) => i - 1);
    const next = Int32Array.from({ length: count }, (_, i) => (i + 1 < count ? i + 1 : -1));
    const heap = new Heap<Bigram>(bigramBefore);
    const tryAdd = (left: number, right: number) => {
      if (left < 0 || right < 0) return;
      const size = lens[left]! + lens[right]!;
      const id = this.ids.get(text.substr(starts[left]!, size));
      if (id === undefined) return;
      heap.push({ left, right, score: this.vocab.scores[id]!, size });
    };
    for (let i = 1; i < count; i++) tryAdd(i - 1, i);
    while (heap.size > 0) {
      const b = heap.pop()!;
      // Skip pairs made stale by an earlier merge.
      if (lens[b.left] === 0 || lens[b.right] === 0 || lens[b.left]! + lens[b.right]! !== b.size) continue;
      lens[b.left] = b.size;
      lens[b.right] = 0;
      next[b.left] = next[b.right]!;
      if (next[b.right]! >= 0) prev[next[b.right]!] = b.left;
      tryAdd(prev[b.left]!, b.left);
      tryAdd(b.left, next[b.left]!);
    }
    for (let i = count > 0 ? 0 : -1; i >= 0; i = next[i]!) {
      const piece = text.substr(starts[i]!, lens[i]!);
      const id = this.ids.get(piece);
      if (id !== undefined) { out.push(id); continue; }
      for (const byte of this.enc.encode(piece)) out.push(this.byteIds[byte]! >= 0 ? this.byteIds[byte]! : this.vocab.unkId);
    }
  }
}
