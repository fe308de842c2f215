// The layout's promise (DEVELOPERS.md): src/ is grouped into layer folders whose imports only point
// down the list below, and no two modules import each other, directly or around a loop.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.js';

/** Lowest first; '.' is src/ itself (engine.ts, generate.ts, index.ts). */
const LAYERS = ['base', 'format', 'tokenizer', 'constrain', 'quant', 'stages', 'backend', 'arch', 'load', '.', 'server', 'cli'];

const SRC = join(ROOT, 'src');
const files: string[] = [];
const walk = (dir: string) => {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) walk(p);
    else if (f.endsWith('.ts')) files.push(p);
  }
};
walk(SRC);
// Static and dynamic relative imports, type-only ones included (they tie the modules together too).
const imports = new Map(files.map((f) => [f, [...readFileSync(f, 'utf8').matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)\.js['"]/g)].map((m) => resolve(dirname(f), `${m[1]}.ts`)).filter((p) => p.startsWith(SRC))]));
const layer = (f: string) => { const r = relative(SRC, f); return r.includes('/') ? r.split('/')[0]! : '.'; };

describe('src/ layers', () => {
  it('every module is in a known layer, and every import it makes exists', () => {
    for (const [f, deps] of imports) {
      expect(LAYERS, relative(ROOT, f)).toContain(layer(f));
      for (const d of deps) expect(files, `${relative(ROOT, f)} imports ${relative(ROOT, d)}`).toContain(d);
    }
  });

  it('imports point down the layer list', () => {
    const up: string[] = [];
    for (const [f, deps] of imports)
      for (const d of deps) if (LAYERS.indexOf(layer(d)) > LAYERS.indexOf(layer(f))) up.push(`${relative(SRC, f)} -> ${relative(SRC, d)}`);
    expect(up).toEqual([]);
  });

  it('no module imports itself around a loop', () => {
    const state = new Map<string, 1 | 2>();
    const stack: string[] = [];
    const loops: string[] = [];
    const visit = (f: string) => {
      state.set(f, 1);
      stack.push(f);
      for (const d of imports.get(f) ?? []) {
        if (state.get(d) === 1) loops.push(stack.slice(stack.indexOf(d)).map((p) => relative(SRC, p)).join(' -> '));
        else if (!state.has(d)) visit(d);
      }
      stack.pop();
      state.set(f, 2);
    };
    for (const f of files) if (!state.has(f)) visit(f);
    expect(loops).toEqual([]);
  });
});
