// Row copy: dst rows [dstRow, dstRow + count) = src rows [srcRow, srcRow + count), rows of `width`.
// Writes keys and values into the KV cache, and moves the last token's row to the front for the head.
// Bindings: 0 uniform Params, 1 src f32 (read), 2 dst `Cached` (write).
// Cached type: f32 as written; the f16 variant (shader-f16, for an f16 KV cache) swaps the alias.
// Workgroup: 64 threads along the row; grid (ceil(width / 64), count).
// Precision: an exact copy in f32; into f16, one round-to-nearest per value (relative error <= 2^-11).
alias Cached = f32;
struct Params { width: u32, count: u32, srcRow: u32, dstRow: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<Cached>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x >= p.width || gid.y >= p.count) { return; }
  dst[(p.dstRow + gid.y) * p.width + gid.x] = Cached(src[(p.srcRow + gid.y) * p.width + gid.x]);
}
