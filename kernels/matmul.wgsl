// Matrix-vector products for n inputs: out[t][r] = sum_c W[r][c] * x[t][c], W row-major [rows][cols].
// Bindings: 0 uniform Params, 1 W f32 (read), 2 x [n][cols] f32 (read), 3 out [n][rows] f32 (write).
// Workgroup: 64 threads share one (row, input) pair, each summing a strided slice of the columns,
//   then a tree reduction in workgroup memory. Grid (min(rows, 65535), n, ceil(rows / 65535)).
// Precision: f32 accumulation in 64 partial sums (error ~ (cols/64 + 6) * 2^-24 * sum|w x|).
struct Params { rows: u32, cols: u32, n: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = wg.z * 65535u + wg.x;
  let t = wg.y;
  let inRange = r < p.rows;
  var s = 0.0;
  if (inRange) {
    let wBase = r * p.cols;
    let xBase = t * p.cols;
    for (var c = lid.x; c < p.cols; c += 64u) { s += w[wBase + c] * x[xBase + c]; }
  }
  partial[lid.x] = s;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid.x < stride) { partial[lid.x] += partial[lid.x + stride]; }
    workgroupBarrier();
  }
  if (inRange && lid.x == 0u) { out[t * p.rows + r] = partial[0]; }
}
