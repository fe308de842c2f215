// A Hugging Face model folder, as files already in memory: config.json, the weights (model.safetensors,
// or model.safetensors.index.json and its shards), and the tokenizer (tokenizer.json with
// tokenizer_config.json, or GPT-2's vocab.json + merges.txt). Parsed and checked here; mapping its
// tensor names and config keys onto an architecture's GGUF form is that architecture's business
// (src/arch/<family>.ts, through src/arch/hf.ts).

import { ModelFormatError } from '../base/errors.js';
import type { RawTensor } from './model-file.js';
import { parseSafetensors, rawTensor } from './safetensors.js';
import { vocabFromGpt2Files, vocabFromTokenizerJson } from './tokenizer-json.js';
import type { Vocab } from './vocab.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;

export interface HFModel {
  /** The folder, for messages. */
  source: string;
  /** config.json. */
  config: Json;
  /** Tensors under their Hugging Face names, shapes in GGUF order (innermost first). */
  tensors: Map<string, RawTensor>;
  vocab: Vocab;
  /** sentence-transformers' pooling config (1_Pooling/config.json), when the folder has one. */
  pooling?: Json;
}

/** sentence-transformers' pooling module's config, in its subfolder. */
export const POOLING_CONFIG = '1_Pooling/config.json';

/** The files of a folder that a model is read from (the rest are left alone). */
export function hfFilesWanted(names: readonly string[]): string[] {
  const keep = new Set(['config.json', 'model.safetensors', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt', POOLING_CONFIG]);
  return names.filter((n) => keep.has(n) || /^model-\d+-of-\d+\.safetensors$/.test(n));
}

/** Does this folder listing look like a Hugging Face model? */
export function isHFFolder(names: readonly string[]): boolean {
  return names.includes('config.json') && (names.includes('model.safetensors') || names.includes('model.safetensors.index.json'));
}

function json(files: Map<string, Uint8Array>, name: string, source: string): Json {
  const bytes = files.get(name);
  if (!bytes) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new ModelFormatError(`${source}/${name}`, `not valid JSON (${(e as Error).message})`);
  }
}

/** The weight file names: model.safetensors, or the shards model.safetensors.index.json lists. */
export function hfWeightFiles(files: Map<string, Uint8Array>, source: string): string[] {
  if (files.has('model.safetensors')) return ['model.safetensors'];
  const index = json(files, 'model.safetensors.index.json', source);
  if (!index) throw new ModelFormatError(source, 'holds no model.safetensors or model.safetensors.index.json (pocketlm reads safetensors weights; convert .bin checkpoints with Hugging Face tools first)');
  const map = index.weight_map;
  if (typeof map !== 'object' || map === null) throw new ModelFormatError(`${source}/model.safetensors.index.json`, '"weight_map" is missing');
  const shards = [...new Set(Object.values<unknown>(map))];
  for (const s of shards)
    if (typeof s !== 'string' || !/^[\w.-]+\.safetensors$/.test(s) || s.includes('..')) throw new ModelFormatError(`${source}/model.safetensors.index.json`, `weight_map names ${JSON.stringify(s)}, not a .safetensors file in the folder`);
  return shards as string[];
}

export function readHFModel(files: Map<string, Uint8Array>, source: string): HFModel {
  const config = json(files, 'config.json', source);
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new ModelFormatError(`${source}/config.json`, 'missing, or not a JSON object');
  const tensors = new Map<string, RawTensor>();
  for (const name of hfWeightFiles(files, source)) {
    const bytes = files.get(name);
    if (!bytes) throw new ModelFormatError(source, `${name} is listed in model.safetensors.index.json but not in the folder`);
    for (const t of parseSafetensors(bytes, `${source}/${name}`).tensors) {
      if (tensors.has(t.name)) throw new ModelFormatError(source, `tensor "${t.name}" appears twice (in ${name} and an earlier shard)`);
      tensors.set(t.name, rawTensor(t, `${source}/${name}`));
    }
  }
  const tokenizerConfig = json(files, 'tokenizer_config.json', source) ?? {};
  const tokenizerJson = json(files, 'tokenizer.json', source);
  let vocab: Vocab;
  if (tokenizerJson) vocab = vocabFromTokenizerJson(tokenizerJson, tokenizerConfig, `${source}/tokenizer.json`);
  else if (files.has('vocab.json') && files.has('merges.txt'))
    vocab = vocabFromGpt2Files(json(files, 'vocab.json', source), new TextDecoder().decode(files.get('merges.txt')), tokenizerConfig, `${source}/vocab.json`);
  else throw new ModelFormatError(source, 'holds no tokenizer: pocketlm reads tokenizer.json (with tokenizer_config.json), or vocab.json + merges.txt');
  const pooling = json(files, POOLING_CONFIG, source);
  return { source, config, tensors, vocab, ...(pooling && typeof pooling === 'object' ? { pooling } : {}) };
}
