// Several sequences decoded in one forward step (what a server does with many clients): each sequence
// must get what it would get alone. Every family, because positions (RoPE, learned), sliding windows and
// Phi-3's context-dependent RoPE all depend on the sequence a row belongs to.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine.js';
import { Workspace } from '../src/arch/transformer.js';
import { FAMILIES, hfFolder } from '../bench/families.js';
import { ROOT, SHARED, hasShared, hasWebGPU, sequence } from './helpers.js';

const MODELS = join(ROOT, 'bench', 'models', 'families');
// WebGPU where an adapter exists (lavapipe here and in CI, where its absence is a failure).
const gpu = await hasWebGPU();

describe.skipIf(!hasShared)('decoding several sequences in one step', () => {
  mkdirSync(MODELS, { recursive: true });
  for (const device of ['cpu', 'webgpu'] as const)
  for (const f of FAMILIES) {
    it.skipIf(device === 'webgpu' && !gpu)(`${device}, ${f.id}: three sequences at different positions, 1, 2 or 9 tokens each per step, match each run alone`, async () => {
      const m = await loadModel(hfFolder(f, MODELS, SHARED), { device, threads: 1 });
      try {
        const t = m.transformer;
        const V = m.config.vocabSize;
        const prompts = [sequence(V).slice(0, 21), sequence(V).slice(3, 5), sequence(V).slice(7, 18)];
        const alone = prompts.map(() => t.newState(48));
        const together = prompts.map(() => t.newState(48));
        const ws = new Workspace(t.backend);
        let worst = 0;
        for (let step = 0; step < 6; step++) {
          // Step 0: the prompts; then 2 tokens each, 9 each (prefill-sized attention for every
          // sequence in one step), then one each, as a server decodes.
          const width = [0, 2, 9, 1, 1, 1][step]!;
          const inputs = prompts.map((p, i) => (step === 0 ? p : Array.from({ length: width }, (_, k) => (p.length * 7 + step * 13 + i + k * 5) % V)));
          // Alone: each sequence's own forward pass. Together: the prompts one at a time (prefill), then
          // every sequence in one step.
          const ref = await Promise.all(inputs.map((tokens, i) => t.forward(alone[i]!, tokens)));
          let got: Float32Array;
          if (step === 0) got = Float32Array.from((await Promise.all(inputs.map((tokens, i) => t.forward(together[i]!, tokens)))).flatMap((r) => [...r]));
          else got = await t.backend.read(t.forwardMany(ws, inputs.map((tokens, i) => ({ state: together[i]!, tokens }))), 3 * V);
          ref.forEach((r, i) => r.forEach((x, j) => (worst = Math.max(worst, Math.abs(got[i * V + j]! - x) / (1 + Math.abs(x))))));
          together.forEach((s, i) => expect(s.position).toBe(alone[i]!.position));
        }
        console.log(`${device} ${f.id}: worst |batched - alone| / (1 + |logit|) = ${worst.toExponential(2)}`);
        // A batch of 3, 6 or 27 rows takes other kernels (or other row blocks) than 1, 2 or 9 rows alone:
        // two f32 summation orders of the same products, each within 1e-4 of the logit scale of the
        // float64 reference (test/arch.test.ts), so within 2e-4 of each other (1.5e-5 seen).
        expect(worst).toBeLessThan(2e-4);
      } finally {
        m.dispose();
      }
    });
  }
});
