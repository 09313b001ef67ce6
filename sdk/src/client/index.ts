/**
 * The main-thread client: createEngine() and the OpenAI-shaped API over the engine Worker. Importing
 * this pulls in no npm packages, so it loads unbundled in a browser as well as through a bundler.
 */
export {
  createEngine,
  Engine,
  type ChatCompletionCreateParamsNonStreaming,
  type ChatCompletionCreateParamsStreaming,
  type ChatCompletions,
  type CompletionCreateParamsNonStreaming,
  type CompletionCreateParamsStreaming,
  type Completions,
  type CreateEngineOptions,
  type CreateRequestOptions,
  type EmbedderSpec,
  type Embeddings,
} from "./engine.js";
export type { EmbedderInfo, EmbedderLoadOptions } from "../service/embeddings.js";
export { ChunkStream } from "./stream.js";
export { Connection, nodeWorkerEndpoint, type CallHandlers, type ConnectionOptions, type NodeWorkerLike } from "./connection.js";
export {
  AbortError,
  deserializeError,
  EngineNotLoadedError,
  InvalidMessageError,
  InvalidRequestError,
  registerErrorClass,
  registeredErrorClass,
  RemoteError,
  serializeError,
  WorkerError,
  type JsonValue,
  type SerializedError,
} from "../errors/index.js";
// The engine's error classes, so `err instanceof QuotaError` works on the main thread (the engine's
// errors are rebuilt as these classes). ../errors imports nothing else of the SDK.
export {
  ContextWindowExceededError,
  DeviceError,
  DeviceLostError,
  DownloadError,
  EncoderStateError,
  InputTooLongError,
  IntegrityError,
  PackageCompatibilityError,
  PackageManifestError,
  QuotaError,
  VariantSelectionError,
  WebGPUCapabilityError,
  WebGPUUnavailableError,
} from "../errors/index.js";
export type * from "../service/openai.js";
export type {
  EngineLoadOptions,
  EngineRuntimeOptions,
  EngineStats,
  LoadProgressEvent,
  ModelInfo,
  RequestStats,
} from "../service/engine-core.js";
export { PROTOCOL, type ClientMessage, type EngineMessage, type MessageEndpoint } from "../service/protocol.js";
