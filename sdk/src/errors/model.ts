/** Errors of the decoder (KV cache, model state) and the encoder (config, state, input length). */

/** The sequence would outgrow the KV cache (the model's context window). */
export class ContextWindowExceededError extends Error {
  override readonly name = "ContextWindowExceededError";
  readonly seqLen: number;
  readonly appendLen: number;
  readonly maxTotalSeqLen: number;
  constructor(seqLen: number, appendLen: number, maxTotalSeqLen: number) {
    super(
      `appending ${appendLen} token(s) to a sequence of ${seqLen} exceeds the context window of ` +
        `${maxTotalSeqLen} tokens; reset() the session or shorten the prompt`,
    );
    this.seqLen = seqLen;
    this.appendLen = appendLen;
    this.maxTotalSeqLen = maxTotalSeqLen;
  }
}

/** The model was disposed; or a forward failed midway and the KV cache needs reset(). */
export class DecoderStateError extends Error {
  override readonly name = "DecoderStateError";
}

export class EncoderConfigError extends Error {
  override readonly name = "EncoderConfigError";
}

export interface TruncationReport {
  /** Input positions of the truncated texts. */
  indices: number[];
  /** Their token counts before truncation (special tokens included). */
  tokens: number[];
  /** What they were cut to. */
  maxTokens: number;
}

/** The model was disposed (or its device lost). */
export class EncoderStateError extends Error {
  override readonly name = "EncoderStateError";
}

/** truncation: "error" and a text longer than maxTokens. */
export class InputTooLongError extends RangeError {
  override readonly name = "InputTooLongError";
  readonly indices: number[];
  readonly tokens: number[];
  readonly maxTokens: number;
  constructor(report: TruncationReport) {
    super(
      `${report.indices.length} text(s) exceed the model's ${report.maxTokens}-token limit ` +
        `(text ${report.indices[0]}: ${report.tokens[0]} tokens); split them (e.g. the RAG chunker) or use truncation: "truncate"`,
    );
    this.indices = report.indices;
    this.tokens = report.tokens;
    this.maxTokens = report.maxTokens;
  }
}

/** A sequence does not fit any bucket (callers truncate to the largest bucket first). */
export class SequenceTooLongError extends RangeError {
  override readonly name = "SequenceTooLongError";
  readonly tokens: number;
  readonly maxTokens: number;
  constructor(tokens: number, maxTokens: number) {
    super(`a sequence has ${tokens} tokens, more than the largest bucket (${maxTokens}); truncate first`);
    this.tokens = tokens;
    this.maxTokens = maxTokens;
  }
}
