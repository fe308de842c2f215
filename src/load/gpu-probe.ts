// `--device auto` in Node: is there a hardware WebGPU adapter? Asked in a short-lived child process,
// so that what Dawn prints while it looks at the adapters (on Mesa's lavapipe, two "artificially
// reduced" warnings at every start) stays off the user's terminal; only when the answer is a hardware
// adapter does pocketlm open WebGPU in its own process.

import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { adapterName, isSoftwareAdapter } from '../backend/webgpu.js';

/** The adapter's info as the probe reports it. */
interface ProbedAdapter {
  vendor: string;
  architecture: string;
  description: string;
  isFallbackAdapter?: boolean;
}

/** Undefined when a hardware adapter is there; otherwise why WebGPU is passed over (one line). */
export async function noHardwareAdapter(timeoutMs = 15000): Promise<string | undefined> {
  let url: string;
  try {
    url = pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
  } catch {
    return 'WebGPU in Node needs the optional package "webgpu" (npm install webgpu)';
  }
  const script = `const m = await import(${JSON.stringify(url)}); Object.assign(globalThis, m.globals);
const a = await m.create([]).requestAdapter();
process.stdout.write(JSON.stringify(a ? { vendor: a.info.vendor, architecture: a.info.architecture, description: a.info.description, isFallbackAdapter: a.info.isFallbackAdapter } : null));
process.exit(0);`;
  const out = await new Promise<string | undefined>((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'ignore'], timeout: timeoutMs });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', () => resolve(undefined));
    child.on('close', (code) => resolve(code === 0 ? text : undefined));
  });
  if (out === undefined) return 'the WebGPU probe did not answer (no usable Vulkan, Metal or D3D driver?)';
  let info: ProbedAdapter | null;
  try {
    info = JSON.parse(out) as ProbedAdapter | null;
  } catch {
    return 'the WebGPU probe answered nonsense';
  }
  if (!info) return 'no WebGPU adapter is available (in Node on Linux, install Mesa >= 23 Vulkan drivers; see DEVELOPERS.md)';
  if (isSoftwareAdapter(info as GPUAdapterInfo)) return `the only WebGPU adapter is a software renderer (${adapterName(info as GPUAdapterInfo)}), slower than the CPU path`;
  return undefined;
}
