// The architectures pocketlm runs, and the one step that turns a GGUF-form model file into a
// Transformer on a backend: pick the family by general.architecture, read its hyper-parameters,
// read and upload its weights. The registry imports the families; the families never import it.

import { ModelFormatError, UnsupportedModelError } from '../base/errors.js';
import type { Backend, Handle } from '../backend/backend.js';
import { metaString } from '../format/gguf.js';
import type { ModelFile } from '../format/model-file.js';
import type { HFModel } from '../format/hf.js';
import type { ModelConfig } from './config.js';
import { HFConverter, hfClass } from './hf.js';
import { bert } from './bert.js';
import { gemma } from './gemma.js';
import { gpt2 } from './gpt2.js';
import { gptneox } from './gptneox.js';
import { llama } from './llama.js';
import { mobilebert } from './mobilebert.js';
import { opt } from './opt.js';
import { phi } from './phi.js';
import { qwen } from './qwen.js';
import { Transformer, type Architecture } from './transformer.js';
import { WeightReader } from './weights.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const ARCHITECTURES: readonly Architecture<any, any>[] = [llama, qwen, gemma, phi, gpt2, gptneox, opt, bert, mobilebert];

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

/** A Hugging Face folder in the GGUF form, by the family whose mapping knows its model class. */
export function modelFileFromHF(hf: HFModel): ModelFile {
  const cls = hfClass(hf);
  const arch = ARCHITECTURES.find((a) => a.hf?.classes.includes(cls));
  if (!arch) throw new UnsupportedModelError(`${hf.source}/config.json`, `model class "${cls}" is not one pocketlm runs; it reads ${ARCHITECTURES.flatMap((a) => a.hf?.classes ?? []).join(', ')}`);
  const h = new HFConverter(hf);
  arch.hf!.convert(h);
  return h.finish();
}

/** The model on `backend`: hyper-parameters checked, weights read and uploaded once. */
export function buildTransformer<T extends Handle>(file: ModelFile, backend: Backend<T>): Transformer<T> {
  const arch = architectureOf(file);
  const config = arch.config(file);
  const read = new WeightReader(file, backend);
  const weights = arch.weights(read, config);
  return new Transformer<T>(arch, config, weights, backend, read.allHalf);
}
