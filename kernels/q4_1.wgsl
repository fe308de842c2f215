// Q4_1 blocks for the quantized kernels (src/q4_1.ts is the CPU twin; kernels/matmul-quant.wgsl uses this).
// GPU layout (made at upload by src/q4_1.ts's gpuWords): per block of 32 values, 6 u32 words:
//   word 0 = d as f32 bits, word 1 = m, words 2..5 = the 16 bytes of nibbles (byte j: value j low,
//   value j + 16 high).
// dequant4(row, c): values c .. c+3 (c a multiple of 4) = d * q + m.
// dequant16(row, c): values c .. c+15 (c a multiple of 16) as four vec4s (here dequant4 four times).
const BLOCK_VALUES = 32u;
const BLOCK_WORDS = 6u;

fn dequant4(row: u32, c: u32) -> vec4f {
  let base = blockStart(row, c);
  let j = c % BLOCK_VALUES;
  let v = w[base + 2u + (j % 16u) / 4u] >> ((j / 16u) * 4u); // values 16..31 are the high nibbles
  return bitcast<f32>(w[base]) * unsignedBytes(v & 0x0f0f0f0fu) + vec4f(bitcast<f32>(w[base + 1u]));
}

/** Values c .. c+15 (c a multiple of 16) as four vec4s: dequant4 four times. */
fn dequant16(row: u32, c: u32) -> mat4x4f {
  return mat4x4f(dequant4(row, c), dequant4(row, c + 4u), dequant4(row, c + 8u), dequant4(row, c + 12u));
}
