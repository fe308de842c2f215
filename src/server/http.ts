// pocketlm serve: an OpenAI-compatible HTTP server on node:http. Endpoints: GET /health, /v1/models,
// /metrics; POST /v1/completions, /v1/chat/completions (streamed as server-sent events when asked),
// /v1/embeddings. Requests to one model share its Scheduler (continuous batching).

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadModel, type Device, type Model } from '../engine.js';
import { QueueFullError, type Job } from './scheduler.js';
import { ModelRegistry, type Served } from './models.js';
import { asHttpError, chatLogprobs, chatRequest, completionLogprobs, completionRequest, errorBody, finishReason, HttpError, type Request } from './openai.js';

export interface ServeOptions {
  /** One model: a path (GGUF, llama2.c .bin with `tokenizer`, Hugging Face folder) or a manifest name. */
  model?: string;
  /** Or a directory of models, served by name, loaded on first use. */
  modelsDir?: string;
  /** Models resident at once from modelsDir. Default 1. */
  maxModels?: number;
  /** For a llama2.c checkpoint: its tokenizer. */
  tokenizer?: string;
  /** Default 127.0.0.1: only this machine. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Sequences decoded together per model. Default 4. */
  parallel?: number;
  /** Requests waiting beyond the slots before 503. Default 64. */
  queue?: number;
  /** Context length of each slot. Default: the model's, at most 4096. */
  contextLength?: number;
  /** Require `Authorization: Bearer KEY`. */
  apiKey?: string;
  /** Allow browsers from this origin ('*' for any). Default: no CORS headers. */
  cors?: string;
  /** Largest request body. Default 1 MiB. */
  maxBodyBytes?: number;
  /** A request (headers and body) must arrive within this long, else 408. Default 30 s. */
  requestTimeoutMs?: number;
  /** A chat template for models that have none (or to override theirs). */
  chatTemplate?: string;
  device?: Device;
  threads?: number;
  /** CPU, quantized models: what the weights multiply (loadModel's LoadOptions.activations). */
  activations?: 'int16' | 'int8' | 'f32';
  /** true: the same as activations: 'int8' (its older name); false leaves the default. */
  int8Activations?: boolean;
  /** Where log lines go. Default: stderr. */
  log?: (line: string) => void;
  /** How a model is loaded (tests inject their own). */
  load?: (path: string) => Promise<Model>;
}

export interface RunningServer {
  url: string;
  server: Server;
  registry: ModelRegistry;
  /** Stop accepting, let running generations finish for up to `graceMs`, then cut them and close. */
  shutdown(graceMs?: number): Promise<void>;
}

const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' };

class Metrics {
  requests = new Map<string, number>();
  ttftSum = 0;
  ttftCount = 0;
  private recent: [number, number][] = []; // (time, generated tokens) samples for tokens/s

  count(endpoint: string, status: number): void {
    const k = `endpoint="${endpoint}",status="${status}"`;
    this.requests.set(k, (this.requests.get(k) ?? 0) + 1);
  }

  render(served: Served[]): string {
    const sum = (f: (s: Served) => number) => served.reduce((n, s) => n + f(s), 0);
    const generated = sum((s) => s.scheduler.stats.generatedTokens);
    const now = performance.now();
    this.recent.push([now, generated]);
    this.recent = this.recent.filter(([t]) => now - t <= 10_000);
    const [t0, g0] = this.recent[0]!;
    const rate = now - t0 > 0 ? ((generated - g0) * 1000) / (now - t0) : 0;
    const lines = [
      '# HELP pocketlm_requests_total HTTP requests by endpoint and status.', '# TYPE pocketlm_requests_total counter',
      ...[...this.requests].map(([k, v]) => `pocketlm_requests_total{${k}} ${v}`),
      '# HELP pocketlm_prompt_tokens_total Prompt tokens received.', '# TYPE pocketlm_prompt_tokens_total counter',
      `pocketlm_prompt_tokens_total ${sum((s) => s.scheduler.stats.promptTokens)}`,
      '# HELP pocketlm_prompt_tokens_reused_total Prompt tokens whose KV cache entries were reused from an earlier request.', '# TYPE pocketlm_prompt_tokens_reused_total counter',
      `pocketlm_prompt_tokens_reused_total ${sum((s) => s.scheduler.stats.reusedTokens)}`,
      '# HELP pocketlm_generated_tokens_total Tokens generated.', '# TYPE pocketlm_generated_tokens_total counter',
      `pocketlm_generated_tokens_total ${generated}`,
      '# HELP pocketlm_generation_errors_total Generations that ended in an error.', '# TYPE pocketlm_generation_errors_total counter',
      `pocketlm_generation_errors_total ${sum((s) => s.scheduler.stats.errors)}`,
      '# HELP pocketlm_queue_length Requests waiting for a slot.', '# TYPE pocketlm_queue_length gauge',
      `pocketlm_queue_length ${sum((s) => s.scheduler.stats.queued)}`,
      '# HELP pocketlm_active_sequences Sequences being generated.', '# TYPE pocketlm_active_sequences gauge',
      `pocketlm_active_sequences ${sum((s) => s.scheduler.stats.active)}`,
      '# HELP pocketlm_tokens_per_second Generated tokens per second over the last 10 seconds.', '# TYPE pocketlm_tokens_per_second gauge',
      `pocketlm_tokens_per_second ${rate.toFixed(3)}`,
      '# HELP pocketlm_time_to_first_token_seconds Time from a request to its first generated text.', '# TYPE pocketlm_time_to_first_token_seconds summary',
      `pocketlm_time_to_first_token_seconds_sum ${(this.ttftSum / 1000).toFixed(6)}`,
      `pocketlm_time_to_first_token_seconds_count ${this.ttftCount}`,
      `pocketlm_models_resident ${served.length}`,
    ];
    return lines.join('\n') + '\n';
  }
}

/** Start serving; resolves once listening (a single model may still be loading: /health says so). */
export async function serve(o: ServeOptions): Promise<RunningServer> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const load = o.load ?? ((path: string) => loadModel(path, { device: o.device, threads: o.threads, activations: o.activations, int8Activations: o.int8Activations, tokenizer: o.tokenizer, onNotice: (m) => log(`pocketlm: ${m}`) }));
  const registry = new ModelRegistry({ model: o.model, modelsDir: o.modelsDir, maxModels: o.maxModels, load, scheduler: { parallel: o.parallel, queue: o.queue, contextLength: o.contextLength, onNotice: (m) => log(`pocketlm: ${m}`) } });
  const maxBody = o.maxBodyBytes ?? 1 << 20;
  const keyDigest = o.apiKey !== undefined ? createHash('sha256').update(o.apiKey).digest() : undefined;
  const metrics = new Metrics();
  const streams = new Set<{ job: Job; res: ServerResponse }>();
  let stopping = false;

  // Connections are checked against the request timeout every second (Node's default is every 30 s).
  const server = createServer({ connectionsCheckingInterval: 1000 }, (req, res) => {
    void handle(req, res).catch((e) => {
      const h = asHttpError(e) ?? new HttpError(500, `internal error: ${(e as Error)?.message ?? String(e)}`, 'server_error');
      if (h.status === 500) log(`pocketlm: ${(e as Error)?.stack ?? String(e)}`);
      send(res, h.status, errorBody(h), h.status === 503 ? { 'retry-after': '1' } : {});
    });
  });
  // A request must arrive within 30 s (slow clients get 408), its headers within 10 s of that.
  server.requestTimeout = o.requestTimeoutMs ?? 30_000;
  server.headersTimeout = Math.min(10_000, server.requestTimeout);

  const cors = (res: ServerResponse) => {
    if (!o.cors) return;
    res.setHeader('access-control-allow-origin', o.cors);
    res.setHeader('access-control-allow-headers', 'authorization, content-type');
    res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
    if (o.cors !== '*') res.setHeader('vary', 'origin');
  };

  function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}, type = 'application/json'): void {
    if (res.headersSent) {
      res.end();
      return;
    }
    res.writeHead(status, { 'content-type': type, ...headers });
    res.end(body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const endpoint = url.pathname;
    res.on('finish', () => metrics.count(endpoint, res.statusCode));
    cors(res);
    if (req.method === 'OPTIONS') return void send(res, 204, '');
    if (keyDigest && endpoint !== '/health') {
      const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
      const got = createHash('sha256').update(m?.[1] ?? '').digest();
      if (!m || !timingSafeEqual(got, keyDigest)) throw new HttpError(401, 'missing or wrong API key: send Authorization: Bearer KEY', 'authentication_error', null, 'invalid_api_key');
    }
    if (req.method === 'GET' && endpoint === '/health') {
      const failure = registry.failure;
      if (failure) return void send(res, 500, JSON.stringify({ status: 'error', error: failure }));
      return void send(res, registry.ready ? 200 : 503, JSON.stringify({ status: registry.ready ? 'ok' : 'loading' }));
    }
    if (req.method === 'GET' && endpoint === '/v1/models')
      return void send(res, 200, JSON.stringify({ object: 'list', data: registry.list().map((id) => ({ id, object: 'model', created: 0, owned_by: 'pocketlm' })) }));
    if (req.method === 'GET' && endpoint === '/metrics') return void send(res, 200, metrics.render(registry.resident()), {}, 'text/plain; version=0.0.4');
    const routes: Record<string, (b: Record<string, unknown>, res: ServerResponse, req: IncomingMessage) => Promise<void>> = { '/v1/completions': completions, '/v1/chat/completions': chat, '/v1/embeddings': embeddings };
    const route = routes[endpoint];
    if (!route) throw new HttpError(404, `no such endpoint: ${req.method} ${endpoint}`, 'invalid_request_error', null, 'not_found');
    if (req.method !== 'POST') throw new HttpError(405, `${endpoint} takes POST`, 'invalid_request_error');
    if (stopping) throw new HttpError(503, 'the server is shutting down', 'server_error', null, 'shutting_down');
    await route(await readJson(req), res, req);
  }

  async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBody) throw tooLarge(req);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > maxBody) throw tooLarge(req);
      chunks.push(c);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new HttpError(400, `the request body is not valid JSON (${(e as Error).message})`);
    }
  }

  function tooLarge(req: IncomingMessage): HttpError {
    req.resume(); // drain, so the connection can answer
    return new HttpError(413, `the request body is larger than ${maxBody} bytes`);
  }

  /** Submit to the model's scheduler, as a 503 with Retry-After when it is full. */
  function submit(served: Served, prompt: string | number[], r: Request): Job {
    try {
      return served.scheduler.submit(prompt, r.options);
    } catch (e) {
      if (e instanceof QueueFullError) throw new HttpError(503, e.message, 'server_error', null, 'overloaded');
      throw e;
    }
  }

  /** Run a job to the end, or stream it as server-sent events; `shape` makes each chunk's choice. */
  async function respond(res: ServerResponse, req: IncomingMessage, served: Served, job: Job, r: Request, kind: 'completion' | 'chat'): Promise<void> {
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomBytes(12).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const object = kind === 'chat' ? 'chat.completion' : 'text_completion';
    const seq = job.seq;
    const tok = served.model.tokenizer;
    const usage = () => ({ prompt_tokens: seq.promptTokens.length, completion_tokens: seq.tokens.length, total_tokens: seq.promptTokens.length + seq.tokens.length });
    // A client that goes away mid-generation frees its slot at the next step.
    const onClose = () => { if (!seq.done) job.cancel(); };
    res.on('close', onClose);
    req.on('aborted', onClose);
    const noteTtft = () => {
      if (job.firstTextAt !== undefined) {
        metrics.ttftSum += job.firstTextAt - job.submittedAt;
        metrics.ttftCount++;
      }
    };
    if (!r.stream) {
      let text: string;
      try {
        text = await job.text();
      } catch (e) {
        throw asHttpError(e) ?? new HttpError(500, (e as Error).message, 'server_error');
      }
      noteTtft();
      const reason = finishReason(seq.stats.stopReason);
      const logprobs = r.logprobs === undefined ? null : kind === 'chat' ? chatLogprobs(tok, seq.logprobs) : completionLogprobs(tok, seq.logprobs, 0);
      const choice = kind === 'chat' ? { index: 0, message: { role: 'assistant', content: text }, logprobs, finish_reason: reason } : { index: 0, text, logprobs, finish_reason: reason };
      return void send(res, 200, JSON.stringify({ id, object, created, model: served.id, choices: [choice], usage: usage() }));
    }
    res.writeHead(200, SSE_HEADERS);
    const entry = { job, res };
    streams.add(entry);
    const chunkObject = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
    const write = (choices: unknown[], extra: Record<string, unknown> = {}) => res.write(`data: ${JSON.stringify({ id, object: chunkObject, created, model: served.id, choices, ...extra })}\n\n`);
    let sentLogprobs = 0;
    let offset = 0;
    const logprobsSince = () => {
      if (r.logprobs === undefined) return null;
      const lps = seq.logprobs.slice(sentLogprobs);
      sentLogprobs = seq.logprobs.length;
      return kind === 'chat' ? chatLogprobs(tok, lps) : completionLogprobs(tok, lps, offset);
    };
    try {
      if (kind === 'chat') write([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
      for await (const piece of job) {
        const lp = logprobsSince();
        write([kind === 'chat' ? { index: 0, delta: { content: piece }, logprobs: lp, finish_reason: null } : { index: 0, text: piece, logprobs: lp, finish_reason: null }]);
        offset += piece.length;
      }
      noteTtft();
      const reason = finishReason(seq.stats.stopReason);
      write([kind === 'chat' ? { index: 0, delta: {}, logprobs: logprobsSince(), finish_reason: reason } : { index: 0, text: '', logprobs: logprobsSince(), finish_reason: reason }]);
      if (r.includeUsage) write([], { usage: usage() });
    } catch (e) {
      // Headers are gone: the error goes into the stream, in the error object's shape.
      const h = asHttpError(e) ?? new HttpError(500, (e as Error)?.message ?? String(e), 'server_error');
      res.write(`data: ${errorBody(h)}\n\n`);
    } finally {
      streams.delete(entry);
    }
    res.end('data: [DONE]\n\n');
  }

  async function completions(b: Record<string, unknown>, res: ServerResponse, req: IncomingMessage): Promise<void> {
    const r = completionRequest(b, o.contextLength ?? 1 << 20);
    const served = await registry.get(r.model);
    await respond(res, req, served, submit(served, r.prompt, r), r, 'completion');
  }

  async function chat(b: Record<string, unknown>, res: ServerResponse, req: IncomingMessage): Promise<void> {
    const r = chatRequest(b, o.contextLength ?? 1 << 20);
    const served = await registry.get(r.model);
    const { tokens, stopTokenIds } = await served.model.chatPrompt(r.messages, { template: o.chatTemplate });
    r.options.stopTokenIds = stopTokenIds;
    await respond(res, req, served, submit(served, tokens, r), r, 'chat');
  }

  async function embeddings(b: Record<string, unknown>, res: ServerResponse): Promise<void> {
    if (typeof b !== 'object' || b === null) throw new HttpError(400, 'the request body must be a JSON object');
    const input = typeof b.input === 'string' ? [b.input] : Array.isArray(b.input) && b.input.every((x) => typeof x === 'string') ? (b.input as string[]) : undefined;
    if (!input || input.length === 0) throw new HttpError(400, 'input: must be a string or a non-empty list of strings', 'invalid_request_error', 'input');
    const format = b.encoding_format ?? 'float';
    if (format !== 'float' && format !== 'base64') throw new HttpError(400, 'encoding_format: must be "float" or "base64"', 'invalid_request_error', 'encoding_format');
    const served = await registry.get(b.model as string | undefined);
    const vectors = await served.model.embed(input, { normalize: true }); // the model's own pooling (decoders: last token)
    const tokens = input.reduce((n, t) => n + served.model.encode(t).length, 0);
    // base64: the float32 values' little-endian bytes (what the openai package asks for by default).
    const encode = (v: Float32Array) => (format === 'float' ? Array.from(v) : Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64'));
    send(res, 200, JSON.stringify({ object: 'list', data: vectors.map((v, index) => ({ object: 'embedding', index, embedding: encode(v) })), model: served.id, usage: { prompt_tokens: tokens, total_tokens: tokens } }));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 8080, o.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  // A single model starts loading at once (/health says "loading" until it is ready).
  if (o.model) void registry.get(undefined).then(() => log(`pocketlm: ${o.model} ready`), (e: Error) => log(`pocketlm: loading ${o.model} failed: ${e.message}`));

  return {
    url,
    server,
    registry,
    async shutdown(graceMs = 10_000) {
      stopping = true;
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      const deadline = Date.now() + graceMs;
      while (streams.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      // Cut what is left: each stream then ends itself (a last chunk, data: [DONE]).
      for (const s of streams) s.job.cancel();
      for (let i = 0; i < 50 && streams.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
      server.closeAllConnections();
      await closed;
      registry.dispose();
    },
  };
}
