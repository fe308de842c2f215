// `pocketlm bench`'s reports: what was measured where (device, runtime, CPU, date), as JSON that
// another machine's report can be put next to, as a markdown table, and side by side (--compare) as a
// table and a hand-made SVG bar chart.

import type { Backend, Handle } from '../backend/backend.js';
import { BENCH_SCHEMA, KNOWN_PEAK_BANDWIDTH, type BenchReport, type KernelResult } from './kernel-bench.js';
import { InvalidInputError } from '../base/errors.js';

export interface EndToEnd {
  model: string;
  promptTokens: number;
  promptTokPerS: number;
  decodeTokens: number;
  decodeTokPerS: number;
}

export type FullReport = BenchReport & { endToEnd?: EndToEnd[] };

/** The device a backend runs on, with the adapter's identity, features and limits on WebGPU. */
export function describeDevice(backend: Backend<Handle>): BenchReport['device'] {
  const keep = (backend as unknown as { keepAlive?: { adapter: GPUAdapter } }).keepAlive;
  if (backend.device !== 'webgpu' || !keep) return { kind: 'cpu', name: backend.name };
  const { adapter } = keep;
  const limits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === 'number') limits[key] = v;
  }
  return { kind: 'webgpu', name: backend.name, vendor: adapter.info.vendor, architecture: adapter.info.architecture, description: adapter.info.description, features: [...adapter.features].sort(), limits };
}

/** A known adapter's memory bandwidth, GB/s, from its name. */
export function knownPeakBandwidth(name: string): number | undefined {
  return KNOWN_PEAK_BANDWIDTH.find(([re]) => re.test(name))?.[1];
}

export function makeReport(backend: Backend<Handle>, kernels: KernelResult[], env: { pocketlm: string; runtime: string; cpu: { model: string; cores: number }; peakBandwidthGBps?: number; endToEnd?: EndToEnd[] }): FullReport {
  return { schema: BENCH_SCHEMA, date: new Date().toISOString(), pocketlm: env.pocketlm, runtime: env.runtime, cpu: env.cpu, device: describeDevice(backend), peakBandwidthGBps: env.peakBandwidthGBps, kernels, endToEnd: env.endToEnd };
}

/** Check that a parsed JSON value is a report this version reads; a clear error otherwise. */
export function checkReport(value: unknown, source: string): FullReport {
  const r = value as FullReport;
  if (!r || typeof r !== 'object' || r.schema !== BENCH_SCHEMA) throw new InvalidInputError(`${source}: not a pocketlm bench report (expected "schema": "${BENCH_SCHEMA}")`);
  if (!Array.isArray(r.kernels) || !r.device || typeof r.date !== 'string') throw new InvalidInputError(`${source}: a pocketlm bench report without kernels, device or date`);
  for (const k of r.kernels)
    if (typeof k.id !== 'string' || !(k.medianMs > 0) || typeof k.correct !== 'boolean') throw new InvalidInputError(`${source}: kernel entry ${JSON.stringify(k).slice(0, 80)} lacks id, a positive medianMs or correct`);
  return r;
}

const fmt = (x: number, digits = 3) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toPrecision(digits));
const deviceLabel = (r: BenchReport) => (r.device.kind === 'cpu' ? r.device.name : [r.device.vendor, r.device.architecture, r.device.description].filter(Boolean).join(' ') || r.device.name);

export function markdownReport(r: FullReport): string {
  const lines = [
    `# pocketlm bench: ${deviceLabel(r)}`,
    '',
    `${r.date.slice(0, 10)}, pocketlm ${r.pocketlm}, ${r.runtime}, CPU ${r.cpu.model} (${r.cpu.cores} cores)${r.peakBandwidthGBps ? `, peak bandwidth ${r.peakBandwidthGBps} GB/s` : ''}`,
    '',
    '| kernel | timing | median ms | p25-p75 ms | GB/s | GFLOP/s | % of bandwidth | check |',
    '|---|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const k of r.kernels)
    lines.push(`| ${k.id} | ${k.timing} | ${fmt(k.medianMs)} | ${fmt(k.p25Ms)}-${fmt(k.p75Ms)} | ${fmt(k.gbps)} | ${fmt(k.gflops)} | ${k.bandwidthPercent !== undefined ? `${k.bandwidthPercent.toFixed(1)}%` : '-'} | ${k.correct ? 'ok' : `**WRONG** (error ${k.relativeError.toExponential(1)})`} |`);
  if (r.endToEnd?.length) {
    lines.push('', '| model | prompt tokens | prompt tok/s | generated tokens | generation tok/s |', '|---|---:|---:|---:|---:|');
    for (const e of r.endToEnd) lines.push(`| ${e.model} | ${e.promptTokens} | ${fmt(e.promptTokPerS)} | ${e.decodeTokens} | ${fmt(e.decodeTokPerS)} |`);
  }
  return lines.join('\n');
}

/** The same kernels in several reports, side by side: median ms and GB/s, and time relative to the first report. */
export function compareMarkdown(reports: FullReport[]): string {
  const ids = [...new Set(reports.flatMap((r) => r.kernels.map((k) => k.id)))];
  const head = reports.map((r, i) => `${String.fromCharCode(65 + i)}: ${deviceLabel(r)} (${r.date.slice(0, 10)})`);
  const lines = [head.map((h) => `- ${h}`).join('\n'), '', `| kernel | ${reports.map((_, i) => `${String.fromCharCode(65 + i)} ms | ${String.fromCharCode(65 + i)} GB/s`).join(' | ')} | ${reports.slice(1).map((_, i) => `A/${String.fromCharCode(66 + i)}`).join(' | ')} |`];
  lines.push(`|---|${reports.map(() => '---:|---:').join('|')}|${reports.slice(1).map(() => '---:').join('|')}|`);
  for (const id of ids) {
    const ks = reports.map((r) => r.kernels.find((k) => k.id === id));
    const cells = ks.map((k) => (k ? `${fmt(k.medianMs)}${k.correct ? '' : ' (wrong)'} | ${fmt(k.gbps)}` : '- | -'));
    const ratios = ks.slice(1).map((k) => (k && ks[0] ? `${(ks[0].medianMs / k.medianMs).toFixed(2)}x` : '-'));
    lines.push(`| ${id} | ${cells.join(' | ')} | ${ratios.join(' | ')} |`);
  }
  return lines.join('\n');
}

const escapeXml = (s: string) => s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
const COLORS = ['#3b6ea5', '#e07b39', '#5a9e4b', '#b5485d', '#7c62a8', '#8c7b3c'];

/** A horizontal bar chart of GB/s per kernel, one bar per report (log scale: adapters differ by orders of magnitude). */
export function compareSvg(reports: FullReport[]): string {
  const ids = [...new Set(reports.flatMap((r) => r.kernels.map((k) => k.id)))];
  const values = ids.map((id) => reports.map((r) => r.kernels.find((k) => k.id === id)?.gbps ?? 0));
  const positive = values.flat().filter((v) => v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...positive, 1))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...positive, 1))));
  const [labelW, plotW, bar, gap, top] = [300, 520, 10, 8, 40];
  const groupH = reports.length * bar + gap;
  const height = top + ids.length * groupH + 40;
  const x = (v: number) => (v <= 0 ? 0 : ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + plotW + 40}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<text x="10" y="18" font-size="13" font-weight="bold">Effective bandwidth, GB/s (log scale)</text>`,
  ];
  for (let d = lo; d <= hi; d *= 10) {
    const px = labelW + x(d);
    parts.push(`<line x1="${px}" y1="${top - 6}" x2="${px}" y2="${height - 30}" stroke="#ddd"/><text x="${px}" y="${height - 16}" text-anchor="middle" fill="#555">${d >= 1 ? d : d.toPrecision(1)}</text>`);
  }
  ids.forEach((id, i) => {
    const y = top + i * groupH;
    parts.push(`<text x="${labelW - 6}" y="${y + (reports.length * bar) / 2 + 4}" text-anchor="end">${escapeXml(id)}</text>`);
    values[i]!.forEach((v, j) => {
      if (v > 0) parts.push(`<rect x="${labelW}" y="${y + j * bar}" width="${Math.max(1, x(v)).toFixed(1)}" height="${bar - 1}" fill="${COLORS[j % COLORS.length]}"><title>${escapeXml(`${deviceLabel(reports[j]!)}: ${fmt(v)} GB/s`)}</title></rect>`);
    });
  });
  reports.forEach((r, j) => {
    const lx = 10 + j * 260;
    parts.push(`<rect x="${lx}" y="${height - 10}" width="10" height="8" fill="${COLORS[j % COLORS.length]}"/><text x="${lx + 14}" y="${height - 3}">${escapeXml(`${String.fromCharCode(65 + j)}: ${deviceLabel(r)}`.slice(0, 40))}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
