/**
 * Encoder input tokenization (pure; no GPU): the package's tokenizer with its special tokens
 * ([CLS] ... [SEP]), truncated to `maxTokens` the way sentence-transformers truncates
 * (`truncation=True, max_length`: the text is cut, the special tokens stay), and the truncation
 * reported per text, never silent.
 */
import type { Tokenizer } from "../tokenize/tokenizer.js";

export interface EncoderTokens {
  /** Ids the model sees (at most maxTokens, special tokens included). */
  ids: Int32Array;
  /** Tokens before truncation, special tokens included. */
  tokens: number;
  truncated: boolean;
}

export interface EncoderBatchTokens {
  ids: Int32Array[];
  truncated: boolean[];
  tokenCounts: number[];
}

/** One text (see the module comment). */
export function tokenizeForEncoder(tokenizer: Tokenizer, text: string, maxTokens: number): EncoderTokens {
  if (typeof text !== "string") throw new TypeError(`expected a string, got ${text === null ? "null" : typeof text}`);
  const full = tokenizer.encode(text);
  if (full.length <= maxTokens) return { ids: full, tokens: full.length, truncated: false };
  return { ids: tokenizer.encode(text, { truncation: { maxLength: maxTokens } }), tokens: full.length, truncated: true };
}

/** Every text of `texts` (which must be an array of strings). */
export function tokenizeBatchForEncoder(tokenizer: Tokenizer, texts: readonly string[], maxTokens: number): EncoderBatchTokens {
  if (!Array.isArray(texts)) throw new TypeError("texts must be an array of strings");
  const out: EncoderBatchTokens = { ids: [], truncated: [], tokenCounts: [] };
  texts.forEach((t, i) => {
    if (typeof t !== "string") throw new TypeError(`texts[${i}] is not a string (${t === null ? "null" : typeof t})`);
    const r = tokenizeForEncoder(tokenizer, t, maxTokens);
    out.ids.push(r.ids);
    out.truncated.push(r.truncated);
    out.tokenCounts.push(r.tokens);
  });
  return out;
}

/** Indices of the truncated texts. */
export function truncatedIndices(truncated: readonly boolean[]): number[] {
  return truncated.flatMap((t, i) => (t ? [i] : []));
}
