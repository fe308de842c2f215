import { createServer, type Server } from 'node:http';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DownloadError } from '../src/base/errors.js';
import { loadModel } from '../src/engine.js';
import { pull } from '../src/load/node-io.js';
import { hasShared, ROOT, SHARED, sharedPath, STORIES_BIN, STORIES_TOK, storiesReference } from './helpers.js';
import { family, hfFolder } from '../bench/families.js';

type Mode = 'ok' | 'corrupt' | 'drop' | '404' | 'chunked' | 'gzip';
let mode: Mode = 'ok';
let requests: string[] = [];
let server: Server;
let base = '';
let cache = '';
/** Bodies served besides the shared files, by URL path. */
const extra = new Map<string, Buffer>();

/** Every file and folder under dir, relative. */
function listAll(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String).sort() : [];
}

describe.skipIf(!hasShared)('weights fetcher against a local HTTP server', () => {
  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push(req.url!);
      const file = sharedPath('weights', decodeURIComponent(req.url!.slice(1)));
      if (mode === '404' || (!existsSync(file) && !extra.has(req.url!))) { res.writeHead(404).end(); return; }
      const body = extra.get(req.url!) ?? readFileSync(file);
      if (mode === 'corrupt') body[body.length >> 1] ^= 0xff;
      if (mode === 'chunked') {
        // no Content-Length: the body in uneven pieces
        res.writeHead(200);
        for (let at = 0, k = 1; at < body.length; at += 4093 * k, k = (k % 7) + 1) res.write(body.subarray(at, at + 4093 * k));
        res.end();
        return;
      }
      if (mode === 'gzip') {
        const packed = gzipSync(body);
        res.writeHead(200, { 'content-length': packed.length, 'content-encoding': 'gzip' }).end(packed);
        return;
      }
      res.writeHead(200, { 'content-length': body.length });
      if (mode === 'drop') {
        res.write(body.subarray(0, body.length >> 1), () => res.socket?.destroy());
        return;
      }
      res.end(body);
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((ok) => server.close(() => ok())));
  beforeEach(() => {
    mode = 'ok';
    requests = [];
    cache = mkdtempSync(join(tmpdir(), 'pocketlm-cache-'));
    return () => rmSync(cache, { recursive: true, force: true });
  });

  it('downloads, verifies, converts to GGUF once, and the result generates the reference text', async () => {
    const progress: number[] = [];
    const p = await pull('stories260K', { cache, mirror: base, onProgress: (_f, r) => progress.push(r) });
    expect(p.path).toBe(join(cache, 'stories260K', 'stories260K.gguf'));
    expect(requests.sort()).toEqual(['/stories260K/stories260K.bin', '/stories260K/tok512.bin']);
    expect(progress.at(-1)).toBeGreaterThan(0);
    const m = await loadModel(p.path, { threads: 1 });
    const g = m.generate('', { temperature: 0, maxTokens: 32 });
    await g.text();
    expect(g.tokens).toEqual(storiesReference().generated_ids.slice(0, 32));
    // A second pull finds everything cached and asks the server for nothing.
    requests = [];
    await pull('stories260K', { cache, mirror: base });
    expect(requests).toEqual([]);
  });

  it('a wrong checksum is a clear error and leaves no file behind', async () => {
    mode = 'corrupt';
    const err = await pull('stories260K', { cache, mirror: base }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/checksum mismatch: sha256 is [0-9a-f]{64}, expected [0-9a-f]{64}; the file was not kept/);
    expect(listAll(cache).filter((f) => !f.endsWith('stories260K') && f !== 'stories260K')).toEqual([]);
  });

  it('a dropped connection is a clear error and leaves no half-written file', async () => {
    mode = 'drop';
    const err = await pull('stories260K', { cache, mirror: base }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/connection (dropped|ended) after \d+/);
    expect(listAll(cache).filter((f) => f.includes('.bin'))).toEqual([]);
  });

  it('an HTTP error names the URL and status', async () => {
    mode = '404';
    await expect(pull('stories260K', { cache, mirror: base })).rejects.toThrow(/stories260K\.bin: HTTP 404/);
  });

  it('loadModel takes http URLs for the model and its tokenizer', async () => {
    const m = await loadModel(`${base}/stories260K/stories260K.bin`, { tokenizer: `${base}/stories260K/tok512.bin`, threads: 1 });
    const g = m.generate('', { temperature: 0, maxTokens: 16 });
    await g.text();
    expect(g.tokens).toEqual(storiesReference().generated_ids.slice(0, 16));
    mode = '404';
    await expect(loadModel(`${base}/stories260K/stories260K.bin`)).rejects.toThrow(/HTTP 404/);
    // a server that is not there: a DownloadError naming the URL, for the model and for its tokenizer
    const closed = await new Promise<number>((ok) => { const t = createServer(); t.listen(0, '127.0.0.1', () => { const port = (t.address() as AddressInfo).port; t.close(() => ok(port)); }); });
    await expect(loadModel(`http://127.0.0.1:${closed}/m.gguf`)).rejects.toThrow(new RegExp(`^http://127\\.0\\.0\\.1:${closed}/m\\.gguf: could not be fetched \\(fetch failed: .*ECONNREFUSED.*\\): check the address and the network$`));
    await expect(loadModel(`http://127.0.0.1:${closed}/m.gguf`)).rejects.toBeInstanceOf(DownloadError);
    mode = 'ok';
    await expect(loadModel(`${base}/stories260K/stories260K.bin`, { tokenizer: `http://127.0.0.1:${closed}/tok.bin` })).rejects.toThrow(/tok\.bin: could not be fetched/);
  });

  it('a fetched model is read into the CPU executor\'s memory and used there: with Content-Length, chunked without one, compressed; a dropped connection is a clear error', async () => {
    const { quantizeModel } = await import('../src/quant/quantize.js');
    const { serializeGGUF } = await import('../src/format/gguf-writer.js');
    const { readModelFile } = await import('../src/format/model-file.js');
    const src = readModelFile(readFileSync(STORIES_BIN), STORIES_BIN, { bytes: readFileSync(STORIES_TOK), source: STORIES_TOK });
    extra.set('/stories-q8_0.gguf', Buffer.concat(serializeGGUF(quantizeModel(src, 'q8_0').input)));
    const ids = [1, ...storiesReference().generated_ids.slice(0, 20)];
    const local = await loadModel(new Uint8Array(extra.get('/stories-q8_0.gguf')!), { device: 'cpu', threads: 1 });
    const want = await local.logits(ids);
    local.dispose();
    for (const m of ['ok', 'chunked', 'gzip'] as const) {
      mode = m;
      const progress: [number, number][] = [];
      const model = await loadModel(`${base}/stories-q8_0.gguf`, { device: 'cpu', threads: 1, onProgress: (a, b) => progress.push([a, b]) });
      try {
        const exec = (model.backend as unknown as { exec: { owns(a: ArrayBufferView): boolean } }).exec;
        const q = model.file.tensors.get('blk.0.attn_q.weight')!;
        expect(q.type, m).toBe(8); // Q8_0, used in place
        expect(exec.owns(q.data), m).toBe(true);
        expect(Array.from(await model.logits(ids)), m).toEqual(Array.from(want));
        expect(progress.at(-1), m).toEqual([extra.get('/stories-q8_0.gguf')!.length, extra.get('/stories-q8_0.gguf')!.length]);
      } finally {
        model.dispose();
      }
    }
    mode = 'drop';
    await expect(loadModel(`${base}/stories-q8_0.gguf`, { device: 'cpu', threads: 1 })).rejects.toThrow(/stories-q8_0\.gguf: the download stopped after \d+ of \d+ bytes/);
  });

  it('a mirror directory works offline too; unknown names list the known ones', async () => {
    const p = await pull('stories260K', { cache, mirror: sharedPath('weights') });
    expect(existsSync(p.path)).toBe(true);
    await expect(pull('nonesuch', { cache })).rejects.toThrow(/unknown model "nonesuch"; known models: stories260K/);
  });
});

describe.skipIf(!hasShared)('pulling a Hugging Face folder model', () => {
  it('downloads every file of the folder into one cache folder and loads it (pythia-160m, from a mirror holding a random-weight stand-in)', async () => {
    const mirror = mkdtempSync(join(tmpdir(), 'pocketlm-mirror-'));
    const cache = mkdtempSync(join(tmpdir(), 'pocketlm-cache-'));
    try {
      // The manifest's file names, filled with a random-weight GPT-NeoX folder of the same layout.
      cpSync(hfFolder(family('gptneox'), join(ROOT, 'bench', 'models', 'families'), SHARED), join(mirror, 'pythia-160m'), { recursive: true });
      const warnings: string[] = [];
      const p = await pull('pythia-160m', { cache, mirror, onWarning: (w) => warnings.push(w) });
      expect(p.path).toBe(join(cache, 'pythia-160m'));
      expect(warnings.some((w) => /model\.safetensors: no checksum recorded/.test(w))).toBe(true);
      const m = await loadModel(p.path, { device: 'cpu', threads: 1 });
      expect(m.config.architecture).toBe('gptneox');
      m.dispose();
    } finally {
      rmSync(mirror, { recursive: true, force: true });
      rmSync(cache, { recursive: true, force: true });
    }
  });
});
