// Load test of `pocketlm serve` (loopback only, bounded in count and time): N streaming completions at
// concurrency 1, 8 and 32 against a model, each response checked complete and equal to the text the same
// request gets from a sequential generate(); aggregate generated tokens per second and time to first
// token (p50, p99). Beside it, llama.cpp (node-llama-cpp, the same file, a context with as many sequences
// as the concurrency, so that it batches them as llama-server does) on the same prompts.
//
//   npm run build && node dist/bench/serve.js [--model PATH] [--requests 32] [--max-tokens 64]
//        [--concurrency 1,8,32] [--threads 2] [--activations int16|int8|f32] [--json OUT.json]
// Default model: the SmolLM2-135M-shaped Q8_0 file that bench/run.ts makes (bench/models/).

import { existsSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadModel } from '../src/engine.js';
import { serve } from '../src/server/http.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Run { engine: string; concurrency: number; requests: number; tokens: number; seconds: number; tokensPerSecond: number; ttftP50: number; ttftP99: number; mismatches: number }

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

/** Run `requests` jobs `concurrency` at a time; each returns (ttft ms, tokens). */
async function pool<T>(requests: number, concurrency: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(requests);
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < requests) {
      const i = next++;
      out[i] = await job(i);
    }
  }));
  return out;
}

/** One streamed completion: its text, time to first text and completion tokens (from the usage chunk). */
async function stream(url: string, body: object): Promise<{ text: string; ttft: number; tokens: number; done: boolean }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }) });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let buffer = '';
  let text = '';
  let ttft = NaN;
  let tokens = 0;
  let done = false;
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, cut).replace(/^data: /, '');
      buffer = buffer.slice(cut + 2);
      if (event === '[DONE]') { done = true; continue; }
      const d = JSON.parse(event) as { choices: { text: string }[]; usage?: { completion_tokens: number }; error?: unknown };
      if (d.error) throw new Error(JSON.stringify(d.error));
      const piece = d.choices[0]?.text ?? '';
      if (piece && Number.isNaN(ttft)) ttft = performance.now() - t0;
      text += piece;
      if (d.usage) tokens = d.usage.completion_tokens;
    }
  }
  return { text, ttft, tokens, done };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { model: { type: 'string' }, requests: { type: 'string', default: '32' }, 'max-tokens': { type: 'string', default: '64' }, concurrency: { type: 'string', default: '1,8,32' }, threads: { type: 'string', default: '2' }, activations: { type: 'string' }, json: { type: 'string' } } });
  const activations = (values.activations ?? 'int16') as 'int16' | 'int8' | 'f32';
  const path = values.model ?? join(ROOT, 'bench', 'models', 'smollm2-135m-shape-q8_0.gguf');
  if (!existsSync(path)) throw new Error(`${path} not found: run node dist/bench/run.js --quant once to make it, or pass --model`);
  const requests = Number(values.requests);
  const maxTokens = Number(values['max-tokens']);
  const threads = Number(values.threads);
  const levels = values.concurrency!.split(',').map(Number);
  // Distinct prompts, sampled with a seed each: batching must not change any of them.
  const prompts = Array.from({ length: requests }, (_, i) => `${['Once upon a time', 'The little dog', 'In a big city', 'Tom and Lily'][i % 4]} number ${i} said`);
  const body = (i: number) => ({ prompt: prompts[i], max_tokens: maxTokens, temperature: 0.8, seed: i + 1, ignore_eos: true });

  console.error(`reference texts: ${requests} sequential generate() calls...`);
  const model = await loadModel(path, { device: 'cpu', threads, activations });
  const reference: string[] = [];
  for (let i = 0; i < requests; i++) reference.push(await model.generate(prompts[i]!, { maxTokens, temperature: 0.8, seed: i + 1, contextLength: 512, ignoreEos: true }).text());
  model.dispose();

  const runs: Run[] = [];
  for (const c of levels) {
    const srv = await serve({ model: path, port: 0, parallel: Math.min(c, 32), queue: requests, contextLength: 512, device: 'cpu', threads, activations, log: () => {} });
    while (!srv.registry.ready) await new Promise((r) => setTimeout(r, 20));
    const t0 = performance.now();
    const results = await pool(requests, c, (i) => stream(srv.url, body(i)));
    const seconds = (performance.now() - t0) / 1000;
    await srv.shutdown(0);
    const tokens = results.reduce((n, r) => n + r.tokens, 0);
    const mismatches = results.filter((r, i) => !r.done || r.text !== reference[i]).length;
    const ttfts = results.map((r) => r.ttft);
    runs.push({ engine: `pocketlm serve (cpu, ${threads} threads, ${activations} activations, --parallel ${Math.min(c, 32)})`, concurrency: c, requests, tokens, seconds, tokensPerSecond: tokens / seconds, ttftP50: percentile(ttfts, 50), ttftP99: percentile(ttfts, 99), mismatches });
    console.error(`pocketlm c=${c}: ${(tokens / seconds).toFixed(1)} tok/s, ttft p50 ${percentile(ttfts, 50).toFixed(0)} ms, ${mismatches} mismatches`);
  }

  // llama.cpp: one context with c sequences; node-llama-cpp batches their evaluations together.
  const entry = join(ROOT, 'bench', 'peers', 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
  if (existsSync(entry)) {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const nlc: any = await import(pathToFileURL(entry).href);
    const llama = await nlc.getLlama({ build: 'never', gpu: false, logLevel: 'error' });
    const lm = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
    for (const c of levels) {
      const context = await lm.createContext({ contextSize: 512 * Math.min(c, 32), sequences: Math.min(c, 32), threads, batchSize: 512 });
      const free = Array.from({ length: Math.min(c, 32) }, () => context.getSequence());
      const t0 = performance.now();
      const results = await pool(requests, c, async (i) => {
        const seq = free.pop()!;
        const completion = new nlc.LlamaCompletion({ contextSequence: seq });
        const s0 = performance.now();
        let ttft = NaN;
        let tokens = 0;
        await completion.generateCompletion(prompts[i], { maxTokens, temperature: 0.8, seed: i + 1, customStopTriggers: [], onToken: (t: number[]) => { if (Number.isNaN(ttft)) ttft = performance.now() - s0; tokens += t.length; } });
        await seq.clearHistory();
        completion.dispose({ disposeSequence: false });
        free.push(seq);
        return { ttft, tokens };
      });
      const seconds = (performance.now() - t0) / 1000;
      await context.dispose();
      const tokens = results.reduce((n, r) => n + r.tokens, 0);
      const ttfts = results.map((r) => r.ttft);
      runs.push({ engine: `llama.cpp cpu (node-llama-cpp, ${threads} threads, ${Math.min(c, 32)} sequences)`, concurrency: c, requests, tokens, seconds, tokensPerSecond: tokens / seconds, ttftP50: percentile(ttfts, 50), ttftP99: percentile(ttfts, 99), mismatches: 0 });
      console.error(`llama.cpp c=${c}: ${(tokens / seconds).toFixed(1)} tok/s`);
    }
    await lm.dispose();
    await llama.dispose();
  } else console.error('node-llama-cpp is not installed (cd bench/peers && npm install --ignore-scripts): pocketlm only');

  const single = (engine: string) => runs.find((r) => r.engine.startsWith(engine) && r.concurrency === 1)?.tokensPerSecond;
  const lines = [
    `${cpus()[0]?.model ?? 'CPU'}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}; ${path.split('/').pop()}; ${requests} streamed completions of ${maxTokens} tokens each (seeded sampling), loopback`,
    '',
    '| engine | concurrency | tokens/s (all streams) | vs 1 stream | time to first token p50 / p99 (ms) | responses not matching a sequential run |',
    '|---|---:|---:|---:|---:|---:|',
    ...runs.map((r) => {
      const one = single(r.engine.split(' (')[0]!);
      return `| ${r.engine} | ${r.concurrency} | ${r.tokensPerSecond.toFixed(1)} | ${one ? (r.tokensPerSecond / one).toFixed(2) + 'x' : '-'} | ${r.ttftP50.toFixed(0)} / ${r.ttftP99.toFixed(0)} | ${r.engine.startsWith('pocketlm') ? `${r.mismatches} of ${r.requests}` : 'n/a'} |`;
    }),
  ];
  console.log(lines.join('\n'));
  if (values.json) writeFileSync(values.json, JSON.stringify({ date: new Date().toISOString(), model: path, runs }, null, 2));
}

await main();
