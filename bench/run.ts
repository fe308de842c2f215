// End-to-end CPU speed: prompt (prefill) and generation (decode) tokens/s, pocketlm beside llama.cpp
// (npm node-llama-cpp, prebuilt CPU binaries, same GGUF file, same thread count) in the same run.
//
//   npm run bench -- [--quick] [--threads N] [--json OUT.json] [--device cpu|webgpu] [--f16] [--quant] [--profile]
// --f16 adds the 135M shape with F16 weights; --quant adds it as Q8_0, Q4_0 and Q4_K_M (quantized by
// pocketlm quantize's code; llama.cpp runs the same files; on the CPU pocketlm runs them three times, with
// 16-bit inputs (the default), 8-bit inputs and f32 inputs: loadModel's activations). --profile: on WebGPU (adapters with
// timestamp-query) GPU time per kernel for one 128-token prefill and for one decode step; on the CPU the
// wall time per backend stage (matmul, attention, ...) of one 128-token prefill. Each engine is timed
// twice: its bare forward passes, and generate() with the default sampling (what the CLI and the server
// run; llama.cpp's evaluate with the same settings). On WebGPU the dispatches per generated token are
// printed too. For ratios from alternating rounds (a shared machine's noise hits both engines), see
// bench/compare.ts (npm run bench:compare).
// With --device webgpu: pocketlm's WebGPU backend beside llama.cpp's Vulkan backend (same adapter).
// --families adds one row per architecture family (bench/families.ts at 110M-480M shapes: the real
// model's widths, fewer layers where the real one is larger), as Q8_0 GGUF files pocketlm converts and
// quantizes; llama.cpp runs the same files (all but OPT). Compare families by the last column, the
// weight bytes read per second of decode: no family should read slower than Llama.
//
// Needs: `npm run build`; bench/peers installed with `npm install --ignore-scripts` (else llama.cpp
// is left out and said so); ../shared for stories260K and the Llama 2 vocabulary.

import { cpus } from 'node:os';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Bench } from 'tinybench';
import { loadModel, type Model } from '../src/engine.js';
import { llamaCppEngine, timeGenerate, type Engine } from '../src/cli/peers.js';
import type { WebGPUBackend } from '../src/backend/webgpu.js';
import { pull } from '../src/load/node-io.js';
import { makeRandomModel, SMOLLM2_135M } from './make-model.js';
import { readModelFile } from '../src/format/model-file.js';
import { writeGGUFFile } from '../src/load/node-io.js';
import { quantizeModel } from '../src/quant/quantize.js';
import { FAMILIES, hfFolder } from './families.js';
import { readModelPath } from '../src/load/node-io.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHARED = resolve(process.env.POCKETLM_SHARED ?? join(ROOT, '..', 'shared'));

interface Row {
  model: string;
  /** Bytes of weight matrices read per decoded token (the file's tensor bytes). */
  weightBytes: number;
  engine: string;
  prefillTokens: number;
  prefillTokPerS: number;
  decodeTokens: number;
  decodeTokPerS: number;
  /** The same through what a user runs: generate() with the default sampling (llama.cpp: evaluate with the same settings). */
  generatePromptTokPerS?: number;
  generateDecodeTokPerS?: number;
}

function pocketlmEngine(model: Model, ctx: number, activations?: 'int8' | 'f32'): Engine {
  return {
    name: `pocketlm ${model.backend.name}${activations ? ` ${activations} activations` : ''}`,
    async prefill(tokens) {
      const state = model.transformer.newState(ctx);
      await model.transformer.forward(state, tokens).finally(() => state.dispose());
    },
    async prepareDecode(bos) {
      const state = model.transformer.newState(ctx);
      let next = await model.transformer.forwardArgmax(state, [bos]);
      return async (n) => {
        for (let i = 0; i < n; i++) next = await model.transformer.forwardArgmax(state, [next]);
      };
    },
    generate: (tokens, n, sample) => timeGenerate(model, tokens, n, sample),
    async close() { model.dispose(); },
  };
}

async function measure(engine: Engine, model: string, prompt: number[], decodeTokens: number, iterations: number): Promise<Row> {
  const bench = new Bench({ iterations, time: 0, warmupIterations: 1, warmupTime: 0 });
  let decode: (n: number) => Promise<void> = async () => {};
  bench.add('prefill', () => engine.prefill(prompt));
  bench.add('decode', () => decode(decodeTokens), { beforeEach: async () => { decode = await engine.prepareDecode(prompt[0]!); } });
  const generated: { promptMs: number; decodeMs: number }[] = [];
  if (engine.generate) bench.add('generate', async () => { generated.push(await engine.generate!(prompt, decodeTokens, true)); });
  await bench.run();
  const mean = (i: number) => {
    const r = bench.tasks[i]!.result;
    if (r.state !== 'completed') throw new Error(`${engine.name} ${bench.tasks[i]!.name} failed: ${'error' in r ? String(r.error) : r.state}`);
    return r.latency.mean;
  };
  const g = generated.slice(-iterations); // (without the warm-up)
  const avg = (f: (x: (typeof g)[number]) => number) => g.reduce((a, x) => a + f(x), 0) / g.length;
  if (engine.generate) mean(2); // (throws if it failed)
  return {
    model, weightBytes: 0, engine: engine.name, prefillTokens: prompt.length, prefillTokPerS: (prompt.length * 1000) / mean(0), decodeTokens, decodeTokPerS: (decodeTokens * 1000) / mean(1),
    ...(g.length ? { generatePromptTokPerS: (prompt.length * 1000) / avg((x) => x.promptMs), generateDecodeTokPerS: ((decodeTokens - 1) * 1000) / avg((x) => x.decodeMs) } : {}),
  };
}

/** GPU time per kernel (timestamp queries) for one 128-token prefill and one decode step. */
async function profile(model: Model, name: string, ctx: number): Promise<string[]> {
  const gpu = model.backend as unknown as WebGPUBackend;
  if (!gpu.canProfile) return [`${name}: no timestamp-query on this adapter, no per-kernel times`];
  const out: string[] = [];
  for (const [what, tokens] of [['prefill(128)', [1, ...Array.from({ length: 127 }, (_, i) => 300 + i)]], ['decode step at position 128', [1]]] as const) {
    const state = model.transformer.newState(ctx);
    if (tokens.length === 1) await model.transformer.forward(state, Array.from({ length: 128 }, (_, i) => 300 + i));
    gpu.profile(true);
    await model.transformer.forwardArgmax(state, tokens);
    const times = [...(await gpu.kernelTimes())].sort((a, b) => b[1].ns - a[1].ns);
    gpu.profile(false);
    const total = times.reduce((s, [, t]) => s + t.ns, 0);
    out.push(`${name}, ${what}: GPU time ${(total / 1e6).toFixed(2)} ms: ` + times.map(([k, t]) => `${k} ${(t.ns / 1e6).toFixed(2)} ms (${t.count})`).join(', '));
  }
  return out;
}

/** CPU: wall time per Backend stage over one 128-token prefill (stages run at once on the CPU, so this is exact). */
async function profileCpu(model: Model, name: string, ctx: number, prompt: number[]): Promise<string> {
  const b = model.backend as unknown as Record<string, (...a: unknown[]) => unknown>;
  // (gatedMatmul: gate, up and the activation, which the worker executor runs as one job without calling matmul)
  const stages = ['embed', 'rmsnorm', 'layernorm', 'matmul', 'gatedMatmul', 'rope', 'copyRows', 'attention', 'gated', 'activate', 'add', 'softcap'];
  const ms = new Map<string, number>();
  const saved = stages.map((k) => [k, b[k]!] as const);
  await model.transformer.forward(model.transformer.newState(ctx), prompt); // warm-up
  for (const [k, f] of saved)
    b[k] = (...a: unknown[]) => { const t0 = performance.now(); const r = f.apply(model.backend, a); ms.set(k, (ms.get(k) ?? 0) + performance.now() - t0); return r; };
  const t0 = performance.now();
  try {
    await model.transformer.forward(model.transformer.newState(ctx), prompt);
  } finally {
    for (const [k, f] of saved) b[k] = f;
  }
  const total = performance.now() - t0;
  // gatedMatmul calls matmul and gated, so they are counted there
  return `${name}, prefill(${prompt.length}) on the CPU: ${total.toFixed(0)} ms: ` + [...ms].sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${v.toFixed(0)} ms (${((100 * v) / total).toFixed(0)}%)`).join(', ');
}

/**
 * Layers of the benchmark shapes where the real model has more than fit in a 110M-480M shape (the
 * widths stay real): Llama-3.2-1B, Qwen3-0.6B, Gemma-2B, Gemma-2-2B, Phi-2, Phi-3-mini.
 */
const BENCH_LAYERS: Record<string, number> = { llama3: 4, qwen3: 12, gemma: 2, gemma2: 3, phi2: 3, phi3: 2 };

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean' }, threads: { type: 'string' }, json: { type: 'string' }, device: { type: 'string', default: 'cpu' }, f16: { type: 'boolean' }, quant: { type: 'boolean' }, profile: { type: 'boolean' }, only: { type: 'string' }, families: { type: 'boolean' } } });
  const gpuRun = values.device === 'webgpu';
  const threads = Number(values.threads ?? Math.min(cpus().length, 8));
  const iterations = values.quick ? 2 : 5;
  const stories = (await pull('stories260K', { mirror: process.env.POCKETLM_MIRROR ?? join(SHARED, 'weights') })).path;
  const shaped = join(ROOT, 'bench', 'models', `${SMOLLM2_135M.name}-f32.gguf`);
  if (!existsSync(shaped)) {
    console.error(`generating ${shaped} (random weights, SmolLM2-135M shape)...`);
    mkdirSync(dirname(shaped), { recursive: true });
    makeRandomModel(SMOLLM2_135M, 'f32', shaped, SHARED);
  }
  const models: { name: string; path: string; ctx: number; decode: number; quant?: boolean; noPeer?: string }[] = [
    { name: 'stories260K (F32)', path: stories, ctx: 512, decode: 128 },
    { name: 'SmolLM2-135M shape (F32, random)', path: shaped, ctx: 512, decode: 32 },
  ];
  if (values.f16) {
    const half = join(ROOT, 'bench', 'models', `${SMOLLM2_135M.name}-f16.gguf`);
    if (!existsSync(half)) {
      console.error(`generating ${half} (random weights, SmolLM2-135M shape, F16)...`);
      makeRandomModel(SMOLLM2_135M, 'f16', half, SHARED);
    }
    models.push({ name: 'SmolLM2-135M shape (F16, random)', path: half, ctx: 512, decode: 32 });
  }
  if (values.quant) {
    for (const type of ['q8_0', 'q4_0', 'q4_k_m'] as const) {
      const path = join(ROOT, 'bench', 'models', `${SMOLLM2_135M.name}-${type}.gguf`);
      if (!existsSync(path)) {
        console.error(`quantizing ${path}...`);
        const src = readModelFile(new Uint8Array(readFileSync(shaped)), shaped);
        writeGGUFFile(path, quantizeModel(src, type).input);
      }
      models.push({ name: `SmolLM2-135M shape (${type.toUpperCase()}, random)`, path, ctx: 512, decode: 32, quant: true });
    }
  }
  if (values.families) {
    for (const f of FAMILIES) {
      const path = join(ROOT, 'bench', 'models', `family-${f.id}-q8_0.gguf`);
      const name = `${f.id} (${f.arch}, Q8_0, random)`;
      if (values.only && !name.includes(values.only)) continue;
      if (!existsSync(path)) {
        console.error(`making ${path} (random weights, ${f.seed}, ${BENCH_LAYERS[f.id] ?? 'all'} layers)...`);
        const layers = BENCH_LAYERS[f.id];
        const config = { ...(layers ? { num_hidden_layers: layers, n_layer: layers } : {}), ...f.llamaCpp };
        const folder = hfFolder(f, join(ROOT, 'bench', 'models', 'families-bench'), SHARED, { scale: 'real', vocab: f.tokenizer.startsWith('spm') ? 32000 : 49152, config });
        writeGGUFFile(path, quantizeModel(await readModelPath(folder, (n) => new Uint8Array(n)), 'q8_0').input);
      }
      models.push({ name, path, ctx: 512, decode: 32, noPeer: f.arch === 'opt' ? 'llama.cpp has no OPT' : undefined });
    }
  }
  if (values.only) models.splice(0, models.length, ...models.filter((m) => m.name.includes(values.only!)));
  const rows: Row[] = [];
  const perToken: string[] = [];
  for (const m of models) {
    const prompt = [1, ...Array.from({ length: 127 }, (_, i) => 300 + ((i * 37) % 200))]; // 128 tokens, valid in both vocabularies
    const loaded = await loadModel(m.path, gpuRun ? { device: 'webgpu' } : { device: 'cpu', threads });
    const counters = (loaded.backend as { counters?: { dispatches: number; submits: number } }).counters;
    if (counters) {
      // Dispatches and command buffers per generated token, counted over 4 decode steps.
      const state = loaded.transformer.newState(m.ctx);
      let next = await loaded.transformer.forwardArgmax(state, [1]);
      const before = { ...counters };
      for (let i = 0; i < 4; i++) next = await loaded.transformer.forwardArgmax(state, [next]);
      perToken.push(`${m.name}: ${(counters.dispatches - before.dispatches) / 4} dispatches, ${(counters.submits - before.submits) / 4} command buffer(s) per generated token`);
      if (values.profile) perToken.push(...(await profile(loaded, m.name, m.ctx)));
    }
    if (values.profile && !counters) perToken.push(await profileCpu(loaded, m.name, m.ctx, prompt));
    const ours = pocketlmEngine(loaded, m.ctx);
    console.error(`measuring ${ours.name} on ${m.name}...`);
    const weightBytes = loaded.file.tensorBytes;
    rows.push({ ...(await measure(ours, m.name, prompt, gpuRun ? Math.min(m.decode, 16) : m.decode, gpuRun ? 2 : iterations)), weightBytes });
    await ours.close();
    if (m.quant && !gpuRun) {
      for (const activations of ['int8', 'f32'] as const) {
        const other = pocketlmEngine(await loadModel(m.path, { device: 'cpu', threads, activations }), m.ctx, activations);
        console.error(`measuring ${other.name} on ${m.name}...`);
        rows.push({ ...(await measure(other, m.name, prompt, m.decode, iterations)), weightBytes });
        await other.close();
      }
    }
    if (m.noPeer) { console.error(`llama.cpp left out of ${m.name}: ${m.noPeer}`); continue; }
    const peer = await llamaCppEngine(m.path, threads, m.ctx, gpuRun ? 'vulkan' : false, ROOT);
    if (typeof peer === 'string') { console.error(`llama.cpp left out: ${peer}`); continue; }
    console.error(`measuring ${peer.name} on ${m.name}...`);
    rows.push({ ...(await measure(peer, m.name, prompt, m.decode, iterations)), weightBytes: loaded.file.tensorBytes });
    await peer.close();
  }

  const fmt = (x: number) => x.toFixed(1);
  const lines = [
    `CPU: ${cpus()[0]?.model ?? 'unknown'} (${cpus().length} cores), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}, ${iterations} timed iterations each (tinybench mean)`,
    '',
    'Forward passes alone (prefill: one 128-token forward; decode: greedy steps), then the same through generate() with the default sampling (a 128-token prompt, then the decode count).',
    '',
    '| model | engine | prefill tok/s (128) | decode tok/s | decode vs llama.cpp | prefill vs llama.cpp | weights read in decode, GB/s | generate(): prompt tok/s | generate(): decode tok/s | generate() decode vs llama.cpp |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const peer = rows.find((p) => p.model === r.model && p.engine.startsWith('llama.cpp'));
    const ratio = (a: number, b?: number) => (b ? `${(a / b).toFixed(2)}x` : '-');
    const gen = r.generateDecodeTokPerS ? `${fmt(r.generatePromptTokPerS!)} | ${fmt(r.generateDecodeTokPerS)} | ${ratio(r.generateDecodeTokPerS, peer?.generateDecodeTokPerS)}` : '- | - | -';
    lines.push(`| ${r.model} | ${r.engine} | ${fmt(r.prefillTokPerS)} | ${fmt(r.decodeTokPerS)} (${r.decodeTokens}) | ${ratio(r.decodeTokPerS, peer?.decodeTokPerS)} | ${ratio(r.prefillTokPerS, peer?.prefillTokPerS)} | ${((r.weightBytes * r.decodeTokPerS) / 1e9).toFixed(2)} | ${gen} |`);
  }
  if (perToken.length) lines.push('', ...perToken.map((l) => `pocketlm ${l}`));
  console.log(lines.join('\n'));
  if (values.json) writeFileSync(values.json, JSON.stringify({ date: new Date().toISOString(), cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, rows }, null, 2));
  process.exit(0); // llama.cpp's native threads can keep the process alive
}

await main();
