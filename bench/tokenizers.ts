// Tokenizer speed: encode throughput (MB/s) for each tokenizer kind on ~1 MB of mixed-language text,
// beside @huggingface/tokenizers on the same tokenizer.json in the same run; and encode time against
// input length on pathological input (one character repeated), to show there is no super-linear blow-up.
//
//   npm run build && node dist/bench/tokenizers.js [--json OUT.json]

import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Tokenizer as HFTokenizer } from '@huggingface/tokenizers';
import { Bench } from 'tinybench';
import { loadTokenizer } from '../src/tokenizer/load.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHARED = resolve(process.env.POCKETLM_SHARED ?? join(ROOT, '..', 'shared'));

/** ~1 MB of text: English, German, Russian, Chinese, Japanese, Arabic, Hindi, emoji, digits, code. */
export function mixedText(bytes = 1_000_000): string {
  const para =
    'The quick brown fox jumps over the lazy dog. Once upon a time, in 2024, there were 1,234 apples. ' +
    'Der schnelle braune Fuchs springt über den faulen Hund. Äpfel und Birnen. ' +
    'Быстрая коричневая лиса прыгает через ленивую собаку. ' +
    '敏捷的棕色狐狸跳过了懒狗。日本語のテキストも少し。 مرحبا بالعالم. नमस्ते दुनिया। ' +
    'Emoji 🦙🚀 and code: for (let i = 0; i < n; i++) { sum += a[i]; }\n';
  let s = '';
  while (new TextEncoder().encode(s).length < bytes) s += para;
  return s;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { json: { type: 'string' } } });
  const text = mixedText();
  const mb = new TextEncoder().encode(text).length / 1e6;
  const json = (dir: string, f: string) => JSON.parse(readFileSync(join(SHARED, 'tokenizers', dir, f), 'utf8'));
  const cases = [
    { kind: 'SentencePiece BPE', name: 'Llama 2 (GGUF vocab)', ours: await loadTokenizer(join(SHARED, 'vocab', 'ggml-vocab-llama-spm.gguf')), hf: undefined },
    { kind: 'byte-level BPE', name: 'SmolLM2 (tokenizer.json)', ours: await loadTokenizer(join(SHARED, 'tokenizers', 'smollm2-135m-instruct')), hf: new HFTokenizer(json('smollm2-135m-instruct', 'tokenizer.json'), {}) },
    { kind: 'WordPiece', name: 'all-MiniLM-L6-v2 (tokenizer.json)', ours: await loadTokenizer(join(SHARED, 'tokenizers', 'all-MiniLM-L6-v2')), hf: new HFTokenizer(json('all-MiniLM-L6-v2', 'tokenizer.json'), json('all-MiniLM-L6-v2', 'tokenizer_config.json')) },
  ];
  const bench = new Bench({ iterations: 5, time: 0, warmupIterations: 1, warmupTime: 0 });
  for (const c of cases) {
    bench.add(`pocketlm ${c.name}`, () => void c.ours.encode(text, { parseSpecial: true }));
    const hf = c.hf;
    if (hf) bench.add(`@huggingface/tokenizers ${c.name}`, () => void hf.encode(text));
  }
  console.error(`encoding ${mb.toFixed(2)} MB, 5 timed runs each...`);
  await bench.run();
  const mbps = (name: string) => {
    const r = bench.tasks.find((t) => t.name === name)?.result;
    return r && r.state === 'completed' ? (mb * 1000) / r.latency.mean : undefined;
  };
  const lines = [
    `CPU: ${cpus()[0]?.model ?? 'unknown'}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}; ${mb.toFixed(2)} MB of mixed-language text, tinybench mean of 5 runs`,
    '',
    '| kind | tokenizer | pocketlm MB/s | @huggingface/tokenizers MB/s | ratio |',
    '|---|---|---:|---:|---:|',
  ];
  const rows = cases.map((c) => {
    const ours = mbps(`pocketlm ${c.name}`)!;
    const hf = mbps(`@huggingface/tokenizers ${c.name}`);
    lines.push(`| ${c.kind} | ${c.name} | ${ours.toFixed(2)} | ${hf ? hf.toFixed(2) : 'n/a (no tokenizer.json)'} | ${hf ? (ours / hf).toFixed(1) + 'x' : '-'} |`);
    return { kind: c.kind, name: c.name, oursMBps: ours, hfMBps: hf };
  });

  // Encode time against input length, one repeated character (the worst case for BPE merging).
  lines.push('', '| kind | input | 10 KB ms | 100 KB ms | 1 MB ms | 1 MB / 100 KB |', '|---|---|---:|---:|---:|---:|');
  const scaling: unknown[] = [];
  for (const c of cases)
    for (const ch of ['a', ' ', '日']) {
      const ms = [10_000, 100_000, 1_000_000].map((n) => {
        const s = ch.repeat(n / new TextEncoder().encode(ch).length);
        let best = Infinity;
        for (let k = 0; k < 3; k++) { const t0 = performance.now(); c.ours.encode(s); best = Math.min(best, performance.now() - t0); }
        return best;
      });
      lines.push(`| ${c.kind} | ${JSON.stringify(ch)} x N | ${ms[0]!.toFixed(1)} | ${ms[1]!.toFixed(1)} | ${ms[2]!.toFixed(1)} | ${(ms[2]! / ms[1]!).toFixed(1)}x |`);
      scaling.push({ kind: c.kind, char: ch, ms });
    }
  console.log(lines.join('\n'));
  if (values.json) writeFileSync(values.json, JSON.stringify({ date: new Date().toISOString(), mb, rows, scaling }, null, 2));
}

await main();
