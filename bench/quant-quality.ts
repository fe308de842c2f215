// How close quantized stories260K stays to the f32 model: for each type, a teacher-forced run over the
// reference's 256 tokens (top-1 agreement with f32 and mean KL divergence KL(f32 || quantized)), and
// a free greedy run from BOS (tokens identical to the f32 reference before the first difference).
//
//   npm run build && node dist/bench/quant-quality.js     (prints a markdown table)

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../src/engine.js';
import { serializeGGUF } from '../src/gguf-writer.js';
import { readModelFile } from '../src/model-file.js';
import { quantizeModel, QUANTIZE_TARGETS } from '../src/quantize.js';
import { typeName } from '../src/tensor.js';

const SHARED = process.env.POCKETLM_SHARED ?? join('..', 'shared');
const dir = join(SHARED, 'weights', 'stories260K');
const ref = JSON.parse(readFileSync(join(dir, 'reference-greedy.json'), 'utf8')) as { generated_ids: number[] };
const src = readModelFile(new Uint8Array(readFileSync(join(dir, 'stories260K.bin'))), 'stories260K.bin', { bytes: new Uint8Array(readFileSync(join(dir, 'tok512.bin'))), source: 'tok512.bin' });
const f32 = await loadModel(join(dir, 'stories260K.bin'), { tokenizer: join(dir, 'tok512.bin'), device: 'cpu' });
const ids = [1, ...ref.generated_ids.slice(0, 255)];
const base = await f32.logits(ids);
const V = f32.config.vocabSize;
const softmax = (a: Float32Array) => {
  const m = Math.max(...a);
  const e = Array.from(a, (v) => Math.exp(v - m));
  const z = e.reduce((x, y) => x + y, 0);
  return e.map((v) => v / z);
};
const argmax = (a: Float32Array) => a.indexOf(Math.max(...a));

const lines = ['| type | tensors | size | teacher-forced top-1 vs F32 | mean KL(F32 ‖ quantized) | greedy identical before first difference |', '|---|---|---:|---:|---:|---:|'];
for (const type of QUANTIZE_TARGETS) {
  const { input, plan } = quantizeModel(src, type);
  const chunks = serializeGGUF(input);
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  chunks.reduce((o, c) => (bytes.set(c, o), o + c.byteLength), 0);
  const m = await loadModel(bytes, { device: 'cpu' });
  const logits = await m.logits(ids);
  let agree = 0, kl = 0;
  for (let p = 0; p < ids.length; p++) {
    const a = base.subarray(p * V, (p + 1) * V), b = logits.subarray(p * V, (p + 1) * V);
    if (argmax(a) === argmax(b)) agree++;
    const [pa, pb] = [softmax(a), softmax(b)];
    kl += pa.reduce((s, x, i) => s + (x > 0 ? x * Math.log(x / pb[i]!) : 0), 0);
  }
  const g = m.generate('', { temperature: 0, maxTokens: 256, ignoreEos: true });
  await g.text();
  const first = g.tokens.findIndex((t, i) => t !== ref.generated_ids[i]);
  const counts = new Map<string, number>();
  for (const p of plan) if (p.from !== p.to) counts.set(typeName(p.to), (counts.get(typeName(p.to)) ?? 0) + 1);
  lines.push(`| ${type} | ${[...counts].map(([t, n]) => `${n} ${t}`).join(', ')} | ${(input.tensors.reduce((n, t) => n + t.data.byteLength, 0) / 1e3).toFixed(0)} kB | ${agree}/${ids.length} (${((100 * agree) / ids.length).toFixed(1)}%) | ${(kl / ids.length).toExponential(2)} | ${first === -1 ? 256 : first} |`);
  m.dispose();
}
f32.dispose();
console.log(lines.join('\n'));
