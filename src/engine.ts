// The public face of the engine: loadModel() and the Model it returns.

import { chatTokens, renderChat, type ChatMessage, type ChatTemplateOptions } from './tokenizer/chat.js';
import { DownloadError, InvalidInputError, ModelFormatError, OutOfMemoryError, UnsupportedModelError } from './base/errors.js';
import type { BertConfig, Pooling } from './arch/bert.js';
import { directLogitAttribution, logitLens, probabilities, runWithHooks, type RunOptions, type RunResult } from './inspect.js';
import { Generation, type Fallback, type GenerateOptions } from './generate.js';
import type { ModelConfig } from './arch/config.js';
import { serialExecutor, type MatmulExecutor } from './stages/matmul.js';
import type { Backend, Handle } from './backend/backend.js';
import { CpuBackend } from './backend/cpu.js';
import { buildTransformer } from './arch/index.js';
import type { Transformer } from './arch/transformer.js';
import { readModelFile, type ModelFile } from './format/model-file.js';
import { vocabFromMetadata } from './format/vocab.js';
import { Tokenizer, type EncodeOptions } from './tokenizer/tokenizer.js';

export type Device = 'cpu' | 'webgpu' | 'auto';

export interface LoadOptions {
  /**
   * Where to compute: 'cpu', 'webgpu' (an error if no adapter can be had), or 'auto' (the default):
   * WebGPU on a hardware adapter, else the CPU with a one-line notice. Software adapters (llvmpipe,
   * SwiftShader) count as none for 'auto': they run on the same CPU cores, slower than the CPU path.
   */
  device?: Device;
  /** Where notices go (e.g. why 'auto' chose the CPU). Default: console.warn (stderr in Node). */
  onNotice?: (message: string) => void;
  /**
   * CPU threads for the matmuls (Node): default one per core, at most 8 (1 for models under 16 MB);
   * 1 = WebAssembly kernels on the calling thread only; 0 = the plain JavaScript kernels (reference).
   * In a browser more than one thread needs a cross-origin isolated page (Web Workers share the memory;
   * default there: one per core, at most 8); elsewhere the kernels run on the calling thread.
   */
  threads?: number;
  /**
   * CPU, quantized matrices (WebAssembly kernels): what the dequantized weights are multiplied with.
   * 'int16' (default): each matmul's input rounded to 16-bit integers per block of 32 values (at most
   * 2^-16 of the block's largest value per value, about 1/256 of a Q8_0 weight's own rounding) and
   * multiplied in integers: 1.2-1.6x faster than f32 inputs on the CPU. 'int8': 8 bits per block, the
   * way llama.cpp's CPU backend does (at most max|x|/254 per value; fastest with relaxed SIMD). 'f32': the
   * inputs as they are, the product up to f32 rounding (what the WebGPU kernels compute). With 8-bit
   * inputs, batches of 8+ tokens of formats other than Q8_0 and Q4_0 multiply dequantized f32 tiles with
   * the f32 inputs. See docs/quantization.md for each mode's agreement with f32 and with llama.cpp.
   */
  activations?: 'int16' | 'int8' | 'f32';
  /** true: the same as `activations: 'int8'` (its older name); false leaves the default. */
  int8Activations?: boolean;
  /**
   * CPU in Node: let the WebAssembly kernels use relaxed SIMD (FMA, 8-bit dot products) where the runtime
   * has it. Default true; false keeps to SIMD 1.0 (to compare, or where a result must not depend on the CPU:
   * relaxed FMA rounds once on CPUs with FMA and twice on others).
   */
  relaxedSimd?: boolean;
  /** Hears how much of the model has been read, as it is read (paths in Node, and URLs; for a progress line). */
  onProgress?: (loadedBytes: number, totalBytes: number) => void;
  /** For a llama2.c checkpoint: its tokenizer .bin (path in Node, or bytes). */
  tokenizer?: string | URL | ArrayBuffer | Uint8Array;
}

export interface EmbedOptions {
  /** How token vectors become one: the model's own by default (see Model.embed). */
  pooling?: Pooling;
  /** L2-normalize each vector (default true; false for pooling 'none'). */
  normalize?: boolean;
  /** Cut texts longer than the model's positions, with a notice (default true); false: an error. */
  truncate?: boolean;
}

/** Mean, first or last of n rows of `width` (float64 sums). */
function pool(h: Float32Array, n: number, width: number, pooling: Pooling): Float32Array {
  if (pooling === 'cls') return h.slice(0, width);
  if (pooling === 'last') return h.slice((n - 1) * width, n * width);
  const v = new Float64Array(width);
  for (let t = 0; t < n; t++) for (let i = 0; i < width; i++) v[i]! += h[t * width + i]!;
  return Float32Array.from(v, (x) => x / n);
}

/** Each row of `width` scaled to unit length (rows of zeros stay zero). */
function normalized(v: Float32Array, width: number): Float32Array {
  const out = new Float32Array(v.length);
  for (let r = 0; r < v.length; r += width) {
    let sq = 0;
    for (let i = r; i < r + width; i++) sq += v[i]! * v[i]!;
    const norm = Math.sqrt(sq);
    for (let i = r; i < r + width; i++) out[i] = norm > 0 ? v[i]! / norm : 0;
  }
  return out;
}


/** Below this much weight data, the default is a single thread. */
const SMALL_MODEL_BYTES = 16 << 20;

export type ModelSource = string | URL | ArrayBuffer | Uint8Array;

export class Model {
  readonly config: ModelConfig;
  readonly tokenizer: Tokenizer;
  /** The underlying forward pass (its architecture, stages, KV cache state) for those who want to look inside. */
  transformer: Transformer<Handle>;
  /** Where notices go (a text truncated to the model's positions...). Default console.warn. */
  onNotice: (message: string) => void = (m) => console.warn(m);

  constructor(
    readonly file: ModelFile,
    public backend: Backend<Handle> = new CpuBackend(serialExecutor) as Backend<Handle>,
  ) {
    const vocab = vocabFromMetadata(file);
    this.transformer = buildTransformer(file, backend);
    this.config = this.transformer.config;
    if (vocab.tokens.length !== this.config.vocabSize)
      throw new ModelFormatError(file.source, `the tokenizer has ${vocab.tokens.length} tokens but the model's embedding has ${this.config.vocabSize} rows`);
    this.tokenizer = new Tokenizer(vocab, file.source);
  }

  /** Stream generated text: `for await (const piece of model.generate('Once upon', { maxTokens: 50 }))`. */
  generate(prompt: string | readonly number[], options: GenerateOptions = {}): Generation {
    this.decoderOnly('generate');
    return new Generation(this.transformer, this.tokenizer, prompt, options, this.fallback());
  }

  /** On a GPU backend: how to continue on the CPU if the device goes away (the file is still in memory). */
  private fallback(): Fallback | undefined {
    if (this.backend.device === 'cpu') return undefined;
    return async () => {
      if (this.backend.device !== 'cpu') {
        try { this.backend.dispose(); } catch { /* already gone */ }
        this.backend = new CpuBackend(await cpuExecutor(undefined, this.file.tensorBytes)) as Backend<Handle>;
        this.transformer = buildTransformer(this.file, this.backend);
      }
      return this.transformer;
    };
  }

  /**
   * Chat: render the conversation with the model's chat template (or `options.template`) and stream
   * the assistant's reply, which ends at the model's end-of-turn token.
   */
  async chat(messages: readonly ChatMessage[], options: GenerateOptions & ChatTemplateOptions = {}): Promise<Generation> {
    const { tokens, stopTokenIds } = await this.chatPrompt(messages, options);
    return new Generation(this.transformer, this.tokenizer, tokens, { ...options, stopTokenIds: [...stopTokenIds, ...(options.stopTokenIds ?? [])] }, this.fallback());
  }

  /** A conversation as the prompt tokens the chat template renders, and the end-of-turn tokens that end the reply. */
  async chatPrompt(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): Promise<{ tokens: number[]; stopTokenIds: number[] }> {
    this.decoderOnly('chat');
    const rendered = await renderChat(this.tokenizer, messages, options);
    return { tokens: chatTokens(this.tokenizer, rendered), stopTokenIds: [...this.tokenizer.endOfTurnIds()] };
  }

  /**
   * After a DeviceLostError on the GPU: continue on the CPU (the file is still in memory). Returns the
   * new forward pass; the caller rebuilds its KV caches from the tokens it has.
   */
  async recover(): Promise<Transformer<Handle>> {
    const f = this.fallback();
    if (!f) throw new InvalidInputError('the model already runs on the CPU');
    return f();
  }

  /** Logits [tokens.length][vocabSize] for a token sequence, each position seeing only those before it. */
  async logits(tokens: readonly number[]): Promise<Float32Array> {
    if (tokens.length === 0) throw new InvalidInputError('logits() needs at least one token');
    const state = this.transformer.newState(Math.max(tokens.length, 1));
    try {
      return await this.transformer.forward(state, tokens, true);
    } finally {
      state.dispose();
    }
  }

  private decoderOnly(what: string): void {
    if (this.isEncoder) throw new InvalidInputError(`${this.config.name} is an encoder (${this.config.architecture}): it embeds, classifies and fills masks (embed, classify, fillMask), but cannot ${what} text`);
  }

  /**
   * Run `input` once and look inside: `capture` hook points (blocks.L.resid_pre, .attn.q/k/v/pattern/z/out,
   * .resid_mid, .mlp.post/out, .resid_post, final_norm, logits; `*` for any layer), `patch` them (new
   * values, or a function of the values there). Returns the logits (encoders: final hidden states) and
   * the captured tensors. See src/inspect.ts and docs/inspect.md.
   */
  async run(input: string | readonly number[], options: RunOptions = {}): Promise<RunResult> {
    return runWithHooks(this.transformer, this.inputTokens(input), options);
  }

  /** The logit lens: each layer's residual stream read through the output head (top-k tokens per position). */
  async logitLens(input: string | readonly number[], options: { topK?: number; layers?: readonly number[] } = {}) {
    return logitLens(this.transformer, this.inputTokens(input), options);
  }

  /**
   * Direct logit attribution: each component's share (embedding, every head, every MLP) of `target`'s
   * logit at `position` (defaults: the last position's top prediction). See src/inspect.ts.
   */
  async attribute(input: string | readonly number[], options: { target?: number; position?: number } = {}) {
    return directLogitAttribution(this.transformer, this.file, this.inputTokens(input), options);
  }

  /** A text as the model runs it (BOS / [CLS] ... [SEP] as the vocabulary says), or ids as given. */
  inputTokens(input: string | readonly number[]): number[] {
    if (typeof input === 'string') return this.isEncoder ? this.encoderTokens(input) : this.tokenizer.encode(input);
    if (!Array.isArray(input)) throw new InvalidInputError('give a text or an array of token ids');
    return [...input];
  }

  /** Is this an encoder (BERT and kin: embed, classify, fillMask) rather than a decoder (generate)? */
  get isEncoder(): boolean {
    return !!this.transformer.arch.encoder;
  }

  /**
   * Sentence embeddings, one per text, L2-normalized unless `normalize` is false.
   * Encoders: pooled from the final hidden states as `pooling` says ('mean' over the tokens, the
   * 'cls' token's, the 'last' token's; 'none': every token's, [tokens][dim] flattened), by default
   * the pooling the model was trained with (sentence-transformers' config, GGUF pooling_type). Texts
   * run together in packed batches; a text's vector does not depend on the others.
   * Decoders: the final hidden state (after the final norm) of each text's last token ('last', as
   * decoder embedding models are trained) or the mean over its tokens ('mean').
   * Texts longer than the model's positions are truncated with a notice (`truncate: false`: an error).
   */
  async embed(texts: string | readonly string[] | readonly (readonly number[])[], options: EmbedOptions = {}): Promise<Float32Array[]> {
    // Token id lists are taken as they are (with their own [CLS] / [SEP]); texts are tokenized.
    const given = Array.isArray(texts) && texts.length > 0 && texts.every((t) => Array.isArray(t)) ? (texts as readonly (readonly number[])[]) : undefined;
    const list = given ? [] : this.texts(texts as string | readonly string[], 'embed');
    if (this.isEncoder) {
      const c = this.config as BertConfig;
      const pooling = options.pooling ?? c.pooling;
      if (!['mean', 'cls', 'last', 'none'].includes(pooling)) throw new InvalidInputError(`pooling must be "mean", "cls", "last" or "none", got ${JSON.stringify(pooling)}`);
      const ids = given ?? list.map((t) => this.encoderTokens(t, options.truncate));
      const hidden = await this.transformer.encode(ids, 'hidden');
      return hidden.map((h, i) => {
        const n = ids[i]!.length;
        const v = pooling === 'none' ? h : pool(h, n, c.dim, pooling);
        return (options.normalize ?? pooling !== 'none') ? normalized(v, pooling === 'none' ? c.dim : v.length) : v;
      });
    }
    const pooling = options.pooling ?? 'last';
    if (pooling !== 'last' && pooling !== 'mean') throw new InvalidInputError(`pooling must be "last" or "mean" for a decoder model, got ${JSON.stringify(pooling)}`);
    const out: Float32Array[] = [];
    for (const text of given ?? list) {
      const tokens = typeof text !== 'string' ? [...text] : text === '' ? [this.tokenizer.bosId] : this.tokenizer.encode(text);
      const state = this.transformer.newState(Math.max(tokens.length, 1));
      const { data, width } = await this.transformer.hidden(state, tokens).finally(() => state.dispose());
      const v = pool(data, tokens.length, width, pooling);
      out.push(options.normalize ?? true ? normalized(v, width) : v);
    }
    return out;
  }

  /**
   * Classify texts with the checkpoint's classification head: per text, every label with its
   * probability (softmax of the logits), most likely first.
   */
  async classify(texts: string | readonly string[], options: { truncate?: boolean } = {}): Promise<{ label: string; score: number }[][]> {
    const c = this.config as BertConfig;
    if (!this.isEncoder || !c.labels) throw new UnsupportedModelError(this.file.source, `${c.name} has no classification head: classify() needs a *ForSequenceClassification checkpoint (an encoder with a classifier)`);
    const list = this.texts(texts, 'classify');
    const logits = await this.transformer.encode(list.map((t) => this.encoderTokens(t, options.truncate)), 'classify');
    return logits.map((row) => {
      const p = probabilities(row);
      return c.labels!.map((label, i) => ({ label, score: p[i]! })).sort((a, b) => b.score - a.score);
    });
  }

  /**
   * Fill the masks of `text` (written as the model's mask token, e.g. "[MASK]") with the masked-LM
   * head: for each mask, in order, the `topK` (default 5) most likely tokens with their probabilities.
   */
  async fillMask(text: string, options: { topK?: number; truncate?: boolean } = {}): Promise<{ id: number; token: string; score: number }[][]> {
    const c = this.config as BertConfig;
    if (!this.isEncoder || !c.hasMlmHead) throw new UnsupportedModelError(this.file.source, `${c.name} has no masked-LM head: fillMask() needs a *ForMaskedLM checkpoint`);
    if (typeof text !== 'string') throw new InvalidInputError(`fillMask() takes a string, got ${JSON.stringify(text)}`);
    const topK = options.topK ?? 5;
    if (!(Number.isInteger(topK) && topK >= 1)) throw new InvalidInputError(`topK must be a positive integer, got ${topK}`);
    const maskText = ['[MASK]', '<mask>'].find((t) => this.tokenizer.vocab.tokens.includes(t));
    if (!maskText) throw new UnsupportedModelError(this.file.source, 'the vocabulary has no mask token ([MASK] or <mask>)');
    const maskId = this.tokenizer.vocab.tokens.indexOf(maskText);
    const parts = text.split(maskText);
    if (parts.length < 2) throw new InvalidInputError(`the text has no ${maskText} to fill: write ${maskText} where a word is missing`);
    const body = parts.flatMap((p, i) => [...(i ? [maskId] : []), ...this.tokenizer.encode(p, { addSpecial: false })]);
    const tokens = this.encoderTokens(body, options.truncate);
    const picked = tokens.flatMap((t, i) => (t === maskId ? [i] : []));
    if (picked.length === 0) throw new InvalidInputError(`every ${maskText} was cut off: the text is longer than the model's ${this.config.contextLength} positions`);
    const [logits] = await this.transformer.encode([tokens], 'fill-mask', [picked]);
    const V = this.config.vocabSize;
    return picked.map((_, k) => {
      const p = probabilities(logits!.subarray(k * V, (k + 1) * V));
      const order = Array.from(p.keys()).sort((a, b) => p[b]! - p[a]!).slice(0, topK);
      return order.map((id) => ({ id, token: this.tokenizer.decode([id], { skipSpecial: false }).trim(), score: p[id]! }));
    });
  }

  /** One text or a list of them, each checked to be a string. */
  private texts(texts: string | readonly string[], what: string): readonly string[] {
    const list = typeof texts === 'string' ? [texts] : texts;
    if (!Array.isArray(list)) throw new InvalidInputError(`${what}() takes a string or an array of strings`);
    for (const t of list) if (typeof t !== 'string') throw new InvalidInputError(`${what}() takes strings, got ${JSON.stringify(t)}`);
    return list;
  }

  /** A text (or its ids without specials) as an encoder's input: [CLS] ... [SEP], cut to the model's positions (the [SEP] kept). */
  private encoderTokens(text: string | number[], truncate = true): number[] {
    const v = this.tokenizer.vocab;
    const body = typeof text === 'string' ? this.tokenizer.encode(text, { addSpecial: false }) : text;
    const specials = (v.addBos ? 1 : 0) + (v.addEos ? 1 : 0);
    const room = this.config.contextLength - specials;
    if (body.length > room) {
      if (!truncate) throw new InvalidInputError(`a text of ${body.length + specials} tokens is longer than the model's ${this.config.contextLength} positions: shorten it, or allow truncation`);
      this.onNotice(`a text of ${body.length + specials} tokens was truncated to the model's ${this.config.contextLength} positions`);
    }
    return [...(v.addBos ? [v.bosId] : []), ...body.slice(0, Math.max(room, 0)), ...(v.addEos ? [v.eosId] : [])];
  }

  encode(text: string, options?: EncodeOptions): number[] {
    return this.tokenizer.encode(text, options);
  }

  decode(ids: readonly number[]): string {
    return this.tokenizer.decode(ids);
  }

  /** Release the backend (worker threads, GPU device). The model cannot compute afterwards. */
  dispose(): void {
    this.backend.dispose();
  }
}

function withNotice(m: Model, onNotice: LoadOptions['onNotice']): Model {
  if (onNotice) m.onNotice = onNotice;
  return m;
}

async function bytesOf(src: ModelSource | undefined, what: string): Promise<{ bytes: Uint8Array; source: string } | undefined> {
  if (src === undefined) return undefined;
  if (src instanceof Uint8Array) return { bytes: src, source: `<${what} bytes>` };
  if (src instanceof ArrayBuffer) return { bytes: new Uint8Array(src), source: `<${what} bytes>` };
  const isUrl = src instanceof URL || /^(https?|blob|data):/.test(src);
  if (isUrl && !(src instanceof URL && src.protocol === 'file:')) {
    const res = await fetchOrSay(src);
    if (!res.ok) throw new InvalidInputError(`${String(src)}: HTTP ${res.status} ${res.statusText}`);
    return { bytes: new Uint8Array(await res.arrayBuffer()), source: String(src) };
  }
  const io = await import('./load/node-io.js');
  return io.readFileForModel(src);
}

/** fetch(), its network failures (no such host, refused, offline) as a DownloadError naming the URL. */
async function fetchOrSay(url: string | URL): Promise<Response> {
  try {
    return await fetch(url);
  } catch (e) {
    const cause = (e as { cause?: { message?: string } })?.cause?.message;
    throw new DownloadError(String(url), `could not be fetched (${(e as Error)?.message ?? e}${cause ? `: ${cause}` : ''}): check the address and the network`);
  }
}

/**
 * Step 1's result: a local path (file or folder) with its size, bytes already in memory, or a URL's
 * response whose body is still to be read (its size from Content-Length; Infinity when not given).
 */
type Resolved = { path: string; size: number } | { bytes: Uint8Array; source: string; size: number } | { response: Response; source: string; size: number };

/** Step 1: a manifest name is pulled into the cache, a path stays a path, a URL is requested, bytes are bytes. */
async function resolveSource(source: ModelSource): Promise<Resolved> {
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  const isPath = isNode && (typeof source === 'string' ? !/^(https?|blob|data):/.test(source) : source instanceof URL && source.protocol === 'file:');
  const isUrl = source instanceof URL || (typeof source === 'string' && /^(https?|blob|data):/.test(source));
  if (isUrl && !isPath) {
    const response = await fetchOrSay(source);
    if (!response.ok) throw new InvalidInputError(`${String(source)}: HTTP ${response.status} ${response.statusText}`);
    // (a compressed body's Content-Length is not the size of what it decodes to)
    const length = response.headers.get('content-length'), coding = response.headers.get('content-encoding');
    const size = length !== null && /^\d+$/.test(length) && (!coding || coding === 'identity') ? Number(length) : Infinity;
    return { response, source: String(source), size };
  }
  if (!isPath) {
    const got = (await bytesOf(source, 'model'))!;
    return { ...got, size: got.bytes.byteLength };
  }
  const io = await import('./load/node-io.js');
  const path = source instanceof URL ? source.pathname : await io.resolveModelName(String(source));
  return { path, size: io.modelSize(path) };
}

/** Step 2: the bytes as the one model-file form: GGUF, a llama2.c checkpoint (with its tokenizer), or a Hugging Face folder. */
async function parseSource(r: Resolved, memory: Pick<MatmulExecutor, 'allocBytes' | 'release'>, tokenizerSource?: ModelSource, onProgress?: LoadOptions['onProgress']): Promise<ModelFile> {
  const tokenizer = await bytesOf(tokenizerSource, 'tokenizer');
  if ('response' in r) return readModelFile(await readBody(r.response, r.source, r.size, memory, onProgress), r.source, tokenizer);
  if ('bytes' in r) return readModelFile(r.bytes, r.source, tokenizer);
  const io = await import('./load/node-io.js');
  let loaded = 0;
  return io.readModelPath(r.path, (n) => memory.allocBytes(n), tokenizer, onProgress && ((n) => onProgress((loaded += n), r.size)));
}

/**
 * A response's body read into memory from `memory` (the CPU executor's, where the model is used in
 * place), chunk by chunk, so that a fetched model is not held twice. With a size that turns out wrong,
 * or none (a compressed or chunked body), the chunks are gathered and copied into one block at the end.
 */
async function readBody(response: Response, source: string, size: number, memory: Pick<MatmulExecutor, 'allocBytes' | 'release'>, onProgress?: LoadOptions['onProgress']): Promise<Uint8Array> {
  if (!response.body) return copyInto(new Uint8Array(await response.arrayBuffer()), (n) => memory.allocBytes(n));
  const reader = response.body.getReader();
  const block = Number.isFinite(size) ? memory.allocBytes(size) : undefined;
  const spill: Uint8Array[] = [];
  let inBlock = 0, loaded = 0;
  const stopped = (why: string) => {
    if (block) memory.release?.(block);
    return new DownloadError(source, `the download stopped after ${loaded}${Number.isFinite(size) ? ` of ${size}` : ''} bytes (${why}); try again`);
  };
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (e) {
      throw stopped(String((e as Error)?.message ?? e));
    }
    if (chunk.done) break;
    const bytes = chunk.value;
    if (block && spill.length === 0 && inBlock + bytes.length <= block.length) {
      block.set(bytes, inBlock);
      inBlock += bytes.length;
    } else spill.push(bytes);
    loaded += bytes.length;
    onProgress?.(loaded, Number.isFinite(size) ? Math.max(size, loaded) : loaded);
  }
  if (Number.isFinite(size) && loaded < size) throw stopped('the connection closed early');
  if (block && spill.length === 0) return block;
  const all = memory.allocBytes(loaded);
  if (block) all.set(block.subarray(0, inBlock));
  let at = inBlock;
  for (const c of spill) { all.set(c, at); at += c.length; }
  if (block) memory.release?.(block);
  return all;
}

function copyInto(bytes: Uint8Array, allocBytes: (n: number) => Uint8Array): Uint8Array {
  const block = allocBytes(bytes.length);
  block.set(bytes);
  return block;
}

/**
 * The CPU matmul executor: WebAssembly SIMD kernels over a shared memory where the runtime has them, on
 * several threads for models of 16 MB or more (unless `threads` says otherwise): Node's worker threads,
 * or a browser's Web Workers on a cross-origin isolated page (elsewhere a browser runs them on the
 * calling thread). Without WebAssembly SIMD, or with threads: 0, the plain JavaScript kernels on the
 * calling thread.
 */
async function cpuExecutor(threads: number | undefined, modelBytes: number, options: ExecutorChoice = {}): Promise<MatmulExecutor> {
  return started(await launchCpuExecutor(threads, modelBytes, options), modelBytes, options);
}

/** What a CPU executor is made with (LoadOptions' part of it). */
type ExecutorChoice = { activations?: LoadOptions['activations']; int8Activations?: boolean; relaxedSimd?: boolean; onNotice?: (message: string) => void };

/** An executor as launchCpuExecutor returns it: with Node's worker threads, `ready` says when they run. */
interface Launch {
  exec: MatmulExecutor;
  ready?: Promise<void>;
}

/** The launched executor once its threads run; where one fails to start, one thread instead (a notice says so). */
async function started(launch: Launch, modelBytes: number, options: ExecutorChoice): Promise<MatmulExecutor> {
  if (!launch.ready) return launch.exec;
  try {
    await launch.ready;
    return launch.exec;
  } catch (e) {
    (options.onNotice ?? console.warn)(`${(e as Error).message}; running on one thread`);
    return (await launchCpuExecutor(1, modelBytes, options)).exec;
  }
}

/** cpuExecutor's choice, returned while Node's worker threads start (see launchExecutor). */
async function launchCpuExecutor(threads: number | undefined, modelBytes: number, options: ExecutorChoice = {}): Promise<Launch> {
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 0 && threads <= 64)) throw new InvalidInputError(`threads must be an integer from 0 to 64 (0: the plain JavaScript kernels), got ${threads}`);
  if (threads === 0) return { exec: serialExecutor };
  const { wasmSimdAvailable } = await import('./backend/matmul-wasm.js');
  if (!wasmSimdAvailable()) return { exec: serialExecutor };
  // (relaxedSimd: true means "where the runtime has it", the executor's default)
  const kernels = { activations: options.activations ?? (options.int8Activations ? 'int8' as const : undefined), relaxedSimd: options.relaxedSimd === false ? false : undefined };
  const notice = options.onNotice ?? console.warn;
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  if (isNode) {
    // (the kernels' module from the cache on disk, emitted and kept there the first time)
    const [{ useKernelStore }, { kernelStore }] = await Promise.all([import('./backend/wasm-executor.js'), import('./load/kernel-cache.js')]);
    useKernelStore(kernelStore());
  }
  // Small models run faster on one thread: waking workers costs more than their matmuls.
  const small = modelBytes < SMALL_MODEL_BYTES;
  if (isNode && !(small && threads === undefined) && threads !== 1) {
    const { launchWorkerExecutor } = await import('./backend/parallel.js');
    try {
      return launchWorkerExecutor(threads, kernels); // (undefined: a thread per core, at most 8)
    } catch (e) {
      notice(`${(e as Error).message}; running on one thread`);
    }
  } else if (!isNode) {
    // A browser: Web Workers share the memory on a cross-origin isolated page; elsewhere one thread.
    const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
    const n = threads ?? (small ? 1 : Math.min(cores, 8));
    const canShare = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true && typeof Worker === 'function';
    if (n > 1 && canShare) {
      const { createWebWorkerExecutor } = await import('./backend/web-workers.js');
      try {
        return { exec: await createWebWorkerExecutor(n, kernels) };
      } catch (e) {
        notice(`${(e as Error).message}; running on one thread`);
      }
    } else if (threads !== undefined && threads > 1)
      notice(`threads: ${threads} needs a cross-origin isolated page (served with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp) for Web Workers to share the model's memory; running on one thread`);
  }
  // One thread; if even that cannot start (a device that will not reserve the memory's 4 GiB of
  // address space), the plain JavaScript kernels.
  const { WasmExecutor } = await import('./backend/wasm-executor.js');
  try {
    return { exec: new WasmExecutor(kernels) };
  } catch (e) {
    notice(`the WebAssembly kernels could not start (${(e as Error).message}); running the plain JavaScript kernels, which are much slower`);
    return { exec: serialExecutor };
  }
}

/**
 * Load a model. In Node `source` is a path (a GGUF file, a llama2.c .bin, or a Hugging Face folder with
 * config.json and safetensors) or a model name from the manifest (downloaded once, see `pocketlm pull`);
 * in any runtime it can be a URL, an ArrayBuffer or bytes. Three steps: resolve the source to local
 * bytes, parse its format into the one model-file form, build its architecture on the backend.
 */
export async function loadModel(source: ModelSource, options: LoadOptions = {}): Promise<Model> {
  const device = options.device ?? 'auto';
  if (device !== 'cpu' && device !== 'auto' && device !== 'webgpu') throw new InvalidInputError(`unknown device "${String(device)}": use cpu, webgpu or auto`);
  const act = options.activations;
  if (act !== undefined && act !== 'int16' && act !== 'int8' && act !== 'f32') throw new InvalidInputError(`unknown activations "${String(act)}": use int16 (the default), int8 or f32`);
  if (options.int8Activations && act !== undefined && act !== 'int8') throw new InvalidInputError(`int8Activations: true and activations: '${act}' contradict each other: give activations only`);
  const resolved = await resolveSource(source);
  // The backend comes before the bytes are read: the CPU reads a model straight into its executor's
  // memory (no copy); a WebGPU model copies its weights to the GPU, so its file goes to plain memory.
  let gpu: Backend<Handle> | undefined;
  // 'auto' in Node asks a child process first, so that Dawn's own console output about a software
  // adapter never reaches the user (src/load/gpu-probe.ts); a browser has nothing to hide.
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  const passOver = device === 'auto' && isNode ? await (await import('./load/gpu-probe.js')).noHardwareAdapter() : undefined;
  if (passOver) (options.onNotice ?? console.warn)(`${passOver}; running on the CPU (--device webgpu to insist)`);
  else if (device !== 'cpu') {
    const { createWebGPUBackend } = await import('./backend/webgpu.js');
    try {
      gpu = (await createWebGPUBackend({ hardwareOnly: device === 'auto' })) as Backend<Handle>;
    } catch (e) {
      if (device === 'webgpu') throw e;
      (options.onNotice ?? console.warn)(`${(e as Error).message}; running on the CPU (--device webgpu to insist)`);
    }
  }
  let launch: Launch = gpu ? { exec: serialExecutor } : await launchCpuExecutor(options.threads, resolved.size, options);
  // A file on disk is read into the executor's memory while its worker threads start (where they fail,
  // again into the one thread's memory); anything else once they run.
  if (!('path' in resolved)) launch = { exec: await started(launch, resolved.size, options) };
  let exec = launch.exec;
  try {
    let file = await parseSource(resolved, exec, options.tokenizer, options.onProgress);
    const running = await started(launch, resolved.size, options);
    if (running !== exec) {
      exec = running;
      file = await parseSource(resolved, exec, options.tokenizer, options.onProgress);
    }
    try {
      return withNotice(new Model(file, gpu ?? (new CpuBackend(exec) as Backend<Handle>)), options.onNotice);
    } catch (e) {
      // A model the adapter cannot hold runs on the CPU under 'auto'; 'webgpu' insists, and says why.
      if (!(gpu && device === 'auto' && e instanceof OutOfMemoryError)) throw e;
      (options.onNotice ?? console.warn)(`the model does not fit this GPU (${e.message}); running on the CPU (--device webgpu to insist)`);
      gpu.dispose();
      gpu = undefined;
      return withNotice(new Model(file, new CpuBackend(await cpuExecutor(options.threads, resolved.size, options)) as Backend<Handle>), options.onNotice);
    }
  } catch (e) {
    gpu?.dispose();
    exec.dispose();
    throw e;
  }
}
