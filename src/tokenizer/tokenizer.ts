// The tokenizer: text <-> token ids for every vocabulary kind pocketlm reads.
// What all kinds share lives here: special tokens found in the text before the algorithm sees it,
// BOS/EOS, and decoding through a streaming UTF-8 decoder so that a character split across tokens
// comes out whole. The algorithms themselves (each implementing algorithm.ts's contract): spm.ts
// (SentencePiece BPE), bpe.ts (byte-level BPE), wpm.ts (WordPiece).

import { BpeTokenizer } from './bpe.js';
import { SpmTokenizer } from './spm.js';
import { WordPieceTokenizer } from './wpm.js';
import { InvalidInputError, ModelFormatError } from '../base/errors.js';
import { TokenType, type Vocab } from '../format/vocab.js';
import type { TokenizerAlgorithm } from './algorithm.js';
export type { TokenizerAlgorithm } from './algorithm.js';

export interface EncodeOptions {
  /** Add the vocabulary's BOS / EOS (or [CLS] / [SEP]) as its metadata asks. Default true. */
  addSpecial?: boolean;
  /** Prepend BOS regardless of the vocabulary's flag (overrides addSpecial for BOS). */
  addBos?: boolean;
  /** Recognise control tokens written in the text, e.g. "<s>" (default false: plain text, safe for untrusted input). */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Leave out control tokens (BOS, EOS, [CLS]...). Default true; false writes their text. */
  skipSpecial?: boolean;
}

/**
 * Every token's bytes in one buffer, token id's at bytes[starts[id], starts[id + 1]): a vocabulary's
 * tens of thousands of pieces would otherwise each hold a typed array of their own (about 6 MB of a
 * 32000-token vocabulary's 11 MB of JavaScript heap, and 3.5 MB of views for the 49152 of SmolLM2's).
 * Each piece is copied in as soon as it is made, so that the pieces die young: made all at once and kept
 * until packed, they survived V8's young-generation collections, which then grew the young generation
 * to its largest (8 -> 33.6 MB of memory that stays with the process; SmolLM2's tokenizer).
 */
function packedPieces(count: number, piece: (id: number) => Uint8Array): { bytes: Uint8Array; starts: Uint32Array } {
  const starts = new Uint32Array(count + 1);
  let bytes = new Uint8Array(Math.max(64, count * 8));
  let at = 0;
  for (let id = 0; id < count; id++) {
    const p = piece(id);
    if (at + p.length > bytes.length) {
      const grown = new Uint8Array(Math.max(2 * bytes.length, at + p.length));
      grown.set(bytes.subarray(0, at));
      bytes = grown;
    }
    bytes.set(p, at);
    at += p.length;
    starts[id + 1] = at;
  }
  return { bytes: bytes.slice(0, at), starts };
}

export class Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly kind: Vocab['model'];
  private readonly algorithm: TokenizerAlgorithm;
  /** User-defined tokens are always matched in text; control and unknown tokens only with parseSpecial. Longest first. */
  private readonly specials: { text: string; id: number; control: boolean }[];
  /** Each token's bytes as decoded (none for control tokens; see packedPieces). */
  private readonly pieces: { bytes: Uint8Array; starts: Uint32Array };
  /** Control tokens' text, written out when asked for (skipSpecial: false). */
  private readonly controlBytes = new Map<number, Uint8Array>();

  constructor(readonly vocab: Vocab, source = '<tokenizer>') {
    this.vocabSize = vocab.tokens.length;
    if (this.vocabSize === 0) throw new ModelFormatError(source, 'the vocabulary is empty');
    for (const [what, id] of [['BOS', vocab.bosId], ['EOS', vocab.eosId], ['unknown-token', vocab.unkId]] as const)
      if (!(Number.isInteger(id) && id >= 0 && id < this.vocabSize)) throw new ModelFormatError(source, `the ${what} id ${id} is not a token of its ${this.vocabSize}-token vocabulary`);
    this.bosId = vocab.bosId;
    this.eosId = vocab.eosId;
    this.kind = vocab.model;
    const ids = new Map<string, number>();
    vocab.tokens.forEach((t, id) => { if (!ids.has(t)) ids.set(t, id); });
    this.algorithm = vocab.model === 'gpt2' ? new BpeTokenizer(vocab, ids, source) : vocab.model === 'bert' ? new WordPieceTokenizer(vocab, ids) : new SpmTokenizer(vocab, ids);
    // (a loop, not map and filter over every token: see packedPieces on what survives in the heap)
    this.specials = [];
    const enc = new TextEncoder();
    for (let id = 0; id < this.vocabSize; id++) {
      const text = vocab.tokens[id]!, type = vocab.types[id];
      if (type === TokenType.CONTROL) this.controlBytes.set(id, enc.encode(vocab.model === 'bert' ? ' ' + text : text)); // (written out, a special token is a word of its own in WordPiece text)
      if (text.length > 0 && (type === TokenType.CONTROL || type === TokenType.UNKNOWN || type === TokenType.USER_DEFINED))
        this.specials.push({ text, id, control: type === TokenType.CONTROL || type === TokenType.UNKNOWN });
    }
    this.specials.sort((a, b) => b.text.length - a.text.length);
    const empty = new Uint8Array(0);
    this.pieces = packedPieces(this.vocabSize, (id) => (vocab.types[id] === TokenType.CONTROL ? empty : this.algorithm.tokenBytes(id)));
  }

  isControl(id: number): boolean {
    return this.vocab.types[id] === TokenType.CONTROL;
  }

  /** Tokens that end a turn: EOS, the end-of-turn token, and the usual end-of-turn control tokens present. */
  endOfTurnIds(): Set<number> {
    const ids = new Set([this.eosId]);
    if (this.vocab.eotId !== undefined) ids.add(this.vocab.eotId);
    for (const t of ['<|im_end|>', '<|eot_id|>', '<|end|>', '<end_of_turn>', '<|endoftext|>']) {
      const id = this.vocab.tokens.indexOf(t);
      if (id >= 0 && this.isControl(id)) ids.add(id);
    }
    return ids;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    const special = options.addSpecial ?? true;
    if (options.addBos ?? (special && this.vocab.addBos)) out.push(this.bosId);
    let afterSpecial = true;
    if (this.vocab.normalizer === 'nfc') text = text.normalize('NFC');
    for (const f of this.splitSpecial(text, options.parseSpecial ?? false)) {
      if (typeof f === 'number') {
        out.push(f);
        afterSpecial = true;
      } else {
        this.algorithm.encode(f, out, afterSpecial);
        afterSpecial = false;
      }
    }
    if (special && this.vocab.addEos) out.push(this.eosId);
    return out;
  }

  private splitSpecial(text: string, parseSpecial: boolean): (string | number)[] {
    let parts: (string | number)[] = text ? [text] : [];
    for (const { text: s, id, control } of this.specials) {
      if (control && !parseSpecial) continue;
      const next: (string | number)[] = [];
      for (const p of parts) {
        if (typeof p === 'number' || !p.includes(s)) { next.push(p); continue; }
        p.split(s).forEach((piece, i) => {
          if (i > 0) next.push(id);
          if (piece) next.push(piece);
        });
      }
      parts = next;
    }
    return parts;
  }

  /** The bytes a token stands for when decoded (control tokens: none, unless asked for). */
  tokenBytes(id: number, skipSpecial = true): Uint8Array {
    if (!(Number.isInteger(id) && id >= 0 && id < this.vocabSize)) throw new InvalidInputError(`token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    const { bytes, starts } = this.pieces;
    const start = starts[id]!, end = starts[id + 1]!;
    return skipSpecial || end > start ? bytes.subarray(start, end) : (this.controlBytes.get(id) ?? bytes.subarray(start, end));
  }

  /** A token's vocabulary text, as stored (e.g. "▁Hello", "Ġthe", "<0x0A>", "<s>"). */
  tokenToPiece(id: number): string {
    const t = this.vocab.tokens[id];
    if (t === undefined) throw new InvalidInputError(`token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    return t;
  }

  /** Decode a whole sequence. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const d = this.streamDecoder({ skipSpecial: options.skipSpecial });
    let s = '';
    for (const id of ids) s += d.push(id);
    s += d.flush();
    return this.vocab.cleanupDecoded ? cleanupTokenizationSpaces(s) : s;
  }

  /**
   * An incremental decoder: push ids one at a time, get text as soon as it is complete UTF-8.
   * `atStart`: these are the first tokens of the text, so the space encoding put before the first
   * word is dropped (SentencePiece, WordPiece). Default true.
   */
  streamDecoder(options: { atStart?: boolean; skipSpecial?: boolean } = {}): StreamDecoder {
    return new StreamDecoder(this, (options.atStart ?? true) && this.algorithm.stripsLeadingSpace, options.skipSpecial ?? true);
  }
}

export class StreamDecoder {
  // ignoreBOM: a U+FEFF at the start is text the model produced, not a byte-order mark to strip.
  private readonly utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
  constructor(
    private readonly tokenizer: Tokenizer,
    private stripSpace: boolean,
    private readonly skipSpecial: boolean,
  ) {}

  /** Feed one token id; returns the text that became complete (possibly ''). */
  push(id: number): string {
    let bytes = this.tokenizer.tokenBytes(id, this.skipSpecial);
    if (bytes.length === 0) return '';
    if (this.stripSpace && bytes[0] === 0x20) bytes = bytes.subarray(1);
    this.stripSpace = false;
    return this.utf8.decode(bytes, { stream: true });
  }

  /** End of stream: any incomplete UTF-8 sequence comes out as U+FFFD. */
  flush(): string {
    return this.utf8.decode();
  }
}

/** The Hugging Face tokenizers' decoder cleanup: no space before punctuation and contractions. */
export function cleanupTokenizationSpaces(s: string): string {
  return s
    .replaceAll(' .', '.').replaceAll(' ?', '?').replaceAll(' !', '!').replaceAll(' ,', ',').replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't").replaceAll(" 'm", "'m").replaceAll(' do not', " don't").replaceAll(" 's", "'s").replaceAll(" 've", "'ve").replaceAll(" 're", "'re");
}
