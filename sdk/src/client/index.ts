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
export type { EmbedderInfo, EmbedderLoadOptions } from "../engine/embeddings.js";
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
} from "../engine/errors.js";
export { ContextWindowExceededError } from "../engine/kv-cache.js";
// The engine's error classes, so `err instanceof QuotaError` works on the main thread (the engine's
// errors are rebuilt as these classes; errors.ts already imports them, so this adds no module).
export { DeviceError, DeviceLostError, VariantSelectionError } from "../engine/device.js";
export { WebGPUCapabilityError, WebGPUUnavailableError } from "../engine/gpu.js";
export { EncoderStateError, InputTooLongError } from "../engine/encoder.js";
export { IntegrityError } from "../load/integrity.js";
export { QuotaError } from "../load/quota.js";
export { DownloadError } from "../load/files.js";
export { PackageManifestError } from "../load/manifest.js";
export { PackageCompatibilityError } from "../load/package.js";
export type * from "../engine/openai.js";
export type {
  EngineLoadOptions,
  EngineRuntimeOptions,
  EngineStats,
  LoadProgressEvent,
  ModelInfo,
  RequestStats,
} from "../engine/engine-core.js";
export { PROTOCOL, type ClientMessage, type EngineMessage, type MessageEndpoint } from "../engine/messages.js";
