// pocketlm's public API.

export { loadModel, Model, type LoadOptions, type ModelSource, type Device } from './engine.js';
export { Generation, StopMatcher, type GenerateOptions, type GenerationStats, type StopReason } from './generate.js';
export { Sampler, SAMPLING_DEFAULTS, type SamplingOptions } from './sampling.js';
export { Tokenizer, StreamDecoder, type EncodeOptions } from './tokenizer.js';
export { TokenType, type Vocab } from './vocab.js';
export type { ModelConfig } from './config.js';
export type { RopeStyle, RopeParams } from './rope.js';
export { LlamaModel, LlamaState, type LlamaWeights, type LayerWeights } from './model.js';
export { parseGGUF, GGUFValueType, type GGUFFile, type GGUFTensorInfo, type GGUFValue } from './gguf.js';
export { encodeGGUF, serializeGGUF, gguf, type GGUFWriteInput, type GGUFWriteTensor } from './gguf-writer.js';
export { llama2cToGGUF } from './llama2c.js';
export { GGMLType, type Tensor } from './tensor.js';
export { PocketLMError, ModelFormatError, UnsupportedModelError, InvalidInputError, DownloadError, DeviceLostError } from './errors.js';
export { loadTokenizer, tokenizerFromBytes } from './load-tokenizer.js';
export { renderChat, chatTokens, type ChatMessage, type ChatTemplateOptions } from './chat.js';
export { type DecodeOptions } from './tokenizer.js';
export { quantizeModel, quantizePlan, QUANTIZE_TARGETS, type QuantizeTarget, type PlanEntry } from './quantize.js';
export { QUANT_FORMATS, quantizeMatrix, dequantizeMatrix, type QuantMatrix, type QuantType, type QuantFormat } from './quant.js';
export type { Backend, MatmulOp } from './backend.js';
export { CpuBackend } from './backend-cpu.js';
export { createWebGPUBackend, WebGPUBackend, isSoftwareAdapter, type WebGPUOptions } from './backend-webgpu.js';
