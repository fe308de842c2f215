// The demo page: load a model into pocketlm's WebGPU backend (or its CPU backend: ?device=cpu) and stream
// generated text; and an
// embeddings panel: an encoder embeds sentences, their cosine similarities drawn as a heat map.
// Query parameters fill the form (?model=URL&tokenizer=URL&prompt=...&maxTokens=N&temperature=T&device=D;
// also &threads=N for the CPU) and
// ?auto=1 starts at once; the result is also left in window.pocketlmDemo for automated tests.
// Embeddings: ?embedModel=URL&sentences=a|b|c&autoEmbed=1, the result in window.pocketlmEmbed.
// Inside: ?insidePrompt=TEXT&autoInside=1 (with ?model=...), the result in window.pocketlmInside.
import { loadModel, type Model } from '../../src/engine.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('status');
const output = $('output');
const state = { done: false, text: '', error: '', adapter: '', tokensPerSecond: 0, tokens: 0, stopReason: '' };
(window as unknown as { pocketlmDemo: typeof state }).pocketlmDemo = state;

const params = new URLSearchParams(location.search);
for (const [param, id] of [['model', 'model-url'], ['tokenizer', 'tok-url'], ['prompt', 'prompt'], ['maxTokens', 'max-tokens'], ['temperature', 'temperature'], ['device', 'device']] as const)
  if (params.has(param)) $<HTMLInputElement>(id).value = params.get(param)!;
/** Where the generate and inside panels run: WebGPU, the CPU (WebAssembly SIMD kernels), or auto. */
const device = () => $<HTMLSelectElement>('device').value as 'webgpu' | 'cpu' | 'auto';
/** ?threads=N: the CPU's threads (more than one needs a cross-origin isolated page: Web Workers). */
const threads = params.has('threads') ? Number(params.get('threads')) : undefined;

async function source(urlId: string, fileId: string): Promise<ArrayBuffer | string | undefined> {
  const file = $<HTMLInputElement>(fileId).files?.[0];
  if (file) return file.arrayBuffer();
  const url = $<HTMLInputElement>(urlId).value.trim();
  return url ? new URL(url, location.href).href : undefined;
}

let model: Model | undefined;
let stopping: AbortController | undefined;
async function run(): Promise<void> {
  state.done = false;
  output.textContent = '';
  stopping = new AbortController();
  $<HTMLButtonElement>('stop').disabled = false;
  try {
    const src = await source('model-url', 'model-file');
    if (!src) throw new Error('give a model URL or file');
    status.textContent = 'loading...';
    model?.dispose();
    model = await loadModel(src, { device: device(), threads, tokenizer: await source('tok-url', 'tok-file') });
    state.adapter = model.backend.name;
    const gen = model.generate($<HTMLInputElement>('prompt').value, {
      maxTokens: Number($<HTMLInputElement>('max-tokens').value),
      temperature: Number($<HTMLInputElement>('temperature').value),
      ignoreEos: params.has('ignoreEos'),
      signal: stopping.signal,
    });
    status.textContent = `generating on ${state.adapter}...`;
    for await (const piece of gen) output.textContent += piece;
    state.text = output.textContent ?? '';
    state.tokensPerSecond = gen.stats.generatedTokens > 1 ? ((gen.stats.generatedTokens - 1) * 1000) / gen.stats.generateMs : 0;
    [state.tokens, state.stopReason] = [gen.stats.generatedTokens, gen.stats.stopReason ?? ''];
    status.textContent = `${state.adapter}: ${gen.stats.generatedTokens} tokens, ${state.tokensPerSecond.toFixed(1)} tok/s (prompt ${gen.stats.promptTokens} tokens)`;
  } catch (e) {
    state.error = String((e as Error)?.message ?? e);
    status.textContent = `error: ${state.error}`;
  } finally {
    $<HTMLButtonElement>('stop').disabled = true;
    state.done = true;
  }
}
$('stop').addEventListener('click', () => stopping?.abort());

const embedState = { done: false, error: '', adapter: '', matrix: [] as number[][], sentences: [] as string[] };
(window as unknown as { pocketlmEmbed: typeof embedState }).pocketlmEmbed = embedState;
if (params.has('embedModel')) $<HTMLInputElement>('embed-url').value = params.get('embedModel')!;
if (params.has('sentences')) $<HTMLTextAreaElement>('sentences').value = params.get('sentences')!.split('|').join('\n');

/** The n x n similarity matrix as an SVG heat map: a cell per pair, blue (-1) to white (0) to red (1). */
function heatmap(sentences: string[], m: number[][]): string {
  const cell = 40, label = 220, n = sentences.length;
  const esc = (t: string) => t.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const colour = (v: number) => {
    const a = Math.round(255 * (1 - Math.min(1, Math.abs(v))));
    return v >= 0 ? `rgb(255,${a},${a})` : `rgb(${a},${a},255)`;
  };
  const cells = m.flatMap((row, i) => row.map((v, j) => `<rect x="${label + j * cell}" y="${i * cell}" width="${cell}" height="${cell}" fill="${colour(v)}"><title>${esc(sentences[i]!)} / ${esc(sentences[j]!)}: ${v.toFixed(3)}</title></rect><text x="${label + j * cell + cell / 2}" y="${i * cell + cell / 2 + 4}" text-anchor="middle">${v.toFixed(2)}</text>`));
  const labels = sentences.map((s, i) => `<text x="${label - 6}" y="${i * cell + cell / 2 + 4}" text-anchor="end">${esc(s.length > 32 ? s.slice(0, 31) + '…' : s)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${label + n * cell}" height="${n * cell}">${labels.join('')}${cells.join('')}</svg>`;
}

let encoder: Model | undefined;
async function compare(): Promise<void> {
  embedState.done = false;
  const out = $('embed-status');
  try {
    const src = await source('embed-url', 'embed-file');
    if (!src) throw new Error('give an encoder URL or file');
    const sentences = $<HTMLTextAreaElement>('sentences').value.split('\n').map((s) => s.trim()).filter(Boolean);
    if (sentences.length === 0) throw new Error('write a sentence per line');
    out.textContent = 'loading...';
    encoder?.dispose();
    encoder = await loadModel(src, { device: 'webgpu' });
    if (!encoder.isEncoder) throw new Error(`${encoder.config.name} is a ${encoder.config.architecture} decoder: the panel needs an encoder`);
    embedState.adapter = encoder.backend.name;
    const t0 = performance.now();
    const vectors = await encoder.embed(sentences); // unit length: dot products are cosines
    const ms = performance.now() - t0;
    embedState.matrix = vectors.map((a) => vectors.map((b) => a.reduce((s, x, i) => s + x * b[i]!, 0)));
    embedState.sentences = sentences;
    $('heatmap').innerHTML = heatmap(sentences, embedState.matrix);
    out.textContent = `${embedState.adapter}: ${sentences.length} sentences in ${ms.toFixed(0)} ms (${(encoder.config as { pooling?: string }).pooling} pooling)`;
  } catch (e) {
    embedState.error = String((e as Error)?.message ?? e);
    out.textContent = `error: ${embedState.error}`;
  } finally {
    embedState.done = true;
  }
}

// --- Inside: attention maps per head of a chosen layer, the logit lens of a hovered token ---

const insideState = { done: false, error: '', adapter: '', layers: 0, heads: 0, tokens: [] as string[], lensLastEqualsOutput: false, shownMaps: 0 };
(window as unknown as { pocketlmInside: typeof insideState }).pocketlmInside = insideState;
if (params.has('insidePrompt')) $<HTMLInputElement>('inside-prompt').value = params.get('insidePrompt')!;
let inside: { patterns: Float32Array[]; n: number; heads: number; lensTop: { id: number; prob: number }[][][]; pieces: string[] } | undefined;

function showLayer(l: number): void {
  if (!inside) return;
  const { patterns, n, heads, pieces } = inside;
  const cell = Math.max(4, Math.min(14, Math.floor(240 / n)));
  const maps: string[] = [];
  for (let h = 0; h < heads; h++) {
    const rects: string[] = [];
    for (let q = 0; q < n; q++)
      for (let k = 0; k < n; k++) {
        const v = patterns[l]![(h * n + q) * n + k]!;
        if (v > 0.002) rects.push(`<rect x="${k * cell}" y="${q * cell}" width="${cell}" height="${cell}" fill="rgba(40,80,255,${v.toFixed(3)})"><title>${pieces[q]} → ${pieces[k]}: ${v.toFixed(3)}</title></rect>`);
      }
    maps.push(`<figure style="margin:0"><svg xmlns="http://www.w3.org/2000/svg" width="${n * cell}" height="${n * cell}" style="border:1px solid #ccc">${rects.join('')}</svg><figcaption style="text-align:center">head ${h}</figcaption></figure>`);
  }
  $('inside-maps').innerHTML = maps.join('');
  insideState.shownMaps = heads;
}

function showLens(p: number): void {
  if (!inside) return;
  const rows = inside.lensTop.map((top, l) => `<tr><td>layer ${l}</td>${top[p]!.map((x) => `<td style="background:rgba(40,80,255,${x.prob.toFixed(3)})">${(model!.decode([x.id]) || '∅').replace(/ /g, '·')} ${x.prob.toFixed(2)}</td>`).join('')}</tr>`);
  $('inside-lens').innerHTML = `<table><caption>after "${inside.pieces[p]}", each layer predicts</caption>${rows.join('')}</table>`;
}

async function lookInside(): Promise<void> {
  insideState.done = false;
  const out = $('inside-status');
  try {
    const src = await source('model-url', 'model-file');
    if (!src) throw new Error('give a model URL or file (above)');
    out.textContent = 'loading...';
    if (!model) model = await loadModel(src, { device: device(), threads, tokenizer: await source('tok-url', 'tok-file') });
    insideState.adapter = model.backend.name;
    const tokens = model.inputTokens($<HTMLInputElement>('inside-prompt').value);
    const L = model.config.nLayers, H = model.config.nHeads, n = tokens.length;
    out.textContent = `running ${n} tokens on ${insideState.adapter}...`;
    const run = await model.run(tokens, { capture: Array.from({ length: L }, (_, l) => `blocks.${l}.attn.pattern`) });
    const lens = await model.logitLens(tokens, { topK: 3 });
    insideState.lensLastEqualsOutput = lens.lens.at(-1)!.every((v, i) => v === run.output[i]);
    const pieces = tokens.map((t) => model!.decode([t]) || '∅');
    inside = { patterns: Array.from({ length: L }, (_, l) => run.cache.get(`blocks.${l}.attn.pattern`)!.data), n, heads: H, lensTop: lens.rows.map((r) => r.top), pieces };
    Object.assign(insideState, { layers: L, heads: H, tokens: pieces });
    const select = $<HTMLSelectElement>('inside-layer');
    select.innerHTML = Array.from({ length: L }, (_, l) => `<option value="${l}">${l}</option>`).join('');
    $('inside-tokens').innerHTML = pieces.map((t, i) => `<span data-pos="${i}">${t.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</span>`).join('');
    showLayer(0);
    showLens(n - 1);
    out.textContent = `${L} layers x ${H} heads; hover a token for the logit lens`;
  } catch (e) {
    insideState.error = String((e as Error)?.message ?? e);
    out.textContent = `error: ${insideState.error}`;
  } finally {
    insideState.done = true;
  }
}

$('inside').addEventListener('click', () => void lookInside());
$('inside-layer').addEventListener('change', (e) => showLayer(Number((e.target as HTMLSelectElement).value)));
$('inside-tokens').addEventListener('mouseover', (e) => {
  const pos = (e.target as HTMLElement).dataset?.pos;
  if (pos !== undefined) showLens(Number(pos));
});
if (params.has('autoInside')) void lookInside();

$('run').addEventListener('click', () => void run());
$('embed').addEventListener('click', () => void compare());
if (params.has('autoEmbed')) void compare();
status.textContent = 'gpu' in navigator ? 'WebGPU is available' : 'this browser has no WebGPU (navigator.gpu)';
if (params.has('auto')) void run();
