// Looking inside (src/inspect.ts, the hook points of src/arch/transformer.ts): captured tensors are the
// real intermediate values (against the float64 Hugging Face references' own intermediates), patterns
// are probabilities, the logit lens's last layer is the model's output exactly, patching a point with
// its own value changes nothing, ablating a head is the reference without that head, and the same
// points exist in every family, encoders included, on the CPU and on WebGPU.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine.js';
import { InvalidInputError } from '../src/base/errors.js';
import { ENCODERS, FAMILIES, hfFolder } from '../bench/families.js';
import { hfReferenceLogits } from './reference/hf-models.js';
import { hfEncoderReference } from './reference/hf-encoders.js';
import { ROOT, SHARED, STORIES_BIN, STORIES_TOK, hasShared, hasWebGPU, sequence, worstRows } from './helpers.js';

const MODELS = join(ROOT, 'bench', 'models', 'families');
const folder = (id: string) => {
  const encoder = ENCODERS.find((f) => f.id === id);
  return encoder ? hfFolder(encoder, join(ROOT, 'bench', 'models', 'encoders'), SHARED, { vocab: 3000 }) : hfFolder(FAMILIES.find((f) => f.id === id)!, MODELS, SHARED);
};
const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);


// As in test/arch.test.ts: f32 against float64 through a few layers stays within 1e-4 of the values' scale
// (worst seen ~1e-5). Attention probabilities: a score error e changes a probability by at most 2e
// relative; scores are within ~1e-5 of the reference here, so 1e-4 absolute leaves a margin of 10.
const BOUND = 1e-4;

describe.skipIf(!hasShared)('hook points against the float64 references', () => {
  mkdirSync(MODELS, { recursive: true });
  for (const id of ['llama3', 'qwen3', 'mistral']) {
    it(`${id}: resid_post, attention patterns and z of every layer; rows of each pattern sum to 1`, async () => {
      const dir = folder(id);
      const m = await loadModel(dir, { device: 'cpu', threads: 1 });
      try {
        const tokens = sequence(m.config.vocabSize, 40); // past the 16-token sliding window of the tiny Mistral
        const trace = { resid_post: [] as Float64Array[][], pattern: [] as Float64Array[], z: [] as Float64Array[][] };
        const ref = hfReferenceLogits(dir, tokens, { trace });
        const r = await m.run(tokens, { capture: ['blocks.*.resid_post', 'blocks.*.attn.pattern', 'blocks.*.attn.z', 'logits'] });
        const { dim, nHeads, headDim, nLayers } = m.config;
        const n = tokens.length;
        let wr = 0, wp = 0, wz = 0, sums = 0;
        for (let l = 0; l < nLayers; l++) {
          wr = Math.max(wr, worstRows(r.cache.get(`blocks.${l}.resid_post`)!.data, trace.resid_post[l]!, dim));
          wz = Math.max(wz, worstRows(r.cache.get(`blocks.${l}.attn.z`)!.data, trace.z[l]!, nHeads * headDim));
          const p = r.cache.get(`blocks.${l}.attn.pattern`)!;
          expect(p.shape).toEqual([nHeads, n, n]);
          expect(p.dims).toEqual(['head', 'query_pos', 'key_pos']);
          for (let i = 0; i < p.data.length; i++) wp = Math.max(wp, Math.abs(p.data[i]! - trace.pattern[l]![i]!));
          for (let row = 0; row < nHeads * n; row++) {
            let s = 0;
            for (let k = 0; k < n; k++) s += p.data[row * n + k]!;
            sums = Math.max(sums, Math.abs(s - 1));
          }
        }
        console.log(`${id}: resid_post ${wr.toExponential(2)}, pattern ${wp.toExponential(2)}, z ${wz.toExponential(2)}, |row sum - 1| ${sums.toExponential(2)}`);
        expect(wr).toBeLessThan(BOUND);
        expect(wz).toBeLessThan(BOUND);
        expect(wp).toBeLessThan(BOUND);
        expect(sums).toBeLessThan(1e-6); // float64 sums, each probability stored as f32: n * 2^-24
        expect(worstRows(r.output, ref, m.config.vocabSize)).toBeLessThan(BOUND);
        expect(bits(r.cache.get('logits')!.data)).toEqual(bits(r.output));
      } finally {
        m.dispose();
      }
    });
  }

  it('ablating a head (its z zeroed) gives the reference computed without that head; patching a point with its own values changes nothing, bit for bit', async () => {
    const dir = folder('llama3');
    const m = await loadModel(dir, { device: 'cpu', threads: 1 });
    try {
      const tokens = sequence(m.config.vocabSize, 24);
      const { headDim } = m.config;
      const ablated = await m.run(tokens, { patch: { 'blocks.1.attn.z': (z, { rows, width }) => { for (let t = 0; t < rows; t++) z.fill(0, t * width + 2 * headDim, t * width + 3 * headDim); } } });
      const ref = hfReferenceLogits(dir, tokens, { ablate: { layer: 1, head: 2 } });
      expect(worstRows(ablated.output, ref, m.config.vocabSize)).toBeLessThan(BOUND);
      expect(worstRows((await m.run(tokens)).output, ref, m.config.vocabSize)).toBeGreaterThan(1e-2); // the head matters
      const plain = await m.run(tokens, { capture: ['blocks.1.*', 'blocks.1.attn.*', 'blocks.1.mlp.*'] });
      const own = Object.fromEntries([...plain.cache].filter(([k]) => !k.endsWith('pattern')).map(([k, v]) => [k, v.data]));
      expect(Object.keys(own).sort()).toEqual(['blocks.1.attn.k', 'blocks.1.attn.out', 'blocks.1.attn.q', 'blocks.1.attn.v', 'blocks.1.attn.z', 'blocks.1.mlp.out', 'blocks.1.mlp.post', 'blocks.1.resid_mid', 'blocks.1.resid_post', 'blocks.1.resid_pre']);
      for (const [name, values] of Object.entries(own)) expect(bits((await m.run(tokens, { patch: { [name]: values } })).output), name).toEqual(bits(plain.output));
      // Activation patching between runs: the clean run's resid_post at layer 1 put into a corrupted run
      // makes everything after it the clean run's (it is the whole state the later layers read).
      const corrupted = [...tokens];
      corrupted[3] = (corrupted[3]! + 1) % m.config.vocabSize;
      const patched = await m.run(corrupted, { patch: { 'blocks.1.resid_post': own['blocks.1.resid_post']! } });
      expect(bits(patched.output)).toEqual(bits(plain.output));
      expect(bits((await m.run(corrupted)).output)).not.toEqual(bits(plain.output));
    } finally {
      m.dispose();
    }
  });

  it('the logit lens: every layer through the output head; the last layer is the model\'s logits exactly, in every decoder family', async () => {
    for (const id of ['llama3', 'gemma2', 'phi2', 'gpt2', 'gptneox', 'opt-350m']) {
      const m = await loadModel(folder(id), { device: 'cpu', threads: 1 });
      try {
        const tokens = sequence(m.config.vocabSize, 20);
        const lens = await m.logitLens(tokens, { topK: 3 });
        expect(lens.rows.map((r) => r.layer)).toEqual(Array.from({ length: m.config.nLayers }, (_, l) => l));
        expect(bits(lens.lens.at(-1)!), id).toEqual(bits(await m.logits(tokens)));
        expect(lens.rows.at(-1)!.top.every((t, p) => t[0]!.prob === Math.max(...lens.rows.at(-1)!.top[p]!.map((x) => x.prob)))).toBe(true);
        expect(lens.rows[0]!.top[0]!.length).toBe(3);
      } finally {
        m.dispose();
      }
    }
  });

  it('direct logit attribution: the embedding, every head and every MLP add up to the logit (computed apart from the engine, in float64 from the file), in every family it applies to', async () => {
    for (const id of ['llama3', 'qwen2', 'gemma2', 'phi2', 'gpt2', 'gptneox', 'opt']) {
      const m = await loadModel(folder(id), { device: 'cpu', threads: 1 });
      try {
        const tokens = sequence(m.config.vocabSize, 20);
        for (const o of [{}, { target: 7, position: 5 }]) {
          const a = await m.attribute(tokens, o);
          const sum = a.parts.reduce((s, p) => s + p.value, 0) + a.constant;
          // The parts are float64 sums over f32 captures whose rounding (~1e-7 of the stream's scale) the
          // frozen norm scale carries into the logit: 1e-4 of (1 + |logit|) is ample and still tight.
          expect(Math.abs(sum - a.logit), `${id} ${JSON.stringify(o)}: ${sum} vs ${a.logit}`).toBeLessThan(1e-4 * (1 + Math.abs(a.logit)));
          expect(a.parts.filter((p) => /head\d+$/.test(p.name)).length).toBe(id === 'gemma2' ? 0 : m.config.nLayers * m.config.nHeads);
          if (o.target !== undefined) expect([a.target, a.position]).toEqual([7, 5]);
        }
      } finally {
        m.dispose();
      }
    }
    const post = await loadModel(folder('opt-350m'), { device: 'cpu', threads: 1 });
    try {
      await expect(post.attribute([1, 2, 3])).rejects.toThrow(/renormalizes it inside its layers/);
    } finally {
      post.dispose();
    }
  });

  it('encoders: resid_post of every layer is the reference\'s hidden state of that layer (BERT, ALBERT, MobileBERT); patterns are bidirectional', async () => {
    for (const id of ['minilm', 'albert-mlm', 'mobilebert-mlm']) {
      const dir = folder(id);
      const m = await loadModel(dir, { device: 'cpu', threads: 1 });
      try {
        const r = await m.run('the quick brown fox jumps over the lazy dog.', { capture: ['blocks.*.resid_post', 'blocks.0.attn.pattern'] });
        const ref = hfEncoderReference(dir, r.tokens);
        let w = 0;
        for (let l = 0; l < m.config.nLayers; l++) w = Math.max(w, worstRows(r.cache.get(`blocks.${l}.resid_post`)!.data, ref.hidden[l + 1]!, m.config.dim));
        console.log(`${id}: every layer's hidden state within ${w.toExponential(2)} of the reference's`);
        expect(w).toBeLessThan(BOUND);
        expect(bits(r.cache.get(`blocks.${m.config.nLayers - 1}.resid_post`)!.data)).toEqual(bits(r.output));
        const p = r.cache.get('blocks.0.attn.pattern')!;
        const n = r.tokens.length;
        expect(p.data[1]! + p.data[n - 1]!).toBeGreaterThan(0); // the first token sees later ones
      } finally {
        m.dispose();
      }
    }
  });

  it('bad requests get typed errors', async () => {
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, device: 'cpu', threads: 1 });
    try {
      await expect(m.run('Once', { capture: ['blocks.9.resid_post'] })).rejects.toThrow(/names no hook point of this 5-layer model/);
      await expect(m.run('Once', { capture: ['nope'] })).rejects.toThrow(InvalidInputError);
      await expect(m.run('Once', { patch: { 'blocks.0.resid_pre': new Float32Array(3) } })).rejects.toThrow(/replacement for blocks.0.resid_pre/);
      const n = m.encode('Once').length;
      await expect(m.run('Once', { patch: { 'blocks.0.resid_pre': new Float32Array((n + 1) * m.config.dim) } })).rejects.toThrow(/needs 2 rows \(tokens\) of 64/);
      await expect(m.run('Once', { patch: { 'blocks.0.resid_pre': () => new Float32Array(1) } })).rejects.toThrow(/must return a Float32Array/);
      await expect(m.run([], {})).rejects.toThrow(/at least one token/);
      await expect(m.logitLens('Once', { layers: [7] })).rejects.toThrow(/layer 7/);
    } finally {
      m.dispose();
    }
  });
});

// WebGPU where an adapter exists (lavapipe here and in CI, where its absence is a failure).
const gpu = await hasWebGPU();

describe.skipIf(!hasShared || !gpu)('hook points on WebGPU', () => {
  it('captures, patches and the logit lens on the GPU match the CPU\'s', async () => {
    const dir = folder('qwen3');
    const [c, g] = [await loadModel(dir, { device: 'cpu', threads: 1 }), await loadModel(dir, { device: 'webgpu' })];
    try {
      const tokens = sequence(c.config.vocabSize, 40);
      const o = { capture: ['blocks.*.resid_post', 'blocks.1.attn.pattern', 'blocks.0.mlp.post'], patch: { 'blocks.0.attn.z': (z: Float32Array) => { z.fill(0, 0, 64); } } };
      const [a, b] = [await c.run(tokens, o), await g.run(tokens, o)];
      expect([...b.cache.keys()].sort()).toEqual([...a.cache.keys()].sort());
      // Both within BOUND of float64 (test/backend-webgpu.test.ts, this file): within 2 x BOUND of each other.
      for (const [name, v] of a.cache) expect(worstRows(b.cache.get(name)!.data, Array.from({ length: v.shape[0]! }, (_, t) => v.data.subarray(t * v.data.length / v.shape[0]!, (t + 1) * v.data.length / v.shape[0]!)), v.data.length / v.shape[0]!), name).toBeLessThan(2 * BOUND);
      const lens = await g.logitLens(tokens);
      expect(bits(lens.lens.at(-1)!)).toEqual(bits(await g.logits(tokens)));
    } finally {
      c.dispose();
      g.dispose();
    }
  }, 120_000);
});
