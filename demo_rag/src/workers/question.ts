/**
 * The question's length is checked before anything is embedded or retrieved: a question too long for the
 * prompt would otherwise be embedded (and truncated by the encoder), searched, and only then refused by
 * the prompt builder, after seconds of work on a CPU build.
 */
import { buildPrompt, type ChatModel, type PromptOptions } from "@hearth/sdk/rag";

export class QuestionTooLongError extends Error {
  override readonly name = "QuestionTooLongError";
  constructor(
    readonly tokens: number,
    readonly maxTokens: number,
  ) {
    super(
      `Your question is ${tokens} tokens long; at most ${maxTokens} fit with room left for the passages it is answered from. ` +
        "Shorten it, or ask several shorter questions.",
    );
  }
}

/**
 * The longest question (in the chat model's tokens): a quarter of the prompt budget, so that passages fill
 * the rest, and never more than the text encoder reads (it would silently drop the end of the question).
 */
export function maxQuestionTokens(chat: ChatModel, opts: PromptOptions, encoderMaxTokens: number): number {
  const answer = opts.maxAnswerTokens ?? Math.min(512, Math.floor(chat.contextWindow / 4));
  return Math.max(16, Math.min(encoderMaxTokens, Math.floor((chat.contextWindow - answer) / 4)));
}

/** Throw {@link QuestionTooLongError} (or the prompt builder's PromptTooLongError) before any retrieval. */
export function checkQuestion(question: string, chat: ChatModel, opts: PromptOptions, encoderMaxTokens: number): void {
  const tokens = chat.countTokens(question.trim());
  const max = maxQuestionTokens(chat, opts, encoderMaxTokens);
  if (tokens > max) throw new QuestionTooLongError(tokens, max);
  buildPrompt(question, [], chat, opts); // instructions + question alone must fit too
}
