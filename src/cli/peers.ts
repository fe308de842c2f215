// Peers measured beside pocketlm (dev-only: never dependencies of the engine). llama.cpp through npm
// node-llama-cpp, prebuilt binaries, installed with scripts disabled (so nothing is compiled) in
// bench/peers/ or anywhere node can resolve it. Used by bench/run.ts and `pocketlm bench --model`.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Model } from '../engine.js';

/** An engine the benchmarks can time end to end. */
export interface Engine {
  name: string;
  /** Evaluate `tokens` from an empty context. */
  prefill(tokens: number[]): Promise<void>;
  /** Reset, evaluate BOS (untimed), then return a function that decodes n tokens greedily. */
  prepareDecode(bos: number): Promise<(n: number) => Promise<void>>;
  /**
   * What a user's generation costs: from an empty context, the prompt and then `n` tokens (greedy, or
   * sampled with llama.cpp's defaults). promptMs: until the first token is chosen; decodeMs: the other n - 1.
   */
  generate?(tokens: number[], n: number, sample: boolean): Promise<{ promptMs: number; decodeMs: number }>;
  close(): Promise<void>;
}


/**
 * pocketlm's side of Engine.generate: `model.generate` of n tokens after `tokens` (greedy, or the
 * default sampling seeded), timed by its own stats. Throws if it generated fewer (it ignores EOS).
 */
export async function timeGenerate(model: Model, tokens: number[], n: number, sample: boolean): Promise<{ promptMs: number; decodeMs: number }> {
  const g = model.generate(tokens, { maxTokens: n, ignoreEos: true, ...(sample ? { seed: 1 } : { temperature: 0 }) });
  await g.text();
  if (g.stats.generatedTokens !== n) throw new Error(`pocketlm generated ${g.stats.generatedTokens} tokens, not ${n}`);
  return { promptMs: g.stats.promptMs, decodeMs: g.stats.generateMs };
}

/** A peer package's entry: bench/peers/node_modules/<pkg>/<file> under `root`, else wherever node resolves it; undefined if absent. */
export function findPeer(root: string, pkg: string, file: string): string | undefined {
  const local = join(root, 'bench', 'peers', 'node_modules', pkg, file);
  if (existsSync(local)) return pathToFileURL(local).href;
  try {
    return import.meta.resolve(pkg);
  } catch {
    return undefined;
  }
}

/** llama.cpp on `path` (CPU, or Vulkan on the first device), or why it cannot be had. `root`: pocketlm's folder. */
export async function llamaCppEngine(path: string, threads: number, ctx: number, gpu: false | 'vulkan' = false, root = '.'): Promise<Engine | string> {
  const entry = findPeer(root, 'node-llama-cpp', join('dist', 'index.js'));
  if (!entry) return 'node-llama-cpp is not installed (cd bench/peers && npm install --ignore-scripts)';
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const nlc: any = await import(entry);
  // ggml-vulkan skips CPU-type Vulkan devices such as Mesa's lavapipe unless they are listed
  // explicitly: list device 0, so that both engines use the same adapter on a GPU-less machine.
  if (gpu === 'vulkan') process.env.GGML_VK_VISIBLE_DEVICES ??= '0';
  let llama;
  try {
    llama = await nlc.getLlama({ build: 'never', gpu, logLevel: 'error' });
  } catch (e) {
    return `llama.cpp ${gpu || 'cpu'} backend unavailable: ${(e as Error).message.split('\n')[0]}`;
  }
  const model = await llama.loadModel({ modelPath: path, gpuLayers: gpu ? 'max' : 0 });
  const context = await model.createContext({ contextSize: ctx, batchSize: 512, threads, sequences: 1 });
  const seq = context.getSequence();
  return {
    name: gpu ? `llama.cpp ${gpu} (${llama.getGpuDeviceNames ? (await llama.getGpuDeviceNames()).join(', ') : 'gpu'})` : `llama.cpp cpu (${threads} threads)`,
    async prefill(tokens) {
      await seq.clearHistory();
      await seq.evaluateWithoutGeneratingNewTokens(tokens);
    },
    async prepareDecode(bos) {
      await seq.clearHistory();
      await seq.evaluateWithoutGeneratingNewTokens([bos]);
      return async (n) => {
        let i = 0;
        for await (const _ of seq.evaluate([bos], { temperature: 0 })) if (++i >= n) break;
      };
    },
    async generate(tokens, n, sample) {
      await seq.clearHistory();
      const t0 = performance.now();
      let t1 = t0, i = 0;
      const options = sample ? { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 } : { temperature: 0 };
      for await (const _ of seq.evaluate(tokens, options)) {
        if (i++ === 0) t1 = performance.now();
        if (i >= n) break;
      }
      return { promptMs: t1 - t0, decodeMs: performance.now() - t1 };
    },
    async close() {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}


/**
 * The same matrix-vector product (out[r] = W[r] . x, f32) written as a gpu.js kernel on its WebGPU
 * backend, on the adapter `gpu`: what generated code does beside pocketlm's hand-written WGSL.
 * Returns a function computing one product (gpu.js uploads the arguments on each call), or why it
 * cannot be had.
 */
export async function gpuJsMatvec(gpu: GPU, rows: number, cols: number, root = '.'): Promise<((w: Float32Array, x: Float32Array) => Promise<Float32Array>) | string> {
  const entry = findPeer(root, 'gpu.js', join('src', 'index.js'));
  if (!entry) return 'gpu.js is not installed (cd bench/peers && npm install --ignore-scripts)';
  // gpu.js looks for navigator.gpu: in Node, give it the adapter's instance.
  if (typeof navigator === 'undefined' || !(navigator as Navigator & { gpu?: GPU }).gpu)
    Object.defineProperty(globalThis, 'navigator', { value: { ...(globalThis as { navigator?: object }).navigator, gpu }, configurable: true });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const mod: any = await import(entry);
  const GPUjs = mod.GPU ?? mod.default?.GPU;
  const instance = new GPUjs({ mode: 'webgpu' });
  const kernel = instance.createKernel(
    function (this: { thread: { x: number }; constants: { cols: number } }, w: number[], x: number[]) {
      let s = 0;
      for (let c = 0; c < this.constants.cols; c++) s += w[this.thread.x * this.constants.cols + c]! * x[c]!;
      return s;
    },
    { constants: { cols }, output: [rows] },
  );
  return async (w, x) => Float32Array.from(await kernel(w, x));
}
