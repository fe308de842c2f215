// pocketlm bench: kernels are checked against the CPU path before they are timed (a wrong kernel is
// reported as wrong), reports follow the schema, and --compare renders two recorded reports.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend, Handle } from '../src/backend/backend.js';
import { CpuBackend } from '../src/backend/cpu.js';
import { checkReport, compareMarkdown, compareSvg, makeReport, markdownReport } from '../src/cli/bench-report.js';
import { benchKernels, KERNEL_FAMILIES } from '../src/cli/kernel-bench.js';
import { hasShared, ROOT, STORIES_BIN, STORIES_TOK, TINY_GGUF } from './helpers.js';

const fixture = (name: string) => checkReport(JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', name), 'utf8')), name);
const tmp = mkdtempSync(join(tmpdir(), 'pocketlm-bench-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('kernel benchmarks', () => {
  it('time every kernel family on the CPU with a positive median, each checked correct, in a report that reads back', async () => {
    const cpu = new CpuBackend();
    const kernels = await benchKernels(cpu as unknown as Backend<Handle>, { quick: true });
    expect(new Set(kernels.map((k) => k.family))).toEqual(new Set(KERNEL_FAMILIES));
    for (const k of kernels) {
      expect(k.medianMs, k.id).toBeGreaterThan(0);
      expect(k.correct, k.id).toBe(true);
    }
    const report = makeReport(cpu as unknown as Backend<Handle>, kernels, { pocketlm: 'test', runtime: `Node ${process.version}`, cpu: { model: 'test', cores: 1 } });
    const back = checkReport(JSON.parse(JSON.stringify(report)), 'round trip');
    expect(back.kernels.map((k) => k.id)).toEqual(kernels.map((k) => k.id));
    expect(markdownReport(back)).toMatch(/\| matvec q4_k 64x256 \| wall-clock \| [\d.]+ \|/);
  });

  it('report a kernel that computes the wrong thing as wrong, not fast', async () => {
    const cpu = new CpuBackend();
    // A backend whose matrix products drop the last input column: a plausible indexing bug.
    const broken = Object.create(cpu) as CpuBackend;
    broken.matmul = (ops) => cpu.matmul(ops.map((o) => ({ ...o, cols: o.cols - 1 }) as typeof o));
    const kernels = await benchKernels(broken as unknown as Backend<Handle>, { quick: true, families: ['matvec', 'rmsnorm'] });
    const f32 = kernels.find((k) => k.id === 'matvec f32 64x256')!;
    expect([f32.correct, f32.relativeError > 0.05]).toEqual([false, true]);
    expect(kernels.find((k) => k.family === 'rmsnorm')!.correct).toBe(true);
  });
});

describe.skipIf(!hasShared)('end to end with --model', () => {
  it('pocketlm and, where node-llama-cpp is installed (always in CI), llama.cpp on the same file, at two prompt lengths', () => {
    const cli = join(ROOT, 'dist', 'src', 'cli', 'main.js');
    const gguf = join(tmp, 'stories.gguf');
    expect(spawnSync(process.execPath, [cli, 'convert', STORIES_BIN, '--tokenizer', STORIES_TOK, '-o', gguf]).status).toBe(0);
    const json = join(tmp, 'e2e.json');
    const r = spawnSync(process.execPath, [cli, 'bench', '--device', 'cpu', '--quick', '--kernels', 'argmax', '--model', gguf, '--json', json, '--quiet'], { encoding: 'utf8', timeout: 240_000 });
    expect(r.status, r.stderr).toBe(0);
    const e2e = checkReport(JSON.parse(readFileSync(json, 'utf8')), json).endToEnd ?? [];
    const peers = existsSync(join(ROOT, 'bench', 'peers', 'node_modules', 'node-llama-cpp'));
    if (process.env.CI) expect(peers).toBe(true);
    expect(e2e.map((e) => [e.model.replace(/ \(.*\)$/, '').replace(`${gguf} on `, ''), e.promptTokens])).toEqual([
      ['pocketlm cpu', 8], ['pocketlm cpu', 32],
      ...(peers ? [['llama.cpp cpu', 8], ['llama.cpp cpu', 32]] : []),
    ]);
    for (const e of e2e) expect(e.promptTokPerS > 0 && e.decodeTokPerS > 0, e.model).toBe(true);
  });
});

describe('on WebGPU, with gpu.js as the peer kernel', () => {
  it('times our kernels with GPU timestamps and the same matrix-vector product as a gpu.js kernel, both checked', () => {
    const cli = join(ROOT, 'dist', 'src', 'cli', 'main.js');
    const json = join(tmp, 'gpu.json');
    const r = spawnSync(process.execPath, [cli, 'bench', '--device', 'webgpu', '--quick', '--kernels', 'matvec', '--json', json, '--quiet'], { encoding: 'utf8', timeout: 240_000 });
    if (r.status !== 0 && /no WebGPU adapter|needs the optional package/.test(r.stderr) && !process.env.CI) return console.warn(`skipped: ${r.stderr.trim()}`);
    expect(r.status, r.stderr).toBe(0);
    const report = checkReport(JSON.parse(readFileSync(json, 'utf8')), json);
    expect(report.device.kind).toBe('webgpu');
    const ours = report.kernels.find((k) => k.id === 'matvec f32 64x256')!;
    expect([ours.correct, ours.timing]).toEqual([true, report.device.features?.includes('timestamp-query') ? 'gpu-timestamp' : 'wall-clock']);
    const peer = report.kernels.find((k) => k.id === 'matvec f32 64x256 (gpu.js)');
    if (process.env.CI) expect(peer).toBeDefined(); // .ci/run installs bench/peers
    if (peer) expect([peer.correct, peer.medianMs > 0]).toEqual([true, true]);
  });
});

describe('--compare', () => {
  it('renders the two recorded reports (this machine: CPU and lavapipe) as a table and an SVG chart', () => {
    const [a, b] = [fixture('bench-cpu-quick.json'), fixture('bench-lavapipe-quick.json')];
    expect(a.device.kind).toBe('cpu');
    expect(b.device.kind).toBe('webgpu');
    expect(b.device.limits?.maxStorageBufferBindingSize).toBeGreaterThan(0);
    const table = compareMarkdown([a, b]);
    for (const k of a.kernels) expect(table).toContain(`| ${k.id} |`);
    expect(table.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| kernel')).length).toBe(a.kernels.length);
    const svg = compareSvg([a, b]);
    expect(svg.startsWith('<svg') && svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<rect x="300"/g)?.length).toBe(a.kernels.length * 2); // one bar per kernel and report
  });

  it('on the command line, and with a clear error for a file that is not a report', () => {
    const cli = join(ROOT, 'dist', 'src', 'cli', 'main.js');
    const svg = join(tmp, 'c.svg');
    const r = spawnSync(process.execPath, [cli, 'bench', '--compare', join(ROOT, 'test', 'fixtures', 'bench-cpu-quick.json'), join(ROOT, 'test', 'fixtures', 'bench-lavapipe-quick.json'), '--svg', svg], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\| kernel \| A ms \| A GB\/s \| B ms \| B GB\/s \| A\/B \|/);
    expect(readFileSync(svg, 'utf8')).toMatch(/^<svg/);
    const bad = spawnSync(process.execPath, [cli, 'bench', '--compare', join(ROOT, 'package.json'), join(ROOT, 'package.json')], { encoding: 'utf8' });
    expect([bad.status, bad.stderr.trim()]).toEqual([1, `pocketlm: ${join(ROOT, 'package.json')}: not a pocketlm bench report (expected "schema": "pocketlm-bench/1")`]);
  });
});

describe('npm run bench:compare -- --fresh', () => {
  // Each --fresh run is this script in a child process of its own (--child): the model loaded and
  // generate() run once, its timing printed as JSON for the parent.
  const script = join(ROOT, 'dist', 'bench', 'compare.js');
  it.runIf(hasShared)('a child loads the model, generates once and prints its prompt and decode times', () => {
    const r = spawnSync(process.execPath, [script, '--child', 'pocketlm', '--model', TINY_GGUF, '--ids', '1,2,3,4,5', '--decode', '4', '--threads', '1'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const t = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(Object.keys(t).sort()).toEqual(['decodeMs', 'promptMs']);
    expect([t.promptMs > 0, t.decodeMs > 0]).toEqual([true, true]);
  });
  it('a child without its model and prompt says what it needs', () => {
    const r = spawnSync(process.execPath, [script, '--child', 'pocketlm', '--ids', '1,2'], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('--child pocketlm|llama.cpp needs one --model FILE and --ids 1,2,3');
  });
});
