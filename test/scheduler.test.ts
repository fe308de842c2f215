// The server's continuous batching (src/server/scheduler.ts): many generations at once give each the
// text it gets alone, reuse cached prefixes, queue and refuse politely, and free cancelled slots.
import { describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../src/engine.js';
import { QueueFullError, Scheduler } from '../src/server/scheduler.js';
import { hasShared, STORIES_BIN, STORIES_TOK } from './helpers.js';

const PROMPTS = ['Once upon a time', 'Lily and Tom went to the park', 'The cat', 'One day, a big dog', 'Sam had a red ball', 'It was a sunny day', 'The little bird', 'Mom said'];

describe.skipIf(!hasShared)('continuous batching (stories260K)', () => {
  const load = (threads = 1) => loadModel(STORIES_BIN, { tokenizer: STORIES_TOK, device: 'cpu', threads });

  const alone = async (m: Model, prompt: string, o: object) => {
    const g = m.generate(prompt, { ...o, contextLength: 512 });
    return { text: await g.text(), tokens: [...g.tokens] };
  };

  it('8 requests at once, greedy and sampled: each gets the tokens it gets alone', async () => {
    const m = await load();
    const s = new Scheduler(m, { parallel: 8, contextLength: 512 });
    const opts = PROMPTS.map((_, i) => (i % 2 ? { temperature: 0, maxTokens: 40 } : { temperature: 0.9, seed: i + 1, maxTokens: 40 }));
    const jobs = PROMPTS.map((p, i) => s.submit(p, opts[i]));
    const texts = await Promise.all(jobs.map((j) => j.text()));
    for (const [i, p] of PROMPTS.entries()) {
      const ref = await alone(m, p, opts[i]!);
      expect(jobs[i]!.seq.tokens, p).toEqual(ref.tokens);
      expect(texts[i]).toBe(ref.text);
    }
    // Decoding shared the steps: far fewer steps than tokens.
    expect(s.stats.steps).toBeLessThan(jobs.reduce((n, j) => n + j.seq.tokens.length, 0) / 3);
    m.dispose();
  });

  it('more requests than slots: the rest wait, all finish; a full queue is refused with QueueFullError', async () => {
    const m = await load();
    const s = new Scheduler(m, { parallel: 2, queue: 3, contextLength: 256 });
    const jobs = PROMPTS.slice(0, 5).map((p) => s.submit(p, { temperature: 0, maxTokens: 10 }));
    expect(() => s.submit('x', { maxTokens: 5 })).toThrow(QueueFullError);
    const texts = await Promise.all(jobs.map((j) => j.text()));
    for (const [i, t] of texts.entries()) expect(t).toBe((await alone(m, PROMPTS[i]!, { temperature: 0, maxTokens: 10 })).text);
    expect(await s.submit('x', { temperature: 0, maxTokens: 5 }).text()).toBeTypeOf('string'); // room again
    m.dispose();
  });

  it('a prompt that extends a finished one reuses its cached tokens (a chat\'s earlier turns) and gets the same text', async () => {
    const m = await load();
    const s = new Scheduler(m, { parallel: 2, contextLength: 512 });
    const first = s.submit('Once upon a time', { temperature: 0, maxTokens: 20 });
    const firstText = await first.text();
    const before = s.stats.reusedTokens;
    const follow = 'Once upon a time' + firstText + ' Then';
    const second = s.submit(follow, { temperature: 0, maxTokens: 20 });
    expect(await second.text()).toBe((await alone(m, follow, { temperature: 0, maxTokens: 20 })).text);
    expect(s.stats.reusedTokens - before).toBeGreaterThan(20);
    m.dispose();
  });

  it('a cancelled request frees its slot for the next; maxTokens 0 finishes at once; bad options fail at submit', async () => {
    const m = await load();
    const s = new Scheduler(m, { parallel: 1, queue: 4, contextLength: 256 });
    const long = s.submit('Once upon a time', { maxTokens: 200, ignoreEos: true, seed: 1 });
    const waiting = s.submit('The cat', { temperature: 0, maxTokens: 8 });
    let pieces = 0;
    for await (const _ of long) if (++pieces === 3) long.cancel();
    expect(long.seq.tokens.length).toBeLessThan(200);
    expect(await waiting.text()).toBe((await alone(m, 'The cat', { temperature: 0, maxTokens: 8 })).text);
    expect(await s.submit('x', { maxTokens: 0 }).text()).toBe('');
    expect(() => s.submit('x', { temperature: -1 })).toThrow(/temperature/);
    expect(() => s.submit('x '.repeat(400))).toThrow(/longer than the context of 256/);
    expect(() => new Scheduler(m, { parallel: 0 })).toThrow(/parallel must be an integer from 1 to 32/);
    m.dispose();
  });

  it('an AbortSignal cancels its request (the text so far standing, stop reason aborted) and frees the slot; an already aborted one never runs', async () => {
    const m = await load();
    const s = new Scheduler(m, { parallel: 1, queue: 4, contextLength: 256 });
    const c = new AbortController();
    const long = s.submit('Once upon a time', { temperature: 0, maxTokens: 200, ignoreEos: true, signal: c.signal });
    const waiting = s.submit('The cat', { temperature: 0, maxTokens: 8 });
    const never = s.submit('A dog', { temperature: 0, maxTokens: 8, signal: AbortSignal.abort() });
    let text = '';
    for await (const piece of long) {
      text += piece;
      if (long.seq.tokens.length >= 4) c.abort();
    }
    expect(long.seq.stats.stopReason).toBe('aborted');
    expect(long.seq.tokens.length).toBeLessThan(200);
    const ref = await alone(m, 'Once upon a time', { temperature: 0, maxTokens: long.seq.tokens.length, ignoreEos: true });
    expect([...long.seq.tokens]).toEqual(ref.tokens);
    expect(text).toBe(ref.text);
    expect(await waiting.text()).toBe((await alone(m, 'The cat', { temperature: 0, maxTokens: 8 })).text);
    expect([await never.text(), never.seq.tokens.length, never.seq.stats.stopReason]).toEqual(['', 0, 'aborted']);
    // a request that ends on its own takes its listener off the signal (a signal kept for many requests holds none of them)
    const kept = new AbortController();
    const added: unknown[] = [], removed: unknown[] = [];
    const [add, remove] = [kept.signal.addEventListener.bind(kept.signal), kept.signal.removeEventListener.bind(kept.signal)];
    kept.signal.addEventListener = ((t: string, f: never, o: never) => (added.push(f), add(t, f, o))) as typeof add;
    kept.signal.removeEventListener = ((t: string, f: never, o: never) => (removed.push(f), remove(t, f, o))) as typeof remove;
    await s.submit('A bird', { temperature: 0, maxTokens: 4, signal: kept.signal }).text();
    expect(added.length).toBe(1);
    expect(removed).toEqual(added);
    m.dispose();
  });

  it('a slot whose KV cache cannot be made fails that request with the reason; the next request is served', async () => {
    const { OutOfMemoryError } = await import('../src/base/errors.js');
    const m = await load();
    const s = new Scheduler(m, { parallel: 2, contextLength: 256 });
    const t = m.transformer;
    const make = t.newState.bind(t);
    t.newState = () => { throw new OutOfMemoryError('a 256-token context needs a 1.0 MB KV cache and it does not fit'); };
    await expect(s.submit('The cat', { maxTokens: 4 }).text()).rejects.toThrow(OutOfMemoryError);
    t.newState = make;
    expect(await s.submit('The cat', { temperature: 0, maxTokens: 8 }).text()).toBe((await alone(m, 'The cat', { temperature: 0, maxTokens: 8 })).text);
    expect(s.stats.errors).toBe(1);
    m.dispose();
  });
});
