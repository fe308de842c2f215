// The quantizer: which tensor gets which type (llama.cpp's rules), the files it writes, and how
// close a quantized model stays to the f32 one.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine.js';
import { serializeGGUF } from '../src/format/gguf-writer.js';
import { modelFileFromWriteInput, readModelFile } from '../src/format/model-file.js';
import { quantizeModel, quantizePlan } from '../src/quant/quantize.js';
import { GGMLType, typeName } from '../src/base/tensor.js';
import { hasShared, ROOT, STORIES_BIN, STORIES_TOK, storiesReference, tinyLlama } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'pocketlm-quantize-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const file = (spec: Parameters<typeof tinyLlama>[0]) => modelFileFromWriteInput(tinyLlama(spec), 'tiny', 'gguf');
const bytesOf = (input: ReturnType<typeof quantizeModel>['input']) => {
  const chunks = [...serializeGGUF(input)];
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.byteLength; }
  return out;
};

describe('quantizePlan', () => {
  it('q4_k_m: Q6_K for the output head and for attn_v / ffn_down where llama.cpp\'s use_more_bits says so, Q4_K elsewhere, norms F32', () => {
    const plan = quantizePlan(file({ dim: 256, ffn: 512, layers: 30, heads: 4, kvHeads: 2, tied: false }), 'q4_k_m');
    const type = (name: string) => plan.find((p) => p.name === name)!.to;
    // use_more_bits(i, 30): i < 3, i >= 26, or (i - 3) % 3 == 2 (written out by hand from llama.cpp's rule)
    const more = [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29];
    for (let l = 0; l < 30; l++) {
      for (const t of ['attn_v', 'ffn_down']) expect(type(`blk.${l}.${t}.weight`), `${t} ${l}`).toBe(more.includes(l) ? GGMLType.Q6_K : GGMLType.Q4_K);
      for (const t of ['attn_q', 'attn_k', 'attn_output', 'ffn_gate', 'ffn_up']) expect(type(`blk.${l}.${t}.weight`)).toBe(GGMLType.Q4_K);
      expect(type(`blk.${l}.attn_norm.weight`)).toBe(GGMLType.F32);
    }
    expect(type('output.weight')).toBe(GGMLType.Q6_K);
    expect(type('token_embd.weight')).toBe(GGMLType.Q4_K);
  });

  it('the tied embedding is the head; q8_0 keeps Q8_0 for it; rows that do not split into blocks fall back, with a note', () => {
    const tied = file({ dim: 256, ffn: 512, layers: 1, heads: 4, kvHeads: 2 });
    expect(quantizePlan(tied, 'q4_0').find((p) => p.name === 'token_embd.weight')!.to).toBe(GGMLType.Q6_K);
    expect(quantizePlan(tied, 'q8_0').find((p) => p.name === 'token_embd.weight')!.to).toBe(GGMLType.Q8_0);
    const odd = quantizePlan(file({ dim: 64, ffn: 172, layers: 1, heads: 4, kvHeads: 2 }), 'q4_k');
    const q = odd.find((p) => p.name === 'blk.0.attn_q.weight')!;
    expect([typeName(q.to), q.note]).toEqual(['Q8_0', "rows of 64 values do not split into Q4_K's 256-value blocks: Q8_0"]);
    const down = odd.find((p) => p.name === 'blk.0.ffn_down.weight')!;
    expect(down.to).toBe(GGMLType.F32); // 172 is not a multiple of 32 either: kept as it is
  });

  it('refuses unknown types and already-quantized inputs', () => {
    const f = file({ dim: 32, ffn: 64 });
    expect(() => quantizePlan(f, 'q3_k' as never)).toThrow(/unknown quantization type "q3_k"/);
    const q = readModelFile(bytesOf(quantizeModel(f, 'q8_0').input), 'q8.gguf');
    expect(() => quantizePlan(q, 'q4_0')).toThrow(/already Q8_0: quantize from an F32, F16 or BF16 file/);
  });
});

describe.skipIf(!hasShared)('quantized stories260K', () => {
  it('Q8_0: teacher-forced top-1 >= 95% of the f32 model, and greedy text identical to the reference up to its first near-tie', async () => {
    const f32 = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, device: 'cpu' });
    const src = readModelFile(new Uint8Array(await import('node:fs').then((fs) => fs.readFileSync(STORIES_BIN))), STORIES_BIN, { bytes: new Uint8Array(await import('node:fs').then((fs) => fs.readFileSync(STORIES_TOK))), source: STORIES_TOK });
    const q8 = await loadModel(bytesOf(quantizeModel(src, 'q8_0').input), { device: 'cpu' });
    try {
      const ref = storiesReference();
      const ids = [1, ...ref.generated_ids.slice(0, 255)];
      const [a, b] = [await f32.logits(ids), await q8.logits(ids)];
      const V = f32.config.vocabSize;
      let agree = 0, firstTie = ids.length;
      for (let p = 0; p < ids.length; p++) {
        const ra = Array.from(a.subarray(p * V, (p + 1) * V)), rb = Array.from(b.subarray(p * V, (p + 1) * V));
        const order = ra.map((v, i) => [v, i] as const).sort((x, y) => y[0] - x[0]);
        const maxDiff = ra.reduce((m, v, i) => Math.max(m, Math.abs(v - rb[i]!)), 0);
        if (rb.indexOf(Math.max(...rb)) === order[0]![1]) agree++;
        // The quantized model can only pick another token where the f32 model's two best are closer
        // than twice the largest logit change quantization made there.
        if (firstTie === ids.length && order[0]![0] - order[1]![0] <= 2 * maxDiff) firstTie = p;
      }
      expect(agree / ids.length).toBeGreaterThanOrEqual(0.95);
      const g = q8.generate('', { temperature: 0, maxTokens: 256, ignoreEos: true });
      await g.text();
      const diverged = g.tokens.findIndex((t, i) => t !== ref.generated_ids[i]);
      // ids[p] predicts generated_ids[p]: the first divergence cannot come before the first near-tie.
      expect(diverged === -1 || diverged >= firstTie).toBe(true);
      console.log(`stories260K Q8_0: teacher-forced top-1 ${agree}/${ids.length}; greedy identical for ${diverged === -1 ? 256 : diverged} tokens (first near-tie at ${firstTie})`);
    } finally {
      f32.dispose();
      q8.dispose();
    }
  });

  it('pocketlm quantize writes a file pocketlm generate runs', () => {
    const cli = join(ROOT, 'dist', 'src', 'cli', 'main.js');
    const out = join(tmp, 's-q4_0.gguf');
    const q = spawnSync(process.execPath, [cli, 'quantize', STORIES_BIN, out, '--type', 'q4_0', '--tokenizer', STORIES_TOK], { encoding: 'utf8' });
    expect(q.status, q.stderr).toBe(0);
    expect(q.stderr).toMatch(/wrote .*s-q4_0\.gguf: .*Q4_0.*tensors 1\.0 MB -> 0\.4 MB/);
    const info = spawnSync(process.execPath, [cli, 'info', out], { encoding: 'utf8' });
    expect(info.stdout).toMatch(/Q4_0\s+30 tensors/); // 5 layers x 6 matrices; ffn_down (172-wide rows) stays F32, the tied head Q8_0
    expect(info.stdout).toMatch(/bits per weight\), file type mostly Q4_0/);
    const g = spawnSync(process.execPath, [cli, 'generate', '--model', out, '--device', 'cpu', '--temperature', '0', '--max-tokens', '20', 'Once upon a time'], { encoding: 'utf8' });
    expect(g.status, g.stderr).toBe(0);
    expect(g.stdout.length).toBeGreaterThan(20);
    // --int8-activations: the same file through the 8-bit-input kernels (greedy, so a near-tie may pick another word: only that it runs)
    const g8 = spawnSync(process.execPath, [cli, 'generate', '--model', out, '--device', 'cpu', '--int8-activations', '--temperature', '0', '--max-tokens', '20', 'Once upon a time'], { encoding: 'utf8' });
    expect(g8.status, g8.stderr).toBe(0);
    expect(g8.stdout.length).toBeGreaterThan(20);
    const bad = spawnSync(process.execPath, [cli, 'quantize', STORIES_BIN, out, '--type', 'q3_k', '--tokenizer', STORIES_TOK], { encoding: 'utf8' });
    expect([bad.status, bad.stderr]).toEqual([1, 'pocketlm: --type must be one of q8_0, q4_0, q4_k, q6_k, q4_k_m, q5_k, q5_k_m, q4_1, q5_1, got "q3_k"\n']);
  });
});
