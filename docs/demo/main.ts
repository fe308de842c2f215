// The demo page: load a model into pocketlm's WebGPU backend and stream generated text.
// Query parameters fill the form (?model=URL&tokenizer=URL&prompt=...&maxTokens=N&temperature=T) and
// ?auto=1 starts at once; the result is also left in window.pocketlmDemo for automated tests.
import { loadModel, type Model } from '../../src/engine.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('status');
const output = $('output');
const state = { done: false, text: '', error: '', adapter: '', tokensPerSecond: 0 };
(window as unknown as { pocketlmDemo: typeof state }).pocketlmDemo = state;

const params = new URLSearchParams(location.search);
for (const [param, id] of [['model', 'model-url'], ['tokenizer', 'tok-url'], ['prompt', 'prompt'], ['maxTokens', 'max-tokens'], ['temperature', 'temperature']] as const)
  if (params.has(param)) $<HTMLInputElement>(id).value = params.get(param)!;

async function source(urlId: string, fileId: string): Promise<ArrayBuffer | string | undefined> {
  const file = $<HTMLInputElement>(fileId).files?.[0];
  if (file) return file.arrayBuffer();
  const url = $<HTMLInputElement>(urlId).value.trim();
  return url ? new URL(url, location.href).href : undefined;
}

let model: Model | undefined;
async function run(): Promise<void> {
  state.done = false;
  output.textContent = '';
  try {
    const src = await source('model-url', 'model-file');
    if (!src) throw new Error('give a model URL or file');
    status.textContent = 'loading...';
    model?.dispose();
    model = await loadModel(src, { device: 'webgpu', tokenizer: await source('tok-url', 'tok-file') });
    state.adapter = model.backend.name;
    const gen = model.generate($<HTMLInputElement>('prompt').value, {
      maxTokens: Number($<HTMLInputElement>('max-tokens').value),
      temperature: Number($<HTMLInputElement>('temperature').value),
      ignoreEos: params.has('ignoreEos'),
    });
    status.textContent = `generating on ${state.adapter}...`;
    for await (const piece of gen) output.textContent += piece;
    state.text = output.textContent ?? '';
    state.tokensPerSecond = gen.stats.generatedTokens > 1 ? ((gen.stats.generatedTokens - 1) * 1000) / gen.stats.generateMs : 0;
    status.textContent = `${state.adapter}: ${gen.stats.generatedTokens} tokens, ${state.tokensPerSecond.toFixed(1)} tok/s (prompt ${gen.stats.promptTokens} tokens)`;
  } catch (e) {
    state.error = String((e as Error)?.message ?? e);
    status.textContent = `error: ${state.error}`;
  } finally {
    state.done = true;
  }
}

$('run').addEventListener('click', () => void run());
status.textContent = 'gpu' in navigator ? 'WebGPU is available' : 'this browser has no WebGPU (navigator.gpu)';
if (params.has('auto')) void run();
