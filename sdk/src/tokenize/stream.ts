/**
 * Incremental detokenization for streaming generation.
 *
 * Decoding each token on its own is wrong in two ways: byte-level BPE (and sentencepiece byte
 * fallback) splits multi-byte characters across tokens, so a lone token decodes to U+FFFD; and
 * decoders such as Metaspace strip the leading space of the first token they see, so " world"
 * decoded alone loses its space. This is the algorithm of the Rust tokenizers' `DecodeStream`
 * (tokenizers >= 0.21): decode a small window of recent ids, and emit the part past the window's
 * previous text only once it does not end in U+FFFD (an incomplete character).
 */
import type { DecodeOptions } from "./decode-options.js";

export interface StreamDecoderOptions {
  /** As in {@link DecodeOptions}; default true, since generated special tokens are rarely wanted as text. */
  skipSpecialTokens?: boolean;
  /**
   * Ids that precede the generated ones (the tail of the prompt: a few tokens are enough). They are
   * never emitted; they only give the first generated token its context, e.g. its leading space.
   */
  context?: ArrayLike<number>;
}

interface Decodes {
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
}

const REPLACEMENT = "\uFFFD";

export class StreamDecoder {
  readonly #tokenizer: Decodes;
  readonly #options: DecodeOptions;
  /** The window: ids whose text was (partly) emitted, then ids whose text is still pending. */
  #ids: number[];
  /** Text of `#ids.slice(0, #prefixIndex)`, which has been emitted (or is context). */
  #prefix: string;
  #prefixIndex: number;

  constructor(tokenizer: Decodes, options: StreamDecoderOptions = {}) {
    this.#tokenizer = tokenizer;
    // No clean-up: it rewrites text across token boundaries (" ." -> "."), and emitted text cannot be taken back.
    this.#options = { skipSpecialTokens: options.skipSpecialTokens ?? true, cleanUpTokenizationSpaces: false };
    this.#ids = options.context === undefined ? [] : Array.from(options.context);
    this.#prefix = this.#decode(this.#ids);
    this.#prefixIndex = this.#ids.length;
  }

  /** Add one token; returns the newly complete text ("" while a character is still incomplete). */
  push(id: number): string {
    this.#ids.push(id);
    const text = this.#decode(this.#ids);
    if (text.length <= this.#prefix.length || text.endsWith(REPLACEMENT)) return "";
    // The window's text normally extends its prefix. If a decoder rewrote earlier text anyway, emit from
    // where they diverge rather than fail mid-stream (the Rust version raises an error here).
    const from = text.startsWith(this.#prefix) ? this.#prefix.length : commonPrefixLength(text, this.#prefix);
    const fresh = text.slice(from);
    // Slide the window: keep the ids after the old prefix, so the next decode still sees one token of context.
    this.#ids = this.#ids.slice(this.#prefixIndex);
    this.#prefix = this.#decode(this.#ids);
    this.#prefixIndex = this.#ids.length;
    return fresh;
  }

  /** Text still held back at the end of generation (an incomplete character decodes to U+FFFD). */
  flush(): string {
    const text = this.#decode(this.#ids);
    const fresh = text.length > this.#prefix.length ? text.slice(commonPrefixLength(text, this.#prefix)) : "";
    this.#ids = [];
    this.#prefix = "";
    this.#prefixIndex = 0;
    return fresh;
  }

  #decode(ids: readonly number[]): string {
    return ids.length === 0 ? "" : this.#tokenizer.decode(ids, this.#options);
  }
}

function commonPrefixLength(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}
