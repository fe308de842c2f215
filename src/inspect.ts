// Looking inside a running model: capture the tensors at the hook points of one run (the names are in
// src/arch/transformer.ts's Hooks: blocks.L.resid_pre, blocks.L.attn.q/k/v/z/out, blocks.L.attn.pattern,
// blocks.L.resid_mid, blocks.L.mlp.post/out, blocks.L.resid_post, final_norm, logits), patch them
// (replace, zero, add a steering vector, ablate a head, copy from another run's cache), and the
// analyses built on those: attention patterns, the logit lens, token surprisal.
//
// Captures are the values the forward pass computes (copied aside as it runs, on any backend);
// attention patterns are computed here from the captured queries and keys, with the options the layer
// ran with (scale, soft-cap, causal mask, sliding window), in float64. A patch that is a function sees
// the values at its point: the run goes up to there (a capture pass), the function's result is put in
// place, and the run goes on (a pass per patched point, then the final one). Without captures or
// patches nothing of this runs: generation never pays for it.

import { InvalidInputError } from './base/errors.js';
import type { Handle } from './backend/backend.js';
import { Hooks, type Transformer } from './arch/transformer.js';

/** A captured tensor: its values and its shape, named (TransformerLens's order: position first, head first for patterns). */
export interface Captured {
  data: Float32Array;
  shape: number[];
  dims: string[];
}

/** A patch at a hook point: new values for it (rows [tokens][width]), or a function of the values there (return new ones, or change them in place). */
export type Patch = Float32Array | ((values: Float32Array, shape: { rows: number; width: number }) => Float32Array | void);

export interface RunOptions {
  /** Hook point names to capture; `*` matches any layer number ("blocks.*.attn.pattern"). */
  capture?: readonly string[];
  /** Hook point name -> patch, applied in the order of the forward pass. */
  patch?: Readonly<Record<string, Patch>>;
}

export interface RunResult {
  tokens: number[];
  /** Decoders: logits [tokens][vocab]; encoders: the final hidden states [tokens][dim]. */
  output: Float32Array;
  cache: Map<string, Captured>;
}

/** Every hook point name of a model of `layers` layers (patterns included), in forward order. */
export function hookPoints(layers: number): string[] {
  const names: string[] = [];
  for (let l = 0; l < layers; l++)
    for (const p of ['resid_pre', 'attn.q', 'attn.k', 'attn.v', 'attn.pattern', 'attn.z', 'attn.out', 'resid_mid', 'mlp.post', 'mlp.out', 'resid_post']) names.push(`blocks.${l}.${p}`);
  return [...names, 'final_norm', 'logits'];
}

function matcher(patterns: readonly string[], layers: number): (name: string) => boolean {
  const known = new Set(hookPoints(layers));
  const res = patterns.map((p) => {
    if (typeof p !== 'string') throw new InvalidInputError(`capture names are strings, got ${JSON.stringify(p)}`);
    const re = new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^.]+')}$`);
    if (![...known].some((n) => re.test(n)) && !/^blocks\.\d+\.mlp\d+\./.test(p)) throw new InvalidInputError(`"${p}" names no hook point of this ${layers}-layer model; the points are blocks.L.{${['resid_pre', 'attn.q', 'attn.k', 'attn.v', 'attn.pattern', 'attn.z', 'attn.out', 'resid_mid', 'mlp.post', 'mlp.out', 'resid_post'].join(', ')}}, final_norm, logits (L from 0 to ${layers - 1}, or *)`);
    return re;
  });
  return (name) => res.some((r) => r.test(name));
}

/** Forward-pass order of a hook point name, for applying patches in order. */
function order(name: string, layers: number): number {
  const all = hookPoints(layers);
  const i = all.indexOf(name);
  if (i >= 0) return i;
  const m = /^blocks\.(\d+)\.mlp(\d+)\./.exec(name); // MobileBERT's stacked feed-forwards: after mlp
  if (m) return all.indexOf(`blocks.${m[1]}.mlp.out`) + Number(m[2]) / 10;
  throw new InvalidInputError(`"${name}" is not a hook point (see hookPoints())`);
}

/**
 * One run of `tokens` with captures and patches. Patterns are computed from q and k (captured for the
 * purpose when only the pattern is asked for).
 */
export async function runWithHooks<T extends Handle>(t: Transformer<T>, tokens: readonly number[], options: RunOptions = {}): Promise<RunResult> {
  const layers = t.config.nLayers;
  if (tokens.length === 0) throw new InvalidInputError('run() needs at least one token');
  const wanted = matcher(options.capture ?? [], layers);
  const patches = Object.entries(options.patch ?? {}).sort(([a], [b]) => order(a, layers) - order(b, layers));
  for (const [name, p] of patches) if (!(p instanceof Float32Array) && typeof p !== 'function') throw new InvalidInputError(`the patch for ${name} must be a Float32Array or a function`);
  // Function patches: run up to each point, hand its values to the function, keep what it returns.
  const replace = new Map<string, Float32Array>();
  for (const [name, p] of patches) {
    if (p instanceof Float32Array) {
      replace.set(name, p);
      continue;
    }
    const { captured } = await t.inspect(tokens, new Hooks<T>((n) => n === name, new Map(replace)));
    const got = captured.get(name);
    if (!got) throw new InvalidInputError(`${name} is not a point this model's forward pass goes through`);
    const values = Float32Array.from(got.data);
    const out = p(values, { rows: got.rows, width: got.width }) ?? values;
    if (!(out instanceof Float32Array) || out.length !== got.data.length) throw new InvalidInputError(`the patch function for ${name} must return a Float32Array of ${got.rows} x ${got.width} values (or change the one it is given)`);
    replace.set(name, out);
  }
  // Patterns come from q and k.
  const patternLayers = new Set<number>();
  for (let l = 0; l < layers; l++) if (wanted(`blocks.${l}.attn.pattern`)) patternLayers.add(l);
  const wants = (n: string) => wanted(n) || [...patternLayers].some((l) => n === `blocks.${l}.attn.q` || n === `blocks.${l}.attn.k`);
  const hooks = new Hooks<T>(wants, replace);
  const { out, captured } = await t.inspect(tokens, hooks);
  const cache = new Map<string, Captured>();
  for (const [name, c] of captured) {
    if (!wanted(name)) continue;
    cache.set(name, { data: c.data, shape: [c.rows, c.width], dims: name === 'logits' ? ['pos', 'd_vocab'] : /attn\.[qkvz]$/.test(name) ? ['pos', 'heads * d_head'] : /mlp\d*\.post$/.test(name) ? ['pos', 'd_mlp'] : ['pos', 'd_model'] });
  }
  for (const l of patternLayers) {
    const q = captured.get(`blocks.${l}.attn.q`), k = captured.get(`blocks.${l}.attn.k`), o = hooks.attention.get(l);
    if (!q || !k || !o) continue;
    cache.set(`blocks.${l}.attn.pattern`, { data: pattern(q.data, k.data, q.rows, o), shape: [o.heads, q.rows, q.rows], dims: ['head', 'query_pos', 'key_pos'] });
  }
  return { tokens: [...tokens], output: out, cache };
}

/**
 * Attention probabilities [heads][query][key] from queries [n][heads * d] and keys [n][kvHeads * d]
 * (after RoPE), as the attention stage computes them: cap(scale q . k), masked (causal, sliding
 * window), softmax over the keys; float64, each row summing to 1.
 */
export function pattern(q: Float32Array, k: Float32Array, n: number, o: { heads: number; kvHeads: number; headDim: number; scale?: number; softcap?: number; window?: number; causal?: boolean }): Float32Array {
  const { heads, kvHeads, headDim: d } = o;
  const scale = o.scale ?? 1 / Math.sqrt(d);
  const out = new Float32Array(heads * n * n);
  const s = new Float64Array(n);
  for (let h = 0; h < heads; h++) {
    const g = Math.floor(h / (heads / kvHeads));
    for (let t = 0; t < n; t++) {
      let max = -Infinity;
      for (let p = 0; p < n; p++) {
        const visible = o.causal === false || (p <= t && (!o.window || t - p < o.window));
        if (!visible) { s[p] = -Infinity; continue; }
        let dot = 0;
        for (let i = 0; i < d; i++) dot += q[(t * heads + h) * d + i]! * k[(p * kvHeads + g) * d + i]!;
        let z = dot * scale;
        if (o.softcap) z = o.softcap * Math.tanh(z / o.softcap);
        s[p] = z;
        if (z > max) max = z;
      }
      let sum = 0;
      for (let p = 0; p < n; p++) sum += s[p] === -Infinity ? 0 : (s[p] = Math.exp(s[p]! - max));
      for (let p = 0; p < n; p++) out[(h * n + t) * n + p] = s[p] === -Infinity ? 0 : s[p]! / sum;
    }
  }
  return out;
}

export interface LensRow {
  layer: number;
  /** Per position: the top-k tokens of this layer's residual stream read through the final norm and head. */
  top: { id: number; prob: number }[][];
  /** Per position: the probability this layer gives the model's own final top-1 token. */
  finalTokenProb: number[];
}

/**
 * The logit lens: each layer's residual stream (resid_post) through the model's own output head
 * (final norm, projections, soft-cap: Architecture.unembed), softmaxed: what each layer "would say".
 * The last layer's equals the model's output exactly.
 */
export async function logitLens<T extends Handle>(t: Transformer<T>, tokens: readonly number[], o: { topK?: number; layers?: readonly number[] } = {}): Promise<{ rows: LensRow[]; logits: Float32Array; lens: Float32Array[] }> {
  if (t.arch.encoder || !t.arch.unembed) throw new InvalidInputError(`the logit lens reads layers through the output head: ${t.config.architecture} has none`);
  const L = t.config.nLayers;
  const layers = o.layers ?? Array.from({ length: L }, (_, l) => l);
  for (const l of layers) if (!(Number.isInteger(l) && l >= 0 && l < L)) throw new InvalidInputError(`layer ${l} is not one of this model's 0..${L - 1}`);
  const topK = o.topK ?? 5;
  const run = await runWithHooks(t, tokens, { capture: layers.map((l) => `blocks.${l}.resid_post`) });
  const V = t.config.vocabSize, n = tokens.length;
  const finalTop = Array.from({ length: n }, (_, p) => argmax(run.output.subarray(p * V, (p + 1) * V)));
  const rows: LensRow[] = [];
  const lens: Float32Array[] = [];
  for (const l of layers) {
    const logits = await t.unembedRows(run.cache.get(`blocks.${l}.resid_post`)!.data, n);
    lens.push(logits);
    const top: LensRow['top'] = [];
    const finalTokenProb: number[] = [];
    for (let p = 0; p < n; p++) {
      const probs = softmax(logits.subarray(p * V, (p + 1) * V));
      const order = Array.from(probs.keys()).sort((a, b) => probs[b]! - probs[a]!).slice(0, topK);
      top.push(order.map((id) => ({ id, prob: probs[id]! })));
      finalTokenProb.push(probs[finalTop[p]!]!);
    }
    rows.push({ layer: l, top, finalTokenProb });
  }
  return { rows, logits: run.output, lens };
}

/** Surprisal of each token given those before it, in bits (-log2 p), from logits [n][vocab]; position 0 has none (NaN). */
export function surprisal(logits: Float32Array, tokens: readonly number[], vocab: number): number[] {
  return tokens.map((tok, p) => (p === 0 ? NaN : -Math.log2(softmax(logits.subarray((p - 1) * vocab, p * vocab))[tok]!)));
}

function softmax(x: Float32Array): Float64Array {
  let m = -Infinity;
  for (const v of x) if (v > m) m = v;
  const e = Float64Array.from(x, (v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}
