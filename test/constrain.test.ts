// The JSON automaton behind constrained decoding (src/constrain/json.ts), checked against JSON.parse
// and against schemas' meaning: every valid document is accepted byte by byte (so every prefix of one
// is), and whatever it accepts as a whole document parses, and obeys the schema.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileSchema, jsonDone, jsonFeed, jsonObjectConstraint, jsonStart, MAX_INDENT, type JsonSchema } from '../src/constrain/json.js';
import { loadModel } from '../src/engine.js';
import { hasShared, STORIES_BIN, STORIES_TOK } from './helpers.js';

const bytes = (s: string) => new TextEncoder().encode(s);
/** Accepted as a whole document? */
const whole = (node: ReturnType<typeof compileSchema>, text: string) => {
  const s = jsonFeed(jsonStart(node), bytes(text));
  return s !== null && jsonDone(s);
};
/** Accepted as the beginning of a document? */
const prefix = (node: ReturnType<typeof compileSchema>, text: string) => jsonFeed(jsonStart(node), bytes(text)) !== null;

describe('any JSON (response_format json_object is its object case)', () => {
  const any = compileSchema(true);

  it('accepts every JSON value, compact or indented, and calls it whole', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 6 }), fc.constantFrom(0, 2, '\t'), (v, indent) => {
      // A number at the root is whole only once something follows it (it could grow): a newline.
      expect(whole(any, JSON.stringify(v, null, indent) + '\n')).toBe(true);
    }), { numRuns: 2000 });
  });

  it('what it accepts as a whole document, JSON.parse accepts (mutated documents)', () => {
    const mutated = fc.tuple(fc.jsonValue({ maxDepth: 4 }), fc.nat(), fc.constantFrom('', ',', '}', ']', '"', ':', '\\', '0', '-', 'e', '.', ' ', '\u0001', '\u00e9', '\ud800')).map(([v, at, ch]) => {
      const s = JSON.stringify(v);
      const i = at % (s.length + 1);
      return s.slice(0, i) + ch + s.slice(i + (ch === '' ? 1 : 0));
    });
    fc.assert(fc.property(mutated, (s) => {
      if (whole(any, s + '\n')) expect(() => JSON.parse(s)).not.toThrow();
    }), { numRuns: 5000 });
  });

  it('refuses what is never JSON: bad escapes, control characters, invalid UTF-8, leading zeros, trailing commas, bare words', () => {
    for (const bad of ['"\\x"', '"a\u0001"', '01', '[1,]', '{"a":1,}', '{a:1}', 'tru', 'nul', '[1 2]', '{"a" 1}', '-', '1.', '1e', '"\\u12G4"'])
      expect(whole(any, bad + '\n'), bad).toBe(false);
    expect(jsonFeed(jsonStart(any), Uint8Array.of(0x22, 0xc0, 0x80, 0x22))).toBeNull(); // overlong
    expect(jsonFeed(jsonStart(any), Uint8Array.of(0x22, 0xed, 0xa0, 0x80, 0x22))).toBeNull(); // a surrogate
    expect(jsonFeed(jsonStart(any), Uint8Array.of(0x22, 0xf4, 0x90, 0x80, 0x80, 0x22))).toBeNull(); // above U+10FFFF
    expect(whole(any, '"h\u00e9llo \ud83e\udd99"')).toBe(true);
  });

  it('json_object: only an object at the root; nothing but whitespace after it', () => {
    const obj = jsonObjectConstraint();
    expect(whole(obj, '{"a": [1, {"b": null}]}')).toBe(true);
    for (const bad of ['[1]', '"x"', '1', 'null', '{"a":1}x', '{"a":1}{}']) expect(whole(obj, bad), bad).toBe(false);
    expect(prefix(obj, '{"a":1}\n  ')).toBe(true);
  });

  it('a key given twice is refused', () => {
    expect(whole(any, '{"a":1,"a":2}')).toBe(false);
  });

  it(`whitespace between tokens as llama.cpp's grammar allows it: one space, or a newline and at most ${MAX_INDENT} spaces or tabs; any inside strings`, () => {
    expect(prefix(any, '{ "a": [1, 2]')).toBe(true);
    expect(prefix(any, '{\n' + ' '.repeat(MAX_INDENT) + '"a"')).toBe(true);
    expect(prefix(any, '{\n' + ' '.repeat(MAX_INDENT + 1))).toBe(false);
    expect(prefix(any, '{  ')).toBe(false);
    expect(prefix(any, '{\n\n')).toBe(false);
    expect(whole(any, `{"a": "${' '.repeat(500)}\\n"}`)).toBe(true);
  });
});

describe('JSON Schema', () => {
  const schema: JsonSchema = {
    $defs: { point: { type: 'object', properties: { x: { type: 'integer' }, y: { type: 'integer' } }, required: ['x', 'y'], additionalProperties: false } },
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 8 },
      kind: { enum: ['cat', 'dog', 42, null] },
      tags: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 3 },
      at: { $ref: '#/$defs/point' },
      score: { anyOf: [{ type: 'number' }, { type: 'null' }] },
      ok: { type: 'boolean' },
      v: { const: 'v1' },
      'caf\u00e9': { type: 'string' },
    },
    required: ['name', 'kind'],
    additionalProperties: false,
  };
  const node = compileSchema(schema);

  /** An independent check of the same schema, written from its meaning. */
  const valid = (d: unknown): boolean => {
    if (typeof d !== 'object' || d === null || Array.isArray(d)) return false;
    const o = d as Record<string, unknown>;
    const known = ['name', 'kind', 'tags', 'at', 'score', 'ok', 'v', 'caf\u00e9'];
    if (Object.keys(o).some((k) => !known.includes(k)) || !('name' in o) || !('kind' in o)) return false;
    const len = (s: string) => [...s].length;
    if (typeof o.name !== 'string' || len(o.name) < 1 || len(o.name) > 8) return false;
    if (!['cat', 'dog', 42, null].includes(o.kind as never)) return false;
    if ('tags' in o && !(Array.isArray(o.tags) && o.tags.length >= 1 && o.tags.length <= 3 && o.tags.every((t) => typeof t === 'string'))) return false;
    if ('at' in o) {
      const p = o.at as Record<string, unknown>;
      if (typeof p !== 'object' || p === null || Array.isArray(p) || Object.keys(p).sort().join() !== 'x,y' || !Number.isInteger(p.x) || !Number.isInteger(p.y)) return false;
    }
    if ('score' in o && !(typeof o.score === 'number' || o.score === null)) return false;
    if ('ok' in o && typeof o.ok !== 'boolean') return false;
    if ('v' in o && o.v !== 'v1') return false;
    if ('caf\u00e9' in o && typeof o['caf\u00e9'] !== 'string') return false;
    return true;
  };

  const doc = fc.record(
    {
      name: fc.string({ minLength: 1, maxLength: 8 }),
      kind: fc.constantFrom('cat', 'dog', 42, null),
      tags: fc.array(fc.string({ maxLength: 5 }), { minLength: 1, maxLength: 3 }),
      at: fc.record({ x: fc.integer(), y: fc.integer() }),
      score: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(null)),
      ok: fc.boolean(),
      v: fc.constant('v1'),
      'caf\u00e9': fc.string({ maxLength: 4 }),
    },
    { requiredKeys: ['name', 'kind'] },
  );

  it('accepts every document valid for the schema, in any key order', () => {
    fc.assert(fc.property(doc, fc.boolean(), (d, reverse) => {
      const ordered = reverse ? Object.fromEntries(Object.entries(d).reverse()) : d;
      expect(valid(d)).toBe(true);
      expect(whole(node, JSON.stringify(ordered, null, 1))).toBe(true);
    }), { numRuns: 1000 });
  });

  it('accepts as whole only documents the schema allows (documents mutated into others)', () => {
    const changed = fc.tuple(doc, fc.constantFrom('drop', 'extra', 'retype', 'enum', 'tags', 'point')).map(([d, how]) => {
      const o: Record<string, unknown> = { ...d };
      if (how === 'drop') delete o[Object.keys(o)[0]!];
      if (how === 'extra') o.extra = 1;
      if (how === 'retype') o.ok = 'yes';
      if (how === 'enum') o.kind = 'cow';
      if (how === 'tags') o.tags = ['a', 'b', 'c', 'd'];
      if (how === 'point') o.at = { x: 1.5, y: 2 };
      return o;
    });
    let refused = 0;
    fc.assert(fc.property(changed, (o) => {
      const accepted = whole(node, JSON.stringify(o));
      expect(accepted).toBe(valid(o));
      if (!accepted) refused++;
    }), { numRuns: 1000 });
    expect(refused).toBeGreaterThan(500);
  });

  it('keys are offered only while they can still be used, and required ones before the end', () => {
    expect(prefix(node, '{"na')).toBe(true);
    expect(prefix(node, '{"nb')).toBe(false);
    expect(whole(node, '{"name":"a"}')).toBe(false); // kind is required
    expect(prefix(node, '{"name":"a","name"')).toBe(false);
    expect(whole(node, '{"name":"a","kind":"cat","caf\u00e9":"x"}')).toBe(true);
    expect(whole(node, '{"name":"123456789","kind":"cat"}')).toBe(false); // maxLength 8
    expect(whole(node, '{"name":"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9","kind":"cat"}')).toBe(true); // 8 characters, 16 bytes
  });

  it('refuses, with a message, what it cannot enforce; ignores annotations', () => {
    expect(() => compileSchema({ type: 'string', pattern: '^a' })).toThrow(/"pattern" is not enforced/);
    expect(() => compileSchema({ type: 'number', minimum: 0 })).toThrow(/"minimum" is not enforced/);
    expect(() => compileSchema({ $ref: 'https://example.com/s.json' })).toThrow(/only #\/\$defs\/NAME/);
    expect(() => compileSchema({ type: 'nope' })).toThrow(/unknown type "nope"/);
    expect(() => compileSchema({ type: 'array', minItems: 3, maxItems: 1 })).toThrow(/minItems 3 > maxItems 1/);
    expect(whole(compileSchema({ type: 'string', title: 'T', description: 'D', format: 'date-time', examples: ['x'] }), '"x"')).toBe(true);
  });

  it('recursive definitions', () => {
    const tree = compileSchema({ $defs: { t: { type: 'object', properties: { kids: { type: 'array', items: { $ref: '#/$defs/t' } } }, additionalProperties: false } }, $ref: '#/$defs/t' });
    expect(whole(tree, '{"kids":[{"kids":[]},{"kids":[{}]}]}')).toBe(true);
    expect(whole(tree, '{"kids":[{"kid":[]}]}')).toBe(false);
  });
});

describe.skipIf(!hasShared)('generating under the constraint (stories260K, a model that never saw JSON)', () => {
  const load = () => loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, device: 'cpu', threads: 1 });

  it('json: "object": the beginning of a JSON object (this model opens key after key and never closes one), or a whole one', async () => {
    const m = await load();
    for (let seed = 1; seed <= 6; seed++) {
      const g = m.generate('Once upon a time', { json: 'object', maxTokens: 150, temperature: 1, seed });
      const text = await g.text();
      if (g.stats.stopReason === 'json-complete') expect(JSON.parse(text)).toBeTypeOf('object');
      else {
        expect(g.stats.stopReason).toBe('max-tokens');
        expect(prefix(jsonObjectConstraint(), text), text).toBe(true);
        expect(/^\s*\{\s*"/.test(text), text).toBe(true);
      }
    }
    m.dispose();
  });

  it('json: { schema }: every finished document is valid for the schema, greedy and sampled', async () => {
    const m = await load();
    const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer' }, pet: { enum: ['cat', 'dog'] } }, required: ['name', 'age', 'pet'], additionalProperties: false };
    for (const temperature of [0, 0.8, 1.5])
      for (let seed = 1; seed <= 4; seed++) {
        const g = m.generate('Once upon a time', { json: { schema }, maxTokens: 200, temperature, seed });
        const text = await g.text();
        expect(g.stats.stopReason, text).toBe('json-complete');
        const d = JSON.parse(text) as Record<string, unknown>;
        expect(Object.keys(d).sort()).toEqual(['age', 'name', 'pet']);
        expect(typeof d.name === 'string' && [...d.name].length <= 12 && Number.isInteger(d.age) && ['cat', 'dog'].includes(d.pet as string), text).toBe(true);
      }
    m.dispose();
  });

  it('a schema it cannot enforce is refused before any work', async () => {
    const m = await load();
    await expect(m.generate('x', { json: { schema: { type: 'string', pattern: 'a+' } } }).text()).rejects.toThrow(/"pattern" is not enforced/);
    m.dispose();
  });
});
