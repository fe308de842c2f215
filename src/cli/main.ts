#!/usr/bin/env node
// pocketlm command line. Generated text goes to stdout as it is produced; everything else (progress,
// timings, notices, errors) goes to stderr.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ChatMessage } from '../tokenizer/chat.js';
import type { GenerateOptions, Generation } from '../generate.js';
import { loadTokenizer } from '../tokenizer/load.js';
import { PocketLMError, InvalidInputError } from '../base/errors.js';
import { validateSampling } from '../stages/sampling.js';
import { loadModel, type Device, type LoadOptions, type Model } from '../engine.js';
import type { Pooling } from '../arch/bert.js';
import { probabilities, surprisal } from '../inspect.js';
import { attentionPng, renderHtml, type InspectReport } from './inspect-report.js';
import { parseGGUF } from '../format/gguf.js';
import { readLlama2cHeader } from '../format/llama2c.js';
import { modelFileFromGGUF, isGGUF, readModelFile, type ModelFile } from '../format/model-file.js';
import { modelConfig } from '../arch/index.js';
import { metaString } from '../format/gguf.js';
import { typeName } from '../base/tensor.js';
import { convertFolder, convertLlama2c, pull, readFileShared, readModelPath, writeGGUFFile } from '../load/node-io.js';
import { QUANTIZE_TARGETS, quantizeModel, type QuantizeTarget } from '../quant/quantize.js';
import { loadManifest, type PullOptions } from '../../weights/fetcher.js';
import { compileSchema, type JsonSchema } from '../constrain/json.js';
import { serve } from '../server/http.js';
import { Scheduler } from '../server/scheduler.js';

const HELP = `pocketlm: run small language models (Llama, Mistral, Qwen, Gemma, Phi, GPT-2, Pythia, OPT; BERT,
MiniLM, DistilBERT, ALBERT) on the CPU or WebGPU, from GGUF files, Hugging Face folders or llama2.c checkpoints

usage:
  pocketlm generate [--model NAME_OR_PATH] [options] [PROMPT]
  pocketlm chat [--model NAME_OR_PATH] [--system S] [options]      an interactive conversation
  pocketlm serve [--model NAME_OR_PATH | --models-dir DIR] [options] an OpenAI-compatible HTTP server
  pocketlm embed --model PATH [--pooling P] [--format jsonl|npy] TEXT...   sentence embeddings
  pocketlm similarity --model PATH TEXT_A TEXT_B                   cosine similarity of two embeddings
  pocketlm classify --model PATH TEXT...                           labels with probabilities (a classifier)
  pocketlm fill-mask --model PATH [--top-k K] TEXT                 the likely words for each [MASK]
  pocketlm inspect --model PATH [--logit-lens] [--attention] [--out report.html | --json] TEXT   look inside one run
  pocketlm tokenize --model PATH [--no-special] TEXT               prints the token ids
  pocketlm info PATH [--tokenizer TOK.bin]                         family, hyper-parameters, tensors
  pocketlm convert FOLDER -o OUT.gguf                              a Hugging Face folder to GGUF
  pocketlm convert MODEL.bin --tokenizer TOK.bin -o OUT.gguf       a llama2.c checkpoint to GGUF
  pocketlm quantize IN.gguf OUT.gguf --type q8_0|q4_0|q4_k|q6_k|q4_k_m|q5_k|q5_k_m|q4_1|q5_1 [--tokenizer TOK.bin for a llama2.c IN]
  pocketlm bench [--device cpu|webgpu|auto] [--kernels all|matvec,matmul,attention,rmsnorm,layernorm,rope,embedding,argmax]
                 [--model PATH] [--quick] [--json OUT.json] [--markdown OUT.md] [--peak-bandwidth GBPS] [--quiet]
  pocketlm bench --compare A.json B.json ... [--markdown OUT.md] [--svg OUT.svg]
  pocketlm pull NAME
  pocketlm models

Run pocketlm COMMAND --help for a command's options and an example.

environment:
  POCKETLM_CACHE    where pulled models and the CPU kernels' module are kept (default ~/.cache/pocketlm)
  POCKETLM_MIRROR   a directory or URL with the model files, used instead of huggingface.co`;

/** Each command's own help: what it does, its flags, an example. */
const COMMAND_HELP: Record<string, string> = {
  generate: `pocketlm generate [--model NAME_OR_PATH] [options] [PROMPT]: stream a continuation of PROMPT

options:
  --model NAME_OR_PATH   a .gguf / llama2.c .bin file, a Hugging Face folder, or a known model name (default: stories260K)
  --tokenizer PATH       tokenizer .bin for a llama2.c checkpoint
  --device cpu|webgpu|auto   where to compute (default auto: WebGPU on a hardware adapter, else the CPU)
  --temperature T        >= 0; 0 = greedy (default 0.8)
  --top-k K              integer >= 0 (default 40; 0 = off)
  --top-p P              in (0, 1] (default 0.95; 1 = off)
  --min-p P              in [0, 1] (default 0.05; 0 = off)
  --repeat-penalty R     > 0 (default 1 = off)
  --presence-penalty P   in [-2, 2]: subtract P from tokens seen in the last repeat-last-n (default 0)
  --frequency-penalty F  in [-2, 2]: subtract F x their count (default 0)
  --repeat-last-n N      tokens the penalties look back over, >= 0 (default 64)
  --seed S               integer RNG seed for reproducible sampling
  --max-tokens N         integer >= 0 (default 256)
  --stop S               stop before this string (repeatable; \\n and \\t are newline and tab)
  --ignore-eos           keep generating past the end-of-sequence token
  --json                 write a JSON object (constrained decoding: only tokens that keep it valid)
  --json-schema FILE     write a JSON document valid for this JSON Schema (see docs/server.md for the keywords enforced)
  --ctx-size N           context (KV cache) length, >= 1 (default: the model's, at most 4096)
  --threads N            CPU threads, 0-64 (default: all cores, at most 8; 0 = the plain JavaScript kernels)
  --activations A        CPU, quantized models: what the weights multiply: int16 (default: inputs
                         rounded to 16 bits per 32 values, integer products), int8 (8 bits, as
                         llama.cpp's CPU backend: fastest, least exact) or f32 (exact, slowest);
                         see docs/quantization.md
  --int8-activations     the same as --activations int8
  --chat                 wrap PROMPT in the model's chat template as a user turn
  --system S             a system message (implies --chat)
  --chat-template FILE   a Jinja chat template to use instead of the model's
An empty PROMPT starts from the BOS token alone. Flags take "--flag value" or "--flag=value".

example:
  pocketlm generate --model stories260K --temperature 0 --max-tokens 64 "Once upon a time"`,
  chat: `pocketlm chat [--model NAME_OR_PATH] [--system S] [options]: an interactive conversation on stdin
(one user turn per line; an empty line, /exit or Ctrl-D ends). Takes generate's options. Each turn
reuses the KV cache of the conversation so far: only the new turn is run through the model.

example:
  pocketlm chat --model path/to/chat-model.gguf --system "Be brief." --temperature 0.7`,
  serve: `pocketlm serve [--model NAME_OR_PATH | --models-dir DIR] [options]: an OpenAI-compatible HTTP server
(POST /v1/completions, /v1/chat/completions, /v1/embeddings; GET /v1/models, /health, /metrics; see docs/server.md)

  --model NAME_OR_PATH   the model to serve (a file, a Hugging Face folder or a known name)
  --models-dir DIR       or every .gguf file and Hugging Face folder in DIR, by name, loaded on first use
  --max-models N         models from --models-dir resident at once (default 1)
  --host H               address to listen on (default 127.0.0.1: this machine only)
  --port P               default 8080
  --parallel N           sequences decoded together, 1-32 (default 4); each has a KV cache of --ctx-size
  --queue N              requests that may wait for a slot before 503 (default 64)
  --ctx-size N           each slot's context length (default: the model's, at most 4096)
  --api-key KEY          require "Authorization: Bearer KEY" (also read from POCKETLM_API_KEY)
  --cors ORIGIN          let browsers from ORIGIN call it ("*" for any; default: no CORS headers)
  --max-body BYTES       largest request body (default 1048576)
  --chat-template FILE   a Jinja chat template for models without one
  --device, --threads, --activations, --int8-activations, --tokenizer   as for generate
SIGINT / SIGTERM: stop accepting, let running generations finish (up to 10 s), then exit.

example:
  pocketlm serve --model stories260K --port 8080 --parallel 8
  curl http://127.0.0.1:8080/v1/completions -H 'content-type: application/json' -d '{"prompt": "Once upon a time", "max_tokens": 32}'`,
  embed: `pocketlm embed --model PATH [options] TEXT...: one sentence embedding per TEXT (or per stdin line with
no TEXT), as JSON lines {"text", "embedding"} on stdout, or one .npy array [texts][dim] (float32)

  --model PATH           an encoder (BERT, MiniLM, DistilBERT, ALBERT: GGUF or Hugging Face folder), or a decoder
  --pooling P            mean, cls, last or none (default: the model's own: sentence-transformers' config,
                         GGUF pooling_type; decoders: last)
  --no-normalize         leave the vectors as pooled (default: unit length)
  --no-truncate          refuse texts longer than the model's positions (default: cut them, with a notice)
  --format jsonl|npy     default jsonl; npy writes binary to stdout (redirect it to a file)
  --device, --threads    as for generate

example:
  pocketlm embed --model ~/models/all-MiniLM-L6-v2 "A cat sat on the mat." "A dog lay on the rug."`,
  similarity: `pocketlm similarity --model PATH TEXT_A TEXT_B: the cosine similarity of the two texts' embeddings (-1..1)

  --pooling P, --device, --threads   as for embed

example:
  pocketlm similarity --model ~/models/all-MiniLM-L6-v2 "How old are you?" "What is your age?"`,
  classify: `pocketlm classify --model PATH TEXT...: each TEXT's labels with probabilities, most likely first (JSON lines)

  --model PATH           a *ForSequenceClassification checkpoint (its id2label names the labels)
  --device, --threads    as for generate

example:
  pocketlm classify --model ~/models/distilbert-sst2 "What a wonderful film."`,
  'fill-mask': `pocketlm fill-mask --model PATH [--top-k K] TEXT: the most likely tokens for each [MASK] in TEXT (JSON, one line per mask)

  --model PATH           a *ForMaskedLM checkpoint
  --top-k K              how many per mask (default 5)
  --device, --threads    as for generate

example:
  pocketlm fill-mask --model ~/models/bert-base-uncased "Paris is the [MASK] of France."`,
  inspect: `pocketlm inspect --model PATH [options] TEXT: run TEXT once and look inside (see docs/inspect.md)

  --logit-lens           each layer's residual stream read through the output head (decoders)
  --attribution          direct logit attribution of the last position's prediction: the embedding,
                         every head and every MLP's share of its logit (--target ID for another token)
  --attention            attention patterns per head, as heat maps
  --layers LIST          layers to show: all (default), 3, 0-5 or 0,2,4
  --heads LIST           heads to show: all (default) or a list as for --layers
  --top-k K              tokens per logit-lens cell (default 5)
  --out FILE.html        a self-contained HTML report (default inspect.html): surprisal along the text,
                         residual norms per layer, and what the flags above ask for
  --json                 the same analysis as JSON on stdout instead
  --png DIR              also write the attention maps as DIR/attention-L.png (heads side by side)
  --patch POINT --from TEXT2   activation patching: run TEXT with the hook point POINT (e.g.
                         blocks.3.resid_post) taken from a run of TEXT2 (same number of tokens); prints
                         the next-token predictions of TEXT, TEXT2 and the patched run
  --device, --threads    as for generate

example:
  pocketlm inspect --model stories260K --logit-lens --attention --layers 0-2 --out report.html "Once upon a time"
  pocketlm inspect --model stories260K --patch blocks.2.resid_post --from "Tom went to the park" "Sue went to the park"`,
  tokenize: `pocketlm tokenize --model PATH [--no-special] TEXT: print the token ids of TEXT

  --model PATH           a GGUF file, a tokenizer.json (or its folder) or a llama2.c tokenizer .bin
  --no-special           add no BOS/EOS, and read special-token text (e.g. "<s>") as plain text

example:
  pocketlm tokenize --model path/to/tokenizer.json "Hello world"`,
  info: `pocketlm info PATH [--tokenizer TOK.bin]: a model's family, hyper-parameters, options and tensors

PATH is a GGUF file, a Hugging Face folder, or a llama2.c checkpoint (with --tokenizer for the full summary).

example:
  pocketlm info path/to/model.gguf`,
  convert: `pocketlm convert FOLDER -o OUT.gguf            a Hugging Face folder to GGUF
pocketlm convert MODEL.bin --tokenizer TOK.bin -o OUT.gguf   a llama2.c checkpoint to GGUF

  -o, --output OUT.gguf  where to write (replaced atomically)
  --tokenizer TOK.bin    the llama2.c checkpoint's tokenizer

example:
  pocketlm convert ~/models/Qwen2.5-0.5B-Instruct -o qwen2.5-0.5b.gguf`,
  quantize: `pocketlm quantize IN.gguf OUT.gguf --type TYPE [--tokenizer TOK.bin] [--quiet]: quantize a model's matrices

  --type TYPE            q8_0, q4_0, q4_1, q5_1, q4_k, q5_k, q6_k, q4_k_m or q5_k_m (see docs/quantization.md)
  --tokenizer TOK.bin    for a llama2.c IN
  --quiet                no progress, no per-tensor notes

example:
  pocketlm quantize model-f32.gguf model-q4_k_m.gguf --type q4_k_m`,
  bench: `pocketlm bench [options]: kernel micro-benchmarks on this machine's CPU or GPU, checked against references

  --device cpu|webgpu|auto
  --kernels LIST         all, or some of matvec,matmul,attention,rmsnorm,layernorm,rope,embedding,argmax
  --model PATH           also time a model end to end (beside llama.cpp where node-llama-cpp is installed)
  --quick                smaller shapes, fewer runs
  --json OUT.json, --markdown OUT.md   write the report
  --peak-bandwidth GBPS  the memory's peak, for the % of peak column
  --quiet                no progress line
pocketlm bench --compare A.json B.json ... [--markdown OUT.md] [--svg OUT.svg]: reports side by side

example:
  pocketlm bench --device webgpu --json mine.json`,
  pull: `pocketlm pull NAME: download a known model into the cache (see pocketlm models); prints its path

example:
  pocketlm pull stories15M`,
  models: `pocketlm models: the models pocketlm knows by name`,
};

function progress(): PullOptions {
  const tty = process.stderr.isTTY;
  let last = 0;
  return {
    onProgress(file, received, total) {
      const now = Date.now();
      if (!tty || (now - last < 100 && received !== total)) return;
      last = now;
      const mb = (n: number) => (n / 1e6).toFixed(1);
      const frac = total ? received / total : 0;
      const bar = total ? '[' + '#'.repeat(Math.round(frac * 30)).padEnd(30, '-') + `] ${(frac * 100).toFixed(0).padStart(3)}% ` : '';
      process.stderr.write(`\r${file} ${bar}${mb(received)}${total ? '/' + mb(total) : ''} MB`);
      if (total && received === total) process.stderr.write('\n');
    },
    onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
  };
}

/** Shell-friendly escapes in --stop: \\n, \\t and \\\\. */
function unescape(s: string): string {
  return s.replace(/\\([nt\\])/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : '\\'));
}

function num(v: string | undefined, flag: string, integer = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new InvalidInputError(`--${flag} expects ${integer ? 'an integer' : 'a number'}, got "${v}"`);
  return n;
}

/** Flags shared by generate and chat: the model, the device, sampling and length. */
const MODEL_FLAGS = {
  model: { type: 'string' }, tokenizer: { type: 'string' }, device: { type: 'string' }, threads: { type: 'string' }, activations: { type: 'string' }, 'int8-activations': { type: 'boolean' },
  temperature: { type: 'string' }, 'top-k': { type: 'string' }, 'top-p': { type: 'string' }, 'min-p': { type: 'string' },
  'repeat-penalty': { type: 'string' }, 'repeat-last-n': { type: 'string' }, seed: { type: 'string' },
  'presence-penalty': { type: 'string' }, 'frequency-penalty': { type: 'string' }, json: { type: 'boolean' }, 'json-schema': { type: 'string' },
  'max-tokens': { type: 'string' }, stop: { type: 'string', multiple: true }, 'ignore-eos': { type: 'boolean' },
  'ctx-size': { type: 'string' }, system: { type: 'string' }, 'chat-template': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

type ModelFlags = { [K in keyof typeof MODEL_FLAGS]?: (typeof MODEL_FLAGS)[K] extends { multiple: true } ? string[] : (typeof MODEL_FLAGS)[K] extends { type: 'boolean' } ? boolean : string };

/** --activations (and --int8-activations, its older spelling for int8), checked before any work. */
function activationsFlag(v: { activations?: string; 'int8-activations'?: boolean }): LoadOptions['activations'] {
  const a = v.activations;
  if (a !== undefined && a !== 'int16' && a !== 'int8' && a !== 'f32') throw new InvalidInputError(`--activations must be int16, int8 or f32, got "${a}"`);
  if (v['int8-activations'] && a !== undefined && a !== 'int8') throw new InvalidInputError(`--int8-activations contradicts --activations ${a}: give one of them`);
  return v['int8-activations'] ? 'int8' : a;
}

function deviceFlag(v: ModelFlags): Device {
  const device = (v.device ?? 'auto') as Device;
  if (!['cpu', 'webgpu', 'auto'].includes(device)) throw new InvalidInputError(`--device must be cpu, webgpu or auto, got "${device}"`);
  return device;
}

/** The generation options the flags ask for, checked once (bad values fail before any work). */
function generateOptions(v: ModelFlags): GenerateOptions & { template?: string } {
  const o = sampledOptions(v);
  validateSampling(o);
  const range = (value: number | undefined, flag: string, ok: (x: number) => boolean, valid: string) => {
    if (value !== undefined && !ok(value)) throw new InvalidInputError(`--${flag} must be ${valid}, got ${value}`);
  };
  range(o.maxTokens, 'max-tokens', (x) => x >= 0, 'an integer >= 0');
  range(o.contextLength, 'ctx-size', (x) => x >= 1, 'an integer >= 1');
  range(num(v.threads, 'threads', true), 'threads', (x) => x >= 0 && x <= 64, 'an integer from 0 to 64 (0: the plain JavaScript kernels)');
  return o;
}

function sampledOptions(v: ModelFlags): GenerateOptions & { template?: string } {
  return {
    temperature: num(v.temperature, 'temperature'),
    topK: num(v['top-k'], 'top-k', true),
    topP: num(v['top-p'], 'top-p'),
    minP: num(v['min-p'], 'min-p'),
    repeatPenalty: num(v['repeat-penalty'], 'repeat-penalty'),
    repeatLastN: num(v['repeat-last-n'], 'repeat-last-n', true),
    presencePenalty: num(v['presence-penalty'], 'presence-penalty'),
    frequencyPenalty: num(v['frequency-penalty'], 'frequency-penalty'),
    json: v['json-schema'] !== undefined ? { schema: readSchema(v['json-schema']) } : v.json ? 'object' : undefined,
    seed: num(v.seed, 'seed', true),
    maxTokens: num(v['max-tokens'], 'max-tokens', true),
    stop: v.stop?.map(unescape),
    ignoreEos: v['ignore-eos'],
    contextLength: num(v['ctx-size'], 'ctx-size', true),
    template: v['chat-template'] ? readTemplate(v['chat-template']) : undefined,
    onNotice: (m: string) => process.stderr.write(`pocketlm: ${m}\n`),
  };
}

async function cmdGenerate(argv: string[]): Promise<void> {
  const { values: v, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...MODEL_FLAGS, chat: { type: 'boolean' } } });
  const options = generateOptions(v);
  const model = await openModel(v.model, deviceFlag(v), v.tokenizer, v.threads, activationsFlag(v));
  try {
    const prompt = positionals.join(' ');
    const gen = v.chat || v.system !== undefined
      ? await model.chat([...(v.system !== undefined ? [{ role: 'system', content: v.system }] : []), { role: 'user', content: prompt }], options)
      : model.generate(prompt, options);
    for await (const piece of gen) process.stdout.write(piece);
    process.stdout.write('\n');
    reportSpeed(model, gen);
  } finally {
    model.dispose();
  }
}

async function openModel(name: string | undefined, device: Device, tokenizer: string | undefined, threads: string | undefined, activations?: LoadOptions['activations']): Promise<Model> {
  const model = name ?? loadManifest().default;
  let path = model;
  if (!existsSync(model) && loadManifest().models[model]) path = (await pull(model, progress())).path;
  // A progress line while a large model is read (a terminal only, and only past 64 MB: small ones load at once).
  const tty = process.stderr.isTTY;
  let shown = false;
  const onProgress = (done: number, total: number) => {
    if (!tty || total < 64 << 20) return;
    shown = true;
    const frac = total ? done / total : 0;
    process.stderr.write(`\rloading ${path} [${'#'.repeat(Math.round(frac * 30)).padEnd(30, '-')}] ${(done / 1e6).toFixed(0)}/${(total / 1e6).toFixed(0)} MB`);
  };
  try {
    return await loadModel(path, { device, tokenizer, threads: num(threads, 'threads', true), activations, onProgress, onNotice: (m) => process.stderr.write(`pocketlm: ${m}\n`) });
  } finally {
    if (shown) process.stderr.write('\r\x1b[K');
  }
}

function readSchema(path: string): JsonSchema {
  if (!existsSync(path)) throw new InvalidInputError(`--json-schema ${path}: no such file`);
  let schema: JsonSchema;
  try {
    schema = JSON.parse(readFileSync(path, 'utf8')) as JsonSchema;
  } catch (e) {
    throw new InvalidInputError(`--json-schema ${path}: not valid JSON (${(e as Error).message})`);
  }
  compileSchema(schema); // refuse what cannot be enforced before loading anything
  return schema;
}

function readTemplate(path: string): string {
  if (!existsSync(path)) throw new InvalidInputError(`--chat-template ${path}: no such file`);
  return readFileSync(path, 'utf8');
}

function reportSpeed(model: Model, gen: Generation): void {
  const s = gen.stats;
  const rate = (n: number, ms: number) => (ms > 0 ? ((n * 1000) / ms).toFixed(1) : '-');
  process.stderr.write(
    `[${model.config.name} on ${model.backend.name}] prompt: ${s.promptTokens} tokens, ${rate(s.promptTokens, s.promptMs)} tok/s | ` +
      `generation: ${s.generatedTokens} tokens, ${rate(Math.max(0, s.generatedTokens - 1), s.generateMs)} tok/s | stop: ${s.stopReason}\n`,
  );
}

async function cmdChat(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({ args: argv, options: MODEL_FLAGS });
  const options = generateOptions(v);
  const model = await openModel(v.model, deviceFlag(v), v.tokenizer, v.threads, activationsFlag(v));
  const messages: ChatMessage[] = v.system !== undefined ? [{ role: 'system', content: v.system }] : [];
  // One slot: each turn's prompt begins with the conversation so far, whose KV cache it reuses.
  const scheduler = new Scheduler(model, { parallel: 1, contextLength: options.contextLength, onNotice: options.onNotice });
  const tty = process.stdin.isTTY;
  const rl = createInterface({ input: process.stdin, output: tty ? process.stderr : undefined, terminal: tty });
  if (tty) process.stderr.write(`chatting with ${model.config.name}; an empty line or Ctrl-D ends\n`);
  try {
    if (tty) rl.setPrompt('> '), rl.prompt();
    for await (const line of rl) {
      if (line.trim() === '' || line.trim() === '/exit') break;
      messages.push({ role: 'user', content: line });
      const { tokens, stopTokenIds } = await model.chatPrompt(messages, { template: options.template });
      const job = scheduler.submit(tokens, { ...options, stopTokenIds });
      let reply = '';
      for await (const piece of job) {
        reply += piece;
        process.stdout.write(piece);
      }
      process.stdout.write('\n');
      messages.push({ role: 'assistant', content: reply });
      if (tty) rl.prompt();
    }
  } finally {
    rl.close();
    model.dispose();
  }
}

async function cmdServe(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, 'models-dir': { type: 'string' }, 'max-models': { type: 'string' }, host: { type: 'string' }, port: { type: 'string' },
      parallel: { type: 'string' }, queue: { type: 'string' }, 'ctx-size': { type: 'string' }, 'api-key': { type: 'string' }, cors: { type: 'string' },
      'max-body': { type: 'string' }, 'chat-template': { type: 'string' }, device: { type: 'string' }, threads: { type: 'string' },
      activations: { type: 'string' }, 'int8-activations': { type: 'boolean' }, tokenizer: { type: 'string' },
    },
  });
  const count = (flag: string, value: string | undefined, min: number, max: number) => {
    const n = num(value, flag, true);
    if (n !== undefined && (n < min || n > max)) throw new InvalidInputError(`--${flag} must be an integer from ${min} to ${max}, got ${n}`);
    return n;
  };
  if (v.model && v['models-dir']) throw new InvalidInputError('give --model or --models-dir, not both');
  const activations = activationsFlag(v);
  let model = v['models-dir'] ? undefined : (v.model ?? loadManifest().default);
  if (model && !existsSync(model) && loadManifest().models[model]) model = (await pull(model, progress())).path;
  const running = await serve({
    model,
    modelsDir: v['models-dir'],
    maxModels: count('max-models', v['max-models'], 1, 64),
    host: v.host,
    port: count('port', v.port, 0, 65535),
    parallel: count('parallel', v.parallel, 1, 32),
    queue: count('queue', v.queue, 0, 100_000),
    contextLength: count('ctx-size', v['ctx-size'], 1, 1 << 24),
    apiKey: v['api-key'] ?? process.env.POCKETLM_API_KEY,
    cors: v.cors,
    maxBodyBytes: count('max-body', v['max-body'], 1024, 1 << 30),
    chatTemplate: v['chat-template'] ? readTemplate(v['chat-template']) : undefined,
    device: deviceFlag(v as ModelFlags),
    threads: count('threads', v.threads, 0, 64),
    activations,
    tokenizer: v.tokenizer,
  });
  process.stderr.write(`pocketlm: serving ${model ?? v['models-dir']} at ${running.url} (OpenAI API under ${running.url}/v1)\n`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.stderr.write(`pocketlm: ${signal}: finishing running generations, then exiting\n`);
      void running.shutdown(10_000).then(resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

/** Flags of the encoder commands. */
const ENCODER_FLAGS = {
  model: { type: 'string' }, device: { type: 'string' }, threads: { type: 'string' }, pooling: { type: 'string' },
  'no-normalize': { type: 'boolean' }, 'no-truncate': { type: 'boolean' }, format: { type: 'string' }, 'top-k': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

async function encoderModel(v: { model?: string; device?: string; threads?: string }, what: string): Promise<Model> {
  if (!v.model) throw new InvalidInputError(`usage: pocketlm ${what} --model PATH ... (see pocketlm ${what} --help)`);
  return openModel(v.model, deviceFlag(v as ModelFlags), undefined, v.threads);
}

/** The texts: the positionals, or stdin's lines when there are none. */
async function textsOf(positionals: string[]): Promise<string[]> {
  if (positionals.length) return positionals;
  if (process.stdin.isTTY) throw new InvalidInputError('give the texts as arguments, or one per line on stdin');
  const lines: string[] = [];
  for await (const line of createInterface({ input: process.stdin })) if (line.trim() !== '') lines.push(line);
  return lines;
}

function poolingFlag(p: string | undefined): Pooling | undefined {
  if (p !== undefined && !['mean', 'cls', 'last', 'none'].includes(p)) throw new InvalidInputError(`--pooling must be mean, cls, last or none, got "${p}"`);
  return p as Pooling | undefined;
}

async function cmdEmbed(argv: string[]): Promise<void> {
  const { values: v, positionals } = parseArgs({ args: argv, allowPositionals: true, options: ENCODER_FLAGS });
  const format = v.format ?? 'jsonl';
  if (format !== 'jsonl' && format !== 'npy') throw new InvalidInputError(`--format must be jsonl or npy, got "${format}"`);
  const pooling = poolingFlag(v.pooling);
  const model = await encoderModel(v, 'embed');
  try {
    const texts = await textsOf(positionals);
    const vectors = await model.embed(texts, { pooling, normalize: v['no-normalize'] ? false : undefined, truncate: !v['no-truncate'] });
    if (format === 'npy') {
      const width = vectors[0]?.length ?? 0;
      if (vectors.some((x) => x.length !== width)) throw new InvalidInputError('--format npy needs vectors of one length: --pooling none gives one per token (use jsonl)');
      process.stdout.write(npy(vectors, width));
    } else for (let i = 0; i < texts.length; i++) process.stdout.write(JSON.stringify({ text: texts[i], embedding: Array.from(vectors[i]!) }) + '\n');
  } finally {
    model.dispose();
  }
}

/** NumPy's .npy (version 1.0): a little-endian float32 array [rows][width]. */
function npy(rows: Float32Array[], width: number): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows.length}, ${width}), }`;
  header = header.padEnd(Math.ceil((10 + header.length + 1) / 64) * 64 - 10 - 1, ' ') + '\n';
  const out = new Uint8Array(10 + header.length + rows.length * width * 4);
  out.set([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(new TextEncoder().encode(header), 10);
  rows.forEach((r, i) => out.set(new Uint8Array(r.buffer, r.byteOffset, r.byteLength), 10 + header.length + i * width * 4));
  return out;
}

async function cmdSimilarity(argv: string[]): Promise<void> {
  const { values: v, positionals } = parseArgs({ args: argv, allowPositionals: true, options: ENCODER_FLAGS });
  if (positionals.length !== 2) throw new InvalidInputError(`similarity compares two texts, got ${positionals.length}: pocketlm similarity --model PATH "text a" "text b"`);
  const model = await encoderModel(v, 'similarity');
  try {
    const [a, b] = await model.embed(positionals, { pooling: poolingFlag(v.pooling), normalize: true });
    let dot = 0;
    for (let i = 0; i < a!.length; i++) dot += a![i]! * b![i]!;
    console.log(dot.toFixed(6));
  } finally {
    model.dispose();
  }
}

async function cmdClassify(argv: string[]): Promise<void> {
  const { values: v, positionals } = parseArgs({ args: argv, allowPositionals: true, options: ENCODER_FLAGS });
  const model = await encoderModel(v, 'classify');
  try {
    const texts = await textsOf(positionals);
    const results = await model.classify(texts, { truncate: !v['no-truncate'] });
    texts.forEach((text, i) => process.stdout.write(JSON.stringify({ text, labels: results[i] }) + '\n'));
  } finally {
    model.dispose();
  }
}

async function cmdFillMask(argv: string[]): Promise<void> {
  const { values: v, positionals } = parseArgs({ args: argv, allowPositionals: true, options: ENCODER_FLAGS });
  const topK = num(v['top-k'], 'top-k', true);
  const model = await encoderModel(v, 'fill-mask');
  try {
    const masks = await model.fillMask(positionals.join(' '), { topK, truncate: !v['no-truncate'] });
    for (const m of masks) process.stdout.write(JSON.stringify(m) + '\n');
  } finally {
    model.dispose();
  }
}

/** A list of indices: all, N, A-B or N,N,... within [0, count). */
function indexList(v: string | undefined, count: number, flag: string): number[] {
  if (v === undefined || v === 'all') return Array.from({ length: count }, (_, i) => i);
  const out: number[] = [];
  for (const part of v.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new InvalidInputError(`--${flag} takes all, N, A-B or N,N,... (got "${v}")`);
    const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
    for (let i = a; i <= b; i++) {
      if (i >= count) throw new InvalidInputError(`--${flag} ${v}: ${i} is past this model's ${count} (0..${count - 1})`);
      out.push(i);
    }
  }
  return [...new Set(out)];
}

async function cmdInspect(argv: string[]): Promise<void> {
  const { values: v, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
    model: { type: 'string' }, tokenizer: { type: 'string' }, device: { type: 'string' }, threads: { type: 'string' },
    'logit-lens': { type: 'boolean' }, attention: { type: 'boolean' }, attribution: { type: 'boolean' }, target: { type: 'string' }, layers: { type: 'string' }, heads: { type: 'string' }, 'top-k': { type: 'string' },
    out: { type: 'string' }, json: { type: 'boolean' }, png: { type: 'string' }, patch: { type: 'string' }, from: { type: 'string' },
  } });
  const text = positionals.join(' ');
  if (!text) throw new InvalidInputError('give the text to run: pocketlm inspect --model PATH "text"');
  if ((v.patch === undefined) !== (v.from === undefined)) throw new InvalidInputError('--patch POINT and --from TEXT go together');
  const topK = num(v['top-k'], 'top-k', true) ?? 5;
  if (topK < 1) throw new InvalidInputError(`--top-k must be >= 1, got ${topK}`);
  const model = await openModel(v.model, deviceFlag(v as ModelFlags), v.tokenizer, v.threads);
  try {
    const c = model.config;
    const tokens = model.inputTokens(text);
    const piece = (id: number) => model.tokenizer.decode([id], { skipSpecial: false });
    if (v.patch !== undefined) {
      const from = model.inputTokens(v.from!);
      if (from.length !== tokens.length) throw new InvalidInputError(`--from has ${from.length} tokens and the text ${tokens.length}: activation patching needs the same number (compare texts that differ in a word)`);
      if (model.isEncoder) throw new InvalidInputError('--patch compares next-token predictions: give a decoder');
      const clean = await model.run(from, { capture: [v.patch] });
      const captured = clean.cache.get(v.patch);
      if (!captured) throw new InvalidInputError(`${v.patch} is not a hook point this model's forward pass goes through`);
      const [corrupted, patched] = [await model.run(tokens), await model.run(tokens, { patch: { [v.patch]: captured.data } })];
      const V = c.vocabSize, last = tokens.length - 1;
      const top = (logits: Float32Array) => {
        const p = probabilities(logits.subarray(last * V, (last + 1) * V));
        return Array.from(p.keys()).sort((a, b) => p[b]! - p[a]!).slice(0, topK).map((id) => ({ token: piece(id), id, prob: p[id]! }));
      };
      console.log(JSON.stringify({ point: v.patch, from: { text: v.from, next: top(clean.output) }, text: { text, next: top(corrupted.output) }, patched: { next: top(patched.output) } }, null, 1));
      return;
    }
    const layers = indexList(v.layers, c.nLayers, 'layers');
    const heads = indexList(v.heads, c.nHeads, 'heads');
    const run = await model.run(tokens, { capture: [...layers.map((l) => `blocks.${l}.resid_post`), ...(v.attention ? layers.map((l) => `blocks.${l}.attn.pattern`) : [])] });
    const n = tokens.length;
    const report: InspectReport = {
      model: `${c.name} (${c.architecture}, ${c.nLayers} layers, ${c.nHeads} heads) on ${model.backend.name}`,
      tokens: tokens.map(piece),
      ids: tokens,
      surprisal: model.isEncoder ? tokens.map(() => null) : surprisal(run.output, tokens, c.vocabSize).map((x) => (Number.isNaN(x) ? null : x)),
      residNorms: layers.map((l) => {
        const d = run.cache.get(`blocks.${l}.resid_post`)!.data;
        return { layer: l, norms: Array.from({ length: n }, (_, t) => Math.hypot(...d.subarray(t * c.dim, (t + 1) * c.dim))) };
      }),
    };
    if (v['logit-lens']) {
      const lens = await model.logitLens(tokens, { topK, layers });
      report.lens = lens.rows.map((r) => ({ layer: r.layer, top: r.top.map((t) => t.map((x) => ({ token: piece(x.id), id: x.id, prob: x.prob }))) }));
    }
    if (v.attribution) {
      const a = await model.attribute(tokens, { target: num(v.target, 'target', true) });
      report.attribution = { target: a.target, token: piece(a.target), logit: a.logit, constant: a.constant, parts: [...a.parts].sort((x, y) => Math.abs(y.value) - Math.abs(x.value)).slice(0, 24) };
    }
    if (v.attention)
      report.attention = layers.map((l) => {
        const p = run.cache.get(`blocks.${l}.attn.pattern`)!;
        return { layer: l, heads: heads.map((h) => ({ head: h, pattern: Array.from({ length: n }, (_, q) => Array.from(p.data.subarray((h * n + q) * n, (h * n + q + 1) * n))) })) };
      });
    if (v.png !== undefined) {
      if (!report.attention) throw new InvalidInputError('--png draws the attention maps: add --attention');
      mkdirSync(v.png, { recursive: true });
      for (const a of report.attention) writeFileSync(join(v.png, `attention-${a.layer}.png`), attentionPng(a.heads.map((h) => h.pattern)));
    }
    if (v.json) return console.log(JSON.stringify(report));
    const out = v.out ?? 'inspect.html';
    writeFileSync(out, renderHtml(report));
    process.stderr.write(`pocketlm: wrote ${out} (${n} tokens, ${layers.length} layers${report.lens ? ', logit lens' : ''}${report.attention ? `, ${report.attention.length * heads.length} attention maps` : ''})\n`);
  } finally {
    model.dispose();
  }
}

async function cmdTokenize(argv: string[]): Promise<void> {
  const { values: v, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { model: { type: 'string' }, 'no-special': { type: 'boolean' } } });
  if (!v.model) throw new InvalidInputError('usage: pocketlm tokenize --model PATH [--no-special] TEXT');
  const tok = await loadTokenizer(v.model);
  const special = !v['no-special'];
  console.log(tok.encode(positionals.join(' '), { addSpecial: special, parseSpecial: special }).join(' '));
}

/** llama.cpp's llama_ftype names for general.file_type (the ones pocketlm writes and a few common others). */
const FILE_TYPES: Record<number, string> = { 0: 'all F32', 1: 'mostly F16', 2: 'mostly Q4_0', 3: 'mostly Q4_1', 7: 'mostly Q8_0', 8: 'mostly Q5_0', 9: 'mostly Q5_1', 10: 'mostly Q2_K', 14: 'mostly Q4_K_S', 15: 'mostly Q4_K_M', 16: 'mostly Q5_K_S', 17: 'mostly Q5_K_M', 18: 'mostly Q6_K', 32: 'mostly BF16' };

function describe(file: ModelFile): string {
  const lines: string[] = [];
  const c = modelConfig(file);
  lines.push(`file:          ${file.source} (${file.format})`);
  lines.push(`name:          ${c.name}`);
  lines.push(`architecture:  ${c.architecture} (family ${c.family}, src/arch/${c.family}.ts)`);
  lines.push(`dim ${c.dim}, ffn ${c.hiddenDim}, layers ${c.nLayers}, heads ${c.nHeads}, kv heads ${c.nKvHeads}, head dim ${c.headDim}, vocab ${c.vocabSize}, context ${c.contextLength}`);
  for (const t of c.traits) lines.push(`  ${t}`);
  const tok = metaString(file, 'tokenizer.ggml.model');
  const tokens = file.metadata.get('tokenizer.ggml.tokens');
  lines.push(`tokenizer:     ${tok ?? 'none'}${tokens && Array.isArray(tokens.value) ? `, ${tokens.value.length} tokens` : ''}`);
  const byType = new Map<string, { count: number; bytes: number }>();
  let params = 0;
  for (const t of file.tensors.values()) {
    const e = byType.get(typeName(t.type)) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += t.data.byteLength;
    byType.set(typeName(t.type), e);
    params += t.shape.reduce((a, b) => a * b, 1);
  }
  const fileType = file.metadata.get('general.file_type')?.value;
  const bits = ((file.tensorBytes * 8) / params).toFixed(2);
  lines.push(`tensors:       ${file.tensors.size}, ${(params / 1e6).toFixed(2)}M parameters, ${(file.tensorBytes / 1e6).toFixed(2)} MB (${bits} bits per weight)${typeof fileType === 'number' ? `, file type ${FILE_TYPES[fileType] ?? fileType}` : ''}`);
  for (const [type, e] of byType) lines.push(`  ${type.padEnd(6)} ${String(e.count).padStart(4)} tensors  ${(e.bytes / 1e6).toFixed(2)} MB`);
  return lines.join('\n');
}

async function cmdInfo(argv: string[]): Promise<void> {
  const { values: v, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { tokenizer: { type: 'string' } } });
  const path = positionals[0];
  if (!path) throw new InvalidInputError('usage: pocketlm info PATH [--tokenizer TOK.bin]');
  if (!existsSync(path)) throw new InvalidInputError(`${path}: no such file`);
  if (statSync(path).isDirectory()) {
    console.log(describe(await readModelPath(path, (n) => new Uint8Array(n))));
    return;
  }
  const bytes = readFileShared(path);
  if (isGGUF(bytes)) {
    const gguf = parseGGUF(bytes, path);
    console.log(`GGUF v${gguf.version}, ${gguf.metadata.size} metadata keys, alignment ${gguf.alignment}`);
    console.log(describe(modelFileFromGGUF(gguf)));
  } else if (v.tokenizer) {
    console.log(describe(readModelFile(bytes, path, { bytes: readFileShared(v.tokenizer), source: v.tokenizer })));
  } else {
    const h = readLlama2cHeader(bytes, path);
    console.log(`llama2.c checkpoint: dim ${h.dim}, ffn ${h.hiddenDim}, layers ${h.nLayers}, heads ${h.nHeads}, kv heads ${h.nKvHeads}, vocab ${h.vocabSize}, context ${h.seqLen}, classifier ${h.sharedClassifier ? 'shared' : 'separate'}`);
    console.log('(give --tokenizer TOK.bin for the full summary)');
  }
}

async function cmdConvert(argv: string[]): Promise<void> {
  const { values: v, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { tokenizer: { type: 'string' }, output: { type: 'string', short: 'o' } } });
  const model = positionals[0];
  const usage = 'usage: pocketlm convert MODEL.bin --tokenizer TOK.bin -o OUT.gguf (llama2.c), or pocketlm convert FOLDER -o OUT.gguf (Hugging Face)';
  if (!model || !v.output) throw new InvalidInputError(usage);
  if (!existsSync(model)) throw new InvalidInputError(`${model}: no such file or folder`);
  if (statSync(model).isDirectory()) {
    const file = await convertFolder(model, v.output);
    process.stderr.write(`wrote ${v.output}: ${String(file.metadata.get('general.architecture')?.value)}, ${file.tensors.size} tensors, ${(file.tensorBytes / 1e6).toFixed(1)} MB\n`);
    return;
  }
  if (!v.tokenizer) throw new InvalidInputError(usage);
  if (!existsSync(v.tokenizer)) throw new InvalidInputError(`${v.tokenizer}: no such file`);
  await convertLlama2c(model, v.tokenizer, v.output);
  process.stderr.write(`wrote ${v.output}\n`);
}

async function cmdQuantize(argv: string[]): Promise<void> {
  const { values: v, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { type: { type: 'string' }, tokenizer: { type: 'string' }, quiet: { type: 'boolean' } } });
  const [input, output] = positionals;
  if (!input || !output || !v.type) throw new InvalidInputError(`usage: pocketlm quantize IN.gguf OUT.gguf --type ${QUANTIZE_TARGETS.join('|')}`);
  const target = v.type.toLowerCase() as QuantizeTarget;
  if (!QUANTIZE_TARGETS.includes(target)) throw new InvalidInputError(`--type must be one of ${QUANTIZE_TARGETS.join(', ')}, got "${v.type}"`);
  for (const p of [input, v.tokenizer].filter((p): p is string => !!p)) if (!existsSync(p)) throw new InvalidInputError(`${p}: no such file`);
  const file = readModelFile(readFileShared(input, (n) => new Uint8Array(n)), input, v.tokenizer ? { bytes: readFileShared(v.tokenizer, (n) => new Uint8Array(n)), source: v.tokenizer } : undefined);
  const { input: out, plan } = quantizeModel(file, target, (i, n, name) => {
    if (!v.quiet && process.stderr.isTTY) process.stderr.write(`\rquantizing ${i + 1}/${n} ${name.padEnd(40).slice(0, 40)}`);
  });
  if (!v.quiet && process.stderr.isTTY) process.stderr.write('\n');
  writeGGUFFile(output, out);
  const counts = new Map<string, number>();
  for (const p of plan) counts.set(typeName(p.to), (counts.get(typeName(p.to)) ?? 0) + 1);
  const before = file.tensorBytes, after = out.tensors.reduce((n, t) => n + t.data.byteLength, 0);
  process.stderr.write(`wrote ${output}: ${[...counts].map(([t, n]) => `${n} ${t}`).join(', ')}; tensors ${(before / 1e6).toFixed(1)} MB -> ${(after / 1e6).toFixed(1)} MB\n`);
  if (!v.quiet) for (const p of plan) if (p.note) process.stderr.write(`  ${p.name}: ${p.note}\n`);
}

async function cmdPull(argv: string[]): Promise<void> {
  const name = argv[0];
  if (!name) throw new InvalidInputError('usage: pocketlm pull NAME (see pocketlm models)');
  const { path } = await pull(name, progress());
  console.log(path);
}

async function cmdBench(argv: string[]): Promise<void> {
  const { values: v, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { device: { type: 'string' }, kernels: { type: 'string' }, model: { type: 'string' }, quick: { type: 'boolean' }, json: { type: 'string' }, markdown: { type: 'string' }, svg: { type: 'string' }, 'peak-bandwidth': { type: 'string' }, quiet: { type: 'boolean' }, compare: { type: 'boolean' } },
  });
  const { writeFileSync } = await import('node:fs');
  const report = await import('./bench-report.js');
  if (v.compare) {
    if (positionals.length < 2) throw new InvalidInputError('usage: pocketlm bench --compare A.json B.json ... [--markdown OUT.md] [--svg OUT.svg]');
    const reports = positionals.map((p) => {
      if (!existsSync(p)) throw new InvalidInputError(`${p}: no such file`);
      let value: unknown;
      try { value = JSON.parse(readFileSync(p, 'utf8')); } catch { throw new InvalidInputError(`${p}: not JSON`); }
      return report.checkReport(value, p);
    });
    const table = report.compareMarkdown(reports);
    if (v.markdown) writeFileSync(v.markdown, table + '\n');
    if (v.svg) writeFileSync(v.svg, report.compareSvg(reports));
    console.log(table);
    return;
  }
  const { KERNEL_FAMILIES, benchKernels } = await import('./kernel-bench.js');
  const families = !v.kernels || v.kernels === 'all' ? KERNEL_FAMILIES : v.kernels.split(',');
  for (const f of families) if (!KERNEL_FAMILIES.includes(f as never)) throw new InvalidInputError(`--kernels: unknown kernel family "${f}" (use all, or some of ${KERNEL_FAMILIES.join(', ')})`);
  const device = deviceFlag(v as ModelFlags);
  const peak = v['peak-bandwidth'] === undefined ? undefined : num(v['peak-bandwidth'], 'peak-bandwidth');
  // The backend to measure: the one `loadModel` would pick for this --device.
  let backend: import('../backend/backend.js').Backend<import('../backend/backend.js').Handle>;
  const notice = (m: string) => process.stderr.write(`pocketlm: ${m}\n`);
  if (device === 'cpu') backend = await cpuBackend();
  else {
    const { createWebGPUBackend } = await import('../backend/webgpu.js');
    try {
      backend = (await createWebGPUBackend({ hardwareOnly: device === 'auto' })) as never;
    } catch (e) {
      if (device === 'webgpu') throw e;
      notice(`${(e as Error).message}; measuring the CPU (--device webgpu to insist)`);
      backend = await cpuBackend();
    }
  }
  const progress = !v.quiet && process.stderr.isTTY;
  const peakBandwidthGBps = peak ?? report.knownPeakBandwidth(backend.name);
  try {
    const keep = (backend as unknown as { keepAlive?: { instance: GPU } }).keepAlive;
    const kernels = await benchKernels(backend, {
      families: families as never, quick: v.quick, peakBandwidthGBps,
      peers: keep ? { gpu: keep.instance, root: packageRoot() } : undefined,
      onProgress: progress ? (done, total, id) => process.stderr.write(`\r\x1b[K[${done}/${total}] ${id}`) : undefined,
    });
    if (progress) process.stderr.write('\r\x1b[K');
    const endToEnd = v.model ? await benchModel(v.model, device, v.quick) : undefined;
    const { cpus } = await import('node:os');
    const webgpuVersion = (() => {
      try {
        return ` + Dawn (npm webgpu ${JSON.parse(readFileSync(new URL(import.meta.resolve('webgpu/package.json')), 'utf8')).version})`;
      } catch {
        return '';
      }
    })();
    const r = report.makeReport(backend, kernels, {
      pocketlm: packageVersion(),
      runtime: `Node ${process.version}${backend.device === 'webgpu' ? webgpuVersion : ''}`,
      cpu: { model: cpus()[0]?.model ?? 'unknown', cores: cpus().length }, peakBandwidthGBps, endToEnd,
    });
    const md = report.markdownReport(r);
    if (v.json) writeFileSync(v.json, JSON.stringify(r, null, 2) + '\n');
    if (v.markdown) writeFileSync(v.markdown, md + '\n');
    console.log(md);
    if (kernels.some((k) => !k.correct)) throw new PocketLMError(`wrong results from: ${kernels.filter((k) => !k.correct).map((k) => k.id).join(', ')}`);
  } finally {
    backend.dispose();
  }
}

/** This package's folder: the nearest one above this file whose package.json is pocketlm's (from dist/src/cli/ or src/cli/). */
function packageRoot(): string {
  for (let url = new URL('.', import.meta.url); url.pathname !== '/'; url = new URL('..', url)) {
    const pkg = new URL('package.json', url);
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'pocketlm') return url.pathname;
  }
  return process.cwd();
}

/** This package's version. */
function packageVersion(): string {
  try {
    return JSON.parse(readFileSync(`${packageRoot()}/package.json`, 'utf8')).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The CPU backend as loadModel makes it (WebAssembly kernels over worker threads in Node). */
async function cpuBackend(): Promise<import('../backend/backend.js').Backend<import('../backend/backend.js').Handle>> {
  const { CpuBackend } = await import('../backend/cpu.js');
  const { createWorkerExecutor } = await import('../backend/parallel.js');
  return new CpuBackend(await createWorkerExecutor()) as never;
}

/** End-to-end prompt and generation speed for a model, at two prompt lengths. */
async function benchModel(path: string, device: Device, quick?: boolean): Promise<import('./bench-report.js').EndToEnd[]> {
  const model = await loadModel(path, { device, onNotice: () => {} });
  const out: import('./bench-report.js').EndToEnd[] = [];
  try {
    // Untimed warm-up: first calls compile pipelines and fill caches.
    const warm = model.transformer.newState(64);
    await model.transformer.forwardArgmax(warm, [model.tokenizer.bosId, 300, 301, 302]);
    await model.transformer.forwardArgmax(warm, [303]);
    warm.dispose();
    for (const promptTokens of quick ? [8, 32] : [16, 128]) {
      const prompt = [model.tokenizer.bosId, ...Array.from({ length: promptTokens - 1 }, (_, i) => 300 + ((i * 37) % 200))];
      const state = model.transformer.newState(promptTokens + 64);
      let t0 = performance.now();
      let next = await model.transformer.forwardArgmax(state, prompt);
      const promptMs = performance.now() - t0;
      const decodeTokens = quick ? 4 : 16;
      t0 = performance.now();
      for (let i = 0; i < decodeTokens; i++) next = await model.transformer.forwardArgmax(state, [next]);
      out.push({ model: `${path} on pocketlm ${model.backend.name}`, promptTokens, promptTokPerS: (promptTokens * 1000) / promptMs, decodeTokens, decodeTokPerS: (decodeTokens * 1000) / (performance.now() - t0) });
      state.dispose();
    }
  } finally {
    model.dispose();
  }
  // Peers on the same file, when node-llama-cpp can be found (bench/peers/, or installed by the user).
  const { llamaCppEngine } = await import('./peers.js');
  const { cpus } = await import('node:os');
  const root = packageRoot();
  for (const gpu of device === 'cpu' ? [false as const] : [false as const, 'vulkan' as const]) {
    const peer = await llamaCppEngine(path, Math.min(cpus().length, 8), 256, gpu, root);
    if (typeof peer === 'string') {
      process.stderr.write(`pocketlm: llama.cpp ${gpu || 'cpu'} left out: ${peer}\n`);
      break;
    }
    try {
      await peer.prefill([1, 300, 301, 302]); // untimed warm-up, as for pocketlm
      await (await peer.prepareDecode(1))(2);
      for (const promptTokens of quick ? [8, 32] : [16, 128]) {
        const prompt = [1, ...Array.from({ length: promptTokens - 1 }, (_, i) => 300 + ((i * 37) % 200))];
        let t0 = performance.now();
        await peer.prefill(prompt);
        const promptMs = performance.now() - t0;
        const decodeTokens = quick ? 4 : 16;
        const decode = await peer.prepareDecode(1);
        t0 = performance.now();
        await decode(decodeTokens);
        out.push({ model: `${path} on ${peer.name}`, promptTokens, promptTokPerS: (promptTokens * 1000) / promptMs, decodeTokens, decodeTokPerS: (decodeTokens * 1000) / (performance.now() - t0) });
      }
    } finally {
      await peer.close();
    }
  }
  return out;
}

function cmdModels(): void {
  const m = loadManifest();
  for (const [name, e] of Object.entries(m.models)) console.log(`${name.padEnd(24)} ${e.description}${name === m.default ? ' (default)' : ''}`);
}

/** Every command's flags that take no value (a negative number after one is a positional argument). */
const BOOLEAN_FLAGS = new Set(['ignore-eos', 'int8-activations', 'chat', 'no-special', 'quiet', 'quick', 'compare', 'help', 'json']);

/**
 * Node's parseArgs reads "--temperature -1" as two flags: join a negative number to the string flag
 * before it ("--temperature=-1"), so that it reaches the range check with its value.
 */
export function joinNegativeValues(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') { out.push(...args.slice(i)); break; }
    if (/^--[\w-]+$/.test(a) && !BOOLEAN_FLAGS.has(a.slice(2)) && i + 1 < args.length && /^-(\d|\.\d|Infinity|NaN)/.test(args[i + 1]!)) out.push(`${a}=${args[++i]}`);
    else out.push(a);
  }
  return out;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  const rest = joinNegativeValues(args);
  const options = rest.indexOf('--') === -1 ? rest : rest.slice(0, rest.indexOf('--'));
  if (cmd && COMMAND_HELP[cmd] && (options.includes('--help') || options.includes('-h'))) {
    console.log(COMMAND_HELP[cmd]);
    return 0;
  }
  if (cmd === 'help' && rest[0] && COMMAND_HELP[rest[0]]) {
    console.log(COMMAND_HELP[rest[0]]);
    return 0;
  }
  try {
    switch (cmd) {
      case 'generate': await cmdGenerate(rest); break;
      case 'chat': await cmdChat(rest); break;
      case 'serve': await cmdServe(rest); break;
      case 'tokenize': await cmdTokenize(rest); break;
      case 'inspect': await cmdInspect(rest); break;
      case 'embed': await cmdEmbed(rest); break;
      case 'similarity': await cmdSimilarity(rest); break;
      case 'classify': await cmdClassify(rest); break;
      case 'fill-mask': await cmdFillMask(rest); break;
      case 'info': await cmdInfo(rest); break;
      case 'convert': await cmdConvert(rest); break;
      case 'quantize': await cmdQuantize(rest); break;
      case 'bench': await cmdBench(rest); break;
      case 'pull': await cmdPull(rest); break;
      case 'models': cmdModels(); break;
      case undefined: case 'help': case '--help': case '-h': console.log(HELP); break;
      default: throw new InvalidInputError(`unknown command "${cmd}"; run pocketlm --help`);
    }
    return 0;
  } catch (e) {
    if (e instanceof PocketLMError || (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (e as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      process.stderr.write(`pocketlm: ${(e as Error).message}\n`);
      return 1;
    }
    throw e;
  }
}

process.exitCode = await main(process.argv.slice(2));
