// Matrix products for n inputs: out[t][r] = sum_c W[r][c] * x[t][c], W row-major [rows][cols].
// Bindings: 0 uniform Params, 1 W `Weight` (read), 2 x [n][cols] f32 (read), 3 out [n][rows] f32 (write).
// Weight type: f32 as written; the f16 variant (shader-f16) is this file with `Weight = f16` and
//   `enable f16;` prepended, made by src/backend-webgpu.ts. f16 widens to f32 exactly.
// Workgroup: 64 invocations, one output row each, reading the row front to back; each invocation
//   serves up to four inputs at once (grid y = input group of 4), so prefill reads every weight
//   n/4 times instead of n times. Grid (min(ceil(rows/64), 65535), ceil(n/4), ceil(ceil(rows/64)/65535)).
//   No barriers: on Mesa lavapipe (the CPU Vulkan driver CI runs on) this is 5-7x faster than a
//   workgroup-per-row tree reduction. A real GPU wants coalesced reads and subgroup reductions (to come).
// Decode (n = 1) takes its own branch: one input, four interleaved partial sums.
// Precision: f32; per input one running sum, or four partial sums when n = 1
//   (error <= (cols + 1) * 2^-24 * sum|w x| either way).
alias Weight = f32;
struct Params { rows: u32, cols: u32, n: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<Weight>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = (wg.z * 65535u + wg.x) * 64u + lid.x;
  let t0 = wg.y * 4u;
  if (r >= p.rows) { return; }
  let wBase = r * p.cols;
  if (p.n == 1u) {
    var a0 = 0.0;
    var a1 = 0.0;
    var a2 = 0.0;
    var a3 = 0.0;
    var c = 0u;
    for (; c + 4u <= p.cols; c += 4u) {
      a0 += f32(w[wBase + c]) * x[c];
      a1 += f32(w[wBase + c + 1u]) * x[c + 1u];
      a2 += f32(w[wBase + c + 2u]) * x[c + 2u];
      a3 += f32(w[wBase + c + 3u]) * x[c + 3u];
    }
    for (; c < p.cols; c++) { a0 += f32(w[wBase + c]) * x[c]; }
    out[r] = (a0 + a1) + (a2 + a3);
    return;
  }
  let k = min(4u, p.n - t0); // inputs served by this invocation
  let x0 = t0 * p.cols;
  // Rows past the last input re-read the last one; their sums are not stored.
  let x1 = min(t0 + 1u, p.n - 1u) * p.cols;
  let x2 = min(t0 + 2u, p.n - 1u) * p.cols;
  let x3 = min(t0 + 3u, p.n - 1u) * p.cols;
  var s0 = 0.0;
  var s1 = 0.0;
  var s2 = 0.0;
  var s3 = 0.0;
  for (var c = 0u; c < p.cols; c++) {
    let wv = f32(w[wBase + c]);
    s0 += wv * x[x0 + c];
    s1 += wv * x[x1 + c];
    s2 += wv * x[x2 + c];
    s3 += wv * x[x3 + c];
  }
  out[t0 * p.rows + r] = s0;
  if (k > 1u) { out[(t0 + 1u) * p.rows + r] = s1; }
  if (k > 2u) { out[(t0 + 2u) * p.rows + r] = s2; }
  if (k > 3u) { out[(t0 + 3u) * p.rows + r] = s3; }
}
