import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chatTokens, renderChat } from '../src/tokenizer/chat.js';
import { loadModel } from '../src/engine.js';
import { encodeGGUF } from '../src/format/gguf-writer.js';
import { CHATML, ROOT, tinyLlama } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'pocketlm-chat-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const chatModel = () => loadModel(encodeGGUF(tinyLlama({ chat: true, ctx: 128 })), { threads: 1 });
const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }];

describe('chat templates', () => {
  it('render the model\'s template (ChatML here) with @huggingface/jinja', async () => {
    const m = await chatModel();
    expect(await renderChat(m.tokenizer, messages)).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    expect(await renderChat(m.tokenizer, messages, { addGenerationPrompt: false })).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n');
  });

  it('the rendered prompt\'s special tokens become real tokens, with BOS once', async () => {
    const m = await chatModel();
    const start = m.tokenizer.vocab.tokens.indexOf('<|im_start|>');
    const end = m.tokenizer.vocab.tokens.indexOf('<|im_end|>');
    const ids = chatTokens(m.tokenizer, await renderChat(m.tokenizer, messages));
    expect(ids[0]).toBe(m.tokenizer.bosId);
    expect(ids.filter((i) => i === m.tokenizer.bosId).length).toBe(1);
    expect(ids.filter((i) => i === start).length).toBe(3);
    expect(ids.filter((i) => i === end).length).toBe(2);
    expect(m.tokenizer.endOfTurnIds()).toEqual(new Set([m.tokenizer.eosId, end]));
  });

  it('chat() streams a reply that stops at an end-of-turn token', async () => {
    const m = await chatModel();
    // Whatever token greedy decoding picks first, declaring it an end-of-turn token must end the reply at once.
    const first = (await m.chat(messages, { temperature: 0, maxTokens: 1 }));
    await first.text();
    const t = first.tokens[0];
    if (t === undefined) return expect(first.stats.stopReason).toBe('eos'); // it already picked an end-of-turn token
    const g = await m.chat(messages, { temperature: 0, maxTokens: 10, stopTokenIds: [t] });
    expect(await g.text()).toBe('');
    expect(g.stats.stopReason).toBe('eos');
  });

  it('clear errors: no template, a template that does not parse, a bad message', async () => {
    const plain = await loadModel(encodeGGUF(tinyLlama()), { threads: 1 });
    await expect(plain.chat(messages)).rejects.toThrow(/this model has no chat template: pass one/);
    await expect(plain.chat(messages, { template: '{% for %}' })).rejects.toThrow(/the chat template does not parse/);
    const m = await chatModel();
    await expect(m.chat([{ role: 'user' } as never])).rejects.toThrow(/needs a string role and content/);
  });
});

describe('chat on the command line', () => {
  const file = join(tmp, 'tiny-chat.gguf');
  writeFileSync(file, encodeGGUF(tinyLlama({ chat: true, ctx: 256 })));
  const cli = (args: string[], input = '') => spawnSync(process.execPath, [join(ROOT, 'dist', 'src', 'cli', 'main.js'), ...args], { input, encoding: 'utf8', timeout: 60_000 });

  it('pocketlm chat keeps a conversation over stdin, one reply per line', () => {
    const r = cli(['chat', '--model', file, '--device', 'cpu', '--seed', '3', '--max-tokens', '4', '--system', 'Be brief.'], 'Hi\nAnd then?\n');
    expect(r.stderr).not.toMatch(/pocketlm:/);
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n').length).toBe(3); // two replies, each ended by a newline
  });

  it('each turn reuses the conversation\'s KV cache and replies what a fresh chat() replies', async () => {
    const r = cli(['chat', '--model', file, '--device', 'cpu', '--temperature', '0', '--max-tokens', '6', '--system', 'Be brief.'], 'Hi\nAnd then?\nMore\n');
    expect(r.status).toBe(0);
    const m = await chatModel();
    const messages = [{ role: 'system', content: 'Be brief.' }];
    let expected = '';
    for (const line of ['Hi', 'And then?', 'More']) {
      messages.push({ role: 'user', content: line });
      const reply = await (await m.chat(messages, { temperature: 0, maxTokens: 6 })).text();
      expected += reply + '\n'; // the CLI ends each reply with a newline
      messages.push({ role: 'assistant', content: reply });
    }
    expect(r.stdout).toBe(expected);
  });

  it('generate --chat --system uses the template; --chat-template overrides it', () => {
    const a = cli(['generate', '--model', file, '--seed', '3', '--max-tokens', '4', '--system', 'Be brief.', 'Hi']);
    expect(a.status).toBe(0);
    const tpl = join(tmp, 'tpl.jinja');
    writeFileSync(tpl, CHATML);
    const b = cli(['generate', '--model', file, '--seed', '3', '--max-tokens', '4', '--chat-template', tpl, '--system', 'Be brief.', 'Hi']);
    expect(b.stdout).toBe(a.stdout);
    const bad = cli(['generate', '--model', file, '--chat-template', join(tmp, 'missing.jinja'), '--chat', 'Hi']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/--chat-template .*missing.jinja: no such file/);
  });
});
