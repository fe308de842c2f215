// How much the way a sequence is split into forward passes moves its logits, per CPU activation mode:
// the same tokens run whole, in two parts and one token at a time (what a cached prefix or a server's
// batching does to a prompt) through transformer.forward, and the largest difference of the last
// position's logits from the whole run. Each matmul agrees across batch sizes to f32 rounding; rounding
// the inputs (16 or 8 bits) carries f32-level differences across rounding boundaries, a whole step at
// a time, and the later layers carry them on.
//
//   npm run build && node dist/bench/splits.js [MODEL.gguf] [--threads 2]
// Default model: the 135M SmolLM2-shaped Q8_0 file that bench/run.ts makes (bench/models/).

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadModel } from '../src/engine.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values, positionals } = parseArgs({ allowPositionals: true, options: { threads: { type: 'string', default: '2' } } });
const path = positionals[0] ?? join(ROOT, 'bench', 'models', 'smollm2-135m-shape-q8_0.gguf');
if (!existsSync(path)) throw new Error(`${path} does not exist: give a GGUF file, or make the default one with node dist/bench/run.js --quick --quant`);
const ids = [1, ...Array.from({ length: 29 }, (_, i) => 300 + ((i * 37) % 4000))];
const splits: [string, number[]][] = [['25 + 5', [25, 5]], ['10 + 20', [10, 20]], ['29 + 1', [29, 1]], ['one at a time', ids.map(() => 1)]];
const lines = [`${path.split('/').pop()}, ${ids.length} tokens, ${values.threads} threads: max |logit difference| at the last position from the whole run`, '', `| activations | largest logit | ${splits.map(([name]) => name).join(' | ')} |`, `|---|---:|${splits.map(() => '---:|').join('')}`];
for (const activations of ['f32', 'int16', 'int8'] as const) {
  const m = await loadModel(path, { device: 'cpu', threads: Number(values.threads), activations });
  const run = async (parts: number[]) => {
    const state = m.transformer.newState(ids.length);
    let logits: Float32Array = new Float32Array(0);
    let at = 0;
    for (const k of parts) logits = await m.transformer.forward(state, ids.slice(at, (at += k)));
    return Float64Array.from(logits);
  };
  const whole = await run([ids.length]);
  const cells: string[] = [];
  for (const [, parts] of splits) {
    const l = await run(parts);
    cells.push(l.reduce((d, v, i) => Math.max(d, Math.abs(v - whole[i]!)), 0).toExponential(2));
  }
  lines.push(`| ${activations} | ${whole.reduce((a, v) => Math.max(a, Math.abs(v)), 0).toFixed(2)} | ${cells.join(' | ')} |`);
  m.dispose();
}
console.log(lines.join('\n'));
process.exit(0);
