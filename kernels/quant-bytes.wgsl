// Byte helpers of the quantized formats' files (q8_0.wgsl ... q6_k.wgsl), for their hosts to append:
// kernels/matmul-quant.wgsl (the products) and kernels/attention-out.wgsl (attention's output projection).
// Pure functions on u32 words; no bindings. Exact: each byte or nibble becomes its f32 value.
// Also WoWord, the type of the words attention-out.wgsl reads Wo as: u32 for every format here (the
// dense readers, dense-f32.wgsl and dense-f16.wgsl, declare wider ones); unused by matmul-quant.wgsl.
alias WoWord = u32;
/** The four bytes of v as 0..255, and as -128..127 (the format files' dequant4 and dequant16). */
fn unsignedBytes(v: u32) -> vec4f {
  return vec4f(f32(v & 0xffu), f32((v >> 8u) & 0xffu), f32((v >> 16u) & 0xffu), f32(v >> 24u));
}
fn signedBytes(v: u32) -> vec4f {
  return vec4f(f32(i32(v << 24u) >> 24u), f32(i32(v << 16u) >> 24u), f32(i32(v << 8u) >> 24u), f32(i32(v) >> 24u));
}
/** Q5_0 / Q5_1: bits j .. j+3 of qh (the 5th bits of values j .. j+3) moved to bit 4 of each byte. */
fn fifthBits(qh: u32, j: u32) -> u32 {
  let h = (qh >> j) & 0xfu;
  return ((h & 1u) << 4u) | ((h & 2u) << 11u) | ((h & 4u) << 18u) | ((h & 8u) << 25u);
}
