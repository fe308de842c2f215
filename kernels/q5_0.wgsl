// Q5_0 blocks for the quantized kernels (src/q5_0.ts is the CPU twin; kernels/matmul-quant.wgsl uses this).
// GPU layout (made at upload by src/q5_0.ts's gpuWords): per block of 32 values, 6 u32 words:
//   word 0 = d as f32 bits, word 1 = qh (bit j: the 5th bit of value j), words 2..5 = the 16 bytes of
//   nibbles as in Q4_0 (byte j: value j low, value j + 16 high).
// dequant4(row, c): values c .. c+3 (c a multiple of 4) = d * (q - 16), q = nibble | 5th bit << 4.
// dequant16(row, c): values c .. c+15 (c a multiple of 16) as four vec4s (here dequant4 four times).
const BLOCK_VALUES = 32u;
const BLOCK_WORDS = 6u;

fn dequant4(row: u32, c: u32) -> vec4f {
  let base = blockStart(row, c);
  let j = c % BLOCK_VALUES;
  let lo = (w[base + 2u + (j % 16u) / 4u] >> ((j / 16u) * 4u)) & 0x0f0f0f0fu;
  let hi = fifthBits(w[base + 1u], j); // the 5th bits of values j .. j+3, at bit 4 of each byte
  return bitcast<f32>(w[base]) * (unsignedBytes(lo | hi) - vec4f(16.0));
}

/** Values c .. c+15 (c a multiple of 16) as four vec4s: dequant4 four times. */
fn dequant16(row: u32, c: u32) -> mat4x4f {
  return mat4x4f(dequant4(row, c), dequant4(row, c + 4u), dequant4(row, c + 8u), dequant4(row, c + 12u));
}
