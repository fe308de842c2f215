// How close quantized models stay to the f32 ones: for each type, a teacher-forced run (top-1 agreement
// with f32 and mean KL divergence KL(f32 || quantized)) and, for stories260K, a free greedy run from BOS
// (tokens identical to the f32 reference before the first difference). stories260K's rows (64 values)
// are too short for K-quant blocks, so its K types fall back to Q8_0; the second table uses a random
// model whose rows split into 256-value blocks (bench/make-model.ts's k-shape) to measure Q4_K and Q6_K.
// Each type runs three times on the CPU (loadModel's activations): f32 inputs, 16-bit inputs (the
// default) and 8-bit inputs. Integer inputs apply to every format's matrix-vector products (batches of
// 8+ tokens of formats other than Q8_0 and Q4_0 use f32 tiles in every mode), so their teacher-forced
// run feeds one token at a time, as decoding does.
//
//   npm run build && node dist/bench/quant-quality.js     (prints a markdown table)

import { existsSync, readFileSync } from 'node:fs';
import { K_SHAPE, makeRandomModel } from './make-model.js';
import { join } from 'node:path';
import { loadModel } from '../src/engine.js';
import { serializeGGUF } from '../src/format/gguf-writer.js';
import { readModelFile } from '../src/format/model-file.js';
import { quantizeModel, QUANTIZE_TARGETS } from '../src/quant/quantize.js';
import { typeName } from '../src/base/tensor.js';

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

async function quantizedBytes(src: ReturnType<typeof readModelFile>, type: (typeof QUANTIZE_TARGETS)[number]) {
  const { input, plan } = quantizeModel(src, type);
  const chunks = serializeGGUF(input);
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  chunks.reduce((o, c) => (bytes.set(c, o), o + c.byteLength), 0);
  const counts = new Map<string, number>();
  for (const p of plan) if (p.from !== p.to) counts.set(typeName(p.to), (counts.get(typeName(p.to)) ?? 0) + 1);
  return { bytes, tensors: [...counts].map(([t, n]) => `${n} ${t}`).join(', '), size: input.tensors.reduce((n, t) => n + t.data.byteLength, 0) };
}

/** Next-token logits after each of `ids`, one token per forward step (the decode path). */
async function stepLogits(m: Awaited<ReturnType<typeof loadModel>>, ids: number[]): Promise<Float32Array> {
  const V = m.config.vocabSize;
  const state = m.transformer.newState(ids.length);
  const out = new Float32Array(ids.length * V);
  for (let i = 0; i < ids.length; i++) out.set(await m.transformer.forward(state, [ids[i]!]), i * V);
  return out;
}

/** Teacher-forced top-1 agreement and mean KL(f32 || quantized) over `ids`. */
function agreement(base: Float32Array, logits: Float32Array, positions: number, V: number) {
  let agree = 0, kl = 0;
  for (let p = 0; p < positions; p++) {
    const a = base.subarray(p * V, (p + 1) * V), b = logits.subarray(p * V, (p + 1) * V);
    if (argmax(a) === argmax(b)) agree++;
    const [pa, pb] = [softmax(a), softmax(b)];
    kl += pa.reduce((s, x, i) => s + (x > 0 ? x * Math.log(x / pb[i]!) : 0), 0);
  }
  return `${agree}/${positions} (${((100 * agree) / positions).toFixed(1)}%) | ${(kl / positions).toExponential(2)}`;
}

const MODES = ['f32', 'int16', 'int8'] as const;
const inputs = (a: (typeof MODES)[number]) => ({ f32: 'f32', int16: '16-bit', int8: '8-bit' })[a];
const lines = ['stories260K (trained), 256 reference tokens:', '', '| type | inputs | tensors | size | teacher-forced top-1 vs F32 | mean KL(F32 ‖ quantized) | greedy identical before first difference |', '|---|---|---|---:|---:|---:|---:|'];
for (const type of QUANTIZE_TARGETS)
  for (const activations of MODES) {
    const q = await quantizedBytes(src, type);
    const m = await loadModel(q.bytes, { device: 'cpu', activations });
    const logits = activations !== 'f32' ? await stepLogits(m, ids) : await m.logits(ids);
    const g = m.generate('', { temperature: 0, maxTokens: 256, ignoreEos: true });
    await g.text();
    const first = g.tokens.findIndex((t, i) => t !== ref.generated_ids[i]);
    lines.push(`| ${type} | ${inputs(activations)} | ${q.tensors} | ${(q.size / 1e3).toFixed(0)} kB | ${agreement(base, logits, ids.length, V)} | ${first === -1 ? 256 : first} |`);
    m.dispose();
  }
f32.dispose();

const kPath = join('bench', 'models', `${K_SHAPE.name}-f32.gguf`);
if (!existsSync(kPath)) makeRandomModel(K_SHAPE, 'f32', kPath, SHARED);
const kSrc = readModelFile(new Uint8Array(readFileSync(kPath)), kPath);
const kF32 = await loadModel(kPath, { device: 'cpu' });
let seed = 7;
const kIds = [1, ...Array.from({ length: 127 }, () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % 31000) + 100)];
const kBase = await kF32.logits(kIds);
kF32.dispose();
lines.push('', `${K_SHAPE.name} (random weights, dim ${K_SHAPE.dim}, ${K_SHAPE.layers} layers), 128 tokens:`, '', '| type | inputs | tensors | size | teacher-forced top-1 vs F32 | mean KL(F32 ‖ quantized) |', '|---|---|---|---:|---:|---:|');
for (const type of QUANTIZE_TARGETS)
  for (const activations of MODES) {
    const q = await quantizedBytes(kSrc, type);
    const m = await loadModel(q.bytes, { device: 'cpu', activations });
    const logits = activations !== 'f32' ? await stepLogits(m, kIds) : await m.logits(kIds);
    lines.push(`| ${type} | ${inputs(activations)} | ${q.tensors} | ${(q.size / 1e6).toFixed(1)} MB | ${agreement(kBase, logits, kIds.length, m.config.vocabSize)} |`);
    m.dispose();
  }
console.log(lines.join('\n'));
