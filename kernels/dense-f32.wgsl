// f32 weights in the quantized formats' interface (as q8_0.wgsl: BLOCK_VALUES, BLOCK_WORDS, dequant4
// over the host's blockStart and its u32 binding w), for hosts that read any weight type through one
// binding: kernels/attention-out.wgsl's Wo. Layout: the f32 values as they are, four to a "block".
// dequant4(row, c): values c .. c+3 of a row (c a multiple of 4), exact.
const BLOCK_VALUES = 4u;
const BLOCK_WORDS = 4u;

fn dequant4(row: u32, c: u32) -> vec4f {
  let b = blockStart(row, c);
  return bitcast<vec4f>(vec4u(w[b], w[b + 1u], w[b + 2u], w[b + 3u]));
}
