// Malformed files and arguments: each must give a typed error that names the file and the problem,
// never a crash deep inside, a hang, or a huge allocation.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine.js';
import { InvalidInputError, ModelFormatError, NonFiniteError, OutOfMemoryError, PocketLMError, UnsupportedModelError } from '../src/base/errors.js';
import { GGUFValueType, parseGGUF } from '../src/format/gguf.js';
import { encodeGGUF, gguf } from '../src/format/gguf-writer.js';
import { llama2cModel, llama2cVocab } from '../src/format/llama2c.js';
import { readModelFile } from '../src/format/model-file.js';
import { hasShared, readShared, tinyLlama } from './helpers.js';
import { quantizeMatrix } from '../src/quant/formats.js';
import { GGMLType } from '../src/base/tensor.js';

const good = encodeGGUF(tinyLlama());
const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const patched = (f: (d: DataView, b: Uint8Array) => void) => { const b = good.slice(); f(view(b), b); return b; };
/** Offset of the first tensor info (after header and metadata), found by parsing. */
function firstTensorInfoOffset(): number {
  // name length (u64) of tensor 0 sits right before its name "token_embd.weight"
  const name = new TextEncoder().encode('token_embd.weight');
  for (let i = 0; i < good.length - name.length; i++) if (name.every((c, k) => good[i + k] === c)) return i - 8;
  throw new Error('not found');
}
function expectError<T extends PocketLMError>(fn: () => unknown, type: new (...a: never[]) => T, pattern: RegExp): void {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(type);
  expect((err as Error).message).toMatch(pattern);
}

describe('bad GGUF files', () => {
  it('truncated anywhere: ModelFormatError naming the file', () => {
    for (let cut = 0; cut < good.length; cut += cut < 400 ? 1 : 97) {
      expectError(() => parseGGUF(good.subarray(0, cut), 'cut.gguf'), ModelFormatError, /^cut\.gguf: .*(truncated|past the end)/);
    }
  });

  it('wrong magic', () => {
    expectError(() => parseGGUF(patched((_, b) => b.set([0x47, 0x47, 0x4d, 0x4c])), 'x.gguf'), ModelFormatError, /not a GGUF file: expected magic "GGUF", found "GGML"/);
  });

  it('unsupported versions: 1, 4, big-endian', () => {
    expectError(() => parseGGUF(patched((d) => d.setUint32(4, 1, true)), 'v1.gguf'), UnsupportedModelError, /v1.gguf: unsupported GGUF version 1/);
    expectError(() => parseGGUF(patched((d) => d.setUint32(4, 4, true)), 'v4.gguf'), UnsupportedModelError, /version 4/);
    expectError(() => parseGGUF(patched((d) => d.setUint32(4, 3, false)), 'be.gguf'), UnsupportedModelError, /big-endian/);
  });

  it('absurd counts and lengths fail fast without allocating', () => {
    const before = process.memoryUsage().rss;
    expectError(() => parseGGUF(patched((d) => d.setBigUint64(8, 2n ** 62n, true)), 'a.gguf'), ModelFormatError, /tensor count is 4611686018427387904, which cannot be right/);
    expectError(() => parseGGUF(patched((d) => d.setBigUint64(16, 2n ** 40n, true)), 'a.gguf'), ModelFormatError, /metadata key-value count/);
    expectError(() => parseGGUF(patched((d) => d.setBigUint64(24, 2n ** 60n, true)), 'a.gguf'), ModelFormatError, /length of metadata key #0/);
    // An array count of 2^50 in the tokens array.
    const big = encodeGGUF({ metadata: new Map([['k', gguf.strings(['a', 'b'])]]), tensors: [] });
    view(big).setBigUint64(24 + 8 + 1 + 4 + 4, 2n ** 50n, true);
    expectError(() => parseGGUF(big, 'arr.gguf'), ModelFormatError, /item count of metadata "k"/);
    // The second string's length (after the count at 37, the first's 8-byte length and 1 byte): past
    // the end with a zero high word, and 2^40.
    for (const length of [1000n, 2n ** 40n]) {
      const bad = encodeGGUF({ metadata: new Map([['k', gguf.strings(['a', 'b'])]]), tensors: [] });
      view(bad).setBigUint64(24 + 8 + 1 + 4 + 4 + 8 + 8 + 1, length, true);
      expectError(() => parseGGUF(bad, 'str.gguf'), ModelFormatError, new RegExp(`length of metadata "k"\\[1\\] is ${length}, which cannot be right`));
    }
    expect(process.memoryUsage().rss - before).toBeLessThan(200e6);
  });

  it('tensor data past the end of the file, misaligned offsets, too many dims, unknown types', () => {
    const at = firstTensorInfoOffset();
    const nameLen = 8 + 'token_embd.weight'.length;
    // token_embd: n_dims (u32) at at+nameLen, 2 dims (u64 each), type (u32), offset (u64)
    const offsetPos = at + nameLen + 4 + 16 + 4;
    expectError(() => parseGGUF(patched((d) => d.setBigUint64(offsetPos, BigInt(good.length - 64), true)), 'o.gguf'), ModelFormatError, /tensor "token_embd.weight" .* past the end/);
    expectError(() => parseGGUF(patched((d) => d.setBigUint64(offsetPos, 3n, true)), 'o.gguf'), ModelFormatError, /not a multiple of the alignment/);
    expectError(() => parseGGUF(patched((d) => d.setBigUint64(offsetPos, 2n ** 63n, true)), 'o.gguf'), ModelFormatError, /data offset of tensor "token_embd.weight"/);
    expectError(() => parseGGUF(patched((d) => d.setUint32(at + nameLen, 9, true)), 'd.gguf'), ModelFormatError, /has 9 dimensions/);
    expectError(() => parseGGUF(patched((d) => d.setUint32(at + nameLen + 4 + 16, 99, true)), 't.gguf'), UnsupportedModelError, /unknown ggml type 99/);
    expectError(() => parseGGUF(patched((d) => d.setBigUint64(at + nameLen + 4, 2n ** 40n, true)), 's.gguf'), ModelFormatError, /token_embd.weight/);
  });

  it('a metadata key or a tensor given twice, tensors whose data overlap', () => {
    const f32 = (name: string) => ({ name, shape: [32], type: GGMLType.F32, data: new Uint8Array(128) });
    const file = encodeGGUF({ metadata: new Map([['general.name', gguf.str('x')], ['general.namf', gguf.str('y')]]), tensors: [f32('a.weight'), f32('b.weight')] });
    const rename = (from: string, to: string) => {
      const b = file.slice();
      b.set(new TextEncoder().encode(to), Buffer.from(b).indexOf(from));
      return b;
    };
    expectError(() => parseGGUF(rename('general.namf', 'general.name'), 'k.gguf'), ModelFormatError, /k\.gguf: metadata key "general\.name" appears twice/);
    expectError(() => parseGGUF(rename('b.weight', 'a.weight'), 't.gguf'), ModelFormatError, /t\.gguf: tensor "a\.weight" appears twice/);
    // b.weight's data offset: after its name, n_dims (u32), one dim (u64) and its type (u32).
    const overlap = file.slice();
    view(overlap).setBigUint64(Buffer.from(overlap).indexOf('b.weight') + 8 + 4 + 8 + 4, 32n, true);
    expectError(() => parseGGUF(overlap, 'o.gguf'), ModelFormatError, /tensors "a\.weight" \(data offset 0, 128 bytes\) and "b\.weight" \(data offset 32\) overlap/);
    expect(parseGGUF(file, 'fine.gguf').tensors.map((t) => t.offset)).toEqual([0, 128]);
  });

  it('unknown value type in metadata', () => {
    // type of the first metadata value sits after its key: 24 + 8 + len("general.architecture")
    expectError(() => parseGGUF(patched((d) => d.setUint32(24 + 8 + 'general.architecture'.length, 77, true)), 'm.gguf'), ModelFormatError, /unknown value type 77/);
  });

  it('random corruption never escapes as anything but a PocketLMError', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.nat(255)), { minLength: 1, maxLength: 6 }), (flips) => {
        const b = good.slice();
        for (const [i, v] of flips) b[i] = v;
        try {
          readModelFile(b, 'fuzz.gguf');
        } catch (e) {
          expect(e).toBeInstanceOf(PocketLMError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('load options', () => {
  it('a thread count that is not an integer from 0 to 64 is an InvalidInputError saying so', async () => {
    for (const threads of [-1, 1.5, 65, Number.NaN])
      await expect(loadModel(encodeGGUF(tinyLlama()), { device: 'cpu', threads }), String(threads)).rejects.toThrow(new InvalidInputError(`threads must be an integer from 0 to 64 (0: the plain JavaScript kernels), got ${threads}`));
  });

  it('activations: int16 by default, int8 and f32 on request (int8Activations: true is int8); anything else, or both names disagreeing, is an InvalidInputError', async () => {
    const mode = async (o: Parameters<typeof loadModel>[1]) => {
      const m = await loadModel(encodeGGUF(tinyLlama()), { device: 'cpu', threads: 1, ...o });
      try { return (m.backend as unknown as { exec: { activations?: string } }).exec.activations; } finally { m.dispose(); }
    };
    expect(await mode({})).toBe('int16');
    expect(await mode({ activations: 'f32' })).toBe('f32');
    expect(await mode({ activations: 'int8' })).toBe('int8');
    expect(await mode({ int8Activations: true })).toBe('int8');
    expect(await mode({ int8Activations: true, activations: 'int8' })).toBe('int8');
    expect(await mode({ int8Activations: false })).toBe('int16');
    await expect(loadModel(encodeGGUF(tinyLlama()), { device: 'cpu', activations: 'int4' as never })).rejects.toThrow(new InvalidInputError('unknown activations "int4": use int16 (the default), int8 or f32'));
    await expect(loadModel(encodeGGUF(tinyLlama()), { device: 'cpu', int8Activations: true, activations: 'f32' })).rejects.toThrow(new InvalidInputError("int8Activations: true and activations: 'f32' contradict each other: give activations only"));
  });
});

describe('well-formed files the engine cannot run', () => {
  it('unknown architecture', async () => {
    await expect(loadModel(encodeGGUF(tinyLlama({ arch: 'mamba' })), { threads: 1 })).rejects.toThrow(UnsupportedModelError);
    await expect(loadModel(encodeGGUF(tinyLlama({ arch: 'mamba' })), { threads: 1 })).rejects.toThrow(/unknown architecture "mamba"; pocketlm runs: llama, qwen2, qwen3, gemma, gemma2, gemma3, phi2, phi3, gpt2, gptneox, opt/);
  });

  it('NaN and infinite weights are refused at load, naming the tensor (F32, F16, and a quantized block scale); the WebAssembly attention never traps on them', async () => {
    const f32 = tinyLlama();
    const t = f32.tensors.find((x) => x.name === 'blk.0.attn_v.weight')!;
    new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4)[5] = NaN;
    await expect(loadModel(encodeGGUF(f32), { threads: 1 })).rejects.toThrow(/tensor "blk\.0\.attn_v\.weight" holds NaN at row 0, column 5: the file is damaged/);
    const f16 = tinyLlama({ f16: true });
    const h = f16.tensors.find((x) => x.name === 'blk.0.ffn_down.weight')!;
    expect(h.type).toBe(GGMLType.F16);
    new Uint16Array(h.data.buffer, h.data.byteOffset, h.data.byteLength / 2)[13] = 0x7c00; // +Inf
    await expect(loadModel(encodeGGUF(f16), { threads: 1 })).rejects.toThrow(/tensor "blk\.0\.ffn_down\.weight" holds Infinity at row 1, column 1/);
    const q = tinyLlama({ dim: 32, heads: 2, kvHeads: 1, ffn: 32 });
    const w = q.tensors.find((x) => x.name === 'blk.0.attn_q.weight')!;
    const qm = quantizeMatrix(GGMLType.Q8_0, new Float32Array(w.data.buffer, w.data.byteOffset, 32 * 32), 32, 32);
    qm.data[34 * 3] = 0x00; qm.data[34 * 3 + 1] = 0xfe; // block 3's scale: f16 NaN
    Object.assign(w, { type: GGMLType.Q8_0, data: qm.data });
    await expect(loadModel(encodeGGUF(q), { threads: 1 })).rejects.toThrow(/tensor "blk\.0\.attn_q\.weight" has a NaN or infinite scale in row 3, block 0/);
    const { createWorkerExecutor } = await import('../src/backend/parallel.js');
    const exec = await createWorkerExecutor(1);
    try {
      const [qv, kv, vv, out] = [exec.alloc(8).fill(NaN), exec.alloc(8).fill(Infinity), exec.alloc(8).fill(1), exec.alloc(8)];
      expect(() => exec.attention(out, qv, kv, vv, 1, 1, { nHeads: 2, nKvHeads: 1, headDim: 4 })).not.toThrow();
      expect(Number.isNaN(out[0]!)).toBe(true);
    } finally {
      exec.dispose();
    }
  });

  it('activations that overflow (finite weights of 1e30) give a NonFiniteError naming the position, greedy, sampled or all logits, never a made-up token', async () => {
    const big = tinyLlama();
    for (const t of big.tensors.filter((x) => x.name.includes('ffn_up') || x.name.includes('ffn_gate'))) new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4).fill(1e30);
    const m = await loadModel(encodeGGUF(big), { threads: 1, device: 'cpu' });
    try {
      await expect(m.generate('hi', { temperature: 0, maxTokens: 2 }).text()).rejects.toThrow(NonFiniteError);
      await expect(m.generate('hi', { temperature: 0.8, topK: 5, maxTokens: 2 }).text()).rejects.toThrow(/the logits at position \d+ are NaN or infinite/);
      await expect(m.logits([1, 2, 3])).rejects.toThrow(/the logits at position [0-2] are NaN or infinite/);
    } finally {
      m.dispose();
    }
  });

  it('a known architecture without what it needs, or with an option pocketlm does not compute: named', async () => {
    // Qwen2's q/k/v biases are part of it: a llama-shaped file labelled qwen2 is missing them.
    await expect(loadModel(encodeGGUF(tinyLlama({ arch: 'qwen2' })), { threads: 1 })).rejects.toThrow(/tensor "blk\.0\.attn_q\.bias" is missing/);
    // GPT-2 needs learned positions; Phi-2 LayerNorm biases are optional but its epsilon key is its own.
    await expect(loadModel(encodeGGUF(tinyLlama({ arch: 'gpt2' })), { threads: 1 })).rejects.toThrow(/tensor "position_embd\.weight" is missing/);
    const yarn = tinyLlama();
    yarn.metadata.set('llama.rope.scaling.type', gguf.str('yarn'));
    await expect(loadModel(encodeGGUF(yarn), { threads: 1 })).rejects.toThrow(/RoPE scaling "yarn" \(metadata "llama\.rope\.scaling\.type"\) is not supported; pocketlm computes none, linear, longrope/);
    const window = tinyLlama({ arch: 'gemma2' });
    window.metadata.set('gemma2.attention.sliding_window_pattern', gguf.strings(['yes']));
    await expect(loadModel(encodeGGUF(window), { threads: 1 })).rejects.toThrow(/"gemma2\.attention\.sliding_window_pattern" must list a true\/false per layer/);
    const factors = tinyLlama();
    factors.tensors.push({ name: 'rope_freqs.weight', shape: [3], type: GGMLType.F32, data: new Uint8Array(12) });
    await expect(loadModel(encodeGGUF(factors), { threads: 1 })).rejects.toThrow(/tensor "rope_freqs\.weight" has shape \[3\], expected \[2\]/);
  });

  it('a tensor with the wrong shape, or missing', async () => {
    const bad = tinyLlama();
    const q = bad.tensors.find((t) => t.name === 'blk.0.attn_k.weight')!;
    q.shape = [q.shape[1]!, q.shape[0]!];
    await expect(loadModel(encodeGGUF(bad), { threads: 1 })).rejects.toThrow(/tensor "blk.0.attn_k.weight" has shape \[4, 8\], expected \[8, 4\]/);
    const missing = tinyLlama();
    missing.tensors = missing.tensors.filter((t) => t.name !== 'blk.0.ffn_up.weight');
    await expect(loadModel(encodeGGUF(missing), { threads: 1 })).rejects.toThrow(/tensor "blk.0.ffn_up.weight" is missing/);
    // SwiGLU has no ungated form (found by the fuzzer: this used to fail on the first forward pass).
    const noGate = tinyLlama();
    noGate.tensors = noGate.tensors.filter((t) => t.name !== 'blk.0.ffn_gate.weight');
    await expect(loadModel(encodeGGUF(noGate), { threads: 1 })).rejects.toThrow(/tensor "blk.0.ffn_gate.weight" is missing/);
  });

  it('inconsistent hyper-parameters', async () => {
    const bad = tinyLlama();
    bad.metadata.set('llama.attention.head_count', { type: GGUFValueType.UINT32, value: 3 });
    await expect(loadModel(encodeGGUF(bad), { threads: 1 })).rejects.toThrow(/not divisible by head_count 3/);
    const noTok = tinyLlama();
    noTok.metadata.delete('tokenizer.ggml.model');
    await expect(loadModel(encodeGGUF(noTok), { threads: 1 })).rejects.toThrow(/has no tokenizer/);
  });

  it('a quantized type pocketlm does not run, and a quantized norm vector: named, with what to do', async () => {
    const q2 = tinyLlama({ dim: 256, ffn: 512, heads: 4, kvHeads: 2 });
    const wq = q2.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!;
    Object.assign(wq, { type: GGMLType.Q2_K, data: new Uint8Array((256 / 256) * 84 * 256) });
    await expect(loadModel(encodeGGUF(q2), { device: 'cpu', threads: 1 })).rejects.toThrow(/tensor "blk\.0\.attn_q\.weight" is Q2_K; pocketlm computes with .*Q5_K and Q6_K weights \(requantize from the original with pocketlm quantize\)/);
    const qv = tinyLlama({ dim: 256, ffn: 512, heads: 4, kvHeads: 2 });
    const norm = qv.tensors.find((t) => t.name === 'blk.0.attn_norm.weight')!;
    Object.assign(norm, { type: GGMLType.Q8_0, data: quantizeMatrix(GGMLType.Q8_0, new Float32Array(256).fill(1), 1, 256).data });
    await expect(loadModel(encodeGGUF(qv), { device: 'cpu', threads: 1 })).rejects.toThrow(/tensor "blk\.0\.attn_norm\.weight" is Q8_0; vectors must be F32, F16 or BF16/);
  });

  it('a path that does not exist, and a non-GGUF file without a tokenizer', async () => {
    await expect(loadModel('/nonexistent/model.gguf')).rejects.toThrow(/no such file/);
    await expect(loadModel(new Uint8Array(100))).rejects.toThrow(/not a GGUF file.*tokenizer/);
  });
});

describe.skipIf(!hasShared)('bad llama2.c files', () => {
  const model = readShared('weights', 'stories260K', 'stories260K.bin');
  const tok = readShared('weights', 'stories260K', 'tok512.bin');

  it('truncated checkpoint', () => {
    expectError(() => llama2cModel(model.subarray(0, 20), 'm.bin'), ModelFormatError, /m.bin: file is truncated: 20 bytes/);
    expectError(() => llama2cModel(model.subarray(0, model.length - 4), 'm.bin'), ModelFormatError, /needs 1056540 bytes, the file has 1056536/);
  });

  it('absurd header values', () => {
    const b = model.slice();
    view(b).setInt32(0, 1 << 30, true);
    expectError(() => llama2cModel(b, 'h.bin'), ModelFormatError, /dim = 1073741824 is out of range/);
    view(b).setInt32(0, -64, true);
    expectError(() => llama2cModel(b, 'h.bin'), ModelFormatError, /dim = -64/);
    const c = model.slice();
    view(c).setInt32(12, 7, true); // n_heads 7 does not divide dim 64
    expectError(() => llama2cModel(c, 'h.bin'), ModelFormatError, /not divisible by n_heads 7/);
  });

  it('tokenizer: truncated, corrupt, or not the model\'s', () => {
    expectError(() => llama2cVocab(tok.subarray(0, 2), 't.bin'), ModelFormatError, /truncated/);
    expectError(() => llama2cVocab(tok.subarray(0, 100), 't.bin', 512), ModelFormatError, /t.bin: tokenizer has 7 tokens but the model's vocabulary has 512: the file is truncated/);
    expectError(() => llama2cVocab(tok.subarray(0, 101), 't.bin', 512), ModelFormatError, /t.bin: file is truncated inside token #7/);
    const c = tok.slice();
    view(c).setInt32(8, 1 << 20, true);
    expectError(() => llama2cVocab(c, 't.bin'), ModelFormatError, /has length 1048576/);
    expectError(() => llama2cVocab(tok, 't.bin', 1000), ModelFormatError, /512 tokens but the model's vocabulary has 1000/);
  });
});

describe('bad arguments', () => {
  it('a prompt longer than the context', async () => {
    const m = await loadModel(encodeGGUF(tinyLlama({ ctx: 16 })), { threads: 1 });
    await expect(m.generate('a '.repeat(40), { maxTokens: 2 }).text()).rejects.toThrow(InvalidInputError);
    await expect(m.generate('a '.repeat(40), { maxTokens: 2 }).text()).rejects.toThrow(/prompt is \d+ tokens, longer than the context of 16 tokens/);
  });

  it('generation stops cleanly when the context fills up', async () => {
    const m = await loadModel(encodeGGUF(tinyLlama({ ctx: 16 })), { threads: 1 });
    const g = m.generate('a', { maxTokens: 100, seed: 1, ignoreEos: true });
    await g.text();
    expect(g.stats.stopReason).toBe('context-full');
  });

  it('invalid token ids and options', async () => {
    const m = await loadModel(encodeGGUF(tinyLlama()), { threads: 1 });
    await expect(m.logits([1, 99999])).rejects.toThrow(/token id 99999 is outside the vocabulary/);
    await expect(m.generate('a', { temperature: -1 }).text()).rejects.toThrow(/temperature must be/);
    await expect(m.generate('a', { stop: [''] }).text()).rejects.toThrow(/stop string must not be empty/);
    await expect(loadModel(encodeGGUF(tinyLlama()), { device: 'gpu' as never })).rejects.toThrow(/unknown device "gpu"/);
  });

  it('generation limits: clear errors or a clean stop, never a hang', async () => {
    const m = await loadModel(encodeGGUF(tinyLlama()), { threads: 1 });
    const none = m.generate('a', { maxTokens: 0 });
    expect(await none.text()).toBe('');
    expect(none.stats.stopReason).toBe('max-tokens');
    for (const maxTokens of [-1, 1.5, NaN, Infinity]) await expect(m.generate('a', { maxTokens }).text()).rejects.toThrow(/max tokens must be an integer >= 0/);
    for (const temperature of [NaN, Infinity]) await expect(m.generate('a', { temperature }).text()).rejects.toThrow(/temperature must be a number >= 0/);
    // A top-k beyond the vocabulary is the whole vocabulary: the same draws as no top-k at all.
    const draw = (topK: number) => m.generate('a', { maxTokens: 8, temperature: 1, topK, seed: 3, ignoreEos: true });
    const [huge, off] = [draw(1e12), draw(0)];
    await huge.text();
    await off.text();
    expect(huge.tokens).toEqual(off.tokens);
  });

  it('a context too large for memory: OutOfMemoryError naming the KV cache and what to shorten (both CPU executors)', async () => {
    for (const threads of [1, 0]) {
      const m = await loadModel(encodeGGUF(tinyLlama()), { threads });
      const g = m.generate('a', { maxTokens: 2, contextLength: 2 ** 33 });
      await expect(g.text()).rejects.toThrow(OutOfMemoryError);
      await expect(m.generate('a', { maxTokens: 2, contextLength: 2 ** 33 }).text()).rejects.toThrow(/a 8589934592-token context needs a 274\.9 GB KV cache .* Use a shorter context/);
      expect(await m.generate('a', { maxTokens: 2, contextLength: 16, seed: 1 }).text()).toBeTypeOf('string'); // still usable
      m.dispose();
    }
  });

  it('an empty vocabulary is a ModelFormatError', async () => {
    const empty = tinyLlama();
    for (const k of ['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type']) empty.metadata.set(k, gguf.strings([]));
    await expect(loadModel(encodeGGUF(empty), { threads: 1 })).rejects.toThrow(ModelFormatError);
  });
});
