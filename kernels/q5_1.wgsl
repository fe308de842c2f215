// Q5_1 blocks for the quantized kernels (src/q5_1.ts is the CPU twin; kernels/matmul-quant.wgsl uses this).
// GPU layout (made at upload by src/q5_1.ts's gpuWords): per block of 32 values, 7 u32 words:
//   word 0 = d as f32 bits, word 1 = m, word 2 = qh (bit j: the 5th bit of value j), words 3..6 = the
//   16 bytes of nibbles as in Q4_0 (byte j: value j low, value j + 16 high).
// dequant4(row, c): values c .. c+3 (c a multiple of 4) = d * q + m, q = nibble | 5th bit << 4.
// dequant16(row, c): values c .. c+15 (c a multiple of 16) as four vec4s (here dequant4 four times).
const BLOCK_VALUES = 32u;
const BLOCK_WORDS = 7u;

fn dequant4(row: u32, c: u32) -> vec4f {
  let base = blockStart(row, c);
  let j = c % BLOCK_VALUES;
  let lo = (w[base + 3u + (j % 16u) / 4u] >> ((j / 16u) * 4u)) & 0x0f0f0f0fu;
  let hi = fifthBits(w[base + 2u], j); // the 5th bits of values j .. j+3, at bit 4 of each byte
  return bitcast<f32>(w[base]) * unsignedBytes(lo | hi) + vec4f(bitcast<f32>(w[base + 1u]));
}

/** Values c .. c+15 (c a multiple of 16) as four vec4s: dequant4 four times. */
fn dequant16(row: u32, c: u32) -> mat4x4f {
  return mat4x4f(dequant4(row, c), dequant4(row, c + 4u), dequant4(row, c + 8u), dequant4(row, c + 12u));
}
