// The fuzzer's fixed-seed subset (bench/fuzz.ts; `npm run fuzz` runs 100,000 inputs per format), and
// every input it ever found failing, kept in test/fixtures/fuzz/: each must now load and run, or give
// a typed PocketLMError. Then hostile text through every tokenizer kind.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exercise, FORMATS, input, makeSeeds, type Format } from '../bench/fuzz.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { vocabFromTokenizerJson } from '../src/format/tokenizer-json.js';
import { vocabFromMetadata } from '../src/format/vocab.js';
import { parseGGUF } from '../src/format/gguf.js';
import { llama2cVocab } from '../src/format/llama2c.js';
import { BYTE_TO_CHAR } from '../src/tokenizer/bpe.js';
import { hasShared, readShared, ROOT, SHARED } from './helpers.js';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'fuzz');
/** Inputs per format in npm test: 7 formats x 400 = 2800, about 20 s here. */
const PER_FORMAT = 400;

describe.skipIf(!hasShared)('fuzzing every file format (fixed seed)', () => {
  const seeds = makeSeeds(SHARED, join(ROOT, 'bench', 'models'), true);
  for (const format of FORMATS) {
    it(`${format}: ${PER_FORMAT} mutated inputs through load, info, tokenize, forward and generate: success or a typed error`, async () => {
      const mine = seeds.filter((s) => s.format === format);
      const outcomes = new Map<string, number>();
      for (let i = 0; i < PER_FORMAT; i++) {
        const seed = mine[i % mine.length]!;
        const o = await exercise(format, input(seed, 7, i), seed.companions);
        const key = o.kind === 'error' ? o.type : o.kind;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        expect(o, `${seed.name} #${i}`).not.toMatchObject({ kind: 'failure' });
      }
      console.log(`${format}: ${JSON.stringify(Object.fromEntries(outcomes))}`);
      // Some inputs must get all the way through (else the mutations only ever test the first check).
      expect(outcomes.get('ok') ?? 0).toBeGreaterThan(0);
    }, 120_000);
  }

  it('every input the fuzzer ever found failing now succeeds or gives a typed error', async () => {
    const found = existsSync(FIXTURES) ? readdirSync(FIXTURES).filter((f) => f.endsWith('.json')) : [];
    const seeds = makeSeeds(SHARED, join(ROOT, 'bench', 'models'));
    for (const f of found) {
      const meta = JSON.parse(readFileSync(join(FIXTURES, f), 'utf8')) as { format: Format; seed: string };
      // A fixture is the whole mutated file; only a checkpoint or a folder needs its seed's other files.
      const needsCompanions = meta.format === 'llama2c' || meta.format === 'safetensors' || meta.format === 'hf-config';
      const seed = seeds.find((s) => s.name === meta.seed);
      if (needsCompanions && !seed) throw new Error(`${f}: seed "${meta.seed}" is no longer made by bench/fuzz.ts`);
      const o = await exercise(meta.format, new Uint8Array(readFileSync(join(FIXTURES, f.replace(/\.json$/, '.bin')))), seed?.companions ?? new Map());
      expect(o, f).not.toMatchObject({ kind: 'failure' });
    }
  }, 300_000);
});

describe.skipIf(!hasShared)('hostile text through every tokenizer kind', () => {
  const smol = JSON.parse(new TextDecoder().decode(readShared('tokenizers', 'smollm2-135m-instruct', 'tokenizer.json')));
  // SmolLM2's vocabulary lacks 21 of the 256 byte tokens: a character needing one of them is dropped by
  // every implementation (there is no unknown token), so the expected text leaves exactly those out.
  const byteChars = new Set(Object.keys(smol.model.vocab));
  const representable = (ch: string) => [...new TextEncoder().encode(ch)].every((b) => byteChars.has(BYTE_TO_CHAR[b]!));
  const kinds: [string, Tokenizer][] = [
    ['SentencePiece (llama-spm)', new Tokenizer(vocabFromMetadata(parseGGUF(readShared('vocab', 'ggml-vocab-llama-spm.gguf'), 'spm')))],
    ['byte-level BPE (SmolLM2)', new Tokenizer(vocabFromTokenizerJson(smol))],
    ['WordPiece (MiniLM)', new Tokenizer(vocabFromTokenizerJson(JSON.parse(new TextDecoder().decode(readShared('tokenizers', 'all-MiniLM-L6-v2', 'tokenizer.json')))))],
    ['llama2.c', new Tokenizer(llama2cVocab(readShared('weights', 'stories260K', 'tok512.bin'), 'tok512.bin'))],
  ];
  // Every code point of the BMP and the first supplementary planes once (surrogates alone, too),
  // thousands of combining marks on one letter, unpaired surrogates between words.
  const everything = Array.from({ length: 0x30000 }, (_, c) => String.fromCharCode(...(c > 0xffff ? [0xd800 + ((c - 0x10000) >> 10), 0xdc00 + ((c - 0x10000) & 0x3ff)] : [c]))).join('');
  const texts = { 'every code point': everything, 'combining marks x5000': 'a' + '\u0301'.repeat(5000) + ' b', 'unpaired surrogates': 'x\ud800y\udfff z\ud83d' };
  for (const [name, tok] of kinds)
    it(`${name}: no exception on any of them; byte-level BPE gives the text back exactly`, () => {
      for (const [what, text] of Object.entries(texts)) {
        const ids = tok.encode(text);
        expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize), `${what}`).toBe(true);
        const back = tok.decode(ids);
        // Lone surrogates are not text: they come back as U+FFFD, as any UTF-8 round trip gives them.
        if (name.startsWith('byte-level')) {
          const expected = [...new TextDecoder().decode(new TextEncoder().encode(text))].filter(representable).join('');
          expect(back === expected, `${what}: decode(encode(text)) differs from the text`).toBe(true);
        }
      }
    }, 120_000);
});
