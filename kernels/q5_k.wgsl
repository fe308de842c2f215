// Q5_K super-blocks for the quantized kernels (src/q5_k.ts is the CPU twin; kernels/matmul-quant.wgsl uses this).
// GPU layout (made at upload by src/q5_k.ts's gpuWords): per super-block of 256 values, 56 u32 words:
//   words 0..7 = d * sc_j (f32 bits), words 8..15 = dmin * m_j, words 16..23 = qh (32 bytes: byte l's
//   bits 2g and 2g + 1 are the 5th bits of values 64g + l and 64g + 32 + l), words 24..55 = the 128
//   bytes of low nibbles as in Q4_K (32-byte group g: byte l holds value 64g + l low, 64g + 32 + l high).
// dequant4(row, c): values c .. c+3 (c a multiple of 4) = scale_j * q - min_j, j = the 32-value sub-block.
// dequant16(row, c): values c .. c+15 (c a multiple of 16) as four vec4s (here dequant4 four times).
const BLOCK_VALUES = 256u;
const BLOCK_WORDS = 56u;

fn dequant4(row: u32, c: u32) -> vec4f {
  let base = blockStart(row, c);
  let j = c % BLOCK_VALUES;
  let sub = j / 32u;
  let k = j % 64u;
  let l = k % 32u;
  let lo = (w[base + 24u + ((j / 64u) * 32u + l) / 4u] >> ((k / 32u) * 4u)) & 0x0f0f0f0fu;
  let hi = ((w[base + 16u + l / 4u] >> sub) & 0x01010101u) << 4u; // bit 2g (+1 for the high nibbles) = bit `sub`
  return bitcast<f32>(w[base + sub]) * unsignedBytes(lo | hi) - vec4f(bitcast<f32>(w[base + 8u + sub]));
}

/** Values c .. c+15 (c a multiple of 16) as four vec4s: dequant4 four times. */
fn dequant16(row: u32, c: u32) -> mat4x4f {
  return mat4x4f(dequant4(row, c), dequant4(row, c + 4u), dequant4(row, c + 8u), dequant4(row, c + 12u));
}
