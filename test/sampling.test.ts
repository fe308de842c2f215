import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyRepetitionPenalty, argmax, candidateProbs, minP, Rng, Sampler, sortedCandidates, topK, topP } from '../src/stages/sampling.js';
import type { CpuBackend } from '../src/backend/cpu.js';
import type { WasmExecutor } from '../src/backend/wasm-executor.js';

const logitsArb = fc.array(fc.float({ min: -20, max: 20, noNaN: true }), { minLength: 1, maxLength: 300 }).map((a) => Float32Array.from(a));
// (with many ties: small integers, where the lower id must come first)
const tiedLogitsArb = fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 1, maxLength: 300 }).map((a) => Float32Array.from(a));

describe('sampling filters', () => {
  it('sortedCandidates(logits, k) is the k best of a full sort, in order', () => {
    fc.assert(fc.property(fc.oneof(logitsArb, tiedLogitsArb), fc.nat(320), (l, k) => {
      const full = sortedCandidates(l);
      const part = sortedCandidates(l, k);
      const want = k > 0 && k < l.length ? k : l.length;
      expect(part.ids).toEqual(full.ids.slice(0, want));
      for (let i = 1; i < full.logits.length; i++) expect(full.logits[i - 1]!).toBeGreaterThanOrEqual(full.logits[i]!);
    }));
  });

  it('top-k leaves exactly min(k, n) candidates, the most likely ones', () => {
    fc.assert(fc.property(logitsArb, fc.integer({ min: 1, max: 400 }), (l, k) => {
      const c = topK(sortedCandidates(l), k);
      expect(c.ids.length).toBe(Math.min(k, l.length));
      const kept = new Set(c.ids);
      const minKept = Math.min(...c.logits);
      for (let i = 0; i < l.length; i++) if (!kept.has(i)) expect(l[i]!).toBeLessThanOrEqual(minKept);
    }));
  });

  it('top-p keeps the smallest prefix whose probability reaches p', () => {
    fc.assert(fc.property(logitsArb, fc.double({ min: 0.01, max: 0.999, noNaN: true }), (l, p) => {
      const all = sortedCandidates(l);
      const probs = candidateProbs(all);
      const c = topP(all, p);
      const n = c.ids.length;
      const mass = (m: number) => probs.slice(0, m).reduce((a, b) => a + b, 0);
      expect(n).toBeGreaterThanOrEqual(1);
      // Reaches p (or keeps everything), and one fewer would not.
      expect(mass(n) >= p || n === l.length).toBe(true);
      if (n > 1) expect(mass(n - 1)).toBeLessThan(p);
    }));
  });

  it('min-p keeps exactly the tokens with prob >= p * max prob', () => {
    fc.assert(fc.property(logitsArb, fc.double({ min: 0.001, max: 1, noNaN: true }), (l, p) => {
      const all = sortedCandidates(l);
      const probs = candidateProbs(all);
      const c = minP(all, p);
      const want = Math.max(1, probs.filter((q) => q >= p * probs[0]!).length);
      expect(c.ids.length).toBe(want);
    }));
  });

  it('repetition penalty divides positive and multiplies negative logits of recent tokens once each', () => {
    const l = Float32Array.from([2, -2, 1, 0]);
    applyRepetitionPenalty(l, [0, 1, 0, 0], 2);
    expect(Array.from(l)).toEqual([1, -4, 1, 0]);
  });
});

describe('Sampler', () => {
  it('temperature 0 equals greedy argmax', () => {
    fc.assert(fc.property(logitsArb, fc.integer(), (l, seed) => {
      expect(new Sampler({ temperature: 0, seed }).sample(l.slice(), [])).toBe(argmax(l));
    }));
  });

  it('the same seed gives the same draws; samples stay inside the filtered set', () => {
    fc.assert(fc.property(logitsArb, fc.integer(), (l, seed) => {
      const o = { temperature: 1.3, topK: 5, topP: 0.9, minP: 0.01, seed };
      const a = new Sampler(o), b = new Sampler(o);
      const allowed = new Set(minP(topP(topK(sortedCandidates(l), 5), 0.9), 0.01).ids);
      for (let i = 0; i < 20; i++) {
        const x = a.sample(l.slice(), []);
        expect(b.sample(l.slice(), [])).toBe(x);
        expect(allowed.has(x)).toBe(true);
      }
    }));
  });

  it('draws follow the softmax distribution (chi-square, fixed seed)', () => {
    const l = Float32Array.from([0, Math.log(2), Math.log(3), Math.log(4)]); // probs 0.1 0.2 0.3 0.4
    const s = new Sampler({ temperature: 1, topK: 0, topP: 1, minP: 0, seed: 42 });
    const counts = [0, 0, 0, 0];
    const N = 20000;
    for (let i = 0; i < N; i++) counts[s.sample(l.slice(), [])]!++;
    const chi = counts.reduce((acc, c, i) => acc + (c - N * (i + 1) / 10) ** 2 / (N * (i + 1) / 10), 0);
    expect(chi).toBeLessThan(16.27); // 3 degrees of freedom, p = 0.001
  });

  it('Rng is uniform enough and deterministic', () => {
    const r1 = new Rng(7), r2 = new Rng(7), r3 = new Rng(8);
    const a = Array.from({ length: 1000 }, () => r1.next());
    expect(Array.from({ length: 1000 }, () => r2.next())).toEqual(a);
    expect(Array.from({ length: 1000 }, () => r3.next())).not.toEqual(a);
    expect(a.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(Math.abs(a.reduce((s, x) => s + x, 0) / 1000 - 0.5)).toBeLessThan(0.05);
  });

  it('rejects invalid options with a clear error', () => {
    expect(() => new Sampler({ temperature: -1 })).toThrow(/temperature/);
    expect(() => new Sampler({ topP: 0 })).toThrow(/top-p/);
    expect(() => new Sampler({ topK: 1.5 })).toThrow(/top-k/);
    expect(() => new Sampler({ presencePenalty: 2.5 })).toThrow(/presence penalty must be in \[-2, 2\]/);
    expect(() => new Sampler({ frequencyPenalty: NaN })).toThrow(/frequency penalty/);
  });

  it('presence and frequency penalties, as OpenAI defines them: logit - count * frequency - presence for each token seen in the window, after the repetition penalty', () => {
    fc.assert(fc.property(logitsArb, fc.array(fc.nat(299), { maxLength: 30 }), fc.double({ min: -2, max: 2, noNaN: true }), fc.double({ min: -2, max: 2, noNaN: true }), fc.constantFrom(1, 1.3), (l, hist, presence, frequency, repeat) => {
      const history = hist.filter((id) => id < l.length);
      // The float64 reference, from the definition.
      const want = Array.from(l, (x, id) => {
        const n = history.filter((h) => h === id).length;
        if (n === 0) return x;
        return (x > 0 ? x / repeat : x * repeat) - n * frequency - presence;
      });
      const got = new Sampler({ temperature: 0, presencePenalty: presence, frequencyPenalty: frequency, repeatPenalty: repeat }).sample(Float32Array.from(l), history);
      // Each penalized logit is its float64 value rounded once to f32 (2^-24 relative), so the argmax's
      // reference value is within two such roundings of the best: 4 of them allowed, on a magnitude of
      // at most |best| + 24 (logits within 20, penalties of 2 and 2 per occurrence near the top).
      const best = Math.max(...want);
      expect(want[got]!).toBeGreaterThanOrEqual(best - 4 * 2 ** -24 * (Math.abs(best) + 24));
    }), { numRuns: 500 });
  });
});

describe('sampling from the best few logits (what GPU top-k reads back)', () => {
  it('picks exactly what sampling from all logits picks, with the same random draws, penalties included', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -40, max: 40 }), { minLength: 2, maxLength: 300 }), // coarse values: many ties
        fc.array(fc.nat(299), { maxLength: 40 }),
        fc.record({ topK: fc.integer({ min: 1, max: 50 }), topP: fc.constantFrom(1, 0.9, 0.5), minP: fc.constantFrom(0, 0.05), repeatPenalty: fc.constantFrom(1, 1.1, 1.5), presencePenalty: fc.constantFrom(0, 0.5, 2), frequencyPenalty: fc.constantFrom(0, 0.3), repeatLastN: fc.constantFrom(0, 8, 64), temperature: fc.constantFrom(0.5, 1, 2), seed: fc.nat() }),
        (raw, hist, o) => {
          const logits = Float32Array.from(raw, (v) => v / 4);
          const history = hist.filter((id) => id < logits.length);
          const full = new Sampler(o);
          const few = new Sampler(o);
          expect(few.candidatesNeeded(history)).toBeDefined();
          for (let draw = 0; draw < 3; draw++) {
            const need = few.candidatesNeeded(history)!;
            const viaFew = few.sampleCandidates(sortedCandidates(logits, need), history);
            expect(viaFew).toBe(full.sample(Float32Array.from(logits), history));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('needs all logits when a penalty below 1 could raise one, and none beyond the argmax when greedy', () => {
    expect(new Sampler({ repeatPenalty: 0.9, seed: 1 }).candidatesNeeded([1, 2])).toBeUndefined();
    expect(new Sampler({ temperature: 0, seed: 1 }).candidatesNeeded([])).toBeUndefined();
    expect(new Sampler({ topK: 0, seed: 1 }).candidatesNeeded([])).toBeUndefined();
    expect(new Sampler({ topK: 40, repeatPenalty: 1.1, repeatLastN: 4, seed: 1 }).candidatesNeeded([5, 5, 6, 7, 8, 9])).toBe(44); // 6, 7, 8, 9
    // A negative presence or frequency penalty raises seen tokens: all logits.
    expect(new Sampler({ presencePenalty: -0.5, seed: 1 }).candidatesNeeded([1])).toBeUndefined();
    expect(new Sampler({ topK: 40, presencePenalty: 0.5, repeatLastN: 4, seed: 1 }).candidatesNeeded([1, 2, 2])).toBe(42);
  });

  it('constrained sampling takes the best allowed tokens: greedy the best allowed one, top-k the k best allowed, -1 when none is', () => {
    fc.assert(fc.property(logitsArb, fc.integer({ min: 2, max: 7 }), fc.integer({ min: 1, max: 20 }), fc.nat(), (l, mod, k, seed) => {
      const allowed = (id: number) => id % mod === 0;
      const greedy = new Sampler({ temperature: 0 }).sampleAllowed(Float32Array.from(l), [], allowed);
      const best = sortedCandidates(l).ids.find(allowed)!;
      expect(greedy).toBe(best);
      // Sampling among the allowed ones = sampling from logits where the rest are -Infinity.
      const masked = Float32Array.from(l, (x, id) => (allowed(id) ? x : -Infinity));
      const a = new Sampler({ topK: k, seed }).sampleAllowed(Float32Array.from(l), [], allowed);
      const b = new Sampler({ topK: k, seed }).sample(masked, []);
      expect(a).toBe(b);
    }), { numRuns: 500 });
    expect(new Sampler({ temperature: 0 }).sampleAllowed(Float32Array.of(1, 2), [], () => false)).toBe(-1);
  });
});

describe('argmax with the WebAssembly SIMD kernel (argmax-wasm.ts)', () => {
  // Only comparisons: the kernel's index must equal argmax's (the first largest value) exactly, and -1
  // must come back exactly when a value is NaN or infinite (the JavaScript path's allFinite check).
  const isFinite = (x: Float32Array) => x.every((v) => Number.isFinite(v));
  /** `body` with a one-thread executor and a CpuBackend over it, the executor disposed after. */
  const withExecutor = async (body: (exec: WasmExecutor, cpu: CpuBackend) => Promise<void> | void) => {
    const { WasmExecutor } = await import('../src/backend/wasm-executor.js');
    const { CpuBackend } = await import('../src/backend/cpu.js');
    const exec = new WasmExecutor();
    try {
      await body(exec, new CpuBackend(exec));
    } finally {
      exec.dispose();
    }
  };
  it('is the first largest value, through CpuBackend.argmax, or -1 with a NaN or infinity anywhere (ties, -0, tails of 0-3)', async () => {
    await withExecutor(async (exec, cpu) => {
      // (small integers and signed zeros make ties common; a non-finite value at a random place, or none)
      const values = fc.array(fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constant(-0), fc.float({ min: Math.fround(-1e30), max: Math.fround(1e30), noNaN: true })), { maxLength: 70 });
      const spoiler = fc.option(fc.tuple(fc.nat(), fc.constantFrom(NaN, Infinity, -Infinity)), { freq: 3 });
      await fc.assert(
        fc.asyncProperty(values, spoiler, fc.nat(5), async (vs, bad, offset) => {
          const logits = exec.alloc(offset + vs.length);
          const x = logits.subarray(offset);
          x.set(vs);
          if (bad && vs.length) x[bad[0] % vs.length] = bad[1];
          const want = isFinite(x) ? argmax(x) : -1;
          expect(exec.argmax(x)).toBe(want);
          expect(await cpu.argmax(logits, offset, vs.length)).toBe(want);
        }),
        { numRuns: 500 },
      );
    });
  });

  it('above(x, floor) is every index whose logit is at or above the floor, in order', async () => {
    await withExecutor((exec) => {
      fc.assert(
        fc.property(fc.array(fc.integer({ min: -3, max: 3 }), { maxLength: 70 }), fc.integer({ min: -4, max: 4 }), fc.nat(5), (vs, floor, offset) => {
          const x = exec.alloc(offset + vs.length).subarray(offset);
          x.set(vs);
          expect([...exec.above(x, floor)]).toEqual(vs.flatMap((v, i) => (v >= floor ? [i] : [])));
        }),
        { numRuns: 500 },
      );
    });
  });

  it("CpuBackend.topk through the kernels is sortedCandidates' k best (the floor from the first 4096 logits, ties to the lower id), or none with a NaN or infinity", async () => {
    await withExecutor(async (exec, cpu) => {
      // (lengths past 4096, where the floor comes from part of the logits; a few distinct values or
      // continuous ones, rising, falling or scattered, so that the best may sit anywhere)
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 9000 }), fc.integer({ min: 0, max: 60 }), fc.integer(), fc.constantFrom('ties', 'floats', 'rising', 'falling'), fc.boolean(), async (n, k, seed, shape, spoil) => {
          const rng = new Rng(seed);
          const logits = exec.alloc(n);
          logits.forEach((_, i) => (logits[i] = shape === 'ties' ? Math.floor(rng.next() * 5) : shape === 'floats' ? rng.next() * 20 - 10 : shape === 'rising' ? i / 100 + rng.next() : -i / 100 + rng.next()));
          if (spoil) logits[Math.floor(rng.next() * n)] = NaN;
          const got = await cpu.topk(logits, 0, n, k);
          expect(got).toEqual(spoil ? { ids: [], logits: [] } : sortedCandidates(logits, k));
        }),
        { numRuns: 150 },
      );
    });
  });

  it('refuses logits outside its memory', async () => {
    await withExecutor((exec) => {
      expect(() => exec.argmax(new Float32Array(8))).toThrow(/not in the executor's memory/);
      expect(() => exec.above(new Float32Array(8), 0)).toThrow(/not in the executor's memory/);
    });
  });
});
