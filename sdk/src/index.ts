/**
 * @hearth/sdk: what apps use. The worker-side engine (engine.ts: runtime, device fit, DecoderModel,
 * EncoderModel, the model-case runner), verified package loading, the text and sampling layers, the chat
 * engine (EngineCore, serveEngine, the OpenAI-shaped types, the Worker protocol), every error class, and
 * the main-thread client (createEngine; also importable alone as "@hearth/sdk/client"). Layer internals
 * (forward functions, KV-cache session, request validation, encoder batching) are not exported.
 */
export * from "./engine.js";
export * from "./load/index.js";
export * from "./tokenize/index.js";
export * from "./sample/index.js";

// -- The chat engine (EngineCore, its Worker protocol) and the main-thread client (createEngine) ------
export {
  EngineCore,
  type EngineCoreLoadOptions,
  type EngineLoadHooks,
  type EngineLoadOptions,
  type EngineRequestOptions,
  type EngineRuntimeOptions,
  type EngineStats,
  type LoadProgressEvent,
  type ModelInfo,
  type RequestStats,
} from "./service/engine-core.js";
export { serveEngine, type EngineServer } from "./service/serve.js";
export type { EmbedderInfo, EmbedderLoadOptions } from "./service/embeddings.js";
// Every error class of the SDK (and serializeError / deserializeError for a Worker boundary of your own).
export * from "./errors/index.js";
export { PROTOCOL, type ClientMessage, type ClientMessageType, type EngineMessage, type MessageEndpoint } from "./service/protocol.js";
export type {
  BaseCompletionRequest,
  ChatCompletion,
  ChatCompletionChoice,
  ChatCompletionChunk,
  ChatCompletionChunkChoice,
  ChatCompletionChunkDelta,
  ChatCompletionMessage,
  ChatCompletionRequest,
  ChatCompletionTokenLogprob,
  ChoiceLogprobs,
  Completion,
  CompletionChoice,
  CompletionChunk,
  CompletionLogprobs,
  CompletionRequest,
  CompletionUsage,
  ContextOverflow,
  CreateEmbeddingResponse,
  Embedding,
  EmbeddingCreateParams,
  EmbeddingTruncation,
  FinishReason as CompletionFinishReason,
  TopLogprob,
} from "./service/openai.js";
export {
  ChunkStream,
  Connection,
  createEngine,
  Engine,
  nodeWorkerEndpoint,
  type CallHandlers,
  type ChatCompletionCreateParamsNonStreaming,
  type ChatCompletionCreateParamsStreaming,
  type ChatCompletions,
  type CompletionCreateParamsNonStreaming,
  type CompletionCreateParamsStreaming,
  type Completions,
  type ConnectionOptions,
  type CreateEngineOptions,
  type CreateRequestOptions,
  type EmbedderSpec,
  type Embeddings,
  type NodeWorkerLike,
} from "./client/index.js";
