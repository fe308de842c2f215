// Hugging Face folders and safetensors files: every way they can be wrong gives a typed error naming
// the file and what was wrong (a tensor, a config key, a variant pocketlm does not compute), never a
// crash, a huge allocation or silently wrong output.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidInputError, ModelFormatError, PocketLMError, UnsupportedModelError } from '../src/base/errors.js';
import { GGMLType } from '../src/base/tensor.js';
import { loadModel } from '../src/engine.js';
import { parseSafetensors, serializeSafetensors } from '../src/format/safetensors.js';
import { family, hfFolder } from '../bench/families.js';
import { hasShared, ROOT, SHARED } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'pocketlm-hf-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const bytes = (chunks: Uint8Array[]) => {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  chunks.reduce((at, c) => (out.set(c, at), at + c.byteLength), 0);
  return out;
};
const small = () => bytes(serializeSafetensors([
  { name: 'a', shape: [3, 2], type: GGMLType.F32, data: new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer) },
  { name: 'b', shape: [4], type: GGMLType.F16, data: new Uint8Array(8) },
], { format: 'pt' }));

async function expectRejects(p: Promise<unknown>, type: new (...a: never[]) => PocketLMError, pattern: RegExp): Promise<void> {
  const err = await p.then(() => undefined, (e) => e);
  expect(err, String(err)).toBeInstanceOf(type);
  expect((err as Error).message).toMatch(pattern);
}

describe('safetensors', () => {
  it('round-trips through our writer: names, dtypes, shapes (reversed to GGUF order) and bytes', () => {
    const f = parseSafetensors(small(), 'x.safetensors');
    expect(f.metadata).toEqual({ format: 'pt' });
    expect(f.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([['a', 'F32', [3, 2]], ['b', 'F16', [4]]]);
    expect(Array.from(new Float32Array(f.tensors[0]!.data.slice().buffer))).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('a lying or truncated header is a ModelFormatError naming the file and the tensor', () => {
    const good = small();
    const n = Number(new DataView(good.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(good.subarray(8, 8 + n)));
    const withHeader = (h: object, data = good.subarray(8 + n)) => {
      const text = new TextEncoder().encode(JSON.stringify(h));
      const out = new Uint8Array(8 + text.length + data.length);
      new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
      out.set(text, 8);
      out.set(data, 8 + text.length);
      return out;
    };
    const bad = (b: Uint8Array, re: RegExp) => expect(() => parseSafetensors(b, 'm.safetensors')).toThrow(re);
    bad(good.subarray(0, 5), /too short/);
    bad(good.subarray(0, 20), /truncated/);
    const huge = good.slice(); new DataView(huge.buffer).setBigUint64(0, 2n ** 60n, true);
    bad(huge, /more than safetensors allows/);
    bad(withHeader({ ...header, a: { ...header.a, data_offsets: [0, 10 ** 9] } }), /tensor "a": its data ends at 1000000000, past the end/);
    bad(withHeader({ ...header, a: { ...header.a, shape: [2 ** 40, 2 ** 40] } }), /tensor "a": shape .* needs more bytes than the file holds/);
    bad(withHeader({ ...header, a: { ...header.a, shape: [-1, 3] } }), /tensor "a": shape \[-1,3\] is not a list/);
    bad(withHeader({ ...header, a: { ...header.a, dtype: 'F128' } }), /tensor "a": unknown dtype "F128"/);
    bad(withHeader({ ...header, a: { ...header.a, shape: [4, 2] } }), /tensor "a": F32 \[4, 2\] needs 32 bytes, its data_offsets give 24/);
    bad(withHeader({ ...header, b: { ...header.b, data_offsets: [16, 24] } }), /overlap/);
    bad(withHeader([1, 2]), /not a JSON object/);
    const text = good.slice(); text[9] = 0xff;
    bad(text, /not valid UTF-8 JSON/);
  });

  it('random corruption never escapes as anything but a ModelFormatError, and never allocates more than the file', () => {
    const good = small();
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.nat(255)), { minLength: 1, maxLength: 6 }), fc.nat(good.length), (edits, cut) => {
      const b = good.slice(0, Math.max(cut, 8));
      for (const [i, v] of edits) if (i < b.length) b[i] = v;
      try {
        const f = parseSafetensors(b, 'fuzz.safetensors');
        for (const t of f.tensors) expect(t.data.byteLength).toBeLessThanOrEqual(b.length);
      } catch (e) {
        expect(e).toBeInstanceOf(ModelFormatError);
      }
    }), { numRuns: 3000 });
  });
});

describe.skipIf(!hasShared)('Hugging Face folders that pocketlm cannot or must not run', () => {
  const models = join(ROOT, 'bench', 'models', 'families');
  /** A copy of a family's tiny folder, changed by `edit` (config, and tensors by name). */
  const variant = (id: string, edit: { config?: (c: Record<string, unknown>) => void; tensors?: (t: Map<string, { shape: number[]; type: GGMLType; data: Uint8Array }>) => void }) => {
    const dir = join(tmp, `${id}-${Math.random().toString(36).slice(2)}`);
    cpSync(hfFolder(family(id), models, SHARED), dir, { recursive: true });
    if (edit.config) {
      const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      edit.config(c);
      writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
    }
    if (edit.tensors) {
      const f = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'model.safetensors'))), 'm');
      const map = new Map(f.tensors.map((t) => [t.name, { shape: t.shape, type: GGMLType[t.dtype as 'F32'], data: t.data }]));
      edit.tensors(map);
      writeFileSync(join(dir, 'model.safetensors'), bytes(serializeSafetensors([...map].map(([name, t]) => ({ name, ...t })))));
    }
    return dir;
  };

  it('a missing tensor, a wrong shape, an unknown extra tensor: named', async () => {
    await expectRejects(loadModel(variant('qwen2', { tensors: (t) => t.delete('model.layers.1.self_attn.k_proj.bias') })), ModelFormatError, /tensor "model\.layers\.1\.self_attn\.k_proj\.bias" is missing/);
    await expectRejects(loadModel(variant('llama3', { tensors: (t) => { const x = t.get('model.layers.0.mlp.up_proj.weight')!; t.set('model.layers.0.mlp.up_proj.weight', { ...x, shape: [x.shape[0]! * 2, x.shape[1]! / 2] }); } })), ModelFormatError, /tensor "blk\.0\.ffn_up\.weight" \(model\.layers\.0\.mlp\.up_proj\.weight in the folder\) has shape \[512, 384\], expected \[256, 768\]/);
    await expectRejects(loadModel(variant('gpt2', { tensors: (t) => t.set('transformer.h.0.attn.c_attn.lora_A', { shape: [4], type: GGMLType.F32, data: new Uint8Array(16) }) })), UnsupportedModelError, /"transformer\.h\.0\.attn\.c_attn\.lora_A" is not used by pocketlm's gpt2 mapping/);
  });

  it('an unknown model class, a RoPE scaling pocketlm does not compute, an unsupported option, a bad config value: named', async () => {
    await expectRejects(loadModel(variant('llama3', { config: (c) => (c.architectures = ['MambaForCausalLM']) })), UnsupportedModelError, /model class "MambaForCausalLM" is not one pocketlm runs; it reads LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM/);
    await expectRejects(loadModel(variant('llama3', { config: (c) => (c.rope_scaling = { rope_type: 'yarn', factor: 4 }) })), UnsupportedModelError, /rope_scaling .*"yarn" scaling is not supported for this family; pocketlm computes linear, llama3/);
    await expectRejects(loadModel(variant('qwen2', { config: (c) => (c.use_sliding_window = true) })), UnsupportedModelError, /use_sliding_window: true/);
    await expectRejects(loadModel(variant('phi2', { config: (c) => (c.hidden_act = 'swish') })), UnsupportedModelError, /"hidden_act" = "swish" is not an activation pocketlm computes for this family \(gelu_new/);
    await expectRejects(loadModel(variant('gemma', { config: (c) => (c.num_hidden_layers = 'two') })), ModelFormatError, /config\.json: "num_hidden_layers" = "two" is not a number/);
    await expectRejects(loadModel(variant('gpt2', { config: (c) => delete c.n_embd })), ModelFormatError, /config\.json: "hidden_size" \/ "n_embd" \/ "d_model" is missing/);
  });

  it('a folder without weights or tokenizer, and a context longer than learned positions', async () => {
    const empty = join(tmp, 'empty');
    cpSync(hfFolder(family('opt'), models, SHARED), empty, { recursive: true });
    rmSync(join(empty, 'vocab.json'));
    await expectRejects(loadModel(empty), ModelFormatError, /holds no tokenizer/);
    rmSync(join(empty, 'model.safetensors'));
    await expectRejects(loadModel(empty), InvalidInputError, /is a folder without a Hugging Face model/);
    const gpt2 = await loadModel(hfFolder(family('gpt2'), models, SHARED), { device: 'cpu', threads: 1 });
    try {
      expect(() => gpt2.transformer.newState(4096)).toThrow(/a context of 4096 tokens is longer than this model's 2048 learned positions/);
      await expect(gpt2.generate('hi', { contextLength: 5000, maxTokens: 2 }).text()).rejects.toThrow(InvalidInputError);
    } finally {
      gpt2.dispose();
    }
  });
});
