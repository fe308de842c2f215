// Tensor element types (ggml's numbering, as stored in GGUF files) and the Tensor type the engine
// computes with. Shapes follow ggml: shape[0] is the fastest-varying (innermost) dimension, so a
// weight matrix W with `rows` outputs and `cols` inputs has shape [cols, rows] and is stored
// row-major as rows x cols.

/** ggml tensor types, numbered as in GGUF. */
export enum GGMLType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
}

/** Values per block and bytes per block, for every type whose layout we know. */
const BLOCK_LAYOUT: Record<number, { blockSize: number; blockBytes: number }> = {
  [GGMLType.F32]: { blockSize: 1, blockBytes: 4 },
  [GGMLType.F16]: { blockSize: 1, blockBytes: 2 },
  [GGMLType.BF16]: { blockSize: 1, blockBytes: 2 },
  [GGMLType.F64]: { blockSize: 1, blockBytes: 8 },
  [GGMLType.I8]: { blockSize: 1, blockBytes: 1 },
  [GGMLType.I16]: { blockSize: 1, blockBytes: 2 },
  [GGMLType.I32]: { blockSize: 1, blockBytes: 4 },
  [GGMLType.I64]: { blockSize: 1, blockBytes: 8 },
  [GGMLType.Q4_0]: { blockSize: 32, blockBytes: 18 },
  [GGMLType.Q4_1]: { blockSize: 32, blockBytes: 20 },
  [GGMLType.Q5_0]: { blockSize: 32, blockBytes: 22 },
  [GGMLType.Q5_1]: { blockSize: 32, blockBytes: 24 },
  [GGMLType.Q8_0]: { blockSize: 32, blockBytes: 34 },
  [GGMLType.Q8_1]: { blockSize: 32, blockBytes: 36 },
  [GGMLType.Q2_K]: { blockSize: 256, blockBytes: 84 },
  [GGMLType.Q3_K]: { blockSize: 256, blockBytes: 110 },
  [GGMLType.Q4_K]: { blockSize: 256, blockBytes: 144 },
  [GGMLType.Q5_K]: { blockSize: 256, blockBytes: 176 },
  [GGMLType.Q6_K]: { blockSize: 256, blockBytes: 210 },
  [GGMLType.Q8_K]: { blockSize: 256, blockBytes: 292 },
};

export function typeName(type: number): string {
  return GGMLType[type] ?? `type#${type}`;
}

export function blockLayout(type: number): { blockSize: number; blockBytes: number } | undefined {
  return BLOCK_LAYOUT[type];
}

/** Bytes taken by a tensor of `type` and `shape`, or an explanation of why it has no valid size. */
export function tensorBytes(type: number, shape: readonly number[]): number | string {
  const layout = BLOCK_LAYOUT[type];
  if (!layout) return `unknown tensor type ${type}`;
  const ne0 = shape[0] ?? 1;
  if (ne0 % layout.blockSize !== 0)
    return `first dimension ${ne0} is not a multiple of ${typeName(type)}'s block size ${layout.blockSize}`;
  let n = 1;
  for (const d of shape) n *= d;
  return (n / layout.blockSize) * layout.blockBytes;
}

/** A dense f32 tensor, the type every CPU stage computes with. */
export interface Tensor {
  readonly name: string;
  /** ggml order: shape[0] is the innermost (contiguous) dimension. */
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export function numElements(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

// --- half-precision conversions -------------------------------------------------------------

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE 754 binary16 bits -> number (exact). */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero or subnormal
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** number -> binary16 bits, round to nearest even (as numpy / ggml do). */
export function f32ToF16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf or NaN
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00; // overflow -> Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow -> signed zero
    mant |= 0x800000; // implicit leading 1
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++; // may carry into the exponent: correct
  return sign | half;
}

/** bfloat16 bits -> number (exact). */
export function bf16ToF32(b: number): number {
  u32Scratch[0] = (b & 0xffff) << 16;
  return f32Scratch[0]!;
}

/** number -> bfloat16 bits, round to nearest even. */
export function f32ToBF16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Decode a tensor's raw bytes (F32, F16 or BF16) into f32. F32 data that is 4-byte aligned is viewed, not copied. */
export function toFloat32(type: GGMLType, bytes: Uint8Array, count: number): Float32Array {
  if (type === GGMLType.F32) {
    if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, count);
    return new Float32Array(bytes.slice(0, count * 4).buffer);
  }
  const out = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (type === GGMLType.F16) for (let i = 0; i < count; i++) out[i] = f16ToF32(view.getUint16(2 * i, true));
  else if (type === GGMLType.BF16) for (let i = 0; i < count; i++) out[i] = bf16ToF32(view.getUint16(2 * i, true));
  else throw new Error(`toFloat32: ${typeName(type)} is not a float type`);
  return out;
}
