// Q4_0 blocks for the quantized kernels (src/q4_0.ts is the CPU twin; kernels/matmul-quant.wgsl uses this).
// GPU layout (made at upload by src/q4_0.ts's gpuWords): per block of 32 values, 5 u32 words:
//   word 0 = d as f32 bits, words 1..4 = the 16 bytes of nibbles as in ggml (byte j: value j in its
//   low nibble, value j + 16 in its high nibble).
// dequant4(row, c): values c .. c+3 (c a multiple of 4) = d * (q - 8).
// dequant16(row, c): values c .. c+15 (c a multiple of 16), the block's scale read once.
const BLOCK_VALUES = 32u;
const BLOCK_WORDS = 5u;


fn dequant4(row: u32, c: u32) -> vec4f {
  let base = blockStart(row, c);
  let j = c % BLOCK_VALUES;
  let v = w[base + 1u + (j % 16u) / 4u] >> ((j / 16u) * 4u); // values 16..31 are the high nibbles
  return bitcast<f32>(w[base]) * (unsignedBytes(v & 0x0f0f0f0fu) - vec4f(8.0));
}

fn dequant16(row: u32, c: u32) -> mat4x4f {
  let base = blockStart(row, c) + 1u;
  let d = bitcast<f32>(w[base - 1u]);
  let s = ((c % BLOCK_VALUES) / 16u) * 4u; // low nibbles (values 0..15) or high (16..31)
  let m = vec4f(8.0);
  return mat4x4f(d * (unsignedBytes((w[base] >> s) & 0x0f0f0f0fu) - m), d * (unsignedBytes((w[base + 1u] >> s) & 0x0f0f0f0fu) - m),
                 d * (unsignedBytes((w[base + 2u] >> s) & 0x0f0f0f0fu) - m), d * (unsignedBytes((w[base + 3u] >> s) & 0x0f0f0f0fu) - m));
}
