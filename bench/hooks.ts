// Does inspection cost generation anything? Greedy decode speed through generate() of builds of
// pocketlm side by side (e.g. this one and a worktree of the commit before the hook points), runs
// alternating so that a busy machine slows both alike; and, in this build, the cost of a run that
// captures every hook point.
//
//   npm run build && node dist/bench/hooks.js [--builds /path/to/other/checkout,.] [--model PATH] [--threads 2] [--rounds 3]
//
// A build is a checkout with dist/ built (`git worktree add /tmp/before COMMIT && cd /tmp/before && npm install && npm run build`).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** In a child process: decode tok/s of `root`'s build (best of 3 x 64 tokens), and with every hook point captured. */
const CHILD = `
const [root, model, threads] = process.argv.slice(2);
const { loadModel } = await import(root + '/dist/src/index.js');
const m = await loadModel(model, { device: 'cpu', threads: Number(threads) });
const gen = async () => { const g = m.generate('Once upon a time', { temperature: 0, maxTokens: 64, ignoreEos: true, contextLength: 256 }); await g.text(); return (g.stats.generatedTokens - 1) * 1000 / g.stats.generateMs; };
await gen();
let best = 0;
for (let r = 0; r < 3; r++) best = Math.max(best, await gen());
let capture = null;
if (m.run) {
  const ids = m.encode('Once upon a time, there was a little girl named Lily. She loved to play outside');
  const t0 = performance.now(); await m.logits(ids); const plain = performance.now() - t0;
  const t1 = performance.now(); await m.run(ids, { capture: ['blocks.*.resid_pre', 'blocks.*.attn.*', 'blocks.*.resid_mid', 'blocks.*.mlp.*', 'blocks.*.resid_post', 'final_norm', 'logits'] }); const all = performance.now() - t1;
  capture = { tokens: ids.length, plainMs: plain, captureAllMs: all };
}
console.log(JSON.stringify({ decode: best, capture }));
m.dispose();
`;

function main(): void {
  const { values } = parseArgs({ options: { builds: { type: 'string' }, model: { type: 'string' }, threads: { type: 'string', default: '2' }, rounds: { type: 'string', default: '3' } } });
  const builds = (values.builds ?? ROOT).split(',').map((b) => resolve(b));
  const model = values.model ?? join(ROOT, 'bench', 'models', 'smollm2-135m-shape-q8_0.gguf');
  // A module file (not -e with --input-type=module, which builds before the worker-thread fix could not run under).
  const child = join(mkdtempSync(join(tmpdir(), 'pocketlm-hooks-')), 'child.mjs');
  writeFileSync(child, CHILD);
  const results = new Map<string, number[]>();
  let capture: unknown;
  for (let r = 0; r < Number(values.rounds); r++)
    for (const b of builds) {
      const out = JSON.parse(execFileSync(process.execPath, [child, b, model, values.threads!], { encoding: 'utf8' }).trim().split('\n').pop()!);
      results.set(b, [...(results.get(b) ?? []), out.decode]);
      if (out.capture && b === ROOT) capture = out.capture;
      console.error(`${b}: ${out.decode.toFixed(1)} tok/s`);
    }
  console.log(`| build | decode tok/s per round (greedy, 64 tokens, best of 3) | best |\n|---|---|---:|`);
  for (const [b, v] of results) console.log(`| ${b} | ${v.map((x) => x.toFixed(1)).join(', ')} | ${Math.max(...v).toFixed(1)} |`);
  if (capture) console.log(`\nthis build, one prefill: ${JSON.stringify(capture)}`);
}

main();
