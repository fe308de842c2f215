// What every architecture shares: the per-sequence state (KV cache), the scratch a forward step works
// in, prefill in steps of the backend's prefillRows tokens (at least MAX_BATCH), batches whose rows
// belong to several sequences (a server decoding many at once), the choice of which rows get logits,
// encoders' packed bidirectional passes (Transformer.encode), the hook points of an inspected run
// (Hooks), and `Forward`, the named stages an architecture's forward function is written in (embed,
// norm, attention, ffn, add, logits).
// An architecture file (src/arch/llama.ts, gemma.ts...) only says in which order and with which
// options; the stages run on any Backend.

import { formatBytes, InvalidInputError, NonFiniteError, OutOfMemoryError } from '../base/errors.js';
import type { Backend, Handle, NormFusion, PendingParts } from '../backend/backend.js';
import type { Activation, GateActivation } from '../stages/ffn.js';
import type { RopeParams } from '../stages/rope.js';
import type { Candidates } from '../stages/sampling.js';
import type { StepTape } from '../stages/matmul.js';
import type { ModelFile } from '../format/model-file.js';
import type { ModelConfig } from './config.js';
import type { HFMapping } from './hf.js';
import type { AttentionWeights, FfnWeights, Linear, Norm, WeightReader } from './weights.js';

/** Tokens per forward step: prefill (unless the backend's prefillRows is larger) and batched steps; bounds the scratch memory. */
export const MAX_BATCH = 32;

/** Rows of one encoder pass (texts packed one after another, each attending only to itself): at least 512. */
export const ENCODE_ROWS = 512;

/** How one layer attends: its RoPE (none for learned positions), scale, soft-cap and window. */
export interface AttentionOptions<T extends Handle = Handle> {
  rope?: RopeParams;
  /** Multiplies q . k; default 1/sqrt(headDim). */
  scale?: number;
  softcap?: number;
  window?: number;
  /** Add the output to `out` (the residual) instead of storing it. */
  add?: boolean;
  /** false: bidirectional, each segment (text) attending to all of its own rows, no KV cache (encoders). */
  causal?: boolean;
  /** Where the values come from when not from `h` (MobileBERT: queries and keys from a bottleneck, values from x). */
  valueInput?: T;
}

/**
 * Hook points of a forward pass (the same names in every family, TransformerLens's where they exist):
 *   blocks.L.resid_pre     the residual stream entering layer L            [n][dim]
 *   blocks.L.attn.q/k/v    queries, keys, values (after q/k norms and RoPE) [n][heads * headDim]
 *   blocks.L.attn.z        the heads' outputs before the output projection [n][heads * headDim]
 *   blocks.L.attn.out      the attention block's output (Wo z + bo)        [n][dim]
 *   blocks.L.resid_mid     the residual stream entering the feed-forward   [n][dim]
 *   blocks.L.mlp.post      the feed-forward's hidden activations           [n][ffn]
 *   blocks.L.mlp.out       the feed-forward's output                       [n][dim]
 *   blocks.L.resid_post    the residual stream leaving layer L             [n][dim]
 *   final_norm             what the output head reads                      [n][dim]
 *   logits                                                                 [n][vocab]
 * (attention patterns, blocks.L.attn.pattern, are computed from q and k: see src/inspect.ts.)
 * Capturing copies a point's rows aside on the backend; a replacement overwrites them before the pass
 * goes on. With no Hooks, a pass does nothing more than without.
 */
export class Hooks<T extends Handle = Handle> {
  /** Captured rows per point: one copy per forward step (chunk) in order, in memory (CPU) or on the device. */
  readonly captured = new Map<string, { parts: { t: T | Float32Array; rows: number }[]; width: number }>();
  /** Device buffers made for this run, given back when it is read. */
  readonly transient: T[] = [];
  /** Row offset of the step in flight within the whole run (prefill chunks). */
  offset = 0;
  /** Per layer: the attention options it ran with (for patterns). */
  readonly attention = new Map<number, AttentionOptions & { heads: number; kvHeads: number; headDim: number }>();

  constructor(
    readonly wants: (name: string) => boolean,
    /** Values to put at a point, for the whole run ([rows][width]); rows of the step in flight are used. */
    readonly replace: ReadonlyMap<string, Float32Array> = new Map(),
    /** The run's rows (tokens), when known: a replacement must hold exactly that many. */
    readonly rows?: number,
  ) {}

  /** At point `name` of a step of n rows: replace its rows if asked, then capture them if wanted. */
  point(b: Backend<T>, name: string, buf: T, n: number, width: number): void {
    if (n === 0) return;
    const r = this.replace.get(name);
    // On the CPU the buffers are memory: read and written at once; on a device, through copies.
    const cpu = buf instanceof Float32Array;
    if (r) {
      if (this.rows !== undefined && r.length !== this.rows * width) throw new InvalidInputError(`the replacement for ${name} has ${r.length} values: it needs ${this.rows} rows (tokens) of ${width}`);
      const rows = r.subarray(this.offset * width, (this.offset + n) * width);
      if (rows.length !== n * width) throw new InvalidInputError(`the replacement for ${name} has ${r.length / width} rows of ${width}; the run has at least ${this.offset + n}`);
      if (cpu) buf.set(rows);
      else {
        const t = b.weight(Float32Array.from(rows));
        b.copyRows(buf, 0, t, 0, n, width);
        this.transient.push(t);
      }
    }
    if (!this.wants(name)) return;
    let c: T | Float32Array;
    if (cpu) c = buf.slice(0, n * width);
    else {
      c = b.scratch(n * width);
      b.copyRows(c, 0, buf, 0, n, width);
      this.transient.push(c);
    }
    let e = this.captured.get(name);
    if (!e) this.captured.set(name, (e = { parts: [], width }));
    e.parts.push({ t: c, rows: n });
  }

  /** Does any capture or replacement concern `name`? */
  touches(name: string): boolean {
    return this.replace.has(name) || this.wants(name);
  }
}

/** What an encoder pass computes after its layers (Forward.task). */
export type EncoderTask = 'hidden' | 'classify' | 'fill-mask';

/** Scratch activations of forward steps, on the backend: made on first use, reused by every step after. */
export class Workspace<T extends Handle = Handle> {
  private readonly buffers = new Map<string, T>();
  constructor(readonly backend: Backend<T>) {}

  /** Scratch `name` of `length` floats, made the first time it is asked for. */
  buffer(name: string, length: number): T {
    let b = this.buffers.get(name);
    if (!b) this.buffers.set(name, (b = this.backend.scratch(length)));
    return b;
  }

  /** Give the buffers back to the backend (see State.dispose). */
  dispose(): void {
    for (const b of this.buffers.values()) this.backend.release?.(b);
    this.buffers.clear();
  }
}

/** Per-sequence state: the KV cache, on the backend, and the scratch its own forward steps use. */
export class State<T extends Handle = Handle> {
  readonly kCache: T[]; // per layer [contextLength][kvDim]
  readonly vCache: T[];
  /** Tokens already in the cache. */
  position = 0;
  readonly workspace: Workspace<T>;

  /** `halfKv`: the backend may keep the KV cache in f16 (done for models whose weights are f16). */
  constructor(readonly config: ModelConfig, readonly contextLength: number, readonly backend: Backend<T>, halfKv = false) {
    const kvDim = config.nKvHeads * config.headDim;
    try {
      this.kCache = Array.from({ length: config.nLayers }, () => backend.kvCache(contextLength * kvDim, halfKv));
      this.vCache = Array.from({ length: config.nLayers }, () => backend.kvCache(contextLength * kvDim, halfKv));
    } catch (e) {
      if (!(e instanceof OutOfMemoryError)) throw e;
      const bytes = 2 * config.nLayers * contextLength * kvDim * (halfKv ? 2 : 4);
      throw new OutOfMemoryError(`a ${contextLength}-token context needs a ${formatBytes(bytes)} KV cache (${config.nLayers} layers x K and V x ${contextLength} x ${kvDim}) and it does not fit: ${e.message}. Use a shorter context (contextLength, --ctx-size; this model was trained for ${config.contextLength})`);
    }
    this.workspace = new Workspace(backend);
  }

  /** Whether dispose() was called: the state can no longer run. */
  disposed = false;
  /**
   * Give the KV cache and scratch back to the backend's memory (the CPU's arena, which does not shrink
   * otherwise; GPU buffers are destroyed), for the next sequence. generate(), embed() and the others
   * call it when they finish; a state from newState() is the caller's to dispose.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of [...this.kCache, ...this.vCache]) this.backend.release?.(t);
    this.workspace.dispose();
  }
}

/** The rows of a batch that belong to one sequence: rows [row0, row0 + n) at positions start.. of its cache (an encoder's texts have none). */
export interface Segment<T extends Handle = Handle> {
  state?: State<T>;
  row0: number;
  n: number;
  start: number;
}

/** Which rows of a batch get logits: all of them, the last, or none (a prefill chunk before the last). */
export type LogitRows = 'all' | 'last' | 'none';

/**
 * The stages of one forward step over a batch of n tokens, as an architecture's forward function calls
 * them. The rows come in segments, one per sequence (its own KV cache and positions): one segment when
 * a sequence is prefilled or decoded alone, one row from each of several when a server decodes them
 * together, so that every weight is read once for all of them. Buffers are rows of the batch: x (the
 * residual stream), h and h2 (normed inputs), o (a block's output); widths from the config.
 */
export class Forward<W = unknown, T extends Handle = Handle> {
  tokens: readonly number[] = [];
  segments: readonly Segment<T>[] = [];
  /** Rows in flight: the batch's tokens, then (after logitRows) the rows that get logits; 0 = none. */
  n = 0;
  /** 'last': the last row of each segment. */
  rowsWanted: LogitRows = 'last';
  /** When set, logits() keeps the rows it is given (the final hidden states, what the head reads) instead. */
  captureHidden = false;
  /** Their width (the head's input size), once captured. */
  hiddenWidth = 0;
  /** The width of the rows logits() wrote last (the vocabulary, or a classifier's labels). */
  logitsWidth = 0;
  /** Encoders: what the pass computes after the layers; `picked` the rows fill-mask wants logits for. */
  task: EncoderTask = 'hidden';
  picked: readonly number[] = [];
  /** Inspection (Model.run): captures and replacements at the hook points; undefined = none, no cost. */
  hooks?: Hooks<T>;
  /** The layer in flight (set by attention(), read by the stages after it); -1 before the first. */
  layer = -1;
  /** A decode step's recorded work (Backend.recorder) and its rows (one per sequence), replayed by the steps after it with as many (Transformer.run). */
  tape?: { tape: StepTape; rows: number; contextLength: number };
  private ffnCalls = { layer: -1, count: 0 };

  /** A new step: no layer in flight yet. */
  begin(): void {
    this.layer = -1;
    this.ffnCalls = { layer: -1, count: 0 };
    this.pendingNorm = undefined;
    this.pendingParts = undefined;
  }

  /**
   * An RMSNorm not run yet: on a backend that fuses norms (WebGPU), a decode step's norm waits for the
   * product that reads its output and runs inside it (MatmulOp.norm: one dispatch fewer per norm, the
   * same numbers). Anything else that touches tensors runs it first (settle).
   */
  private pendingNorm?: { out: T; x: T; w: T; eps: number; dim: number; parts?: PendingParts<T> };

  /**
   * Wo's product not added to the residual yet: on a backend that takes attention's output projection
   * into attention's pass (projectsAttention), a decode step's x += Wo attention stays as per-head rows
   * until the norm before the FFN reads x + parts and the FFN's down product, accumulating into x, adds
   * them (two passes that run anyway). Anything else that touches x adds them first (settle).
   */
  private pendingParts?: { x: T; parts: PendingParts<T>; width: number };

  /** Run what is pending (the parts owed to x, then the RMSNorm): its output is about to be read, or its input written. */
  settle(): void {
    this.settleParts();
    this.settleNorm();
  }
  private settleNorm(): void {
    if (this.pendingNorm?.parts) this.settleParts(); // (the norm reads x with its parts)
    const p = this.pendingNorm;
    if (!p) return;
    this.pendingNorm = undefined;
    this.b.rmsnorm(p.out, p.x, p.w, p.dim, p.eps, this.n);
  }
  private settleParts(): void {
    const q = this.pendingParts;
    if (!q) return;
    this.pendingParts = undefined;
    this.b.addParts!(q.x, q.parts, q.width);
    // A pending norm of x read x + parts: x holds them now.
    if (this.pendingNorm?.parts) this.pendingNorm = { ...this.pendingNorm, parts: undefined };
  }

  /**
   * For products reading `h`: the pending norm, if h is its output (the first product takes it in,
   * reading the norm's input; the ones after it read h), else nothing (after settling any other). Parts
   * owed to h are added first; parts owed to another tensor stay owed, for the caller to take in or settle.
   */
  private takeNorm(h: T): { x: T; norm: NormFusion<T> } | undefined {
    if (this.pendingParts?.x === h) this.settleParts(); // (a product reading x itself)
    const p = this.pendingNorm;
    if (!p || p.out !== h) {
      this.settleNorm(); // (parts owed to x stay owed: the caller's products do not read x)
      return undefined;
    }
    this.pendingNorm = undefined;
    return { x: p.x, norm: { w: p.w, eps: p.eps, out: p.out, parts: p.parts } };
  }

  /** The residual stream leaving the last layer (encoders, whose passes end without logitRows). */
  endLayers(): void {
    this.settle();
    if (this.hooks && this.layer >= 0) this.hooks.point(this.b, `blocks.${this.layer}.resid_post`, this.x, this.n, this.c.dim);
    this.layer = -1;
  }
  readonly x: T;
  readonly h: T;
  readonly h2: T;
  readonly o: T;
  private readonly b: Backend<T>;

  /** `capacity`: the most rows a step holds (MAX_BATCH or the backend's prefillRows for decoders, ENCODE_ROWS or more for encoders). */
  constructor(readonly c: ModelConfig, readonly w: W, readonly ws: Workspace<T>, readonly capacity = MAX_BATCH) {
    this.b = ws.backend;
    const B = capacity;
    this.x = ws.buffer('x', B * c.dim);
    this.h = ws.buffer('h', B * c.dim);
    this.h2 = ws.buffer('h2', B * c.dim);
    this.o = ws.buffer('o', B * c.dim);
  }

  /** The context length of the sequences in flight (all of a batch's are alike). */
  get contextLength(): number {
    return this.segments[0]!.state!.contextLength;
  }

  /** Scratch of `width` floats per row, for what an architecture needs beyond x, h, h2 and o. */
  buffer(name: string, width: number): T {
    return this.ws.buffer(name, this.capacity * width);
  }

  /**
   * Run `fn`, a stage that reads the step's tokens or positions (from this.tokens and this.segments
   * when it runs): in a recorded step (Backend.recorder) it runs again at each replay, where they are
   * the replayed step's.
   */
  private live(fn: () => void): void {
    const r = this.b.recorder;
    if (r?.recording) r.live(fn);
    else fn();
  }

  /** out = table[tokens] * scale (rows of the table's width). */
  embed(out: T, table: T, o: { scale?: number; width?: number } = {}): void {
    this.settle();
    this.live(() => this.b.embed(out, table, this.tokens, o.width ?? this.c.dim, { scale: o.scale }));
  }

  /** out += table[position + offset] for each row: learned absolute positions (GPT-2, OPT's offset 2). */
  positions(out: T, table: T, o: { offset?: number; width?: number } = {}): void {
    this.settle();
    this.live(() => {
      const ids = this.segments.flatMap((g) => Array.from({ length: g.n }, (_, t) => g.start + t + (o.offset ?? 0)));
      this.b.embed(out, table, ids, o.width ?? this.c.dim, { accumulate: true });
    });
  }

  /**
   * Each text's rows moved by one (MobileBERT's width-3 convolution over the embeddings): `by` +1 gives
   * row t the text's row t + 1, -1 its row t - 1; the row that has none gets `zeros` (one row of width).
   */
  shiftRows(out: T, x: T, by: 1 | -1, zeros: T, width: number): void {
    this.settle();
    for (const { row0, n } of this.segments) {
      if (n > 1) this.b.copyRows(out, by > 0 ? row0 : row0 + 1, x, by > 0 ? row0 + 1 : row0, n - 1, width);
      this.b.copyRows(out, by > 0 ? row0 + n - 1 : row0, zeros, 0, 1, width);
    }
  }

  /** out += table[row] for every row (BERT's token type embedding: type 0 for a single text). */
  addRow(out: T, table: T, row: number, width = this.c.dim): void {
    this.settle();
    this.b.embed(out, table, new Array<number>(this.n).fill(row), width, { accumulate: true });
  }

  /** x = act(x) over the rows in flight: an activation, or tanh (a soft-cap of 1). */
  activate(x: T, act: Activation | 'tanh', width = this.c.dim): void {
    if (this.n === 0) return;
    this.settle();
    if (act === 'tanh') this.b.softcap(x, this.n * width, 1);
    else this.b.activate(x, this.n * width, act);
  }

  /** out = norm(x) per row (RMSNorm or LayerNorm; out may be x). */
  norm(out: T, x: T, N: Norm<T>): void {
    if (this.n === 0) return;
    if (N.kind === 'rms' && this.b.fusesNorm && this.n === 1 && !this.hooks && out !== x) {
      this.settleNorm();
      // Parts owed to x stay owed (the norm's product reads x + parts); owed to another tensor, they are added.
      if (this.pendingParts && this.pendingParts.x !== x) this.settleParts();
      this.pendingNorm = { out, x, w: N.w, eps: N.eps, dim: N.dim, parts: this.pendingParts?.parts };
      return;
    }
    this.settle();
    if (N.kind === 'rms') this.b.rmsnorm(out, x, N.w, N.dim, N.eps, this.n);
    else if (N.kind === 'affine') this.b.affine(out, x, N.w, N.b!, N.dim, this.n);
    else this.b.layernorm(out, x, N.w, N.b!, N.dim, N.eps, this.n);
  }

  /** out (+)= W x + b per row. */
  linear(out: T, x: T, L: Linear<T>, o: { add?: boolean } = {}): void {
    if (this.n === 0) return;
    const fused = this.takeNorm(x);
    // Parts owed to out are taken in by this product when it adds into out (the FFN's down product).
    let parts: PendingParts<T> | undefined;
    const q = this.pendingParts;
    if (q && o.add && q.x === out && x !== out && fused?.x !== out) {
      parts = q.parts;
      this.pendingParts = undefined;
    } else if (q && (q.x === out || q.x === x || q.x === fused?.x)) {
      this.settleParts();
      if (fused?.norm.parts) fused.norm.parts = undefined; // (x holds them now)
    }
    this.b.matmul([{ out, w: L.w, x: fused?.x ?? x, n: this.n, rows: L.rows, cols: L.cols, accumulate: o.add, bias: L.b, norm: fused?.norm, parts }]);
  }

  /** out += x over the rows in flight (width dim). */
  add(out: T, x: T, width = this.c.dim): void {
    this.settleParts();
    const p = this.pendingNorm;
    if (p && p.out === x && p.x !== out && p.dim === width && this.b.rmsnormAdd) {
      // x is a pending norm's output (Gemma 2/3's x += rmsnorm(o)): the norm and the add in one stage
      this.pendingNorm = undefined;
      return this.b.rmsnormAdd(p.out, p.x, p.w, p.dim, p.eps, this.n, out);
    }
    this.settle();
    if (this.n > 0) this.b.add(out, x, this.n * width);
  }

  /**
   * out (+)= Wo attention(rope(Wq h + bq), rope(Wk h + bk), Wv h + bv) for layer l: the projections,
   * the optional per-head q/k norms, RoPE, the KV cache write and causal attention as `o` says.
   */
  attention(l: number, out: T, h: T, A: AttentionWeights<T>, o: AttentionOptions<T> = {}): void {
    const { c, b, n } = this;
    const hk = this.hooks;
    if (hk) {
      if (this.layer >= 0) hk.point(b, `blocks.${this.layer}.resid_post`, this.x, n, c.dim);
      hk.point(b, `blocks.${l}.resid_pre`, this.x, n, c.dim);
      hk.attention.set(l, { ...o, valueInput: undefined, add: undefined, heads: c.nHeads, kvHeads: c.nKvHeads, headDim: c.headDim });
    }
    this.layer = l;
    const qDim = c.nHeads * c.headDim;
    const kvDim = c.nKvHeads * c.headDim;
    let q = this.buffer('q', qDim);
    let k = this.buffer('k', kvDim);
    const v = this.buffer('v', kvDim);
    const att = this.buffer('att', qDim);
    const shape = { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, scale: o.scale, softcap: o.softcap, window: o.window };
    const fused = this.takeNorm(h);
    // Decoding one sequence on a backend that packs the projections (WebGPU): norm and q/k/v in one
    // pass, then biases, q/k norms, RoPE, the cache writes and attention in another.
    const seg = this.segments[0]!;
    const allOrNone = (xs: unknown[]) => xs.every((x) => x) || xs.every((x) => !x);
    if (fused && b.projectQKV && b.ropeAttention && b.takesRopeAttention?.(c.headDim) && n === 1 && this.segments.length === 1 && seg.state && o.causal !== false && allOrNone([A.q.b, A.k.b, A.v.b]) && allOrNone([A.qNorm, A.kNorm]) && !o.valueInput) {
      const qkv = this.buffer('qkv', qDim + 2 * kvDim);
      if (b.projectQKV(qkv, A.q.w, A.k.w, A.v.w, fused.x, qDim, kvDim, A.q.cols, fused.norm)) {
        const [kc, vc] = [seg.state.kCache[l]!, seg.state.vCache[l]!];
        const extras = { bias: A.q.b && ([A.q.b, A.k.b!, A.v.b!] as const), qNorm: A.qNorm, kNorm: A.kNorm };
        if (o.add && !hk && !A.o.b && b.addParts && b.projectsAttention?.(A.o.w, shape)) {
          // x += Wo attention as per-head rows, owed to x until the products after it take them in.
          this.settleParts();
          const parts = this.ws.buffer('attnParts', c.nHeads * A.o.rows);
          b.ropeAttention(parts, qkv, kc, vc, seg.start, shape, o.rope, extras, { w: A.o.w, rows: A.o.rows });
          this.pendingParts = { x: out, parts: { t: parts, count: c.nHeads }, width: A.o.rows };
          return;
        }
        b.ropeAttention(att, qkv, kc, vc, seg.start, shape, o.rope, extras);
        return this.attentionOut(l, out, att, A.o, o.add);
      }
    }
    b.matmul([
      { out: q, w: A.q.w, x: fused?.x ?? h, n, rows: qDim, cols: A.q.cols, bias: A.q.b, norm: fused?.norm },
      { out: k, w: A.k.w, x: h, n, rows: kvDim, cols: A.k.cols, bias: A.k.b },
      { out: v, w: A.v.w, x: o.valueInput ?? h, n, rows: kvDim, cols: A.v.cols, bias: A.v.b },
    ]);
    if (A.qNorm) {
      const qn = this.buffer('qn', qDim);
      b.rmsnorm(qn, q, A.qNorm.w, c.headDim, A.qNorm.eps, n * c.nHeads);
      q = qn;
    }
    if (A.kNorm) {
      const kn = this.buffer('kn', kvDim);
      b.rmsnorm(kn, k, A.kNorm.w, c.headDim, A.kNorm.eps, n * c.nKvHeads);
      k = kn;
    }
    if (hk) {
      // RoPE first (it is applied per segment below otherwise), so that q and k are seen as attention uses them.
      if (o.rope) for (const { row0, n: rows, start } of this.segments) {
        b.rope(q, c.nHeads, start, rows, o.rope, row0);
        b.rope(k, c.nKvHeads, start, rows, o.rope, row0);
      }
      hk.point(b, `blocks.${l}.attn.q`, q, n, qDim);
      hk.point(b, `blocks.${l}.attn.k`, k, n, kvDim);
      hk.point(b, `blocks.${l}.attn.v`, v, n, kvDim);
      o = { ...o, rope: undefined };
    }
    if (o.causal === false) {
      // An encoder's texts: each one's keys and values (copied to rows 0.. of their own), seen by all its rows.
      const [kc, vc] = [this.buffer('kc', kvDim), this.buffer('vc', kvDim)];
      for (const { row0, n: rows } of this.segments) {
        b.copyRows(kc, 0, k, row0, rows, kvDim);
        b.copyRows(vc, 0, v, row0, rows, kvDim);
        b.attention(att, q, kc, vc, rows, 0, { ...shape, causal: false }, row0);
      }
      return this.attentionOut(l, out, att, A.o, o.add);
    }
    // Each sequence rotates at its own positions, writes its own cache, attends over its own past.
    const rope = o.rope;
    const [qr, kr] = [q, k];
    this.live(() => {
      for (const { state: s, row0, n: rows, start } of this.segments) {
        const state = s!;
        if (b.ropeCache) {
          b.ropeCache(qr, kr, v, state.kCache[l]!, state.vCache[l]!, c.nHeads, c.nKvHeads, c.headDim, start, rows, rope, row0);
          b.attention(att, qr, state.kCache[l]!, state.vCache[l]!, rows, start, shape, row0);
          continue;
        }
        if (rope) {
          b.rope(qr, c.nHeads, start, rows, rope, row0);
          b.rope(kr, c.nKvHeads, start, rows, rope, row0);
        }
        b.copyRows(state.kCache[l]!, start, kr, row0, rows, kvDim);
        b.copyRows(state.vCache[l]!, start, v, row0, rows, kvDim);
        b.attention(att, qr, state.kCache[l]!, state.vCache[l]!, rows, start, shape, row0);
      }
    });
    this.attentionOut(l, out, att, A.o, o.add);
  }

  /** out (+)= Wo z + bo, through the hook points z and attn.out when inspecting. */
  private attentionOut(l: number, out: T, z: T, Wo: Linear<T>, add?: boolean): void {
    const hk = this.hooks;
    if (!hk) return this.linear(out, z, Wo, { add });
    hk.point(this.b, `blocks.${l}.attn.z`, z, this.n, Wo.cols);
    this.blockOut(`blocks.${l}.attn.out`, out, z, Wo, add);
  }

  /** out (+)= W x + b with the product seen at hook point `name` first (computed apart when it is added). */
  private blockOut(name: string, out: T, x: T, W: Linear<T>, add?: boolean): void {
    const hk = this.hooks!;
    if (!add || !hk.touches(name)) {
      this.linear(out, x, W, { add });
      if (!add) hk.point(this.b, name, out, this.n, W.rows);
      return;
    }
    const y = this.buffer('hookOut', W.rows);
    this.linear(y, x, W);
    hk.point(this.b, name, y, this.n, W.rows);
    this.add(out, y, W.rows);
  }

  /** out (+)= down(act(gate h) * up h) for a gated FFN, down(act(up h)) otherwise, biases where present. */
  ffn(out: T, h: T, F: FfnWeights<T>, o: { add?: boolean } = {}): void {
    const { b, n } = this;
    const width = F.up.rows;
    const hk = this.hooks;
    // A layer's feed-forwards after its first (MobileBERT stacks four): mlp1, mlp2...
    let mlp = 'mlp';
    if (hk) {
      mlp = this.ffnCalls.layer === this.layer ? `mlp${++this.ffnCalls.count}` : ((this.ffnCalls = { layer: this.layer, count: 0 }), 'mlp');
      if (mlp === 'mlp') hk.point(b, `blocks.${this.layer}.resid_mid`, this.x, n, this.c.dim);
    }
    const gate = this.buffer('gate', width);
    const up = this.buffer('up', width);
    if (F.gate) {
      const fused = this.takeNorm(h);
      if (F.gate.b || F.up.b) {
        b.matmul([{ out: gate, w: F.gate.w, x: fused?.x ?? h, n, rows: width, cols: F.gate.cols, bias: F.gate.b, norm: fused?.norm }, { out: up, w: F.up.w, x: h, n, rows: width, cols: F.up.cols, bias: F.up.b }]);
        b.gated(gate, up, n * width, F.act as GateActivation);
      } else {
        b.gatedMatmul(gate, F.gate.w, F.up.w, fused?.x ?? h, up, n, width, F.up.cols, F.act as GateActivation, fused?.norm);
      }
    } else {
      this.linear(gate, h, F.up);
      b.activate(gate, n * width, F.act as Activation);
    }
    if (!hk) return this.linear(out, gate, F.down, o);
    hk.point(b, `blocks.${this.layer}.${mlp}.post`, gate, n, width);
    this.blockOut(`blocks.${this.layer}.${mlp}.out`, out, gate, F.down, o.add);
  }

  /**
   * The rows of x that get logits, from here on the rows in flight: all of the batch's, the last of
   * each segment (copied to rows of their own unless they are already all the rows), or none (then the
   * stages after this one do nothing).
   */
  logitRows(x: T, width = this.c.dim): T {
    this.endLayers(); // (settles)
    if (this.rowsWanted === 'none') {
      this.n = 0;
      return x;
    }
    if (this.rowsWanted === 'last' && this.n > this.segments.length) {
      const last = this.ws.buffer('last', MAX_BATCH * width);
      this.segments.forEach((g, i) => this.b.copyRows(last, i, x, g.row0 + g.n - 1, 1, width));
      this.n = this.segments.length;
      return last;
    }
    return x;
  }

  /**
   * Encoders' heads read some rows of x: the first of each text (classification's [CLS]), or the rows
   * fill-mask asks for. Copied to rows of their own; from here on the rows in flight.
   */
  headRows(x: T, which: 'first' | 'picked', width = this.c.dim): T {
    this.endLayers(); // (settles)
    const rows = which === 'first' ? this.segments.map((g) => g.row0) : this.picked;
    const out = this.ws.buffer('headRows', MAX_BATCH * width);
    rows.forEach((r, i) => this.b.copyRows(out, i, x, r, 1, width));
    this.n = rows.length;
    return out;
  }

  /** Logits = W x (+ b), soft-capped when the model asks, into the state's logits buffer. */
  logits(x: T, head: Linear<T>, o: { softcap?: number } = {}): void {
    if (this.n === 0) return;
    if (this.captureHidden) {
      this.settle();
      this.hiddenWidth = head.cols;
      this.b.copyRows(this.ws.buffer('hidden', MAX_BATCH * head.cols), 0, x, 0, this.n, head.cols);
      return;
    }
    const out = this.logitsBuffer();
    this.logitsWidth = head.rows;
    this.hooks?.point(this.b, 'final_norm', x, this.n, head.cols);
    this.linear(out, x, head);
    if (o.softcap) this.b.softcap(out, this.n * head.rows, o.softcap);
    this.hooks?.point(this.b, 'logits', out, this.n, head.rows);
  }

  /** Where logits go: [vocab] for one sequence's last row, [MAX_BATCH][vocab] for several rows. */
  logitsBuffer(): T {
    return this.rowsWanted === 'all' || this.segments.length > 1 ? this.ws.buffer('allLogits', MAX_BATCH * this.c.vocabSize) : this.ws.buffer('logits', this.c.vocabSize);
  }
}

/** An architecture: its hyper-parameters, how it reads its weights, and its forward pass over Forward's stages. */
export interface Architecture<C extends ModelConfig = ModelConfig, W = unknown> {
  /** The family's name, as its file is named (src/arch/<family>.ts). */
  readonly family: string;
  /** GGUF general.architecture values this file runs. */
  readonly gguf: readonly string[];
  /** How it reads a Hugging Face folder into the GGUF form (src/arch/hf.ts). */
  readonly hf?: HFMapping;
  /** Hyper-parameters from a GGUF-form model file (metadata and tensor shapes), checked. */
  config(file: ModelFile): C;
  /** The weights, each read (checked against `c`) and uploaded through `read`. */
  weights<T extends Handle>(read: WeightReader<T>, c: C): W;
  /** One batch's forward pass: embeddings, the layers, and logits for the rows Forward says. */
  forward(f: Forward<W>, c: C): void;
  /**
   * The output head on rows x (the residual stream after the last layer): final norm, projections,
   * logits. forward() ends with it; the logit lens runs it on every layer's residual stream.
   */
  unembed?(f: Forward<W>, c: C, x: Handle): void;
  /** Bidirectional (BERT and kin): runs whole texts through Transformer.encode, never generates. */
  readonly encoder?: boolean;
}

/** A loaded model on a backend: the architecture, its config and uploaded weights, and the generation-facing calls. */
export class Transformer<T extends Handle = Handle> {
  constructor(
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    readonly arch: Architecture<any, any>,
    readonly config: ModelConfig,
    readonly weights: unknown,
    readonly backend: Backend<T>,
    /** The weights came from an f16 file: the KV cache may be f16 too (an f32 model keeps f32 precision). */
    readonly halfKv = false,
  ) {}

  newState(contextLength = this.config.contextLength): State<T> {
    if (this.arch.encoder) throw new InvalidInputError(`${this.config.name} is an encoder (${this.config.architecture}): it embeds, classifies and fills masks, but does not generate text`);
    if (!(Number.isInteger(contextLength) && contextLength > 0)) throw new InvalidInputError(`context length must be a positive integer, got ${contextLength}`);
    const max = this.config.maxContext;
    if (max !== undefined && contextLength > max) throw new InvalidInputError(`a context of ${contextLength} tokens is longer than this model's ${max} learned positions: use at most ${max}`);
    return new State(this.config, contextLength, this.backend, this.halfKv);
  }

  /**
   * Run `tokens` through the model at the state's current position and advance it.
   * Returns logits [tokens.length][vocab] when `allLogits`, otherwise those of the last token [vocab].
   */
  async forward(state: State<T>, tokens: readonly number[], allLogits = false): Promise<Float32Array> {
    const V = this.config.vocabSize;
    this.check(state, tokens);
    const out = allLogits ? new Float32Array(tokens.length * V) : new Float32Array(V);
    const step = allLogits ? MAX_BATCH : this.prefillRows; // (every row's logits: at most MAX_BATCH x vocab at once)
    for (let i = 0; i < tokens.length; i += step) {
      const chunk = tokens.slice(i, i + step);
      const last = i + chunk.length === tokens.length;
      const f = this.forwardBatch(state, chunk, allLogits ? 'all' : last ? 'last' : 'none');
      if (allLogits) out.set(await this.backend.read(f.logitsBuffer(), chunk.length * V), i * V);
      else if (last) out.set(await this.backend.read(f.logitsBuffer(), V));
    }
    for (let i = 0; i < out.length; i++) if (!Number.isFinite(out[i]!)) throw this.nonFinite(state, allLogits ? Math.floor(i / V) + state.position - tokens.length : state.position - 1);
    return out;
  }

  /** Like forward, but returns only the most likely next token, computed where the logits are. */
  async forwardArgmax(state: State<T>, tokens: readonly number[]): Promise<number> {
    const id = await this.backend.argmax(this.forwardToLastLogits(state, tokens), 0, this.config.vocabSize);
    if (id < 0) throw this.nonFinite(state, state.position - 1);
    return id;
  }

  /** Like forward, but returns only the k most likely next tokens (sorted), selected where the logits are. */
  async forwardTopK(state: State<T>, tokens: readonly number[], k: number): Promise<Candidates> {
    const c = await this.backend.topk(this.forwardToLastLogits(state, tokens), 0, this.config.vocabSize, k);
    if (c.ids.length === 0) throw this.nonFinite(state, state.position - 1);
    return c;
  }

  /**
   * The final hidden state of every token (the vector the output head turns into logits, after the
   * final norm): [tokens.length][width], width the head's input size. Advances the state like forward().
   */
  async hidden(state: State<T>, tokens: readonly number[]): Promise<{ data: Float32Array; width: number }> {
    this.check(state, tokens);
    let width = 0;
    const parts: Float32Array[] = [];
    for (let i = 0; i < tokens.length; i += MAX_BATCH) {
      const chunk = tokens.slice(i, i + MAX_BATCH);
      const f = this.run(state.workspace, [{ state, row0: 0, n: chunk.length, start: state.position }], chunk, 'all', true);
      width = f.hiddenWidth;
      parts.push(await this.backend.read(f.ws.buffer('hidden', MAX_BATCH * width), chunk.length * width));
    }
    const data = new Float32Array(tokens.length * width);
    parts.forEach((p, i) => data.set(p, i * MAX_BATCH * width));
    return { data, width };
  }

  private nonFinite(_state: State<T>, position: number): NonFiniteError {
    return new NonFiniteError(`the logits at position ${position} are NaN or infinite: the model's activations overflowed f32 (its weights are finite); its output cannot be trusted from here on`);
  }

  /** Record the steps for `tokens`; the last token's logits are left in the returned buffer (on the backend). */
  private forwardToLastLogits(state: State<T>, tokens: readonly number[]): T {
    this.check(state, tokens);
    let f: Forward<unknown, T> | undefined;
    const step = this.prefillRows;
    for (let i = 0; i < tokens.length; i += step) {
      const chunk = tokens.slice(i, i + step);
      f = this.forwardBatch(state, chunk, i + chunk.length === tokens.length ? 'last' : 'none');
    }
    return f!.logitsBuffer();
  }

  private check(state: State<T>, tokens: readonly number[]): void {
    const c = this.config;
    if (state.disposed) throw new InvalidInputError('this state was disposed (its KV cache given back): make a new one with newState()');
    if (tokens.length === 0) throw new InvalidInputError('no tokens to run: give at least one');
    if (state.position + tokens.length > state.contextLength)
      throw new InvalidInputError(`${state.position + tokens.length} tokens do not fit the context of ${state.contextLength}: shorten the prompt or lower max tokens`);
    for (const t of tokens)
      if (!(Number.isInteger(t) && t >= 0 && t < c.vocabSize)) throw new InvalidInputError(`token id ${t} is outside the vocabulary (0..${c.vocabSize - 1})`);
  }

  /**
   * One step for several sequences at once, each with its own state: `steps[i].tokens` continue
   * `steps[i].state` (MAX_BATCH tokens in all). The matrix products read every weight once for all of
   * them; each sequence attends over its own cache. Returns, on the backend, the logits of each
   * sequence's last token: [steps.length][vocab] (read them, or argmax / top-k at row i's offset).
   */
  forwardMany(ws: Workspace<T>, steps: readonly { state: State<T>; tokens: readonly number[] }[]): T {
    if (steps.length === 0) throw new InvalidInputError('forwardMany() needs at least one sequence');
    const total = steps.reduce((n, s) => n + s.tokens.length, 0);
    if (total > MAX_BATCH) throw new InvalidInputError(`${total} tokens in one step: at most ${MAX_BATCH} (prefill long prompts on their own)`);
    if (new Set(steps.map((s) => s.state)).size !== steps.length) throw new InvalidInputError('forwardMany() was given the same sequence twice');
    if (steps.some((s) => s.state.contextLength !== steps[0]!.state.contextLength)) throw new InvalidInputError('sequences decoded together must have the same context length');
    for (const s of steps) this.check(s.state, s.tokens);
    let row0 = 0;
    const segments = steps.map(({ state, tokens }) => {
      const g = { state, row0, n: tokens.length, start: state.position };
      row0 += tokens.length;
      return g;
    });
    const f = this.run(ws, segments, steps.flatMap((s) => s.tokens), 'last');
    return f.logitsBuffer();
  }

  /**
   * One run of `tokens` from position 0 with `hooks` (captures and replacements at the hook points):
   * decoders in prefill steps of MAX_BATCH rows, logits for every row [n][vocab]; encoders in one
   * bidirectional pass, the final hidden states [n][dim]. Reads the captures into arrays [rows][width].
   */
  async inspect(tokens: readonly number[], hooks: Hooks<T>): Promise<{ out: Float32Array; captured: Map<string, { data: Float32Array; rows: number; width: number }> }> {
    let out: Float32Array;
    if (this.arch.encoder) [out] = (await this.encode([tokens], 'hidden', [], hooks)) as [Float32Array];
    else {
      const state = this.newState(tokens.length);
      try {
        this.check(state, tokens);
        const V = this.config.vocabSize;
        out = new Float32Array(tokens.length * V);
        for (let i = 0; i < tokens.length; i += MAX_BATCH) {
          const chunk = tokens.slice(i, i + MAX_BATCH);
          hooks.offset = i;
          const f = this.run(state.workspace, [{ state, row0: 0, n: chunk.length, start: state.position }], chunk, 'all', false, hooks);
          out.set(await this.backend.read(f.logitsBuffer(), chunk.length * V), i * V);
        }
      } finally {
        state.dispose();
      }
    }
    const captured = new Map<string, { data: Float32Array; rows: number; width: number }>();
    for (const [name, { parts, width }] of hooks.captured) {
      const rows = parts.reduce((a, p) => a + p.rows, 0);
      const data = new Float32Array(rows * width);
      let at = 0;
      for (const p of parts) {
        data.set(p.t instanceof Float32Array ? p.t : await this.backend.read(p.t, p.rows * width), at);
        at += p.rows * width;
      }
      captured.set(name, { data, rows, width });
    }
    for (const t of hooks.transient) this.backend.release?.(t);
    return { out, captured };
  }

  private lensPass?: Forward<unknown, T>;

  /** The output head (Architecture.unembed) on rows of residual stream [n][dim]: logits [n][vocab] (the logit lens). */
  async unembedRows(rows: Float32Array, n: number): Promise<Float32Array> {
    const c = this.config, V = c.vocabSize;
    if (!this.arch.unembed) throw new InvalidInputError(`${c.architecture} has no output head to read the residual stream through`);
    if (rows.length !== n * c.dim) throw new InvalidInputError(`unembedRows: ${rows.length} values are not ${n} rows of ${c.dim}`);
    const f = (this.lensPass ??= new Forward(c, this.weights, new Workspace(this.backend)));
    const out = new Float32Array(n * V);
    for (let i = 0; i < n; i += MAX_BATCH) {
      const k = Math.min(MAX_BATCH, n - i);
      const part = rows.subarray(i * c.dim, (i + k) * c.dim);
      let t: T | undefined;
      if (f.x instanceof Float32Array) f.x.set(part);
      else {
        t = this.backend.weight(Float32Array.from(part));
        this.backend.copyRows(f.x, 0, t, 0, k, c.dim);
      }
      f.segments = [{ row0: 0, n: k, start: 0 }];
      f.tokens = new Array<number>(k).fill(0);
      f.n = k;
      f.rowsWanted = 'all';
      f.hooks = undefined;
      f.begin();
      this.arch.unembed(f as Forward, c, f.x);
      f.settle();
      out.set(await this.backend.read(f.logitsBuffer(), k * V), i * V);
      if (t) this.backend.release?.(t);
    }
    return out;
  }

  private readonly steps = new WeakMap<Workspace<T>, Forward<unknown, T>>();
  private encoderPass?: Forward<unknown, T>;

  /**
   * Encoders: texts (token ids each, at most the model's positions) through the layers and `task`'s
   * head, packed one after another into passes of up to max(ENCODE_ROWS, context) rows and MAX_BATCH
   * texts, each attending only to its own rows: no padding, so a text's result does not depend on
   * what it was batched with. Returns per text: 'hidden' its final hidden states [n][dim]; 'classify'
   * the classifier's logits [labels]; 'fill-mask' the vocabulary logits of its `picked` rows [k][vocab].
   */
  async encode(texts: readonly (readonly number[])[], task: EncoderTask = 'hidden', picked: readonly (readonly number[])[] = [], hooks?: Hooks<T>): Promise<Float32Array[]> {
    if (!this.arch.encoder) throw new InvalidInputError(`${this.config.architecture} is a decoder: encode() runs encoders (BERT and kin)`);
    const c = this.config;
    const capacity = Math.max(ENCODE_ROWS, c.contextLength);
    const f = (this.encoderPass ??= new Forward(c, this.weights, new Workspace(this.backend), capacity));
    for (const t of texts) {
      if (t.length === 0) throw new InvalidInputError('an empty text has no tokens to encode (an encoder needs at least its [CLS] token)');
      if (t.length > c.contextLength) throw new InvalidInputError(`a text of ${t.length} tokens is longer than this model's ${c.contextLength} positions: shorten or truncate it`);
      for (const id of t) if (!(Number.isInteger(id) && id >= 0 && id < c.vocabSize)) throw new InvalidInputError(`token id ${id} is outside the vocabulary (0..${c.vocabSize - 1})`);
    }
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; ) {
      // One pass: as many texts as fit (fill-mask: one text, at most MAX_BATCH masked rows).
      const group: number[] = [];
      let rows = 0;
      while (i < texts.length && group.length < (task === 'fill-mask' ? 1 : MAX_BATCH) && rows + texts[i]!.length <= capacity) {
        rows += texts[i]!.length;
        group.push(i++);
      }
      let row0 = 0;
      f.segments = group.map((j) => {
        const g = { row0, n: texts[j]!.length, start: 0 };
        row0 += g.n;
        return g;
      });
      f.tokens = group.flatMap((j) => texts[j]!);
      f.n = rows;
      f.rowsWanted = 'all';
      f.task = task;
      f.picked = task === 'fill-mask' ? (picked[group[0]!] ?? []) : [];
      if (f.picked.length > MAX_BATCH) throw new InvalidInputError(`${f.picked.length} masks in one text: at most ${MAX_BATCH}`);
      f.hooks = hooks;
      f.begin();
      if (hooks) hooks.offset = 0;
      this.arch.forward(f as Forward, c);
      f.settle();
      if (task === 'hidden') f.endLayers();
      if (task === 'hidden') {
        const data = await this.backend.read(f.x, rows * c.dim);
        for (const g of f.segments) out.push(data.slice(g.row0 * c.dim, (g.row0 + g.n) * c.dim));
      } else {
        const width = f.logitsWidth;
        const data = await this.backend.read(f.logitsBuffer(), f.n * width);
        if (task === 'classify') group.forEach((_, k) => out.push(data.slice(k * width, (k + 1) * width)));
        else out.push(data);
      }
    }
    for (const v of out) for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) throw new NonFiniteError(`the encoder's ${task === 'hidden' ? 'hidden states' : 'logits'} hold NaN or infinite values: the model's activations overflowed f32 (its weights are finite)`);
    return out;
  }

  /** Tokens per prefill step of one sequence: the backend's prefillRows, at least MAX_BATCH. */
  private get prefillRows(): number {
    const rows = this.backend.prefillRows ?? MAX_BATCH;
    return Number.isInteger(rows) && rows > MAX_BATCH ? rows : MAX_BATCH;
  }

  /** One batch of n <= prefillRows tokens of one sequence through the architecture's forward pass. */
  private forwardBatch(s: State<T>, tokens: readonly number[], rows: LogitRows): Forward<unknown, T> {
    return this.run(s.workspace, [{ state: s, row0: 0, n: tokens.length, start: s.position }], tokens, rows);
  }

  private run(ws: Workspace<T>, segments: Segment<T>[], tokens: readonly number[], rows: LogitRows, captureHidden = false, hooks?: Hooks<T>): Forward<unknown, T> {
    let f = this.steps.get(ws);
    if (!f) this.steps.set(ws, (f = new Forward(this.config, this.weights, ws, this.prefillRows)));
    f.tokens = tokens;
    f.segments = segments;
    f.n = tokens.length;
    f.rowsWanted = rows;
    f.captureHidden = captureHidden;
    f.hooks = hooks;
    f.begin();
    // A decode step (one token of each sequence, their logits) is the same work at every position but
    // for the stages that read the tokens or the positions (Forward.live): where the backend records
    // steps, the first is recorded and the ones after it with as many sequences replay it (the CPU:
    // without the JavaScript of the stages, which costs as much as a tenth of a step on two threads,
    // and more while V8 compiles it).
    const r = this.backend.recorder;
    const replayable = r && segments.every((g) => g.state && g.n === 1) && rows === 'last' && !captureHidden && !hooks;
    // (recorded for as many sequences, of the same context length: Phi-3.5's longrope picks its factors by it)
    const ctx = segments[0]?.state?.contextLength;
    if (replayable && f.tape?.rows === segments.length && f.tape.contextLength === ctx && r.replay(f.tape.tape)) {
      for (const g of segments) g.state!.position += 1;
      return f;
    }
    f.tape = undefined;
    if (replayable) r.start();
    try {
      this.arch.forward(f as Forward, this.config);
      f.settle(); // (an architecture's last norm may still wait for a product)
    } finally {
      const tape = r?.recording ? r.stop() : undefined;
      if (replayable && tape) f.tape = { tape, rows: segments.length, contextLength: ctx! };
    }
    for (const g of segments) if (g.state) g.state.position += g.n;
    return f;
  }
}
