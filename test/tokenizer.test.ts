import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseGGUF } from '../src/format/gguf.js';
import { llama2cVocab } from '../src/format/llama2c.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { TokenType, vocabFromMetadata } from '../src/format/vocab.js';
import { InvalidInputError } from '../src/base/errors.js';
import { hasShared, readShared, sharedPath, STORIES_TOK } from './helpers.js';

/** llama.cpp's test vectors: strings separated by "\n__ggml_vocab_test__\n", ids one line per string. */
function vectors(name: string): [string, number[]][] {
  const inp = readFileSync(sharedPath('vocab', `${name}.inp`), 'utf8').split('\n__ggml_vocab_test__\n');
  const out = readFileSync(sharedPath('vocab', `${name}.out`), 'utf8').split('\n');
  // The input file ends with a separator, leaving one empty tail element, as does the output's final newline.
  if (inp.at(-1) === '') inp.pop();
  return inp.map((s, i) => [s, out[i]!.trim() === '' ? [] : out[i]!.trim().split(/\s+/).map(Number)]);
}

const VOCABS = hasShared ? readdirSync(sharedPath('vocab')).filter((f) => f.endsWith('.gguf.inp')).map((f) => f.replace(/\.inp$/, '')) : [];

describe.skipIf(!hasShared)('llama.cpp tokenizer test vectors, every vocabulary that has them', () => {
  it('finds them all (SentencePiece, byte-level BPE with 4 pre-tokenizers, WordPiece)', () => {
    expect(VOCABS.sort()).toEqual(['ggml-vocab-bert-bge.gguf', 'ggml-vocab-deepseek-coder.gguf', 'ggml-vocab-gpt-2.gguf', 'ggml-vocab-llama-spm.gguf', 'ggml-vocab-mpt.gguf', 'ggml-vocab-starcoder.gguf']);
  });
  for (const name of VOCABS) {
    it(`${name}: 100% of the vectors`, () => {
      const tok = new Tokenizer(vocabFromMetadata(parseGGUF(readShared('vocab', name), name)), name);
      const cases = vectors(name);
      expect(cases.length).toBeGreaterThan(40);
      const failures = cases.filter(([s, ids]) => JSON.stringify(tok.encode(s, { addSpecial: false })) !== JSON.stringify(ids));
      expect(failures.map(([s]) => s)).toEqual([]);
    });
  }
});

describe.skipIf(!hasShared)('SentencePiece tokenizer', () => {
  const gguf = parseGGUF(readShared('vocab', 'ggml-vocab-llama-spm.gguf'), 'ggml-vocab-llama-spm.gguf');
  const spm = new Tokenizer(vocabFromMetadata(gguf));
  const cases = vectors('ggml-vocab-llama-spm.gguf');

  it('reproduces them from the llama2.c tokenizer.bin of the same vocabulary', () => {
    const tok = new Tokenizer(llama2cVocab(readShared('weights', 'llama2-tokenizer', 'tokenizer.bin'), 'tokenizer.bin', 32000));
    const failures = cases.filter(([s, ids]) => JSON.stringify(tok.encode(s, { addBos: false })) !== JSON.stringify(ids));
    expect(failures.map(([s]) => s)).toEqual([]);
  });

  it('decodes each vector back to its text (the space prefix it added is removed)', () => {
    for (const [s, ids] of cases) expect(spm.decode(ids)).toBe(s);
  });

  it('decode(encode(s)) === s on random strings', () => {
    // U+2581 is SentencePiece's own space marker and decodes as ' ', and lone surrogates are not
    // UTF-8: both are excluded from the generated text (they are tested separately below).
    const text = fc.string({ unit: fc.oneof(fc.constantFrom(' ', '  ', '\n', '\t', 'é', '🦙', '日本', 'ß', '\u0301', '<s>', '<0x41>', 'the', ' a'), fc.string({ unit: 'binary', minLength: 1, maxLength: 3 })), maxLength: 40 })
      .filter((s) => !s.includes('\u2581'));
    fc.assert(fc.property(text, (s) => { expect(spm.decode(spm.encode(s, { addBos: true }))).toBe(s); }), { numRuns: 500 });
  });

  it('cutting the text where no token can span changes nothing: same ids as one whole-text merge', () => {
    // SpmTokenizer.encode cuts the text into chunks; bpe() on the whole marked text is the unchunked algorithm.
    const algo = (spm as unknown as { algorithm: { bpe(t: string, out: number[]): void } }).algorithm;
    const text = fc.string({ unit: fc.oneof(fc.constantFrom(' ', '  ', 'the', 'ing', 'é', '🦙', '\n', '....', 'Hello', 'world', '日本'), fc.string({ unit: 'binary', maxLength: 1 })), maxLength: 40 });
    fc.assert(fc.property(text, (s) => {
      const marked = (' ' + s).replaceAll(' ', '\u2581');
      const wholeMarked: number[] = [];
      algo.bpe(marked, wholeMarked);
      expect(spm.encode(s, { addSpecial: false })).toEqual(s === '' ? [] : wholeMarked);
    }), { numRuns: 1000 });
  });

  it('adds BOS when asked and splits control tokens only with parseSpecial', () => {
    expect(spm.encode('Hello', { addBos: true })).toEqual([1, 15043]);
    const plain = spm.encode('<s>Hello', { addBos: false });
    expect(plain).not.toContain(1);
    expect(spm.encode('<s>Hello', { addBos: false, parseSpecial: true })).toEqual([1, ...spm.encode('Hello', { addBos: false })]);
  });

  it('turns a lone surrogate into U+FFFD bytes instead of crashing', () => {
    expect(spm.decode(spm.encode('a\ud800b', { addBos: false }))).toBe('a\ufffdb');
  });

  it('streams multi-byte characters split across byte tokens whole, never half', () => {
    const ids = spm.encode(' this is 🦙.cpp', { addBos: false }); // 🦙 is 4 byte tokens in this vocab
    const d = spm.streamDecoder({ atStart: false });
    const pieces = ids.map((id) => d.push(id));
    pieces.push(d.flush());
    expect(pieces.join('')).toBe('  this is 🦙.cpp');
    for (const p of pieces) expect(p).not.toMatch(/\ufffd/);
    expect(pieces).toContain('🦙');
    expect(pieces.filter((p) => p === '').length).toBeGreaterThanOrEqual(3); // the first 3 bytes wait
  });

  it("gives every token's bytes as its piece writes them, and refuses ids outside the vocabulary", () => {
    // (written from the SentencePiece conventions: <0xXX> is that byte, ▁ a space, control tokens
    // nothing unless asked for, then their text)
    const utf8 = new TextEncoder();
    const { tokens, types } = vocabFromMetadata(gguf);
    for (let id = 0; id < tokens.length; id++) {
      const t = tokens[id]!;
      const expected = types[id] === TokenType.BYTE ? [parseInt(t.slice(3, 5), 16)] : types[id] === TokenType.CONTROL ? [] : types[id] === TokenType.UNKNOWN ? [...utf8.encode('\u2585')] : [...utf8.encode(t.replaceAll('\u2581', ' '))];
      if (JSON.stringify([...spm.tokenBytes(id)]) !== JSON.stringify(expected)) expect([id, [...spm.tokenBytes(id)]]).toEqual([id, expected]);
      if (types[id] === TokenType.CONTROL) expect(new TextDecoder().decode(spm.tokenBytes(id, false))).toBe(t);
    }
    for (const bad of [-1, tokens.length, 1.5, NaN]) expect(() => spm.tokenBytes(bad)).toThrow(InvalidInputError);
    expect(() => spm.decode([1, tokens.length])).toThrow(/token id 32000 is outside the vocabulary \(0\.\.31999\)/);
  });

  it('encodes and decodes 100 KB of one character (its speed is in bench/tokenizers.ts)', () => {
    const ids = spm.encode('a'.repeat(100_000), { addBos: false });
    expect(ids.length).toBeGreaterThan(0);
    expect(spm.decode(ids)).toBe('a'.repeat(100_000));
  });
});

describe.skipIf(!hasShared)('llama2.c tokenizer (stories260K tok512.bin)', () => {
  const tok = new Tokenizer(llama2cVocab(new Uint8Array(readFileSync(STORIES_TOK)), 'tok512.bin', 512));
  it('maps BOS/EOS/byte tokens and spaces to the SentencePiece form', () => {
    expect(tok.tokenToPiece(1)).toBe('<s>');
    expect(tok.tokenToPiece(2)).toBe('</s>');
    expect(tok.tokenToPiece(3)).toBe('<0x00>');
    expect(tok.vocab.tokens.some((t) => t.includes(' '))).toBe(false);
  });
  it('round-trips text through its small vocabulary with byte fallback', () => {
    fc.assert(fc.property(fc.string({ maxLength: 30 }).filter((s) => !s.includes('\u2581')), (s) => { expect(tok.decode(tok.encode(s))).toBe(s); }), { numRuns: 300 });
  });
});
