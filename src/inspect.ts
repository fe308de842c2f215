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
import { softmax } from './stages/softmax.js';
import { GGMLType, toFloat32 } from './base/tensor.js';
import type { ModelFile } from './format/model-file.js';
import { dequantizeMatrix, isQuantType, rowBytes } from './quant/formats.js';

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
    const { captured } = await t.inspect(tokens, new Hooks<T>((n) => n === name, new Map(replace), tokens.length));
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
  const hooks = new Hooks<T>(wants, replace, tokens.length);
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
      const probs = probabilities(logits.subarray(p * V, (p + 1) * V));
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
  return tokens.map((tok, p) => (p === 0 ? NaN : -Math.log2(probabilities(logits.subarray((p - 1) * vocab, p * vocab))[tok]!)));
}

/** softmax(x) in float64 (a copy; the sampling stage's softmax, which subtracts the max first). */
export function probabilities(x: ArrayLike<number>): Float64Array {
  const p = Float64Array.from(x);
  softmax(p);
  return p;
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

// --- direct logit attribution ---

export interface Attribution {
  /** The token whose logit is explained, and the position it is predicted at. */
  target: number;
  position: number;
  /** The model's logit for it (before any final soft-cap). */
  logit: number;
  /** Each component's share of the logit: the embedding, each layer's attention (and each head where the head's output is linear in the residual) and MLP. */
  parts: { name: string; value: number }[];
  /** What the components do not carry: the final norm's bias and the head's bias through the frozen scale. */
  constant: number;
}

/** The raw values of a tensor of the model file as f32 (dequantized if quantized), rows [r0, r1) of a [rows][cols] matrix. */
function tensorRows(file: ModelFile, name: string, cols: number, r0: number, r1: number): Float32Array {
  const t = file.tensors.get(name);
  if (!t) throw new InvalidInputError(`tensor ${name} is missing`);
  if (isQuantType(t.type)) {
    const rb = rowBytes(t.type, cols);
    return dequantizeMatrix({ type: t.type, data: t.data.subarray(r0 * rb, r1 * rb), rows: r1 - r0, cols });
  }
  const size = t.type === GGMLType.F32 ? 4 : 2;
  return toFloat32(t.type, t.data.subarray(r0 * cols * size, r1 * cols * size), (r1 - r0) * cols);
}

/**
 * Direct logit attribution: how much each component writes along the direction of `target`'s logit at
 * `position` (default: the last position's top prediction). The residual stream entering the output
 * head is the embedding plus each layer's attention and MLP outputs (resid_mid - resid_pre and
 * resid_post - resid_mid); the final norm is linear once its scale is frozen at the value it has for
 * that stream, so logit = sum of parts + constant exactly (up to rounding). Heads are split out (W_O's
 * columns for head h times its z) where the attention output enters the stream unnormalized; in families
 * whose attention output is normed first (Gemma 2/3) the layer is reported whole. Post-norm families
 * (OPT-350m, encoders) renormalize the stream inside each layer: no such decomposition, refused.
 */
export async function directLogitAttribution<T extends Handle>(t: Transformer<T>, file: ModelFile, tokens: readonly number[], o: { target?: number; position?: number } = {}): Promise<Attribution> {
  const c = t.config;
  const w = t.weights as { outputNorm?: { kind: string; eps: number }; output?: { rows: number }; layers?: { postAttnNorm?: unknown }[]; projectOut?: unknown };
  if (t.arch.encoder || (c as { preNorm?: boolean }).preNorm === false || w.projectOut || !w.outputNorm)
    throw new InvalidInputError(`direct logit attribution needs a residual stream that layers only add to, read by a final norm and the head: ${c.architecture} renormalizes it inside its layers`);
  const n = tokens.length, D = c.dim, L = c.nLayers, hd = c.headDim, H = c.nHeads;
  const position = o.position ?? n - 1;
  if (!(Number.isInteger(position) && position >= 0 && position < n)) throw new InvalidInputError(`position ${position} is outside the ${n} tokens`);
  const names = ['final_norm', 'blocks.0.resid_pre', ...Array.from({ length: L }, (_, l) => [`blocks.${l}.resid_mid`, `blocks.${l}.resid_post`, `blocks.${l}.attn.z`]).flat()];
  const run = await runWithHooks(t, tokens, { capture: names });
  const V = c.vocabSize;
  const row = run.output.subarray(position * V, (position + 1) * V);
  const target = o.target ?? argmax(row);
  if (!(Number.isInteger(target) && target >= 0 && target < V)) throw new InvalidInputError(`target token ${target} is outside the vocabulary`);
  const at = (name: string) => run.cache.get(name)!.data.subarray(position * run.cache.get(name)!.shape[1]!, (position + 1) * run.cache.get(name)!.shape[1]!);
  // The direction: g * W_U[target] (the head row, tied or not), and the frozen scale of the final norm.
  const g = tensorRows(file, 'output_norm.weight', D, 0, 1);
  const normBias = file.tensors.has('output_norm.bias') ? tensorRows(file, 'output_norm.bias', D, 0, 1) : undefined;
  const head = tensorRows(file, file.tensors.has('output.weight') ? 'output.weight' : 'token_embd.weight', D, target, target + 1);
  const headBias = file.tensors.has('output.bias') ? tensorRows(file, 'output.bias', V, 0, 1)[target]! : 0;
  const dir = Float64Array.from(g, (gi, i) => gi * head[i]!);
  const final = at(`blocks.${L - 1}.resid_post`);
  const layer = w.outputNorm.kind === 'layer';
  const mean = (x: ArrayLike<number>) => {
    if (!layer) return 0;
    let m = 0;
    for (let i = 0; i < D; i++) m += x[i]!;
    return m / D;
  };
  const mu = mean(final);
  let ss = 0;
  for (let i = 0; i < D; i++) ss += (final[i]! - mu) ** 2;
  const scale = 1 / Math.sqrt(ss / D + w.outputNorm.eps);
  /** A component's share: its centred (LayerNorm) values along the direction, through the frozen scale. */
  const share = (x: ArrayLike<number>) => {
    const m = mean(x);
    let s = 0;
    for (let i = 0; i < D; i++) s += (x[i]! - m) * dir[i]!;
    return s * scale;
  };
  const diff = (a: ArrayLike<number>, b: ArrayLike<number>) => Float64Array.from({ length: D }, (_, i) => a[i]! - b[i]!);
  const parts: { name: string; value: number }[] = [{ name: 'embed', value: share(at('blocks.0.resid_pre')) }];
  const normedAttention = !!w.layers?.[0]?.postAttnNorm;
  for (let l = 0; l < L; l++) {
    const pre = l === 0 ? at('blocks.0.resid_pre') : at(`blocks.${l - 1}.resid_post`);
    const attn = diff(at(`blocks.${l}.resid_mid`), pre);
    if (normedAttention) parts.push({ name: `blocks.${l}.attn`, value: share(attn) });
    else {
      // Each head: W_O[:, h] z_h; what the heads do not carry (the output bias) is the layer's rest.
      const Wo = tensorRows(file, `blk.${l}.attn_output.weight`, H * hd, 0, D);
      const z = at(`blocks.${l}.attn.z`);
      let heads = 0;
      for (let h = 0; h < H; h++) {
        const out = new Float64Array(D);
        for (let i = 0; i < D; i++) {
          let s = 0;
          for (let j = h * hd; j < (h + 1) * hd; j++) s += Wo[i * H * hd + j]! * z[j]!;
          out[i] = s;
        }
        const v = share(out);
        heads += v;
        parts.push({ name: `blocks.${l}.attn.head${h}`, value: v });
      }
      parts.push({ name: `blocks.${l}.attn.bias`, value: share(attn) - heads });
    }
    parts.push({ name: `blocks.${l}.mlp`, value: share(diff(at(`blocks.${l}.resid_post`), at(`blocks.${l}.resid_mid`))) });
  }
  let constant = headBias;
  if (normBias) for (let i = 0; i < D; i++) constant += normBias[i]! * head[i]!;
  // Gemma 2's final soft-cap bends the logit after the head (past inverting, near the cap): the parts
  // explain the logit before it, the head's row times what the head read (final_norm).
  let logit = row[target]!;
  if ((c as { finalSoftcap?: number }).finalSoftcap) {
    const normed = at('final_norm');
    logit = headBias;
    for (let i = 0; i < D; i++) logit += normed[i]! * head[i]!;
  }
  return { target, position, logit, parts, constant };
}
