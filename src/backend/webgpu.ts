// The WebGPU backend: each stage is a compute dispatch of a kernel from kernels/*.wgsl, recorded into
// one command buffer per forward step and submitted when the step's result is read (logits, or the
// argmax id). Pipelines and bind groups are created once and reused; each dispatch's parameters go to
// a slot of one uniform buffer (dynamic offsets), uploaded with a single writeBuffer before the submit.
// In Node the adapter comes from the optional npm package `webgpu` (Dawn); in a browser from navigator.gpu.

import type { AttentionShape } from '../stages/attention.js';
import type { AttentionExtras, AttentionProjection, Backend, EmbedOptions, MatmulOp, NormFusion, PendingParts } from './backend.js';
import type { Activation, GateActivation } from '../stages/ffn.js';
import { allocating, DeviceLostError, formatBytes, OutOfMemoryError, PocketLMError } from '../base/errors.js';
import { ropeFrequencies, type RopeParams } from '../stages/rope.js';
import { f32ToF16 } from '../base/tensor.js';
import { sortedCandidates, type Candidates } from '../stages/sampling.js';
import { gpuLayout, QUANT_FORMATS, type QuantMatrix, type QuantType } from '../quant/formats.js';
import { GGMLType } from '../base/tensor.js';

/** A tensor on the GPU: a storage buffer of `length` f32 values (or f16, for `half` weights). */
export class GpuTensor {
  /**
   * A matrix too large for one storage binding is kept as row blocks, each its own buffer; `buffer`
   * is then the first block's.
   */
  parts?: { tensor: GpuTensor; row0: number; rows: number }[];
  /** A quantized matrix, in its format's GPU layout (u32 words; see kernels/q8_0.wgsl etc.). */
  quant?: QuantType;
  constructor(
    readonly buffer: GPUBuffer,
    readonly length: number,
    readonly id: number,
    readonly half = false,
  ) {}
}

/**
 * Each pipeline: its kernel file, its entry point, and for an f16 variant (shader-f16) the type alias
 * that the variant sets to f16 (the file declares it `= f32`), so that one source serves both.
 */
const PIPELINES = {
  embedding: { file: 'embedding', entry: 'main', f16: false },
  'embedding-f16': { file: 'embedding', entry: 'main', f16: 'Weight' },
  matmul: { file: 'matmul', entry: 'main', f16: false },
  'matmul-tiled': { file: 'matmul', entry: 'tiled', f16: false },
  'matmul-f16': { file: 'matmul', entry: 'main', f16: 'Weight' },
  'matmul-tiled-f16': { file: 'matmul', entry: 'tiled', f16: 'Weight' },
  'matmul-gated': { file: 'matmul', entry: 'gated', f16: false },
  'matmul-gated-f16': { file: 'matmul', entry: 'gated', f16: 'Weight' },
  'matmul-norm': { file: 'matmul', entry: 'main_norm', f16: false },
  'matmul-norm-f16': { file: 'matmul', entry: 'main_norm', f16: 'Weight' },
  'matmul-gated-norm': { file: 'matmul', entry: 'gated_norm', f16: false },
  'matmul-gated-norm-f16': { file: 'matmul', entry: 'gated_norm', f16: 'Weight' },
  'matmul-qkv-norm': { file: 'matmul', entry: 'qkv_norm', f16: false },
  'matmul-qkv-norm-f16': { file: 'matmul', entry: 'qkv_norm', f16: 'Weight' },
  'matmul-subgroup': { file: 'matmul-subgroup', entry: 'main', f16: false },
  'matmul-subgroup-f16': { file: 'matmul-subgroup', entry: 'main', f16: 'Weight' },
  'matmul-subgroup-norm': { file: 'matmul-subgroup', entry: 'main_norm', f16: false },
  'matmul-subgroup-norm-f16': { file: 'matmul-subgroup', entry: 'main_norm', f16: 'Weight' },
  'matmul-subgroup-qkv-norm': { file: 'matmul-subgroup', entry: 'qkv_norm', f16: false },
  'matmul-subgroup-qkv-norm-f16': { file: 'matmul-subgroup', entry: 'qkv_norm', f16: 'Weight' },
  'matmul-subgroup-gated-norm': { file: 'matmul-subgroup', entry: 'gated_norm', f16: false },
  'matmul-subgroup-gated-norm-f16': { file: 'matmul-subgroup', entry: 'gated_norm', f16: 'Weight' },
  rmsnorm: { file: 'rmsnorm', entry: 'main', f16: false },
  'rmsnorm-add': { file: 'rmsnorm', entry: 'main_add', f16: false },
  rope: { file: 'rope', entry: 'main', f16: false },
  'rope-cache': { file: 'rope', entry: 'cache', f16: false },
  'rope-cache-f16': { file: 'rope', entry: 'cache', f16: 'Cached' },
  'kv-cache': { file: 'kv-cache', entry: 'main', f16: false },
  'kv-cache-f16': { file: 'kv-cache', entry: 'main', f16: 'Cached' },
  attention: { file: 'attention', entry: 'main', f16: false },
  'attention-f16': { file: 'attention', entry: 'main', f16: 'Cached' },
  'attention-split': { file: 'attention', entry: 'split', f16: false },
  'attention-split-f16': { file: 'attention', entry: 'split', f16: 'Cached' },
  'attention-combine': { file: 'attention', entry: 'combine', f16: false },
  'attention-prefill': { file: 'attention', entry: 'prefill', f16: false },
  'attention-prefill-f16': { file: 'attention', entry: 'prefill', f16: 'Cached' },
  layernorm: { file: 'layernorm', entry: 'main', f16: false },
  affine: { file: 'layernorm', entry: 'affine', f16: false },
  softmax: { file: 'softmax', entry: 'main', f16: false },
  ffn: { file: 'ffn', entry: 'main', f16: false },
  geglu: { file: 'ffn', entry: 'geglu', f16: false },
  gelu: { file: 'ffn', entry: 'gelu', f16: false },
  gelu_erf: { file: 'ffn', entry: 'gelu_erf', f16: false },
  relu: { file: 'ffn', entry: 'relu', f16: false },
  softcap: { file: 'ffn', entry: 'softcap', f16: false },
  add: { file: 'add', entry: 'main', f16: false },
  'add-parts': { file: 'add', entry: 'parts', f16: false },
  argmax: { file: 'argmax', entry: 'main', f16: false },
  topk: { file: 'argmax', entry: 'topk', f16: false },
  // Quantized weights: kernels/matmul-quant.wgsl completed by the format's file (QUANT_PIPELINES).
} as const;

/** Per quantized format: its kernel file, and the pipelines made from it with matmul-quant.wgsl. */
const QUANT_FILES: Record<QuantType, 'q8_0' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q4_k' | 'q5_k' | 'q6_k'> = {
  [GGMLType.Q8_0]: 'q8_0',
  [GGMLType.Q4_0]: 'q4_0',
  [GGMLType.Q4_1]: 'q4_1',
  [GGMLType.Q5_0]: 'q5_0',
  [GGMLType.Q5_1]: 'q5_1',
  [GGMLType.Q4_K]: 'q4_k',
  [GGMLType.Q5_K]: 'q5_k',
  [GGMLType.Q6_K]: 'q6_k',
};
const QUANT_ENTRIES = ['main', 'tiled', 'gather', 'gated', 'main_norm', 'gated_norm', 'qkv_norm'] as const;
type QuantFile = (typeof QUANT_FILES)[QuantType];
type QuantEntry = (typeof QUANT_ENTRIES)[number];
type QuantPipeline = `${QuantFile}-${QuantEntry}`;
/** Wo's reader in attention-out.wgsl: a quantized format's file, or dense-f32.wgsl / dense-f16.wgsl. */
type WoFile = QuantFile | 'dense-f32' | 'dense-f16';
const WO_FILES: readonly WoFile[] = ['dense-f32', 'dense-f16', ...Object.values(QUANT_FILES)];
/**
 * Attention with Wo's projection (attention-out.wgsl): main_out per KV cache type and Wo's file, and
 * combine_out (after split; it reads no cache) per Wo's file.
 */
type AttentionOutPipeline = `attention-${'out' | 'out-f16' | 'combine-out'}:${WoFile}`;
type Kernel = keyof typeof PIPELINES | QuantPipeline | AttentionOutPipeline;
type KernelFile = (typeof PIPELINES)[keyof typeof PIPELINES]['file'] | 'matmul-quant' | 'matmul-tiled' | 'matmul-norm' | 'quant-bytes' | 'attention-out' | 'dense-f32' | 'dense-f16' | (typeof QUANT_FILES)[QuantType];
/**
 * Storage bindings 1, 2, ... of each kernel file (or pipeline, where it differs) after the uniform at
 * binding 0: true = written, false = read, undefined = not in the layout (a binding number skipped).
 */
type Bindings = (boolean | undefined)[];
/** A product's W, x and out, and matmul-norm.wgsl's parts at binding 8 (main, tiled; matmul-subgroup.wgsl's every entry). */
const MAIN_BINDINGS: Bindings = [false, false, true, undefined, undefined, undefined, undefined, false];
const BINDINGS: Record<KernelFile, Bindings> = {
  embedding: [false, true],
  matmul: MAIN_BINDINGS,
  'matmul-subgroup': MAIN_BINDINGS,
  'matmul-quant': MAIN_BINDINGS,
  'matmul-tiled': [], // appended to matmul.wgsl and matmul-quant.wgsl
  'matmul-norm': [], // appended to them too (bindings 5, 6 and 8 of their _norm entry points)
  'quant-bytes': [], // prepended to the format files by their hosts
  'attention-out': [], // appended to attention.wgsl (binding 8: Wo)
  'dense-f32': [], 'dense-f16': [], // Wo's reader for attention-out.wgsl
  q8_0: [], q4_0: [], q4_1: [], q5_0: [], q5_1: [], q4_k: [], q5_k: [], q6_k: [], // completed by matmul-quant.wgsl
  rmsnorm: [false, false, true],
  layernorm: [false, false, false, true],
  softmax: [true],
  rope: [true, false],
  'kv-cache': [false, true],
  attention: [false, true, true, true, true, false, false, false], // (the caches written by fresh steps only; 8: attention-out.wgsl's Wo)
  ffn: [true, false],
  add: [false, true],
  argmax: [false, true],
};
/** matmul-norm.wgsl's NORM_COLS: the widest row the _norm entry points normalize in workgroup memory. */
const NORM_COLS = 4096;
/** gated_norm's bindings: w, x, out, wUp, normW, normOut, and parts (binding 8). */
const NORM_BINDINGS: Bindings = [false, false, true, false, false, true, undefined, false];
/**
 * qkv_norm's, main_norm's and matmul.wgsl's gated_norm's (rowNorm reads any of the three matrices, so
 * all three are bound; main_norm leaves Wk and Wv unread, gated_norm Wv): Wq, x, out, Wk, normW, normOut, Wv, parts.
 */
const QKV_BINDINGS: Bindings = [false, false, true, false, false, true, false, false];
/** Each entry point of matmul-quant.wgsl's. */
const QUANT_BINDINGS: Record<QuantEntry, Bindings> = {
  main: MAIN_BINDINGS,
  tiled: MAIN_BINDINGS,
  gather: [false, false, true],
  gated: [false, false, true, false],
  main_norm: QKV_BINDINGS,
  qkv_norm: QKV_BINDINGS,
  gated_norm: NORM_BINDINGS,
};
const PIPELINE_BINDINGS: Partial<Record<Kernel, Bindings>> = {
  'matmul-norm': QKV_BINDINGS,
  'matmul-norm-f16': QKV_BINDINGS,
  'matmul-gated-norm': QKV_BINDINGS,
  'matmul-gated-norm-f16': QKV_BINDINGS,
  'matmul-qkv-norm': QKV_BINDINGS,
  'matmul-qkv-norm-f16': QKV_BINDINGS,
  'matmul-subgroup-norm': QKV_BINDINGS,
  'matmul-subgroup-norm-f16': QKV_BINDINGS,
  'matmul-subgroup-qkv-norm': QKV_BINDINGS,
  'matmul-subgroup-qkv-norm-f16': QKV_BINDINGS,
  'matmul-subgroup-gated-norm': QKV_BINDINGS,
  'matmul-subgroup-gated-norm-f16': QKV_BINDINGS,
  'rmsnorm-add': [false, false, true, true],
  'rope-cache': [true, false, false, false, true, true],
  'rope-cache-f16': [true, false, false, false, true, true],
  'matmul-gated': [false, false, true, false],
  'matmul-gated-f16': [false, false, true, false],
};
const SLOT = 256; // bytes per dispatch's parameters (minUniformBufferOffsetAlignment is at most 256)
const SLOTS = 4096;
const MAX_GROUPS = 65535;
const MAX_BIND_GROUPS = 8192;
/** While profiling, a submit holds at most this many dispatches (two timestamps each; 4096 per query set). */
const PROFILED_PER_SUBMIT = 2048;
/** attention.wgsl's CHUNK: contexts longer than this take the split-K path. */
export const ATTENTION_CHUNK = 256;
/** This many query rows or more (with headDim <= 128) take attention.wgsl's tiled prefill path. */
export const ATTENTION_PREFILL_FROM = 4;
/** argmax.wgsl's top-k: chunk length, and the largest k it serves (beyond it the logits are read). */
const TOPK_CHUNK = 2048;
export const TOPK_MAX = 128;
/** Products of more inputs than this go to matmul.wgsl's tiled entry point. */
const TILED_FROM = 5;

// Each kernel's URL, written out literally: from src/ (tests) and dist/src/ (the built package, whose
// build copies kernels/ to dist/kernels/) the same relative path reaches it, and bundlers such as Vite
// recognise new URL('literal', import.meta.url) as an asset without any plugin.
const KERNEL_URLS: Record<KernelFile, URL> = {
  embedding: new URL('../../kernels/embedding.wgsl', import.meta.url),
  matmul: new URL('../../kernels/matmul.wgsl', import.meta.url),
  'matmul-subgroup': new URL('../../kernels/matmul-subgroup.wgsl', import.meta.url),
  'matmul-quant': new URL('../../kernels/matmul-quant.wgsl', import.meta.url),
  'matmul-tiled': new URL('../../kernels/matmul-tiled.wgsl', import.meta.url),
  'matmul-norm': new URL('../../kernels/matmul-norm.wgsl', import.meta.url),
  'quant-bytes': new URL('../../kernels/quant-bytes.wgsl', import.meta.url),
  'attention-out': new URL('../../kernels/attention-out.wgsl', import.meta.url),
  'dense-f32': new URL('../../kernels/dense-f32.wgsl', import.meta.url),
  'dense-f16': new URL('../../kernels/dense-f16.wgsl', import.meta.url),
  q8_0: new URL('../../kernels/q8_0.wgsl', import.meta.url),
  q4_0: new URL('../../kernels/q4_0.wgsl', import.meta.url),
  q4_1: new URL('../../kernels/q4_1.wgsl', import.meta.url),
  q5_0: new URL('../../kernels/q5_0.wgsl', import.meta.url),
  q5_1: new URL('../../kernels/q5_1.wgsl', import.meta.url),
  q4_k: new URL('../../kernels/q4_k.wgsl', import.meta.url),
  q5_k: new URL('../../kernels/q5_k.wgsl', import.meta.url),
  q6_k: new URL('../../kernels/q6_k.wgsl', import.meta.url),
  rmsnorm: new URL('../../kernels/rmsnorm.wgsl', import.meta.url),
  layernorm: new URL('../../kernels/layernorm.wgsl', import.meta.url),
  softmax: new URL('../../kernels/softmax.wgsl', import.meta.url),
  rope: new URL('../../kernels/rope.wgsl', import.meta.url),
  'kv-cache': new URL('../../kernels/kv-cache.wgsl', import.meta.url),
  attention: new URL('../../kernels/attention.wgsl', import.meta.url),
  ffn: new URL('../../kernels/ffn.wgsl', import.meta.url),
  add: new URL('../../kernels/add.wgsl', import.meta.url),
  argmax: new URL('../../kernels/argmax.wgsl', import.meta.url),
};

/**
 * A quantized format's file as the gated kernel's second matrix: dequant4Up and dequant16Up reading
 * wUp (or, with 'wV' and 'V', the third matrix of qkv_norm); its block constants are already declared
 * by the first copy.
 */
function upVariant(source: string, buffer = 'wUp', suffix = 'Up'): string {
  return source.replace(/^const BLOCK_\w+\s*=.*$/gm, '').replace(/\bw\[/g, `${buffer}[`).replace(/\b(dequant(?:4|16))\b/g, `$1${suffix}`);
}

/** A kernel with some of its `const NAME = Nu;` lines set to other values (the per-adapter shapes). */
function withConsts(source: string, file: string, values: Record<string, number>): string {
  for (const [name, value] of Object.entries(values)) {
    const line = new RegExp(`const ${name} = \\d+u;`);
    if (!line.test(source)) throw new PocketLMError(`${file}.wgsl must declare "const ${name} = ...u;" for its variants`);
    source = source.replace(line, `const ${name} = ${value}u;`);
  }
  return source;
}

/** A kernel's f16 variant: its one `alias NAME = f32;` line swapped, f16 enabled. */
function f16Variant(source: string, file: string, alias: string): string {
  const line = `alias ${alias} = f32;`;
  if (!source.includes(line)) throw new PocketLMError(`${file}.wgsl must declare "${line}" for its f16 variant`);
  return `enable f16;\n${source.replace(line, `alias ${alias} = f16;`)}`;
}

async function kernelSource(name: KernelFile): Promise<string> {
  const url = KERNEL_URLS[name];
  if (url.protocol === 'file:') {
    const { readFile } = await import('node:fs/promises');
    try {
      return await readFile(url, 'utf8');
    } catch {
      throw new PocketLMError(`kernel ${name}.wgsl not found at ${url.pathname} (run npm run build, which copies kernels/ into dist/)`);
    }
  }
  const res = await fetch(url);
  if (!res.ok) throw new PocketLMError(`kernel ${name}.wgsl: HTTP ${res.status} from ${url}`);
  return res.text();
}

/** The GPU, from navigator.gpu in a browser or the optional `webgpu` package (Dawn) in Node. */
export async function getGPU(): Promise<GPU> {
  if (typeof navigator !== 'undefined' && (navigator as Navigator & { gpu?: GPU }).gpu) return (navigator as Navigator & { gpu: GPU }).gpu;
  let mod: { create(options: string[]): GPU; globals: Record<string, unknown> };
  try {
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch {
    throw new PocketLMError('WebGPU in Node needs the optional package "webgpu" (npm install webgpu)');
  }
  Object.assign(globalThis, mod.globals);
  return mod.create([]);
}

export class WebGPUBackend implements Backend<GpuTensor> {
  readonly device = 'webgpu' as const;
  readonly name: string;
  /** Pipelines and shader modules made so far (pipeline()); the kernel sources they are made from. */
  private readonly pipelines = new Map<Kernel, { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }>();
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly sources: Record<KernelFile, string>;
  private readonly tiled: string;
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly params: GPUBuffer;
  private readonly staging = new ArrayBuffer(SLOT * SLOTS);
  private slot = 0;
  private encoder?: GPUCommandEncoder;
  private pass?: GPUComputePassEncoder;
  private nextId = 0;
  private scores?: GpuTensor;
  // Prompt steps of 128 tokens: each weight is read once per 128 tokens, and the software tile (128
  // inputs a workgroup) is full (32-token steps left three quarters of it idle).
  readonly prefillRows = 128;
  private topkOut?: GpuTensor;
  /** RoPE frequencies per parameter set (Gemma 3's local and global layers alternate two). */
  private ropeFreqs = new WeakMap<RopeParams, GpuTensor>();
  /** ropeAttention's packed biases [q | k | v] and q/k norm weights [q | k], per their tensors. */
  private packedExtras = new Map<string, GpuTensor>();
  private readonly result: GPUBuffer;
  private readonly resultTensor: GpuTensor;
  /** Free readback buffers by size: a read takes one and gives it back once unmapped, so reads may overlap. */
  private readonly readback = new Map<number, GPUBuffer[]>();
  /** Dispatches and submits since creation, for the benchmark's per-token counts. */
  readonly counters = { dispatches: 0, submits: 0 };
  /** The first GPU error not yet reported (validation, out of memory), thrown at the next read. */
  private error?: { message: string; outOfMemory: boolean };
  /** Set once the device is lost (or destroyed): every later read fails with a DeviceLostError. */
  private lost?: string;
  /** Per-kernel GPU time (timestamp queries), while profiling. */
  private profiler?: {
    querySet: GPUQuerySet;
    resolve: GPUBuffer;
    kernels: Kernel[]; // of the dispatches recorded since the last submit
    pending: Promise<void>[];
    totals: Map<Kernel, { ns: number; count: number }>;
  };

  constructor(
    readonly gpu: GPUDevice,
    sources: Record<KernelFile, string>,
    adapterName: string,
    // Dawn (npm webgpu) frees its native instance when the GPU object is garbage collected, even
    // while a device made from it is in use: keep both alive as long as the backend.
    readonly keepAlive: { instance: GPU; adapter: GPUAdapter },
    /** shader-f16 is enabled: f16 weights stay f16 on the GPU. */
    readonly f16 = false,
    /** The largest storage binding, in bytes: larger weights are split into row blocks. */
    readonly maxBinding = gpu.limits.maxStorageBufferBindingSize,
    /** Decode's matrix-vector kernel: a row per invocation, or a row per workgroup with subgroup sums. */
    readonly matvec: 'rows' | 'subgroup' = 'rows',
    /** Prefill's tiled product: the rows x inputs one invocation computes (matmul-tiled.wgsl's 4*RQ x 4*TQ). */
    readonly prefillTile: PrefillTile = [8, 4],
    /** Query rows one invocation of the prefill attention holds (attention.wgsl's PR). */
    readonly attentionRows = 1,
    /** Decode attention takes Wo's product in (attention-out.wgsl; WebGPUOptions.projectAttention). */
    readonly projectAttention = true,
  ) {
    this.name = `webgpu (${adapterName})`;
    gpu.addEventListener('uncapturederror', (e) => {
      const err = (e as GPUUncapturedErrorEvent).error;
      this.error ??= { message: err.message, outOfMemory: typeof GPUOutOfMemoryError !== 'undefined' && err instanceof GPUOutOfMemoryError };
    });
    void gpu.lost.then((info) => {
      this.lost = `${info.reason === 'destroyed' ? 'device destroyed' : 'device lost'}${info.message ? `: ${info.message}` : ''}`;
    });
    this.params = gpu.createBuffer({ size: SLOT * SLOTS, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.result = gpu.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    this.resultTensor = new GpuTensor(this.result, 4, -1);
    this.sources = sources;
    this.tiled = withConsts(sources['matmul-tiled'], 'matmul-tiled', { RQ: prefillTile[0] / 4, TQ: prefillTile[1] / 4 });
  }

  /**
   * A kernel's pipeline and bind group layout, made at its first dispatch: a model uses a few dozen of
   * the ~135 (a format's quantized products, f16 or not, subgroups or not), and a software adapter
   * compiles each in about a second (Chromium's SwiftShader spent 100 s compiling them all before the
   * demo page's first token).
   */
  private pipeline(k: Kernel): { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout } {
    let p = this.pipelines.get(k);
    if (p) return p;
    if (!this.canRun(k)) throw new Error(`${k} needs shader-f16 or subgroups, which this device was not created with`); // callers check this.f16 / this.matvec
    const s = this.sources;
    let module: GPUShaderModule, entry: string, bindings: Bindings;
    const quant = k.match(/^(q\d_[01k])-(.+)$/) as [string, QuantFile, QuantEntry] | null;
    const out = k.match(/^attention-(out|out-f16|combine-out):(.+)$/) as [string, 'out' | 'out-f16' | 'combine-out', WoFile] | null;
    if (out) {
      // Attention then Wo: Wo's reader (its `w` renamed wo), attention.wgsl, attention-out.wgsl.
      const [, kind, file] = out;
      const half = kind === 'out-f16';
      entry = kind === 'combine-out' ? 'combine_out' : 'main_out';
      bindings = BINDINGS.attention;
      module = this.module(`attention-out${half ? '-f16' : ''}:${file}`, () => {
        const reader = `${file.startsWith('dense') ? '' : s['quant-bytes']}\n${s[file].replace(/\bw\[/g, 'wo[')}`;
        const code = `${reader}\n${withConsts(s.attention, 'attention', { PR: this.attentionRows })}\n${s['attention-out']}`;
        return half ? f16Variant(code, 'attention', 'Cached') : code;
      });
    } else if (quant) {
      // Quantized matmuls: the format's file (its layout and dequant4), matmul-quant.wgsl, matmul-tiled.wgsl.
      // The format file comes three times: as is, and as dequant4Up / dequant4V reading wUp / wV.
      const file = quant[1];
      entry = quant[2];
      module = this.module(file, () => `${s['quant-bytes']}\n${s[file]}\n${upVariant(s[file])}\n${upVariant(s[file], 'wV', 'V')}\n${s['matmul-quant']}\n${this.tiled}\n${s['matmul-norm']}`);
      bindings = QUANT_BINDINGS[quant[2]];
    } else {
      const { file, entry: e, f16: half } = PIPELINES[k as keyof typeof PIPELINES];
      entry = e;
      bindings = PIPELINE_BINDINGS[k as keyof typeof PIPELINES] ?? BINDINGS[file];
      module = this.module(`${file}${half ? '-f16' : ''}`, () => {
        // matmul.wgsl gets the shared tiled and norm code; attention.wgsl its rows per prefill invocation.
        const code = file === 'matmul' ? `${s.matmul}\n${this.tiled}\n${s['matmul-norm']}` : file === 'attention' ? withConsts(s.attention, file, { PR: this.attentionRows }) : s[file];
        return half ? f16Variant(code, file, half) : code;
      });
    }
    const layout = this.layoutFor(bindings);
    p = { layout, pipeline: this.gpu.createComputePipeline({ layout: this.gpu.createPipelineLayout({ bindGroupLayouts: [layout] }), compute: { module, entryPoint: entry }, label: k }) };
    this.pipelines.set(k, p);
    return p;
  }

  /** Whether this device can make kernel k: f16 variants need shader-f16, matmul-subgroup.wgsl's kernels subgroups. */
  private canRun(k: Kernel): boolean {
    if (k.startsWith('attention-out')) return !k.startsWith('attention-out-f16') || this.f16;
    if (!(k in PIPELINES)) return true; // quantized products
    const { file, f16: half } = PIPELINES[k as keyof typeof PIPELINES];
    return !(half && !this.f16) && !(file === 'matmul-subgroup' && this.matvec !== 'subgroup');
  }

  /**
   * Make every pipeline this device can run now rather than at first use, and report the first
   * compile or validation error: for tests, and for an app that would rather pay compile time at load.
   */
  async compileAll(): Promise<void> {
    this.gpu.pushErrorScope('validation');
    const all: Kernel[] = [
      ...(Object.keys(PIPELINES) as Kernel[]),
      ...Object.values(QUANT_FILES).flatMap((file) => QUANT_ENTRIES.map((entry) => `${file}-${entry}` as const)),
      ...WO_FILES.flatMap((file) => [`attention-out:${file}`, `attention-out-f16:${file}`, `attention-combine-out:${file}`] as const),
    ];
    for (const k of all) if (this.canRun(k)) this.pipeline(k);
    const err = await this.gpu.popErrorScope();
    if (err) throw new PocketLMError(`a WebGPU kernel does not compile on ${this.name}: ${err.message}`);
  }

  /** A shader module by key, made once from `code()`. */
  private module(key: string, code: () => string): GPUShaderModule {
    let m = this.modules.get(key);
    if (!m) this.modules.set(key, (m = this.gpu.createShaderModule({ code: code(), label: key })));
    return m;
  }

  /** A bind group layout: the uniform at binding 0, then storage bindings (true = written; undefined: none). */
  private layoutFor(bindings: Bindings): GPUBindGroupLayout {
    const storage = bindings.flatMap((written, i) => (written === undefined ? [] : [{ binding: i + 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: written ? ('storage' as const) : ('read-only-storage' as const) } }]));
    return this.gpu.createBindGroupLayout({
      entries: [{ binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true } }, ...storage],
    });
  }

  /**
   * A storage buffer of `length` elements (4 bytes each, or 2 when `half`), padded to 16 bytes;
   * `data` is written into it at creation, converted to f16 when `half`; otherwise it is zeroed.
   */
  private tensor(length: number, data?: Float32Array | Uint32Array, half = false): GpuTensor {
    const size = Math.max(16, Math.ceil((length * (half ? 2 : 4)) / 16) * 16);
    // Weights too large for one binding are split before they get here (weight()); a scratch buffer or
    // KV cache that large cannot be bound at all. Said now, not as a validation error at the next read.
    const limit = Math.min(this.gpu.limits.maxStorageBufferBindingSize, this.gpu.limits.maxBufferSize);
    if (size > limit) throw new OutOfMemoryError(`a ${formatBytes(size)} buffer exceeds this adapter's largest binding (${formatBytes(limit)})`);
    // A buffer mapped at creation that the device cannot allocate is a RangeError (WebGPU spec).
    const buffer = allocating(size, () => this.gpu.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, mappedAtCreation: !!data }));
    if (data) {
      if (half) {
        const bits = new Uint16Array(buffer.getMappedRange(), 0, length);
        for (let i = 0; i < length; i++) bits[i] = f32ToF16(data[i]!); // exact: the values came from f16
      } else if (data instanceof Uint32Array) {
        new Uint32Array(buffer.getMappedRange(), 0, length).set(data.subarray(0, length)); // bits as they are
      } else {
        new Float32Array(buffer.getMappedRange(), 0, length).set(data.subarray(0, length));
      }
      buffer.unmap();
    }
    return new GpuTensor(buffer, length, this.nextId++, half);
  }

  weight(data: Float32Array | QuantMatrix, half = false, rowLength?: number): GpuTensor {
    if (!(data instanceof Float32Array)) return this.quantWeight(data);
    const h = half && this.f16;
    const bytes = data.length * (h ? 2 : 4);
    if (bytes <= this.maxBinding) return this.tensor(data.length, data, h);
    if (!rowLength) throw new OutOfMemoryError(`a ${bytes}-byte tensor exceeds this adapter's maxStorageBufferBindingSize (${this.maxBinding}) and has no rows to split it by`);
    // Split into row blocks that each fit one binding (the embedding table and output head of
    // large-vocabulary models, e.g. 152064 x 3584 f16 is about 1 GiB).
    const rowsPerPart = Math.floor(this.maxBinding / (rowLength * (h ? 2 : 4)));
    const rows = data.length / rowLength;
    const parts: NonNullable<GpuTensor['parts']> = [];
    for (let row0 = 0; row0 < rows; row0 += rowsPerPart) {
      const n = Math.min(rowsPerPart, rows - row0);
      parts.push({ tensor: this.tensor(n * rowLength, data.subarray(row0 * rowLength, (row0 + n) * rowLength), h), row0, rows: n });
    }
    const whole = new GpuTensor(parts[0]!.tensor.buffer, data.length, this.nextId++, h);
    whole.parts = parts;
    return whole;
  }
  /** A quantized matrix in its GPU layout (still quantized: about 1.06-1.33x its file size), split into row blocks if it must be. */
  private quantWeight(m: QuantMatrix): GpuTensor {
    const f = QUANT_FORMATS[m.type];
    const rowWords = (m.cols / f.blockSize) * f.gpuBlockWords;
    const rowsPerPart = Math.max(1, Math.floor(this.maxBinding / (rowWords * 4)));
    const upload = (r0: number, r1: number) => {
      const words = gpuLayout(m, r0, r1);
      const t = this.tensor(words.length, words);
      t.quant = m.type;
      return t;
    };
    if (m.rows <= rowsPerPart) return upload(0, m.rows);
    const parts: NonNullable<GpuTensor['parts']> = [];
    for (let row0 = 0; row0 < m.rows; row0 += rowsPerPart) parts.push({ tensor: upload(row0, Math.min(m.rows, row0 + rowsPerPart)), row0, rows: Math.min(rowsPerPart, m.rows - row0) });
    const whole = new GpuTensor(parts[0]!.tensor.buffer, m.rows * rowWords, this.nextId++);
    whole.quant = m.type;
    whole.parts = parts;
    return whole;
  }
  scratch(length: number): GpuTensor {
    return this.tensor(length);
  }
  release(t: GpuTensor): void {
    t.buffer.destroy(); // after the work already queued that uses it
  }
  kvCache(length: number, half = false): GpuTensor {
    return this.tensor(length, undefined, half && this.f16);
  }

  /** The adapter has timestamp queries, so `profile` can time each kernel on the GPU. */
  get canProfile(): boolean {
    return this.gpu.features.has('timestamp-query');
  }

  /**
   * Start (or stop) timing every dispatch on the GPU with timestamp queries: each dispatch then gets
   * its own compute pass, which costs a little speed, so this is for benchmarks, not for generation.
   */
  profile(on: boolean): void {
    if (!on) {
      this.profiler = undefined;
      return;
    }
    if (!this.canProfile) throw new PocketLMError('this adapter has no timestamp-query feature: time kernels by wall clock around a submit instead');
    this.submit();
    const querySet = this.gpu.createQuerySet({ type: 'timestamp', count: 2 * PROFILED_PER_SUBMIT });
    const resolve = this.gpu.createBuffer({ size: 16 * PROFILED_PER_SUBMIT, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.profiler = { querySet, resolve, kernels: [], pending: [], totals: new Map() };
  }

  /** GPU time per kernel since `profile(true)`: total nanoseconds and dispatch count, by kernel. */
  async kernelTimes(): Promise<Map<string, { ns: number; count: number }>> {
    const p = this.profiler;
    if (!p) throw new PocketLMError('kernelTimes() needs profile(true) first');
    this.submit();
    await Promise.all(p.pending);
    p.pending = [];
    return new Map(p.totals);
  }

  /** Record one dispatch: params into the next uniform slot, a cached bind group, the grid. */
  private dispatch(kernel: Kernel, params: ArrayLike<number>, floatAt: number[], tensors: (GpuTensor | undefined)[], groups: [number, number?, number?]): void {
    if (this.slot === SLOTS || (this.profiler && this.profiler.kernels.length === PROFILED_PER_SUBMIT)) this.submit();
    const offset = this.slot++ * SLOT;
    const u32 = new Uint32Array(this.staging, offset, SLOT / 4);
    const f32 = new Float32Array(this.staging, offset, SLOT / 4);
    u32.fill(0); // (fields a dispatch leaves out read as 0, not as the slot's last user left them)
    for (let i = 0; i < params.length; i++) {
      if (floatAt.includes(i)) f32[i] = params[i]!;
      else u32[i] = params[i]!;
    }
    const key = `${kernel}:${tensors.map((t) => t?.id ?? '-').join(',')}`;
    let bg = this.bindGroups.get(key);
    if (!bg) {
      // Each generation allocates new state tensors, so old keys go stale: a bounded cache lets their
      // bind groups (and the buffers they hold) go, while a step's few hundred stay cached.
      if (this.bindGroups.size >= MAX_BIND_GROUPS) this.bindGroups.clear();
      bg = this.gpu.createBindGroup({
        layout: this.pipeline(kernel).layout,
        entries: [{ binding: 0, resource: { buffer: this.params, size: SLOT } }, ...tensors.flatMap((t, i) => (t ? [{ binding: i + 1, resource: { buffer: t.buffer } }] : []))],
      });
      this.bindGroups.set(key, bg);
    }
    this.encoder ??= this.gpu.createCommandEncoder();
    if (this.profiler) {
      // One pass per dispatch, with a timestamp at its start and end.
      const i = this.profiler.kernels.push(kernel) - 1;
      this.pass?.end();
      this.pass = this.encoder.beginComputePass({ timestampWrites: { querySet: this.profiler.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
    }
    this.pass ??= this.encoder.beginComputePass();
    this.pass.setPipeline(this.pipeline(kernel).pipeline);
    this.pass.setBindGroup(0, bg, [offset]);
    this.pass.dispatchWorkgroups(groups[0], groups[1] ?? 1, groups[2] ?? 1);
    if (this.profiler) {
      this.pass.end();
      this.pass = undefined;
    }
    this.counters.dispatches++;
  }

  /**
   * Before a profiled submit: copy its timestamps out; the returned function, called after the
   * submit, reads them back and adds them to the totals (asynchronously).
   */
  private collectTimes(encoder: GPUCommandEncoder): () => void {
    const p = this.profiler!;
    const kernels = p.kernels;
    p.kernels = [];
    if (kernels.length === 0) return () => {};
    const size = kernels.length * 16;
    encoder.resolveQuerySet(p.querySet, 0, kernels.length * 2, p.resolve, 0);
    const rb = this.gpu.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.copyBufferToBuffer(p.resolve, 0, rb, 0, size);
    return () => p.pending.push(
      (async () => {
        await rb.mapAsync(GPUMapMode.READ);
        const t = new BigUint64Array(rb.getMappedRange());
        kernels.forEach((k, i) => {
          const entry = p.totals.get(k) ?? { ns: 0, count: 0 };
          entry.ns += Number(t[2 * i + 1]! - t[2 * i]!);
          entry.count++;
          p.totals.set(k, entry);
        });
        rb.destroy();
      })(),
    );
  }

  /** Upload the parameters and submit what was recorded; `then` may add copies after the pass. */
  private submit(then?: (encoder: GPUCommandEncoder) => void): void {
    if (!this.encoder) {
      this.encoder = this.gpu.createCommandEncoder();
    }
    this.pass?.end();
    const afterSubmit = this.profiler ? this.collectTimes(this.encoder) : undefined;
    then?.(this.encoder);
    if (this.slot > 0) this.gpu.queue.writeBuffer(this.params, 0, this.staging, 0, this.slot * SLOT);
    this.gpu.queue.submit([this.encoder.finish()]);
    afterSubmit?.();
    this.counters.submits++;
    this.encoder = undefined;
    this.pass = undefined;
    this.slot = 0;
  }

  /** A 1-D grid of 64-thread groups covering `length`, split over y past 65535 groups. */
  private grid1(length: number): [number, number] {
    const groups = Math.max(1, Math.ceil(length / 64));
    return groups <= MAX_GROUPS ? [groups, 1] : [MAX_GROUPS, Math.ceil(groups / MAX_GROUPS)];
  }

  embed(out: GpuTensor, table: GpuTensor, tokens: readonly number[], dim: number, o: EmbedOptions = {}): void {
    // The token ids travel in the uniform parameters, 32 per dispatch.
    for (let t0 = 0; t0 < tokens.length; t0 += 32) this.embed32(out, t0, table, tokens.slice(t0, t0 + 32), dim, o);
  }
  private embed32(out: GpuTensor, dst0: number, table: GpuTensor, tokens: readonly number[], dim: number, o: EmbedOptions): void {
    // A table's rows: its length over the row width (in u32 words for a quantized one).
    const rowLength = table.quant === undefined ? dim : (dim / QUANT_FORMATS[table.quant].blockSize) * QUANT_FORMATS[table.quant].gpuBlockWords;
    for (const part of table.parts ?? [{ tensor: table, row0: 0, rows: table.length / rowLength }]) {
      if (!tokens.some((t) => t >= part.row0 && t < part.row0 + part.rows)) continue;
      if (table.quant !== undefined) {
        // matmul-quant.wgsl's gather reads the quantized rows; its x binding is unused.
        const p = [dim, dim, tokens.length, o.accumulate ? 1 : 0, part.rows, part.row0, o.scale ?? 1, dst0, 0, 0, 0, 0, ...tokens]; // (tokens at 12: Params' 16-byte aligned array)
        this.dispatch(`${QUANT_FILES[table.quant]}-gather`, p, [6], [part.tensor, this.resultTensor, out], [Math.ceil(dim / 256), tokens.length]);
        continue;
      }
      const p = [dim, tokens.length, part.row0, part.rows, o.scale ?? 1, o.accumulate ? 1 : 0, dst0, 0, ...tokens];
      this.dispatch(table.half ? 'embedding-f16' : 'embedding', p, [4], [part.tensor, out], [Math.ceil(dim / 64), tokens.length]);
    }
  }
  rmsnorm(out: GpuTensor, x: GpuTensor, w: GpuTensor, dim: number, eps: number, n: number): void {
    // A storage buffer cannot be bound for reading and writing at once: in place goes through scratch.
    const dst = out === x ? this.inPlace(dim * n) : out;
    this.dispatch('rmsnorm', [dim, n, eps, 0], [2], [x, w, dst], [n]);
    if (dst !== out) this.copyRows(out, 0, dst, 0, n, dim);
  }
  rmsnormAdd(out: GpuTensor, x: GpuTensor, w: GpuTensor, dim: number, eps: number, n: number, sum: GpuTensor): void {
    if (out === x || sum === x || sum === out) throw new PocketLMError('rmsnormAdd: out, x and sum must be three buffers');
    this.dispatch('rmsnorm-add', [dim, n, eps, 0], [2], [x, w, out, sum], [n]);
  }
  private inPlaceScratch?: GpuTensor;
  /** Scratch of at least `length` floats for a stage asked to work in place. */
  private inPlace(length: number): GpuTensor {
    if (!this.inPlaceScratch || this.inPlaceScratch.length < length) this.inPlaceScratch = this.scratch(length);
    return this.inPlaceScratch;
  }
  /** Decode products take a preceding RMSNorm into their first pass (MatmulOp.norm; kernels/matmul-norm.wgsl). */
  readonly fusesNorm = true;

  /** Whether a decode product of `w` can take RMSNorm in (the _norm entry points): a whole matrix. */
  private normFuses(w: GpuTensor, n: number, cols: number): boolean {
    return n === 1 && cols <= NORM_COLS && !w.parts;
  }
  /**
   * A _norm entry point for w's type and its grid for `rows` rows: the format's (a row per invocation),
   * matmul.wgsl's (the same) or, with the subgroup matvec, matmul-subgroup.wgsl's (a row per workgroup).
   */
  private normKernel(w: GpuTensor, entry: 'main_norm' | 'qkv_norm' | 'gated_norm', rows: number): { kernel: Kernel; grid: [number, number, number] } {
    const groups = Math.ceil(rows / 64);
    const perInvocation: [number, number, number] = [Math.min(groups, MAX_GROUPS), 1, Math.ceil(groups / MAX_GROUPS)];
    if (w.quant !== undefined) return { kernel: `${QUANT_FILES[w.quant]}-${entry}`, grid: perInvocation };
    const name = { main_norm: 'norm', qkv_norm: 'qkv-norm', gated_norm: 'gated-norm' }[entry];
    if (this.matvec === 'subgroup') return { kernel: `matmul-subgroup-${name}${w.half ? '-f16' : ''}` as Kernel, grid: [Math.min(rows, MAX_GROUPS), Math.ceil(rows / MAX_GROUPS), 1] };
    return { kernel: `matmul-${name}${w.half ? '-f16' : ''}` as Kernel, grid: perInvocation };
  }

  /** matmul-tiled.wgsl's grid: one workgroup per (8 x prefillTile) block of rows and inputs. */
  private tiledGrid(rows: number, n: number): [number, number] {
    return [Math.ceil(rows / (8 * this.prefillTile[0])), Math.ceil(n / (8 * this.prefillTile[1]))];
  }

  matmul(ops: MatmulOp<GpuTensor>[]): void {
    for (let o of ops) {
      // Parts still to add to out are folded into a decode product accumulating into it, else added first.
      if (o.parts && (o.n !== 1 || !o.accumulate || o.w.parts || o.norm?.parts)) {
        this.addParts(o.out, o.parts, o.rows);
        o = { ...o, parts: undefined };
      }
      if (o.norm && this.normFuses(o.w, o.n, o.cols)) {
        const nm = o.norm;
        const params = [o.rows, o.cols, 1, o.accumulate ? 1 : 0, o.rows, 0, nm.eps, 0, nm.parts?.count ?? 0, o.parts?.count ?? 0];
        const { kernel, grid } = this.normKernel(o.w, 'main_norm', o.rows);
        this.dispatch(kernel, params, [6], [o.w, o.x, o.out, this.resultTensor, nm.w, nm.out, this.resultTensor, (nm.parts ?? o.parts)?.t ?? this.resultTensor], grid);
        continue;
      }
      if (o.norm) {
        this.rmsnorm(o.norm.out, this.withParts(o.x, o.norm.parts, o.cols), o.norm.w, o.cols, o.norm.eps, o.n);
        o = { ...o, x: o.norm.out, norm: undefined };
      }
      for (const part of o.w.parts ?? [{ tensor: o.w, row0: 0, rows: o.rows }]) {
        const params = [part.rows, o.cols, o.n, o.accumulate ? 1 : 0, o.rows, part.row0, 0, 0, 0, o.parts?.count ?? 0];
        const groups = Math.ceil(part.rows / 64);
        const w = part.tensor;
        const bound = [w, o.x, o.out, undefined, undefined, undefined, undefined, o.parts?.t ?? this.resultTensor];
        if (w.quant !== undefined) {
          const file = QUANT_FILES[w.quant];
          if (o.n >= TILED_FROM) this.dispatch(`${file}-tiled`, params, [], bound, this.tiledGrid(part.rows, o.n));
          else this.dispatch(`${file}-main`, params, [], bound, [Math.min(groups, MAX_GROUPS), Math.ceil(o.n / 4), Math.ceil(groups / MAX_GROUPS)]);
          continue;
        }
        if (o.n >= TILED_FROM) this.dispatch(w.half ? 'matmul-tiled-f16' : 'matmul-tiled', params, [], bound, this.tiledGrid(part.rows, o.n));
        else if (o.n === 1 && this.matvec === 'subgroup') this.dispatch(w.half ? 'matmul-subgroup-f16' : 'matmul-subgroup', params, [], bound, [Math.min(part.rows, MAX_GROUPS), Math.ceil(part.rows / MAX_GROUPS)]);
        else this.dispatch(w.half ? 'matmul-f16' : 'matmul', params, [], bound, [Math.min(groups, MAX_GROUPS), Math.ceil(o.n / 4), Math.ceil(groups / MAX_GROUPS)]);
      }
    }
    for (const o of ops) if (o.bias) this.dispatch('add', [o.n * o.rows, o.rows, 0, 0], [], [o.bias, o.out], this.grid1(o.n * o.rows));
  }
  /** The frequencies of p on the GPU (made once per parameter set); without p a placeholder binding. */
  private frequencies(p: RopeParams | undefined): GpuTensor {
    if (!p) return this.resultTensor;
    let t = this.ropeFreqs.get(p);
    if (!t) this.ropeFreqs.set(p, (t = this.weight(Float32Array.from(ropeFrequencies(p)))));
    return t;
  }
  rope(x: GpuTensor, nHeads: number, start: number, n: number, p: RopeParams, row0 = 0): void {
    const pairs = nHeads * (p.ropeDims / 2);
    this.dispatch('rope', [nHeads, p.headDim, p.ropeDims, start, p.style === 'neox' ? 1 : 0, p.attnFactor ?? 1, row0, 0], [5], [x, this.frequencies(p)], [Math.ceil(pairs / 64), n]);
  }
  ropeCache(q: GpuTensor, k: GpuTensor, v: GpuTensor, kCache: GpuTensor, vCache: GpuTensor, nHeads: number, nKvHeads: number, headDim: number, start: number, n: number, p: RopeParams | undefined, row0 = 0): void {
    const items = (nHeads + 2 * nKvHeads) * (headDim / 2);
    const params = [nHeads, headDim, p?.ropeDims ?? 0, start, p?.style === 'neox' ? 1 : 0, p?.attnFactor ?? 1, row0, nKvHeads];
    this.dispatch(kCache.half ? 'rope-cache-f16' : 'rope-cache', params, [5], [q, this.frequencies(p), k, v, kCache, vCache], [Math.ceil(items / 64), n]);
  }
  copyRows(dst: GpuTensor, dstRow: number, src: GpuTensor, srcRow: number, count: number, width: number): void {
    this.dispatch(dst.half ? 'kv-cache-f16' : 'kv-cache', [width, count, srcRow, dstRow], [], [src, dst], [Math.ceil(width / 64), count]);
  }
  /** attention.wgsl's fresh step holds a head in 64 vec4s. */
  takesRopeAttention(headDim: number): boolean {
    return headDim % 4 === 0 && headDim <= 256;
  }
  /**
   * One decode row from projectQKV's packed [q | k | v]: biases, q/k norms, RoPE, the cache writes and
   * attention in one dispatch (attention.wgsl's fresh step).
   */
  ropeAttention(out: GpuTensor, qkv: GpuTensor, kCache: GpuTensor, vCache: GpuTensor, start: number, s: AttentionShape, p: RopeParams | undefined, extra: AttentionExtras<GpuTensor> = {}, project?: AttentionProjection<GpuTensor>): void {
    if (!this.takesRopeAttention(s.headDim)) throw new PocketLMError(`ropeAttention: heads of ${s.headDim} (it takes multiples of 4 up to 256; see takesRopeAttention)`);
    if (!extra.qNorm !== !extra.kNorm) throw new PocketLMError('ropeAttention: q and k norms come together');
    if (project && !this.projectsAttention(project.w, s)) throw new PocketLMError('ropeAttention: this projection cannot be folded in here (see projectsAttention)');
    // The biases [q | k | v] and the q and k norm weights, in one buffer (attention.wgsl's extras).
    const packed = [...(extra.bias ?? []), ...(extra.qNorm && extra.kNorm ? [extra.qNorm.w, extra.kNorm.w] : [])];
    const extras = packed.length ? this.packed(packed, s.headDim) : undefined;
    const normAt = extra.bias ? (s.nHeads + 2 * s.nKvHeads) * s.headDim : 0;
    this.attend(out, qkv, kCache, vCache, 1, start, s, 0, { rope: p, extras, biased: !!extra.bias, normed: !!extra.qNorm, normAt, eps: [extra.qNorm?.eps ?? 0, extra.kNorm?.eps ?? 0], project });
  }
  /**
   * Whether ropeAttention takes Wo's product in (attention-out.wgsl): on this adapter (projectAttention),
   * for a whole matrix and heads it takes. Past one chunk of context the split pass comes first and the
   * combine pass projects.
   */
  projectsAttention(w: GpuTensor, s: AttentionShape): boolean {
    return this.projectAttention && !w.parts && this.takesRopeAttention(s.headDim);
  }
  /** x (one row of `width`) += parts' rows, in order (add.wgsl's parts). */
  addParts(x: GpuTensor, parts: PendingParts<GpuTensor>, width: number): void {
    this.dispatch('add-parts', [width, parts.count, 0, 0], [], [parts.t, x], this.grid1(width));
  }
  private partsScratch?: GpuTensor;
  /** x, or with parts a scratch copy of x (one row) with them added: for a norm that cannot fold them in. */
  private withParts(x: GpuTensor, parts: PendingParts<GpuTensor> | undefined, width: number): GpuTensor {
    if (!parts) return x;
    if (!this.partsScratch || this.partsScratch.length < width) this.partsScratch = this.scratch(width);
    this.copyRows(this.partsScratch, 0, x, 0, 1, width);
    this.addParts(this.partsScratch, parts, width);
    return this.partsScratch;
  }
  /** Tensors of whole rows of `width` one after another in one buffer (made once, by row copies). */
  private packed(parts: readonly GpuTensor[], width: number): GpuTensor {
    const key = parts.map((t) => t.id).join(',');
    let t = this.packedExtras.get(key);
    if (!t) {
      t = this.scratch(parts.reduce((n, x) => n + x.length, 0));
      let row = 0;
      for (const x of parts) {
        this.copyRows(t, row, x, 0, x.length / width, width);
        row += x.length / width;
      }
      this.packedExtras.set(key, t);
    }
    return t;
  }
  attention(out: GpuTensor, q: GpuTensor, kCache: GpuTensor, vCache: GpuTensor, n: number, start: number, s: AttentionShape, row0 = 0): void {
    this.attend(out, q, kCache, vCache, n, start, s, row0);
  }
  /** attention(), or with `fresh` a fresh decode step (ropeAttention): q is then the packed row. */
  private attend(out: GpuTensor, q: GpuTensor, kCache: GpuTensor, vCache: GpuTensor, n: number, start: number, s: AttentionShape, row0 = 0, fresh?: { rope: RopeParams | undefined; extras?: GpuTensor; biased: boolean; normed: boolean; normAt: number; eps: [number, number]; project?: AttentionProjection<GpuTensor> }): void {
    const ctx = kCache.length / (s.nKvHeads * s.headDim);
    const prefill = n >= ATTENTION_PREFILL_FROM && s.headDim <= 128; // (workgroup memory only, no scratch)
    if (!prefill && n > 32 && s.causal !== false) {
      // The scores scratch holds [n][nHeads][ctx]: causal rows go 32 at a time (each sees its own positions).
      for (let r = 0; r < n; r += 32) this.attend(out, q, kCache, vCache, Math.min(32, n - r), start + r, s, row0 + r);
      return;
    }
    const p = fresh?.rope;
    // Split-K once the context outgrows one chunk: (chunk, head, row) workgroups instead of (head, row).
    const chunks = start + n > ATTENTION_CHUNK ? Math.ceil((start + n) / ATTENTION_CHUNK) : 0;
    const need = prefill ? 1 : Math.max(Math.max(32, n) * s.nHeads * ctx, n * s.nHeads * chunks * (s.headDim + 2));
    if (!this.scores || this.scores.length < need) this.scores = this.scratch(need);
    const rope = [p?.ropeDims ?? 0, p?.style === 'neox' ? 1 : 0, p?.attnFactor ?? 1, fresh ? 1 : 0, fresh?.biased ? 1 : 0, fresh?.normed ? 1 : 0, ...(fresh?.eps ?? [0, 0]), fresh?.normAt ?? 0];
    const wo = fresh?.project;
    const params = [s.nHeads, s.nKvHeads, s.headDim, start, ctx, s.scale ?? 1 / Math.sqrt(s.headDim), chunks, n, s.softcap ?? 0, s.window ?? 0, row0, s.causal === false ? 1 : 0, ...rope, wo?.rows ?? 0];
    const floats = [5, 8, 14, 18, 19];
    // (the fresh step's extras and Wo: placeholders where absent; unread)
    const bound = [q, kCache, vCache, this.scores, out, this.frequencies(p), fresh?.extras ?? this.resultTensor, wo?.w ?? this.resultTensor];
    if (wo) {
      // attention-out.wgsl: the heads times Wo's slices, as per-head rows in out.
      const file: WoFile = wo.w.quant !== undefined ? QUANT_FILES[wo.w.quant] : wo.w.half ? 'dense-f16' : 'dense-f32';
      if (chunks === 0) return this.dispatch(`attention-out${kCache.half ? '-f16' : ''}:${file}`, params, floats, bound, [s.nHeads, n]);
      this.dispatch(kCache.half ? 'attention-split-f16' : 'attention-split', params, floats, bound, [chunks, s.nHeads, n]);
      return this.dispatch(`attention-combine-out:${file}`, params, floats, bound, [s.nHeads, n]);
    }
    if (prefill) return this.dispatch(kCache.half ? 'attention-prefill-f16' : 'attention-prefill', params, floats, bound, [s.nHeads, Math.ceil(n / (16 * this.attentionRows))]);
    if (chunks === 0) return this.dispatch(kCache.half ? 'attention-f16' : 'attention', params, floats, bound, [s.nHeads, n]);
    this.dispatch(kCache.half ? 'attention-split-f16' : 'attention-split', params, floats, bound, [chunks, s.nHeads, n]);
    // combine reads only the partials (f32), so one pipeline serves both cache types: a bind group
    // layout says "read-only storage", not the element type.
    this.dispatch('attention-combine', params, floats, bound, [s.nHeads, n]);
  }
  affine(out: GpuTensor, x: GpuTensor, w: GpuTensor, b: GpuTensor, dim: number, n: number): void {
    const dst = out === x ? this.inPlace(dim * n) : out;
    this.dispatch('affine', [dim, n, 0, 0], [], [x, w, b, dst], [n]);
    if (dst !== out) this.copyRows(out, 0, dst, 0, n, dim);
  }
  layernorm(out: GpuTensor, x: GpuTensor, w: GpuTensor, b: GpuTensor, dim: number, eps: number, n: number): void {
    const dst = out === x ? this.inPlace(dim * n) : out;
    this.dispatch('layernorm', [dim, n, eps, 0], [2], [x, w, b, dst], [n]);
    if (dst !== out) this.copyRows(out, 0, dst, 0, n, dim);
  }
  softmax(x: GpuTensor, length: number, n: number): void {
    this.dispatch('softmax', [length, n, 0, 0], [], [x], [n]);
  }
  activate(x: GpuTensor, length: number, act: Activation): void {
    // ffn.wgsl's layout binds `up` too; these entries do not read it, so any other buffer will do.
    this.dispatch(act, [length, 0, 0, 0], [], [x, this.resultTensor], this.grid1(length));
  }
  softcap(x: GpuTensor, length: number, cap: number): void {
    this.dispatch('softcap', [length, cap, 0, 0], [1], [x, this.resultTensor], this.grid1(length));
  }
  add(out: GpuTensor, x: GpuTensor, length: number): void {
    this.dispatch('add', [length, length, 0, 0], [], [x, out], this.grid1(length));
  }
  /**
   * Decode's q, k and v projections of rmsnorm(x) in one pass (qkv_norm; matmul-subgroup.wgsl's with
   * the subgroup matvec), into out = [q | k | v], when the three matrices are whole and q and k alike
   * (a V of another type or format takes a second pass, main_norm, into the same row); false (nothing
   * done) otherwise.
   */
  projectQKV(out: GpuTensor, wq: GpuTensor, wk: GpuTensor, wv: GpuTensor, x: GpuTensor, qRows: number, kvRows: number, cols: number, norm: NormFusion<GpuTensor>): boolean {
    if (![wq, wk, wv].every((w) => this.normFuses(w, 1, cols)) || wk.quant !== wq.quant || wk.half !== wq.half) return false;
    // A V of another format (Q4_K_M's Q6_K attn_v beside Q4_K q and k) is a second pass into the same buffer.
    const sameV = wv.quant === wq.quant && wv.half === wq.half;
    const rows = qRows + (sameV ? 2 : 1) * kvRows;
    const qkv = this.normKernel(wq, 'qkv_norm', rows);
    const parts = norm.parts?.t ?? this.resultTensor;
    this.dispatch(qkv.kernel, [rows, cols, 1, 0, qRows, 0, norm.eps, kvRows, norm.parts?.count ?? 0, 0], [6], [wq, x, out, wk, norm.w, norm.out, sameV ? wv : wk, parts], qkv.grid);
    if (sameV) return true;
    const v = this.normKernel(wv, 'main_norm', kvRows);
    this.dispatch(v.kernel, [kvRows, cols, 1, 0, qRows + 2 * kvRows, qRows + kvRows, norm.eps, 0, norm.parts?.count ?? 0, 0], [6], [wv, x, out, this.resultTensor, norm.w, norm.out, this.resultTensor, parts], v.grid);
    return true;
  }

  gatedMatmul(out: GpuTensor, wGate: GpuTensor, wUp: GpuTensor, x: GpuTensor, up: GpuTensor, n: number, rows: number, cols: number, act: GateActivation = 'silu', norm?: NormFusion<GpuTensor>): void {
    const a = act === 'gelu' ? 1 : 0;
    if (norm && this.normFuses(wGate, n, cols) && !wUp.parts && wGate.quant === wUp.quant && wGate.half === wUp.half) {
      // (quantized gated_norm binds no Wv; matmul.wgsl's and matmul-subgroup.wgsl's bind it, unread)
      const { kernel, grid } = this.normKernel(wGate, 'gated_norm', rows);
      const bound = [wGate, x, out, wUp, norm.w, norm.out, wGate.quant === undefined ? this.resultTensor : undefined, norm.parts?.t ?? this.resultTensor];
      return this.dispatch(kernel, [rows, cols, 1, 0, rows, 0, norm.eps, a, norm.parts?.count ?? 0, 0], [6], bound, grid);
    }
    if (norm) {
      this.rmsnorm(norm.out, this.withParts(x, norm.parts, cols), norm.w, cols, norm.eps, n);
      x = norm.out;
    }
    // One pass for decode when both matrices are whole and alike (same quantized format, or f32/f16
    // with the row-per-invocation matvec); otherwise two products and SwiGLU.
    if (n === 1 && !wGate.parts && !wUp.parts && wGate.quant !== undefined && wGate.quant === wUp.quant) {
      const groups = Math.ceil(rows / 64);
      this.dispatch(`${QUANT_FILES[wGate.quant]}-gated`, [rows, cols, 1, 0, rows, 0, 0, a], [], [wGate, x, out, wUp], [Math.min(groups, MAX_GROUPS), 1, Math.ceil(groups / MAX_GROUPS)]);
      return;
    }
    if (n === 1 && this.matvec === 'rows' && !wGate.parts && !wUp.parts && wGate.quant === undefined && wUp.quant === undefined && wGate.half === wUp.half) {
      const groups = Math.ceil(rows / 64);
      this.dispatch(wGate.half ? 'matmul-gated-f16' : 'matmul-gated', [rows, cols, 1, 0, rows, 0, 0, a], [], [wGate, x, out, wUp], [Math.min(groups, MAX_GROUPS), 1, Math.ceil(groups / MAX_GROUPS)]);
      return;
    }
    this.matmul([{ out, w: wGate, x, n, rows, cols }, { out: up, w: wUp, x, n, rows, cols }]);
    this.gated(out, up, n * rows, act);
  }
  gated(gate: GpuTensor, up: GpuTensor, length: number, act: GateActivation): void {
    this.dispatch(act === 'gelu' ? 'geglu' : 'ffn', [length, 0, 0, 0], [], [gate, up], this.grid1(length));
  }

  /** Copy `size` bytes of `src` out after the recorded work, and return them once the GPU is done. */
  private async readBytes(src: GPUBuffer, size: number): Promise<ArrayBuffer> {
    const free = this.readback.get(size) ?? [];
    this.readback.set(size, free);
    const rb = free.pop() ?? this.gpu.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.check();
    this.submit((enc) => enc.copyBufferToBuffer(src, 0, rb, 0, size));
    try {
      try {
        await rb.mapAsync(GPUMapMode.READ);
      } catch (e) {
        // A map fails when the device is gone; say so rather than "OperationError".
        await Promise.race([this.gpu.lost, new Promise((r) => setTimeout(r, 50))]);
        this.check();
        throw new DeviceLostError(`WebGPU read failed: ${(e as Error).message}`);
      }
      const bytes = rb.getMappedRange(0, size).slice(0);
      rb.unmap();
      free.push(rb);
      return bytes;
    } finally {
      this.check();
    }
  }

  private check(): void {
    if (this.lost) throw new DeviceLostError(`WebGPU ${this.lost}`);
    if (this.error === undefined) return;
    const { message, outOfMemory } = this.error;
    this.error = undefined;
    if (outOfMemory) throw new DeviceLostError(`WebGPU out of memory: ${message}`);
    throw new PocketLMError(`WebGPU error: ${message}`);
  }

  async read(src: GpuTensor, length: number): Promise<Float32Array> {
    return new Float32Array(await this.readBytes(src.buffer, Math.ceil((length * 4) / 16) * 16), 0, length);
  }

  async argmax(src: GpuTensor, offset: number, length: number): Promise<number> {
    this.dispatch('argmax', [offset, length, 0, 0], [], [src, this.resultTensor], [1]);
    const [index, nonFinite] = new Uint32Array(await this.readBytes(this.result, 16));
    return nonFinite ? -1 : index!;
  }

  async topk(src: GpuTensor, offset: number, length: number, k: number): Promise<Candidates> {
    if (k > TOPK_MAX || k >= length) {
      const values = (await this.read(src, offset + length)).subarray(offset);
      return values.every(Number.isFinite) ? sortedCandidates(values, k) : { ids: [], logits: [] };
    }
    // Each chunk's best k on the GPU, then the chunks' lists merged here.
    const chunks = Math.ceil(length / TOPK_CHUNK);
    const words = 2 * chunks * k;
    if (!this.topkOut || this.topkOut.length < words + 1) this.topkOut = this.scratch(words + 1);
    // the non-finite flag after the pairs, cleared before each call
    this.gpu.queue.writeBuffer(this.topkOut.buffer, words * 4, new Uint32Array(1));
    this.dispatch('topk', [offset, length, k, words], [], [src, this.topkOut], [chunks]);
    const all = new Uint32Array(await this.readBytes(this.topkOut.buffer, Math.ceil(((words + 1) * 4) / 16) * 16), 0, words + 1);
    if (all[words]) return { ids: [], logits: [] };
    const pairs = all.subarray(0, words);
    const values = new Float32Array(pairs.buffer, 0, words);
    const found: number[] = [];
    for (let i = 0; i < words; i += 2) if (pairs[i] !== 0xffffffff) found.push(i);
    found.sort((a, b) => values[b + 1]! - values[a + 1]! || pairs[a]! - pairs[b]!);
    const best = found.slice(0, k);
    return { ids: best.map((i) => pairs[i]!), logits: best.map((i) => values[i + 1]!) };
  }

  dispose(): void {
    this.gpu.destroy();
  }
}

/** The adapter's name as people know it: vendor, architecture and description. */
export function adapterName(info: GPUAdapterInfo): string {
  return [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unknown adapter';
}

/**
 * A software rasterizer posing as a GPU (Mesa llvmpipe/lavapipe, SwiftShader, WARP): it runs on the
 * CPU cores, where pocketlm's own CPU path is many times faster, so `--device auto` passes it over.
 */
export function isSoftwareAdapter(info: GPUAdapterInfo & { isFallbackAdapter?: boolean }): boolean {
  return info.isFallbackAdapter === true || /llvmpipe|lavapipe|swiftshader|\bwarp\b|software/i.test(adapterName(info));
}

export interface WebGPUOptions {
  /**
   * Decode's matrix-vector kernel: 'subgroup' (a row per workgroup, coalesced reads, subgroupAdd; the
   * default on hardware adapters with the subgroups feature) or 'rows' (a row per invocation; the
   * default on software adapters, where it is faster, and without subgroups).
   */
  matvec?: 'rows' | 'subgroup';
  /** Split weights into row blocks of at most this many bytes (default: the adapter's maxStorageBufferBindingSize). */
  maxBindingBytes?: number;
  /** Keep f16 weights in f16 when the adapter has shader-f16 (default true). */
  f16?: boolean;
  /** Refuse software adapters (a PocketLMError naming the adapter), as `--device auto` does. */
  hardwareOnly?: boolean;
  /**
   * Prefill's tiled product: the rows x inputs one invocation computes, each 4, 8, 12 or 16. Default
   * [8, 4] on hardware adapters (32 running sums an invocation, within any GPU's registers) and
   * [16, 16] on software adapters (llvmpipe/lavapipe, SwiftShader), where each load from memory costs
   * several CPU vector instructions and a sum spilled to the stack costs one: 3x-3.5x the [8, 4]
   * kernel's speed on lavapipe (docs/webgpu.md).
   */
  prefillTile?: PrefillTile;
  /**
   * Query rows one invocation of the prefill attention holds, 1, 2 or 4: default 1 on hardware
   * adapters, 4 on software ones (each key and value read from workgroup memory serves four rows).
   */
  attentionRows?: number;
  /**
   * Decode attention multiplies its heads by Wo itself (attention-out.wgsl: four passes a layer, not
   * five). Default true on hardware adapters, where a pass costs tens of microseconds; false on
   * software ones, where a pass costs little and the fused one ran slower (docs/webgpu.md).
   */
  projectAttention?: boolean;
}

/** Rows x inputs of one invocation's block in the tiled prefill product. */
export type PrefillTile = readonly [number, number];

/** A WebGPU backend on the default adapter; a typed error when there is none. */
export async function createWebGPUBackend(options: WebGPUOptions = {}): Promise<WebGPUBackend> {
  const gpu = await getGPU();
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new PocketLMError('no WebGPU adapter is available (in Node on Linux, install Mesa >= 23 Vulkan drivers; see DEVELOPERS.md)');
  if (options.hardwareOnly && isSoftwareAdapter(adapter.info)) throw new PocketLMError(`the only WebGPU adapter is a software renderer (${adapterName(adapter.info)}), slower than the CPU path`);
  const f16 = adapter.features.has('shader-f16') && options.f16 !== false;
  const features: GPUFeatureName[] = [];
  if (f16) features.push('shader-f16');
  const subgroups = adapter.features.has('subgroups' as GPUFeatureName);
  if (options.matvec === 'subgroup' && !subgroups) throw new PocketLMError(`matvec: 'subgroup' needs the subgroups feature, which ${adapterName(adapter.info)} lacks`);
  const matvec = options.matvec ?? (subgroups && !isSoftwareAdapter(adapter.info) ? 'subgroup' : 'rows');
  if (matvec === 'subgroup') features.push('subgroups' as GPUFeatureName);
  if (adapter.features.has('timestamp-query')) features.push('timestamp-query'); // for profile()
  const tile = options.prefillTile ?? (isSoftwareAdapter(adapter.info) ? [16, 16] : [8, 4]);
  if (tile.length !== 2 || !tile.every((v) => Number.isInteger(v) && v >= 4 && v <= 16 && v % 4 === 0)) throw new PocketLMError(`prefillTile: [${tile.join(', ')}] is not a tile; give rows and inputs per invocation, each 4, 8, 12 or 16 (e.g. [8, 4])`);
  const device = await adapter.requestDevice({
    requiredFeatures: features,
    requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxBufferSize: adapter.limits.maxBufferSize },
  });
  const sources = Object.fromEntries(await Promise.all((Object.keys(KERNEL_URLS) as KernelFile[]).map(async (k) => [k, await kernelSource(k)] as const))) as Record<KernelFile, string>;
  const maxBinding = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize, options.maxBindingBytes ?? Infinity);
  const attentionRows = options.attentionRows ?? (isSoftwareAdapter(adapter.info) ? 4 : 1);
  if (![1, 2, 4].includes(attentionRows)) throw new PocketLMError(`attentionRows: ${attentionRows} is not 1, 2 or 4 (query rows per invocation of the prefill attention)`);
  const projectAttention = options.projectAttention ?? !isSoftwareAdapter(adapter.info);
  return new WebGPUBackend(device, sources, adapterName(adapter.info), { instance: gpu, adapter }, f16, maxBinding, matvec, tile, attentionRows, projectAttention);
}
