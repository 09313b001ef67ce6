/**
 * The answer prompt: instructions, worked examples (earlier turns), numbered sources + question + a short
 * answer instruction, sized to the chat model's context.
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

/** A worked question-and-answer, shown to the model as an earlier turn of the conversation. */
export interface PromptExample {
  /** The example's sources, numbered [1].. in this order. */
  sources: readonly { title: string; page: number | null; text: string }[];
  question: string;
  /** The answer, citing its sources by number. */
  answer: string;
}

export interface PromptOptions {
  /** Tokens reserved for the answer (default: min(512, contextWindow / 4)). */
  maxAnswerTokens?: number;
  /** Replaces the default instructions. */
  system?: string;
  /** Repeated after the question, where a small model still sees it (default DEFAULT_ANSWER_INSTRUCTION; "" for none). */
  instruction?: string;
  /** Worked examples, as earlier turns (default DEFAULT_PROMPT_EXAMPLES; [] for none). */
  examples?: readonly PromptExample[];
  /** Per-message template overhead when the model has no countMessageTokens (default 8). */
  messageOverheadTokens?: number;
}

// The defaults were measured, not guessed: demo_rag/tools/prompt_experiment.py runs SmolLM2-135M-Instruct
// (fp32 reference, greedy) on variants of this prompt; docs/demo.md has the table. A 135M model follows
// short instructions it sees last, and copies the citation format from a worked example far more reliably
// than from a description of it.
export const DEFAULT_SYSTEM_PROMPT = "Answer the question using the numbered sources. Cite the source number in square brackets, like [1].";

export const DEFAULT_ANSWER_INSTRUCTION = "Answer in one sentence and cite the source number in square brackets, like [1].";

export const DEFAULT_PROMPT_EXAMPLES: readonly PromptExample[] = [
  {
    sources: [
      { title: "museum-guide.pdf", page: 1, text: "The Harbour Museum opened in 1998. Its director is Ines Dahl." },
      { title: "museum-guide.pdf", page: 3, text: "The gift shop sells postcards and maps." },
    ],
    question: "Who is the director of the Harbour Museum?",
    answer: "The director of the Harbour Museum is Ines Dahl [1].",
  },
];

function renderOne(n: number, title: string, page: number | null, pageEnd: number | null, text: string): string {
  const where = page === null ? "" : pageEnd !== null && pageEnd !== page ? `, pages ${page}-${pageEnd}` : `, page ${page}`;
  return `[${n}] ${title}${where}\n${text.trim()}`;
}

export function renderSource(n: number, hit: SearchHit): string {
  return renderOne(n, hit.document.title, hit.page, hit.pageEnd, hit.chunk.text);
}

function userTurn(sources: string, question: string, instruction: string): string {
  return `Sources:\n\n${sources}\n\nQuestion: ${question.trim()}${instruction === "" ? "" : `\n${instruction}`}`;
}

interface RenderStyle {
  system: string;
  instruction: string;
  examples: readonly PromptExample[];
}

function render(question: string, hits: readonly SearchHit[], style: RenderStyle): ChatMessage[] {
  const sources = hits.length === 0 ? "(no sources found)" : hits.map((h, i) => renderSource(i + 1, h)).join("\n\n");
  const examples = style.examples.flatMap((ex): ChatMessage[] => [
    { role: "user", content: userTurn(ex.sources.map((x, i) => renderOne(i + 1, x.title, x.page, null, x.text)).join("\n\n"), ex.question, style.instruction) },
    { role: "assistant", content: ex.answer },
  ]);
  return [{ role: "system", content: style.system }, ...examples, { role: "user", content: userTurn(sources, question, style.instruction) }];
}

export function countPromptTokens(chat: ChatModel, messages: ChatMessage[], overhead: number): number {
  if (chat.countMessageTokens !== undefined) return chat.countMessageTokens(messages);
  return messages.reduce((sum, m) => sum + chat.countTokens(m.content) + overhead, 0);
}

export function buildPrompt(question: string, hits: readonly SearchHit[], chat: ChatModel, opts: PromptOptions = {}): BuiltPrompt {
  const maxAnswerTokens = opts.maxAnswerTokens ?? Math.min(512, Math.floor(chat.contextWindow / 4));
  const overhead = opts.messageOverheadTokens ?? 8;
  const style: RenderStyle = {
    system: opts.system ?? DEFAULT_SYSTEM_PROMPT,
    instruction: opts.instruction ?? DEFAULT_ANSWER_INSTRUCTION,
    examples: opts.examples ?? DEFAULT_PROMPT_EXAMPLES,
  };
  const budget = chat.contextWindow - maxAnswerTokens;
  if (budget <= 0) {
    throw new PromptTooLongError(`maxAnswerTokens (${maxAnswerTokens}) leaves no room in the ${chat.contextWindow}-token context`);
  }
  const count = (m: ChatMessage[]) => countPromptTokens(chat, m, overhead);
  const plain: RenderStyle = { ...style, examples: [] };

  // The worked examples help a small model cite, but never at the cost of a source: they are left out when
  // the sources that fit without them would not all fit with them (a small context window).
  const fitted = fit(question, hits, style, budget, count);
  const chosen = style.examples.length > 0 && fitted !== null && fitted.n < hits.length ? fit(question, hits, plain, budget, count) : null;
  const best = chosen !== null && fitted !== null && chosen.n > fitted.n ? chosen : (fitted ?? fit(question, hits, plain, budget, count));
  if (best === null) {
    const bareTokens = count(render(question, [], plain));
    throw new PromptTooLongError(
      `the question and instructions alone take ${bareTokens} tokens; the budget is ${budget} (context ${chat.contextWindow} - answer ${maxAnswerTokens})`,
    );
  }
  const { n, messages, tokens } = best;
  return {
    messages,
    sources: hits.slice(0, n).map((hit, i) => ({ n: i + 1, hit })),
    dropped: hits.slice(n),
    promptTokens: tokens,
    maxAnswerTokens,
  };
}

/**
 * The largest prefix of the ranked hits that fits `budget` in this style, or null when not even the question
 * does. Tokens grow with the prefix, so binary search it, then confirm with a real count (counts need not be
 * exactly additive).
 */
function fit(
  question: string,
  hits: readonly SearchHit[],
  style: RenderStyle,
  budget: number,
  count: (m: ChatMessage[]) => number,
): { n: number; messages: ChatMessage[]; tokens: number } | null {
  if (count(render(question, [], style)) > budget) return null;
  let lo = 0;
  let hi = hits.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (count(render(question, hits.slice(0, mid), style)) <= budget) lo = mid;
    else hi = mid - 1;
  }
  let n = lo;
  let messages = render(question, hits.slice(0, n), style);
  let tokens = count(messages);
  while (tokens > budget && n > 0) {
    n--;
    messages = render(question, hits.slice(0, n), style);
    tokens = count(messages);
  }
  return { n, messages, tokens };
}
