import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../src/engine.js';
import { convertLlama2c } from '../src/load/node-io.js';
import { hasShared, STORIES_BIN, STORIES_TOK, storiesReference, TINY_GGUF } from './helpers.js';
import { referenceLogits } from './reference-model.js';
import type { LlamaConfig } from '../src/arch/llama.js';

const tmp = mkdtempSync(join(tmpdir(), 'pocketlm-model-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function greedyCheck(model: Model) {
  const ref = storiesReference();
  const gen = model.generate('', { temperature: 0, maxTokens: 256, ignoreEos: true });
  const text = await gen.text();
  expect(gen.tokens).toEqual(ref.generated_ids);
  expect(text).toBe(ref.text);
  // The bound: 1e-4 on the first 16 logits at positions 0..2 (BOS, then the first two generated tokens).
  const logits = await model.logits([1, ref.generated_ids[0]!, ref.generated_ids[1]!]);
  for (let p = 0; p < 3; p++)
    for (let i = 0; i < 16; i++) expect(Math.abs(logits[p * 512 + i]! - ref.logits_first16_at_pos0_1_2[p]![i]!)).toBeLessThanOrEqual(1e-4);
}

describe.skipIf(!hasShared)('stories260K end to end', () => {
  it('from the llama2.c checkpoint: greedy from BOS reproduces the 256 reference ids and logits', async () => {
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, threads: 1 });
    await greedyCheck(m);
  });

  it('reports its reading progress: every chunk, summing to the file size', async () => {
    const seen: [number, number][] = [];
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, threads: 1, onProgress: (done, total) => seen.push([done, total]) });
    m.dispose();
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.at(-1)).toEqual([1056540, 1056540]);
    expect(seen.every(([d], i) => i === 0 || d > seen[i - 1]![0])).toBe(true);
  });

  it('from our converted GGUF: the same', async () => {
    const out = join(tmp, 'stories260K.gguf');
    await convertLlama2c(STORIES_BIN, STORIES_TOK, out);
    const m = await loadModel(out, { threads: 1 });
    expect(m.file.format).toBe('gguf');
    await greedyCheck(m);
  });

  it('with worker threads (WebAssembly kernels on 2 threads): the same', async () => {
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, threads: 2 });
    try {
      expect(m.backend.name).toBe('cpu (2 threads)');
      await greedyCheck(m);
    } finally {
      m.dispose();
    }
  });

  it('with the plain JavaScript kernels (threads: 0, float64 accumulation): the same', async () => {
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, threads: 0 });
    await greedyCheck(m);
  });

  it('gives each sequence\'s KV cache back: repeated generate() (finished, or stopped early), logits() and embed() leave the worker executor\'s memory where it was; a disposed state refuses to run', async () => {
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, threads: 2 });
    try {
      const exec = (m.backend as unknown as { exec: { memoryBytes: number } }).exec;
      const once = async () => {
        await m.generate('Once upon a time', { maxTokens: 8, temperature: 0 }).text();
        for await (const piece of m.generate('The cat', { maxTokens: 30, temperature: 0 })) if (piece) break; // the caller stops reading
        await m.logits([1, 300, 301]);
        await m.embed('a dog');
      };
      await once();
      const bytes = exec.memoryBytes;
      // Each generate() holds a cache of its context (512 positions x 5 layers x K and V here: 0.6 MB), so
      // ten rounds without giving it back would grow the memory by 13 MB.
      for (let i = 0; i < 10; i++) await once();
      expect(exec.memoryBytes).toBe(bytes);
      const state = m.transformer.newState(16);
      await m.transformer.forwardArgmax(state, [1]);
      state.dispose();
      await expect(m.transformer.forwardArgmax(state, [2])).rejects.toThrow(/disposed.*newState/);
    } finally {
      m.dispose();
    }
  });

  it('prefill in one batch gives the same logits as token-by-token decode', async () => {
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, threads: 1 });
    const ids = [1, ...storiesReference().generated_ids.slice(0, 70)]; // > MAX_BATCH: crosses chunk boundaries
    const batch = await m.logits(ids);
    const state = m.transformer.newState(128);
    for (const [t, id] of ids.entries()) {
      const one = await m.transformer.forward(state, [id]);
      // Same products, accumulated in a different order (matmul4 vs matvec): f32 rounding differences only.
      for (let i = 0; i < 512; i++) expect(Math.abs(one[i]! - batch[t * 512 + i]!)).toBeLessThanOrEqual(1e-4);
    }
  });

  it('generation with a prompt continues it, and sampling with a seed is reproducible', async () => {
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, threads: 1 });
    const a = await m.generate('Once upon a time', { seed: 11, maxTokens: 30 }).text();
    const b = await m.generate('Once upon a time', { seed: 11, maxTokens: 30 }).text();
    const c = await m.generate('Once upon a time', { seed: 12, maxTokens: 30 }).text();
    expect(a).toBe(b);
    expect(a).not.toBe(c);
    expect(a.startsWith(' ') || a.startsWith(',')).toBe(true); // a continuation, not a new text
  });

  it('stops on a stop string and leaves it out', async () => {
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, threads: 1 });
    const g = m.generate('', { temperature: 0, maxTokens: 200, stop: ['Lily'] });
    const text = await g.text();
    expect(text).toBe('Once upon a time, there was a little girl named ');
    expect(g.stats.stopReason).toBe('stop-string');
  });

  it('where the WebAssembly kernels cannot reserve their memory, the worker threads and then one thread give way to the plain JavaScript kernels, each step in a notice', async () => {
    const Memory = WebAssembly.Memory;
    // (as a device that will not reserve a 4 GiB memory: the kernels' memory is the only one with a maximum above a page)
    WebAssembly.Memory = class extends Memory {
      constructor(d: WebAssembly.MemoryDescriptor) {
        if ((d.maximum ?? 0) > 1) throw new RangeError('WebAssembly.Memory(): could not allocate memory');
        super(d);
      }
    } as typeof WebAssembly.Memory;
    const notices: string[] = [];
    let m;
    try {
      m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, device: 'cpu', threads: 2, onNotice: (t) => notices.push(t) });
    } finally {
      WebAssembly.Memory = Memory;
    }
    expect(m.backend.name).toBe('cpu (plain JavaScript)');
    expect(notices).toEqual([
      'WebAssembly.Memory(): could not allocate memory; running on one thread',
      'the WebAssembly kernels could not start (WebAssembly.Memory(): could not allocate memory); running the plain JavaScript kernels, which are much slower',
    ]);
    const g = m.generate('', { temperature: 0, maxTokens: 24 });
    await g.text();
    expect(g.tokens).toEqual(storiesReference().generated_ids.slice(0, 24));
  });

  it('a stream lets the event loop run between tokens (the CPU computes without awaiting): a timer set before it fires while it is read', async () => {
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, threads: 1 });
    let pieces = 0, firedAt = -1;
    setTimeout(() => (firedAt = pieces), 0);
    for await (const _ of m.generate('', { temperature: 0, maxTokens: 40, ignoreEos: true })) pieces++;
    expect(pieces).toBeGreaterThan(20);
    // (without the yield the timer fires only once the stream has ended: firedAt === pieces)
    expect(firedAt).toBeGreaterThanOrEqual(0);
    expect(firedAt).toBeLessThan(pieces);
  });

  it('an AbortSignal stops a stream between tokens, the text so far standing: aborted by the reader, by a timer, or before it starts', async () => {
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, threads: 1 });
    const ref = storiesReference().generated_ids;
    const byReader = new AbortController();
    const g = m.generate('', { temperature: 0, maxTokens: 100, ignoreEos: true, signal: byReader.signal });
    let text = '';
    for await (const piece of g) {
      text += piece;
      if (g.tokens.length === 5) byReader.abort();
    }
    expect(g.tokens).toEqual(ref.slice(0, 5));
    expect(g.stats.stopReason).toBe('aborted');
    expect(text).toBe(m.decode(ref.slice(0, 5)));
    const byTimer = new AbortController();
    setTimeout(() => byTimer.abort(), 0);
    const t = m.generate('', { temperature: 0, maxTokens: 200, ignoreEos: true, signal: byTimer.signal });
    await t.text();
    expect(t.stats.stopReason).toBe('aborted');
    expect(t.tokens.length).toBeLessThan(200);
    expect(t.tokens).toEqual(ref.slice(0, t.tokens.length));
    const before = m.generate('Once upon', { temperature: 0, signal: AbortSignal.abort() });
    expect(await before.text()).toBe('');
    expect([before.tokens.length, before.stats.stopReason]).toEqual([0, 'aborted']);
  });

  it('hidden states: what the output head reads (logits = E . hidden for stories260K\'s tied head), and embed() pools them', async () => {
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, threads: 1 });
    const tokens = [1, ...storiesReference().generated_ids.slice(0, 40)]; // > MAX_BATCH: two chunks
    const { data, width } = await m.transformer.hidden(m.transformer.newState(64), tokens);
    expect(width).toBe(m.config.dim);
    const logits = await m.logits(tokens);
    const E = (m.transformer.weights as { tokenEmbd: Float32Array }).tokenEmbd;
    const V = m.config.vocabSize;
    for (let t = 0; t < tokens.length; t += 7)
      for (let v = 0; v < V; v += 13) {
        let dot = 0;
        for (let i = 0; i < width; i++) dot += E[v * width + i]! * data[t * width + i]!;
        // The same f32 products as the head's matmul (a 64-term dot product), summed in float64 here:
        // within 64 * 2^-24 of the sum of |terms| (below 1e-4 for these values).
        expect(Math.abs(dot - logits[t * V + v]!)).toBeLessThan(1e-4);
      }
    const [last, mean] = [(await m.embed('Once upon a time'))[0]!, (await m.embed('Once upon a time', { pooling: 'mean', normalize: false }))[0]!];
    expect(Math.hypot(...last)).toBeCloseTo(1, 6);
    const ids = m.encode('Once upon a time');
    const h = await m.transformer.hidden(m.transformer.newState(16), ids);
    for (let i = 0; i < width; i++) expect(mean[i]!).toBeCloseTo(ids.reduce((s, _, t) => s + h.data[t * width + i]!, 0) / ids.length, 5);
    await expect(m.embed('x', { pooling: 'cls' as never })).rejects.toThrow(/pooling must be "last" or "mean"/);
  });

  it('log-probabilities: of each generated token and its best alternatives, as a float64 log-softmax of the logits gives them', async () => {
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, threads: 1 });
    for (const o of [{ temperature: 0 }, { temperature: 1, seed: 5, presencePenalty: 1 }]) {
      const g = m.generate('Once upon a time', { ...o, maxTokens: 20, logprobs: 3 });
      await g.text();
      expect(g.logprobs.map((l) => l.id)).toEqual(g.tokens);
      const prompt = m.encode('Once upon a time');
      const V = m.config.vocabSize;
      const all = await m.logits([...prompt, ...g.tokens]);
      g.logprobs.forEach((lp, i) => {
        const row = Array.from(all.subarray((prompt.length - 1 + i) * V, (prompt.length + i) * V));
        const max = Math.max(...row);
        const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
        // One prefill against token-by-token decode: logits within 1e-4 of each other (the prefill/decode
        // test above), so a log-softmax (a logit minus a log-sum-exp of them) within 2e-4.
        expect(Math.abs(lp.logprob - (row[lp.id]! - lse))).toBeLessThan(2e-4);
        expect(lp.top.map((t) => t.id)).toEqual(row.map((x, id) => [x, id] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 3).map(([, id]) => id));
        if (o.temperature === 0) expect(lp.id).toBe(lp.top[0]!.id);
      });
    }
    await expect(m.generate('x', { logprobs: 21 }).text()).rejects.toThrow(/logprobs must be an integer from 0 to 20/);
  });
});

describe.skipIf(!hasShared)('llama-2-tiny-random.gguf (F16 weights, separate output head, 32000 vocab)', () => {
  it('parses, runs, and matches an independent float64 forward pass', async () => {
    const m = await loadModel(TINY_GGUF, { threads: 1 });
    const tokens = [1, 15043, 3186, 29991, 13, 450];
    const got = await m.logits(tokens);
    const ref = referenceLogits(m.file, m.config as LlamaConfig, tokens);
    // F16 weights are converted exactly to f32; the engine's activations are f32 between stages, so
    // each stage adds ~2^-24 relative error; with dim 8 and one layer, 1e-4 * (1 + |logit|) is ample.
    ref.forEach((row, t) => row.forEach((r, i) => expect(Math.abs(got[t * 32000 + i]! - r)).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(r)))));
    const text = await m.generate('Hello', { seed: 1, maxTokens: 8 }).text();
    expect(typeof text).toBe('string');
  });
});

describe.skipIf(!hasShared)('stories260K against the float64 reference forward pass', () => {
  // Decode steps past 384 positions on two threads split their attention by positions (stories260K: 8
  // heads in KV groups of 2; attentionPart, attentionMerge): the logits of steps 400..403, decoded one
  // token at a time after a 396-token prompt, against the float64 model over the whole sequence. Each
  // step's error grows with the positions its softmax sums (f32, a few ulps a position) well inside
  // 1e-4 (1 + |logit|), the bound the 12-position check above keeps.
  it('decode steps past 384 positions on two threads (attention split by positions) agree with it', async () => {
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, threads: 2 });
    try {
      const ids = storiesReference().generated_ids;
      const tokens = Array.from({ length: 400 }, (_, i) => (i === 0 ? 1 : ids[(i * 7) % ids.length]!));
      const t = m.transformer;
      const state = t.newState(512);
      await t.forward(state, tokens.slice(0, 396));
      const got: Float32Array[] = [];
      for (const tok of tokens.slice(396)) got.push(Float32Array.from(await t.forward(state, [tok])));
      const ref = referenceLogits(m.file, m.config as LlamaConfig, tokens).slice(396);
      ref.forEach((row, j) => row.forEach((r, i) => expect(Math.abs(got[j]![i]! - r)).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(r)))));
    } finally {
      m.dispose();
    }
  }, 120_000);

  // The same split in a server's batch (forwardMany): two sequences past 384 positions decoded in one
  // step each time, against each decoded alone. The batch's products take other kernels than one row's
  // (two f32 summation orders of the same products, each within 1e-4 of the logit scale of the float64
  // model above), so within 2e-4 of each other; the attention of each sequence is the same call.
  it('two sequences past 384 positions decoded together on two threads match each decoded alone', async () => {
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, threads: 2 });
    try {
      const t = m.transformer;
      const ids = storiesReference().generated_ids;
      const prompts = [390, 420].map((n, s) => Array.from({ length: n }, (_, i) => (i === 0 ? 1 : ids[(i * (5 + s)) % ids.length]!)));
      const alone = prompts.map(() => t.newState(512)), together = prompts.map(() => t.newState(512));
      for (const [i, p] of prompts.entries()) { await t.forward(alone[i]!, p); await t.forward(together[i]!, p); }
      const { Workspace } = await import('../src/arch/transformer.js');
      const ws = new Workspace(t.backend);
      let worst = 0;
      for (let step = 0; step < 4; step++) {
        const next = prompts.map((p, i) => [ids[(p.length + 3 * step + i) % ids.length]!]);
        const ref = await Promise.all(next.map((tokens, i) => t.forward(alone[i]!, tokens)));
        const got = await t.backend.read(t.forwardMany(ws, next.map((tokens, i) => ({ state: together[i]!, tokens }))), 2 * 512);
        ref.forEach((r, i) => r.forEach((x, j) => (worst = Math.max(worst, Math.abs(got[i * 512 + j]! - x) / (1 + Math.abs(x))))));
      }
      expect(worst).toBeLessThan(2e-4);
    } finally {
      m.dispose();
    }
  }, 120_000);

  it('all logits at 12 positions agree with the naive float64 model', async () => {
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, threads: 1 });
    const tokens = [1, ...storiesReference().generated_ids.slice(0, 11)];
    const got = await m.logits(tokens);
    const ref = referenceLogits(m.file, m.config as LlamaConfig, tokens);
    ref.forEach((row, t) => row.forEach((r, i) => expect(Math.abs(got[t * 512 + i]! - r)).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(r)))));
  });
});

