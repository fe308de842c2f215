// Matrix-vector product for decode (n = 1) on GPUs with subgroups: out[outRow0 + r] (+)= W[r] . x.
// The coalesced layout real GPUs want: one workgroup per row, its 64 invocations reading the row at
// consecutive addresses (column c by invocation c % 64), partial sums combined with subgroupAdd and
// then across subgroups through workgroup memory. matmul.wgsl's `main` (a row per invocation, no
// barriers) stays the choice on CPU-emulated adapters such as lavapipe, where it is faster.
// Separate from matmul.wgsl because `enable subgroups;` would make that module require the feature.
// Bindings: as matmul.wgsl (0 uniform Params, 1 W `Weight`, 2 x f32, 3 out f32 read/write); the _norm
//   entry points as matmul-norm.wgsl's: 4 Wk / Wup, 5 normW [cols] f32, 6 normOut [cols] f32 (written),
//   7 Wv (each bound by all three: `weight` names them all); every entry point 8 parts, as matmul-norm.wgsl's
//   (per-head products still to add: p.xParts rows to x for the norms, p.outParts to out for an accumulating put).
// Entry points (a row per workgroup, grid (min(rows, 65535), ceil(rows / 65535))):
//   main        out rows (+)= W x.
//   main_norm   out rows (+)= W rmsnorm(x) (eps in Params): every workgroup reduces x's sum of squares
//               itself (the same order in each: strided sums, subgroupAdd, the subgroups' sums in
//               order), multiplies (x * scale) * normW as it reads x, and row 0's stores the
//               normalized row in normOut. One pass instead of rmsnorm.wgsl's and the product's.
//   qkv_norm    matmul-norm.wgsl's qkv_norm (q, k and v packed; rows = outRows + act (+ act)) so.
//   gated_norm  act(Wgate rmsnorm(x)) * (Wup rmsnorm(x)) so (act: silu 0, tanh-GELU 1, as ffn.wgsl).
// Weight type: f32 as written; the f16 variant swaps the alias, as for matmul.wgsl.
// Precision: f32; 64 strided partial sums of cols/64 terms, then a tree of subgroup and workgroup
//   adds: error <= (cols/64 + 8) * 2^-24 * sum|w x|. The norms: 1 / rms within about (cols/128 + 8)
//   2^-24 relative (the sum of squares as above, then divide, add, sqrt, divide), each normalized value
//   two roundings more; not bit for bit rmsnorm.wgsl's (another reduction order).
enable subgroups;
alias Weight = f32;
struct Params { rows: u32, cols: u32, n: u32, accumulate: u32, outRows: u32, outRow0: u32, eps: f32, act: u32, xParts: u32, outParts: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<Weight>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> wK: array<Weight>;
@group(0) @binding(5) var<storage, read> normW: array<f32>;
@group(0) @binding(6) var<storage, read_write> normOut: array<f32>;
@group(0) @binding(7) var<storage, read> wV: array<Weight>;
@group(0) @binding(8) var<storage, read> parts: array<f32>;
var<workgroup> sums: array<f32, 64>; // one per subgroup (subgroups have at least 1 invocation)

/** The sum of v over the workgroup: subgroupAdd, then the subgroups' sums in order (every invocation gets it; uniform control flow). */
fn workgroupTotal(v: f32, li: u32, sli: u32, sgSize: u32) -> f32 {
  let total = subgroupAdd(v);
  if (sli == 0u) { sums[li / sgSize] = total; }
  workgroupBarrier();
  var acc = 0.0;
  for (var i = 0u; i < (64u + sgSize - 1u) / sgSize; i++) { acc += sums[i]; }
  workgroupBarrier(); // (every invocation has read sums before the next call writes them)
  return acc;
}

/** base + element i of each of the first `count` rows of `stride` in parts, in order (as matmul-norm.wgsl's). */
fn withParts(i: u32, base: f32, stride: u32, count: u32) -> f32 {
  var s = base;
  for (var h = 0u; h < count; h++) { s += parts[h * stride + i]; }
  return s;
}
/** Element c of the input the norms read: x plus the parts. */
fn xIn(c: u32) -> f32 {
  return withParts(c, x[c], p.cols, p.xParts);
}

/** out[outRow0 + r] (+)= v (accumulating: after the parts). */
fn put(r: u32, v: f32) {
  let o = p.outRow0 + r;
  if (p.accumulate == 1u) { out[o] = withParts(o, out[o], p.outRows, p.outParts) + v; } else { out[o] = v; }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32,
        @builtin(subgroup_invocation_id) sli: u32, @builtin(subgroup_size) sgSize: u32) {
  let r = wg.y * 65535u + wg.x;
  if (r >= p.rows) { return; } // uniform across the workgroup
  let base = r * p.cols;
  var s = 0.0;
  for (var c = li; c < p.cols; c += 64u) { s += f32(w[base + c]) * x[c]; }
  let acc = workgroupTotal(s, li, sli, sgSize);
  if (li == 0u) { put(r, acc); }
}

/** Element e of matrix m (0: w, 1: wK / wUp, 2: wV). */
fn weight(m: u32, e: u32) -> f32 {
  if (m == 0u) { return f32(w[e]); }
  if (m == 1u) { return f32(wK[e]); }
  return f32(wV[e]);
}

/** 1 / rms(x) (eps from Params), the same in every workgroup; row 0's workgroup stores the normalized row. */
fn normScale(r: u32, li: u32, sli: u32, sgSize: u32) -> f32 {
  var s = 0.0;
  for (var c = li; c < p.cols; c += 64u) { let v = xIn(c); s += v * v; }
  let scale = 1.0 / sqrt(workgroupTotal(s, li, sli, sgSize) / f32(p.cols) + p.eps);
  if (r == 0u) { for (var c = li; c < p.cols; c += 64u) { normOut[c] = xIn(c) * scale * normW[c]; } }
  return scale;
}

/** Row r of matrix m times rmsnorm(x) (1 / rms = scale), summed over the workgroup. */
fn rowNorm(m: u32, r: u32, scale: f32, li: u32, sli: u32, sgSize: u32) -> f32 {
  let base = r * p.cols;
  var s = 0.0;
  for (var c = li; c < p.cols; c += 64u) { s += weight(m, base + c) * (xIn(c) * scale * normW[c]); }
  return workgroupTotal(s, li, sli, sgSize);
}

@compute @workgroup_size(64)
fn main_norm(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32,
             @builtin(subgroup_invocation_id) sli: u32, @builtin(subgroup_size) sgSize: u32) {
  let r = wg.y * 65535u + wg.x;
  if (r >= p.rows) { return; } // uniform across the workgroup
  let acc = rowNorm(0u, r, normScale(r, li, sli, sgSize), li, sli, sgSize);
  if (li == 0u) { put(r, acc); }
}

@compute @workgroup_size(64)
fn qkv_norm(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32,
            @builtin(subgroup_invocation_id) sli: u32, @builtin(subgroup_size) sgSize: u32) {
  let r = wg.y * 65535u + wg.x;
  if (r >= p.rows) { return; }
  let scale = normScale(r, li, sli, sgSize);
  let kv0 = p.outRows;
  let v0 = kv0 + p.act;
  var acc: f32;
  if (r < kv0) { acc = rowNorm(0u, r, scale, li, sli, sgSize); }
  else if (r < v0) { acc = rowNorm(1u, r - kv0, scale, li, sli, sgSize); }
  else { acc = rowNorm(2u, r - v0, scale, li, sli, sgSize); }
  if (li == 0u) { out[r] = acc; }
}

@compute @workgroup_size(64)
fn gated_norm(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32,
              @builtin(subgroup_invocation_id) sli: u32, @builtin(subgroup_size) sgSize: u32) {
  let r = wg.y * 65535u + wg.x;
  if (r >= p.rows) { return; }
  let scale = normScale(r, li, sli, sgSize);
  let g = rowNorm(0u, r, scale, li, sli, sgSize);
  let u = rowNorm(1u, r, scale, li, sli, sgSize);
  if (li == 0u) {
    var a = g / (1.0 + exp(-g)); // act(g) as ffn.wgsl: silu, or tanh-GELU (act 1)
    if (p.act == 1u) { a = g / (1.0 + exp(-1.5957691216057308 * (g + 0.044715 * g * g * g))); }
    out[p.outRow0 + r] = a * u;
  }
}
