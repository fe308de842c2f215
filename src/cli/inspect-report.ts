// `pocketlm inspect`'s outputs: the analysis of one run as JSON, as a self-contained HTML report (inline
// SVG, no scripts, no network: token surprisal along the text, residual-stream norms per layer, the
// logit-lens table, attention heat maps per head), and attention maps as PNG files.

import { deflateSync } from 'node:zlib';

export interface InspectReport {
  model: string;
  /** Each token's text, as the tokenizer decodes it alone. */
  tokens: string[];
  ids: number[];
  /** Bits per token given those before it (position 0: null). */
  surprisal: (number | null)[];
  /** Per layer: the L2 norm of the residual stream leaving it, per position. */
  residNorms: { layer: number; norms: number[] }[];
  lens?: { layer: number; top: { token: string; id: number; prob: number }[][] }[];
  /** Direct logit attribution of the last position's prediction (or --target): the largest parts. */
  attribution?: { target: number; token: string; logit: number; constant: number; parts: { name: string; value: number }[] };
  /** Per layer, per head: the attention pattern [query][key]. */
  attention?: { layer: number; heads: { head: number; pattern: number[][] }[] }[];
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** A token as it shows: spaces and control characters made visible. */
const show = (s: string) => (s === '' ? '∅' : s.replace(/ /g, '·').replace(/\n/g, '↵').replace(/[\u0000-\u001f]/g, '�'));

/** White (0) to deep blue (1). */
function blue(v: number): string {
  const a = Math.max(0, Math.min(1, v));
  return `rgb(${Math.round(255 - 215 * a)},${Math.round(255 - 175 * a)},255)`;
}
/** White (0 bits) to red (`max` bits). */
function heat(bits: number, max: number): string {
  const a = Math.max(0, Math.min(1, bits / max));
  return `rgb(255,${Math.round(255 - 200 * a)},${Math.round(255 - 200 * a)})`;
}

function attentionSvg(pattern: number[][], tokens: string[], cell: number, labels: boolean): string {
  const n = pattern.length, pad = labels ? 90 : 0;
  const rects = pattern.flatMap((row, q) => row.map((v, k) => (v > 0.002 ? `<rect x="${pad + k * cell}" y="${pad + q * cell}" width="${cell}" height="${cell}" fill="${blue(v)}"><title>${esc(show(tokens[q]!))} → ${esc(show(tokens[k]!))}: ${v.toFixed(3)}</title></rect>` : '')));
  const lab = labels ? tokens.map((t, i) => `<text x="${pad - 4}" y="${pad + i * cell + cell * 0.8}" text-anchor="end">${esc(show(t).slice(0, 12))}</text><text transform="translate(${pad + i * cell + cell * 0.8},${pad - 4}) rotate(-90)">${esc(show(t).slice(0, 12))}</text>`) : [];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${pad + n * cell}" height="${pad + n * cell}"><rect x="${pad}" y="${pad}" width="${n * cell}" height="${n * cell}" fill="#fff" stroke="#ccc"/>${rects.join('')}${lab.join('')}</svg>`;
}

export function renderHtml(r: InspectReport): string {
  const parts: string[] = [];
  parts.push(`<h1>pocketlm inspect</h1><p>${esc(r.model)}: ${r.tokens.length} tokens</p>`);
  // Surprisal along the text.
  const most = Math.max(1, ...r.surprisal.filter((x): x is number => x !== null));
  parts.push(`<h2>Surprisal (bits per token, given those before it; deepest red: ${most.toFixed(1)} bits)</h2><p class="tokens">`);
  r.tokens.forEach((t, i) => {
    const s = r.surprisal[i] ?? null;
    parts.push(`<span style="background:${s === null ? '#eee' : heat(s, most)}" title="${esc(`#${i} id ${r.ids[i]}: ${s === null ? 'first token' : `${s.toFixed(2)} bits`}`)}">${esc(show(t))}</span>`);
  });
  parts.push('</p>');
  // Residual norms: a small table of bars (mean over positions) per layer.
  const means = r.residNorms.map((x) => x.norms.reduce((a, b) => a + b, 0) / x.norms.length);
  const top = Math.max(...means, 1e-9);
  parts.push(`<h2>Residual stream norm leaving each layer (mean over positions)</h2><svg xmlns="http://www.w3.org/2000/svg" width="${60 + means.length * 28}" height="150">${means.map((m, i) => `<rect x="${40 + i * 28}" y="${120 - (100 * m) / top}" width="20" height="${(100 * m) / top}" fill="#57a"><title>layer ${r.residNorms[i]!.layer}: ${m.toFixed(3)}</title></rect><text x="${50 + i * 28}" y="138" text-anchor="middle">${r.residNorms[i]!.layer}</text>`).join('')}<text x="2" y="20">${top.toPrecision(3)}</text></svg>`);
  // The logit lens.
  if (r.lens) {
    parts.push('<h2>Logit lens: the next token each layer predicts after each input token (colour: its probability; hover: the top k)</h2><div class="scroll"><table><tr><th>layer</th>');
    r.tokens.forEach((t) => parts.push(`<th>${esc(show(t))}</th>`));
    parts.push('</tr>');
    for (const row of r.lens) {
      parts.push(`<tr><th>${row.layer}</th>`);
      for (const top of row.top) parts.push(`<td style="background:${blue(top[0]!.prob)}" title="${esc(top.map((x) => `${show(x.token)} ${x.prob.toFixed(3)}`).join('\n'))}">${esc(show(top[0]!.token))}</td>`);
      parts.push('</tr>');
    }
    parts.push('</table></div>');
  }
  // Direct logit attribution.
  if (r.attribution) {
    const a = r.attribution;
    const big = Math.max(...a.parts.map((p) => Math.abs(p.value)), 1e-9);
    parts.push(`<h2>Direct logit attribution: what writes "${esc(show(a.token))}" (logit ${a.logit.toFixed(3)}) after the last token</h2><table>`);
    for (const p of a.parts) parts.push(`<tr><td>${esc(p.name)}</td><td style="text-align:right">${p.value.toFixed(3)}</td><td><svg xmlns="http://www.w3.org/2000/svg" width="302" height="12"><rect x="${p.value < 0 ? 151 - (150 * -p.value) / big : 151}" y="1" width="${(150 * Math.abs(p.value)) / big}" height="10" fill="${p.value < 0 ? '#c55' : '#57a'}"/></svg></td></tr>`);
    parts.push(`<tr><td>biases (constant)</td><td style="text-align:right">${a.constant.toFixed(3)}</td><td></td></tr></table>`);
  }
  // Attention maps.
  if (r.attention) {
    parts.push('<h2>Attention patterns (row: query token, column: key token)</h2>');
    const cell = Math.max(3, Math.min(14, Math.floor(360 / r.tokens.length)));
    for (const layer of r.attention) {
      parts.push(`<h3>layer ${layer.layer}</h3><div class="heads">`);
      layer.heads.forEach((h, i) => parts.push(`<figure>${attentionSvg(h.pattern, r.tokens, cell, i === 0)}<figcaption>head ${h.head}</figcaption></figure>`));
      parts.push('</div>');
    }
  }
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>pocketlm inspect</title><style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem}
.tokens span{padding:1px 2px;margin:1px;display:inline-block;border-radius:3px;font-family:monospace}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-family:monospace;font-size:12px}
td,th{border:1px solid #ddd;padding:2px 4px;white-space:nowrap}
.heads{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-end}figure{margin:0}figcaption{text-align:center;color:#555}
svg text{font:10px monospace}
</style></head><body>${parts.join('')}</body></html>\n`;
}

// --- PNG (RGB, 8 bits, no interlace): the attention maps of one layer, heads side by side ---

const CRC = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** A PNG of width x height RGB pixels (pixel(x, y) -> [r, g, b]). */
export function png(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): Uint8Array {
  const raw = new Uint8Array(height * (1 + 3 * width));
  for (let y = 0; y < height; y++) {
    raw[y * (1 + 3 * width)] = 0; // filter: none
    for (let x = 0; x < width; x++) raw.set(pixel(x, y), y * (1 + 3 * width) + 1 + 3 * x);
  }
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const parts = [Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

/** One layer's heads side by side, each an n x n map scaled up to about 256 pixels, 4 white pixels apart. */
export function attentionPng(heads: number[][][]): Uint8Array {
  const n = heads[0]!.length, scale = Math.max(1, Math.floor(256 / n)), side = n * scale, gap = 4;
  const width = heads.length * (side + gap) - gap;
  return png(width, side, (x, y) => {
    const h = Math.floor(x / (side + gap)), in_ = x % (side + gap);
    if (in_ >= side) return [255, 255, 255];
    const v = Math.max(0, Math.min(1, heads[h]![Math.floor(y / scale)]![Math.floor(in_ / scale)]!));
    return [Math.round(255 - 215 * v), Math.round(255 - 175 * v), 255];
  });
}
