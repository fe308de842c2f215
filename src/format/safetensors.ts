// safetensors (Hugging Face's weight files): an 8-byte little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}, then the data,
// offsets relative to its start. Shapes are PyTorch's (outermost first); we keep them reversed, as
// GGUF orders them (innermost first), so a Linear's weight [out, in] becomes [in, out] = [cols, rows].
//
// Every field is checked before it is used: a truncated or lying header is a ModelFormatError naming
// the file and the tensor, never an allocation larger than the file or a read past its end.

import { ModelFormatError, UnsupportedModelError } from '../base/errors.js';
import { GGMLType } from '../base/tensor.js';
import type { RawTensor } from './model-file.js';

/** The spec's header limit (100 MB): anything larger is a corrupt or hostile file. */
const MAX_HEADER = 100_000_000;

/** Bytes per element of each dtype the format defines. */
const DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};
/** The dtypes pocketlm computes with, as GGML types. */
const GGML_OF: Record<string, GGMLType> = { F32: GGMLType.F32, F16: GGMLType.F16, BF16: GGMLType.BF16 };
const DTYPE_OF: Partial<Record<GGMLType, string>> = { [GGMLType.F32]: 'F32', [GGMLType.F16]: 'F16', [GGMLType.BF16]: 'BF16' };

export interface SafetensorsTensor {
  name: string;
  dtype: string;
  /** GGUF order: innermost dimension first. */
  shape: number[];
  data: Uint8Array;
}

export interface SafetensorsFile {
  source: string;
  tensors: SafetensorsTensor[];
  metadata: Record<string, string>;
}

export function isSafetensors(bytes: Uint8Array): boolean {
  if (bytes.byteLength < 10) return false;
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  return n > 0n && n <= BigInt(Math.min(MAX_HEADER, bytes.byteLength - 8)) && bytes[8] === 0x7b; /* { */
}

export function parseSafetensors(bytes: Uint8Array, source: string): SafetensorsFile {
  const bad = (problem: string): never => { throw new ModelFormatError(source, problem); };
  if (bytes.byteLength < 8) bad(`is ${bytes.byteLength} bytes long, too short for a safetensors header`);
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER)) bad(`declares a ${n64}-byte header, more than safetensors allows (${MAX_HEADER}); the file is corrupt`);
  const n = Number(n64);
  if (8 + n > bytes.byteLength) bad(`declares a ${n}-byte header but the file is only ${bytes.byteLength} bytes: it is truncated`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.slice(8, 8 + n))); // (a copy: a browser's TextDecoder refuses shared memory)
  } catch (e) {
    bad(`its header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) bad('its header is not a JSON object');
  const dataStart = 8 + n;
  const dataLength = bytes.byteLength - dataStart;
  const tensors: SafetensorsTensor[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Object.values(entry).some((v) => typeof v !== 'string')) bad('"__metadata__" must map strings to strings');
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) bad(`tensor "${name}": its entry is not an object`);
    const size = typeof e.dtype === 'string' ? DTYPE_BYTES[e.dtype] : undefined;
    if (size === undefined) bad(`tensor "${name}": unknown dtype ${JSON.stringify(e.dtype)}`);
    if (!Array.isArray(e.shape) || e.shape.length > 8 || e.shape.some((d) => !(Number.isSafeInteger(d) && d >= 0)))
      bad(`tensor "${name}": shape ${JSON.stringify(e.shape)} is not a list of at most 8 non-negative integers`);
    const shape = e.shape as number[];
    let count = 1;
    for (const d of shape) {
      count *= d;
      if (count * size! > dataLength) bad(`tensor "${name}": shape [${shape.join(', ')}] needs more bytes than the file holds`);
    }
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isSafeInteger(o) && o >= 0) || off[0] > off[1])
      bad(`tensor "${name}": data_offsets ${JSON.stringify(off)} is not a [begin, end] pair of offsets`);
    const [begin, end] = off as [number, number];
    if (end > dataLength) bad(`tensor "${name}": its data ends at ${end}, past the end of the file's ${dataLength} data bytes (truncated?)`);
    if (end - begin !== count * size!) bad(`tensor "${name}": ${e.dtype} [${shape.join(', ')}] needs ${count * size!} bytes, its data_offsets give ${end - begin}`);
    tensors.push({ name, dtype: e.dtype as string, shape: [...shape].reverse(), data: bytes.subarray(dataStart + begin, dataStart + end) });
  }
  // The spec: buffers are contiguous and do not overlap.
  const spans = tensors.map((t) => [t.data.byteOffset, t.data.byteOffset + t.data.byteLength, t.name] as const).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++)
    if (spans[i]![0] < spans[i - 1]![1]) bad(`tensors "${spans[i - 1]![2]}" and "${spans[i]![2]}" overlap`);
  return { source, tensors, metadata };
}

/** A tensor as pocketlm's model files hold it; only F32, F16 and BF16 are computed with. */
export function rawTensor(t: SafetensorsTensor, source: string): RawTensor {
  const type = GGML_OF[t.dtype];
  if (type === undefined) throw new UnsupportedModelError(source, `tensor "${t.name}" is ${t.dtype}; pocketlm reads F32, F16 and BF16 safetensors`);
  return { shape: t.shape, type, data: t.data };
}

/** Serialize tensors (GGUF-order shapes, F32/F16/BF16) as one safetensors file, as chunks to write in order. */
export function serializeSafetensors(tensors: { name: string; shape: number[]; type: GGMLType; data: Uint8Array }[], metadata: Record<string, string> = {}): Uint8Array[] {
  const header: Record<string, unknown> = Object.keys(metadata).length ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const t of tensors) {
    const dtype = DTYPE_OF[t.type];
    if (!dtype) throw new TypeError(`safetensors: tensor "${t.name}" has type ${t.type}; only F32, F16 and BF16 are written`);
    header[t.name] = { dtype, shape: [...t.shape].reverse(), data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  // The data starts 8-byte aligned, as the reference writer pads (with spaces, still valid JSON).
  const text = new Uint8Array(json.byteLength + ((8 - ((8 + json.byteLength) % 8)) % 8)).fill(0x20);
  text.set(json);
  const head = new Uint8Array(8 + text.byteLength);
  new DataView(head.buffer).setBigUint64(0, BigInt(text.byteLength), true);
  head.set(text, 8);
  return [head, ...tensors.map((t) => t.data)];
}
