// Encoders (BERT, MiniLM, TinyBERT, bge, DistilBERT, ALBERT): random-weight Hugging Face folders shaped
// after each family's real config (bench/families.ts ENCODERS, with MiniLM's real WordPiece tokenizer
// cut to 3,000 ids) load directly and through `pocketlm convert`'s GGUF; their final hidden states,
// pooled embeddings, classifier probabilities and masked-LM logits match an independent float64
// forward pass written from the Hugging Face modeling code (test/reference/hf-encoders.ts); a text's
// embedding does not depend on what it is batched with; bad input gets typed errors.
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../src/engine.js';
import { convertFolder } from '../src/load/node-io.js';
import { InvalidInputError, ModelFormatError, UnsupportedModelError } from '../src/base/errors.js';
import type { BertConfig } from '../src/arch/bert.js';
import { ENCODERS, hfFolder } from '../bench/families.js';
import { hfEncoderReference } from './reference/hf-encoders.js';
import { ROOT, SHARED, hasShared, hasWebGPU, worstElement as worst, worstRows } from './helpers.js';

const MODELS = join(ROOT, 'bench', 'models', 'encoders');
const VOCAB = 3000;
const TEXT = 'the quick brown fox jumps over the lazy dog, and then it runs back home again before night falls over the hills.';

const folder = (id: string, o: { config?: object } = {}) => hfFolder(ENCODERS.find((f) => f.id === id)!, MODELS, SHARED, { vocab: VOCAB, ...o });



const softmax = (x: ArrayLike<number>): number[] => {
  const m = Math.max(...Array.from(x));
  const e = Array.from(x, (v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
};

const unit = (v: Float64Array): Float64Array => {
  const n = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
  return v.map((x) => x / n);
};

// f32 computation against float64, as in test/arch.test.ts: each product of K <= 1536 terms is within
// sqrt(K) 2^-24 (2.3e-6) of exact relative to its terms' magnitudes for random rounding; LayerNorm
// divides by a standard deviation near 1 and attention's softmax passes errors on at most scaled by
// the score range; 2-4 layers of these add a few such errors each. 1e-4 leaves a margin of about 10
// over the worst seen (reported per family below).
const BOUND = 1e-4;

describe.skipIf(!hasShared)('every encoder family against its float64 Hugging Face reference', () => {
  mkdirSync(MODELS, { recursive: true });
  for (const f of ENCODERS) {
    it(`${f.id}: ${f.seed}`, async () => {
      const dir = folder(f.id);
      const m = await loadModel(dir, { device: 'cpu', threads: 1 });
      try {
        const c = m.config as BertConfig;
        const tokens = m.encode(TEXT);
        expect(tokens[0]).toBe(101); // [CLS]
        expect(tokens.at(-1)).toBe(102); // [SEP]
        const ref = hfEncoderReference(dir, tokens);
        const [hidden] = await m.transformer.encode([tokens]);
        const errors: string[] = [];
        const wh = worstRows(hidden!, ref.hidden.at(-1)!);
        errors.push(`hidden ${wh.toExponential(2)}`);
        expect(wh).toBeLessThan(BOUND);
        // The model's pooling (mean over every token, [CLS] and [SEP] included, as sentence-transformers), normalized.
        const D = c.dim;
        const mean = new Float64Array(D);
        for (const v of ref.hidden.at(-1)!) for (let i = 0; i < D; i++) mean[i]! += v[i]! / tokens.length;
        const [e] = await m.embed(TEXT);
        expect(c.pooling).toBe('mean');
        const we = worst(e!, unit(mean));
        errors.push(`embedding ${we.toExponential(2)}`);
        expect(we).toBeLessThan(BOUND);
        const [cls] = await m.embed(TEXT, { pooling: 'cls', normalize: false });
        expect(worst(cls!, ref.hidden.at(-1)![0]!)).toBeLessThan(BOUND);
        if (ref.classify) {
          const [got] = await m.classify(TEXT);
          const p = softmax(ref.classify);
          expect(got!.map((g) => g.label).sort()).toEqual([...c.labels!].sort());
          // Probabilities: softmax passes logit errors on at most doubled, absolute.
          const wc = Math.max(...got!.map((g) => Math.abs(g.score - p[c.labels!.indexOf(g.label)]!)));
          errors.push(`classify ${wc.toExponential(2)}`);
          expect(wc).toBeLessThan(2 * BOUND);
          expect(got![0]!.score).toBeGreaterThanOrEqual(got!.at(-1)!.score);
        }
        if (ref.mlm) {
          // Mask position 3 (the text's third word): the head's logits there, against the reference's at that row.
          const masked = [...tokens];
          masked[3] = 103;
          const refMasked = hfEncoderReference(dir, masked);
          const [logits] = await m.transformer.encode([masked], 'fill-mask', [[3]]);
          const wm = worst(logits!, refMasked.mlm![3]!);
          errors.push(`masked-LM logits ${wm.toExponential(2)}`);
          expect(wm).toBeLessThan(BOUND);
          const text = m.tokenizer.decode(masked.slice(1, -1), { skipSpecial: false }).replace(/\s*\[MASK\]\s*/, ' [MASK] ');
          const [fill] = await m.fillMask(text, { topK: 3 });
          const p = softmax(refMasked.mlm![3]!);
          const best = p.indexOf(Math.max(...p));
          if (m.encode(text).length === masked.length) {
            expect(fill![0]!.id).toBe(best);
            expect(Math.abs(fill![0]!.score - p[best]!)).toBeLessThan(2 * BOUND);
          }
          expect(fill!.length).toBe(3);
        }
        console.log(`${f.id}: worst |pocketlm - reference| / (1 + |ref|) (hidden: |ref| the row's rms): ${errors.join(', ')}`);
        // The GGUF `pocketlm convert` writes holds the same tensors: the same hidden states, bit for bit.
        const gguf = join(MODELS, `${f.id}.gguf`);
        await convertFolder(dir, gguf);
        const g = await loadModel(gguf, { device: 'cpu', threads: 1 });
        try {
          expect(g.config.architecture).toBe(m.config.architecture);
          expect((g.config as BertConfig).pooling).toBe(c.pooling);
          expect((g.config as BertConfig).labels).toEqual(c.labels);
          const [h2] = await g.transformer.encode([tokens]);
          expect(Buffer.from(h2!.buffer).equals(Buffer.from(hidden!.buffer))).toBe(true);
        } finally {
          g.dispose();
          rmSync(gguf, { force: true });
        }
      } finally {
        m.dispose();
      }
    });
  }
});

// WebGPU where an adapter exists (lavapipe here and in CI, where its absence is a failure).
const gpu = await hasWebGPU();

describe.skipIf(!hasShared || !gpu)('encoders on WebGPU', () => {
  it('every family: hidden states, classifier and masked-LM logits against the float64 reference; a packed batch equals each text alone', async () => {
    const rows: string[] = [];
    for (const f of ENCODERS) {
      const dir = folder(f.id);
      const m = await loadModel(dir, { device: 'webgpu' });
      try {
        const tokens = m.encode(TEXT);
        const ref = hfEncoderReference(dir, tokens);
        const [hidden] = await m.transformer.encode([tokens]);
        // The WGSL kernels sum in other orders than the CPU's, with the same f32 error bound (see BOUND).
        const wh = worstRows(hidden!, ref.hidden.at(-1)!);
        expect(wh, f.id).toBeLessThan(BOUND);
        if (ref.classify) expect(worst((await m.transformer.encode([tokens], 'classify'))[0]!, ref.classify), f.id).toBeLessThan(BOUND);
        if (ref.mlm) expect(worst((await m.transformer.encode([tokens], 'fill-mask', [[5]]))[0]!, ref.mlm[5]!), f.id).toBeLessThan(BOUND);
        const texts = ['a', TEXT, 'hello world', 'the dog and the cat. '.repeat(20)];
        const batch = await m.embed(texts);
        for (let i = 0; i < texts.length; i++) expect(worst(batch[i]!, (await m.embed(texts[i]!))[0]!), `${f.id} text ${i}`).toBeLessThan(1e-6);
        rows.push(`${f.id} ${wh.toExponential(2)}`);
      } finally {
        m.dispose();
      }
    }
    console.log(`WebGPU worst hidden-state error: ${rows.join(', ')}`);
  }, 300_000);
});

describe.skipIf(!hasShared)('encoder batches, threads and bad input', () => {
  const texts = ['a', TEXT, 'hello world', '', 'the dog and the cat. '.repeat(20)];

  it('a text embeds the same alone and in a packed batch of texts of different lengths; threads do not change it', async () => {
    const m = await loadModel(folder('minilm'), { device: 'cpu', threads: 1 });
    const m2 = await loadModel(folder('minilm'), { device: 'cpu', threads: 2 });
    try {
      const batch = await m.embed(texts);
      const threaded = await m2.embed(texts);
      for (let i = 0; i < texts.length; i++) {
        const [alone] = await m.embed(texts[i]!);
        // Rows never mix (each text attends only to its own rows), and the f32 kernels compute a row's
        // products the same way whatever the other rows are, up to the blocking of inputs: 1e-6 is a
        // few f32 roundings of a unit vector's entries.
        expect(worst(batch[i]!, alone!), `text ${i}`).toBeLessThan(1e-6);
        expect(worst(threaded[i]!, alone!), `text ${i}, 2 threads`).toBeLessThan(1e-6);
      }
      expect(await m.embed([])).toEqual([]);
      // Token ids instead of texts: taken as given.
      const ids = texts.slice(0, 3).map((t) => m.encode(t));
      expect(await m.embed(ids)).toEqual(await m.embed(texts.slice(0, 3)));
      await expect(m.embed([[1, 999999]])).rejects.toThrow(/outside the vocabulary/);
      await expect(m.embed([[]])).rejects.toThrow(/empty text/);
    } finally {
      m.dispose();
      m2.dispose();
    }
  });

  it('a text longer than the positions is truncated with a notice, or refused with truncate: false', async () => {
    const notices: string[] = [];
    const m = await loadModel(folder('minilm'), { device: 'cpu', threads: 1, onNotice: (s) => notices.push(s) });
    try {
      const long = 'word '.repeat(700);
      const [v] = await m.embed(long);
      expect(v!.length).toBe(m.config.dim);
      expect(notices.join('\n')).toMatch(/truncated to the model's 512 positions/);
      await expect(m.embed(long, { truncate: false })).rejects.toThrow(InvalidInputError);
      await expect(m.embed(long, { truncate: false })).rejects.toThrow(/longer than the model's 512 positions/);
      await expect(m.embed([1 as unknown as string])).rejects.toThrow(InvalidInputError);
      await expect(m.embed('x', { pooling: 'max' as never })).rejects.toThrow(/pooling must be/);
      await expect(m.classify('x')).rejects.toThrow(UnsupportedModelError);
      await expect(m.fillMask('x [MASK]')).rejects.toThrow(/no masked-LM head/);
      expect(() => m.generate('hello')).toThrow(/is an encoder/);
      const none = await m.embed('hello world', { pooling: 'none' });
      expect(none[0]!.length).toBe(m.encode('hello world').length * m.config.dim);
    } finally {
      m.dispose();
    }
    const mlm = await loadModel(folder('tinybert-mlm'), { device: 'cpu', threads: 1 });
    try {
      await expect(mlm.fillMask('no mask here')).rejects.toThrow(/has no \[MASK\] to fill/);
      await expect(mlm.fillMask('a [MASK]', { topK: 0 })).rejects.toThrow(/topK/);
      const two = await mlm.fillMask('the [MASK] sat on the [MASK].');
      expect(two.length).toBe(2);
      expect(two[0]!.length).toBe(5);
    } finally {
      mlm.dispose();
    }
  });

  it('a folder with a missing tensor, an unknown model class or a variant pocketlm does not compute gets a typed error naming it', async () => {
    const base = folder('minilm');
    const bad = join(MODELS, 'bad-encoder');
    rmSync(bad, { recursive: true, force: true });
    cpSync(base, bad, { recursive: true });
    try {
      const config = JSON.parse(readFileSync(join(base, 'config.json'), 'utf8'));
      writeFileSync(join(bad, 'config.json'), JSON.stringify({ ...config, architectures: ['RobertaModel'] }));
      await expect(loadModel(bad, { device: 'cpu', threads: 1 })).rejects.toThrow(UnsupportedModelError);
      await expect(loadModel(bad, { device: 'cpu', threads: 1 })).rejects.toThrow(/"RobertaModel" is not one pocketlm runs/);
      writeFileSync(join(bad, 'config.json'), JSON.stringify({ ...config, position_embedding_type: 'relative_key' }));
      await expect(loadModel(bad, { device: 'cpu', threads: 1 })).rejects.toThrow(/relative_key/);
      writeFileSync(join(bad, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: 3 }));
      await expect(loadModel(bad, { device: 'cpu', threads: 1 })).rejects.toThrow(ModelFormatError);
      await expect(loadModel(bad, { device: 'cpu', threads: 1 })).rejects.toThrow(/encoder\.layer\.2\.attention\.self\.query\.weight" is missing/);
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });
});

/** For other test files: an encoder model's folder. */
export function encoderFolder(id: string): string {
  return folder(id);
}

export type { Model };
