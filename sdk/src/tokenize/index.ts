/** Text in and out: tokenizers (tokenizer.json via @huggingface/tokenizers), streaming decode, chat templates. */
export type {
  DecodeOptions,
  EncodeOptions,
  SpecialToken,
  SpecialTokens,
  Tokenizer,
  TruncationOptions,
} from "./tokenizer.js";
export { loadTokenizer, TokenizerLoadError, type TokenizerFiles } from "./load.js";
export { HFTokenizer, type TokenizerConfigJson } from "./hf-tokenizer.js";
export { importTokenizersJs, type TokenizersJs } from "./tokenizers-js.js";
export { StreamDecoder, type StreamDecoderOptions } from "./stream.js";
export {
  ChatMessageError,
  ChatTemplate,
  ChatTemplateError,
  validateMessages,
  type ChatMessage,
  type ChatRole,
  type ChatTemplateSources,
  type RenderOptions,
} from "./chat-template.js";
