/**
 * The tokenizer contract the rest of the SDK codes against. The one implementation today wraps
 * `@huggingface/tokenizers` (see hf-tokenizer.ts); keeping the interface separate lets the engine and
 * the sampler depend on this shape, not on that library.
 */
import type { StreamDecoder, StreamDecoderOptions } from "./stream.js";
import type { DecodeOptions } from "./decode-options.js";
export type { DecodeOptions } from "./decode-options.js";

export interface TruncationOptions {
  /** Most ids the result may hold, special tokens included (what transformers calls `max_length`). */
  maxLength: number;
  /** Which end loses tokens. Defaults to tokenizer_config.json's `truncation_side`, else "right". */
  side?: "left" | "right";
}

export interface EncodeOptions {
  /**
   * Let the post-processor add its special tokens (BOS for Llama, [CLS]/[SEP] for BERT). Default true,
   * as in transformers. Pass false for text rendered by a chat template, which already has them.
   */
  addSpecialTokens?: boolean;
  /**
   * Cut the sequence to `maxLength` ids. Off unless given: tokenizer.json's own `truncation`/`padding`
   * blocks are ignored, as transformers ignores them unless asked (encoder packages say which
   * `max_seq_length` to truncate to).
   */
  truncation?: TruncationOptions;
}

export interface SpecialToken {
  readonly id: number;
  readonly content: string;
}

/** Named special tokens from tokenizer_config.json; null where the config names none. */
export interface SpecialTokens {
  readonly bos: SpecialToken | null;
  readonly eos: SpecialToken | null;
  readonly pad: SpecialToken | null;
  readonly unk: SpecialToken | null;
}

export interface Tokenizer {
  /**
   * One more than the largest token id the tokenizer knows, added tokens included (transformers'
   * `len(tokenizer)`). A model's logits may be longer (vocab padded to a multiple of 64 or 128); ids past
   * this have no text, and {@link Tokenizer.decode} skips them.
   */
  readonly vocabSize: number;
  readonly special: SpecialTokens;
  /** Ids of every special token (the named ones and all added tokens marked `special`). */
  readonly specialIds: ReadonlySet<number>;
  encode(text: string, options?: EncodeOptions): Int32Array;
  /** Ids without a token (see {@link Tokenizer.vocabSize}) are skipped, as the Rust tokenizers do. */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** Incremental decoder for streaming generation: it emits only complete characters. */
  streamDecoder(options?: StreamDecoderOptions): StreamDecoder;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
}
