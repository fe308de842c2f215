// pocketlm serve as applications use it: the official `openai` package (dev-only) against a running
// server, and the faults real clients bring (bad requests, disconnects, slow and huge bodies, garbage).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../src/engine.js';
import { serve, type RunningServer } from '../src/server/http.js';
import { hasShared, ROOT, STORIES_BIN, STORIES_TOK, tinyLlama } from './helpers.js';
import { encodeGGUF } from '../src/format/gguf-writer.js';

// stories260K has no chat template: a minimal one, the same for the server and the reference runs.
const TEMPLATE = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";

describe.skipIf(!hasShared)('pocketlm serve', () => {
  let srv: RunningServer;
  let client: OpenAI;
  let ref: Model;

  beforeAll(async () => {
    srv = await serve({ model: STORIES_BIN, tokenizer: STORIES_TOK, port: 0, parallel: 8, queue: 8, contextLength: 512, chatTemplate: TEMPLATE, device: 'cpu', threads: 1, maxBodyBytes: 64 * 1024, requestTimeoutMs: 1500, log: () => {} });
    while (!srv.registry.ready) await new Promise((r) => setTimeout(r, 20));
    client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    ref = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, device: 'cpu', threads: 1 });
  });
  afterAll(async () => {
    await srv?.shutdown(0);
    ref?.dispose();
  });

  const alone = (prompt: string | number[], o: object) => ref.generate(prompt, { contextLength: 512, ...o }).text();

  it('completions: the text generate() gives, with usage and finish_reason', async () => {
    const r = await client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 24, temperature: 0 });
    expect(r.object).toBe('text_completion');
    expect(r.choices[0]!.text).toBe(await alone('Once upon a time', { temperature: 0, maxTokens: 24 }));
    expect(r.choices[0]!.finish_reason).toBe('length');
    expect(r.usage).toEqual({ prompt_tokens: ref.encode('Once upon a time').length, completion_tokens: 24, total_tokens: ref.encode('Once upon a time').length + 24 });
    const seeded = await client.completions.create({ model: 'x', prompt: 'The cat', max_tokens: 30, temperature: 0.9, seed: 7, stop: ['.'] });
    expect(seeded.choices[0]!.text).toBe(await alone('The cat', { temperature: 0.9, seed: 7, maxTokens: 30, stop: ['.'] }));
  });

  it('chat completions, whole and streamed: the same reply; usage in the last chunk when asked', async () => {
    const messages = [{ role: 'system' as const, content: 'Tell a story.' }, { role: 'user' as const, content: 'A dog.' }];
    const whole = await client.chat.completions.create({ model: 'm', messages, max_tokens: 30, temperature: 0 });
    const { tokens, stopTokenIds } = await ref.chatPrompt(messages, { template: TEMPLATE });
    expect(whole.choices[0]!.message.content).toBe(await alone(tokens, { temperature: 0, maxTokens: 30, stopTokenIds }));
    const stream = await client.chat.completions.create({ model: 'm', messages, max_tokens: 30, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage;
    let finish;
    let role;
    for await (const chunk of stream) {
      role ??= chunk.choices[0]?.delta.role;
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expect(role).toBe('assistant');
    expect(text).toBe(whole.choices[0]!.message.content);
    expect(finish).toBe(whole.choices[0]!.finish_reason);
    expect(usage).toEqual(whole.usage);
  });

  it('logprobs, JSON mode and a JSON schema through the API', async () => {
    const r = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 12, temperature: 0, logprobs: true, top_logprobs: 2 });
    const lp = r.choices[0]!.logprobs!.content!;
    expect(lp.length).toBe(r.usage!.completion_tokens);
    for (const t of lp) {
      expect(t.top_logprobs.length).toBe(2);
      expect(t.logprob).toBeCloseTo(t.top_logprobs[0]!.logprob, 6); // greedy: the best one
      expect(t.logprob).toBeLessThanOrEqual(0);
    }
    const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 10 }, age: { type: 'integer' } }, required: ['name', 'age'], additionalProperties: false };
    const j = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 100, temperature: 0.7, seed: 3, response_format: { type: 'json_schema', json_schema: { name: 'person', schema } } });
    const d = JSON.parse(j.choices[0]!.message.content!);
    expect(Object.keys(d).sort()).toEqual(['age', 'name']);
    expect(Number.isInteger(d.age)).toBe(true);
    const c = await client.completions.create({ model: 'm', prompt: 'Once', max_tokens: 5, temperature: 0, logprobs: 3 });
    expect(c.choices[0]!.logprobs!.tokens!.join('')).toBe(c.choices[0]!.text);
    expect(c.choices[0]!.logprobs!.top_logprobs!.every((t) => Object.keys(t!).length <= 3)).toBe(true);
  });

  it('embeddings: one unit vector per input', async () => {
    const r = await client.embeddings.create({ model: 'm', input: ['a dog', 'a cat', 'a dog'] });
    expect(r.data.length).toBe(3);
    for (const e of r.data) expect(Math.hypot(...e.embedding)).toBeCloseTo(1, 5);
    expect(r.data[0]!.embedding).toEqual(r.data[2]!.embedding);
    expect(r.data[0]!.embedding.length).toBe(ref.config.dim);
  });

  it('8 streaming chats at once: each the reply it gets alone', async () => {
    const convs = Array.from({ length: 8 }, (_, i) => [{ role: 'user' as const, content: `Story ${i} about a ${['cat', 'dog', 'bird', 'fish'][i % 4]}.` }]);
    const opts = (i: number) => (i % 2 ? { temperature: 0 } : { temperature: 0.8, seed: i });
    const replies = await Promise.all(convs.map(async (messages, i) => {
      const s = await client.chat.completions.create({ model: 'm', messages, max_tokens: 40, stream: true, ...opts(i) });
      let t = '';
      for await (const c of s) t += c.choices[0]?.delta.content ?? '';
      return t;
    }));
    for (const [i, messages] of convs.entries()) {
      const { tokens, stopTokenIds } = await ref.chatPrompt(messages, { template: TEMPLATE });
      expect(replies[i]).toBe(await alone(tokens, { maxTokens: 40, stopTokenIds, ...opts(i) }));
    }
  });

  it('bad requests: each a 4xx with an OpenAI error object naming the field, and the server keeps serving', async () => {
    const post = (path: string, body: string, headers: Record<string, string> = {}) => fetch(`${srv.url}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
    const cases: [string, string, number, RegExp][] = [
      ['/v1/completions', '{bad json', 400, /not valid JSON/],
      ['/v1/completions', '[]', 400, /must be a JSON object/],
      ['/v1/completions', '{"prompt": 5}', 400, /prompt/],
      ['/v1/completions', '{"prompt": "x", "temperature": "hot"}', 400, /temperature: must be a number/],
      ['/v1/completions', '{"prompt": "x", "max_tokens": -1}', 400, /max_tokens/],
      ['/v1/completions', '{"prompt": "x", "n": 2}', 400, /n: must be between 1 and 1/],
      ['/v1/completions', '{"prompt": "x", "top_p": 0}', 400, /top-p must be in \(0, 1\]/],
      ['/v1/completions', `{"prompt": "${'Once upon a time '.repeat(200)}"}`, 400, /longer than the context of 512/],
      ['/v1/chat/completions', '{"messages": []}', 400, /messages: must be a non-empty list/],
      ['/v1/chat/completions', '{"messages": [{"role": "user", "content": 3}]}', 400, /messages\[0\]\.content/],
      ['/v1/chat/completions', '{"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "string", "pattern": "a"}}}}', 400, /"pattern" is not enforced/],
      ['/v1/embeddings', '{"input": 5}', 400, /input/],
      ['/v1/nothing', '{}', 404, /no such endpoint/],
    ];
    for (const [path, body, status, message] of cases) {
      const r = await post(path, body);
      expect(r.status, body).toBe(status);
      const e = (await r.json()) as { error: { message: string; type: string } };
      expect(e.error.message, body).toMatch(message);
      expect(e.error.type).toBe('invalid_request_error');
    }
    expect((await fetch(`${srv.url}/v1/completions`)).status).toBe(405);
    // The official client surfaces them as APIError with the status.
    await expect(client.completions.create({ model: 'm', prompt: 'x', temperature: 5 })).rejects.toMatchObject({ status: 400 });
    const big = await post('/v1/completions', JSON.stringify({ prompt: 'x'.repeat(10_000_000) })); // 10 MB
    expect(big.status).toBe(413);
    expect((await client.completions.create({ model: 'm', prompt: 'Once', max_tokens: 3 })).choices[0]!.text).toBeTypeOf('string');
  });

  it('a client that disconnects mid-stream frees its slot; slow bodies get 408; garbage gets 400; others keep being served', async () => {
    const scheduler = srv.registry.resident()[0]!.scheduler;
    const before = scheduler.stats.generatedTokens;
    const ctl = new AbortController();
    const s = await client.completions.create({ model: 'm', prompt: 'Once upon a time', max_tokens: 400, stream: true, temperature: 1, seed: 1 }, { signal: ctl.signal });
    let chunks = 0;
    try {
      for await (const _ of s) if (++chunks === 3) ctl.abort();
    } catch {
      // the client may end the iteration with an AbortError
    }
    expect(chunks).toBe(3);
    for (let i = 0; i < 100 && scheduler.stats.active > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(scheduler.stats.active).toBe(0);
    expect(scheduler.stats.generatedTokens - before).toBeLessThan(400); // stopped, not run to the 400 it asked for

    const raw = (payload: string, wait = 3000) => new Promise<string>((resolve) => {
      const sock = connect(Number(new URL(srv.url).port), '127.0.0.1');
      let got = '';
      sock.on('data', (d) => (got += d.toString()));
      sock.on('close', () => resolve(got));
      sock.on('error', () => resolve(got));
      sock.write(payload);
      setTimeout(() => { sock.destroy(); resolve(got); }, wait);
    });
    const slow = await raw('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"prom');
    expect(slow).toMatch(/^HTTP\/1\.1 408/);
    const garbage = await raw('\u0000\u00ff\u0001GARBAGE \r\n\r\n', 1000);
    expect(garbage).toMatch(/^HTTP\/1\.1 400/);
    expect((await client.completions.create({ model: 'm', prompt: 'Once', max_tokens: 3 })).choices[0]!.text).toBeTypeOf('string');
  });

  it('a full queue answers 503 with Retry-After; the queued ones all finish', async () => {
    // 4 slots and 2 queue places: 2 of 8 long requests at once are refused.
    const small = await serve({ model: STORIES_BIN, tokenizer: STORIES_TOK, port: 0, parallel: 4, queue: 2, contextLength: 256, device: 'cpu', threads: 1, log: () => {} });
    while (!small.registry.ready) await new Promise((r) => setTimeout(r, 20));
    const body = (i: number) => JSON.stringify({ prompt: 'Once upon a time', max_tokens: 60, temperature: 0.5, seed: i });
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => fetch(`${small.url}/v1/completions`, { method: 'POST', body: body(i), headers: { 'content-type': 'application/json' } })));
    const codes = rs.map((r) => r.status).sort();
    expect(codes.filter((c) => c === 200).length).toBe(6);
    expect(codes.filter((c) => c === 503).length).toBe(2);
    const refused = rs.find((r) => r.status === 503)!;
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('overloaded');
    for (const r of rs.filter((x) => x.status === 200)) expect(((await r.json()) as { choices: { text: string }[] }).choices[0]!.text.length).toBeGreaterThan(0);
    await small.shutdown(0);
  });

  it('/health, /v1/models and /metrics', async () => {
    expect(await (await fetch(`${srv.url}/health`)).json()).toEqual({ status: 'ok' });
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['stories260K']);
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    expect(metrics).toMatch(/pocketlm_requests_total\{endpoint="\/v1\/completions",status="200"\} \d+/);
    expect(metrics).toMatch(/pocketlm_generated_tokens_total [1-9]\d*/);
    expect(metrics).toMatch(/pocketlm_queue_length 0/);
  });
});

describe.skipIf(!hasShared)('pocketlm serve: access and models', () => {
  it('--api-key: 401 without the key or with a wrong one (an OpenAI error object), 200 with it; /health stays open', async () => {
    const srv = await serve({ model: STORIES_BIN, tokenizer: STORIES_TOK, port: 0, apiKey: 'sekret', device: 'cpu', threads: 1, log: () => {} });
    try {
      while (!srv.registry.ready) await new Promise((r) => setTimeout(r, 20));
      const body = JSON.stringify({ prompt: 'x', max_tokens: 2 });
      for (const auth of [undefined, 'Bearer wrong', 'Bearer sekret2', 'sekret'])
        expect((await fetch(`${srv.url}/v1/completions`, { method: 'POST', body, headers: auth ? { authorization: auth } : {} })).status, auth).toBe(401);
      await expect(new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'wrong', maxRetries: 0 }).completions.create({ model: 'm', prompt: 'x' })).rejects.toMatchObject({ status: 401 });
      expect((await new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'sekret', maxRetries: 0 }).completions.create({ model: 'm', prompt: 'x', max_tokens: 2 })).choices.length).toBe(1);
      expect((await fetch(`${srv.url}/health`)).status).toBe(200);
      // No CORS headers unless asked for.
      expect((await fetch(`${srv.url}/health`)).headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await srv.shutdown(0);
    }
  });

  it('--cors: the origin in the headers and preflight answered', async () => {
    const srv = await serve({ model: STORIES_BIN, tokenizer: STORIES_TOK, port: 0, cors: 'http://example.com', device: 'cpu', threads: 1, log: () => {} });
    try {
      const pre = await fetch(`${srv.url}/v1/completions`, { method: 'OPTIONS' });
      expect(pre.status).toBe(204);
      expect(pre.headers.get('access-control-allow-origin')).toBe('http://example.com');
      expect(pre.headers.get('access-control-allow-headers')).toMatch(/authorization/);
    } finally {
      await srv.shutdown(0);
    }
  });

  it('shutdown cuts a stream that outlasts the grace period: it still ends with [DONE], and new requests are refused', async () => {
    const srv = await serve({ model: STORIES_BIN, tokenizer: STORIES_TOK, port: 0, contextLength: 4096, device: 'cpu', threads: 1, log: () => {} });
    while (!srv.registry.ready) await new Promise((r) => setTimeout(r, 20));
    const res = await fetch(`${srv.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'Once', max_tokens: 4000, ignore_eos: true, stream: true }), headers: { 'content-type': 'application/json' } });
    const reader = res.body!.getReader();
    let text = new TextDecoder().decode((await reader.read()).value);
    const down = srv.shutdown(100);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    await down;
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(text.split('data: ').length).toBeLessThan(4000);
  });

  it('a model that cannot load: /health says why (500), requests get a 500 error object naming it', async () => {
    const srv = await serve({ model: '/nonexistent/model.gguf', port: 0, log: () => {} });
    try {
      for (let i = 0; i < 50 && srv.registry.failure === undefined; i++) await new Promise((r) => setTimeout(r, 20));
      const h = await fetch(`${srv.url}/health`);
      expect(h.status).toBe(500);
      expect(((await h.json()) as { error: string }).error).toMatch(/nonexistent/);
      const r = await fetch(`${srv.url}/v1/completions`, { method: 'POST', body: '{"prompt":"x"}' });
      expect(r.status).toBe(500);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('model_load_failed');
    } finally {
      await srv.shutdown(0);
    }
  });

  it('/health says "loading" until the model is ready', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const srv = await serve({ model: STORIES_BIN, port: 0, log: () => {}, load: async () => { await gate; return loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, device: 'cpu', threads: 1 }); } });
    try {
      const r = await fetch(`${srv.url}/health`);
      expect(r.status).toBe(503);
      expect(await r.json()).toEqual({ status: 'loading' });
      release();
      while (!srv.registry.ready) await new Promise((res) => setTimeout(res, 20));
      expect((await fetch(`${srv.url}/health`)).status).toBe(200);
    } finally {
      await srv.shutdown(0);
    }
  });

  it('--models-dir: models by name, loaded on first use, at most --max-models resident; no name leads outside the directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pocketlm-models-'));
    const outside = mkdtempSync(join(tmpdir(), 'pocketlm-outside-'));
    const gguf = encodeGGUF(tinyLlama());
    for (const p of [join(dir, 'a.gguf'), join(dir, 'b.gguf'), join(outside, 'secret.gguf')]) writeFileSync(p, gguf);
    symlinkSync(join(outside, 'secret.gguf'), join(dir, 'escape.gguf'));
    mkdirSync(join(dir, 'not-a-model'));
    writeFileSync(join(dir, 'notes.txt'), 'x');
    const loads: string[] = [];
    const srv = await serve({ modelsDir: dir, maxModels: 1, port: 0, log: () => {}, load: (p) => (loads.push(p), loadModel(p, { device: 'cpu', threads: 1 })) });
    try {
      const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'x', maxRetries: 0 });
      expect((await client.models.list()).data.map((m) => m.id)).toEqual(['a', 'b', 'escape']);
      expect(loads).toEqual([]);
      await client.completions.create({ model: 'a', prompt: 'a', max_tokens: 2 });
      await client.completions.create({ model: 'b', prompt: 'a', max_tokens: 2 });
      expect(srv.registry.resident().map((s) => s.id)).toEqual(['b']); // a made room for b
      for (const name of ['../' + outside.split('/').pop() + '/secret', '/etc/passwd', 'escape', 'nope', 'a.gguf'])
        await expect(client.completions.create({ model: name, prompt: 'a', max_tokens: 2 }), name).rejects.toMatchObject({ status: 404 });
      expect(loads.every((p) => p.startsWith(dir))).toBe(true);
    } finally {
      await srv.shutdown(0);
    }
  });
});

describe.skipIf(!hasShared)('pocketlm serve (the CLI process)', () => {
  it('SIGTERM: a running stream is finished cleanly ([DONE]), then the process exits 0', async () => {
    const cli = join(ROOT, 'dist', 'src', 'cli', 'main.js');
    const p = spawn(process.execPath, [cli, 'serve', '--model', STORIES_BIN, '--tokenizer', STORIES_TOK, '--port', '0', '--device', 'cpu'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const url = await new Promise<string>((resolve, reject) => {
      p.stderr.on('data', (d) => {
        err += d.toString();
        const m = /at (http:\/\/[^ ]+) /.exec(err);
        if (m && /ready/.test(err)) resolve(m[1]!);
      });
      p.on('exit', () => reject(new Error(`exited early: ${err}`)));
    });
    const res = await fetch(`${url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 200, stream: true, temperature: 0 }), headers: { 'content-type': 'application/json' } });
    const reader = res.body!.getReader();
    let text = '';
    const first = await reader.read();
    text += new TextDecoder().decode(first.value);
    const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    p.kill('SIGTERM');
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(await exited).toBe(0);
    expect(err).toMatch(/SIGTERM: finishing running generations/);
  }, 60_000);
});

describe.skipIf(!hasShared)('pocketlm serve with an encoder (MiniLM shape)', () => {
  it('/v1/embeddings returns what Model.embed does (the model\'s mean pooling); completions get a 400 saying it cannot generate', async () => {
    const { ENCODERS, hfFolder } = await import('../bench/families.js');
    const { SHARED } = await import('./helpers.js');
    const dir = hfFolder(ENCODERS.find((f) => f.id === 'minilm')!, join(ROOT, 'bench', 'models', 'encoders'), SHARED, { vocab: 3000 });
    const srv = await serve({ model: dir, port: 0, device: 'cpu', threads: 1, log: () => {} });
    const m = await loadModel(dir, { device: 'cpu', threads: 1 });
    try {
      while (!srv.registry.ready) await new Promise((r) => setTimeout(r, 20));
      const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const input = ['A cat sat on the mat.', 'hello', 'A dog lay on the rug, and then it slept.'];
      const r = await client.embeddings.create({ model: 'm', input, encoding_format: 'float' });
      const lib = await m.embed(input);
      r.data.forEach((e, i) => expect(Float32Array.from(e.embedding)).toEqual(lib[i]));
      await expect(client.completions.create({ model: 'm', prompt: 'hi', max_tokens: 4 })).rejects.toThrow(/is an encoder .* cannot generate/);
      const health = await fetch(`${srv.url}/health`);
      expect(health.status).toBe(200);
    } finally {
      m.dispose();
      await srv.shutdown(0);
    }
  }, 60_000);
});
