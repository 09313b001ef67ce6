/** Options of Tokenizer.decode, on their own: the stream decoder (stream.ts) takes them too. */
export interface DecodeOptions {
  /** Drop special tokens (added tokens marked `special`, e.g. <s>, <|im_end|>, [CLS]). Default false. */
  skipSpecialTokens?: boolean;
  /**
   * transformers' `clean_up_tokenization_spaces` (" ." -> ".", " n't" -> "n't"). Defaults to
   * tokenizer_config.json's value, false when absent (transformers 5), and to false for BPE models whatever
   * the config says, because it corrupts their text (transformers 5 skips it for BPE too).
   */
  cleanUpTokenizationSpaces?: boolean;
}
