// Chat: turning a conversation into the prompt text a chat model was trained on, with the model's own
// Jinja chat template (GGUF tokenizer.chat_template or tokenizer_config.json's chat_template), rendered
// by @huggingface/jinja: a small engine made for exactly these templates, loaded only when chatting.

import { InvalidInputError, PocketLMError } from '../base/errors.js';
import type { Tokenizer } from './tokenizer.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | (string & {});
  content: string;
}

export interface ChatTemplateOptions {
  /** A template to use instead of the model's own. */
  template?: string;
  /** End with the opening of an assistant turn (default true). */
  addGenerationPrompt?: boolean;
}

type TemplateClass = new (source: string) => { render(items: Record<string, unknown>): string };
let templateClass: TemplateClass | undefined;

async function jinja(): Promise<TemplateClass> {
  if (templateClass) return templateClass;
  try {
    templateClass = (await import('@huggingface/jinja')).Template as TemplateClass;
    return templateClass;
  } catch {
    throw new PocketLMError('chat templates need the optional package @huggingface/jinja: npm install @huggingface/jinja');
  }
}

/** Render a conversation with a chat template. */
export async function renderChat(tokenizer: Tokenizer, messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): Promise<string> {
  const source = options.template ?? tokenizer.vocab.chatTemplate;
  if (!source) throw new InvalidInputError('this model has no chat template: pass one (--chat-template FILE, or { template } in the API)');
  for (const m of messages)
    if (typeof m?.role !== 'string' || typeof m.content !== 'string') throw new InvalidInputError(`a chat message needs a string role and content, got ${JSON.stringify(m)}`);
  const Template = await jinja();
  let template;
  try {
    template = new Template(source);
  } catch (e) {
    throw new InvalidInputError(`the chat template does not parse: ${(e as Error).message}`);
  }
  const piece = (id: number) => tokenizer.tokenToPiece(id);
  try {
    return template.render({
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? true,
      bos_token: piece(tokenizer.bosId),
      eos_token: piece(tokenizer.eosId),
    });
  } catch (e) {
    throw new InvalidInputError(`the chat template failed: ${(e as Error).message}`);
  }
}

/** Tokens of a rendered chat prompt: its special tokens are real, and BOS is added once. */
export function chatTokens(tokenizer: Tokenizer, rendered: string): number[] {
  const bosText = tokenizer.tokenToPiece(tokenizer.bosId);
  const addBos = tokenizer.vocab.addBos && !rendered.startsWith(bosText);
  return tokenizer.encode(rendered, { addSpecial: false, addBos, parseSpecial: true });
}
