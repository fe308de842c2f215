// Rotary position embedding, in place: for row row0 + t (position start + t), head h and pair i < ropeDims/2,
// rotate (a, b) by angle pos * freq[i], where (a, b) = (2i, 2i+1) (interleaved, style 0) or
// (i, i + ropeDims/2) (NeoX, style 1). freq[i] = freqScale * theta^(-2i/ropeDims) / factor[i] is
// computed on the CPU in f64 (src/stages/rope.ts); cos and sin are multiplied by mscale (Phi-3's
// longrope attention factor; 1 otherwise).
// Bindings: 0 uniform Params, 1 x [rows][nHeads][headDim] f32 (read/write; rows row0 .. row0 + n - 1), 2 freq [ropeDims/2] f32 (read).
// Workgroup: 64 threads, one per (head, pair); grid (ceil(nHeads * ropeDims/2 / 64), n).
// Precision: f32 angle (|error| <= pos * 2^-24 rad relative), f32 sin/cos.
struct Params { nHeads: u32, headDim: u32, ropeDims: u32, start: u32, style: u32, mscale: f32, row0: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> freq: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let half = p.ropeDims / 2u;
  let h = gid.x / half;
  let i = gid.x % half;
  if (h >= p.nHeads) { return; }
  let t = gid.y;
  let base = ((p.row0 + t) * p.nHeads + h) * p.headDim;
  var a = base + 2u * i;
  var b = a + 1u;
  if (p.style == 1u) { a = base + i; b = a + half; }
  let angle = f32(p.start + t) * freq[i];
  let c = p.mscale * cos(angle);
  let s = p.mscale * sin(angle);
  let x0 = x[a];
  let x1 = x[b];
  x[a] = x0 * c - x1 * s;
  x[b] = x0 * s + x1 * c;
}
