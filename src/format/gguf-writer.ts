// GGUF writer (version 3). Produces files llama.cpp loads: metadata first (typed values), then
// tensor infos, then tensor data, each tensor aligned to `general.alignment` (default 32).
// The output is a list of byte chunks so that a large model is written without one giant buffer.

import { GGUFValueType, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, type GGUFScalar, type GGUFValue } from './gguf.js';
import { type GGMLType, tensorBytes, typeName } from '../base/tensor.js';

export interface GGUFWriteTensor {
  name: string;
  /** ggml order: shape[0] innermost. */
  shape: number[];
  type: GGMLType;
  /** Raw bytes in the tensor's own type. */
  data: Uint8Array;
}

export interface GGUFWriteInput {
  metadata: Map<string, GGUFValue>;
  tensors: GGUFWriteTensor[];
}

/** Little-endian byte sink that grows as needed. */
class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  len = 0;
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number) { this.ensure(1); this.view.setUint8(this.len, v); this.len += 1; }
  i8(v: number) { this.ensure(1); this.view.setInt8(this.len, v); this.len += 1; }
  u16(v: number) { this.ensure(2); this.view.setUint16(this.len, v, true); this.len += 2; }
  i16(v: number) { this.ensure(2); this.view.setInt16(this.len, v, true); this.len += 2; }
  u32(v: number) { this.ensure(4); this.view.setUint32(this.len, v, true); this.len += 4; }
  i32(v: number) { this.ensure(4); this.view.setInt32(this.len, v, true); this.len += 4; }
  f32(v: number) { this.ensure(4); this.view.setFloat32(this.len, v, true); this.len += 4; }
  f64(v: number) { this.ensure(8); this.view.setFloat64(this.len, v, true); this.len += 8; }
  u64(v: bigint | number) { this.ensure(8); this.view.setBigUint64(this.len, BigInt(v), true); this.len += 8; }
  i64(v: bigint | number) { this.ensure(8); this.view.setBigInt64(this.len, BigInt(v), true); this.len += 8; }
  bytes(b: Uint8Array) { this.ensure(b.length); this.buf.set(b, this.len); this.len += b.length; }
  string(s: string) { const b = new TextEncoder().encode(s); this.u64(b.length); this.bytes(b); }
  pad(alignment: number) { while (this.len % alignment) this.u8(0); }
  result(): Uint8Array { return this.buf.slice(0, this.len); }
}

function writeScalar(out: ByteSink, type: GGUFValueType, v: GGUFScalar, key: string): void {
  const num = () => {
    if (typeof v !== 'number') throw new TypeError(`GGUF metadata "${key}": expected a number for ${GGUFValueType[type]}, got ${typeof v}`);
    return v;
  };
  switch (type) {
    case GGUFValueType.UINT8: return out.u8(num());
    case GGUFValueType.INT8: return out.i8(num());
    case GGUFValueType.UINT16: return out.u16(num());
    case GGUFValueType.INT16: return out.i16(num());
    case GGUFValueType.UINT32: return out.u32(num());
    case GGUFValueType.INT32: return out.i32(num());
    case GGUFValueType.FLOAT32: return out.f32(num());
    case GGUFValueType.FLOAT64: return out.f64(num());
    case GGUFValueType.BOOL: return out.u8(v ? 1 : 0);
    case GGUFValueType.STRING: return out.string(String(v));
    case GGUFValueType.UINT64: return out.u64(typeof v === 'bigint' ? v : BigInt(num()));
    case GGUFValueType.INT64: return out.i64(typeof v === 'bigint' ? v : BigInt(num()));
    default: throw new TypeError(`GGUF metadata "${key}": cannot write value type ${type}`);
  }
}

function writeValue(out: ByteSink, v: GGUFValue, key: string): void {
  if (v.type !== GGUFValueType.ARRAY) return writeScalar(out, v.type, v.value, key);
  out.u32(v.itemType);
  out.u64(v.value.length);
  // Items carry no type tag of their own: a nested array is just (item type, count, items).
  if (v.itemType === GGUFValueType.ARRAY) for (const item of v.value as GGUFValue[]) writeValue(out, item, key);
  else for (const item of v.value as GGUFScalar[]) writeScalar(out, v.itemType, item, key);
}

/** Serialize to GGUF v3. Returns [header, padding/tensor chunks...] to be written in order. */
export function serializeGGUF(input: GGUFWriteInput): Uint8Array[] {
  const alignmentValue = input.metadata.get('general.alignment');
  const alignment = alignmentValue ? Number(alignmentValue.value) : GGUF_DEFAULT_ALIGNMENT;
  const head = new ByteSink();
  head.u32(GGUF_MAGIC);
  head.u32(3);
  head.u64(input.tensors.length);
  head.u64(input.metadata.size);
  for (const [key, value] of input.metadata) {
    head.string(key);
    head.u32(value.type);
    writeValue(head, value, key);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of input.tensors) {
    const expected = tensorBytes(t.type, t.shape);
    if (typeof expected === 'string') throw new TypeError(`GGUF tensor "${t.name}": ${expected}`);
    if (expected !== t.data.byteLength)
      throw new TypeError(`GGUF tensor "${t.name}": ${typeName(t.type)} [${t.shape.join(', ')}] needs ${expected} bytes, got ${t.data.byteLength}`);
    head.string(t.name);
    head.u32(t.shape.length);
    for (const d of t.shape) head.u64(d);
    head.u32(t.type);
    head.u64(offset);
    offsets.push(offset);
    offset += Math.ceil(t.data.byteLength / alignment) * alignment;
  }
  head.pad(alignment);
  const chunks: Uint8Array[] = [head.result()];
  for (const t of input.tensors) {
    chunks.push(t.data);
    const pad = (alignment - (t.data.byteLength % alignment)) % alignment;
    if (pad) chunks.push(new Uint8Array(pad));
  }
  return chunks;
}

/** Serialize to one contiguous buffer (small files, tests, browsers). */
export function encodeGGUF(input: GGUFWriteInput): Uint8Array {
  const chunks = serializeGGUF(input);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let p = 0;
  for (const c of chunks) { out.set(c, p); p += c.byteLength; }
  return out;
}

// --- typed metadata helpers, so callers write `meta.u32(...)` rather than `{type: 4, value}` ---
export const gguf = {
  u32: (value: number): GGUFValue => ({ type: GGUFValueType.UINT32, value }),
  i32: (value: number): GGUFValue => ({ type: GGUFValueType.INT32, value }),
  // A FLOAT32 value is rounded to f32 here, so that metadata in memory equals what a written file holds.
  f32: (value: number): GGUFValue => ({ type: GGUFValueType.FLOAT32, value: Math.fround(value) }),
  bool: (value: boolean): GGUFValue => ({ type: GGUFValueType.BOOL, value }),
  str: (value: string): GGUFValue => ({ type: GGUFValueType.STRING, value }),
  strings: (value: string[]): GGUFValue => ({ type: GGUFValueType.ARRAY, itemType: GGUFValueType.STRING, value }),
  f32s: (value: number[]): GGUFValue => ({ type: GGUFValueType.ARRAY, itemType: GGUFValueType.FLOAT32, value }),
  i32s: (value: number[]): GGUFValue => ({ type: GGUFValueType.ARRAY, itemType: GGUFValueType.INT32, value }),
  bools: (value: boolean[]): GGUFValue => ({ type: GGUFValueType.ARRAY, itemType: GGUFValueType.BOOL, value }),
};
