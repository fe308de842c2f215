import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { llama2cVocab } from '../src/format/llama2c.js';
import { hasShared, readShared, ROOT, SHARED, sharedPath, STORIES_BIN, STORIES_TOK, storiesReference } from './helpers.js';
import { family, hfFolder } from '../bench/families.js';

// The CLI as users run it: the built dist/ (npm test builds first).
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const cache = mkdtempSync(join(tmpdir(), 'pocketlm-cli-'));
afterAll(() => rmSync(cache, { recursive: true, force: true }));
const run = (...args: string[]) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, POCKETLM_CACHE: cache, POCKETLM_MIRROR: sharedPath('weights') }, timeout: 120_000 });

describe.skipIf(!hasShared)('pocketlm CLI', () => {
  it('is built', () => expect(existsSync(CLI)).toBe(true));

  it('generate: only the generated text on stdout, timings on stderr; empty prompt = BOS', () => {
    const r = run('generate', '--model', 'stories260K', '--temperature', '0', '--max-tokens', '40', '');
    expect(r.status).toBe(0);
    const tok = new Tokenizer(llama2cVocab(readShared('weights', 'stories260K', 'tok512.bin'), 'tok512.bin', 512));
    expect(r.stdout).toBe(tok.decode(storiesReference().generated_ids.slice(0, 40)) + '\n');
    expect(r.stderr).toMatch(/prompt: 1 tokens, [\d.]+ tok\/s \| generation: 40 tokens, [\d.]+ tok\/s/);
  });

  it('generate: a llama2.c file with --tokenizer, seeded sampling is reproducible, --stop works', () => {
    const a = run('generate', '--model', STORIES_BIN, '--tokenizer', STORIES_TOK, '--seed', '5', '--max-tokens', '30', 'Once upon a time');
    const b = run('generate', '--model', STORIES_BIN, '--tokenizer', STORIES_TOK, '--seed', '5', '--max-tokens', '30', 'Once upon a time');
    expect(a.status).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    const s = run('generate', '--model', 'stories260K', '--temperature', '0', '--stop', 'girl', '');
    expect(s.stdout).toBe('Once upon a time, there was a little \n');
    const nl = run('generate', '--model', 'stories260K', '--temperature', '0', '--stop', '\\n', '');
    expect(nl.stdout).toBe(storiesReference().text.split('\n')[0] + '\n');
  });

  it('convert + info', () => {
    const out = join(cache, 'conv.gguf');
    expect(run('convert', STORIES_BIN, '--tokenizer', STORIES_TOK, '-o', out).status).toBe(0);
    const r = run('info', out);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/architecture:\s+llama/);
    expect(r.stdout).toMatch(/dim 64, ffn 172, layers 5, heads 8, kv heads 4, head dim 8, vocab 512/);
    expect(r.stdout).toMatch(/tokenizer:\s+llama, 512 tokens/);
    expect(r.stdout).toMatch(/F32\s+47 tensors/);
    expect(run('info', sharedPath('weights', 'llama-2-tiny-random', 'llama-2-tiny-random.gguf')).stdout).toMatch(/F16\s+9 tensors/);
  });

  it('a Hugging Face folder: info names its family and options, generate runs it, convert writes a GGUF that gives the same text', () => {
    const folder = hfFolder(family('phi2'), join(ROOT, 'bench', 'models', 'families'), SHARED);
    const info = run('info', folder);
    expect(info.status).toBe(0);
    expect(info.stdout).toMatch(/architecture:\s+phi2 \(family phi, src\/arch\/phi\.ts\)/);
    expect(info.stdout).toMatch(/NeoX RoPE, on 32 of 80 dims/);
    const a = run('generate', '--model', folder, '--device', 'cpu', '--temperature', '0', '--max-tokens', '12', 'Once upon');
    expect(a.status, a.stderr).toBe(0);
    const out = join(cache, 'phi2.gguf');
    const conv = run('convert', folder, '-o', out);
    expect(conv.stderr).toMatch(/wrote .*phi2\.gguf: phi2, \d+ tensors/);
    const b = run('generate', '--model', out, '--device', 'cpu', '--temperature', '0', '--max-tokens', '12', 'Once upon');
    expect(b.status, b.stderr).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    expect(a.stdout.length).toBeGreaterThan(1);
  });

  it('errors: one clear line on stderr and exit code 1', () => {
    const bad = run('generate', '--model', '/no/such.gguf', 'x');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe('pocketlm: /no/such.gguf: no such file\n');
    const flag = run('generate', '--temperature', 'hot', 'x');
    expect(flag.status).toBe(1);
    expect(flag.stderr).toMatch(/--temperature expects a number, got "hot"/);
    const notGguf = run('info', STORIES_TOK);
    expect(notGguf.status).toBe(1);
    expect(notGguf.stderr).toMatch(/tok512.bin: not a valid llama2.c checkpoint/);
    expect(run('frobnicate').stderr).toMatch(/unknown command "frobnicate"/);
  });

  it('every command has its own --help with its flags and an example; negative numbers and --flag=value parse and are range-checked before loading', () => {
    for (const cmd of ['generate', 'chat', 'tokenize', 'info', 'convert', 'quantize', 'bench', 'pull', 'models']) {
      const h = run(cmd, '--help');
      expect(h.status, cmd).toBe(0);
      expect(h.stdout, cmd).toMatch(new RegExp(`^pocketlm ${cmd}`));
      if (cmd !== 'models') expect(h.stdout, cmd).toMatch(/example:\n {2}pocketlm /);
    }
    expect(run('help', 'quantize').stdout).toMatch(/--type TYPE/);
    expect(run('generate', '--help').stdout).toMatch(/--temperature T +>= 0/);
    // Each is refused with the valid range, before any model is loaded (a missing model would say so first otherwise).
    const refuse = (args: string[], re: RegExp) => {
      const r = run('generate', '--model', '/no/such.gguf', ...args, 'x');
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(re);
    };
    refuse(['--temperature', '-1'], /temperature must be a number >= 0, got -1/);
    refuse(['--temperature=-0.5'], /temperature must be a number >= 0, got -0\.5/);
    refuse(['--top-p', '2'], /top-p must be in \(0, 1\], got 2/);
    refuse(['--max-tokens', '-5'], /--max-tokens must be an integer >= 0, got -5/);
    refuse(['--ctx-size', '0'], /--ctx-size must be an integer >= 1, got 0/);
    refuse(['--threads', '99'], /--threads must be an integer from 0 to 64/);
    refuse(['--activations', 'int4'], /--activations must be int16, int8 or f32, got "int4"/);
    refuse(['--int8-activations', '--activations', 'f32'], /--int8-activations contradicts --activations f32: give one of them/);
    // A prompt that starts with a dash goes after "--", as the message says.
    const dash = run('generate', '--model', 'stories260K', '--temperature', '0', '--max-tokens', '3', '--ignore-eos', '-5');
    expect(dash.stderr).toMatch(/Unknown option '-5'.*after '--'/);
    const neg = run('generate', '--model', 'stories260K', '--temperature', '0', '--max-tokens', '3', '--ignore-eos', '--', '-5');
    expect(neg.status, neg.stderr).toBe(0);
  });
});

describe('the installed command', () => {
  it('embed, similarity, classify and fill-mask on encoders: what the library returns, as JSON lines or .npy', async () => {
    const { loadModel } = await import('../src/engine.js');
    const root = join(ROOT, 'bench', 'models', 'encoders');
    const [minilm, cls, mlm] = ['minilm', 'bge-cls', 'tinybert-mlm'].map((id) => hfFolder(family(id), root, SHARED, { vocab: 3000 }));
    const m = await loadModel(minilm!, { device: 'cpu', threads: 1 });
    const texts = ['A cat sat on the mat.', 'A dog lay on the rug.'];
    const lib = await m.embed(texts);
    m.dispose();
    const r = run('embed', '--model', minilm!, '--device', 'cpu', '--threads', '1', ...texts);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.text)).toEqual(texts);
    lines.forEach((l, i) => expect(Float32Array.from(l.embedding)).toEqual(lib[i]));
    const npy = spawnSync(process.execPath, [CLI, 'embed', '--model', minilm!, '--device', 'cpu', '--threads', '1', '--format', 'npy', ...texts], { env: process.env });
    expect(npy.status).toBe(0);
    const bytes = npy.stdout as Buffer;
    const headerLength = bytes.readUInt16LE(8);
    expect(bytes.subarray(0, 6).toString('latin1')).toBe('\x93NUMPY');
    expect(bytes.subarray(10, 10 + headerLength).toString()).toMatch(/'descr': '<f4', 'fortran_order': False, 'shape': \(2, 96\)/);
    expect((10 + headerLength) % 64).toBe(0);
    expect(new Float32Array(bytes.buffer.slice(bytes.byteOffset + 10 + headerLength, bytes.byteOffset + bytes.length))).toEqual(Float32Array.from([...lib[0]!, ...lib[1]!]));
    const sim = run('similarity', '--model', minilm!, '--device', 'cpu', ...texts);
    expect(sim.status, sim.stderr).toBe(0);
    expect(Number(sim.stdout)).toBeCloseTo(lib[0]!.reduce((a, x, i) => a + x * lib[1]![i]!, 0), 5);
    const c = run('classify', '--model', cls!, '--device', 'cpu', 'good film', 'bad film');
    expect(c.status, c.stderr).toBe(0);
    const rows = c.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((x) => x.text)).toEqual(['good film', 'bad film']);
    expect(rows[0].labels.map((x: { label: string }) => x.label).sort()).toEqual(['negative', 'neutral', 'positive']);
    const f = run('fill-mask', '--model', mlm!, '--device', 'cpu', '--top-k', '2', 'the [MASK] sat on the [MASK].');
    expect(f.status, f.stderr).toBe(0);
    expect(f.stdout.trim().split('\n').map((l) => JSON.parse(l).length)).toEqual([2, 2]);
    // Mistakes get one-line errors.
    expect(run('fill-mask', '--model', minilm!, '--device', 'cpu', 'a [MASK]').stderr).toMatch(/pocketlm: .*no masked-LM head/);
    expect(run('embed', '--model', minilm!, '--pooling', 'max', 'x').stderr).toMatch(/--pooling must be mean, cls, last or none/);
    expect(run('similarity', '--model', minilm!, 'only one').stderr).toMatch(/compares two texts/);
    expect(run('generate', '--model', minilm!, '--device', 'cpu', 'hi').stderr).toMatch(/is an encoder .* cannot generate text/);
    expect(run('embed', '--help').stdout).toMatch(/example:\n  pocketlm embed/);
  }, 120_000);

  it('inspect: JSON and an HTML report (surprisal, residual norms, logit lens, attention maps), PNG maps, activation patching', async () => {
    const { readFileSync, mkdtempSync } = await import('node:fs');
    const { loadModel } = await import('../src/engine.js');
    const dir = mkdtempSync(join(tmpdir(), 'pocketlm-inspect-'));
    const text = 'Once upon a time, there was a little girl';
    const flags = ['--model', STORIES_BIN, '--tokenizer', STORIES_TOK, '--device', 'cpu', '--threads', '1'];
    const j = run('inspect', ...flags, '--logit-lens', '--attention', '--attribution', '--layers', '3-4', '--heads', '0,5', '--top-k', '3', '--json', text);
    expect(j.status, j.stderr).toBe(0);
    const report = JSON.parse(j.stdout);
    const m = await loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, device: 'cpu', threads: 1 });
    const ids = m.encode(text);
    const logits = await m.logits(ids);
    m.dispose();
    expect(report.ids).toEqual(ids);
    expect(report.residNorms.map((r: { layer: number }) => r.layer)).toEqual([3, 4]);
    expect(report.attention.map((a: { heads: { head: number }[] }) => a.heads.map((h) => h.head))).toEqual([[0, 5], [0, 5]]);
    expect(report.attention[0].heads[0].pattern.length).toBe(ids.length);
    // The last layer's lens is the model's own prediction at every position.
    const argmax = (p: number) => { let b = 0; for (let i = 1; i < 512; i++) if (logits[p * 512 + i]! > logits[p * 512 + b]!) b = i; return b; };
    report.lens[1].top.forEach((t: { id: number }[], p: number) => expect(t[0]!.id).toBe(argmax(p)));
    expect(report.surprisal[0]).toBeNull();
    expect(report.attribution.target).toBe(argmax(ids.length - 1));
    expect(report.attribution.parts.length).toBe(24);
    expect(report.surprisal.slice(1).every((x: number) => x > 0)).toBe(true);
    const html = join(dir, 'r.html');
    const h = run('inspect', ...flags, '--logit-lens', '--attention', '--layers', '0', '--out', html, '--png', dir, text);
    expect(h.status, h.stderr).toBe(0);
    const page = readFileSync(html, 'utf8');
    expect(page.match(/<svg /g)!.length).toBe(1 + 8); // the norms chart, 8 heads
    expect(page).toContain('Logit lens');
    expect(page).not.toMatch(/<script|(src|href)=["']?https?:|@import|url\(/); // self-contained: nothing fetched
    const png = readFileSync(join(dir, 'attention-0.png'));
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(png.readUInt32BE(20)).toBe(Math.floor(256 / ids.length) * ids.length); // height: one map
    const p = run('inspect', ...flags, '--patch', 'blocks.2.resid_post', '--from', 'The cat sat on the mat', '--top-k', '2', 'The dog sat on the mat');
    expect(p.status, p.stderr).toBe(0);
    const patched = JSON.parse(p.stdout);
    expect(patched.patched.next.length).toBe(2);
    expect(run('inspect', ...flags, '--layers', '9', text).stderr).toMatch(/--layers 9: 9 is past this model's 5/);
    expect(run('inspect', ...flags, '--png', dir, text).stderr).toMatch(/add --attention/);
    expect(run('inspect', ...flags, '--patch', 'blocks.0.resid_post', '--from', 'a b c d e f', 'a').stderr).toMatch(/same number/);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('dist/src/cli/main.js is executable, as npx needs it to be', async () => {
    const { statSync } = await import('node:fs');
    expect(statSync(CLI).mode & 0o111).not.toBe(0);
  });
});
