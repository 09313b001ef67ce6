/**
 * "@hearth/sdk/engine", the worker-side engine's public API: the runtime (WebGPU device, tvmjs, tensor cache,
 * device loss), device fit and variant choice, DecoderModel, EncoderModel, and the model-case runner. The
 * layers' internals (forward functions, KV-cache session, encoder batching, the serial queue) stay inside.
 */
export {
  describeAdapter,
  requestGPU,
  softwareAdapterName,
  WebGPUCapabilityError,
  WebGPUUnavailableError,
  type AdapterDescription,
  type AdapterIdentity,
  type AdapterLimitName,
  type AdapterLimits,
  type GPUHandle,
  type RequestGPUOptions,
  type WebGPUUnavailableReason,
} from "./runtime/gpu.js";
export {
  asDirectoryUrl,
  loadTensorCache,
  loadTvmjs,
  MemoryArtifactCache,
  parseTensorCacheManifest,
  type FetchLike,
  type LoadedTensorCache,
  type LoadTensorCacheOptions,
  type Logger,
  type TensorCacheManifest,
  type TensorCacheRecord,
  type TensorCacheShard,
  type TVMLibrary,
} from "./runtime/tvm.js";
export { loadTVMLibrary, type LoadTVMLibraryOptions } from "./runtime/instantiate.js";
export type * from "./runtime/tvmjs-types.js";
export {
  decodeTensorData,
  dtypeBytes,
  encodeTensorData,
  f16BitsToNumber,
  isTensorDType,
  numberToF16Bits,
  numElements,
  type TensorDType,
} from "./runtime/dtype.js";
export {
  parseSmokeCase,
  runCase,
  type CaseRanResult,
  type CaseResult,
  type CaseSkippedResult,
  type CaseTensor,
  type CaseTimings,
  type RunCaseDeps,
  type SmokeCase,
} from "./testing/smoke.js";
export {
  checkCpuFits,
  chooseBackend,
  chooseWebGPUBuild,
  checkDeviceFits,
  DeviceError,
  deviceProblems,
  dtypeByteSize,
  estimateMemory,
  fetchModelIndex,
  isF16Variant,
  pickVariant,
  readDeviceLimits,
  VariantSelectionError,
  variantsFromModelIndex,
  WASM32_MAX_BYTES,
  type DeviceFitOptions,
  type DeviceLimit,
  type DeviceLimits,
  type DeviceProblem,
  type MemoryEstimate,
  type MemoryEstimateOptions,
  type ModelIndexEntry,
  type VariantCapabilities,
  type BackendChoice,
  type BackendChoiceOptions,
  type WebGPUBuild,
  type WebGPUBuildChoice,
  WEBGPU_BUILDS,
} from "./load/device-fit.js";
export { DeviceLostError, watchDeviceLost, type DeviceLossWatch } from "./runtime/device-lost.js";
export {
  DecoderModel,
  DecoderStateError,
  type DecoderLoadInfo,
  type DecoderLoadOptions,
  type DecoderStats,
  type GreedyOptions,
  type PhaseStats,
} from "./decoder/model.js";
export { ContextWindowExceededError, PagedKVCache, type KVCacheConfig, type KVCacheOptions } from "./decoder/kv-cache.js";
export { argmax, NonFiniteLogitsError, topK } from "./sample/argmax.js";
// -- Text encoders (sentence embeddings): EncoderModel implements the RAG layer's Embedder -------
export {
  EncoderModel,
  EncoderStateError,
  InputTooLongError,
  type EmbedDetailedResult,
  type EmbedOptions,
  type EncoderLoadInfo,
  type EncoderLoadOptions,
  type EncoderStats,
  type TruncationPolicy,
  type TruncationReport,
} from "./encoder/model.js";
export {
  EncoderConfigError,
  parseEncoderConfig,
  type EncoderBucket,
  type EncoderConfig,
} from "./encoder/config.js";
export { SequenceTooLongError } from "./encoder/plan.js";
