// Constrained decoding for JSON: which tokens may come next so that the output stays the beginning of
// a valid JSON document (OpenAI's response_format json_object), or of one valid for a JSON Schema
// (json_schema). The check is a pushdown automaton over bytes: a state is a stack of frames (the
// object, array, string, number or literal being written, innermost last), and a token is allowed
// when each of its bytes has a transition. Unions (anyOf, a list of types, mixed enums) are followed
// side by side: a state holds every stack still possible. States are immutable, so trying a token
// never disturbs the state it was tried from.
//
// Schema keywords enforced: type (and lists of types), properties, required, additionalProperties
// (false or a schema; absent = any, as JSON Schema says), items, minItems, maxItems, enum, const,
// anyOf, oneOf (as anyOf), $ref to #/$defs/... or #/definitions/..., minLength, maxLength. Annotations
// (title, description, default, examples, format, $schema, $id, $comment) are ignored. Anything else
// that would constrain the output (pattern, minimum, allOf, not, ...) is refused with a message, never
// silently unenforced.

import { InvalidInputError } from '../base/errors.js';

export type JsonSchema = boolean | { readonly [key: string]: unknown };

type Node =
  | { t: 'any' }
  | { t: 'object'; props: Map<string, Node>; required: ReadonlySet<string>; extra: Node | null }
  | { t: 'array'; items: Node; min: number; max: number }
  | { t: 'string'; values?: readonly string[]; minLength: number; maxLength: number }
  | { t: 'number'; integer: boolean }
  | { t: 'literal'; text: string }
  | { t: 'union'; options: readonly Node[] };
type ObjectNode = Extract<Node, { t: 'object' }>;
type ArrayNode = Extract<Node, { t: 'array' }>;
type StringNode = Extract<Node, { t: 'string' }>;

const ANY: Node = { t: 'any' };
const ANY_OBJECT: ObjectNode = { t: 'object', props: new Map(), required: new Set(), extra: ANY };
const ANY_ARRAY: ArrayNode = { t: 'array', items: ANY, min: 0, max: Infinity };
const ANY_STRING: StringNode = { t: 'string', minLength: 0, maxLength: Infinity };
/**
 * Whitespace between tokens, as llama.cpp's JSON grammar allows it: none, one space, or a newline
 * and at most MAX_INDENT spaces or tabs. Enough for compact and pretty-printed JSON; a model that
 * would rather write blank lines forever (one not trained for JSON) must write JSON instead.
 */
export const MAX_INDENT = 20;

// --- compiling a schema ---------------------------------------------------------------------------

const ANNOTATIONS = new Set(['title', 'description', 'default', 'examples', 'format', '$schema', '$id', '$comment', 'deprecated', 'readOnly', 'writeOnly', '$defs', 'definitions', 'strict', 'name']);
const KNOWN = new Set(['type', 'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems', 'enum', 'const', 'anyOf', 'oneOf', '$ref', 'minLength', 'maxLength', 'nullable']);

/** Compile a JSON Schema (the subset above) into the automaton's nodes; InvalidInputError for what it cannot enforce. */
export function compileSchema(schema: JsonSchema): Node {
  const root = schema;
  const refs = new Map<string, Node>();
  const compile = (s: unknown, at: string): Node => {
    if (s === true || (typeof s === 'object' && s !== null && Object.keys(s).filter((k) => !ANNOTATIONS.has(k)).length === 0)) return ANY;
    if (s === false) throw new InvalidInputError(`json schema ${at}: false allows no value at all`);
    if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new InvalidInputError(`json schema ${at}: a schema must be an object or a boolean, got ${JSON.stringify(s)}`);
    const o = s as Record<string, unknown>;
    for (const k of Object.keys(o))
      if (!KNOWN.has(k) && !ANNOTATIONS.has(k))
        throw new InvalidInputError(`json schema ${at}: "${k}" is not enforced by pocketlm's constrained decoding (it enforces ${[...KNOWN].join(', ')}); remove it or describe it in the prompt instead`);
    if (o.$ref !== undefined) {
      const ref = o.$ref;
      const m = typeof ref === 'string' ? /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref) : null;
      if (!m) throw new InvalidInputError(`json schema ${at}: $ref ${JSON.stringify(ref)} is not supported (only #/$defs/NAME and #/definitions/NAME)`);
      const cached = refs.get(ref as string);
      if (cached) return cached;
      const target = (root as Record<string, Record<string, unknown> | undefined>)[m[1]!]?.[m[2]!];
      if (target === undefined) throw new InvalidInputError(`json schema ${at}: $ref ${ref} points at nothing`);
      // A placeholder first, so that a recursive definition refers to itself.
      const node = { t: 'union', options: [] } as { t: 'union'; options: Node[] };
      refs.set(ref as string, node);
      node.options = [compile(target, ref as string)];
      return node;
    }
    if (o.const !== undefined) return valueNode(o.const);
    if (o.enum !== undefined) {
      if (!Array.isArray(o.enum) || o.enum.length === 0) throw new InvalidInputError(`json schema ${at}: enum must be a non-empty list`);
      const strings = o.enum.filter((v): v is string => typeof v === 'string');
      const others = o.enum.filter((v) => typeof v !== 'string').map(valueNode);
      const options: Node[] = [...others];
      if (strings.length) options.push({ t: 'string', values: strings.map(escapedInner), minLength: 0, maxLength: Infinity });
      return options.length === 1 ? options[0]! : { t: 'union', options };
    }
    const alternatives = o.anyOf ?? o.oneOf;
    if (alternatives !== undefined) {
      if (!Array.isArray(alternatives) || alternatives.length === 0) throw new InvalidInputError(`json schema ${at}: anyOf / oneOf must be a non-empty list`);
      return { t: 'union', options: alternatives.map((a, i) => compile(a, `${at}/anyOf/${i}`)) };
    }
    let types = o.type === undefined ? ['object', 'array', 'string', 'number', 'boolean', 'null'] : Array.isArray(o.type) ? o.type : [o.type];
    if (o.nullable === true && !types.includes('null')) types = [...types, 'null'];
    const options = types.map((t): Node => {
      switch (t) {
        case 'object': {
          const props = new Map<string, Node>();
          const p = (o.properties ?? {}) as Record<string, unknown>;
          for (const [k, v] of Object.entries(p)) props.set(k, compile(v, `${at}/properties/${k}`));
          const required = new Set((o.required ?? []) as string[]);
          for (const r of required) if (!props.has(r) && o.additionalProperties === false) throw new InvalidInputError(`json schema ${at}: "${r}" is required but not among the properties`);
          const extra = o.additionalProperties === false ? null : o.additionalProperties === undefined || o.additionalProperties === true ? ANY : compile(o.additionalProperties, `${at}/additionalProperties`);
          return { t: 'object', props, required, extra };
        }
        case 'array': {
          const min = count(o.minItems, 0, `${at}/minItems`);
          const max = count(o.maxItems, Infinity, `${at}/maxItems`);
          if (min > max) throw new InvalidInputError(`json schema ${at}: minItems ${min} > maxItems ${max}`);
          return { t: 'array', items: o.items === undefined ? ANY : compile(o.items, `${at}/items`), min, max };
        }
        case 'string': {
          const minLength = count(o.minLength, 0, `${at}/minLength`);
          const maxLength = count(o.maxLength, Infinity, `${at}/maxLength`);
          if (minLength > maxLength) throw new InvalidInputError(`json schema ${at}: minLength ${minLength} > maxLength ${maxLength}`);
          return { t: 'string', minLength, maxLength };
        }
        case 'number':
        case 'integer':
          return { t: 'number', integer: t === 'integer' };
        case 'boolean':
          return { t: 'union', options: [{ t: 'literal', text: 'true' }, { t: 'literal', text: 'false' }] };
        case 'null':
          return { t: 'literal', text: 'null' };
        default:
          throw new InvalidInputError(`json schema ${at}: unknown type ${JSON.stringify(t)}`);
      }
    });
    return options.length === 1 ? options[0]! : { t: 'union', options };
  };
  return compile(schema, '#');
}

function count(v: unknown, fallback: number, at: string): number {
  if (v === undefined) return fallback;
  if (!(Number.isInteger(v) && (v as number) >= 0)) throw new InvalidInputError(`json schema ${at} must be an integer >= 0, got ${JSON.stringify(v)}`);
  return v as number;
}

/** A constant value as a node: its compact JSON text, or a string of exactly that content. */
function valueNode(v: unknown): Node {
  if (typeof v === 'string') return { t: 'string', values: [escapedInner(v)], minLength: 0, maxLength: Infinity };
  return { t: 'literal', text: JSON.stringify(v) };
}

/** A string's JSON text without its quotes: what its bytes between the quotes must be. */
function escapedInner(s: string): string {
  return JSON.stringify(s).slice(1, -1);
}

// --- the automaton --------------------------------------------------------------------------------

type Frame =
  | { k: 'root'; node: Node; done: boolean }
  | { k: 'obj'; node: ObjectNode; seen: readonly string[]; key: string; phase: 'first' | 'key' | 'colon' | 'value' | 'next' }
  | { k: 'arr'; node: ArrayNode; count: number; phase: 'first' | 'value' | 'next' | 'item' }
  // text: the bytes so far as a binary string (tracked for keys and enums); utf8: continuation bytes
  // still due, the next one within [lo, hi]; esc: after a backslash; hex: \u digits still due.
  | { k: 'str'; node: StringNode; isKey: boolean; keys?: readonly string[]; text: string; esc: boolean; hex: number; utf8: number; lo: number; hi: number; len: number }
  | { k: 'num'; integer: boolean; phase: 'minus' | 'zero' | 'int' | 'dot' | 'frac' | 'e' | 'esign' | 'exp' }
  | { k: 'lit'; text: string; i: number };
type Stack = readonly Frame[];

/** Where a JSON document stands: every way its bytes so far can still be read (usually one). */
export interface JsonState {
  readonly stacks: readonly Stack[];
  /** The whitespace just before this point: 0 none, -1 one space, k > 0 a newline and k - 1 indentation bytes. */
  readonly ws: number;
}

const isWs = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const isHex = (b: number) => isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
const NUMBER_ENDS = new Set(['zero', 'int', 'frac', 'exp']);

/** The start of a document whose value must match `node`. */
export function jsonStart(node: Node = ANY): JsonState {
  return { stacks: [[{ k: 'root', node, done: false }]], ws: 0 };
}

/** True when some reading of the bytes so far is a whole document (only whitespace may follow). */
export function jsonDone(s: JsonState): boolean {
  return s.stacks.some((st) => st.length === 1 && (st[0] as Extract<Frame, { k: 'root' }>).done);
}

/** The state after `bytes`, or null when they cannot continue a valid document. */
export function jsonFeed(s: JsonState, bytes: Uint8Array): JsonState | null {
  let stacks = s.stacks;
  let ws = s.ws;
  for (const b of bytes) {
    const next: Stack[] = [];
    for (const st of stacks) step(st, b, next);
    if (next.length === 0) return null;
    stacks = next;
    // Whitespace between tokens (structural only outside strings): one space, or a newline and an indent.
    if (isWs(b) && !stacks.every((st) => st[st.length - 1]!.k === 'str')) {
      if (ws === 0 && (b === 0x20 || b === 0x0a)) ws = b === 0x20 ? -1 : 1;
      else if (ws > 0 && (b === 0x20 || b === 0x09) && ws <= MAX_INDENT) ws++;
      else return null;
    } else ws = 0;
  }
  return { stacks, ws };
}

/** Frames that start a value of `node` with byte b (already consumed), each a possible reading. */
function startValue(node: Node, b: number, out: Frame[]): void {
  switch (node.t) {
    case 'any':
      if (b === 0x7b) out.push({ k: 'obj', node: ANY_OBJECT, seen: [], key: '', phase: 'first' });
      else if (b === 0x5b) out.push({ k: 'arr', node: ANY_ARRAY, count: 0, phase: 'first' });
      else if (b === 0x22) out.push(newString(ANY_STRING));
      else if (b === 0x2d || isDigit(b)) out.push(numberFrame(false, b));
      else for (const text of ['true', 'false', 'null']) if (b === text.charCodeAt(0)) out.push({ k: 'lit', text, i: 1 });
      return;
    case 'object':
      if (b === 0x7b) out.push({ k: 'obj', node, seen: [], key: '', phase: 'first' });
      return;
    case 'array':
      if (b === 0x5b) out.push({ k: 'arr', node, count: 0, phase: 'first' });
      return;
    case 'string':
      if (b === 0x22) out.push(newString(node));
      return;
    case 'number':
      if (b === 0x2d || isDigit(b)) out.push(numberFrame(node.integer, b));
      return;
    case 'literal':
      if (b === node.text.charCodeAt(0)) out.push({ k: 'lit', text: node.text, i: 1 });
      return;
    case 'union':
      for (const o of node.options) startValue(o, b, out);
  }
}

function newString(node: StringNode, isKey = false, keys?: readonly string[]): Frame {
  return { k: 'str', node, isKey, keys, text: '', esc: false, hex: 0, utf8: 0, lo: 0x80, hi: 0xbf, len: 0 };
}

/** A string as the binary string of its UTF-8 bytes (how the automaton sees text). */
function bytesOf(s: string): string {
  return String.fromCharCode(...new TextEncoder().encode(s));
}

/** A key's text as the automaton saw it (escaped, UTF-8 bytes), back to the key. */
function keyOf(text: string): string {
  return JSON.parse(`"${new TextDecoder().decode(Uint8Array.from(text, (c) => c.charCodeAt(0)))}"`) as string;
}

function numberFrame(integer: boolean, b: number): Frame {
  return { k: 'num', integer, phase: b === 0x2d ? 'minus' : b === 0x30 ? 'zero' : 'int' };
}

/** Keys an object may still take: its unseen properties (any key when it allows more). */
function keysLeft(f: Extract<Frame, { k: 'obj' }>): readonly string[] | undefined {
  if (f.node.extra) return undefined;
  return [...f.node.props.keys()].filter((k) => !f.seen.includes(k)).map((k) => bytesOf(escapedInner(k)));
}

/** Push onto `out` every stack that `st` becomes after byte b. */
function step(st: Stack, b: number, out: Stack[]): void {
  const top = st[st.length - 1]!;
  const under = st.slice(0, -1);
  const replace = (f: Frame): void => void out.push([...under, f]);
  const push = (parent: Frame, children: Frame[]) => {
    for (const c of children) {
      if (c.k === 'lit' && c.i === c.text.length) finish([...under, parent], undefined, out); // a one-byte literal
      else out.push([...under, parent, c]);
    }
  };
  switch (top.k) {
    case 'root': {
      if (isWs(b)) return replace(top);
      if (top.done) return;
      const kids: Frame[] = [];
      startValue(top.node, b, kids);
      return push(top, kids);
    }
    case 'obj': {
      if (isWs(b)) return replace(top);
      if (top.phase === 'first' || top.phase === 'key') {
        if (b === 0x22) {
          const keys = keysLeft(top);
          if (keys && keys.length === 0) return;
          return push(top, [newString(ANY_STRING, true, keys)]);
        }
        if (b === 0x7d && top.phase === 'first' && requiredMet(top)) return finish(under, undefined, out);
        return;
      }
      if (top.phase === 'colon') return b === 0x3a ? replace({ ...top, phase: 'value' }) : undefined;
      if (top.phase === 'value') {
        const kids: Frame[] = [];
        startValue(top.node.props.get(top.key) ?? top.node.extra ?? ANY, b, kids);
        return push(top, kids);
      }
      // next
      if (b === 0x2c && (top.node.extra || (keysLeft(top)?.length ?? 1) > 0)) return replace({ ...top, phase: 'key' });
      if (b === 0x7d && requiredMet(top)) return finish(under, undefined, out);
      return;
    }
    case 'arr': {
      if (isWs(b)) return replace(top);
      if (top.phase === 'next') {
        if (b === 0x2c && top.count < top.node.max) return replace({ ...top, phase: 'item' });
        if (b === 0x5d && top.count >= top.node.min) return finish(under, undefined, out);
        return;
      }
      if (b === 0x5d && top.phase === 'first' && top.node.min === 0) return finish(under, undefined, out);
      if (top.phase === 'first' && top.node.max === 0) return;
      const kids: Frame[] = [];
      startValue(top.node.items, b, kids);
      return push({ ...top, phase: 'value' }, kids);
    }
    case 'str':
      return stringStep(top, b, under, out);
    case 'num': {
      const p = top.phase;
      const to = (phase: typeof p) => replace({ ...top, phase });
      if (isDigit(b)) {
        if (p === 'minus') return to(b === 0x30 ? 'zero' : 'int');
        if (p === 'int' || p === 'frac' || p === 'exp') return to(p);
        if (p === 'dot') return to('frac');
        if (p === 'e' || p === 'esign') return to('exp');
        return; // a digit after a leading zero
      }
      if (!top.integer) {
        if (b === 0x2e && (p === 'zero' || p === 'int')) return to('dot');
        if ((b === 0x65 || b === 0x45) && (p === 'zero' || p === 'int' || p === 'frac')) return to('e');
        if ((b === 0x2b || b === 0x2d) && p === 'e') return to('esign');
      }
      // Anything else ends a complete number and belongs to what holds it.
      if (NUMBER_ENDS.has(p)) {
        const ended: Stack[] = [];
        finish(under, undefined, ended);
        for (const s of ended) step(s, b, out);
      }
      return;
    }
    case 'lit':
      if (b !== top.text.charCodeAt(top.i)) return;
      if (top.i + 1 === top.text.length) return finish(under, undefined, out);
      return replace({ ...top, i: top.i + 1 });
  }
}

function requiredMet(f: Extract<Frame, { k: 'obj' }>): boolean {
  for (const r of f.node.required) if (!f.seen.includes(r)) return false;
  return true;
}

/** A string's bytes: escapes, UTF-8 sequences, control characters refused; enums and keys by prefix. */
function stringStep(f: Extract<Frame, { k: 'str' }>, b: number, under: Stack, out: Stack[]): void {
  const n = f.node;
  const limited = f.keys ?? n.values?.map(bytesOf);
  const next = (g: Partial<Extract<Frame, { k: 'str' }>>): void => {
    const h = { ...f, ...g, text: limited || f.isKey ? f.text + String.fromCharCode(b) : '' };
    if (limited && !limited.some((v) => v.startsWith(h.text))) return;
    if (h.len > n.maxLength) return;
    out.push([...under, h]);
  };
  if (f.utf8 > 0) return b >= f.lo && b <= f.hi ? next({ utf8: f.utf8 - 1, lo: 0x80, hi: 0xbf }) : undefined;
  if (f.hex > 0) return isHex(b) ? next({ hex: f.hex - 1, len: f.hex === 1 ? f.len + 1 : f.len }) : undefined;
  if (f.esc) {
    if (b === 0x75) return next({ esc: false, hex: 4 });
    return '"\\/bfnrt'.includes(String.fromCharCode(b)) ? next({ esc: false, len: f.len + 1 }) : undefined;
  }
  if (b === 0x22) {
    if (limited && !limited.includes(f.text)) return;
    if (f.len < n.minLength) return;
    return finish(under, f.isKey ? f.text : undefined, out);
  }
  if (b === 0x5c) return next({ esc: true });
  if (b < 0x20) return;
  if (b < 0x80) return next({ len: f.len + 1 });
  // A UTF-8 lead byte and the range its first continuation byte must fall in (no overlong forms, no
  // surrogates, nothing above U+10FFFF: 0xC0, 0xC1 and bytes above 0xF4 never start a sequence).
  if (b >= 0xc2 && b <= 0xdf) return next({ utf8: 1, len: f.len + 1 });
  if (b >= 0xe0 && b <= 0xef) return next({ utf8: 2, lo: b === 0xe0 ? 0xa0 : 0x80, hi: b === 0xed ? 0x9f : 0xbf, len: f.len + 1 });
  if (b >= 0xf0 && b <= 0xf4) return next({ utf8: 3, lo: b === 0xf0 ? 0x90 : 0x80, hi: b === 0xf4 ? 0x8f : 0xbf, len: f.len + 1 });
}

/** The frame on top of `st` finished a value (a key's text for a key string): its holder moves on. */
function finish(st: Stack, key: string | undefined, out: Stack[]): void {
  const parent = st[st.length - 1]!;
  const under = st.slice(0, -1);
  if (parent.k === 'root') out.push([{ ...parent, done: true }]);
  else if (parent.k === 'obj') {
    if (key === undefined) return void out.push([...under, { ...parent, phase: 'next' }]);
    const k = keyOf(key);
    if (parent.seen.includes(k)) return; // a key given twice
    out.push([...under, { ...parent, key: k, seen: [...parent.seen, k], phase: 'colon' }]);
  } else if (parent.k === 'arr') out.push([...under, { ...parent, count: parent.count + 1, phase: 'next' }]);
}

/** A compiled constraint: the schema's root node ('any JSON object' for json_object). */
export function jsonObjectConstraint(): Node {
  return ANY_OBJECT;
}
