// The CPU in a browser, in one command: pocketlm's generate() on its WebAssembly executor beside
// wllama (llama.cpp compiled to WebAssembly, npm @wllama/wllama: llama.cpp as a browser user gets it)
// on the same GGUF files, in the same headless Chromium, on the 135M SmolLM2 shape.
//
//   npm run bench:browser -- [--threads 1,2] [--rounds R] [--decode N] [--prompt N] [--only q8_0,q4_0]
//                            [--model FILE.gguf] [--chromium PATH] [--json OUT.json]
//
// --model: that GGUF file (under this folder, so that the page can fetch it) instead of the 135M shapes.
//
// The page (bench/browser.html) is served cross-origin isolated, so that both engines can use Web
// Workers over shared memory for more than one thread. One page per engine and thread count holds its
// model; rounds alternate the pages, so a busy moment of a shared machine hits every one. Figures as
// bench/compare.ts counts them: prompt tok/s = prompt tokens / time to the first generated token,
// decode tok/s = (decode - 1) / the rest; greedy; each figure the median over the rounds, each ratio
// the median of the rounds' ratios (pocketlm / wllama at the same thread count) with their range.
// pocketlm runs with its default inputs (16-bit activations on quantized files) and, on quantized files, with 8-bit activations.
//
// Needs `npm run build`, Chromium (Debian's /usr/bin/chromium; never downloaded) and bench/peers
// (cd bench/peers && npm install --ignore-scripts).

import { cpus } from 'node:os';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchModelFile } from './make-model.js';
import { readModelFile, type ModelFile } from '../src/format/model-file.js';
import { vocabFromMetadata } from '../src/format/vocab.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { GGMLType } from '../src/base/tensor.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHARED = resolve(process.env.POCKETLM_SHARED ?? join(ROOT, '..', 'shared'));
const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.wgsl': 'text/plain' };

interface Timing { promptTokens: number; promptMs: number; decodeMs: number }
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Serves the repository (dist/, bench/) and the peers' packages under /peers/, cross-origin isolated. */
function serve(): Promise<{ base: string; close: () => void }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url!, 'http://x').pathname));
    const file = path.startsWith('/peers/') ? join(ROOT, 'bench', 'peers', 'node_modules', path.slice('/peers/'.length)) : join(ROOT, path);
    if (!file.startsWith(ROOT) || !existsSync(file) || !statSync(file).isFile()) return void res.writeHead(404).end();
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
    }).end(readFileSync(file));
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({ base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() })));
}

/** English words up to `tokens` tokens (BOS included) by the model's own tokenizer. */
function promptText(file: ModelFile, tokens: number): string {
  const tokenizer = new Tokenizer(vocabFromMetadata(file));
  const words = 'the small engine reads each layer of the model as its math and prints what it finds along the way while the user watches'.split(' ');
  let text = '';
  for (let i = 0; ; i++) {
    const next = text + (i ? ' ' : '') + words[i % words.length];
    if (tokenizer.encode(next).length > tokens) return text;
    text = next;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { threads: { type: 'string', default: '1,2' }, rounds: { type: 'string', default: '3' }, decode: { type: 'string', default: '32' }, prompt: { type: 'string', default: '128' }, only: { type: 'string', default: 'f32,q8_0,q4_0' }, model: { type: 'string' }, chromium: { type: 'string' }, json: { type: 'string' } } });
  const threadCounts = values.threads!.split(',').map(Number);
  const [rounds, decode, promptLength] = [Number(values.rounds), Number(values.decode), Number(values.prompt)];
  const chromium = values.chromium ?? process.env.POCKETLM_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(chromium)) throw new Error(`${chromium} not found: install Debian's chromium (apt-get install chromium) or give --chromium PATH`);
  if (!existsSync(join(ROOT, 'bench', 'peers', 'node_modules', '@wllama', 'wllama', 'esm', 'index.js'))) throw new Error('@wllama/wllama is not installed: cd bench/peers && npm install --ignore-scripts');
  if (!existsSync(join(ROOT, 'dist', 'src', 'engine.js'))) throw new Error('dist/ is missing: npm run build');
  const { chromium: launcher } = await import('playwright-core');
  const browser = await launcher.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  const { base, close } = await serve();
  // (a text: wllama takes no token ids; each engine counts its own tokens of it, BOS included)
  const files = values.model ? [{ file: resolve(values.model), label: basename(values.model) }] : values.only!.split(',').map((type) => ({ file: benchModelFile(type, ROOT, SHARED), label: `SmolLM2-135M shape ${type.toUpperCase()}` }));
  for (const { file } of files) if (!file.startsWith(ROOT + sep) || !existsSync(file)) throw new Error(`${file}: not a file under ${ROOT} (the page fetches models from this folder)`);
  // Each file read once here, for the prompt's tokens and whether it holds quantized matrices (8-bit
  // activations only change quantized products); its bytes are not kept through the rounds.
  let prompt = '';
  const quantized = files.map(({ file }, i) => {
    const parsed = readModelFile(new Uint8Array(readFileSync(file)), file);
    if (i === 0) prompt = promptText(parsed, promptLength);
    return [...parsed.tensors.values()].some((t) => t.type !== GGMLType.F32 && t.type !== GGMLType.F16);
  });
  const rows: { model: string; engine: string; threads: number; promptTokPerS: number; decodeTokPerS: number; promptRatio?: [number, number, number]; decodeRatio?: [number, number, number] }[] = [];
  let version = '';
  try {
    for (const [i, { file, label }] of files.entries()) {
      const model = '/' + file.slice(ROOT.length + 1).split(sep).join('/');
      const configs = threadCounts.flatMap((threads) => [
        { engine: 'pocketlm', threads, int8: false },
        ...(quantized[i] ? [{ engine: 'pocketlm', threads, int8: true }] : []),
        { engine: 'wllama', threads, int8: false },
      ]);
      const pages = [];
      for (const c of configs) {
        const page = await browser.newPage();
        page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.error(`  [${c.engine} ${c.threads}] ${m.text().slice(0, 300)}`); });
        await page.goto(`${base}/bench/browser.html?engine=${c.engine}&threads=${c.threads}&model=${encodeURIComponent(model)}${c.int8 ? '&int8=1' : ''}`);
        await page.waitForFunction(() => (window as unknown as { bench?: unknown; benchError?: string }).bench || (window as unknown as { benchError?: string }).benchError, undefined, { timeout: 300_000 });
        const error = await page.evaluate(() => (window as unknown as { benchError?: string }).benchError);
        if (error) throw new Error(`${c.engine} (${c.threads} threads) did not load ${model}: ${error}`);
        const name = await page.evaluate(() => (window as unknown as { bench: { name: string } }).bench.name);
        version ||= await page.evaluate(() => navigator.userAgent);
        await page.evaluate((p) => (window as unknown as { bench: { run(text: string, n: number): Promise<Timing> } }).bench.run(p, 2), prompt); // warm-up
        pages.push({ ...c, page, name, times: [] as Timing[] });
      }
      for (let round = 0; round < rounds; round++)
        for (const p of pages) {
          console.error(`${label}, ${promptLength}-token prompt, round ${round + 1}/${rounds}: ${p.name}`);
          p.times.push(await p.page.evaluate(([text, n]) => (window as unknown as { bench: { run(text: string, n: number): Promise<Timing> } }).bench.run(text as string, n as number), [prompt, decode] as const));
        }
      const rate = (t: Timing) => ({ p: (t.promptTokens * 1000) / t.promptMs, d: ((decode - 1) * 1000) / t.decodeMs });
      for (const p of pages) {
        const rates = p.times.map(rate);
        const row: (typeof rows)[number] = { model: label, engine: p.name, threads: p.threads, promptTokPerS: median(rates.map((x) => x.p)), decodeTokPerS: median(rates.map((x) => x.d)) };
        const peer = pages.find((q) => q.engine === 'wllama' && q.threads === p.threads);
        if (peer && peer !== p) {
          const peerRates = peer.times.map(rate);
          const summary = (k: 'p' | 'd'): [number, number, number] => {
            const xs = rates.map((x, j) => x[k] / peerRates[j]![k]);
            return [median(xs), Math.min(...xs), Math.max(...xs)];
          };
          [row.promptRatio, row.decodeRatio] = [summary('p'), summary('d')];
        }
        rows.push(row);
        await p.page.close();
      }
    }
  } finally {
    await browser.close();
    close();
  }
  const f = (x: number) => x.toFixed(1);
  const ratio = (r?: [number, number, number]) => (r ? `**${r[0].toFixed(2)}x** (${r[1].toFixed(2)}-${r[2].toFixed(2)})` : '-');
  console.log([
    `${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} cores), ${version.match(/(HeadlessChrome|Chrome)\/[\d.]+/)?.[0] ?? 'Chromium'} headless, cross-origin isolated, ${new Date().toISOString().slice(0, 10)}; median of ${rounds} alternating rounds, a ${promptLength}-token prompt (pocketlm's count), ${decode} tokens generated per run, greedy`,
    '',
    '| model | engine | prompt tok/s | decode tok/s | prompt vs wllama | decode vs wllama |',
    '|---|---|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.model} | ${r.engine} | ${f(r.promptTokPerS)} | ${f(r.decodeTokPerS)} | ${ratio(r.promptRatio)} | ${ratio(r.decodeRatio)} |`),
  ].join('\n'));
  if (values.json) writeFileSync(values.json, JSON.stringify({ date: new Date().toISOString(), cpu: cpus()[0]?.model, browser: version, rounds, decode, prompt: promptLength, results: rows }, null, 2));
}

await main();
