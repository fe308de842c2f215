import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadTokenizer, tokenizerFromBytes } from '../src/tokenizer/load.js';
import type { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { hasShared, readShared, ROOT, sharedPath, STORIES_TOK } from './helpers.js';

const SOURCES = {
  'SentencePiece (GGUF)': () => sharedPath('vocab', 'ggml-vocab-llama-spm.gguf'),
  'SentencePiece (llama2.c .bin)': () => STORIES_TOK,
  'byte-level BPE (GGUF)': () => sharedPath('vocab', 'ggml-vocab-gpt-2.gguf'),
  'byte-level BPE (tokenizer.json folder)': () => sharedPath('tokenizers', 'smollm2-135m-instruct'),
  'WordPiece (GGUF)': () => sharedPath('vocab', 'ggml-vocab-bert-bge.gguf'),
  'WordPiece (tokenizer.json)': () => sharedPath('tokenizers', 'all-MiniLM-L6-v2', 'tokenizer.json'),
};

describe.skipIf(!hasShared)('loadTokenizer', () => {
  it('reads every kind of file, and bytes as well as paths', async () => {
    expect((await loadTokenizer(SOURCES['SentencePiece (GGUF)']())).kind).toBe('llama');
    expect((await loadTokenizer(STORIES_TOK)).vocabSize).toBe(512);
    expect((await loadTokenizer(SOURCES['byte-level BPE (tokenizer.json folder)']())).kind).toBe('gpt2');
    const bert = await loadTokenizer(SOURCES['WordPiece (tokenizer.json)']());
    expect(bert.kind).toBe('bert');
    expect(bert.encode('Hello, World')).toEqual([101, 7592, 1010, 2088, 102]);
    expect(bert.decode([101, 7592, 1010, 2088, 102])).toBe('hello, world');
    expect(bert.decode([101, 7592, 102], { skipSpecial: false })).toBe('[CLS] hello [SEP]');
    const fromBytes = tokenizerFromBytes(readShared('vocab', 'ggml-vocab-gpt-2.gguf'), 'gpt-2');
    expect(fromBytes.encode('Hello world')).toEqual([15496, 995]);
    expect(fromBytes.tokenToPiece(995)).toBe('Ġworld');
  });

  it('clear errors for what it cannot read', async () => {
    await expect(loadTokenizer('/no/such/tokenizer.json')).rejects.toThrow(/no such file/);
    expect(() => tokenizerFromBytes(new TextEncoder().encode('{ not json'), 'x.json')).toThrow(/x.json: not valid JSON/);
    expect(() => tokenizerFromBytes(new TextEncoder().encode('{"model": {"type": "Unigram", "vocab": {"a": 0}}}'), 'u.json')).toThrow(/unsupported tokenizer model "Unigram"/);
  });

  it('pocketlm tokenize prints the ids; --no-special adds none and parses none', () => {
    const run = (...a: string[]) => spawnSync(process.execPath, [join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'tokenize', ...a], { encoding: 'utf8' });
    const model = SOURCES['byte-level BPE (tokenizer.json folder)']();
    expect(run('--model', model, 'Hello <|im_start|>').stdout).toBe('19556 216 1\n');
    expect(run('--model', model, '--no-special', 'Hello <|im_start|>').stdout.trim().split(' ').length).toBeGreaterThan(3);
    expect(run('--model', SOURCES['WordPiece (GGUF)'](), 'hello').stdout).toBe('101 7592 102\n');
  });
});

describe.skipIf(!hasShared)('tokenizers on hostile input', () => {
  const tokenizers: [string, Promise<Tokenizer>][] = Object.entries(SOURCES).map(([k, f]) => [k, loadTokenizer(f())]);

  for (const [name, pending] of tokenizers) {
    it(`${name}: lone surrogates, NUL and control characters encode without crashing, to valid ids`, async () => {
      const tok = await pending;
      fc.assert(fc.property(fc.string({ unit: fc.oneof(fc.constantFrom('\ud800', '\udfff', '\u0000', '\u0001', '\u001b', '\u007f', '\u0085', '\ufffe', '\uffff', 'a', ' '), fc.string({ unit: 'binary', maxLength: 1 })), maxLength: 30 }), (s) => {
        const ids = tok.encode(s, { parseSpecial: true });
        for (const id of ids) expect(id >= 0 && id < tok.vocabSize).toBe(true);
        expect(typeof tok.decode(ids)).toBe('string');
      }), { numRuns: 200 });
    });

    it(`${name}: 1 MB of mixed text and 100 KB of one character encode to valid ids and decode back`, async () => {
      // Speed, and that encode time grows about linearly with length, is measured by
      // bench/tokenizers.ts (docs/benchmarks.md), not here: timings are not unit-test material on a
      // shared machine. Here: the big inputs go through, and come back.
      const tok = await pending;
      const mixed = 'Once upon a time, in 2024, Äpfel と 日本語 🦙 were "quoted"; naïve café — привет!\n\t'.repeat(14_000).slice(0, 1_000_000);
      const inputs = [mixed, ...['a', ' ', '.', '7', 'é', '日', '🦙'].map((ch) => ch.repeat(100_000 / ch.length))];
      for (const s of inputs) {
        const ids = tok.encode(s, { addSpecial: false });
        // WordPiece has no tokens for whitespace: 100 KB of spaces is no words at all.
        if (tok.kind === 'bert' && s.trim() === '') expect(ids).toEqual([]);
        else expect(ids.length).toBeGreaterThan(0);
        for (const id of ids) if (!(id >= 0 && id < tok.vocabSize)) throw new Error(`invalid id ${id}`);
        if (tok.kind !== 'bert') expect(tok.decode(ids)).toBe(s); // BPE kinds round-trip exactly
      }
    });
  }
});
