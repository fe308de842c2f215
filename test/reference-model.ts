// An independent, deliberately naive float64 Llama forward pass over a whole sequence (no KV cache,
// explicit causal mask), written from the math, to check the engine's model end to end.

import type { ModelFile } from '../src/format/model-file.js';
import { f16ToF32, f32ToF16, toFloat32, GGMLType } from '../src/base/tensor.js';

export function referenceLogits(file: ModelFile, c: { dim: number; hiddenDim: number; nLayers: number; nHeads: number; nKvHeads: number; headDim: number; vocabSize: number; eps: number; rope: { ropeDims: number; theta: number } }, tokens: number[], opts: { kvF16?: boolean } = {}): number[][] {
  // kvF16: keys and values rounded to f16, as a backend with an f16 KV cache stores them.
  const kv = (x: number[]) => (opts.kvF16 ? x.map((y) => f16ToF32(f32ToF16(y))) : x);
  const T = (name: string) => {
    const t = file.tensors.get(name)!;
    return Array.from(toFloat32(t.type as GGMLType, t.data, t.shape.reduce((a, b) => a * b, 1)));
  };
  const mat = (w: number[], rows: number, cols: number, x: number[]) => Array.from({ length: rows }, (_, r) => x.reduce((s, xv, i) => s + w[r * cols + i]! * xv, 0));
  const norm = (x: number[], w: number[]) => {
    const r = 1 / Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + c.eps);
    return x.map((v, i) => v * r * w[i]!);
  };
  const rot = (v: number[], pos: number) => {
    const out = [...v];
    for (let h = 0; h < v.length / c.headDim; h++)
      for (let i = 0; i < c.rope.ropeDims / 2; i++) {
        const a = h * c.headDim + 2 * i;
        const ang = pos * Math.pow(c.rope.theta, (-2 * i) / c.rope.ropeDims);
        out[a] = v[a]! * Math.cos(ang) - v[a + 1]! * Math.sin(ang);
        out[a + 1] = v[a]! * Math.sin(ang) + v[a + 1]! * Math.cos(ang);
      }
    return out;
  };
  const emb = T('token_embd.weight');
  let xs = tokens.map((t) => emb.slice(t * c.dim, (t + 1) * c.dim));
  const qd = c.nHeads * c.headDim, kvd = c.nKvHeads * c.headDim;
  for (let l = 0; l < c.nLayers; l++) {
    const p = `blk.${l}.`;
    const [wq, wk, wv, wo, an, fn, wg, wu, wd] = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'attn_norm', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down'].map((n) => T(p + n + '.weight'));
    const hs = xs.map((x) => norm(x, an!));
    const q = hs.map((h, pos) => rot(mat(wq!, qd, c.dim, h), pos));
    const k = hs.map((h, pos) => kv(rot(mat(wk!, kvd, c.dim, h), pos)));
    const v = hs.map((h) => kv(mat(wv!, kvd, c.dim, h)));
    xs = xs.map((x, t) => {
      const att: number[] = [];
      for (let h = 0; h < c.nHeads; h++) {
        const g = Math.floor(h / (c.nHeads / c.nKvHeads));
        const s = tokens.map((_, p) => (p > t ? -Infinity : q[t]!.slice(h * c.headDim, (h + 1) * c.headDim).reduce((acc, qv, i) => acc + qv * k[p]![g * c.headDim + i]!, 0) / Math.sqrt(c.headDim)));
        const m = Math.max(...s);
        const e = s.map((z) => Math.exp(z - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let i = 0; i < c.headDim; i++) att.push(e.reduce((acc, ev, p) => acc + (ev / z) * v[p]![g * c.headDim + i]!, 0));
      }
      const o = mat(wo!, c.dim, qd, att);
      return x.map((xv, i) => xv + o[i]!);
    });
    xs = xs.map((x) => {
      const h = norm(x, fn!);
      const gate = mat(wg!, c.hiddenDim, c.dim, h);
      const up = mat(wu!, c.hiddenDim, c.dim, h);
      const a = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]!);
      const d = mat(wd!, c.dim, c.hiddenDim, a);
      return x.map((xv, i) => xv + d[i]!);
    });
  }
  const out = file.tensors.has('output.weight') ? T('output.weight') : emb;
  const on = T('output_norm.weight');
  return xs.map((x) => mat(out, c.vocabSize, c.dim, norm(x, on)));
}
