/**
 * The two model interfaces the RAG index is built against. The index never loads a model itself: the
 * app (or, later, the Hearth engine) passes objects that satisfy these, so the storage and retrieval
 * layer can be tested and used without WebGPU.
 */

/**
 * A text embedding model.
 *
 * Contract (the index relies on every point):
 * - `modelId` names the model *and* everything that changes its vectors (weights, quantisation,
 *   pooling, prefix such as "passage: "). The index stores it and refuses to mix vectors of two ids.
 * - `embed(texts)` returns one vector of length `dim` per input text, in order. Vectors need not be
 *   normalised; the index L2-normalises them before it stores them.
 * - `countTokens(text)` is the number of tokens `embed` would consume for `text`, *including* any special
 *   tokens the model adds (CLS/SEP, BOS). The chunker keeps `countTokens(chunk) <= maxTokens`, so an
 *   embedder that truncates silently never sees an over-long chunk.
 * - `embed` should honour `signal` (reject with the signal's reason) but the index also checks it between
 *   batches.
 */
export interface Embedder {
  readonly modelId: string;
  readonly dim: number;
  /** Largest input, in the model's own tokens (special tokens included), that `embed` handles whole. */
  readonly maxTokens: number;
  embed(texts: string[], signal?: AbortSignal): Promise<Float32Array[]>;
  countTokens(text: string): number;
}

/** One chat message, OpenAI-shaped. */
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface ChatStreamOptions {
  signal?: AbortSignal;
  /** Upper bound on generated tokens. */
  maxTokens: number;
}

/**
 * A chat model that streams text.
 *
 * - `stream(messages, opts)` yields text pieces (tokens or larger), in order; the answer is their
 *   concatenation. It must stop when `opts.signal` aborts (by throwing or by ending).
 * - `contextWindow` is the model's total context (prompt + answer) in tokens.
 * - `countTokens(text)` counts tokens of plain text with the model's tokenizer.
 * - `countMessageTokens(messages)` (optional) counts a whole prompt after the chat template is applied.
 *   Without it the index uses `sum(countTokens(content)) + messageOverheadTokens` per message (see
 *   `buildPrompt`), which is an estimate: give the exact count when you have the template.
 */
export interface ChatModel {
  readonly contextWindow: number;
  stream(messages: ChatMessage[], opts: ChatStreamOptions): AsyncIterable<string>;
  countTokens(text: string): number;
  countMessageTokens?(messages: ChatMessage[]): number;
}
