// Every family runs as its Hugging Face modeling code computes it: random-weight folders shaped after
// each family's real model (bench/families.ts) load directly and through `pocketlm convert`'s GGUF,
// and their logits match an independent float64 forward pass written from the Hugging Face math
// (test/reference/hf-models.ts) at every position of a 40-token sequence: longer than the tiny
// configs' 16-token sliding windows, so windows, soft-caps, local/global layers all take part.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine.js';
import { convertFolder } from '../src/load/node-io.js';
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
