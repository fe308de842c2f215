// loadTokenizer(source): a Tokenizer from any file that holds one: a GGUF model or vocab file,
// a Hugging Face tokenizer.json (with tokenizer_config.json beside it when present), a folder holding
// those, or a llama2.c tokenizer .bin. In Node `source` may be a path; anywhere, a URL or bytes.

import { InvalidInputError, ModelFormatError } from '../base/errors.js';
import { parseGGUF } from '../format/gguf.js';
import { llama2cVocab } from '../format/llama2c.js';
import { isGGUF } from '../format/model-file.js';
import { Tokenizer } from './tokenizer.js';
import { vocabFromTokenizerJson } from '../format/tokenizer-json.js';
import { vocabFromMetadata } from '../format/vocab.js';

/** A tokenizer from bytes already in memory; `config` is tokenizer_config.json's text, if any. */
export function tokenizerFromBytes(bytes: Uint8Array, source: string, config?: string): Tokenizer {
  if (isGGUF(bytes)) return new Tokenizer(vocabFromMetadata(parseGGUF(bytes, source)), source);
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  if (bytes[i] === 0x7b /* { */) {
    const parse = (text: string, what: string) => {
      try {
        return JSON.parse(text);
      } catch (e) {
        throw new ModelFormatError(what, `not valid JSON (${(e as Error).message})`);
      }
    };
    return new Tokenizer(vocabFromTokenizerJson(parse(new TextDecoder().decode(bytes), source), config ? parse(config, 'tokenizer_config.json') : {}, source), source);
  }
  return new Tokenizer(llama2cVocab(bytes, source), source);
}

export async function loadTokenizer(source: string | URL | ArrayBuffer | Uint8Array): Promise<Tokenizer> {
  if (source instanceof Uint8Array) return tokenizerFromBytes(source, '<tokenizer bytes>');
  if (source instanceof ArrayBuffer) return tokenizerFromBytes(new Uint8Array(source), '<tokenizer bytes>');
  const text = String(source);
  if (/^(https?|blob|data):/.test(text)) {
    const res = await fetch(text);
    if (!res.ok) throw new InvalidInputError(`${text}: HTTP ${res.status} ${res.statusText}`);
    let config: string | undefined;
    if (/tokenizer\.json$/.test(new URL(text).pathname)) {
      const c = await fetch(text.replace(/tokenizer\.json$/, 'tokenizer_config.json')).catch(() => undefined);
      if (c?.ok) config = await c.text();
    }
    return tokenizerFromBytes(new Uint8Array(await res.arrayBuffer()), text, config);
  }
  const { existsSync, readFileSync, statSync } = await import('node:fs');
  const { join, dirname } = await import('node:path');
  let path = source instanceof URL ? source.pathname : text;
  if (!existsSync(path)) throw new InvalidInputError(`${path}: no such file`);
  if (statSync(path).isDirectory()) path = join(path, 'tokenizer.json');
  if (!existsSync(path)) throw new InvalidInputError(`${path}: no such file (a folder must hold tokenizer.json)`);
  const configPath = join(dirname(path), 'tokenizer_config.json');
  const config = path.endsWith('.json') && existsSync(configPath) ? readFileSync(configPath, 'utf8') : undefined;
  return tokenizerFromBytes(new Uint8Array(readFileSync(path)), path, config);
}
