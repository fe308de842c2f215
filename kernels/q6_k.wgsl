// Q6_K super-blocks for the quantized kernels (src/q6_k.ts is the CPU twin; kernels/matmul-quant.wgsl uses this).
// GPU layout (made at upload by src/q6_k.ts's gpuWords): per super-block of 256 values, 64 u32 words:
//   words 0..15 = d * scale_k (f32 bits, one per 16 values), words 16..47 = ql (128 bytes), words
//   48..63 = qh (64 bytes), the bytes as in ggml.
// Value 128h + 32q + l (h half, q quarter, l < 32): low 4 bits from ql[64h + l + 32(q & 1)] (high
// nibble when q >= 2), 2 high bits from qh[32h + l] at bit 2q; value = scale * (q6 - 32).
// dequant4(row, c): values c .. c+3 (c a multiple of 4; they share one scale).
// dequant16(row, c): values c .. c+15 (c a multiple of 16: one scale), the scale read once.
const BLOCK_VALUES = 256u;
const BLOCK_WORDS = 64u;

fn dequant4(row: u32, c: u32) -> vec4f {
  let base = blockStart(row, c);
  let j = c % BLOCK_VALUES;
  let h = j / 128u;
  let q = (j % 128u) / 32u;
  let l = j % 32u;
  let lo = (w[base + 16u + (64u * h + l + 32u * (q & 1u)) / 4u] >> ((q / 2u) * 4u)) & 0x0f0f0f0fu;
  let hi = (w[base + 48u + (32u * h + l) / 4u] >> (2u * q)) & 0x03030303u;
  return bitcast<f32>(w[base + 8u * h + l / 16u + 2u * q]) * (unsignedBytes(lo | (hi << 4u)) - vec4f(32.0));
}

fn dequant16(row: u32, c: u32) -> mat4x4f {
  let base = blockStart(row, c);
  let j = c % BLOCK_VALUES;
  let h = j / 128u;
  let q = (j % 128u) / 32u;
  let l = j % 32u;
  let lo = base + 16u + (64u * h + l + 32u * (q & 1u)) / 4u;
  let hi = base + 48u + (32u * h + l) / 4u;
  let d = bitcast<f32>(w[base + 8u * h + l / 16u + 2u * q]);
  let sl = (q / 2u) * 4u;
  let sh = 2u * q;
  var m: mat4x4f;
  for (var e = 0u; e < 4u; e++) {
    m[e] = d * (unsignedBytes(((w[lo + e] >> sl) & 0x0f0f0f0fu) | (((w[hi + e] >> sh) & 0x03030303u) << 4u)) - vec4f(32.0));
  }
  return m;
}
