// The common form of a model, whatever file it came from: typed GGUF metadata plus raw tensors.
// A GGUF file gives views into its bytes; a llama2.c checkpoint is converted to the same form.

import { ModelFormatError } from '../base/errors.js';
import { parseGGUF, tensorData, type GGUFFile, type MetaHolder } from './gguf.js';
import type { GGUFWriteInput } from './gguf-writer.js';
import { llama2cToGGUF } from './llama2c.js';
import type { GGMLType } from '../base/tensor.js';

export interface RawTensor {
  shape: number[];
  type: GGMLType;
  data: Uint8Array;
}

export interface ModelFile extends MetaHolder {
  /** Where it came from: a GGUF file, a llama2.c checkpoint, or a Hugging Face folder (converted to the GGUF form). */
  format: 'gguf' | 'llama2c' | 'hf';
  tensors: Map<string, RawTensor>;
  /** Total bytes of tensor data. */
  tensorBytes: number;
  /** For a converted folder: each GGUF tensor name's name in the original files (for messages). */
  origins?: Map<string, string>;
}

/** A tensor's name for a message: its GGUF name, and where it came from when that differs. */
export function tensorLabel(file: ModelFile, name: string): string {
  const from = file.origins?.get(name);
  return from ? `"${name}" (${from} in the folder)` : `"${name}"`;
}

export function isGGUF(bytes: Uint8Array): boolean {
  return bytes.byteLength >= 4 && bytes[0] === 0x47 && bytes[1] === 0x47 && bytes[2] === 0x55 && bytes[3] === 0x46;
}

export function modelFileFromGGUF(file: GGUFFile): ModelFile {
  const tensors = new Map<string, RawTensor>();
  for (const t of file.tensors) {
    if (tensors.has(t.name)) throw new ModelFormatError(file.source, `tensor "${t.name}" appears twice`);
    tensors.set(t.name, { shape: t.shape, type: t.type, data: tensorData(file, t) });
  }
  return { format: 'gguf', source: file.source, metadata: file.metadata, tensors, tensorBytes: file.tensors.reduce((n, t) => n + t.byteLength, 0) };
}

export function modelFileFromWriteInput(input: GGUFWriteInput, source: string, format: ModelFile['format']): ModelFile {
  const tensors = new Map(input.tensors.map((t) => [t.name, { shape: t.shape, type: t.type, data: t.data }] as const));
  return { format, source, metadata: input.metadata, tensors, tensorBytes: input.tensors.reduce((n, t) => n + t.data.byteLength, 0) };
}

/** The model file as what the GGUF writer takes: its metadata, its tensors in their order. */
export function modelFileToWriteInput(file: ModelFile): GGUFWriteInput {
  return { metadata: new Map(file.metadata), tensors: [...file.tensors].map(([name, t]) => ({ name, shape: t.shape, type: t.type, data: t.data })) };
}

/** Parse model bytes: GGUF, or a llama2.c checkpoint (which needs its tokenizer file). */
export function readModelFile(bytes: Uint8Array, source: string, tokenizer?: { bytes: Uint8Array; source: string }): ModelFile {
  if (isGGUF(bytes)) return modelFileFromGGUF(parseGGUF(bytes, source));
  if (!tokenizer)
    throw new ModelFormatError(source, 'is not a GGUF file; if it is a llama2.c checkpoint, also give its tokenizer .bin (--tokenizer PATH, or { tokenizer } in loadModel)');
  const name = source.split(/[\\/]/).pop()!.replace(/\.bin$/, '');
  return modelFileFromWriteInput(llama2cToGGUF(bytes, source, tokenizer.bytes, tokenizer.source, name), source, 'llama2c');
}
