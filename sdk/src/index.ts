/**
 * @hearth/sdk: the worker-side engine (WebGPU device, tvmjs runtime, tensor cache, model-case runner,
 * DecoderModel, EngineCore), verified package loading, text and sampling layers, and the main-thread
 * client (createEngine; also importable alone as "@hearth/sdk/client").
 */
export * from "./engine/index.js";
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
} from "./engine/engine-core.js";
export { DecoderSession, type PrefillOutcome } from "./engine/decoder-session.js";
export {
  generate,
  type GeneratedToken,
  type GenerateFinishReason,
  type GenerateInput,
  type GeneratePiece,
  type GenerateResult,
  type StopRequest,
} from "./engine/generate.js";
export { serveEngine, type EngineServer } from "./engine/serve.js";
export {
  importValibot,
  MAX_EMBEDDING_INPUTS,
  validateChatRequest,
  validateClientMessage,
  validateCompletionRequest,
  validateEmbeddingRequest,
} from "./engine/validate.js";
export {
  createEmbeddings,
  describeEmbedder,
  float32ToBase64,
  loadEmbedder,
  type EmbedderInfo,
  type EmbedderLoadOptions,
} from "./engine/embeddings.js";
export {
  AbortError,
  deserializeError,
  EngineNotLoadedError,
  InvalidMessageError,
  InvalidRequestError,
  isSerializedError,
  registerErrorClass,
  registeredErrorClass,
  RemoteError,
  serializeError,
  WorkerError,
  type JsonValue,
  type SerializedError,
} from "./engine/errors.js";
export { PROTOCOL, type ClientMessage, type ClientMessageType, type EngineMessage, type MessageEndpoint } from "./engine/messages.js";
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
} from "./engine/openai.js";
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
