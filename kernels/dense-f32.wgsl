// f32 weights in the quantized formats' interface (as q8_0.wgsl: BLOCK_VALUES, BLOCK_WORDS, dequant4,
// dequant16 over the host's blockStart and its binding w), for hosts that read any weight type through
// one binding: kernels/attention-out.wgsl's Wo. Layout: the f32 values as they are; a "block" is four
// values, one vec4<u32> word (WoWord), so that each load brings four values.
// dequant4(row, c): values c .. c+3 of a row (c a multiple of 4); dequant16: c .. c+15. Exact.
alias WoWord = vec4<u32>;
const BLOCK_VALUES = 4u;
const BLOCK_WORDS = 1u;

fn dequant4(row: u32, c: u32) -> vec4f {
  return bitcast<vec4f>(w[blockStart(row, c)]);
}

fn dequant16(row: u32, c: u32) -> mat4x4f {
  let b = blockStart(row, c);
  return mat4x4f(bitcast<vec4f>(w[b]), bitcast<vec4f>(w[b + 1u]), bitcast<vec4f>(w[b + 2u]), bitcast<vec4f>(w[b + 3u]));
}
