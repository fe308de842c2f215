// pocketlm's public API.

export { loadModel, Model, type LoadOptions, type ModelSource, type Device, type EmbedOptions } from './engine.js';
export type { BertConfig, Pooling } from './arch/bert.js';
export { hookPoints, pattern, surprisal, type Attribution, type Captured, type Patch, type RunOptions, type RunResult, type LensRow } from './inspect.js';
export { Generation, Sequence, StopMatcher, type GenerateOptions, type GenerationStats, type StopReason, type TokenLogprob } from './generate.js';
export { compileSchema, type JsonSchema } from './constrain/json.js';
export { Sampler, SAMPLING_DEFAULTS, type SamplingOptions } from './stages/sampling.js';
export { Tokenizer, StreamDecoder, type EncodeOptions } from './tokenizer/tokenizer.js';
export { TokenType, type Vocab } from './format/vocab.js';
export type { ModelConfig } from './arch/config.js';
export type { RopeStyle, RopeParams } from './stages/rope.js';
export { Transformer, State, Workspace, Forward, Hooks, MAX_BATCH, ENCODE_ROWS, type EncoderTask, type Architecture, type AttentionOptions, type Segment } from './arch/transformer.js';
export { ARCHITECTURES, architectureOf, buildTransformer, modelConfig, supportedArchitectures } from './arch/index.js';
export type { Linear, Norm, AttentionWeights, FfnWeights } from './arch/weights.js';
export { parseGGUF, GGUFValueType, type GGUFFile, type GGUFTensorInfo, type GGUFValue } from './format/gguf.js';
export { encodeGGUF, serializeGGUF, gguf, type GGUFWriteInput, type GGUFWriteTensor } from './format/gguf-writer.js';
export { llama2cToGGUF } from './format/llama2c.js';
export { GGMLType, type Tensor } from './base/tensor.js';
export { PocketLMError, ModelFormatError, UnsupportedModelError, InvalidInputError, DownloadError, DeviceLostError, NonFiniteError, OutOfMemoryError } from './base/errors.js';
export { loadTokenizer, tokenizerFromBytes } from './tokenizer/load.js';
export { renderChat, chatTokens, type ChatMessage, type ChatTemplateOptions } from './tokenizer/chat.js';
export { type DecodeOptions } from './tokenizer/tokenizer.js';
export { quantizeModel, quantizePlan, QUANTIZE_TARGETS, type QuantizeTarget, type PlanEntry } from './quant/quantize.js';
export { QUANT_FORMATS, quantizeMatrix, dequantizeMatrix, type QuantMatrix, type QuantType, type QuantFormat } from './quant/formats.js';
export type { Backend, MatmulOp } from './backend/backend.js';
export { CpuBackend } from './backend/cpu.js';
export { createWebGPUBackend, WebGPUBackend, isSoftwareAdapter, type WebGPUOptions, type PrefillTile } from './backend/webgpu.js';
