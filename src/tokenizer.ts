// SentencePiece-style BPE tokenizer (GGUF tokenizer.ggml.model = "llama"; llama2.c tokenizer files),
// matching llama.cpp's SPM tokenizer:
//   1. spaces become U+2581 ("▁"); a "▁" is prepended when add_space_prefix is set;
//   2. the text is split into Unicode characters;
//   3. repeatedly, the adjacent pair whose concatenation is a vocabulary token with the highest score
//      is merged (ties: the leftmost pair);
//   4. every final piece that is a token is emitted; any other piece falls back to one <0xXX> token
//      per UTF-8 byte (or <unk> when the vocabulary has no byte tokens).
// Decoding maps "▁" back to spaces and byte tokens to raw bytes, through a streaming UTF-8 decoder so
// that a character split across byte tokens comes out whole.

import { Heap } from './heap.js';
import { TokenType, type Vocab } from './vocab.js';

const SPACE_MARK = '\u2581';

export interface EncodeOptions {
  /** Prepend BOS (default: the vocabulary's add_bos flag). */
  addBos?: boolean;
  /** Recognise control tokens written in the text, e.g. "<s>" (default false: treat them as plain text). */
  parseSpecial?: boolean;
}

/** A pair of adjacent symbols that could merge, kept in a max-heap by (score, -left). */
interface Bigram {
  left: number;
  right: number;
  score: number;
  size: number;
}

function bigramBefore(a: Bigram, b: Bigram): boolean {
  return a.score > b.score || (a.score === b.score && a.left < b.left);
}

export class Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  private readonly ids = new Map<string, number>();
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly specials: { text: string; id: number }[];
  /** Each token's bytes when decoded (empty for control tokens). */
  private readonly pieceBytes: Uint8Array[];

  constructor(readonly vocab: Vocab) {
    this.vocabSize = vocab.tokens.length;
    this.bosId = vocab.bosId;
    this.eosId = vocab.eosId;
    const enc = new TextEncoder();
    vocab.tokens.forEach((t, id) => {
      if (!this.ids.has(t)) this.ids.set(t, id);
      if (vocab.types[id] === TokenType.BYTE) {
        const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(t);
        if (m) this.byteIds[parseInt(m[1]!, 16)] = id;
      }
    });
    this.specials = vocab.tokens
      .map((text, id) => ({ text, id }))
      .filter(({ text, id }) => text.length > 0 && (vocab.types[id] === TokenType.CONTROL || vocab.types[id] === TokenType.USER_DEFINED))
      .sort((a, b) => b.text.length - a.text.length);
    this.pieceBytes = vocab.tokens.map((t, id) => {
      switch (vocab.types[id]) {
        case TokenType.BYTE: return new Uint8Array([parseInt(t.slice(3, 5), 16)]);
        case TokenType.CONTROL: return new Uint8Array(0);
        case TokenType.UNKNOWN: return enc.encode('\u2585');
        default: return enc.encode(t.replaceAll(SPACE_MARK, ' '));
      }
    });
  }

  isControl(id: number): boolean {
    return this.vocab.types[id] === TokenType.CONTROL;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (options.addBos ?? this.vocab.addBos) out.push(this.bosId);
    // Split out special tokens first (only when asked), then tokenize each run of plain text.
    const fragments: (string | number)[] = options.parseSpecial ? this.splitSpecial(text) : [text];
    let prevSpecial = true;
    for (const f of fragments) {
      if (typeof f === 'number') {
        out.push(f);
        prevSpecial = true;
        continue;
      }
      const prefixed = this.vocab.addSpacePrefix && prevSpecial ? ' ' + f : f;
      if (f.length > 0) this.encodePlain(prefixed.replaceAll(' ', SPACE_MARK), out);
      prevSpecial = false;
    }
    if (this.vocab.addEos) out.push(this.eosId);
    return out;
  }

  private splitSpecial(text: string): (string | number)[] {
    let parts: (string | number)[] = [text];
    for (const { text: s, id } of this.specials) {
      const next: (string | number)[] = [];
      for (const p of parts) {
        if (typeof p === 'number' || !p.includes(s)) { next.push(p); continue; }
        const pieces = p.split(s);
        pieces.forEach((piece, i) => {
          if (i > 0) next.push(id);
          if (piece) next.push(piece);
        });
      }
      parts = next;
    }
    return parts;
  }

  /** BPE over one run of text already in SentencePiece form (spaces as ▁). */
  private encodePlain(text: string, out: number[]): void {
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
    const enc = new TextEncoder();
    for (let i = count > 0 ? 0 : -1; i >= 0; i = next[i]!) {
      const piece = text.substr(starts[i]!, lens[i]!);
      const id = this.ids.get(piece);
      if (id !== undefined) { out.push(id); continue; }
      for (const byte of enc.encode(piece)) out.push(this.byteIds[byte]! >= 0 ? this.byteIds[byte]! : this.vocab.unkId);
    }
  }

  /** The bytes a token stands for (control tokens: none). */
  tokenBytes(id: number): Uint8Array {
    const b = this.pieceBytes[id];
    if (!b) throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    return b;
  }

  /** A token's vocabulary text, as stored (e.g. "▁Hello", "<0x0A>", "<s>"). */
  tokenToPiece(id: number): string {
    const t = this.vocab.tokens[id];
    if (t === undefined) throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    return t;
  }

  /** Decode a whole sequence. The space that add_space_prefix put before the first word is removed. */
  decode(ids: readonly number[]): string {
    const d = this.streamDecoder();
    let s = '';
    for (const id of ids) s += d.push(id);
    return s + d.flush();
  }

  /** An incremental decoder: push ids one at a time, get text as soon as it is complete UTF-8. */
  streamDecoder(options: { atStart?: boolean } = {}): StreamDecoder {
    return new StreamDecoder(this, options.atStart ?? true, this.vocab.addSpacePrefix);
  }
}

export class StreamDecoder {
  private readonly utf8 = new TextDecoder('utf-8');
  private seenText = false;
  constructor(
    private readonly tokenizer: Tokenizer,
    private atStart: boolean,
    private readonly stripPrefixSpace: boolean,
  ) {}

  /** Feed one token id; returns the text that became complete (possibly ''). */
  push(id: number): string {
    let bytes = this.tokenizer.tokenBytes(id);
    if (bytes.length === 0) return '';
    if (this.atStart && !this.seenText && this.stripPrefixSpace && bytes[0] === 0x20) bytes = bytes.subarray(1);
    this.seenText = true;
    return this.utf8.decode(bytes, { stream: true });
  }

  /** End of stream: any incomplete UTF-8 sequence comes out as U+FFFD. */
  flush(): string {
    return this.utf8.decode();
  }
}
