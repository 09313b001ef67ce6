/** Package loading: manifest, integrity checks (SHA-256), chat config, verified tensor-cache loading. */
export { IntegrityError, sha256Hex, verifyFile, type IntegrityProblem, type ManifestFileEntry } from "./integrity.js";
export {
  fetchManifest,
  manifestEntry,
  MANIFEST_FILE,
  PackageManifestError,
  parsePackageManifest,
  type PackageManifest,
} from "./manifest.js";
export { VerifiedArtifactCache, type VerifiedCacheStats } from "./verified-cache.js";
export { ChatConfigError, configUsesF16, parseChatConfig, type ChatConfig, type ChatConfigParam } from "./chat-config.js";
export {
  CHAT_CONFIG_FILE,
  loadPackage,
  PackageCompatibilityError,
  packageUrl,
  TENSOR_CACHE_FILE,
  type LoadedPackage,
  type LoadPackageOptions,
  type PackageLoadTimings,
} from "./package.js";
