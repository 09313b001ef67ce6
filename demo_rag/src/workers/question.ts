/**
 * The question's length is checked before anything is embedded or retrieved: a question too long for the
 * prompt would otherwise be embedded (and truncated by the encoder), searched, and only then refused by
 * the prompt builder, after seconds (on a software GPU, minutes) of work. The refusal is in words and in
 * characters, the unit a person can act on, and never repeats the question.
 */
import { buildPrompt, type ChatModel, type PromptOptions } from "@hearth/sdk/rag";

/** "31,032": digits grouped the same way in every locale, so messages (and tests) do not vary. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

export class QuestionTooLongError extends Error {
  override readonly name = "QuestionTooLongError";
  constructor(
    /** The question's length in characters (trimmed). */
    readonly chars: number,
    /** About how many characters fit, at this question's characters per token. */
    readonly maxChars: number,
    /** Its tokens when counted whole, else null (only a prefix was counted: already over the limit). */
    readonly tokens: number | null,
    readonly maxTokens: number,
  ) {
    super(`Your question is too long (${formatCount(chars)} characters); the model can take about ${formatCount(maxChars)}. Shorten it.`);
  }
}

/**
 * A question longer than this many characters per allowed token is counted on its first such characters
 * only: a whole document pasted by mistake is refused without tokenizing all of it.
 */
export const PROBE_CHARS_PER_TOKEN = 32;

/**
 * Prompt options for a context window: short instructions and a shorter answer when every token counts.
 * Answers from passages are a sentence or two: 256 tokens is ample, and leaves the rest of a 2048-4096
 * window to the passages (a 512-token reserve would only make a looping answer longer).
 */
export function promptOptionsFor(contextWindow: number): PromptOptions {
  if (contextWindow >= 1024) return { maxAnswerTokens: 256 };
  return { system: "Answer from the numbered sources only. Cite them like [1].", maxAnswerTokens: Math.min(64, Math.floor(contextWindow / 5)) };
}

/**
 * The longest question (in the chat model's tokens): a quarter of the prompt budget, so that passages fill
 * the rest, and never more than the text encoder reads (it would silently drop the end of the question).
 */
export function maxQuestionTokens(chat: ChatModel, opts: PromptOptions, encoderMaxTokens: number): number {
  const answer = opts.maxAnswerTokens ?? Math.min(512, Math.floor(chat.contextWindow / 4));
  return Math.max(16, Math.min(encoderMaxTokens, Math.floor((chat.contextWindow - answer) / 4)));
}

/** Characters that fit `maxTokens`, at the ratio of characters to tokens measured on `chars`/`tokens`; "about", so rounded down. */
function charsFor(maxTokens: number, chars: number, tokens: number): number {
  const exact = (maxTokens * chars) / Math.max(1, tokens);
  const step = exact >= 1000 ? 100 : exact >= 100 ? 10 : 1;
  return Math.max(1, Math.floor(exact / step) * step);
}

/**
 * Throw {@link QuestionTooLongError} before any retrieval when the question takes more than
 * {@link maxQuestionTokens}, or when the instructions and the question alone do not fit the prompt.
 */
export function checkQuestion(question: string, chat: ChatModel, opts: PromptOptions, encoderMaxTokens: number): void {
  const q = question.trim();
  const max = maxQuestionTokens(chat, opts, encoderMaxTokens);
  const probe = max * PROBE_CHARS_PER_TOKEN;
  if (q.length > probe) {
    // Token counts only grow as text is appended: a prefix over the limit settles it.
    const prefixTokens = chat.countTokens(q.slice(0, probe));
    if (prefixTokens > max) throw new QuestionTooLongError(q.length, charsFor(max, probe, prefixTokens), null, max);
  }
  const tokens = chat.countTokens(q);
  if (tokens > max) throw new QuestionTooLongError(q.length, charsFor(max, q.length, tokens), tokens, max);
  try {
    buildPrompt(question, [], chat, opts); // instructions + question alone must fit too
  } catch (err) {
    if ((err as { name?: unknown }).name !== "PromptTooLongError") throw err;
    // The instructions leave less room than `max` (a small context window): say how much, in characters.
    const room = Math.max(1, max - overBy(question, chat, opts, tokens));
    throw new QuestionTooLongError(q.length, charsFor(room, q.length, tokens), tokens, room);
  }
}

/** How many tokens the question must lose for the bare prompt to fit (bisection on its words). */
function overBy(question: string, chat: ChatModel, opts: PromptOptions, tokens: number): number {
  const words = question.trim().split(/(\s+)/u);
  const fits = (n: number): boolean => {
    try {
      buildPrompt(words.slice(0, n).join(""), [], chat, opts);
      return true;
    } catch {
      return false;
    }
  };
  let lo = 0;
  let hi = words.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return tokens - chat.countTokens(words.slice(0, lo).join(""));
}
