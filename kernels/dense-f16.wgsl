// f16 weights in the quantized formats' interface (as dense-f32.wgsl), for kernels/attention-out.wgsl's
// Wo; needs no shader-f16 (unpack2x16float). A "block" is four values, one vec2<u32> word (WoWord):
// two f16 to a u32, the lower half first.
// dequant4(row, c): values c .. c+3 of a row (c a multiple of 4); dequant16: c .. c+15. Widened to
// f32 exactly.
alias WoWord = vec2<u32>;
const BLOCK_VALUES = 4u;
const BLOCK_WORDS = 1u;

fn halves(v: vec2<u32>) -> vec4f {
  return vec4f(unpack2x16float(v.x), unpack2x16float(v.y));
}

fn dequant4(row: u32, c: u32) -> vec4f {
  return halves(w[blockStart(row, c)]);
}

fn dequant16(row: u32, c: u32) -> mat4x4f {
  let b = blockStart(row, c);
  return mat4x4f(halves(w[b]), halves(w[b + 1u]), halves(w[b + 2u]), halves(w[b + 3u]));
}
