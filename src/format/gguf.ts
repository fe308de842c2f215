// GGUF reader (versions 2 and 3, little-endian). Layout of a file:
//   magic "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
//   metadata_kv_count x (string key, u32 value_type, value)
//   tensor_count x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset)
//   padding to `general.alignment` (default 32) | tensor data (each offset relative to here)
// Strings are u64 length + UTF-8 bytes. Every read is bounds-checked so that a truncated or hostile
// file gives a ModelFormatError naming the file, never a RangeError or a giant allocation.

import { ModelFormatError, UnsupportedModelError } from '../base/errors.js';
import { GGMLType, blockLayout, numElements, tensorBytes, toFloat32, typeName } from '../base/tensor.js';

export enum GGUFValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

export type GGUFScalar = number | bigint | boolean | string;
/** A metadata value with its GGUF type kept, so that a file can be written back identically. */
export type GGUFValue =
  | { type: Exclude<GGUFValueType, GGUFValueType.ARRAY>; value: GGUFScalar }
  | { type: GGUFValueType.ARRAY; itemType: Exclude<GGUFValueType, GGUFValueType.ARRAY>; value: GGUFScalar[] }
  | { type: GGUFValueType.ARRAY; itemType: GGUFValueType.ARRAY; value: GGUFValue[] };

export interface GGUFTensorInfo {
  name: string;
  /** ggml order: shape[0] is innermost. */
  shape: number[];
  type: GGMLType;
  /** Offset from the start of the data section. */
  offset: number;
  /** Size in bytes of the tensor's data. */
  byteLength: number;
}

export interface GGUFFile {
  /** Where it came from, for error messages. */
  source: string;
  version: number;
  metadata: Map<string, GGUFValue>;
  tensors: GGUFTensorInfo[];
  alignment: number;
  /** Absolute offset of the data section within `bytes`. */
  dataOffset: number;
  /** The whole file. Tensor data is read from here without copying. */
  bytes: Uint8Array;
}

export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
export const GGUF_DEFAULT_ALIGNMENT = 32;
const MAX_DIMS = 4; // GGML_MAX_DIMS

const SCALAR_SIZE: Partial<Record<GGUFValueType, number>> = {
  [GGUFValueType.UINT8]: 1,
  [GGUFValueType.INT8]: 1,
  [GGUFValueType.BOOL]: 1,
  [GGUFValueType.UINT16]: 2,
  [GGUFValueType.INT16]: 2,
  [GGUFValueType.UINT32]: 4,
  [GGUFValueType.INT32]: 4,
  [GGUFValueType.FLOAT32]: 4,
  [GGUFValueType.UINT64]: 8,
  [GGUFValueType.INT64]: 8,
  [GGUFValueType.FLOAT64]: 8,
  [GGUFValueType.STRING]: 8, // at least its length prefix
  [GGUFValueType.ARRAY]: 12, // at least item type + count
};

/** A bounds-checked little-endian reader over a byte array. */
class Cursor {
  pos = 0;
  private readonly view: DataView;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: false });
  private readonly shared: boolean;
  constructor(
    readonly bytes: Uint8Array,
    readonly source: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.shared = !(bytes.buffer instanceof ArrayBuffer);
  }
  fail(problem: string): never {
    throw new ModelFormatError(this.source, problem);
  }
  need(n: number, what: string): void {
    if (this.pos + n > this.bytes.byteLength)
      this.fail(`file is truncated: needed ${n} bytes for ${what} at offset ${this.pos}, but the file is ${this.bytes.byteLength} bytes`);
  }
  remaining(): number {
    return this.bytes.byteLength - this.pos;
  }
  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** A u64 that must fit a safe integer and not exceed `max` (a count or a size). */
  count(what: string, max: number): number {
    const v = this.u64(what);
    if (v > BigInt(max)) this.fail(`${what} is ${v}, which cannot be right: at most ${max} fit in the ${this.remaining()} bytes left (the file is truncated or corrupt)`);
    return Number(v);
  }
  string(what: string): string {
    const len = this.count(`length of ${what}`, this.remaining());
    // (a browser's TextDecoder refuses views of shared memory, where the CPU reads a model: those are copied)
    const at = this.bytes.subarray(this.pos, this.pos + len);
    const s = this.utf8.decode(this.shared ? at.slice() : at);
    this.pos += len;
    return s;
  }
  /**
   * Item `index` of the string array `what`, as string() reads it, with no error message made unless it
   * fails: an array's 50000 items each made two names and a BigInt as garbage, enough to make V8 grow
   * its young generation for good while a tokenizer's strings were read (see tokenizer.ts's packedPieces).
   */
  stringItem(what: string, index: number): string {
    const p = this.pos, end = this.bytes.byteLength;
    // (a length whose high word is not zero, or past the end: string() fails with its message)
    if (p + 8 > end || this.view.getUint32(p + 4, true) !== 0 || p + 8 + this.view.getUint32(p, true) > end) return this.string(`${what}[${index}]`);
    const at = this.bytes.subarray(p + 8, p + 8 + this.view.getUint32(p, true));
    this.pos = p + 8 + at.length;
    return this.utf8.decode(this.shared ? at.slice() : at);
  }
  scalar(type: GGUFValueType, what: string): GGUFScalar {
    const size = SCALAR_SIZE[type];
    if (size === undefined || type === GGUFValueType.ARRAY) this.fail(`${what} has unknown value type ${type}`);
    if (type === GGUFValueType.STRING) return this.string(what);
    this.need(size, what);
    const p = this.pos;
    this.pos += size;
    const v = this.view;
    switch (type) {
      case GGUFValueType.UINT8: return v.getUint8(p);
      case GGUFValueType.INT8: return v.getInt8(p);
      case GGUFValueType.BOOL: return v.getUint8(p) !== 0;
      case GGUFValueType.UINT16: return v.getUint16(p, true);
      case GGUFValueType.INT16: return v.getInt16(p, true);
      case GGUFValueType.UINT32: return v.getUint32(p, true);
      case GGUFValueType.INT32: return v.getInt32(p, true);
      case GGUFValueType.FLOAT32: return v.getFloat32(p, true);
      case GGUFValueType.UINT64: return v.getBigUint64(p, true);
      case GGUFValueType.INT64: return v.getBigInt64(p, true);
      case GGUFValueType.FLOAT64: return v.getFloat64(p, true);
    }
    return this.fail(`${what} has unknown value type ${type}`);
  }
  value(type: GGUFValueType, what: string, depth = 0): GGUFValue {
    if (type !== GGUFValueType.ARRAY) {
      return { type, value: this.scalar(type, what) } as GGUFValue;
    }
    if (depth > 8) this.fail(`${what}: arrays nested more than 8 deep`);
    const itemType = this.u32(`item type of ${what}`) as GGUFValueType;
    const itemSize = SCALAR_SIZE[itemType];
    if (itemSize === undefined) this.fail(`${what} is an array of unknown value type ${itemType}`);
    const n = this.count(`item count of ${what}`, Math.floor(this.remaining() / itemSize));
    if (itemType === GGUFValueType.ARRAY) {
      const items: GGUFValue[] = [];
      for (let i = 0; i < n; i++) items.push(this.value(itemType, `${what}[${i}]`, depth + 1));
      return { type, itemType, value: items };
    }
    const items: GGUFScalar[] = new Array(n);
    if (itemType === GGUFValueType.STRING) for (let i = 0; i < n; i++) items[i] = this.stringItem(what, i);
    // (numbers: the count's bound keeps every item inside the file, so no read can fail and needs a name)
    else for (let i = 0; i < n; i++) items[i] = this.scalar(itemType, what);
    return { type, itemType, value: items } as GGUFValue;
  }
}

/** Parse a GGUF file held in memory. `source` names it in error messages. */
export function parseGGUF(bytes: Uint8Array, source = '<memory>'): GGUFFile {
  const c = new Cursor(bytes, source);
  if (bytes.byteLength < 4) c.fail(`file is truncated: ${bytes.byteLength} bytes is too short to be a GGUF file`);
  const magic = c.u32('magic');
  if (magic !== GGUF_MAGIC) {
    const seen = [...bytes.subarray(0, 4)].map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
    c.fail(`not a GGUF file: expected magic "GGUF", found "${seen}"`);
  }
  const version = c.u32('version');
  if (version !== 2 && version !== 3) {
    const hint = version === 1 ? ' (GGUF v1 predates 64-bit counts; re-convert the model with a current llama.cpp)' :
      (version & 0xffff) === 0 ? ' (this looks like a big-endian GGUF file, which pocketlm does not read)' : '';
    throw new UnsupportedModelError(source, `unsupported GGUF version ${version}; pocketlm reads versions 2 and 3${hint}`);
  }
  // Smallest tensor info: 8-byte name length + 4 n_dims + 4 type + 8 offset; smallest kv: 8 + 4 + 1.
  const tensorCount = c.count('tensor count', Math.floor(c.remaining() / 24));
  const kvCount = c.count('metadata key-value count', Math.floor(c.remaining() / 13));

  const metadata = new Map<string, GGUFValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = c.string(`metadata key #${i}`);
    const type = c.u32(`value type of metadata "${key}"`) as GGUFValueType;
    if (SCALAR_SIZE[type] === undefined) c.fail(`metadata "${key}" has unknown value type ${type}`);
    // As llama.cpp's reader: a key given twice would let a file say two things at once.
    if (metadata.has(key)) c.fail(`metadata key "${key}" appears twice`);
    metadata.set(key, c.value(type, `metadata "${key}"`));
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const alignValue = metadata.get('general.alignment');
  if (alignValue) {
    const a = Number(alignValue.value);
    if (alignValue.type === GGUFValueType.ARRAY || !Number.isInteger(a) || a <= 0 || (a & (a - 1)) !== 0)
      c.fail(`general.alignment must be a positive power of two, got ${String(alignValue.value)}`);
    alignment = a;
  }

  const infos: GGUFTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string(`name of tensor #${i}`);
    if (names.has(name)) c.fail(`tensor "${name}" appears twice`);
    names.add(name);
    const nDims = c.u32(`dimension count of tensor "${name}"`);
    if (nDims < 1 || nDims > MAX_DIMS) c.fail(`tensor "${name}" has ${nDims} dimensions; GGUF allows 1 to ${MAX_DIMS}`);
    const shape: number[] = [];
    for (let d = 0; d < nDims; d++) {
      // No type stores more than 8 values per byte, so a larger dimension cannot fit in the file.
      shape.push(c.count(`dimension ${d} of tensor "${name}"`, Math.max(1, bytes.byteLength * 8)));
    }
    const type = c.u32(`type of tensor "${name}"`) as GGMLType;
    if (!blockLayout(type)) throw new UnsupportedModelError(source, `tensor "${name}" has unknown ggml type ${type}`);
    const offset = c.count(`data offset of tensor "${name}"`, bytes.byteLength);
    const size = tensorBytes(type, shape);
    if (typeof size === 'string') throw new ModelFormatError(source, `tensor "${name}" (${typeName(type)}, shape [${shape.join(', ')}]): ${size}`);
    if (offset % alignment !== 0) c.fail(`tensor "${name}" data offset ${offset} is not a multiple of the alignment ${alignment}`);
    infos.push({ name, shape, type, offset, byteLength: size });
  }

  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  for (const t of infos) {
    const end = dataOffset + t.offset + t.byteLength;
    if (end > bytes.byteLength)
      c.fail(`tensor "${t.name}" (${typeName(t.type)}, ${t.byteLength} bytes at data offset ${t.offset}) ends at byte ${end}, past the end of the ${bytes.byteLength}-byte file: the file is truncated or the offset is wrong`);
  }
  // Each tensor owns its bytes: two whose data overlap would read each other's values.
  const byOffset = [...infos].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const [a, b] = [byOffset[i - 1]!, byOffset[i]!];
    if (a.offset + a.byteLength > b.offset) c.fail(`tensors "${a.name}" (data offset ${a.offset}, ${a.byteLength} bytes) and "${b.name}" (data offset ${b.offset}) overlap: the offsets are wrong`);
  }
  return { source, version, metadata, tensors: infos, alignment, dataOffset, bytes };
}

/** The raw bytes of one tensor: a view into the file, not a copy. */
export function tensorData(file: GGUFFile, info: GGUFTensorInfo): Uint8Array {
  const start = file.dataOffset + info.offset;
  return file.bytes.subarray(start, start + info.byteLength);
}

/** One tensor as f32 (viewed when it is aligned F32 data, converted from F16 / BF16 otherwise). */
export function tensorFloat32(file: GGUFFile, info: GGUFTensorInfo): Float32Array {
  if (info.type !== GGMLType.F32 && info.type !== GGMLType.F16 && info.type !== GGMLType.BF16)
    throw new UnsupportedModelError(file.source, `tensor "${info.name}" is ${typeName(info.type)}; this version of pocketlm computes with F32, F16 and BF16 weights only`);
  return toFloat32(info.type, tensorData(file, info), numElements(info.shape));
}

// --- metadata accessors -----------------------------------------------------------------------

/** A parsed file, or metadata about to be written: anything with a name and typed metadata. */
export interface MetaHolder {
  source: string;
  metadata: Map<string, GGUFValue>;
}

export function metaNumber(file: MetaHolder, key: string): number | undefined;
export function metaNumber(file: MetaHolder, key: string, fallback: number): number;
export function metaNumber(file: MetaHolder, key: string, fallback?: number): number | undefined {
  const v = file.metadata.get(key);
  if (!v) return fallback;
  if (v.type === GGUFValueType.ARRAY || typeof v.value === 'string' || typeof v.value === 'boolean')
    throw new ModelFormatError(file.source, `metadata "${key}" should be a number, found ${describeValue(v)}`);
  return Number(v.value);
}

export function metaString(file: MetaHolder, key: string): string | undefined {
  const v = file.metadata.get(key);
  if (!v) return undefined;
  if (v.type !== GGUFValueType.STRING) throw new ModelFormatError(file.source, `metadata "${key}" should be a string, found ${describeValue(v)}`);
  return v.value as string;
}

export function metaBool(file: MetaHolder, key: string, fallback: boolean): boolean {
  const v = file.metadata.get(key);
  if (!v) return fallback;
  if (v.type !== GGUFValueType.BOOL) throw new ModelFormatError(file.source, `metadata "${key}" should be a bool, found ${describeValue(v)}`);
  return v.value as boolean;
}

export function metaArray(file: MetaHolder, key: string): GGUFScalar[] | undefined {
  const v = file.metadata.get(key);
  if (!v) return undefined;
  if (v.type !== GGUFValueType.ARRAY) throw new ModelFormatError(file.source, `metadata "${key}" should be an array, found ${describeValue(v)}`);
  return v.value as GGUFScalar[];
}

export function describeValue(v: GGUFValue): string {
  if (v.type === GGUFValueType.ARRAY) return `array of ${v.value.length} ${GGUFValueType[v.itemType]}`;
  const s = String(v.value);
  return `${GGUFValueType[v.type]} ${s.length > 60 ? JSON.stringify(s.slice(0, 60) + '...') : JSON.stringify(s)}`;
}
