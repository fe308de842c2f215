// The demo page in headless Chromium (Debian's, driven by playwright-core; WebGPU on SwiftShader):
// it loads stories260K from a local server and must produce the reference greedy text.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { llama2cVocab } from '../src/format/llama2c.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { hasShared, readShared, ROOT, SHARED, sharedPath, storiesReference } from './helpers.js';

const CHROMIUM = process.env.POCKETLM_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  const msg = `${CHROMIUM} not found (apt-get install chromium): the browser test is skipped`;
  if (process.env.CI) throw new Error(msg); // CI installs it: missing is a failure there
  console.warn(msg);
}

/** Debian's Chromium, headless, WebGPU on SwiftShader; nothing downloaded, no background traffic. */
async function launch() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

// Each page's wait ends at 100 s, inside vitest's 120 s per test, so that a slow page fails naming what it
// waited for. On this 2-core VM each page finishes in 8-30 s (pipelines are made at first use).
/**
 * A page that hands a Web Worker a job that traps in its share: one row, so that the page's own share is
 * empty, of f32 weights read past the end of the memory (records reach the thread team unchecked).
 */
const TRAP_PAGE = `<!doctype html><script type="module">
import { createWebWorkerExecutor } from '/dist/src/backend/web-workers.js';
const e = await createWebWorkerExecutor(2);
const trap = { threads: e.threads, first: 'no error', after: 'no error' };
try { e.runRecords([[e.memoryBytes - 4, e.alloc(4).byteOffset, e.alloc(1).byteOffset, 1, 1, 4, 0, 0, 0, 0, 0, 0]]); } catch (x) { trap.first = x.message; }
try { e.run([{ out: e.alloc(1), w: e.alloc(4), x: e.alloc(4), n: 1, rows: 1, cols: 4 }]); } catch (x) { trap.after = x.message; }
window.trap = trap;
</script>`;

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.wgsl': 'text/plain', '.bin': 'application/octet-stream' };

describe.skipIf(!hasShared || !haveChromium)('the demo pages in Chromium (WebGPU on SwiftShader)', () => {
  const out = mkdtempSync(join(tmpdir(), 'pocketlm-demo-'));
  let server: Server;
  let base = '';
  let minilmDir = '';

  const minilmGGUF = join(out, 'minilm.gguf');
  /** stories260K as a GGUF (its tokenizer inside): the CPU pages parse it where it is used, in shared memory. */
  const storiesGGUF = join(out, 'stories260K.gguf');
  beforeAll(async () => {
    const { ENCODERS, hfFolder } = await import('../bench/families.js');
    const { convertFolder } = await import('../src/load/node-io.js');
    minilmDir = hfFolder(ENCODERS.find((f) => f.id === 'minilm')!, join(ROOT, 'bench', 'models', 'encoders'), SHARED, { vocab: 3000 });
    const { build } = await import('vite');
    await build({ configFile: join(ROOT, 'docs', 'demo', 'vite.config.ts'), logLevel: 'error', build: { outDir: out, emptyOutDir: true } });
    server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url!, 'http://x').pathname);
      const query = new URL(req.url!, 'http://x').searchParams;
      // ?coi=1: the page cross-origin isolated (what Web Workers need to share the CPU's memory); ?csp=1: no workers allowed
      const headers = {
        ...(query.has('coi') ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } : {}),
        ...(query.has('csp') ? { 'content-security-policy': "worker-src 'none'" } : {}),
      };
      if (path === '/trap.html') return void res.writeHead(200, { 'content-type': 'text/html', ...headers }).end(TRAP_PAGE);
      const file = path.startsWith('/dist/') ? join(ROOT, normalize(path)) : path === '/models/minilm.gguf' ? minilmGGUF : path === '/models/stories260K.gguf' ? storiesGGUF : path.startsWith('/weights/') ? sharedPath('weights', 'stories260K', path.slice('/weights/'.length)) : join(out, normalize(path === '/' ? '/index.html' : path));
      if (!existsSync(file)) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', ...headers }).end(readFileSync(file));
    });
    await convertFolder(minilmDir, minilmGGUF); // after the build, which empties `out`
    const { readModelFile, modelFileToWriteInput } = await import('../src/format/model-file.js');
    const { serializeGGUF } = await import('../src/format/gguf-writer.js');
    writeFileSync(storiesGGUF, Buffer.concat(serializeGGUF(modelFileToWriteInput(readModelFile(readShared('weights', 'stories260K', 'stories260K.bin'), 'stories260K.bin', { bytes: readShared('weights', 'stories260K', 'tok512.bin'), source: 'tok512.bin' })))));
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((ok) => server?.close(() => ok()));
    rmSync(out, { recursive: true, force: true });
  });

  it('streams the exact greedy text, and names the adapter', async () => {
    const browser = await launch();
    try {
      const page = await browser.newPage();
      const N = 48;
      await page.goto(`${base}/index.html?model=/weights/stories260K.bin&tokenizer=/weights/tok512.bin&maxTokens=${N}&temperature=0&ignoreEos=1&auto=1`);
      await page.waitForFunction(() => (window as unknown as { pocketlmDemo?: { done: boolean } }).pocketlmDemo?.done === true, undefined, { timeout: 100_000 });
      const state = await page.evaluate(() => (window as unknown as { pocketlmDemo: { text: string; error: string; adapter: string; tokensPerSecond: number } }).pocketlmDemo);
      expect(state.error).toBe('');
      expect(state.adapter).toMatch(/^webgpu \(/);
      const tok = new Tokenizer(llama2cVocab(readShared('weights', 'stories260K', 'tok512.bin'), 'tok512.bin', 512));
      expect(state.text).toBe(tok.decode(storiesReference().generated_ids.slice(0, N)));
      expect(await page.textContent('#output')).toBe(state.text);
      console.log(`browser: ${state.adapter}, ${state.tokensPerSecond.toFixed(1)} tok/s`);
    } finally {
      await browser.close();
    }
  });

  // Without cross-origin isolation two threads are asked for and one is used (a notice says why); with
  // it, a Web Worker takes half of every matmul's rows; a policy that forbids workers leaves one thread.
  for (const [query, adapter, notice] of [
    ['', 'cpu (1 thread)', /needs a cross-origin isolated page/],
    ['&coi=1', 'cpu (2 threads)', undefined],
    ['&coi=1&csp=1', 'cpu (1 thread)', /a matmul Web Worker (failed to start|could not be made): .*; running on one thread/],
  ] as const)
    it(`on the CPU (a GGUF file, read into the kernels' shared memory): the WebAssembly SIMD kernels, ${query === '' ? 'a page not cross-origin isolated: on its own thread' : query === '&coi=1' ? 'a cross-origin isolated page: the page and a Web Worker' : 'an isolated page whose policy forbids workers: on its own thread'}; the exact greedy text`, async () => {
      const coi = query.includes('coi');
      const browser = await launch();
      try {
        const page = await browser.newPage();
        const notices: string[] = [];
        page.on('console', (m) => { if (m.type() === 'warning') notices.push(m.text()); });
        const N = 48;
        await page.goto(`${base}/index.html?model=/models/stories260K.gguf&maxTokens=${N}&temperature=0&ignoreEos=1&device=cpu&threads=2&auto=1${query}`);
        await page.waitForFunction(() => (window as unknown as { pocketlmDemo?: { done: boolean } }).pocketlmDemo?.done === true, undefined, { timeout: 100_000 });
        const state = await page.evaluate(() => (window as unknown as { pocketlmDemo: { text: string; error: string; adapter: string; tokensPerSecond: number } }).pocketlmDemo);
        expect(state.error).toBe('');
        expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(coi);
        expect(state.adapter).toBe(adapter); // the WebAssembly executor ('cpu (plain JavaScript)' is the fallback's name)
        if (notice) expect(notices.some((t) => notice.test(t)), notices.join('\n')).toBe(true);
        else expect(notices).toEqual([]);
        const tok = new Tokenizer(llama2cVocab(readShared('weights', 'stories260K', 'tok512.bin'), 'tok512.bin', 512));
        expect(state.text).toBe(tok.decode(storiesReference().generated_ids.slice(0, N)));
        console.log(`browser: ${state.adapter}, ${state.tokensPerSecond.toFixed(1)} tok/s`);
      } finally {
        await browser.close();
      }
    });

  it('on the CPU the page stays responsive while it generates: a timer set when the first text shows fires, and its Stop click ends the stream there', async () => {
    const browser = await launch();
    try {
      const page = await browser.newPage();
      await page.goto(`${base}/index.html?model=/models/stories260K.gguf&maxTokens=400&temperature=0&ignoreEos=1&device=cpu`);
      // (a MutationObserver's callback is a microtask: its timer runs only if the generation lets the event loop run)
      await page.evaluate(() => {
        new MutationObserver((_, o) => { o.disconnect(); setTimeout(() => document.getElementById('stop')!.click(), 0); }).observe(document.getElementById('output')!, { childList: true, characterData: true, subtree: true });
        document.getElementById('run')!.click();
      });
      await page.waitForFunction(() => (window as unknown as { pocketlmDemo?: { done: boolean } }).pocketlmDemo?.done === true, undefined, { timeout: 100_000 });
      const state = await page.evaluate(() => (window as unknown as { pocketlmDemo: { error: string; tokens: number; stopReason: string } }).pocketlmDemo);
      expect(state.error).toBe('');
      expect(state.stopReason).toBe('aborted');
      expect(state.tokens).toBeLessThan(20); // (without the yield: all 400)
    } finally {
      await browser.close();
    }
  });

  it('a Web Worker that fails (a kernel trap in its share of a job) is an error with its message, read from shared memory while the page waits; the executor is disposed', async () => {
    const browser = await launch();
    try {
      const page = await browser.newPage();
      await page.goto(`${base}/trap.html?coi=1`);
      await page.waitForFunction(() => (window as unknown as { trap?: unknown }).trap, undefined, { timeout: 100_000 });
      const trap = await page.evaluate(() => (window as unknown as { trap: { threads: number; first: string; after: string } }).trap);
      expect(trap.threads).toBe(2);
      expect(trap.first).toMatch(/^a matmul Web Worker failed: .*memory access out of bounds/);
      expect(trap.after).toMatch(/disposed/);
    } finally {
      await browser.close();
    }
  });

  it('the inside view: attention maps per head of a chosen layer, the logit lens of a hovered token; its last layer is the model\'s output', async () => {
    const browser = await launch();
    try {
      const page = await browser.newPage();
      await page.goto(`${base}/index.html?model=/weights/stories260K.bin&tokenizer=/weights/tok512.bin&insidePrompt=${encodeURIComponent('Once upon a time, there was')}&autoInside=1`);
      await page.waitForFunction(() => (window as unknown as { pocketlmInside?: { done: boolean } }).pocketlmInside?.done === true, undefined, { timeout: 100_000 });
      const state = await page.evaluate(() => (window as unknown as { pocketlmInside: { error: string; adapter: string; layers: number; heads: number; tokens: string[]; lensLastEqualsOutput: boolean } }).pocketlmInside);
      expect(state.error).toBe('');
      expect(state.adapter).toMatch(/^webgpu \(/);
      expect([state.layers, state.heads]).toEqual([5, 8]);
      expect(state.lensLastEqualsOutput).toBe(true);
      expect(await page.locator('#inside-maps svg').count()).toBe(8);
      await page.selectOption('#inside-layer', '3');
      expect(await page.locator('#inside-maps svg').count()).toBe(8);
      await page.hover('#inside-tokens span[data-pos="2"]');
      expect(await page.locator('#inside-lens tr').count()).toBe(5); // one row per layer
      expect(await page.locator('#inside-lens caption').textContent()).toContain(state.tokens[2]!);
    } finally {
      await browser.close();
    }
  });

  it('the embeddings panel: an encoder GGUF on WebGPU, the cosine matrix of what the CPU computes, drawn as a heat map', async () => {
    const browser = await launch();
    try {
      const page = await browser.newPage();
      const sentences = ['A cat sat on the mat.', 'A dog lay on the rug.', 'The market fell today.'];
      await page.goto(`${base}/index.html?embedModel=/models/minilm.gguf&sentences=${encodeURIComponent(sentences.join('|'))}&autoEmbed=1`);
      await page.waitForFunction(() => (window as unknown as { pocketlmEmbed?: { done: boolean } }).pocketlmEmbed?.done === true, undefined, { timeout: 100_000 });
      const state = await page.evaluate(() => (window as unknown as { pocketlmEmbed: { error: string; adapter: string; matrix: number[][]; sentences: string[] } }).pocketlmEmbed);
      expect(state.error).toBe('');
      expect(state.adapter).toMatch(/^webgpu \(/);
      expect(state.sentences).toEqual(sentences);
      const { loadModel } = await import('../src/engine.js');
      const cpu = await loadModel(minilmDir, { device: 'cpu', threads: 1 });
      const v = await cpu.embed(sentences);
      cpu.dispose();
      // Unit vectors: each cosine within a few f32 roundings of the CPU's (WebGPU is within 2e-6 of the float64 reference).
      for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) expect(Math.abs(state.matrix[i]![j]! - v[i]!.reduce((a, x, k) => a + x * v[j]![k]!, 0))).toBeLessThan(1e-5);
      expect(await page.locator('#heatmap svg rect').count()).toBe(9);
      expect(await page.locator('#heatmap svg').textContent()).toContain('1.00');
    } finally {
      await browser.close();
    }
  });

  it('npm run bench:browser: pocketlm on the CPU beside wllama (llama.cpp in WebAssembly, where bench/peers has it) on one GGUF, its ratios table', async () => {
    const wllama = existsSync(join(ROOT, 'bench', 'peers', 'node_modules', '@wllama', 'wllama', 'esm', 'index.js'));
    if (!wllama && process.env.CI) throw new Error('@wllama/wllama is missing from bench/peers (CI installs it)');
    if (!wllama) return void console.warn('@wllama/wllama is not installed (cd bench/peers && npm install --ignore-scripts): the bench:browser test is skipped');
    const { quantizeModel } = await import('../src/quant/quantize.js');
    const { readModelFile } = await import('../src/format/model-file.js');
    const { serializeGGUF } = await import('../src/format/gguf-writer.js');
    const file = join(ROOT, 'bench', 'models', 'test', 'stories260K-q8_0.gguf');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, Buffer.concat(serializeGGUF(quantizeModel(readModelFile(readShared('weights', 'stories260K', 'stories260K.bin'), 'stories260K.bin', { bytes: readShared('weights', 'stories260K', 'tok512.bin'), source: 'tok512.bin' }), 'q8_0').input)));
    const { stdout } = await promisify(execFile)(process.execPath, [join(ROOT, 'dist', 'bench', 'browser.js'), '--model', file, '--rounds', '1', '--threads', '1,2', '--decode', '4', '--prompt', '24', '--chromium', CHROMIUM], { cwd: ROOT, timeout: 100_000 });
    const rows = stdout.split('\n').filter((l) => l.startsWith('| stories260K-q8_0.gguf |')).map((l) => l.split('|').map((c) => c.trim()));
    // for 1 and 2 threads: pocketlm with f32 inputs, with 8-bit inputs, and wllama
    expect(rows.map((r) => r[2])).toEqual(['pocketlm cpu (1 thread)', 'pocketlm cpu (1 thread), int8 activations', 'wllama (llama.cpp in WebAssembly) 1 thread', 'pocketlm cpu (2 threads)', 'pocketlm cpu (2 threads), int8 activations', 'wllama (llama.cpp in WebAssembly) 2 threads']);
    for (const r of rows) {
      expect(Number(r[3]), r[2]).toBeGreaterThan(0); // prompt tok/s
      expect(Number(r[4]), r[2]).toBeGreaterThan(0); // decode tok/s
      expect(r[5], r[2]).toMatch(r[2]!.startsWith('wllama') ? /^-$/ : /^\*\*\d+\.\d\dx\*\* \(/);
    }
  }, 120_000);

  // (the CPU on the page's own thread: the Web Workers' hand-overs are tested by the demo above; on a loaded
  // 2-core machine, as CI runs this file beside others, a page's thread spins while it waits for a worker
  // to be scheduled, and the bench's thousands of hand-overs would take minutes)
  for (const device of ['webgpu', 'cpu'] as const)
    it(`the bench page times every kernel family on ${device === 'cpu' ? 'the CPU (WebAssembly, the page\'s thread)' : 'the adapter'}, each checked, into a report with positive timings`, async () => {
      const browser = await launch();
      try {
        const page = await browser.newPage();
        await page.goto(`${base}/bench.html?quick=1&auto=1&device=${device}`);
        await page.waitForFunction(() => (window as unknown as { pocketlmBench?: { done: boolean } }).pocketlmBench?.done === true, undefined, { timeout: 100_000 });
        const state = await page.evaluate(() => (window as unknown as { pocketlmBench: { error: string; report?: import('../src/cli/bench-report.js').FullReport } }).pocketlmBench);
        expect(state.error).toBe('');
        const { checkReport } = await import('../src/cli/bench-report.js');
        const { KERNEL_FAMILIES } = await import('../src/cli/kernel-bench.js');
        const report = checkReport(JSON.parse(JSON.stringify(state.report)), 'the page');
        expect(report.device.kind).toBe(device);
        if (device === 'cpu') expect(report.device.name).toBe('cpu (1 thread)');
        expect(new Set(report.kernels.map((k) => k.family))).toEqual(new Set(KERNEL_FAMILIES));
        for (const k of report.kernels) {
          expect(k.medianMs, k.id).toBeGreaterThan(0);
          expect(k.correct, k.id).toBe(true);
        }
        expect(await page.locator('#table tr').count()).toBe(report.kernels.length + 1);
        expect(await page.locator('#download').getAttribute('href')).toMatch(/^blob:/);
      } finally {
        await browser.close();
      }
    });
});
