// The model quantizer: which tensor gets which type, following llama.cpp's choices
// (llama_tensor_get_type) for the formats we implement, and the GGUF it writes.
//
//   q8_0    every matrix Q8_0
//   q4_0    matrices Q4_0; the output head (or the token embedding, when it doubles as the head) Q6_K
//   q4_1, q5_1  matrices Q4_1 / Q5_1; output head Q6_K
//   q4_k    matrices Q4_K (llama.cpp's Q4_K_S without its first-layers tweak); output head Q6_K
//   q6_k    every matrix Q6_K
//   q4_k_m  matrices Q4_K, but Q6_K for the output head and for attn_v and ffn_down in the first
//           and last eighth of the layers and every third layer between (llama.cpp's use_more_bits)
//   q5_k    matrices Q5_K (llama.cpp's Q5_K_S); output head Q6_K
//   q5_k_m  as q4_k_m with Q5_K for Q4_K
// Norms and other vectors stay F32. A matrix whose rows do not split into the type's blocks falls
// back: Q4_K, Q5_K and Q6_K -> Q8_0; when even 32-value blocks do not fit, it keeps its type. llama.cpp
// falls back from Q4_K to Q5_0 (pocketlm reads and runs Q5_0, so it runs llama.cpp's files) and to F16;
// we keep Q8_0, a little larger and closer to F32 (docs/quantization.md has the measurements).

import { InvalidInputError } from '../base/errors.js';
import type { GGUFValue } from '../format/gguf.js';
import { gguf, type GGUFWriteInput, type GGUFWriteTensor } from '../format/gguf-writer.js';
import type { ModelFile } from '../format/model-file.js';
import { QUANT_FORMATS, quantizeMatrix, type QuantType } from './formats.js';
import { GGMLType, numElements, toFloat32, typeName } from '../base/tensor.js';

export const QUANTIZE_TARGETS = ['q8_0', 'q4_0', 'q4_k', 'q6_k', 'q4_k_m', 'q5_k', 'q5_k_m', 'q4_1', 'q5_1'] as const;
export type QuantizeTarget = (typeof QUANTIZE_TARGETS)[number];

/** llama.cpp's llama_ftype for each target (general.file_type). */
const FILE_TYPE: Record<QuantizeTarget, number> = { q8_0: 7, q4_0: 2, q4_k: 14, q6_k: 18, q4_k_m: 15, q5_k: 16, q5_k_m: 17, q4_1: 3, q5_1: 9 };

export interface PlanEntry {
  name: string;
  from: GGMLType;
  to: GGMLType;
  /** Why it differs from the target's base type, if it does. */
  note?: string;
}

/** llama.cpp's use_more_bits: the first and last eighth of the layers, and every third between. */
function useMoreBits(i: number, n: number): boolean {
  return i < Math.floor(n / 8) || i >= Math.floor((7 * n) / 8) || (i - Math.floor(n / 8)) % 3 === 2;
}

/** The type each tensor gets, and why, for a target. */
export function quantizePlan(file: ModelFile, target: QuantizeTarget): PlanEntry[] {
  if (!QUANTIZE_TARGETS.includes(target)) throw new InvalidInputError(`unknown quantization type "${String(target)}": use ${QUANTIZE_TARGETS.join(', ')}`);
  const base = { q8_0: GGMLType.Q8_0, q4_0: GGMLType.Q4_0, q4_k: GGMLType.Q4_K, q6_k: GGMLType.Q6_K, q4_k_m: GGMLType.Q4_K, q5_k: GGMLType.Q5_K, q5_k_m: GGMLType.Q5_K, q4_1: GGMLType.Q4_1, q5_1: GGMLType.Q5_1 }[target];
  const hasOutput = file.tensors.has('output.weight');
  const nLayers = new Set([...file.tensors.keys()].map((n) => /^blk\.(\d+)\./.exec(n)?.[1]).filter(Boolean)).size;
  const plan: PlanEntry[] = [];
  for (const [name, t] of file.tensors) {
    if (t.shape.length !== 2 || !name.endsWith('.weight')) {
      plan.push({ name, from: t.type, to: t.type });
      continue;
    }
    if (t.type !== GGMLType.F32 && t.type !== GGMLType.F16 && t.type !== GGMLType.BF16)
      throw new InvalidInputError(`${name} is already ${typeName(t.type)}: quantize from an F32, F16 or BF16 file (requantizing loses more than quantizing once)`);
    let to: GGMLType = base;
    let note: string | undefined;
    const isHead = name === 'output.weight' || (!hasOutput && name === 'token_embd.weight');
    if (isHead && base !== GGMLType.Q8_0) {
      to = GGMLType.Q6_K;
      note = 'output head: Q6_K, as llama.cpp does';
    } else if (target === 'q4_k_m' || target === 'q5_k_m') {
      const layer = /^blk\.(\d+)\.(attn_v|ffn_down)\.weight$/.exec(name);
      if (layer && useMoreBits(Number(layer[1]), nLayers)) {
        to = GGMLType.Q6_K;
        note = `${target.toUpperCase()}: ${layer[2]} of layer ${layer[1]} gets more bits`;
      }
    }
    const cols = t.shape[0]!;
    if (cols % QUANT_FORMATS[to as QuantType].blockSize !== 0) {
      const fallback = cols % 32 !== 0 ? t.type : GGMLType.Q8_0;
      note = `rows of ${cols} values do not split into ${typeName(to)}'s ${QUANT_FORMATS[to as QuantType].blockSize}-value blocks: ${typeName(fallback)}`;
      to = fallback;
    }
    plan.push({ name, from: t.type, to, note });
  }
  return plan;
}

/** The quantized model as GGUF tensors and metadata (the file's own metadata, file type updated). */
export function quantizeModel(file: ModelFile, target: QuantizeTarget, onTensor?: (done: number, total: number, name: string) => void): { input: GGUFWriteInput; plan: PlanEntry[] } {
  const plan = quantizePlan(file, target);
  const tensors: GGUFWriteTensor[] = [];
  plan.forEach((p, i) => {
    const t = file.tensors.get(p.name)!;
    onTensor?.(i, plan.length, p.name);
    if (p.to === p.from) {
      tensors.push({ name: p.name, shape: t.shape, type: t.type, data: t.data });
      return;
    }
    const [cols, rows] = t.shape as [number, number];
    const f32 = toFloat32(t.type, t.data, numElements(t.shape));
    const q = quantizeMatrix(p.to as QuantType, f32, rows, cols, p.name);
    tensors.push({ name: p.name, shape: t.shape, type: p.to, data: q.data });
  });
  const metadata = new Map<string, GGUFValue>(file.metadata);
  metadata.set('general.file_type', gguf.u32(FILE_TYPE[target]));
  metadata.set('general.quantization_version', gguf.u32(2));
  return { input: { metadata, tensors }, plan };
}
