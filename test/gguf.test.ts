import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GGUFValueType, parseGGUF, tensorFloat32, type GGUFValue } from '../src/format/gguf.js';
import { encodeGGUF, type GGUFWriteInput } from '../src/format/gguf-writer.js';
import { GGMLType, bf16ToF32, f16ToF32, f32ToBF16, f32ToF16 } from '../src/base/tensor.js';
import { hasShared, readShared, tinyLlama } from './helpers.js';
import { loadModel } from '../src/engine.js';

function asWriteInput(bytes: Uint8Array, name: string): GGUFWriteInput {
  const f = parseGGUF(bytes, name);
  return { metadata: f.metadata, tensors: f.tensors.map((t) => ({ name: t.name, shape: t.shape, type: t.type, data: f.bytes.subarray(f.dataOffset + t.offset, f.dataOffset + t.offset + t.byteLength) })) };
}

describe.skipIf(!hasShared)('GGUF reader on a real file (llama-2-tiny-random.gguf)', () => {
  const bytes = readShared('weights', 'llama-2-tiny-random', 'llama-2-tiny-random.gguf');
  const f = parseGGUF(bytes, 'llama-2-tiny-random.gguf');

  it('reads header, metadata and tensor infos', () => {
    expect(f.version).toBe(3);
    expect(f.metadata.get('general.architecture')?.value).toBe('llama');
    expect(f.metadata.get('llama.embedding_length')?.value).toBe(8);
    expect((f.metadata.get('tokenizer.ggml.tokens')?.value as string[]).length).toBe(32000);
    expect(f.tensors.length).toBe(12);
    expect(new Set(f.tensors.map((t) => t.type))).toEqual(new Set([GGMLType.F16, GGMLType.F32]));
    const q = f.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!;
    expect(q.shape).toEqual([8, 8]);
    expect(tensorFloat32(f, q).length).toBe(64);
  });

  it('writer -> reader round trip is identical, and so is our re-encoding of the real file', () => {
    const once = encodeGGUF(asWriteInput(bytes, 'a'));
    const again = parseGGUF(once, 'b');
    expect(again.metadata).toEqual(f.metadata);
    expect(again.tensors.map(({ name, shape, type }) => ({ name, shape, type }))).toEqual(f.tensors.map(({ name, shape, type }) => ({ name, shape, type })));
    for (const [i, t] of again.tensors.entries()) {
      const o = f.tensors[i]!;
      expect(Buffer.from(again.bytes.subarray(again.dataOffset + t.offset, again.dataOffset + t.offset + t.byteLength)).equals(Buffer.from(f.bytes.subarray(f.dataOffset + o.offset, f.dataOffset + o.offset + o.byteLength)))).toBe(true);
    }
    expect(Buffer.from(encodeGGUF(asWriteInput(once, 'c'))).equals(Buffer.from(once))).toBe(true);
  });
});

const scalarTypes = [GGUFValueType.UINT8, GGUFValueType.INT8, GGUFValueType.UINT16, GGUFValueType.INT16, GGUFValueType.UINT32, GGUFValueType.INT32, GGUFValueType.FLOAT32, GGUFValueType.BOOL, GGUFValueType.STRING, GGUFValueType.UINT64, GGUFValueType.INT64, GGUFValueType.FLOAT64] as const;
function scalarArb(t: (typeof scalarTypes)[number]): fc.Arbitrary<unknown> {
  switch (t) {
    case GGUFValueType.UINT8: return fc.integer({ min: 0, max: 255 });
    case GGUFValueType.INT8: return fc.integer({ min: -128, max: 127 });
    case GGUFValueType.UINT16: return fc.integer({ min: 0, max: 65535 });
    case GGUFValueType.INT16: return fc.integer({ min: -32768, max: 32767 });
    case GGUFValueType.UINT32: return fc.nat({ max: 0xffffffff });
    case GGUFValueType.INT32: return fc.integer();
    case GGUFValueType.FLOAT32: return fc.float({ noNaN: true });
    case GGUFValueType.BOOL: return fc.boolean();
    case GGUFValueType.STRING: return fc.string({ unit: 'binary', maxLength: 20 });
    case GGUFValueType.UINT64: return fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
    case GGUFValueType.INT64: return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case GGUFValueType.FLOAT64: return fc.double({ noNaN: true });
  }
}
const valueArb: fc.Arbitrary<GGUFValue> = fc.oneof(
  fc.constantFrom(...scalarTypes).chain((type) => scalarArb(type).map((value) => ({ type, value }) as GGUFValue)),
  fc.constantFrom(...scalarTypes).chain((itemType) => fc.array(scalarArb(itemType), { maxLength: 6 }).map((value) => ({ type: GGUFValueType.ARRAY, itemType, value }) as GGUFValue)),
  fc.constantFrom(...scalarTypes).chain((itemType) =>
    fc.array(fc.array(scalarArb(itemType), { maxLength: 3 }).map((value) => ({ type: GGUFValueType.ARRAY, itemType, value }) as GGUFValue), { maxLength: 3 })
      .map((value) => ({ type: GGUFValueType.ARRAY, itemType: GGUFValueType.ARRAY, value }) as GGUFValue)),
);

describe('GGUF writer and reader', () => {
  it('round-trip every metadata value type, arrays, nested arrays, and F32/F16/BF16 tensors (v3 and v2)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 12 }), valueArb), { selector: (e) => e[0], maxLength: 8 }),
        fc.array(fc.record({ ne0: fc.integer({ min: 1, max: 9 }), ne1: fc.integer({ min: 1, max: 4 }), type: fc.constantFrom(GGMLType.F32, GGMLType.F16, GGMLType.BF16) }), { maxLength: 4 }),
        fc.constantFrom(2, 3),
        (kvs, ts, version) => {
          const metadata = new Map(kvs);
          const tensors = ts.map((t, i) => {
            const bytes = t.ne0 * t.ne1 * (t.type === GGMLType.F32 ? 4 : 2);
            return { name: `t${i}`, shape: [t.ne0, t.ne1], type: t.type, data: Uint8Array.from({ length: bytes }, (_, k) => (k * 31 + i) & 0xff) };
          });
          const bytes = encodeGGUF({ metadata, tensors });
          new DataView(bytes.buffer).setUint32(4, version, true); // v2 and v3 share the little-endian layout
          const f = parseGGUF(bytes, 'roundtrip');
          expect(f.version).toBe(version);
          expect(f.metadata).toEqual(metadata);
          expect(f.tensors.map((t) => t.name)).toEqual(tensors.map((t) => t.name));
          f.tensors.forEach((t, i) => {
            expect(t.offset % f.alignment).toBe(0);
            expect(Array.from(f.bytes.subarray(f.dataOffset + t.offset, f.dataOffset + t.offset + t.byteLength))).toEqual(Array.from(tensors[i]!.data));
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  it('honours general.alignment', () => {
    const input = tinyLlama();
    input.metadata.set('general.alignment', { type: GGUFValueType.UINT32, value: 64 });
    const f = parseGGUF(encodeGGUF(input), 'aligned');
    expect(f.alignment).toBe(64);
    expect(f.dataOffset % 64).toBe(0);
    for (const t of f.tensors) expect(t.offset % 64).toBe(0);
  });

  it('a file we write loads and runs', async () => {
    const m = await loadModel(encodeGGUF(tinyLlama({ f16: true, tied: false })), { threads: 1 });
    expect((await m.logits([1, 260, 261])).every(Number.isFinite)).toBe(true);
  });
});

describe('half-precision conversions', () => {
  it('f16: f16ToF32(f32ToF16(x)) is exact for every half value, and rounds to nearest even', () => {
    for (let h = 0; h < 65536; h++) {
      const x = f16ToF32(h);
      if (Number.isNaN(x)) { expect(Number.isNaN(f16ToF32(f32ToF16(x)))).toBe(true); continue; }
      expect(f32ToF16(x)).toBe(h);
    }
    expect(f16ToF32(f32ToF16(1 + 2 ** -11))).toBe(1); // halfway between 1 and 1+2^-10: even wins
    expect(f16ToF32(f32ToF16(1 + 3 * 2 ** -11))).toBe(1 + 2 ** -9);
    expect(f16ToF32(f32ToF16(70000))).toBe(Infinity);
  });
  it('bf16: exact round trip of every bf16 value', () => {
    for (let b = 0; b < 65536; b++) {
      const x = bf16ToF32(b);
      if (Number.isNaN(x)) continue;
      expect(f32ToBF16(x)).toBe(b);
    }
  });
});
