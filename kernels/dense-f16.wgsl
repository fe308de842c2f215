// f16 weights (two to a u32 word, the lower half first) in the quantized formats' interface (as
// dense-f32.wgsl), for kernels/attention-out.wgsl's Wo; needs no shader-f16 (unpack2x16float).
// dequant4(row, c): values c .. c+3 of a row (c a multiple of 4), widened to f32 exactly.
const BLOCK_VALUES = 4u;
const BLOCK_WORDS = 2u;

fn dequant4(row: u32, c: u32) -> vec4f {
  let b = blockStart(row, c);
  return vec4f(unpack2x16float(w[b]), unpack2x16float(w[b + 1u]));
}
