// Q4_K super-blocks for the quantized kernels (src/q4_k.ts is the CPU twin; kernels/matmul-quant.wgsl uses this).
// GPU layout (made at upload by src/q4_k.ts's gpuWords): per super-block of 256 values, 48 u32 words:
//   words 0..7 = d * sc_j (f32 bits), words 8..15 = dmin * m_j, words 16..47 = the 128 bytes of
//   nibbles as in ggml (32-byte group g: byte l holds value 64g + l low, 64g + 32 + l high).
// dequant4(row, c): values c .. c+3 (c a multiple of 4) = scale_j * q - min_j, j = the 32-value sub-block.
// dequant16(row, c): values c .. c+15 (c a multiple of 16: one sub-block), its scale and min read once.
const BLOCK_VALUES = 256u;
const BLOCK_WORDS = 48u;


fn dequant4(row: u32, c: u32) -> vec4f {
  let base = blockStart(row, c);
  let j = c % BLOCK_VALUES;
  let sub = j / 32u;
  let k = j % 64u;
  let v = w[base + 16u + ((j / 64u) * 32u + k % 32u) / 4u] >> ((k / 32u) * 4u);
  return bitcast<f32>(w[base + sub]) * unsignedBytes(v & 0x0f0f0f0fu) - vec4f(bitcast<f32>(w[base + 8u + sub]));
}

fn dequant16(row: u32, c: u32) -> mat4x4f {
  let base = blockStart(row, c);
  let j = c % BLOCK_VALUES;
  let sub = j / 32u;
  let k = j % 64u;
  let i = base + 16u + ((j / 64u) * 32u + k % 32u) / 4u;
  let s = (k / 32u) * 4u;
  let d = bitcast<f32>(w[base + sub]);
  let m = vec4f(bitcast<f32>(w[base + 8u + sub]));
  return mat4x4f(d * unsignedBytes((w[i] >> s) & 0x0f0f0f0fu) - m, d * unsignedBytes((w[i + 1u] >> s) & 0x0f0f0f0fu) - m,
                 d * unsignedBytes((w[i + 2u] >> s) & 0x0f0f0f0fu) - m, d * unsignedBytes((w[i + 3u] >> s) & 0x0f0f0f0fu) - m);
}
