// llama.cpp reads the quantized files pocketlm writes and computes what pocketlm computes.
// Peer: npm node-llama-cpp (prebuilt CPU binaries), installed in bench/peers (dev-only; .ci/run
// installs it). For each model and type: quantize with pocketlm, run a 128-token teacher-forced pass
// in both engines, compare the next-token logits at every position.
// And stories260K Q8_0 greedy from BOS: the two engines' 256 tokens must be the same (a difference is
// allowed only at a near-tie).
//
// Bounds (the issue's): cosine of the logit vectors >= 0.999 at every position, top-1 agreement >= 99%.
// The engines differ by more than rounding: llama.cpp's CPU kernels quantize activations to 8 bits per
// block of 32 (Q8_0/Q8_K) before the dot products; pocketlm keeps them f32.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine.js';
import { llama2cToGGUF } from '../src/format/llama2c.js';
import { modelFileFromWriteInput, readModelFile } from '../src/format/model-file.js';
import { writeGGUFFile } from '../src/load/node-io.js';
import { quantizeMatrix } from '../src/quant/formats.js';
import { GGMLType, toFloat32 } from '../src/base/tensor.js';
import { quantizeModel, QUANTIZE_TARGETS } from '../src/quant/quantize.js';
import { K_SHAPE, makeRandomModel, SMOLLM2_135M, type Shape } from '../bench/make-model.js';
import { hasShared, readShared, ROOT, SHARED, sequence, STORIES_BIN, STORIES_TOK, storiesReference } from './helpers.js';
import { ENCODERS, FAMILIES, hfFolder } from '../bench/families.js';
import { convertFolder } from '../src/load/node-io.js';

import { readFileSync } from 'node:fs';

const ENTRY = join(ROOT, 'bench', 'peers', 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
const OUT = join(ROOT, 'bench', 'models', 'test');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
let llama: any;
let why = '';
beforeAll(async () => {
  if (!existsSync(ENTRY)) {
    why = 'node-llama-cpp is not installed (cd bench/peers && npm install --ignore-scripts)';
    if (process.env.CI) throw new Error(`${why}: .ci/run should have installed it`);
    return;
  }
  const nlc = await import(pathToFileURL(ENTRY).href);
  llama = await nlc.getLlama({ build: 'never', gpu: false, logLevel: 'error' });
}, 120_000);
afterAll(async () => llama?.dispose());

/** llama.cpp's next-token logits after each of `ids` (positions 0 .. ids.length - 1). */
async function llamaCppLogits(path: string, ids: number[], vocab: number): Promise<Float32Array> {
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const context = await model.createContext({ contextSize: 256, batchSize: 128, threads: 2, sequences: 1 });
  const seq = context.getSequence();
  const out = new Float32Array(ids.length * vocab);
  try {
    // In chunks, so that only 16 positions' logit maps are alive at once.
    for (let i = 0; i < ids.length; i += 16) {
      const chunk = ids.slice(i, i + 16);
      const res = await seq.controlledEvaluate(chunk.map((t: number) => [t, { generateNext: { logits: true } }]));
      chunk.forEach((_, j) => {
        const logits: Map<number, number> = res[j].next.logits;
        for (const [tok, v] of logits) out[(i + j) * vocab + tok] = v;
      });
    }
  } finally {
    await context.dispose();
    await model.dispose();
  }
  return out;
}

/**
 * Per position: cosine of the logit vectors, whether the top-1 tokens agree, and for a disagreement
 * whether it is a near-tie: our two leading logits closer than twice the largest logit difference between
 * the engines at that position (then no engine's rounding can be blamed for the flip).
 */
function compare(a: Float32Array, b: Float32Array, positions: number, vocab: number) {
  let agree = 0, worstCos = 1;
  const unexplained: string[] = [];
  for (let p = 0; p < positions; p++) {
    let dot = 0, na = 0, nb = 0, ia = 0, ib = 0, maxDiff = 0;
    for (let v = 0; v < vocab; v++) {
      const x = a[p * vocab + v]!, y = b[p * vocab + v]!;
      dot += x * y; na += x * x; nb += y * y;
      maxDiff = Math.max(maxDiff, Math.abs(x - y));
      if (x > a[p * vocab + ia]!) ia = v;
      if (y > b[p * vocab + ib]!) ib = v;
    }
    worstCos = Math.min(worstCos, dot / Math.sqrt(na * nb));
    if (ia === ib) agree++;
    else if (a[p * vocab + ia]! - a[p * vocab + ib]! > 2 * maxDiff) unexplained.push(`position ${p}: ${ia} vs ${ib}`);
  }
  return { agree: agree / positions, worstCos, unexplained };
}

const models = () => {
  mkdirSync(OUT, { recursive: true });
  const stories = modelFileFromWriteInput(llama2cToGGUF(readShared('weights', 'stories260K', 'stories260K.bin'), STORIES_BIN, readShared('weights', 'stories260K', 'tok512.bin'), STORIES_TOK, 'stories260K'), STORIES_BIN, 'llama2c');
  const shaped = (shape: Shape) => {
    const path = join(ROOT, 'bench', 'models', `${shape.name}-f32.gguf`);
    if (!existsSync(path)) makeRandomModel(shape, 'f32', path, SHARED);
    return readModelFile(new Uint8Array(readFileSync(path)), path);
  };
  const ref = storiesReference();
  let s = 7;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % 31000) + 100;
  const randomIds = [1, ...Array.from({ length: 127 }, rnd)];
  return [
    { name: 'stories260K', file: stories, ids: [1, ...ref.generated_ids.slice(0, 127)] },
    { name: 'k-shape (random)', file: shaped(K_SHAPE), ids: randomIds },
    { name: 'SmolLM2-135M shape (random)', file: shaped(SMOLLM2_135M), ids: randomIds },
  ];
};

describe.skipIf(!hasShared)('llama.cpp reads our quantized files and agrees', () => {
  it('every type on stories260K, a K-quant-shaped model and the 135M shape: cosine >= 0.999; top-1 >= 99% (trained model), disagreements only at near-ties', async () => {
    if (!llama) return console.warn(`skipped: ${why}`);
    const rows: string[] = [];
    for (const m of models()) {
      for (const type of QUANTIZE_TARGETS) {
        const { input } = quantizeModel(m.file, type);
        const path = join(OUT, `${m.name.split(' ')[0]}-${type}.gguf`);
        writeGGUFFile(path, input);
        const ours = await loadModel(path, { device: 'cpu' });
        const V = ours.config.vocabSize;
        const a = await ours.logits(m.ids);
        ours.dispose();
        const b = await llamaCppLogits(path, m.ids, V);
        const { agree, worstCos, unexplained } = compare(a, b, m.ids.length, V);
        rows.push(`${m.name} ${type}: top-1 ${(agree * 100).toFixed(1)}%, worst cosine ${worstCos.toFixed(6)}`);
        expect(worstCos, `${m.name} ${type}`).toBeGreaterThanOrEqual(0.999);
        // Top-1 >= 99% holds for the trained model. Random-weight models have near-flat logits (their
        // two leading logits are often within 0.01 of each other, while llama.cpp's 8-bit activations
        // move logits by about 0.01), so there we require instead that every disagreement is such a
        // near-tie; their agreement rates (94-99%) are reported in docs/quantization.md.
        if (m.name === 'stories260K') expect(agree, `${m.name} ${type}`).toBeGreaterThanOrEqual(0.99);
        expect(unexplained, `${m.name} ${type}: top-1 disagreements that are not near-ties`).toEqual([]);
      }
    }
    // Q5_0, which llama.cpp's quantizer writes where K-quant blocks do not fit (ours writes Q8_0 there):
    // every matrix as Q5_0. Not one of the five types above, so the trained-model top-1 >= 99% is not
    // asked of it (with 5-bit weights llama.cpp's 8-bit activations flip 2 of 128 near-ties on stories260K).
    for (const m of models().slice(0, 2)) {
      const { input } = quantizeModel(m.file, 'q8_0');
      input.tensors = input.tensors.map((t) => {
        if (t.type !== GGMLType.Q8_0) return t;
        const src = m.file.tensors.get(t.name)!;
        const [cols, rows] = t.shape as [number, number];
        return { ...t, type: GGMLType.Q5_0, data: quantizeMatrix(GGMLType.Q5_0, toFloat32(src.type, src.data, rows * cols), rows, cols, t.name).data };
      });
      const path = join(OUT, `${m.name.split(' ')[0]}-q5_0.gguf`);
      writeGGUFFile(path, input);
      const ours = await loadModel(path, { device: 'cpu' });
      const V = ours.config.vocabSize;
      const a = await ours.logits(m.ids);
      ours.dispose();
      const { agree, worstCos, unexplained } = compare(a, await llamaCppLogits(path, m.ids, V), m.ids.length, V);
      rows.push(`${m.name} q5_0 (every matrix): top-1 ${(agree * 100).toFixed(1)}%, worst cosine ${worstCos.toFixed(6)}`);
      expect(worstCos, `${m.name} q5_0`).toBeGreaterThanOrEqual(0.999);
      expect(unexplained, `${m.name} q5_0`).toEqual([]);
    }
    console.log(rows.join('\n'));
  }, 900_000);

  it('stories260K Q8_0: greedy from BOS gives the same 256 tokens in llama.cpp as in pocketlm (a difference allowed only at a near-tie)', async () => {
    if (!llama) return console.warn(`skipped: ${why}`);
    const stories = models()[0]!;
    const path = join(OUT, 'stories260K-greedy-q8_0.gguf');
    writeGGUFFile(path, quantizeModel(stories.file, 'q8_0').input);
    // llama.cpp's greedy run, one token per step, keeping each step's logits
    const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
    const context = await model.createContext({ contextSize: 512, threads: 2, sequences: 1 });
    const seq = context.getSequence();
    const theirs: number[] = [];
    const theirLogits: Map<number, number>[] = [];
    try {
      let next = 1;
      for (let i = 0; i < 256; i++) {
        const res = await seq.controlledEvaluate([[next, { generateNext: { logits: true } }]]);
        const logits: Map<number, number> = res[0].next.logits;
        let best = -1, bv = -Infinity;
        for (const [tok, v] of logits) if (v > bv) { bv = v; best = tok; }
        theirs.push(best);
        theirLogits.push(logits);
        next = best;
      }
    } finally {
      await context.dispose();
      await model.dispose();
    }
    const ours = await loadModel(path, { device: 'cpu' });
    try {
      const g = ours.generate('', { temperature: 0, maxTokens: 256, ignoreEos: true });
      await g.text();
      const d = g.tokens.findIndex((t, i) => t !== theirs[i]);
      if (d !== -1) {
        // Only at a near-tie: our two best logits there closer than twice the engines' largest difference.
        const V = ours.config.vocabSize;
        const a = (await ours.logits([1, ...theirs.slice(0, d)])).subarray(d * V, (d + 1) * V);
        const maxDiff = Math.max(...Array.from(a, (v, i) => Math.abs(v - (theirLogits[d]!.get(i) ?? 0))));
        const sorted = Array.from(a).sort((x, y) => y - x);
        expect(sorted[0]! - sorted[1]!, `greedy runs differ at ${d}, not at a near-tie`).toBeLessThanOrEqual(2 * maxDiff);
      }
      const ref = storiesReference().generated_ids;
      const from = (ids: number[]) => { const i = ids.findIndex((t, k) => t !== ref[k]); return i === -1 ? 256 : i; };
      console.log(`stories260K Q8_0 greedy: pocketlm and llama.cpp identical for ${d === -1 ? 256 : d} of 256 tokens; each matches the F32 reference for ${from(g.tokens)} (pocketlm) and ${from(theirs)} (llama.cpp) tokens`);
    } finally {
      ours.dispose();
    }
  }, 300_000);
});

// Every family llama.cpp runs, as GGUF files pocketlm converts from random-weight Hugging Face folders
// (bench/families.ts; configs changed only where llama.cpp ignores an option, see Family.llamaCpp):
// next-token logits at each of 64 positions. F32: cosine >= 0.9999 everywhere, top-1 the same except at
// near-ties (as above). Q8_0 and Q4_K_M (quantized by pocketlm, read by both): cosine >= 0.999.
describe.skipIf(!hasShared)('bench:compare on a file of the user\'s', () => {
  it('--model FILE: pocketlm (16-bit, 8-bit and f32 inputs) beside llama.cpp on that file, each with its ratio', async () => {
    if (!llama) return console.warn(`skipped: ${why}`);
    const src = readModelFile(readFileSync(STORIES_BIN), STORIES_BIN, { bytes: readFileSync(STORIES_TOK), source: STORIES_TOK });
    mkdirSync(OUT, { recursive: true });
    const path = join(OUT, 'stories260K-compare-q8_0.gguf');
    writeGGUFFile(path, quantizeModel(src, 'q8_0').input);
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { stdout } = await promisify(execFile)(process.execPath, [join(ROOT, 'dist', 'bench', 'compare.js'), '--model', path, '--rounds', '1', '--prompts', '16', '--decode', '4', '--threads', '1'], { cwd: ROOT, timeout: 120_000 });
    const rows = stdout.split('\n').filter((l) => l.startsWith('| stories260K-compare-q8_0.gguf |'));
    const engines = rows.map((l) => l.split('|')[2]!.trim());
    expect(engines).toEqual(['pocketlm cpu (1 thread)', 'pocketlm cpu (1 thread), sampling', 'pocketlm cpu (1 thread), int8 activations', 'pocketlm cpu (1 thread), f32 activations', 'llama.cpp cpu (1 threads)', 'llama.cpp cpu (1 threads), sampling']);
    // pocketlm's rows carry ratios against llama.cpp's (a positive number each), llama.cpp's none
    for (const l of rows.slice(0, 4)) expect(l).toMatch(/\*\*\d+\.\d\dx\*\* \([\d.]+-[\d.]+\) \| \*\*\d+\.\d\dx\*\*/);
    for (const l of rows.slice(4)) expect(l).toMatch(/\| - \| - \|$/);
  }, 180_000);
});

describe.skipIf(!hasShared)('llama.cpp computes what pocketlm computes, family by family', () => {
  for (const f of FAMILIES.filter((x) => x.arch !== 'opt')) {
    it(`${f.id} (${f.arch}): F32, Q8_0 and Q4_K_M`, async () => {
      if (!llama) return console.warn(`skipped: ${why}`);
      mkdirSync(OUT, { recursive: true });
      const dir = hfFolder(f, join(ROOT, 'bench', 'models', 'families'), SHARED, { config: f.llamaCpp });
      const f32 = join(OUT, `${f.id}-f32.gguf`);
      const file = await convertFolder(dir, f32);
      const rows: string[] = [];
      for (const type of ['f32', 'q8_0', 'q4_k_m'] as const) {
        const path = type === 'f32' ? f32 : join(OUT, `${f.id}-${type}.gguf`);
        if (type !== 'f32') writeGGUFFile(path, quantizeModel(file, type).input);
        const ours = await loadModel(path, { device: 'cpu', threads: 1 });
        const V = ours.config.vocabSize;
        const ids = sequence(V, 64);
        const a = await ours.logits(ids);
        ours.dispose();
        const { agree, worstCos, unexplained } = compare(a, await llamaCppLogits(path, ids, V), ids.length, V);
        rows.push(`${f.id} ${type}: top-1 ${(agree * 100).toFixed(1)}%, worst cosine ${worstCos.toFixed(7)}`);
        expect(worstCos, `${f.id} ${type}`).toBeGreaterThanOrEqual(type === 'f32' ? 0.9999 : 0.999);
        expect(unexplained, `${f.id} ${type}: top-1 disagreements that are not near-ties`).toEqual([]);
      }
      console.log(rows.join('\n'));
    }, 300_000);
  }
});

// Encoders llama.cpp runs (its `bert` architecture): MiniLM-L6 and bge-small shapes, converted by
// pocketlm to F32 GGUF (heads left out: llama.cpp refuses tensors it does not know), embedded by
// llama.cpp's embedding context (mean pooling from the file's pooling_type) and by pocketlm, for texts
// of different lengths, batched in pocketlm. Cosine >= 0.9999 (the bound): llama.cpp computes
// BERT's GELU with the tanh approximation (pocketlm and Hugging Face use erf; they differ by < 5e-4 per
// activation), and ggml's f32 kernels sum in a different order.
describe.skipIf(!hasShared)('llama.cpp embeds what pocketlm embeds (BERT)', () => {
  for (const id of ['minilm', 'bge-cls'] as const) {
    it(`${id}: pooled embeddings of 5 texts of 3-130 tokens`, async () => {
      if (!llama) return console.warn(`skipped: ${why}`);
      mkdirSync(OUT, { recursive: true });
      const f = ENCODERS.find((x) => x.id === id)!;
      // BertModel with mean pooling (bge-cls's config becomes a plain BertModel: llama.cpp runs no classifier).
      const dir = hfFolder({ ...f, id: `${id}-llamacpp`, config: (V, s) => ({ ...f.config(V, s), architectures: ['BertModel'], id2label: undefined }), tensors: (c) => f.tensors(c).filter(([n]) => !n.startsWith('classifier')).map(([n, ...r]) => [n.replace(/^bert\./, ''), ...r] as never), extra: ENCODERS[0]!.extra }, join(ROOT, 'bench', 'models', 'encoders'), SHARED, { vocab: 3000 });
      const path = join(OUT, `${id}-f32.gguf`);
      await convertFolder(dir, path);
      const ours = await loadModel(path, { device: 'cpu', threads: 1 });
      const texts = ['hi', 'the quick brown fox jumps over the lazy dog.', 'a b c d e f g h i j k l m n o p q r s t u v w x y z '.repeat(5), 'hello world, hello again', 'one'];
      const mine = await ours.embed(texts);
      const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
      const ctx = await model.createEmbeddingContext({ contextSize: 512, batchSize: 512, threads: 2 });
      const rows: string[] = [];
      try {
        for (let i = 0; i < texts.length; i++) {
          const tokens = ours.encode(texts[i]!);
          const theirs: number[] = [...(await ctx.getEmbeddingFor(tokens)).vector];
          const a = mine[i]!;
          let dot = 0, na = 0, nb = 0;
          for (let j = 0; j < a.length; j++) { dot += a[j]! * theirs[j]!; na += a[j]! ** 2; nb += theirs[j]! ** 2; }
          const cos = dot / Math.sqrt(na * nb);
          rows.push(`${tokens.length} tokens: cosine ${cos.toFixed(7)}`);
          expect(cos, `${id} text ${i}`).toBeGreaterThanOrEqual(0.9999);
        }
      } finally {
        await ctx.dispose();
        await model.dispose();
        ours.dispose();
      }
      console.log(`${id}: ${rows.join(', ')}`);
    }, 300_000);
  }
});
