/**
 * OpenAI-shaped request and response types (chat completions and legacy text completions), as the engine
 * accepts and returns them. Field names and nesting follow OpenAI's API reference; the objects are plain
 * JSON, so they cross a Worker boundary unchanged.
 *
 * Differences from OpenAI, all additive:
 *  - `finish_reason` may be "abort" (interrupt()).
 *  - `usage` adds `prefill_tokens_per_s`, `decode_tokens_per_s`, `time_to_first_token_ms`; its
 *    `prompt_tokens_details.cached_tokens` counts prompt tokens reused from the KV cache.
 *  - Requests take the usual extensions `top_k`, `repetition_penalty`, `ignore_eos`, `stop_token_ids`
 *    (vLLM / WebLLM spelling), `return_token_ids` (vLLM: adds `prompt_token_ids` / `token_ids`),
 *    `context_overflow` ("error" | "truncate") and Hearth's `stop_on_repeat` (a guard against loops).
 */
import type { ChatMessage } from "../tokenize/chat-template.js";

export type { ChatMessage, ChatRole } from "../tokenize/chat-template.js";

// -- Structured output and tool calls (issue 16; /work/notes/structured-spec.md is the shared contract) --

/** OpenAI's JSON Schema response format body. */
export interface JsonSchemaFormat {
  /** [a-zA-Z0-9_-]{1,64}. */
  name: string;
  description?: string | undefined;
  /** The schema (default: any JSON object). */
  schema?: Record<string, unknown> | boolean | undefined;
  /** Accepted; the grammar enforces the schema either way. */
  strict?: boolean | null | undefined;
}

/**
 * `response_format`: OpenAI's `text`, `json_object`, `json_schema`; WebLLM's `{type: "json_object", schema}`
 * (a schema object or its JSON text); Hearth's `{type: "grammar", grammar}` (xgrammar EBNF) and
 * `{type: "regex", regex}` (the whole reply matches the pattern).
 */
export type ResponseFormat =
  | { type: "text" }
  | { type: "json_object"; schema?: Record<string, unknown> | string | undefined }
  | { type: "json_schema"; json_schema: JsonSchemaFormat }
  | { type: "grammar"; grammar: string }
  | { type: "regex"; regex: string };

export interface FunctionDefinition {
  name: string;
  description?: string | undefined;
  /** JSON Schema of the arguments object (default: any object). */
  parameters?: Record<string, unknown> | undefined;
  strict?: boolean | null | undefined;
}

export interface ChatCompletionTool {
  type: "function";
  function: FunctionDefinition;
}

export type ToolChoice = "none" | "auto" | "required" | { type: "function"; function: { name: string } };

/** A tool call of an assistant message (response) or of a request's assistant message (history). */
export interface ChatCompletionMessageToolCall {
  id: string;
  type: "function";
  function: { name: string /** JSON text. */; arguments: string };
}

/** A streamed piece of a tool call (OpenAI's shape: the first carries id, type and name). */
export interface ChatCompletionChunkToolCall {
  index: number;
  id?: string;
  type?: "function";
  function: { name?: string; arguments: string };
}

/** What to do when the prompt does not fit the context window. */
export type ContextOverflow = "error" | "truncate";

/** Fields shared by chat and text completion requests. */
export interface BaseCompletionRequest {
  /** Accepted and ignored: the engine serves the model it loaded (its id is echoed back). */
  model?: string | null | undefined;
  stream?: boolean | null | undefined;
  stream_options?: { include_usage?: boolean | null | undefined } | null | undefined;
  /** Most tokens to generate (chat: default until EOS or a full context; completions: default 16, as OpenAI). */
  max_tokens?: number | null | undefined;
  temperature?: number | null | undefined;
  top_p?: number | null | undefined;
  top_k?: number | null | undefined;
  presence_penalty?: number | null | undefined;
  frequency_penalty?: number | null | undefined;
  repetition_penalty?: number | null | undefined;
  /** Token id (as a string key) -> bias in -100..100. */
  logit_bias?: Record<string, number> | null | undefined;
  seed?: number | null | undefined;
  stop?: string | string[] | null | undefined;
  stop_token_ids?: number[] | null | undefined;
  ignore_eos?: boolean | null | undefined;
  /** End at the first sentence or line that repeats an earlier one of the answer (not returned): a loop guard. */
  stop_on_repeat?: boolean | null | undefined;
  /** Only 1 is supported. */
  n?: number | null | undefined;
  /** Accepted and ignored. */
  user?: string | null | undefined;
  /** Add the token ids to the response (vLLM's `return_token_ids`). */
  return_token_ids?: boolean | null | undefined;
  /** Default: the engine's `contextOverflow` load option ("error"). */
  context_overflow?: ContextOverflow | null | undefined;
}

/**
 * A request message: a template message whose content may be null (an assistant message that only carries
 * `tool_calls`, each `{id, type: "function", function: {name, arguments: <JSON text>}}`; validated).
 */
export type ChatCompletionMessageParam = Omit<ChatMessage, "content" | "tool_calls"> & {
  content: string | null;
  tool_calls?: readonly ChatCompletionMessageToolCall[] | readonly Record<string, unknown>[];
};

export interface ChatCompletionRequest extends BaseCompletionRequest {
  messages: ChatCompletionMessageParam[];
  /** Chat-only OpenAI alias of max_tokens (give one or the other). */
  max_completion_tokens?: number | null | undefined;
  logprobs?: boolean | null | undefined;
  /** 0..20; needs logprobs: true. */
  top_logprobs?: number | null | undefined;
  /** Constrains the reply (see ResponseFormat); default text. */
  response_format?: ResponseFormat | null | undefined;
  /** Functions the model may call (rendered by the chat template; calls parsed from `<tool_call>` blocks). */
  tools?: ChatCompletionTool[] | null | undefined;
  /** "auto" (default with tools), "none", "required" or one named function (the last two enforced by a grammar). */
  tool_choice?: ToolChoice | null | undefined;
  /** Accepted; a forced call ("required" / named) is one call. */
  parallel_tool_calls?: boolean | null | undefined;
  /**
   * More variables for the model's chat template (vLLM's `chat_template_kwargs`, transformers'
   * `apply_chat_template(**kwargs)`), e.g. `{enable_thinking: false}` for Qwen3. Names the engine sets
   * itself (messages, tools, documents, add_generation_prompt) are refused.
   */
  chat_template_kwargs?: Record<string, unknown> | null | undefined;
}

export interface CompletionRequest extends BaseCompletionRequest {
  /** Text (encoded with the tokenizer's special tokens, e.g. BOS), or token ids used as they are. */
  prompt: string | number[];
  /** Return this many top logprobs per token, 0..5 (OpenAI's legacy shape). */
  logprobs?: number | null | undefined;
  /** Only false. */
  echo?: boolean | null | undefined;
}

export type FinishReason = "stop" | "length" | "abort" | "tool_calls";

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  /** Prompt tokens actually prefilled (not reused) per second. 0 when nothing was prefilled. */
  prefill_tokens_per_s: number;
  /** Tokens per second over the decode steps (each generated token after the first). */
  decode_tokens_per_s: number;
  /** From the start of the request's turn on the GPU (after any queue wait) to its first token. */
  time_to_first_token_ms: number;
}

export interface TopLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
}

export interface ChatCompletionTokenLogprob extends TopLogprob {
  top_logprobs: TopLogprob[];
}

export interface ChoiceLogprobs {
  content: ChatCompletionTokenLogprob[] | null;
  refusal: null;
}

export interface ChatCompletionMessage {
  role: "assistant";
  /** null when the reply is only tool calls. */
  content: string | null;
  refusal: null;
  /** Present when the reply called tools (finish_reason "tool_calls"). */
  tool_calls?: ChatCompletionMessageToolCall[];
}

export interface ChatCompletionChoice {
  index: number;
  message: ChatCompletionMessage;
  logprobs: ChoiceLogprobs | null;
  finish_reason: FinishReason;
  /** With return_token_ids. */
  token_ids?: number[];
}

export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: ChatCompletionChoice[];
  usage: CompletionUsage;
  /** With return_token_ids. */
  prompt_token_ids?: number[];
}

export interface ChatCompletionChunkDelta {
  role?: "assistant";
  content?: string;
  tool_calls?: ChatCompletionChunkToolCall[];
}

export interface ChatCompletionChunkChoice {
  index: number;
  delta: ChatCompletionChunkDelta;
  logprobs: ChoiceLogprobs | null;
  finish_reason: FinishReason | null;
  /** With return_token_ids: the tokens behind this chunk. */
  token_ids?: number[];
}

export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  /** Empty on the usage chunk (stream_options.include_usage). */
  choices: ChatCompletionChunkChoice[];
  /** With stream_options.include_usage: null on every chunk but the last, which carries it. */
  usage?: CompletionUsage | null;
  /** With return_token_ids, on the first chunk. */
  prompt_token_ids?: number[];
}

/** OpenAI's legacy completions logprobs. */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[] | null;
  text_offset: number[];
}

export interface CompletionChoice {
  index: number;
  text: string;
  logprobs: CompletionLogprobs | null;
  finish_reason: FinishReason | null;
  token_ids?: number[];
}

export interface Completion {
  id: string;
  object: "text_completion";
  created: number;
  model: string;
  choices: CompletionChoice[];
  usage: CompletionUsage;
  prompt_token_ids?: number[];
}

/** A streamed text completion piece (OpenAI streams the same object type, with partial text). */
export interface CompletionChunk {
  id: string;
  object: "text_completion";
  created: number;
  model: string;
  choices: CompletionChoice[];
  usage?: CompletionUsage | null;
  prompt_token_ids?: number[];
}

// -- Embeddings ------------------------------------------------------------------------------------

/**
 * OpenAI's `POST /v1/embeddings` body. `input` is a string or an array of strings (token-id inputs are
 * refused: the engine tokenizes with the encoder package's own tokenizer). Extension: `truncation`.
 */
export interface EmbeddingCreateParams {
  input: string | string[];
  /** Checked against the loaded text encoder (its id, the manifest's model_id, or its package URL). */
  model?: string | null | undefined;
  /** "float" (default): number arrays; "base64": little-endian float32 bytes, base64 (as OpenAI). */
  encoding_format?: "float" | "base64" | null | undefined;
  /** Only the model's own dimension (vectors are not shortened). */
  dimensions?: number | null | undefined;
  /** Accepted and ignored. */
  user?: string | null | undefined;
  /**
   * An input longer than the encoder's limit: "truncate" (cut to max_tokens, listed in the response's
   * `truncated`) or "error" (rejected with InputTooLongError). Default: the engine's embedder option
   * (itself "truncate" by default, as sentence-transformers does).
   */
  truncation?: "truncate" | "error" | null | undefined;
}

export interface Embedding {
  object: "embedding";
  index: number;
  /** number[] with encoding_format "float", a base64 string with "base64". */
  embedding: number[] | string;
}

/** An input that was longer than the encoder's limit and was cut to it (never silently). */
export interface EmbeddingTruncation {
  index: number;
  /** Its tokens before truncation (special tokens included). */
  tokens: number;
  /** What it was cut to. */
  max_tokens: number;
}

export interface CreateEmbeddingResponse {
  object: "list";
  data: Embedding[];
  model: string;
  /** prompt_tokens = total_tokens = tokens embedded (after truncation, special tokens included). */
  usage: { prompt_tokens: number; total_tokens: number };
  /** Extension: the inputs that were truncated (empty when none was). */
  truncated: EmbeddingTruncation[];
}
