// Tokenizer speed: encode throughput (MB/s) for each tokenizer kind on ~1 MB of mixed-language text,
// beside @huggingface/tokenizers on the same tokenizer.json in the same run; and encode time against
// input length (100 KB, 1 MB, 10 MB on one line) on hostile input (one character repeated, thousands
// of combining marks, random code points), to show there is no super-linear blow-up.
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

let randomCalls = 0;

/** Hostile one-line inputs of about `n` bytes of UTF-8. */
const HOSTILE: [string, (n: number) => string][] = [
  ['"a" x N', (n) => 'a'.repeat(n)],
  ['" " x N', (n) => ' '.repeat(n)],
  ['"日" x N', (n) => '日'.repeat(n / 3)],
  ['"a" + 9 combining acute accents, repeated', (n) => ('a' + '\u0301'.repeat(9)).repeat(n / 19)],
  ['random code points (BMP, no surrogates)', (n) => {
    // Different text on every call: the same text again would time the tokenizer's word cache.
    let x = (++randomCalls * 2654435761) >>> 0;
    const out = new Array<string>(Math.round(n / 3)); // almost all of them 3 bytes in UTF-8
    for (let i = 0; i < out.length; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const c = 0x21 + ((x >>> 8) % 0xd7d0); // U+0021..U+D7F0: letters, marks, symbols, CJK, Hangul
      out[i] = String.fromCharCode(c);
    }
    return out.join('');
  }],
];

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

  // Encode time against input length on one line, hostile inputs: one character repeated (the worst
  // case for BPE merging: a single pre-token), a letter with nine combining marks, random code points.
  // Linear time shows as a 10 MB / 1 MB ratio near 10.
  const scalingCases = [...cases, { kind: 'llama2.c', name: 'stories260K tok512.bin', ours: await loadTokenizer(join(SHARED, 'weights', 'stories260K', 'tok512.bin')), hf: undefined }];
  lines.push('', '| kind | input (one line) | 100 KB ms | 1 MB ms | 10 MB ms | 10 MB / 1 MB |', '|---|---|---:|---:|---:|---:|');
  const scaling: unknown[] = [];
  for (const c of scalingCases)
    for (const [what, make] of HOSTILE) {
      const ms = [100_000, 1_000_000, 10_000_000].map((n) => {
        let best = Infinity;
        for (let k = 0; k < (n > 1e6 ? 1 : 3); k++) {
          const s = make(n);
          const t0 = performance.now();
          c.ours.encode(s);
          best = Math.min(best, performance.now() - t0);
        }
        return best;
      });
      lines.push(`| ${c.kind} | ${what} | ${ms[0]!.toFixed(0)} | ${ms[1]!.toFixed(0)} | ${ms[2]!.toFixed(0)} | ${(ms[2]! / ms[1]!).toFixed(1)}x |`);
      scaling.push({ kind: c.kind, input: what, bytes: [100_000, 1_000_000, 10_000_000], ms });
    }
  console.log(lines.join('\n'));
  if (values.json) writeFileSync(values.json, JSON.stringify({ date: new Date().toISOString(), mb, rows, scaling }, null, 2));
}

await main();
