// The OpenAI API's shapes: requests checked field by field into pocketlm's options (a typed 400 for
// each wrong one, naming the field), and the responses, streamed chunks and error objects clients expect.

import { InvalidInputError, PocketLMError } from '../base/errors.js';
import type { GenerateOptions, StopReason, TokenLogprob } from '../generate.js';
import type { JsonSchema } from '../constrain/json.js';
import type { ChatMessage } from '../tokenizer/chat.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

/** An error with the HTTP status and OpenAI error type a client expects. */
export class HttpError extends PocketLMError {
  constructor(readonly status: number, message: string, readonly type = 'invalid_request_error', readonly param: string | null = null, readonly code: string | null = null) {
    super(message);
  }
}

/** `{ error: { message, type, param, code } }`. */
export function errorBody(e: HttpError): string {
  return JSON.stringify({ error: { message: e.message, type: e.type, param: e.param, code: e.code } });
}

type Body = Record<string, unknown>;

const bad = (param: string, message: string) => new HttpError(400, `${param}: ${message}`, 'invalid_request_error', param);

function num(b: Body, key: string, min: number, max: number, integer = false): number | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v))) throw bad(key, `must be ${integer ? 'an integer' : 'a number'}, got ${JSON.stringify(v)}`);
  if (v < min || v > max) throw bad(key, `must be between ${min} and ${max}, got ${v}`);
  return v;
}

function bool(b: Body, key: string): boolean | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw bad(key, `must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/** What a completion request asks for, in pocketlm's terms. */
export interface Request {
  model?: string;
  stream: boolean;
  includeUsage: boolean;
  options: GenerateOptions;
  /** How many alternatives per token to report (chat: top_logprobs; completions: logprobs), or undefined for none. */
  logprobs?: number;
}

/** Fields shared by /v1/completions and /v1/chat/completions. */
function common(b: Body, maxTokensLimit: number, defaultMaxTokens: number): Request {
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new HttpError(400, 'the request body must be a JSON object');
  if (b.model !== undefined && typeof b.model !== 'string') throw bad('model', 'must be a string');
  const n = num(b, 'n', 1, 1, true);
  void n; // n > 1 is refused by the range: one choice per request
  if (b.logit_bias !== undefined && b.logit_bias !== null && Object.keys(b.logit_bias as object).length > 0) throw bad('logit_bias', 'is not supported');
  const stream = bool(b, 'stream') ?? false;
  const so = b.stream_options as Body | undefined | null;
  if (so !== undefined && so !== null && (typeof so !== 'object' || Array.isArray(so))) throw bad('stream_options', 'must be an object');
  const includeUsage = so ? bool(so, 'include_usage') ?? false : false;
  let stop: string[] | undefined;
  if (typeof b.stop === 'string') stop = [b.stop];
  else if (Array.isArray(b.stop)) {
    if (b.stop.length > 4 || b.stop.some((s) => typeof s !== 'string' || s === '')) throw bad('stop', 'must be a non-empty string or a list of at most 4 of them');
    stop = b.stop as string[];
  } else if (b.stop !== undefined && b.stop !== null) throw bad('stop', 'must be a string or a list of strings');
  const maxTokens = num(b, 'max_completion_tokens', 0, maxTokensLimit, true) ?? num(b, 'max_tokens', 0, maxTokensLimit, true) ?? Math.min(defaultMaxTokens, maxTokensLimit);
  const options: GenerateOptions = {
    maxTokens,
    temperature: num(b, 'temperature', 0, 2),
    topP: num(b, 'top_p', 0, 1), // 0 is refused by the sampler's own check, (0, 1]
    topK: num(b, 'top_k', 0, 1e6, true),
    minP: num(b, 'min_p', 0, 1),
    repeatPenalty: num(b, 'repeat_penalty', 0, 10),
    presencePenalty: num(b, 'presence_penalty', -2, 2),
    frequencyPenalty: num(b, 'frequency_penalty', -2, 2),
    seed: num(b, 'seed', -(2 ** 53), 2 ** 53, true),
    ignoreEos: bool(b, 'ignore_eos'),
    stop,
  };
  const rf = b.response_format as Body | undefined | null;
  if (rf !== undefined && rf !== null) {
    if (typeof rf !== 'object' || Array.isArray(rf)) throw bad('response_format', 'must be an object');
    if (rf.type === 'json_object') options.json = 'object';
    else if (rf.type === 'json_schema') {
      const js = rf.json_schema as Body | undefined;
      if (typeof js !== 'object' || js === null || typeof js.schema !== 'object' || js.schema === null) throw bad('response_format.json_schema', 'needs a "schema" object');
      options.json = { schema: js.schema as JsonSchema };
    } else if (rf.type !== 'text') throw bad('response_format.type', `must be "text", "json_object" or "json_schema", got ${JSON.stringify(rf.type)}`);
  }
  return { model: b.model as string | undefined, stream, includeUsage, options };
}

/** A /v1/completions request. OpenAI's default max_tokens there is 16. */
export function completionRequest(b: Body, maxTokensLimit: number): Request & { prompt: string | number[] } {
  const r = common(b, maxTokensLimit, 16);
  let prompt: string | number[];
  const p = b.prompt;
  if (typeof p === 'string') prompt = p;
  else if (Array.isArray(p) && p.length === 1 && typeof p[0] === 'string') prompt = p[0];
  else if (Array.isArray(p) && p.length > 0 && p.every((x) => Number.isInteger(x))) prompt = p as number[];
  else if (Array.isArray(p) && p.length > 1) throw bad('prompt', 'one prompt per request (send several requests; they are batched together)');
  else throw bad('prompt', 'must be a string, or a list of token ids');
  if (b.echo === true) throw bad('echo', 'is not supported');
  if (b.suffix !== undefined && b.suffix !== null) throw bad('suffix', 'is not supported');
  const lp = num(b, 'logprobs', 0, 5, true);
  if (lp !== undefined) r.options.logprobs = r.logprobs = lp;
  return { ...r, prompt };
}

/** A /v1/chat/completions request. Without max_tokens the reply may run to the end of the context. */
export function chatRequest(b: Body, maxTokensLimit: number): Request & { messages: ChatMessage[] } {
  const r = common(b, maxTokensLimit, Infinity);
  if (!Array.isArray(b.messages) || b.messages.length === 0) throw bad('messages', 'must be a non-empty list');
  const messages = b.messages.map((m: unknown, i): ChatMessage => {
    const o = m as Body;
    if (typeof o !== 'object' || o === null || typeof o.role !== 'string') throw bad(`messages[${i}]`, 'needs a string "role"');
    let content = o.content;
    // Content parts: text only.
    if (Array.isArray(content)) {
      if (content.some((p) => (p as Body)?.type !== 'text' || typeof (p as Body).text !== 'string')) throw bad(`messages[${i}].content`, 'only text parts are supported');
      content = content.map((p) => (p as Body).text).join('');
    }
    if (content === null || content === undefined) content = '';
    if (typeof content !== 'string') throw bad(`messages[${i}].content`, 'must be a string or a list of text parts');
    return { role: o.role, content };
  });
  const want = bool(b, 'logprobs');
  const top = num(b, 'top_logprobs', 0, 20, true);
  if (top !== undefined && !want) throw bad('top_logprobs', 'needs logprobs: true');
  if (want) r.options.logprobs = r.logprobs = top ?? 0;
  return { ...r, messages };
}

export function finishReason(why: StopReason | undefined): 'stop' | 'length' {
  return why === 'max-tokens' || why === 'context-full' ? 'length' : 'stop';
}

/** Logprobs as /v1/completions gives them. */
export function completionLogprobs(tok: Tokenizer, lps: readonly TokenLogprob[], textOffset: number) {
  const piece = (id: number) => new TextDecoder().decode(tok.tokenBytes(id));
  let offset = textOffset;
  const text_offset: number[] = [];
  for (const l of lps) {
    text_offset.push(offset);
    offset += piece(l.id).length;
  }
  return {
    tokens: lps.map((l) => piece(l.id)),
    token_logprobs: lps.map((l) => l.logprob),
    top_logprobs: lps.map((l) => Object.fromEntries(l.top.map((t) => [piece(t.id), t.logprob]))),
    text_offset,
  };
}

/** Logprobs as /v1/chat/completions gives them. */
export function chatLogprobs(tok: Tokenizer, lps: readonly TokenLogprob[]) {
  const entry = (id: number, logprob: number) => {
    const bytes = [...tok.tokenBytes(id)];
    return { token: new TextDecoder().decode(Uint8Array.from(bytes)), logprob, bytes };
  };
  return { content: lps.map((l) => ({ ...entry(l.id, l.logprob), top_logprobs: l.top.map((t) => entry(t.id, t.logprob)) })) };
}

/** A request error from pocketlm's own checks (a bad option, a prompt too long) as a 400. */
export function asHttpError(e: unknown): HttpError | undefined {
  if (e instanceof HttpError) return e;
  if (e instanceof InvalidInputError) return new HttpError(400, e.message);
  return undefined;
}
