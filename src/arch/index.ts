// The architectures pocketlm runs, and the one step that turns a GGUF-form model file into a
// Transformer on a backend: pick the family by general.architecture, read its hyper-parameters,
// read and upload its weights. The registry imports the families; the families never import it.

import { ModelFormatError, UnsupportedModelError } from '../base/errors.js';
import type { Backend, Handle } from '../backend/backend.js';
import { metaString } from '../format/gguf.js';
import type { ModelFile } from '../format/model-file.js';
import type { ModelConfig } from './config.js';
import { llama } from './llama.js';
import { Transformer, type Architecture } from './transformer.js';
import { WeightReader } from './weights.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const ARCHITECTURES: readonly Architecture<any, any>[] = [llama];

/** Every GGUF general.architecture value pocketlm runs. */
export function supportedArchitectures(): string[] {
  return ARCHITECTURES.flatMap((a) => a.gguf);
}

/** The family that runs this file, or a typed error naming its architecture and the supported ones. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function architectureOf(file: ModelFile): Architecture<any, any> {
  const name = metaString(file, 'general.architecture');
  if (name === undefined) throw new ModelFormatError(file.source, 'metadata "general.architecture" is missing');
  const arch = ARCHITECTURES.find((a) => a.gguf.includes(name));
  if (!arch) throw new UnsupportedModelError(file.source, `unknown architecture "${name}"; pocketlm runs: ${supportedArchitectures().join(', ')}`);
  return arch;
}

/** The model's hyper-parameters (nothing uploaded): for `pocketlm info` and checks. */
export function modelConfig(file: ModelFile): ModelConfig {
  return architectureOf(file).config(file);
}

/** The model on `backend`: hyper-parameters checked, weights read and uploaded once. */
export function buildTransformer<T extends Handle>(file: ModelFile, backend: Backend<T>): Transformer<T> {
  const arch = architectureOf(file);
  const config = arch.config(file);
  const read = new WeightReader(file, backend);
  const weights = arch.weights(read, config);
  return new Transformer<T>(arch, config, weights, backend, read.allHalf);
}
