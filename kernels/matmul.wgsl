// Matrix-vector products for n inputs: out[t][r] = sum_c W[r][c] * x[t][c], W row-major [rows][cols].
// Bindings: 0 uniform Params, 1 W f32 (read), 2 x [n][cols] f32 (read), 3 out [n][rows] f32 (write).
// Workgroup: 64 invocations, one output row each, reading the row front to back with four
//   independent partial sums; grid (min(ceil(rows/64), 65535), n, ceil(ceil(rows/64) / 65535)).
//   No barriers: on Mesa lavapipe (the CPU Vulkan driver CI runs on) this is 5-7x faster than a
//   workgroup-per-row tree reduction. A real GPU wants coalesced reads and subgroup reductions (to come).
// Precision: f32 accumulation in 4 partial sums (error <= (cols/4 + 3) * 2^-24 * sum|w x|).
struct Params { rows: u32, cols: u32, n: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = (wg.z * 65535u + wg.x) * 64u + lid.x;
  let t = wg.y;
  if (r >= p.rows) { return; }
  let wBase = r * p.cols;
  let xBase = t * p.cols;
  var s0 = 0.0;
  var s1 = 0.0;
  var s2 = 0.0;
  var s3 = 0.0;
  var c = 0u;
  for (; c + 4u <= p.cols; c += 4u) {
    s0 += w[wBase + c] * x[xBase + c];
    s1 += w[wBase + c + 1u] * x[xBase + c + 1u];
    s2 += w[wBase + c + 2u] * x[xBase + c + 2u];
    s3 += w[wBase + c + 3u] * x[xBase + c + 3u];
  }
  for (; c < p.cols; c++) { s0 += w[wBase + c] * x[xBase + c]; }
  out[t * p.rows + r] = (s0 + s1) + (s2 + s3);
}
