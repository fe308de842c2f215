// Matrix products for n inputs: out[t][outRow0 + r] (+)= sum_c W[r][c] * x[t][c], W row-major
// [rows][cols] (a whole matrix, or one row block of a matrix split to fit maxStorageBufferBindingSize).
// With accumulate = 1 the product is added to what out holds (the residual add, fused).
// Bindings: 0 uniform Params, 1 W `Weight` (read), 2 x [n][cols] f32 (read), 3 out [n][outRows] f32 (read/write).
// Weight type: f32 as written; the f16 variant (shader-f16) is this file with `Weight = f16` and
//   `enable f16;` prepended, made by src/backend-webgpu.ts. f16 widens to f32 exactly.
// Entry points:
//   main  (decode and n <= 4): 64 invocations, one output row each, reading the row front to back;
//         each serves up to four inputs (grid y = input group of 4). No barriers. Grid
//         (min(ceil(rows/64), 65535), ceil(n/4), ceil(ceil(rows/64)/65535)). n = 1 takes its own
//         branch with four interleaved partial sums.
//   gated (decode FFN, n = 1): out[outRow0 + r] = silu(W[r] . x) * (Wup[r] . x), the gate and up
//         projections and SwiGLU in one pass (binding 4 is Wup, same shape and type as W); one row
//         per invocation, two partial sums per product. Grid as main's.
//   tiled (prefill, n > 4): a 64-row x 32-input output tile per workgroup of 64 invocations, each
//         computing 8 rows x 4 inputs; W and x pass through workgroup memory 16 columns at a time, so
//         each weight is read from storage once per 32 inputs. Grid (ceil(rows/64), ceil(n/32)).
// Precision: f32. main: one running sum per input, or four partial sums when n = 1; gated: two
//   partial sums per product, then silu and the product as in ffn.wgsl; tiled: one
//   running sum per output. Either way error <= (cols + 1) * 2^-24 * sum|w x|, plus one rounding
//   of the sum with the old value when accumulating.
alias Weight = f32;
struct Params { rows: u32, cols: u32, n: u32, accumulate: u32, outRows: u32, outRow0: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<Weight>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> wUp: array<Weight>; // gated only

fn store(t: u32, r: u32, v: f32) {
  let i = t * p.outRows + p.outRow0 + r;
  if (p.accumulate == 1u) { out[i] = out[i] + v; } else { out[i] = v; }
}

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
    store(0u, r, (a0 + a1) + (a2 + a3));
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
  store(t0, r, s0);
  if (k > 1u) { store(t0 + 1u, r, s1); }
  if (k > 2u) { store(t0 + 2u, r, s2); }
  if (k > 3u) { store(t0 + 3u, r, s3); }
}

@compute @workgroup_size(64)
fn gated(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = (wg.z * 65535u + wg.x) * 64u + lid.x;
  if (r >= p.rows) { return; }
  let base = r * p.cols;
  var g0 = 0.0;
  var g1 = 0.0;
  var u0 = 0.0;
  var u1 = 0.0;
  var c = 0u;
  for (; c + 2u <= p.cols; c += 2u) {
    let x0 = x[c];
    let x1 = x[c + 1u];
    g0 += f32(w[base + c]) * x0;
    g1 += f32(w[base + c + 1u]) * x1;
    u0 += f32(wUp[base + c]) * x0;
    u1 += f32(wUp[base + c + 1u]) * x1;
  }
  if (c < p.cols) {
    g0 += f32(w[base + c]) * x[c];
    u0 += f32(wUp[base + c]) * x[c];
  }
  let g = g0 + g1;
  out[p.outRow0 + r] = g / (1.0 + exp(-g)) * (u0 + u1);
}

const TILE_K = 16u;
var<workgroup> wTile: array<vec4f, 256>; // [TILE_K][16]: 64 rows as 16 vec4
var<workgroup> xTile: array<vec4f, 128>; // [TILE_K][8]: 32 inputs as 8 vec4

@compute @workgroup_size(64)
fn tiled(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let r0 = wg.x * 64u;
  let t0 = wg.y * 32u;
  let tr = li % 8u; // this invocation's rows: r0 + tr*8 .. +8
  let tt = li / 8u; // and inputs: t0 + tt*4 .. +4
  var a0 = vec4f(); var a1 = vec4f(); var a2 = vec4f(); var a3 = vec4f();
  var a4 = vec4f(); var a5 = vec4f(); var a6 = vec4f(); var a7 = vec4f();
  for (var k0 = 0u; k0 < p.cols; k0 += TILE_K) {
    // Stage 64 rows x 16 columns of W and 32 inputs x 16 columns of x (zeros past the edges).
    for (var i = 0u; i < 16u; i++) {
      let e = i * 64u + li;
      let row = e / TILE_K;
      let k = e % TILE_K;
      var v = 0.0;
      if (r0 + row < p.rows && k0 + k < p.cols) { v = f32(w[(r0 + row) * p.cols + k0 + k]); }
      wTile[k * 16u + row / 4u][row % 4u] = v;
    }
    for (var i = 0u; i < 8u; i++) {
      let e = i * 64u + li;
      let t = e / TILE_K;
      let k = e % TILE_K;
      var v = 0.0;
      if (t0 + t < p.n && k0 + k < p.cols) { v = x[(t0 + t) * p.cols + k0 + k]; }
      xTile[k * 8u + t / 4u][t % 4u] = v;
    }
    workgroupBarrier();
    for (var k = 0u; k < TILE_K; k++) {
      let wa = wTile[k * 16u + tr * 2u];
      let wb = wTile[k * 16u + tr * 2u + 1u];
      let xv = xTile[k * 8u + tt];
      a0 += wa.x * xv; a1 += wa.y * xv; a2 += wa.z * xv; a3 += wa.w * xv;
      a4 += wb.x * xv; a5 += wb.y * xv; a6 += wb.z * xv; a7 += wb.w * xv;
    }
    workgroupBarrier();
  }
  let acc = array<vec4f, 8>(a0, a1, a2, a3, a4, a5, a6, a7);
  for (var i = 0u; i < 8u; i++) {
    let r = r0 + tr * 8u + i;
    if (r >= p.rows) { break; }
    for (var j = 0u; j < 4u; j++) {
      let t = t0 + tt * 4u + j;
      if (t < p.n) { store(t, r, acc[i][j]); }
    }
  }
}
