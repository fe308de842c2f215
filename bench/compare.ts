// The speed ratios users see, in one command: pocketlm's generate() (what the CLI and the server run)
// beside llama.cpp (npm node-llama-cpp, same GGUF file, same threads) on the 135M SmolLM2 shape as F32,
// Q8_0, Q4_0 and Q4_K_M, at 128- and 512-token prompts.
//
//   npm run bench:compare -- [--threads N] [--rounds R] [--decode N] [--prompts 128,512]
//                            [--only q8_0,f32 | --model FILE.gguf ...] [--device cpu|webgpu] [--json OUT.json] [--fresh]
// --model (repeatable): these GGUF files instead of the 135M shapes (any architecture both engines run).
// --fresh: every run in a process of its own, the model loaded and run once, as the CLI does (both
// engines; default inputs only): the first run of a process, before the JavaScript engine has compiled
// the hot paths and while it compiles them on the cores the threads compute on. Without it, runs follow
// a warm-up run on a loaded model.
//
// Rounds alternate the engines (pocketlm, llama.cpp, pocketlm, ...) on a loaded model, so a busy
// moment of a shared machine hits both; each figure is the median over the rounds, and each ratio is
// the median of the rounds' ratios with their range. Each engine generates `decode` tokens after the
// prompt: prompt tok/s = prompt tokens / time to the first token, decode tok/s = (decode - 1) / the
// rest. pocketlm runs greedy (as llama.cpp) and with its default sampling (temperature 0.8, top-k 40,
// top-p 0.95, min-p 0.05; llama.cpp given the same), and on quantized files on the CPU, greedy, with
// 8-bit activations (loadModel's activations 'int8': the arithmetic llama.cpp's CPU backend uses) and
// with f32 ones (the exact product) beside the default 16-bit inputs.
// On --device webgpu, pocketlm's WebGPU backend runs beside llama.cpp's Vulkan backend on the first
// Vulkan device (GGML_VK_VISIBLE_DEVICES=0: on a machine without a GPU both use Mesa's lavapipe).
//
// Needs `npm run build` and bench/peers (cd bench/peers && npm install --ignore-scripts).

import { cpus } from 'node:os';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadModel, type Model } from '../src/engine.js';
import { llamaCppEngine, timeGenerate, type Engine } from '../src/cli/peers.js';
import { benchModelFile } from './make-model.js';
import { relaxedSimd } from '../src/backend/matmul-wasm.js';
import { GGMLType } from '../src/base/tensor.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHARED = resolve(process.env.POCKETLM_SHARED ?? join(ROOT, '..', 'shared'));

interface Timing { promptMs: number; decodeMs: number }
interface Runner { name: string; run(prompt: number[], n: number): Promise<Timing>; close(): Promise<void> }

/** pocketlm through generate(), greedy or with the default sampling (seeded). */
function pocketlm(model: Model, name: string, sample: boolean, owner = true): Runner {
  return {
    name,
    run: (prompt, n) => timeGenerate(model, prompt, n, sample),
    async close() { if (owner) model.dispose(); },
  };
}

function peer(engine: Engine, sample: boolean, close: boolean): Runner {
  return {
    name: `${engine.name}${sample ? ', sampling' : ''}`,
    run: (prompt, n) => engine.generate!(prompt, n, sample),
    close: async () => { if (close) await engine.close(); },
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** --fresh's runner: `engine` ('pocketlm' or 'llama.cpp') in a child process of its own (this script with --child), one run. */
function fresh(engine: string, path: string, gpu: boolean, threads: number, sample: boolean): Runner {
  return {
    name: `${engine} ${gpu ? 'webgpu' : `cpu (${threads} threads)`}, first run in a fresh process${sample ? ', sampling' : ''}`,
    async run(prompt, n) {
      const args = ['--child', engine, '--model', path, '--device', gpu ? 'webgpu' : 'cpu', '--threads', String(threads), '--ids', prompt.join(','), '--decode', String(n), ...(sample ? ['--sample'] : [])];
      const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      return JSON.parse(out.trim().split('\n').pop()!) as Timing;
    },
    async close() {},
  };
}

/** A --fresh child: load `path` with one engine, run the prompt once, print its timing as JSON. */
async function child(engine: string, path: string, gpu: boolean, threads: number, prompt: number[], n: number, sample: boolean): Promise<void> {
  if (engine === 'pocketlm') {
    const model = await loadModel(path, gpu ? { device: 'webgpu' } : { device: 'cpu', threads });
    console.log(JSON.stringify(await timeGenerate(model, prompt, n, sample)));
    return;
  }
  const llama = await llamaCppEngine(path, threads, 1024, gpu ? 'vulkan' : false, ROOT);
  if (typeof llama === 'string') throw new Error(llama);
  console.log(JSON.stringify(await llama.generate!(prompt, n, sample)));
}

/** The prompt of `length` tokens: ids 300-4299 as on the 135M shapes, folded into a smaller vocabulary. */
const promptIds = (length: number, vocab: number) => [1, ...Array.from({ length: length - 1 }, (_, i) => 300 + ((i * 37) % Math.min(4000, vocab - 300)))];

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { threads: { type: 'string' }, rounds: { type: 'string' }, decode: { type: 'string' }, prompts: { type: 'string' }, only: { type: 'string' }, model: { type: 'string', multiple: true }, device: { type: 'string', default: 'cpu' }, json: { type: 'string' }, fresh: { type: 'boolean' }, child: { type: 'string' }, ids: { type: 'string' }, sample: { type: 'boolean' } } });
  const gpu = values.device === 'webgpu';
  const threads = Number(values.threads ?? Math.min(cpus().length, 8));
  const rounds = Number(values.rounds ?? (gpu ? 2 : 3));
  const decode = Number(values.decode ?? (gpu ? 16 : 32));
  const prompts = (values.prompts ?? (gpu ? '128' : '128,512')).split(',').map(Number);
  if (values.child) {
    // (this script's own --fresh child runs; by hand, give all of these)
    if (!['pocketlm', 'llama.cpp'].includes(values.child) || values.model?.length !== 1 || !values.ids) throw new Error('--child pocketlm|llama.cpp needs one --model FILE and --ids 1,2,3 (the prompt\'s token ids)');
    return child(values.child, values.model[0]!, gpu, threads, values.ids.split(',').map(Number), decode, !!values.sample);
  }
  if (values.model && values.only) throw new Error('give --model or --only, not both');
  // (the 135M shapes by type, made on first use; or the files given)
  const files = values.model
    ? values.model.map((path) => ({ path: resolve(path), label: basename(path) }))
    : (values.only ?? 'f32,q8_0,q4_0,q4_k_m').split(',').map((type) => ({ path: benchModelFile(type, ROOT, SHARED), label: `SmolLM2-135M shape ${type.toUpperCase()}` }));
  const results: { model: string; engine: string; prompt: number; promptTokPerS: number; decodeTokPerS: number; promptRatio?: [number, number, number]; decodeRatio?: [number, number, number] }[] = [];
  for (const { path, label } of files) {
    const device = gpu ? ({ device: 'webgpu' } as const) : ({ device: 'cpu', threads } as const);
    const main = await loadModel(path, device);
    const quantized = [...main.file.tensors.values()].some((t) => t.type !== GGMLType.F32 && t.type !== GGMLType.F16 && t.type !== GGMLType.BF16);
    const runners: Runner[] = values.fresh
      ? [false, true].flatMap((sample) => ['pocketlm', 'llama.cpp'].map((engine) => fresh(engine, path, gpu, threads, sample)))
      : [pocketlm(main, `pocketlm ${main.backend.name}`, false), pocketlm(main, `pocketlm ${main.backend.name}, sampling`, true, false)];
    // (quantized files on the CPU: the default 16-bit inputs above, then 8-bit and f32 inputs)
    if (quantized && !gpu && !values.fresh)
      for (const activations of ['int8', 'f32'] as const)
        runners.push(pocketlm(await loadModel(path, { device: 'cpu', threads, activations }), `pocketlm ${main.backend.name}, ${activations} activations`, false));
    const llama = values.fresh ? undefined : await llamaCppEngine(path, threads, 1024, gpu ? 'vulkan' : false, ROOT);
    if (typeof llama === 'string') console.error(`llama.cpp left out: ${llama}`);
    else if (llama) runners.push(peer(llama, false, false), peer(llama, true, true));
    for (const prompt of prompts) {
      const ids = promptIds(prompt, main.config.vocabSize);
      const times = runners.map(() => [] as Timing[]);
      // (a warm-up at this prompt length: llama.cpp's Vulkan backend compiles per batch shape; --fresh runs have none)
      if (!values.fresh) for (const r of runners) await r.run(ids, 2);
      for (let round = 0; round < rounds; round++)
        for (const [i, r] of runners.entries()) {
          console.error(`${label}, ${prompt}-token prompt, round ${round + 1}/${rounds}: ${r.name}`);
          times[i]!.push(await r.run(ids, decode));
        }
      const rate = (t: Timing) => ({ p: (prompt * 1000) / t.promptMs, d: ((decode - 1) * 1000) / t.decodeMs });
      const peerIndex = (r: Runner) => runners.findIndex((p) => p.name.startsWith('llama.cpp') && p.name.endsWith(', sampling') === r.name.endsWith(', sampling'));
      runners.forEach((r, i) => {
        const rates = times[i]!.map(rate);
        const row: (typeof results)[number] = { model: label, engine: r.name, prompt, promptTokPerS: median(rates.map((x) => x.p)), decodeTokPerS: median(rates.map((x) => x.d)) };
        const pi = peerIndex(r);
        if (pi >= 0 && pi !== i) {
          const peerRates = times[pi]!.map(rate);
          const ratios = (k: 'p' | 'd') => rates.map((x, j) => x[k] / peerRates[j]![k]);
          const summary = (xs: number[]): [number, number, number] => [median(xs), Math.min(...xs), Math.max(...xs)];
          row.promptRatio = summary(ratios('p'));
          row.decodeRatio = summary(ratios('d'));
        }
        results.push(row);
      });
    }
    for (const r of runners) await r.close();
  }
  const f = (x: number) => x.toFixed(1);
  const ratio = (r?: [number, number, number]) => (r ? `**${r[0].toFixed(2)}x** (${r[1].toFixed(2)}-${r[2].toFixed(2)})` : '-');
  const lines = [
    `${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} cores), ${threads} threads, Node ${process.version}, ${gpu ? 'WebGPU vs llama.cpp Vulkan' : `CPU, relaxed SIMD: FMA ${relaxedSimd().madd ? 'on' : 'off'}, 8-bit dot ${relaxedSimd().dot ? 'on' : 'off'}`}, ${new Date().toISOString().slice(0, 10)}; median of ${rounds} alternating rounds, ${decode} tokens generated per run${values.fresh ? ', each run in a fresh process' : ''}`,
    '',
    '| model | engine | prompt | prompt tok/s | decode tok/s | prompt vs llama.cpp | decode vs llama.cpp |',
    '|---|---|---:|---:|---:|---:|---:|',
    ...results.map((r) => `| ${r.model} | ${r.engine} | ${r.prompt} | ${f(r.promptTokPerS)} | ${f(r.decodeTokPerS)} | ${ratio(r.promptRatio)} | ${ratio(r.decodeRatio)} |`),
  ];
  console.log(lines.join('\n'));
  if (values.json) writeFileSync(values.json, JSON.stringify({ date: new Date().toISOString(), cpu: cpus()[0]?.model, node: process.version, threads, rounds, decode, results }, null, 2));
  process.exit(0); // llama.cpp's native threads can keep the process alive
}

await main();
