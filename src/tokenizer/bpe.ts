// Byte-level BPE (GGUF tokenizer.ggml.model = "gpt2": GPT-2, Llama 3, Qwen2, SmolLM, StarCoder...),
// as llama.cpp does it:
//   1. pre-tokenize: the family's regexes (tokenizer.ggml.pre) split the text, one after another,
//      each splitting the pieces of the last; text a regex does not match stays a piece of its own;
//   2. each piece's UTF-8 bytes are spelled with GPT-2's byte-to-character table (space = "Ġ");
//   3. within a piece, the adjacent pair with the best (lowest) merge rank is merged, again and
//      again (ties: leftmost);
//   4. each final symbol is a token (else its characters are, one by one).

import { Heap } from '../base/heap.js';
import type { TokenizerAlgorithm } from './algorithm.js';
import { TokenType, type Vocab } from '../format/vocab.js';

const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const LLAMA3 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const CJK = '[一-龥ࠀ-一가-퟿]+';
const BLOOM = ' ?[^(\\s|.,!?…。，、।۔،)]+';

/** Pre-tokenizer regexes per tokenizer.ggml.pre value (from llama.cpp's llama-vocab.cpp). */
export const PRE_TOKENIZERS: Record<string, string[]> = {
  default: ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2, '\\p{N}+', '[0-9][0-9][0-9]'],
  'gpt-2': [GPT2], mpt: [GPT2], olmo: [GPT2], jais: [GPT2],
  starcoder: ['\\p{N}', GPT2], refact: ['\\p{N}', GPT2], 'command-r': ['\\p{N}', GPT2], smollm: ['\\p{N}', GPT2],
  codeshell: ['\\p{N}', GPT2], exaone: ['\\p{N}', GPT2], 'minerva-7b': ['\\p{N}', GPT2],
  'llama-bpe': [LLAMA3], 'llama3': [LLAMA3], dbrx: [LLAMA3], 'smaug-bpe': [LLAMA3], 'chatglm-bpe': [LLAMA3],
  qwen2: [QWEN2], stablelm2: [QWEN2],
  'deepseek-coder': ['[\\r\\n]', '\\s?\\p{L}+', '\\s?\\p{P}+', CJK, '\\p{N}'],
  'deepseek-llm': [
    '[\\r\\n]',
    // Cased letters, as code points: written literally, six of them (U+1F7D, U+1FBE, U+1FD3, U+1FDB,
    // U+2126, U+212A) are Unicode singletons that NFC normalization replaces, which turned two ranges
    // backwards (an invalid regex) and one into U+004B-U+212D.
    '\\s?[A-Za-z\\u{B5}\\u{C0}-\\u{D6}\\u{D8}-\\u{F6}\\u{F8}-\\u{1BA}\\u{1BC}-\\u{1BF}\\u{1C4}-\\u{293}\\u{295}-\\u{2AF}\\u{370}-\\u{373}\\u{376}\\u{377}\\u{37B}-\\u{37D}\\u{37F}\\u{386}\\u{388}-\\u{38A}\\u{38C}\\u{38E}-\\u{3A1}\\u{3A3}-\\u{3F5}\\u{3F7}-\\u{481}\\u{48A}-\\u{52F}\\u{531}-\\u{556}\\u{10A0}-\\u{10C5}\\u{13A0}-\\u{13F5}\\u{13F8}-\\u{13FD}\\u{1C90}-\\u{1CBA}\\u{1CBD}-\\u{1CBF}\\u{1D00}-\\u{1D2B}\\u{1D6B}-\\u{1D77}\\u{1D79}-\\u{1D9A}\\u{1E00}-\\u{1F15}\\u{1F18}-\\u{1F1D}\\u{1F20}-\\u{1F45}\\u{1F48}-\\u{1F4D}\\u{1F50}-\\u{1F57}\\u{1F59}\\u{1F5B}\\u{1F5D}\\u{1F5F}-\\u{1F7D}\\u{1F80}-\\u{1FB4}\\u{1FB6}-\\u{1FBC}\\u{1FBE}\\u{1FC2}-\\u{1FC4}\\u{1FC6}-\\u{1FCC}\\u{1FD0}-\\u{1FD3}\\u{1FD6}-\\u{1FDB}\\u{1FE0}-\\u{1FEC}\\u{1FF2}-\\u{1FF4}\\u{1FF6}-\\u{1FFC}\\u{2102}\\u{2107}\\u{210A}-\\u{2113}\\u{2115}\\u{2119}-\\u{211D}\\u{2124}\\u{2126}\\u{2128}\\u{212A}-\\u{212D}\\u{212F}-\\u{2134}\\u{2139}\\u{213C}-\\u{213F}\\u{2145}-\\u{2149}\\u{214E}\\u{2183}\\u{2184}\\u{2C00}-\\u{2C7B}\\u{2C7E}-\\u{2CE4}\\u{2CEB}-\\u{2CEE}\\u{2CF2}\\u{2CF3}\\u{A640}-\\u{A66D}\\u{A680}-\\u{A69B}\\u{A722}-\\u{A76F}\\u{A771}-\\u{A787}\\u{A78B}-\\u{A78E}\\u{AB70}-\\u{ABBF}\\u{FB00}-\\u{FB06}\\u{FB13}-\\u{FB17}\\u{FF21}-\\u{FF3A}\\u{FF41}-\\u{FF5A}\\u{10400}-\\u{1044F}\\u{104B0}-\\u{104D3}\\u{104D8}-\\u{104FB}\\u{10C80}-\\u{10CB2}\\u{10CC0}-\\u{10CF2}\\u{118A0}-\\u{118DF}\\u{1E900}-\\u{1E943}]+',
    '\\s?[!-/:-~！-／：-～‘-‟　-。]+',
    '\\s+$',
    CJK,
    '\\p{N}+',
  ],
  falcon: ['[\\p{P}\\$\\+<=>\\^~\\|`]+', GPT2, '[0-9][0-9][0-9]'],
  bloom: [BLOOM], 'poro-chat': [BLOOM], 'gpt3-finnish': [BLOOM], viking: [BLOOM, '\\p{N}'],
};

/** GPT-2's reversible byte -> printable character table. */
function byteTable(): string[] {
  const keep = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let extra = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCharCode(keep(b) ? b : 256 + extra++));
}
export const BYTE_TO_CHAR = byteTable();
const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

/** Split text with each regex in turn; unmatched stretches stay as pieces. */
export function preTokenize(text: string, regexes: readonly RegExp[]): string[] {
  let pieces = [text];
  for (const re of regexes) {
    const next: string[] = [];
    for (const p of pieces) {
      let last = 0;
      for (const m of p.matchAll(re)) {
        if (m[0].length === 0) continue;
        if (m.index > last) next.push(p.slice(last, m.index));
        next.push(m[0]);
        last = m.index + m[0].length;
      }
      if (last < p.length) next.push(p.slice(last));
    }
    pieces = next;
  }
  return pieces;
}

interface Pair {
  left: number;
  right: number;
  rank: number;
  text: string;
}
const pairBefore = (a: Pair, b: Pair) => a.rank < b.rank || (a.rank === b.rank && a.left < b.left);

/**
 * Merge ranks keyed by the ids of a merge's two parts, in one open-addressing table of [left, right,
 * rank] ints: a Map keyed by "left\0right" strings held a string and an entry per merge (3.8 MB of
 * JavaScript heap for GPT-2's 50000, which also grew V8's young generation as they were made).
 */
class PairRanks {
  private readonly slots: Int32Array;
  private readonly mask: number;
  constructor(count: number) {
    let size = 16;
    while (size < 2 * count) size *= 2;
    this.mask = size - 1;
    this.slots = new Int32Array(3 * size).fill(-1); // (left -1: an empty slot)
  }
  private find(left: number, right: number): number {
    let i = (Math.imul(left, 0x9e3779b1) ^ Math.imul(right + 1, 0x85ebca6b)) & this.mask;
    const s = this.slots;
    while (s[3 * i] !== -1 && (s[3 * i] !== left || s[3 * i + 1] !== right)) i = (i + 1) & this.mask;
    return 3 * i;
  }
  /** The first rank given for this pair stays (as llama.cpp's table of merges keeps the first). */
  add(left: number, right: number, rank: number): void {
    const at = this.find(left, right);
    if (this.slots[at] === -1) this.slots.set([left, right, rank], at);
  }
  get(left: number, right: number): number | undefined {
    const at = this.find(left, right);
    return this.slots[at] === -1 ? undefined : this.slots[at + 2];
  }
}

export class BpeTokenizer implements TokenizerAlgorithm {
  readonly stripsLeadingSpace = false;
  private readonly ranks: PairRanks;
  /** Merges with a part that is no token of the vocabulary (none in the files seen so far), by "left\0right". */
  private readonly otherRanks = new Map<string, number>();
  private readonly regexes: RegExp[];
  private readonly cache = new Map<string, number[]>();
  private readonly enc = new TextEncoder();

  constructor(
    private readonly vocab: Vocab,
    private readonly ids: Map<string, number>,
    source: string,
  ) {
    const merges = vocab.merges ?? [];
    this.ranks = new PairRanks(merges.length);
    merges.forEach((m, rank) => {
      const space = m.indexOf(' ');
      const left = ids.get(m.slice(0, space)), right = ids.get(m.slice(space + 1));
      if (left !== undefined && right !== undefined) return this.ranks.add(left, right, rank);
      const key = m.replace(' ', '\u0000');
      if (!this.otherRanks.has(key)) this.otherRanks.set(key, rank);
    });
    const pre = vocab.pre ?? 'default';
    const sources = PRE_TOKENIZERS[pre];
    if (!sources) throw new UnsupportedPreTokenizerError(source, pre);
    this.regexes = sources.map((s) => new RegExp(s, 'gu'));
  }

  encode(text: string, out: number[]): void {
    for (const word of preTokenize(text, this.regexes)) {
      let ids = this.cache.get(word);
      if (!ids) {
        ids = this.bpeWord(Array.from(this.enc.encode(word), (b) => BYTE_TO_CHAR[b]!).join(''));
        if (this.cache.size > 100_000) this.cache.clear();
        if (word.length < 256) this.cache.set(word, ids);
      }
      for (const id of ids) out.push(id); // not push(...ids): a 100 KB word has too many for the stack
    }
  }

  tokenBytes(id: number): Uint8Array {
    const t = this.vocab.tokens[id]!;
    if (this.vocab.types[id] === TokenType.USER_DEFINED) return this.enc.encode(t);
    const bytes: number[] = [];
    for (const ch of t) {
      const b = CHAR_TO_BYTE.get(ch);
      if (b !== undefined) bytes.push(b);
      else bytes.push(...this.enc.encode(ch));
    }
    return new Uint8Array(bytes);
  }

  /** The rank of merging symbols a and b, if some merge does. */
  private rank(a: string, b: string): number | undefined {
    const left = this.ids.get(a), right = this.ids.get(b);
    if (left !== undefined && right !== undefined) return this.ranks.get(left, right);
    return this.otherRanks.size ? this.otherRanks.get(a + '\u0000' + b) : undefined;
  }

  /** Merge one byte-encoded word. Its characters are all in the BMP (the byte table's range). */
  private bpeWord(word: string): number[] {
    const n = word.length;
    const sym = word.split('');
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const heap = new Heap<Pair>(pairBefore);
    const tryAdd = (l: number, r: number) => {
      if (l < 0 || r < 0) return;
      const rank = this.rank(sym[l]!, sym[r]!);
      if (rank !== undefined) heap.push({ left: l, right: r, rank, text: sym[l]! + sym[r]! });
    };
    for (let i = 1; i < n; i++) tryAdd(i - 1, i);
    while (heap.size > 0) {
      const p = heap.pop()!;
      if (sym[p.left] === '' || sym[p.right] === '' || sym[p.left]! + sym[p.right]! !== p.text) continue; // stale
      sym[p.left] = p.text;
      sym[p.right] = '';
      next[p.left] = next[p.right]!;
      if (next[p.right]! >= 0) prev[next[p.right]!] = p.left;
      tryAdd(prev[p.left]!, p.left);
      tryAdd(p.left, next[p.left]!);
    }
    const out: number[] = [];
    for (let i = n > 0 ? 0 : -1; i >= 0; i = next[i]!) {
      const id = this.ids.get(sym[i]!);
      if (id !== undefined) out.push(id);
      else for (const ch of sym[i]!) { const c = this.ids.get(ch); if (c !== undefined) out.push(c); }
    }
    return out;
  }
}

import { UnsupportedModelError } from '../base/errors.js';
export class UnsupportedPreTokenizerError extends UnsupportedModelError {
  constructor(source: string, readonly pre: string) {
    super(source, `unknown pre-tokenizer "${pre}" (tokenizer.ggml.pre); pocketlm knows: ${Object.keys(PRE_TOKENIZERS).join(', ')}`);
  }
}
