/**
 * Package loading: manifest, integrity checks (SHA-256), chat config, stores for verified files (Cache
 * Storage, IndexedDB, memory, file system), quota checks, progress, verified tensor-cache loading on
 * WebGPU or wasm-cpu.
 */
export { IntegrityError, sha256Hex, verifyFile, type IntegrityProblem, type ManifestFileEntry } from "./integrity.js";
export {
  fetchManifest,
  manifestEntry,
  MANIFEST_FILE,
  PackageManifestError,
  parseManifestText,
  parsePackageManifest,
  type PackageManifest,
} from "./manifest.js";
export { ChatConfigError, chatStopTokenIds, configUsesF16, parseChatConfig, type ChatConfig, type ChatConfigParam } from "./chat-config.js";
export {
  artifactKey,
  CacheStorageStore,
  IndexedDBStore,
  isQuotaExceeded,
  keyDigest,
  manifestKey,
  MemoryArtifactStore,
  packageKeyPrefix,
  resolveStore,
  STORE_NAMESPACE,
  type ArtifactStore,
  type CacheOption,
} from "./store.js";
export { FileSystemArtifactStore } from "./fs-store.js";
export { checkQuota, QuotaError, type QuotaCheck, type StorageManagerLike } from "./quota.js";
export type {
  DownloadProgress,
  GpuUploadProgress,
  LoadPhase,
  LoadProgress,
  ManifestProgress,
  ProgressCallback,
  ReadyProgress,
  ShaderCompileProgress,
  VerifyProgress,
} from "./progress.js";
export { DownloadError, PackageFiles, type EnsureOptions, type PackageFilesOptions, type PackageFilesStats } from "./files.js";
export {
  CHAT_CONFIG_FILE,
  JS_TARGETS,
  loadPackage,
  PackageCompatibilityError,
  packageUrl,
  TENSOR_CACHE_FILE,
  type DeviceCheckOptions,
  type LoadedPackage,
  type LoadPackageOptions,
  type PackageCacheReport,
  type PackageLoadTimings,
} from "./package.js";
export {
  fetchPackageBytes,
  loadPackageText,
  readVerifiedText,
  type PackageText,
  type ReadPackageBytes,
} from "./verified-text.js";
