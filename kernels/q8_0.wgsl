// Q8_0 blocks for the quantized kernels (src/q8_0.ts is the CPU twin; kernels/matmul-quant.wgsl uses this).
// GPU layout (made at upload by src/q8_0.ts's gpuWords): per block of 32 values, 9 u32 words:
//   word 0 = d as f32 bits, words 1..8 = the 32 int8 codes, four per word (little-endian).
// dequant4(row, c): values c .. c+3 of a row (c a multiple of 4), widened to f32 exactly, times d.
// dequant16(row, c): values c .. c+15 (c a multiple of 16), the block's scale read once.
const BLOCK_VALUES = 32u;
const BLOCK_WORDS = 9u;


fn dequant4(row: u32, c: u32) -> vec4f {
  let base = blockStart(row, c);
  let j = c % BLOCK_VALUES;
  return bitcast<f32>(w[base]) * signedBytes(w[base + 1u + j / 4u]);
}

fn dequant16(row: u32, c: u32) -> mat4x4f {
  let base = blockStart(row, c);
  let d = bitcast<f32>(w[base]);
  let i = base + 1u + (c % BLOCK_VALUES) / 4u;
  return mat4x4f(d * signedBytes(w[i]), d * signedBytes(w[i + 1u]), d * signedBytes(w[i + 2u]), d * signedBytes(w[i + 3u]));
}
