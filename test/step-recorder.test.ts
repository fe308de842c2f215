// Recorded decode steps (Backend.recorder, Transformer.run): one sequence's first decode step is
// recorded (the CPU executor's kernel calls and hand-offs, in order) and the steps after it replay the
// recording, running again only the stages that read the token or the position (Forward.live). A
// replayed step must compute exactly what the same step computes stage by stage: the same kernels on
// the same buffers in the same order, so the same logits bit for bit, in every family and format.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../src/engine.js';
import { Workspace } from '../src/arch/transformer.js';
import { WasmExecutor } from '../src/backend/wasm-executor.js';
import { CpuBackend } from '../src/backend/cpu.js';
import { createWorkerExecutor } from '../src/backend/parallel.js';
import { serializeGGUF } from '../src/format/gguf-writer.js';
import { modelFileFromWriteInput } from '../src/format/model-file.js';
import { quantizeModel, type QuantizeTarget } from '../src/quant/quantize.js';
import { FAMILIES, hfFolder } from '../bench/families.js';
import { hasShared, ROOT, SHARED, sequence, tinyLlama } from './helpers.js';

type Recorded = { replays: number };
const recorderOf = (m: Model) => m.backend.recorder as unknown as Recorded;

/**
 * Decode `tokens` after a 3-token prompt in two states: one through forward(state, [t]) (recorded,
 * then replayed), one through forward(state, [t], true) (every row's logits: never recorded, the same
 * kernels for one row). Their logits must be equal at every position; returns the replays made.
 */
async function replayedAgainstStaged(m: Model, tokens: number[]): Promise<number> {
  const t = m.transformer;
  const [a, b] = [t.newState(tokens.length), t.newState(tokens.length)];
  try {
    const before = recorderOf(m).replays;
    await t.forward(a, tokens.slice(0, 3));
    await t.forward(b, tokens.slice(0, 3));
    for (let i = 3; i < tokens.length; i++) {
      const got = await t.forward(a, [tokens[i]!]);
      const want = await t.forward(b, [tokens[i]!], true);
      if (!Buffer.from(got.buffer).equals(Buffer.from(want.buffer))) throw new Error(`position ${i}: the replayed step's logits differ from the step run stage by stage`);
    }
    return recorderOf(m).replays - before;
  } finally {
    a.dispose();
    b.dispose();
  }
}

describe.skipIf(!hasShared)('recorded decode steps in every family', () => {
  const dir = join(ROOT, 'bench', 'models', 'families');
  mkdirSync(dir, { recursive: true });
  for (const f of FAMILIES) {
    it(`${f.id}: replayed steps compute the staged steps' logits bit for bit (40 positions, past the sliding windows)`, async () => {
      const m = await loadModel(hfFolder(f, dir, SHARED), { device: 'cpu', threads: 2 });
      try {
        if (m.isEncoder) return expect(m.backend.recorder).toBeDefined(); // (encoders never decode)
        const tokens = sequence(m.config.vocabSize);
        const replays = await replayedAgainstStaged(m, tokens);
        // 37 decode steps: the first records; the others replay (none of this model's memory is given back meanwhile)
        expect(replays).toBe(tokens.length - 4);
      } finally {
        m.dispose();
      }
    });
  }
});

describe.skipIf(!hasShared)('recorded decode steps of sequences with other context lengths', () => {
  it("Phi-3.5's longrope picks its factors by the context length: a step recorded for one is not replayed for another", async () => {
    const f = FAMILIES.find((x) => x.id === 'phi3')!;
    const half = 32;
    const rope_scaling = { type: 'longrope', short_factor: Array.from({ length: half }, (_, i) => 1 + i / 40), long_factor: Array.from({ length: half }, (_, i) => 1 + i / 4) };
    const dir = join(ROOT, 'bench', 'models', 'families');
    const m = await loadModel(hfFolder(f, dir, SHARED, { config: { rope_scaling, max_position_embeddings: 4096, original_max_position_embeddings: 64 } }), { device: 'cpu', threads: 2 });
    try {
      const t = m.transformer;
      const V = m.config.vocabSize;
      const tokens = sequence(V, 12);
      // One workspace (a server's) decoding a 40-token context (short factors) and a 128-token one (long), in turns.
      const ws = new Workspace(t.backend);
      const [short, long] = [t.newState(40), t.newState(128)];
      const [shortRef, longRef] = [t.newState(40), t.newState(128)];
      for (const s of [short, long, shortRef, longRef]) await t.forward(s, tokens.slice(0, 3));
      for (let i = 3; i < tokens.length; i++)
        for (const [s, ref] of [[short, shortRef], [long, longRef]] as const) {
          const got = await t.backend.read(t.forwardMany(ws, [{ state: s, tokens: [tokens[i]!] }]), V);
          const want = await t.forward(ref, [tokens[i]!], true);
          expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer))).toBe(true);
        }
      for (const s of [short, long, shortRef, longRef]) s.dispose();
      ws.dispose();
    } finally {
      m.dispose();
    }
  });
});

describe('recorded decode steps in every quantized format and activation form', () => {
  const bytesOf = (target: QuantizeTarget) => {
    const input = quantizeModel(modelFileFromWriteInput(tinyLlama({ dim: 256, layers: 2, heads: 4, kvHeads: 2, ffn: 512, ctx: 64 }), 'tiny', 'gguf'), target).input;
    return Buffer.concat([...serializeGGUF(input)]);
  };
  for (const target of ['q8_0', 'q4_0', 'q4_k_m', 'q5_1'] as const)
    for (const activations of ['int16', 'int8', 'f32'] as const)
      it(`${target}, ${activations} inputs, 2 threads`, async () => {
        const m = await loadModel(bytesOf(target), { device: 'cpu', threads: 2, activations });
        try {
          const tokens = sequence(m.config.vocabSize, 24);
          expect(await replayedAgainstStaged(m, tokens)).toBe(tokens.length - 4);
        } finally {
          m.dispose();
        }
      });

  it('several sequences decoded together (a server): replayed while as many decode, recorded again when one leaves, bit for bit as staged', async () => {
    const m = await loadModel(bytesOf('q4_k_m'), { device: 'cpu', threads: 2 });
    try {
      const t = m.transformer;
      const V = m.config.vocabSize;
      const r = m.backend.recorder!;
      const decode = async (replays: boolean) => {
        const replay = r.replay.bind(r);
        if (!replays) r.replay = () => false;
        try {
          const states = [5, 9, 2].map((n, i) => {
            const s = t.newState(40);
            return { s, prompt: sequence(V, 20).slice(i, i + n) };
          });
          for (const { s, prompt } of states) await t.forward(s, prompt);
          const ws = new Workspace(t.backend);
          const out: number[] = [];
          for (let step = 0; step < 8; step++) {
            const live = states.slice(0, step < 5 ? 3 : 2); // (the third sequence leaves after 5 steps)
            const logits = await t.backend.read(t.forwardMany(ws, live.map(({ s }, i) => ({ state: s, tokens: [(step * 31 + i * 7) % V] }))), live.length * V);
            out.push(...logits);
          }
          states.forEach(({ s }) => s.dispose());
          ws.dispose();
          return Float32Array.from(out);
        } finally {
          r.replay = replay;
        }
      };
      const before = recorderOf(m).replays;
      const replayed = await decode(true);
      // 8 steps: the first of 3 sequences recorded, 4 replayed; the first of 2 recorded, 2 replayed
      expect(recorderOf(m).replays - before).toBe(6);
      const staged = await decode(false);
      expect(Buffer.from(replayed.buffer).equals(Buffer.from(staged.buffer))).toBe(true);
    } finally {
      m.dispose();
    }
  });

  it('generate() replays its decode steps: the same tokens as with recording refused (greedy and sampled)', async () => {
    const m = await loadModel(bytesOf('q4_0'), { device: 'cpu', threads: 2 });
    try {
      const run = async (temperature: number) => {
        const g = m.generate([1, 260, 261, 262], { maxTokens: 24, ignoreEos: true, temperature, seed: 3 });
        await g.text();
        return [...g.tokens];
      };
      const before = recorderOf(m).replays;
      const [greedy, sampled] = [await run(0), await run(0.9)];
      expect(recorderOf(m).replays - before).toBe(2 * 22); // (24 tokens: the prompt's step picks the first, then 23 decode steps, the first recorded)
      // The same generations with the recorder's replays refused (every step staged):
      const r = m.backend.recorder!;
      const replay = r.replay.bind(r);
      r.replay = () => false;
      try {
        expect(await run(0)).toEqual(greedy);
        expect(await run(0.9)).toEqual(sampled);
      } finally {
        r.replay = replay;
      }
    } finally {
      m.dispose();
    }
  });
});

describe("WasmExecutor's recorder", () => {
  it("CpuBackend: its JavaScript stages are kept as live steps; those that read a token or a position spoil a recording outside live", () => {
    const e = new WasmExecutor();
    execs.push(e);
    const b = new CpuBackend(e);
    const r = b.recorder!;
    // Each JavaScript stage, recorded and replayed once, against the plain stage run twice on a copy.
    const values = [0.5, -1.25, 2, 0.75, -0.5, 1.5, -2, 0.25];
    const javascript: [string, (b: CpuBackend, x: Float32Array, y: Float32Array) => void][] = [
      ['softcap', (b, x) => b.softcap(x, 8, 0.5)],
      ['gated', (b, x, y) => b.gated(x, y, 8, 'silu')],
      ['activate', (b, x) => b.activate(x, 8, 'gelu')],
      ['layernorm', (b, x, y) => b.layernorm(x, x, y, y, 4, 1e-5, 2)],
      ['affine', (b, x, y) => b.affine(x, x, y, y, 4, 2)],
      ['softmax', (b, x) => b.softmax(x, 4, 2)],
    ];
    const plain = new CpuBackend();
    for (const [name, stage] of javascript) {
      const [x, y] = [e.alloc(8), e.alloc(8)];
      x.set(values);
      y.set(values.map((v) => v / 2));
      const [x2, y2] = [Float32Array.from(x), Float32Array.from(y)];
      r.start();
      stage(b, x, y);
      const tape = r.stop()!;
      expect(tape.steps.length, name).toBe(1);
      r.replay(tape);
      stage(plain, x2, y2);
      stage(plain, x2, y2);
      expect(Array.from(x), name).toEqual(Array.from(x2));
    }
    const x = e.alloc(8).fill(1);
    const table = e.alloc(8 * 2).fill(0.25);
    const stages: [string, () => void][] = [
      ['embed', () => b.embed(x, table, [1], 8)],
      ['copyRows', () => b.copyRows(x, 0, table, 1, 1, 8)],
      ['rope', () => b.rope(x, 2, 5, 1, { headDim: 4, ropeDims: 4, theta: 10000, style: 'interleaved' })],
      ['attention', () => b.attention(e.alloc(4), e.alloc(4), e.alloc(4), e.alloc(4), 1, 0, { nHeads: 1, nKvHeads: 1, headDim: 4 })],
    ];
    for (const [name, stage] of stages) {
      r.start();
      stage();
      expect(r.stop(), name).toBeUndefined();
      r.start();
      r.live(stage);
      expect(r.stop(), name).toBeDefined();
    }
  });

  const execs: WasmExecutor[] = [];
  afterAll(() => execs.forEach((e) => e.dispose()));
  const vec = (e: WasmExecutor, xs: number[]) => {
    const v = e.alloc(xs.length);
    v.set(xs);
    return v;
  };

  it('keeps the kernel calls and hand-offs it makes, in order, and replays them', async () => {
    const e = await createWorkerExecutor(2);
    execs.push(e);
    const [out, x, w] = [vec(e, [1, 2, 3, 4]), vec(e, [10, 20, 30, 40]), vec(e, [1, 1, 1, 1, 1, 1, 1, 1])];
    const y = e.alloc(2);
    const r = e.recorder;
    r.start();
    e.add(out, x, 4); // out = 11 22 33 44
    e.run([{ out: y, w, x: out, n: 1, rows: 2, cols: 4 }]); // y = [110, 110]: a hand-off to the worker thread
    const tape = r.stop()!;
    expect(tape.steps.length).toBe(2);
    expect(Array.from(y)).toEqual([110, 110]);
    expect(r.replay(tape)).toBe(true);
    expect(Array.from(out)).toEqual([21, 42, 63, 84]);
    expect(Array.from(y)).toEqual([210, 210]);
    expect(r.replays).toBe(1);
    expect(r.recording).toBe(false);
    // A disposed executor replays nothing (its kernel calls would still find the memory)
    const e1 = new WasmExecutor();
    const [a, b] = [vec(e1, [1, 2]), vec(e1, [1, 1])];
    e1.recorder.start();
    e1.add(a, b, 2);
    const t1 = e1.recorder.stop()!;
    e1.dispose();
    expect(() => e1.recorder.replay(t1)).toThrow(/disposed/);
    expect(Array.from(a)).toEqual([2, 3]);
  });

  it('runs live steps at each replay without keeping what they run', () => {
    const e = new WasmExecutor();
    execs.push(e);
    const [out, x] = [vec(e, [0, 0, 0, 0]), vec(e, [1, 1, 1, 1])];
    let calls = 0;
    const r = e.recorder;
    r.start();
    r.live(() => {
      calls++;
      expect(r.recording).toBe(false);
      e.add(out, x, 4);
    });
    expect(r.recording).toBe(true);
    const tape = r.stop()!;
    expect(tape.steps.length).toBe(1); // (the live step; not also the add inside it)
    r.replay(tape);
    r.replay(tape);
    expect(calls).toBe(3);
    expect(Array.from(out)).toEqual([3, 3, 3, 3]);
  });

  it('a recording is not replayed once memory was given back (which a later block may reuse)', () => {
    const e = new WasmExecutor();
    execs.push(e);
    const [out, x, spare] = [vec(e, [0, 0, 0, 0]), vec(e, [1, 1, 1, 1]), e.alloc(16)];
    const r = e.recorder;
    r.start();
    e.add(out, x, 4);
    const tape = r.stop()!;
    e.release(spare);
    expect(r.replay(tape)).toBe(false);
    expect(Array.from(out)).toEqual([1, 1, 1, 1]); // (nothing ran)
    // and memory given back during a recording spoils it
    r.start();
    e.add(out, x, 4);
    e.release(e.alloc(16));
    expect(r.stop()).toBeUndefined();
  });

  it('attention (its record holds the position) and the argmax kernels (their results are not kept) spoil a recording outside live', () => {
    const e = new WasmExecutor();
    execs.push(e);
    const r = e.recorder;
    const [q, k, v, out] = [vec(e, [1, 0, 0, 0]), vec(e, [1, 0, 0, 0]), vec(e, [1, 2, 3, 4]), e.alloc(4)];
    r.start();
    e.attention(out, q, k, v, 1, 0, { nHeads: 1, nKvHeads: 1, headDim: 4 });
    expect(r.stop()).toBeUndefined();
    r.start();
    r.live(() => e.attention(out, q, k, v, 1, 0, { nHeads: 1, nKvHeads: 1, headDim: 4 }));
    expect(r.stop()).toBeDefined();
    r.start();
    e.argmax(v);
    expect(r.stop()).toBeUndefined();
    r.start();
    e.above(v, 2);
    expect(r.stop()).toBeUndefined();
    expect(() => (r.start(), r.replay({ steps: [], epoch: r.epoch }))).toThrow(/recording is under way/);
    r.stop();
  });
});
