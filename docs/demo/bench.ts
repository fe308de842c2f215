// The kernel benchmark as a page: pick kernel families, run them on this browser's WebGPU adapter or
// its CPU (the WebAssembly SIMD kernels; with Web Workers on a cross-origin isolated page), see the
// table and chart, download the JSON report (the same schema as `pocketlm bench --json`).
// ?quick=1&kernels=matvec,argmax&device=cpu&auto=1 run at once; the result is left in window.pocketlmBench for tests.
import type { Backend, Handle } from '../../src/backend/backend.js';
import { createWebGPUBackend } from '../../src/backend/webgpu.js';
import { CpuBackend } from '../../src/backend/cpu.js';
import { WasmExecutor } from '../../src/backend/wasm-executor.js';
import { createWebWorkerExecutor } from '../../src/backend/web-workers.js';
import { compareSvg, makeReport, type FullReport } from '../../src/cli/bench-report.js';
import { benchKernels, KERNEL_FAMILIES, type KernelFamily } from '../../src/cli/kernel-bench.js';
import { version } from '../../package.json';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const state: { done: boolean; error: string; report?: FullReport } = { done: false, error: '' };
(window as unknown as { pocketlmBench: typeof state }).pocketlmBench = state;

const params = new URLSearchParams(location.search);
const chosen = new Set(params.get('kernels')?.split(',') ?? KERNEL_FAMILIES);
$('families').innerHTML = KERNEL_FAMILIES.map((f) => `<label><input type="checkbox" value="${f}" ${chosen.has(f) ? 'checked' : ''}> ${f}</label>`).join(' ');
$<HTMLInputElement>('quick').checked = params.has('quick');
if (params.has('device')) $<HTMLSelectElement>('device').value = params.get('device')!;

/** The CPU backend over the WebAssembly kernels: a thread per core (at most 8) where the page is cross-origin isolated, else the page's own. */
async function cpuBackend(): Promise<Backend<Handle>> {
  const cores = Math.min(navigator.hardwareConcurrency || 1, 8);
  const exec = self.crossOriginIsolated && cores > 1 ? await createWebWorkerExecutor(cores).catch(() => new WasmExecutor()) : new WasmExecutor();
  return new CpuBackend(exec) as unknown as Backend<Handle>;
}

const status = $('status');
status.textContent = 'gpu' in navigator ? 'WebGPU: available' : 'WebGPU: not available in this browser';

async function run(): Promise<void> {
  state.done = false;
  state.error = '';
  let backend: Backend<Handle> | undefined;
  try {
    backend = $<HTMLSelectElement>('device').value === 'cpu' ? await cpuBackend() : ((await createWebGPUBackend()) as unknown as Backend<Handle>);
    const families = [...document.querySelectorAll<HTMLInputElement>('#families input:checked')].map((i) => i.value as KernelFamily);
    const kernels = await benchKernels(backend, {
      families, quick: $<HTMLInputElement>('quick').checked,
      onProgress: (done, total, id) => (status.textContent = `${backend!.name}: [${done}/${total}] ${id}`),
    });
    const report = makeReport(backend, kernels, { pocketlm: version, runtime: navigator.userAgent, cpu: { model: 'browser', cores: navigator.hardwareConcurrency } });
    state.report = report;
    status.textContent = `${backend.name}: ${kernels.length} kernels, ${kernels.filter((k) => !k.correct).length} wrong`;
    $('table').innerHTML = `<table><tr><th>kernel</th><th>timing</th><th>median ms</th><th>GB/s</th><th>GFLOP/s</th><th>check</th></tr>${kernels
      .map((k) => `<tr><td>${k.id}</td><td>${k.timing}</td><td>${k.medianMs.toPrecision(3)}</td><td>${k.gbps.toPrecision(3)}</td><td>${k.gflops.toPrecision(3)}</td><td class="${k.correct ? '' : 'wrong'}">${k.correct ? 'ok' : 'WRONG'}</td></tr>`)
      .join('')}</table>`;
    $('chart').innerHTML = compareSvg([report]);
    const link = $<HTMLAnchorElement>('download');
    link.href = URL.createObjectURL(new Blob([JSON.stringify(report, null, 2)], { type: 'application/json' }));
    link.hidden = false;
  } catch (e) {
    state.error = (e as Error).message;
    status.textContent = `error: ${state.error}`;
  } finally {
    backend?.dispose();
    state.done = true;
  }
}

$('run').addEventListener('click', () => void run());
if (params.has('auto')) void run();
