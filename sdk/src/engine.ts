/** Worker-side engine: WebGPU device, tvmjs runtime, model-case runner. */
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
} from "./gpu.js";
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
} from "./tvm.js";
export { loadTVMLibrary, type LoadTVMLibraryOptions } from "../load/runtime.js";
export type * from "./tvmjs-types.js";
export {
  decodeTensorData,
  dtypeBytes,
  encodeTensorData,
  f16BitsToNumber,
  isTensorDType,
  numberToF16Bits,
  numElements,
  type TensorDType,
} from "./dtype.js";
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
} from "./smoke.js";
export {
  checkCpuFits,
  chooseBackend,
  checkDeviceFits,
  DeviceError,
  DeviceLostError,
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
  watchDeviceLost,
  type DeviceFitOptions,
  type DeviceLimit,
  type DeviceLimits,
  type DeviceLossWatch,
  type DeviceProblem,
  type MemoryEstimate,
  type MemoryEstimateOptions,
  type ModelIndexEntry,
  type VariantCapabilities,
  type BackendChoice,
  type BackendChoiceOptions,
} from "./device.js";
export {
  DecoderModel,
  DecoderStateError,
  type DecoderLoadInfo,
  type DecoderLoadOptions,
  type DecoderStats,
  type GreedyOptions,
  type PhaseStats,
} from "./llm.js";
export { ContextWindowExceededError, PagedKVCache, type KVCacheConfig, type KVCacheOptions } from "./kv-cache.js";
export { DecoderFunctions, type ForwardKind, type ForwardTiming } from "./forward.js";
export { argmax, NonFiniteLogitsError, topK } from "./sampling.js";
export { SerialQueue } from "./serial-queue.js";
export { asLLMInstance, type TvmLLMInstance, type TvmScalar, type TvmViewTensor } from "./tvmjs-llm.js";
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
} from "./encoder.js";
export {
  bucketLargestBuffer,
  EncoderConfigError,
  encoderUsesF16,
  parseEncoderConfig,
  type EncoderBucket,
  type EncoderConfig,
} from "./encoder-config.js";
export { fitBuckets, loadEncoderPackage, type EncoderPackageLoadOptions, type LoadedEncoderPackage } from "./encoder-load.js";
export {
  buildInputs,
  maxBucketSeq,
  pickBatch,
  planBatches,
  runPlanned,
  SequenceTooLongError,
  type BucketRunner,
  type PlannedCall,
  type PlannedResult,
} from "./encoder-plan.js";
export { tokenizeBatchForEncoder, tokenizeForEncoder, truncatedIndices, type EncoderBatchTokens, type EncoderTokens } from "./encoder-tokens.js";
