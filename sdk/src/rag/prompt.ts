/**
 * The answer prompt: instructions + numbered sources + question, sized to the chat model's context.
 *
 * Budget: contextWindow - maxAnswerTokens. Sources are taken in rank order and numbered [1]..[n]; while the
 * prompt is over budget the lowest-ranked source is dropped (and reported), so the best sources always
 * survive. Token counts use `chat.countMessageTokens` when the model has it (exact, chat template
 * included), else `countTokens(content) + messageOverheadTokens` per message.
 */

import { PromptTooLongError } from "./errors.js";
import type { SearchHit } from "./search.js";
import type { ChatMessage, ChatModel } from "./types.js";

export interface PromptSource {
  /** The number the model cites, 1-based. */
  n: number;
  hit: SearchHit;
}

export interface BuiltPrompt {
  messages: ChatMessage[];
  sources: PromptSource[];
  /** Hits left out because they did not fit, best first. */
  dropped: SearchHit[];
  promptTokens: number;
  maxAnswerTokens: number;
}

export interface PromptOptions {
  /** Tokens reserved for the answer (default: min(512, contextWindow / 4)). */
  maxAnswerTokens?: number;
  /** Replaces the default instructions. */
  system?: string;
  /** Per-message template overhead when the model has no countMessageTokens (default 8). */
  messageOverheadTokens?: number;
}

export const DEFAULT_SYSTEM_PROMPT =
  "You answer questions using only the numbered sources provided. Cite every claim with the number of its " +
  "source in square brackets, like [1] or [1, 3]. If the sources do not contain the answer, say that you " +
  "do not know. Do not invent sources.";

export function renderSource(n: number, hit: SearchHit): string {
  const where =
    hit.page === null ? "" : hit.pageEnd !== null && hit.pageEnd !== hit.page ? `, pages ${hit.page}-${hit.pageEnd}` : `, page ${hit.page}`;
  return `[${n}] ${hit.document.title}${where}\n${hit.chunk.text.trim()}`;
}

function render(question: string, hits: readonly SearchHit[], system: string): ChatMessage[] {
  const sources = hits.length === 0 ? "(no sources found)" : hits.map((h, i) => renderSource(i + 1, h)).join("\n\n");
  return [
    { role: "system", content: system },
    { role: "user", content: `Sources:\n\n${sources}\n\nQuestion: ${question.trim()}` },
  ];
}

export function countPromptTokens(chat: ChatModel, messages: ChatMessage[], overhead: number): number {
  if (chat.countMessageTokens !== undefined) return chat.countMessageTokens(messages);
  return messages.reduce((sum, m) => sum + chat.countTokens(m.content) + overhead, 0);
}

export function buildPrompt(question: string, hits: readonly SearchHit[], chat: ChatModel, opts: PromptOptions = {}): BuiltPrompt {
  const maxAnswerTokens = opts.maxAnswerTokens ?? Math.min(512, Math.floor(chat.contextWindow / 4));
  const overhead = opts.messageOverheadTokens ?? 8;
  const system = opts.system ?? DEFAULT_SYSTEM_PROMPT;
  const budget = chat.contextWindow - maxAnswerTokens;
  if (budget <= 0) {
    throw new PromptTooLongError(`maxAnswerTokens (${maxAnswerTokens}) leaves no room in the ${chat.contextWindow}-token context`);
  }
  const count = (m: ChatMessage[]) => countPromptTokens(chat, m, overhead);

  const bare = render(question, [], system);
  const bareTokens = count(bare);
  if (bareTokens > budget) {
    throw new PromptTooLongError(
      `the question and instructions alone take ${bareTokens} tokens; the budget is ${budget} (context ${chat.contextWindow} - answer ${maxAnswerTokens})`,
    );
  }
  // Largest prefix of the ranked hits that fits: tokens grow with the prefix, so binary search it, then
  // confirm with a real count (counts need not be exactly additive).
  let lo = 0;
  let hi = hits.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (count(render(question, hits.slice(0, mid), system)) <= budget) lo = mid;
    else hi = mid - 1;
  }
  let n = lo;
  let messages = render(question, hits.slice(0, n), system);
  let tokens = count(messages);
  while (tokens > budget && n > 0) {
    n--;
    messages = render(question, hits.slice(0, n), system);
    tokens = count(messages);
  }
  return {
    messages,
    sources: hits.slice(0, n).map((hit, i) => ({ n: i + 1, hit })),
    dropped: hits.slice(n),
    promptTokens: tokens,
    maxAnswerTokens,
  };
}
