// Every family runs as its Hugging Face modeling code computes it: random-weight folders shaped after
// each family's real model (bench/families.ts) load directly and through `pocketlm convert`'s GGUF,
// and their logits match an independent float64 forward pass written from the Hugging Face math
// (test/reference/hf-models.ts) at every position of a 40-token sequence: longer than the tiny
// configs' 16-token sliding windows, so windows, soft-caps, local/global layers all take part.
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine.js';
import { convertFolder } from '../src/load/node-io.js';
import { parseSafetensors, serializeSafetensors } from '../src/format/safetensors.js';
import { GGMLType } from '../src/base/tensor.js';
import { FAMILIES, hfFolder } from '../bench/families.js';
import { hfReferenceLogits } from './reference/hf-models.js';
import { hasShared, ROOT, SHARED, sequence } from './helpers.js';

const MODELS = join(ROOT, 'bench', 'models', 'families');

/** The largest |engine - reference| over all logits, relative to 1 + |reference|. */
function worstError(got: Float32Array, ref: Float64Array[], vocab: number): number {
  let worst = 0;
  ref.forEach((row, t) => row.forEach((r, i) => (worst = Math.max(worst, Math.abs(got[t * vocab + i]! - r) / (1 + Math.abs(r))))));
  return worst;
}

describe.skipIf(!hasShared)('every family against its float64 Hugging Face reference', () => {
  mkdirSync(MODELS, { recursive: true });
  for (const f of FAMILIES) {
    it(`${f.id}: ${f.seed}`, async () => {
      const dir = hfFolder(f, MODELS, SHARED);
      const m = await loadModel(dir, { device: 'cpu', threads: 1 });
      try {
        const V = m.config.vocabSize;
        const tokens = sequence(V);
        const got = await m.logits(tokens);
        const ref = hfReferenceLogits(dir, tokens);
        const worst = worstError(got, ref, V);
        console.log(`${f.id}: worst |pocketlm - reference| / (1 + |logit|) = ${worst.toExponential(2)}`);
        // f32 computation against float64: each product of K <= 2048 terms is within sqrt(K) * 2^-24
        // (3e-6) of its exact value, relative to its terms' magnitudes, for random rounding (K * 2^-24 in
        // the worst case); norms, attention and 2-6 layers add a few such errors each. 1e-4 of the
        // logit scale is that with a margin of 8 over the worst seen here (1.2e-5, Qwen2).
        expect(worst).toBeLessThan(1e-4);
        // The folder and the GGUF `pocketlm convert` writes of it hold the same tensors: the same logits, bit for bit.
        const gguf = join(MODELS, `${f.id}.gguf`);
        await convertFolder(dir, gguf);
        const g = await loadModel(gguf, { device: 'cpu', threads: 1 });
        try {
          expect(g.config.architecture).toBe(m.config.architecture);
          expect(Buffer.from((await g.logits(tokens)).buffer).equals(Buffer.from(got.buffer))).toBe(true);
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

describe.skipIf(!hasShared)('Hugging Face folders as they are shipped', () => {
  it('F16 and BF16 weights (kept as such until the backend reads them), against the reference on the same rounded values', async () => {
    for (const [id, dtype] of [['qwen3', 'BF16'], ['phi3', 'F16']] as const) {
      const dir = hfFolder(FAMILIES.find((f) => f.id === id)!, MODELS, SHARED, { dtype });
      const m = await loadModel(dir, { device: 'cpu', threads: 1 });
      try {
        expect(new Set([...m.file.tensors.values()].filter((t) => t.shape.length === 2).map((t) => t.type)).size).toBe(1);
        const tokens = sequence(m.config.vocabSize);
        // As above: the reference reads the same 16-bit values, so only the f32 computation differs.
        expect(worstError(await m.logits(tokens), hfReferenceLogits(dir, tokens), m.config.vocabSize), `${id} ${dtype}`).toBeLessThan(1e-4);
      } finally {
        m.dispose();
      }
    }
  });

  it('sharded weights (model.safetensors.index.json and its shards) load as one', async () => {
    const f = FAMILIES.find((x) => x.id === 'gemma2')!;
    const dir = hfFolder(f, MODELS, SHARED);
    const sharded = join(MODELS, 'gemma2-sharded');
    rmSync(sharded, { recursive: true, force: true });
    cpSync(dir, sharded, { recursive: true });
    const all = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'model.safetensors'))), 'm').tensors;
    const half = Math.ceil(all.length / 2);
    const shards = [all.slice(0, half), all.slice(half)];
    const map: Record<string, string> = {};
    shards.forEach((ts, i) => {
      const name = `model-0000${i + 1}-of-00002.safetensors`;
      for (const t of ts) map[t.name] = name;
      const chunks = serializeSafetensors(ts.map((t) => ({ name: t.name, shape: t.shape, type: GGMLType[t.dtype as 'F32'], data: t.data })));
      writeFileSync(join(sharded, name), Buffer.concat(chunks));
    });
    rmSync(join(sharded, 'model.safetensors'));
    writeFileSync(join(sharded, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: map }));
    const [a, b] = [await loadModel(dir, { device: 'cpu', threads: 1 }), await loadModel(sharded, { device: 'cpu', threads: 1 })];
    try {
      const tokens = sequence(a.config.vocabSize, 8);
      expect(Array.from(await b.logits(tokens))).toEqual(Array.from(await a.logits(tokens)));
    } finally {
      a.dispose();
      b.dispose();
      rmSync(sharded, { recursive: true, force: true });
    }
  });

  it("Phi-3.5's longrope: short factors for contexts up to the original length, long ones beyond, both with the attention factor", async () => {
    const f = FAMILIES.find((x) => x.id === 'phi3')!;
    const hd = 64, half = hd / 2;
    const rope_scaling = { type: 'longrope', short_factor: Array.from({ length: half }, (_, i) => 1 + i / 40), long_factor: Array.from({ length: half }, (_, i) => 1 + i / 4) };
    const dir = hfFolder(f, MODELS, SHARED, { config: { rope_scaling, max_position_embeddings: 4096, original_max_position_embeddings: 64 } });
    const m = await loadModel(dir, { device: 'cpu', threads: 1 });
    try {
      const V = m.config.vocabSize;
      const tokens = sequence(V);
      expect(m.config.traits.join(' ')).toMatch(/longrope \(long factors from 65 tokens\)/);
      // logits() sizes its context to the tokens (40 <= 64): the short factors.
      expect(worstError(await m.logits(tokens), hfReferenceLogits(dir, tokens), V)).toBeLessThan(1e-4);
      // A 128-token context: the long factors for every position.
      const s = m.transformer.newState(128);
      const long = await m.transformer.forward(s, tokens, true);
      expect(worstError(long, hfReferenceLogits(dir, tokens, { longRope: true }), V)).toBeLessThan(1e-4);
    } finally {
      m.dispose();
    }
  });
});
