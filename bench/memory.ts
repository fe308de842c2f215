// Resident memory of a loaded model against its file size: `node --expose-gc dist/bench/memory.js MODEL [--threads N] [--ctx N] [--warm SMALL_MODEL]`.
// Two figures: cold (the process's RSS growth from before the first loadModel, so it includes loading
// pocketlm's code, compiling its WebAssembly and starting worker threads) and, with --warm, the growth
// for this model alone after a small model of the same format has run and been disposed (the model's
// own memory: its weights, the tokenizer, the KV cache of --ctx tokens, activations and worker heaps).

import { statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadModel } from '../src/engine.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { threads: { type: 'string' }, ctx: { type: 'string', default: '256' }, warm: { type: 'string' } } });
const path = positionals[0];
const gc = (globalThis as { gc?: () => void }).gc;
if (!path || !gc) {
  console.error('usage: node --expose-gc dist/bench/memory.js MODEL [--threads N] [--ctx N] [--warm SMALL_MODEL]');
  process.exit(2);
}
const threads = values.threads ? Number(values.threads) : undefined;
const settle = async () => {
  gc();
  await new Promise((r) => setTimeout(r, 200));
  gc();
};
const run = async (p: string, ctx: number) => {
  const m = await loadModel(p, { device: 'cpu', threads });
  await m.transformer.forwardArgmax(m.transformer.newState(ctx), [1, 2, 3]);
  return m;
};
if (values.warm) (await run(values.warm, 16)).dispose();
await settle();
const before = process.memoryUsage().rss;
const model = await run(path, Number(values.ctx));
await settle();
const grown = process.memoryUsage().rss - before;
const size = statSync(path).size;
console.log(`${path}: file ${(size / 1e6).toFixed(1)} MB; resident memory +${(grown / 1e6).toFixed(1)} MB = ${(grown / size).toFixed(2)}x the file (${values.warm ? 'warm' : 'cold'}, ${model.backend.name}, ${values.ctx}-token KV cache)`);
model.dispose();
