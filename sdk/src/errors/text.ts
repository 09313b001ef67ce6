/** Errors of the text layers: tokenizer loading, chat templates, sampling parameters and logits. */

export class SamplingParamsError extends RangeError {
  override readonly name = "SamplingParamsError";
}

/** The logits are unusable (NaN, empty, or a bias for a token the model does not have). */
export class InvalidLogitsError extends Error {
  override readonly name: string = "InvalidLogitsError";
}

/**
 * Logits contain NaN: the model produced garbage (a broken kernel, bad weights). An InvalidLogitsError,
 * so the sampler and the greedy argmax (one scan, sample/argmax.ts) fail the same way.
 */
export class NonFiniteLogitsError extends InvalidLogitsError {
  override readonly name = "NonFiniteLogitsError";
}

export class GenerationFinishedError extends Error {
  override readonly name = "GenerationFinishedError";
}

/** A message list the SDK refuses before rendering (the template would fail or render nonsense). */
export class ChatMessageError extends Error {
  override readonly name = "ChatMessageError";
}

/** The template could not be parsed, called `raise_exception`, or failed while rendering. */
export class ChatTemplateError extends Error {
  override readonly name = "ChatTemplateError";
}

/**
 * A grammar (JSON Schema, EBNF, regex, tool-call format) that the grammar engine (xgrammar) refused, or a
 * grammar state the engine cannot continue from. `keyword`: the JSON Schema keyword or construct at fault
 * when known; `detail`: xgrammar's own message.
 */
export class GrammarError extends Error {
  override readonly name = "GrammarError";
  readonly keyword: string | null;
  readonly detail: string;
  constructor(message: string, keyword: string | null = null, detail = "") {
    super(message);
    this.keyword = keyword;
    this.detail = detail;
  }
}

export class TokenizerLoadError extends Error {
  override readonly name = "TokenizerLoadError";
}
