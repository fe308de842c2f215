// Encoder speed as users run it: sentences per second through Model.embed() (tokenize, the packed
// bidirectional pass, mean pooling, normalization) on the MiniLM-L6 shape (all-MiniLM-L6-v2's real
// widths and its real 30,522-token WordPiece tokenizer, random weights), one text per call and 32
// texts per call, each text 128 tokens. Beside llama.cpp's BERT embeddings (npm node-llama-cpp, the
// same GGUF file, the same tokens, the same thread count), measured in the same run.
//
//   npm run build && node dist/bench/encoders.js [--threads 2] [--texts 32] [--tokens 128] [--device cpu|webgpu] [--json OUT.json]
//
// node-llama-cpp's embedding context embeds one text per call (getEmbeddingFor); its "32 per call"
// row sends the 32 calls at once and lets the library queue them, which is what its users get.

import { cpus } from 'node:os';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Bench } from 'tinybench';
import { loadModel } from '../src/engine.js';
import { convertFolder } from '../src/load/node-io.js';
import { ENCODERS, hfFolder } from './families.js';
import { findPeer } from '../src/cli/peers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHARED = resolve(process.env.POCKETLM_SHARED ?? join(ROOT, '..', 'shared'));

interface Row { engine: string; perCall: number; sentencesPerS: number; msPerCall: number }

async function time(name: string, iterations: number, fn: () => Promise<unknown>): Promise<number> {
  const bench = new Bench({ iterations, time: 0, warmupIterations: 1, warmupTime: 0 });
  bench.add(name, fn);
  await bench.run();
  const r = bench.tasks[0]!.result;
  if (r.state !== 'completed') throw new Error(`${name} failed: ${'error' in r ? String(r.error) : r.state}`);
  return r.latency.mean;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { threads: { type: 'string' }, texts: { type: 'string', default: '32' }, tokens: { type: 'string', default: '128' }, device: { type: 'string', default: 'cpu' }, json: { type: 'string' } } });
  const threads = Number(values.threads ?? Math.min(cpus().length, 8));
  const nTexts = Number(values.texts), nTokens = Number(values.tokens);
  const device = values.device as 'cpu' | 'webgpu';
  const dir = hfFolder(ENCODERS.find((f) => f.id === 'minilm')!, join(ROOT, 'bench', 'models', 'encoders-real'), SHARED, { scale: 'real', vocab: 30522 });
  const gguf = join(ROOT, 'bench', 'models', 'minilm-l6-shape-f32.gguf');
  mkdirSync(dirname(gguf), { recursive: true });
  if (!existsSync(gguf)) await convertFolder(dir, gguf);
  const model = await loadModel(gguf, { device, threads });
  // Texts of exactly nTokens tokens ([CLS] and [SEP] included): words from a fixed list, a different mix per text.
  const words = 'the of and to in is was for on that with as by at from it his an were are which this be or has had first one their its new after who they two her she been other when time during there into school more may years over only year most would world city some where between later three state such then national used made known under many university united while part season team these american than film second born south became states war through being including both until north best'.split(' ');
  const texts = Array.from({ length: nTexts }, (_, i) => {
    const out: string[] = [];
    let k = i * 7;
    while (model.encode(out.join(' ')).length < nTokens) out.push(words[(k = (k * 31 + 17) % words.length)]!);
    while (model.encode(out.join(' ')).length > nTokens) out.pop();
    return out.join(' ');
  });
  const tokens = texts.map((t) => model.encode(t));
  console.error(`${texts.length} texts of ${Math.min(...tokens.map((t) => t.length))}-${Math.max(...tokens.map((t) => t.length))} tokens; pocketlm ${model.backend.name}...`);
  const rows: Row[] = [];
  const iterations = 3;
  const one = await time('pocketlm, 1 per call', iterations, async () => { for (const t of texts) await model.embed(t); });
  rows.push({ engine: `pocketlm ${model.backend.name}`, perCall: 1, msPerCall: one / nTexts, sentencesPerS: (nTexts * 1000) / one });
  const all = await time('pocketlm, all per call', iterations, () => model.embed(texts));
  rows.push({ engine: `pocketlm ${model.backend.name}`, perCall: nTexts, msPerCall: all, sentencesPerS: (nTexts * 1000) / all });
  model.dispose();

  const entry = findPeer(ROOT, 'node-llama-cpp', join('dist', 'index.js'));
  if (entry) {
    console.error('llama.cpp...');
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const nlc: any = await import(entry);
    const llama = await nlc.getLlama({ build: 'never', gpu: false, logLevel: 'error' });
    const m = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 });
    const ctx = await m.createEmbeddingContext({ contextSize: 512, batchSize: 512, threads });
    const name = `llama.cpp cpu (${threads} threads)`;
    const lone = await time('llama.cpp, 1 per call', iterations, async () => { for (const t of tokens) await ctx.getEmbeddingFor(t); });
    rows.push({ engine: name, perCall: 1, msPerCall: lone / nTexts, sentencesPerS: (nTexts * 1000) / lone });
    const lall = await time('llama.cpp, all at once', iterations, () => Promise.all(tokens.map((t) => ctx.getEmbeddingFor(t))));
    rows.push({ engine: name, perCall: nTexts, msPerCall: lall, sentencesPerS: (nTexts * 1000) / lall });
    await ctx.dispose();
    await m.dispose();
    await llama.dispose();
  } else console.error('node-llama-cpp is not installed (cd bench/peers && npm install --ignore-scripts): llama.cpp left out');

  const peer = (perCall: number) => rows.find((r) => r.engine.startsWith('llama.cpp') && r.perCall === perCall);
  const lines = [
    `${cpus()[0]?.model.split(' ').slice(0, 2).join(' ')}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}; MiniLM-L6 shape (F32, 22.7M parameters), ${nTexts} texts of ${nTokens} tokens, mean pooling`,
    '',
    '| engine | texts per call | sentences/s | ms per call | vs llama.cpp |',
    '|---|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.engine} | ${r.perCall} | ${r.sentencesPerS.toFixed(1)} | ${r.msPerCall.toFixed(1)} | ${r.engine.startsWith('pocketlm') && peer(r.perCall) ? (r.sentencesPerS / peer(r.perCall)!.sentencesPerS).toFixed(2) + 'x' : '-'} |`),
  ];
  console.log(lines.join('\n'));
  if (values.json) writeFileSync(values.json, JSON.stringify({ threads, texts: nTexts, tokens: nTokens, rows }, null, 1));
}

await main();
