/**
 * Load a Hearth model package onto a WebGPU device (or, for a `wasm-cpu` build, onto tvmjs's CPU
 * device), verifying every file first:
 *
 *   hearth-manifest.json ── always revalidated; the file list (size + SHA-256), the root of trust
 *   plan                 ── the package files this target uses; which ones the store already holds
 *   quota                ── navigator.storage.persist() (best effort) + estimate(): QuotaError up front
 *   mlc-chat-config.json ── first: f16 support and memory/limit checks (DeviceError) before the big files
 *   everything else      ── downloaded (4 at a time, streamed, retried) or read back from the store;
 *                           SHA-256 checked before anything uses a byte; stored as soon as verified
 *   then: instantiate the wasm (tvmjs), compile the WebGPU pipelines, upload the weights through the
 *   verified file set (tvmjs's artifact cache), purge older versions of the package from the store.
 *
 * A file that is missing, resized, altered or not in the manifest fails with an {@link IntegrityError}
 * naming it; nothing is instantiated or uploaded in that case, and a bad store entry is evicted. Files
 * verified before a failure or an abort stay in the store: the next load downloads only the rest.
 */
import {
  checkCpuFits,
  checkDeviceFits,
  chooseWebGPUBuild,
  subgroupBuildSize,
  estimateMemory,
  pickVariant,
  readDeviceLimits,
  type DeviceLimits,
  type MemoryEstimate,
  type WebGPUBuild,
} from "./device-fit.js";
import type { AdapterIdentity } from "../runtime/gpu.js";
import { asDirectoryUrl, parseTensorCacheManifest, type FetchLike, type LoadedTensorCache, type Logger, type TensorCacheManifest } from "../runtime/tvm.js";
import type { TvmjsModule } from "../runtime/tvmjs-types.js";
import type { DispatchMode, PipelineMode } from "../runtime/webgpu-dispatch.js";
import { configUsesF16, parseChatConfig, type ChatConfig } from "./chat-config.js";
import { PackageFiles, type PackageFilesStats } from "./files.js";
import { fetchManifest, MANIFEST_FILE, PackageManifestError, parseManifestText, type PackageManifest } from "./manifest.js";
import { safeProgress, type ProgressCallback } from "./progress.js";
import { checkQuota, defaultStorageManager, type StorageManagerLike } from "./quota.js";
import { instantiateRuntime, type RuntimeDeviceKind, type RuntimeLibrary } from "../runtime/instantiate.js";
import { defaultWasmThreads, WasmThreadsUnavailableError, wasmThreadsUnavailableReason } from "../runtime/wasm-threads.js";
import { manifestKey, resolveStore, type ArtifactStore, type CacheOption } from "./store.js";
import { PackageCompatibilityError } from "../errors/load.js";
export { PackageCompatibilityError } from "../errors/load.js";

export const CHAT_CONFIG_FILE = "mlc-chat-config.json";
export const TENSOR_CACHE_FILE = "tensor-cache.json";

/**
 * Targets tvmjs can run: "webgpu" (needs a device), "webgpu-fused" (the same with the staged decode fusion;
 * what target "webgpu" loads on a hardware adapter when the package has it: `webgpuBuild`), "wasm-cpu"
 * (tvm.cpu(), no WebGPU) and "wasm-cpu-mt" (wasm-cpu on Worker threads; needs cross-origin isolation, else
 * the package's "wasm-cpu" is loaded).
 */
export const JS_TARGETS = ["webgpu", "webgpu-fused", "webgpu-fused-sg32", "webgpu-fused-sg16", "webgpu-fused-sg8", "wasm-cpu", "wasm-cpu-mt"] as const;

/** The targets that run on a WebGPU device. */
export function isWebGPUTarget(target: string): boolean {
  return target === "webgpu" || target === "webgpu-fused" || subgroupBuildSize(target) !== null;
}

/** GPUDevice.adapterInfo (Chrome 132+, the spec), where the implementation has it. */
function deviceAdapterInfo(device: GPUDevice | undefined): AdapterIdentity | undefined {
  const info = (device as { adapterInfo?: GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number } } | undefined)?.adapterInfo;
  return info === undefined
    ? undefined
    : {
        vendor: info.vendor,
        architecture: info.architecture,
        device: info.device,
        description: info.description,
        subgroupMinSize: info.subgroupMinSize,
        subgroupMaxSize: info.subgroupMaxSize,
      };
}

export interface DeviceCheckOptions {
  /** Use these limits instead of the device's (tests, or to stay under a conservative cap). */
  limits?: DeviceLimits | undefined;
  /** KV-cache capacity the model will be run with (default: context_window_size). */
  maxTotalSeqLen?: number | undefined;
  /** Prefill chunk the model will be run with (default: prefill_chunk_size). */
  prefillChunkSize?: number | undefined;
  /** Fail when the estimated total (weights + KV cache + activations) exceeds this. */
  memoryBudgetBytes?: number | undefined;
}

export interface LoadPackageOptions {
  /** Fetch for every package file (default: global fetch). In Node pass one that reads file:// URLs. */
  fetch?: FetchLike | undefined;
  /**
   * The WebGPU device to run on (required for target "webgpu", unused for "wasm-cpu"). Once the wasm is
   * instantiated on it, the package owns it: disposing the package destroys it (tvmjs's runtime dispose
   * does), and so does a load that fails after that point. A load that fails earlier (manifest,
   * integrity, quota, compatibility and limit checks) leaves the device untouched.
   */
  device?: GPUDevice | undefined;
  /**
   * Quantization variant ("q4f16_1", "q4f32_1", ...). When given, `baseUrl` is the model folder and the
   * package is `<baseUrl>/<variant>/`, whose manifest must say that quantization. When omitted (and no
   * `variants`), `baseUrl` is the package folder itself.
   */
  variant?: string | undefined;
  /**
   * Variants in preference order (`baseUrl` is then the model folder): the first one this device can
   * run is loaded (an f16 variant needs `shader-f16`; wasm-cpu prefers f32). See device-fit.ts
   * pickVariant, and variantsFromModelIndex for a `hearth serve` `/models/` index. Ignored when
   * `variant` is given.
   */
  variants?: readonly string[] | undefined;
  /**
   * Which of the manifest's `targets` to load: "webgpu" (default; its fused or plain library, see
   * `webgpuBuild`), "webgpu-fused", "webgpu-fused-sg32" / "webgpu-fused-sg8" (by name: no subgroup-size
   * check), "wasm-cpu" or "wasm-cpu-mt".
   */
  target?: string | undefined;
  /**
   * With target "webgpu", which WebGPU library: "auto" (default) loads the package's "webgpu-fused" build on
   * a hardware adapter and the plain "webgpu" one on a software adapter (lavapipe, SwiftShader) or an unknown
   * one, and "webgpu-fused-sg<N>" instead of the fused one where the device has "subgroups" and the adapter's
   * subgroups are exactly N lanes; "fused" / "plain" / "subgroups" ask for one, and fail naming what is missing
   * (the package's targets, or the adapter's subgroup support) (load/device-fit.ts chooseWebGPUBuild). The loaded one is `LoadedPackage.target`.
   */
  webgpuBuild?: WebGPUBuild | undefined;
  /**
   * The adapter `device` came from, for `webgpuBuild` "auto" (the model loaders pass the one they requested).
   * Default: `device.adapterInfo` where the implementation has it, else unknown (the plain build).
   */
  adapterInfo?: AdapterIdentity | undefined;
  /**
   * With target "wasm-cpu": load the package's "wasm-cpu-mt" build instead where it has one and threads can
   * run (cross-origin isolated). Set by the model loaders when they fall back to the CPU on their own; a
   * caller who asks for "wasm-cpu" by name gets the single-thread build.
   */
  preferThreads?: boolean | undefined;
  /**
   * Worker threads besides the loading thread for target "wasm-cpu-mt" (default: one fewer than
   * `navigator.hardwareConcurrency`, 1..7). Where threads cannot run (no SharedArrayBuffer: a page that is
   * not cross-origin isolated) the package's single-thread "wasm-cpu" build is loaded instead.
   */
  threads?: number | undefined;
  logger?: Logger | undefined;
  tvmjs?: TvmjsModule | undefined;
  /**
   * How kernel launches are encoded on WebGPU: "hearth" (default: cached bind groups, one compute pass
   * per submit; runtime/webgpu-dispatch.ts) or "tvmjs" (tvmjs's own path, kept for A/B benchmarks).
   */
  dispatch?: DispatchMode | undefined;
  /**
   * When the kernels' GPU pipelines are compiled: "eager" (while loading; the decoder's default) or "lazy"
   * (at each kernel's first launch; the encoder's default, whose static-shape buckets are mostly unused).
   */
  pipelines?: PipelineMode | undefined;
  /**
   * Time every kernel launch on the GPU (timestamp queries; `stats().dispatch.gpuTime`). Diagnostics only:
   * each launch gets its own compute pass, so decoding is slower while it is on. Needs an adapter with
   * `timestamp-query`, and dispatch "hearth".
   */
  kernelTiming?: boolean | undefined;
  /**
   * Submit queued GPU work every this many kernel launches (dispatch "hearth"; 0: only at readbacks), so the
   * GPU starts on a decode step while the host is still encoding it. Default: runtime/webgpu-dispatch.ts DEFAULT_SUBMIT_EVERY.
   */
  submitEvery?: number | undefined;
  /**
   * A decode step encoded before its token is known (the host-picked path) is submitted in parts of
   * `submitEvery` launches once the token is written (default true; false: whole, for the A/B;
   * runtime/webgpu-dispatch.ts, deferFlushes).
   */
  splitDeferred?: boolean | undefined;
  signal?: AbortSignal | undefined;
  /**
   * Where verified files are kept between loads: "cache-storage" (Cache Storage), "indexeddb",
   * "none" (download every time), or any {@link ArtifactStore} (MemoryArtifactStore, FileSystemArtifactStore
   * in Node). Default: Cache Storage where it exists, else none.
   */
  cache?: CacheOption | undefined;
  /** Parallel downloads (default 4). */
  concurrency?: number | undefined;
  /** Retries per file for network failures and HTTP 408/429/5xx (default 2). */
  retries?: number | undefined;
  onProgress?: ProgressCallback | undefined;
  /**
   * StorageManager for persist()/estimate() (default: navigator.storage, when the store is Cache
   * Storage or IndexedDB). null: skip the quota check.
   */
  storage?: StorageManagerLike | null | undefined;
  /** Memory/limit checks before downloading the weights (default on); false to skip. */
  deviceCheck?: DeviceCheckOptions | false | undefined;
  /** Remove older versions of this package from the store after a successful load (default true). */
  purge?: boolean | undefined;
}

export interface PackageLoadTimings {
  /** hearth-manifest.json fetch + parse. */
  manifestMs: number;
  /** Download + SHA-256 of every file (or read back + SHA-256 from the store); wall clock. */
  fetchVerifyMs: number;
  /** Of which hashing (summed over files). */
  verifyMs: number;
  instantiateMs: number;
  /** WebGPU shader/pipeline compilation (0 on wasm-cpu). */
  pipelinesMs: number;
  vmMs: number;
  /** Weights onto the device. */
  tensorCacheMs: number;
  totalMs: number;
}

export interface PackageCacheReport extends PackageFilesStats {
  /** The store's kind ("cache-storage", "indexeddb", "memory", "fs", ...), null for none. */
  store: string | null;
  /** Keys of older package versions removed after this load. */
  purged: string[];
  /** The manifest came from the store because the network failed. */
  offline: boolean;
  /** navigator.storage.persist() result (null: not asked / unknown). */
  persisted: boolean | null;
  /** quota - usage before downloading (null: unknown or not checked). */
  available: number | null;
}

export interface LoadedPackage {
  /** The package folder URL (ends with "/"). */
  baseUrl: string;
  /** The variant loaded (when `variant`/`variants` was given), else null. */
  variant: string | null;
  manifest: PackageManifest;
  config: ChatConfig;
  tensorCacheManifest: TensorCacheManifest;
  lib: RuntimeLibrary;
  tensorCache: LoadedTensorCache;
  /** Where the model runs: "webgpu", or "cpu" for a wasm-cpu package. */
  deviceKind: RuntimeDeviceKind;
  /** The target loaded ("webgpu", "webgpu-fused", "wasm-cpu" or "wasm-cpu-mt"). */
  target: string;
  /** The model computes in float16 (device has shader-f16, checked). */
  usesF16: boolean;
  /** Bytes verified (downloaded + read back from the store). */
  verifiedBytes: number;
  memory: MemoryEstimate;
  cache: PackageCacheReport;
  timings: PackageLoadTimings;
  /** Verified bytes of any package file (e.g. tokenizer.json), from the store when it has them. */
  readFile(path: string, signal?: AbortSignal): Promise<ArrayBuffer>;
  /** Dispose the runtime (weights, VM, device). */
  dispose(): void;
}

/** A package JSON file's bytes, parsed; invalid JSON is a PackageManifestError naming the file. */
function parseJsonFile(buf: ArrayBuffer, file: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(buf)) as unknown;
  } catch (err) {
    throw new PackageManifestError(`${file} is not valid JSON`, { cause: err });
  }
}

/** The package folder URL for `baseUrl` and an optional variant. */
export function packageUrl(baseUrl: string, variant?: string): string {
  const base = new URL(asDirectoryUrl(baseUrl)).href; // absolute and normalised
  return variant === undefined ? base : new URL(`${encodeURIComponent(variant)}/`, base).href;
}

/** Check the weights the model functions take against the tensor cache (names, shapes, dtypes). */
function checkParams(config: { params: readonly { name: string; shape: readonly number[]; dtype: string }[] }, tc: TensorCacheManifest): void {
  const records = new Map(tc.records.flatMap((s) => s.records.map((r) => [r.name, r] as const)));
  const problems: string[] = [];
  for (const p of config.params) {
    const r = records.get(p.name);
    if (r === undefined) problems.push(`${p.name}: not in ${TENSOR_CACHE_FILE}`);
    else if (r.dtype !== p.dtype || r.shape.join(",") !== p.shape.join(",")) {
      problems.push(`${p.name}: ${r.dtype}[${r.shape.join(",")}] in ${TENSOR_CACHE_FILE}, ${p.dtype}[${p.shape.join(",")}] in ${CHAT_CONFIG_FILE}`);
    }
  }
  if (problems.length > 0) {
    throw new PackageCompatibilityError(
      `${CHAT_CONFIG_FILE} and ${TENSOR_CACHE_FILE} disagree on ${problems.length} weight(s): ${problems.slice(0, 5).join("; ")}`,
      problems,
    );
  }
}

/**
 * Every shard must be listed (else IntegrityError) and every weight record must lie inside its shard's
 * listed size: a rehashed manifest vouches for the bytes, not their layout, and tvmjs would otherwise
 * fail mid-upload with a plain Error.
 */
function checkRecordRanges(tc: TensorCacheManifest, files: PackageFiles): void {
  for (const shard of tc.records) {
    const size = files.entry(shard.dataPath).bytes;
    for (const r of shard.records) {
      if (r.byteOffset < 0 || r.byteOffset + r.nbytes > size) {
        throw new PackageCompatibilityError(
          `${TENSOR_CACHE_FILE}: weight ${r.name} lies at bytes [${r.byteOffset}, ${r.byteOffset + r.nbytes}) but ` +
            `${shard.dataPath} holds ${size}; recompile the package`,
          [`range:${r.name}`],
        );
      }
    }
  }
}

/** The manifest's library file for `target`; PackageCompatibilityError when it has none or tvmjs cannot run it. */
function libraryFor(manifest: PackageManifest, base: string, target: string): string {
  const libPath = manifest.targets[target];
  if (libPath === undefined) {
    const have = Object.keys(manifest.targets);
    throw new PackageCompatibilityError(
      `${base} has no ${JSON.stringify(target)} library (targets: ${have.length > 0 ? have.join(", ") : "none"}); ` +
        `recompile with \`hearth compile --target ${target}\``,
      [`target:${target}`],
    );
  }
  if (!(JS_TARGETS as readonly string[]).includes(target)) {
    throw new PackageCompatibilityError(`target ${JSON.stringify(target)} cannot run in JavaScript (tvmjs runs ${JS_TARGETS.join(" and ")})`, [
      `target:${target}`,
    ]);
  }
  return libPath;
}

/** The manifest: from the network, or (network failure only) the last good one in the store. */
async function manifestFor(
  base: string,
  fetchFn: FetchLike,
  store: ArtifactStore | null,
  signal: AbortSignal | undefined,
  log: Logger,
): Promise<{ manifest: PackageManifest; offline: boolean }> {
  try {
    return { manifest: await fetchManifest(base, fetchFn, signal), offline: false };
  } catch (err) {
    if (!(err instanceof PackageManifestError) || err.reason !== "network" || store === null) throw err;
    const saved = await store.get(manifestKey(base)).catch(() => undefined);
    if (saved === undefined) throw err;
    log(`${err.message}; using the manifest cached by the last successful load (offline)`);
    return { manifest: parseManifestText(new TextDecoder().decode(saved), `cached ${MANIFEST_FILE} of ${base}`), offline: true };
  }
}

/**
 * Weights onto the device from the verified file set (tvmjs's fetchTensorCache reads `files`, which
 * only hands out verified bytes), with "gpu-upload" progress per shard.
 */
async function uploadWeights(
  runtime: RuntimeLibrary,
  base: string,
  files: PackageFiles,
  tcManifest: TensorCacheManifest,
  emit: ProgressCallback,
  signal: AbortSignal | undefined,
): Promise<LoadedTensorCache> {
  const shards = tcManifest.records;
  const totalBytes = shards.reduce((n, s) => n + s.nbytes, 0);
  const upload = { done: 0, bytes: 0 };
  const uploadEvent = () =>
    emit({ phase: "gpu-upload", device: runtime.deviceKind, shardsDone: upload.done, shardCount: shards.length, loadedBytes: upload.bytes, totalBytes });
  uploadEvent();
  runtime.setProgressHandler((r) => {
    // With every shard verified, tvmjs only reports "Loading model from cache[i/n]" (one per shard).
    const m = /\[(\d+)\/(\d+)\]/.exec(r.text);
    if (m === null || !r.text.startsWith("Loading")) return;
    const done = Math.min(Number(m[1]), shards.length);
    upload.done = done;
    upload.bytes = shards.slice(0, done).reduce((n, s) => n + s.nbytes, 0);
    uploadEvent();
  });
  const t0 = performance.now();
  try {
    await runtime.tvm.fetchTensorCache(base, runtime.device(), { artifactCache: files, ...(signal === undefined ? {} : { signal }) });
  } finally {
    runtime.setProgressHandler(undefined);
  }
  return { manifest: tcManifest, names: shards.flatMap((s) => s.records.map((r) => r.name)), totalBytes, loadMs: performance.now() - t0 };
}

/** After a successful load: drop older versions of this package, remember the manifest for offline loads. */
async function finishStore(
  store: ArtifactStore | null,
  files: PackageFiles,
  base: string,
  manifest: PackageManifest,
  opts: { offline: boolean; purge: boolean | undefined; log: Logger },
): Promise<string[]> {
  if (store === null) return [];
  let purged: string[] = [];
  if (opts.purge !== false) {
    purged = await files.purgeOldVersions().catch((err: unknown) => {
      opts.log(`purging old package versions failed: ${err instanceof Error ? err.message : String(err)}`);
      return [];
    });
  }
  if (!opts.offline) {
    await store.put(manifestKey(base), new TextEncoder().encode(JSON.stringify(manifest.raw)).buffer).catch(() => {});
  }
  return purged;
}

/** The options every package loader takes (LoadPackageOptions and the encoder's are supersets). */
export type PackageLoadCommonOptions = Omit<LoadPackageOptions, "deviceCheck">;

/** What differs between kinds of package (chat model, text encoder): their mlc-chat-config.json. */
export interface PackageKind<C extends { params: readonly { name: string; shape: readonly number[]; dtype: string }[] }, X> {
  /** The loader's name, for error messages. */
  loader: string;
  /** Refuse a manifest of another kind (e.g. a chat package handed to the encoder loader). */
  checkManifest?(manifest: PackageManifest, base: string): void;
  parseConfig(raw: unknown): C;
  usesF16(config: C): boolean;
  /**
   * Device checks on the verified config, before the big downloads (throw DeviceError /
   * PackageCompatibilityError); returns what the kind derives from them (memory estimate, buckets).
   */
  checkConfig(config: C, ctx: { device: GPUDevice | undefined; modelName: string; target: string }): X;
}

/** loadVerifiedPackage's result: the shared fields, the kind's config, and what checkConfig derived. */
export interface LoadedPackageOf<C, X> extends Omit<LoadedPackage, "config" | "memory"> {
  config: C;
  checked: X;
}

/**
 * The verified-loading pipeline of the module comment, for any kind of package: manifest, plan, quota,
 * config first (the kind's parse + checks), every file verified, then tvmjs, weights and store cleanup.
 */
export async function loadVerifiedPackage<C extends { params: readonly { name: string; shape: readonly number[]; dtype: string }[] }, X>(
  baseUrl: string,
  opts: PackageLoadCommonOptions,
  kind: PackageKind<C, X>,
): Promise<LoadedPackageOf<C, X>> {
  const fetchFn: FetchLike = opts.fetch ?? ((url, init) => globalThis.fetch(url, init));
  let target = opts.target ?? "webgpu";
  const signal = opts.signal;
  const log: Logger = opts.logger ?? ((msg) => console.warn(msg));
  const emit = safeProgress(opts.onProgress, log);
  signal?.throwIfAborted();
  if (isWebGPUTarget(target) && opts.device === undefined) {
    throw new TypeError(`${kind.loader}: target ${JSON.stringify(target)} needs a GPUDevice (opts.device); use target "wasm-cpu" to run without WebGPU`);
  }
  const device = isWebGPUTarget(target) ? opts.device : undefined;
  const variant =
    opts.variant ??
    (opts.variants === undefined
      ? undefined
      : pickVariant(opts.variants, { shaderF16: device?.features.has("shader-f16") ?? false, cpu: device === undefined }));
  const base = packageUrl(baseUrl, variant);
  const store = resolveStore(opts.cache);
  const t0 = performance.now();

  const { manifest, offline } = await manifestFor(base, fetchFn, store, signal, log);
  emit({ phase: "manifest", url: new URL(MANIFEST_FILE, base).href, offline });
  if (variant !== undefined && manifest.quantization !== variant) {
    throw new PackageManifestError(
      `${base}: asked for variant ${JSON.stringify(variant)}, the manifest says quantization ${JSON.stringify(manifest.quantization)}`,
    );
  }
  kind.checkManifest?.(manifest, base);
  if (target === "webgpu") {
    const choice = chooseWebGPUBuild(
      Object.keys(manifest.targets),
      opts.adapterInfo ?? deviceAdapterInfo(device),
      opts.webgpuBuild,
      device?.features.has("subgroups") ?? false,
    );
    if (choice.target !== target) log(`${base}: loading the ${JSON.stringify(choice.target)} build (${choice.reason})`);
    target = choice.target;
  }
  if (target === "wasm-cpu" && opts.preferThreads === true && manifest.targets["wasm-cpu-mt"] !== undefined && wasmThreadsUnavailableReason() === undefined) {
    log(`${base}: no WebGPU; loading the threaded "wasm-cpu-mt" build (the page is cross-origin isolated)`);
    target = "wasm-cpu-mt";
  }
  const noThreads = target === "wasm-cpu-mt" ? wasmThreadsUnavailableReason() : undefined;
  if (noThreads !== undefined) {
    if (manifest.targets["wasm-cpu"] === undefined) {
      throw new WasmThreadsUnavailableError(
        `${base}: target "wasm-cpu-mt" needs shared memory: ${noThreads}; the package has no single-thread "wasm-cpu" build to fall back to`,
      );
    }
    log(`${base}: loading the single-thread "wasm-cpu" build instead of "wasm-cpu-mt": ${noThreads}`);
    target = "wasm-cpu";
  }
  const libPath = libraryFor(manifest, base, target);
  const t1 = performance.now();

  const files = new PackageFiles({ baseUrl: base, manifest, fetch: fetchFn, store, retries: opts.retries, logger: log });
  // Every file but the other targets' libraries (tokenizer files included: cached for readFile).
  const otherLibs = new Set(
    Object.entries(manifest.targets)
      .filter(([t]) => t !== target)
      .map(([, p]) => p),
  );
  const paths = manifest.files.map((f) => f.path).filter((p) => !otherLibs.has(p));
  if (!paths.includes(CHAT_CONFIG_FILE)) files.entry(CHAT_CONFIG_FILE); // throws "unlisted"
  if (!paths.includes(TENSOR_CACHE_FILE)) files.entry(TENSOR_CACHE_FILE);

  let lib: RuntimeLibrary | undefined;
  try {
    // Quota: what the store lacks must fit.
    const { missing } = await files.plan(paths);
    const needed = missing.reduce((n, e) => n + e.bytes, 0);
    const storage =
      opts.storage === null
        ? undefined
        : (opts.storage ?? (store !== null && (store.kind === "cache-storage" || store.kind === "indexeddb") ? defaultStorageManager() : undefined));
    const quota = store === null ? { persisted: null, available: null } : await checkQuota(storage, needed);

    let checkedConfig: { config: C; checked: X; usesF16: boolean } | undefined;
    await files.ensure(paths, {
      signal,
      concurrency: opts.concurrency,
      onProgress: emit,
      first: [CHAT_CONFIG_FILE],
      afterFirst: async () => {
        const config = kind.parseConfig(parseJsonFile(await files.bytes(CHAT_CONFIG_FILE, signal), CHAT_CONFIG_FILE));
        const usesF16 = kind.usesF16(config);
        const modelName = `${manifest.model_id || base} (${manifest.quantization || target})`;
        if (device !== undefined && usesF16 && !device.features.has("shader-f16")) {
          throw new PackageCompatibilityError(
            `${modelName} computes in float16, but this WebGPU device has no "shader-f16" feature. ` +
              "Use a float32 variant (e.g. q4f32_1 or q0f32) of the model, or a GPU/browser with shader-f16.",
            ["shader-f16"],
          );
        }
        checkedConfig = { config, usesF16, checked: kind.checkConfig(config, { device, modelName, target }) };
      },
    });
    if (checkedConfig === undefined) throw new Error("internal: the config was not checked");
    const { config, checked, usesF16 } = checkedConfig;
    const tcManifest = parseTensorCacheManifest(parseJsonFile(await files.bytes(TENSOR_CACHE_FILE, signal), TENSOR_CACHE_FILE));
    checkParams(config, tcManifest);
    checkRecordRanges(tcManifest, files);
    const t2 = performance.now();

    // From here on tvmjs runs, on verified bytes only.
    signal?.throwIfAborted();
    const runtime = await instantiateRuntime({
      wasm: await files.bytes(libPath, signal),
      device,
      logger: opts.logger,
      tvmjs: opts.tvmjs,
      dispatch: opts.dispatch,
      pipelines: opts.pipelines,
      kernelTiming: opts.kernelTiming,
      submitEvery: opts.submitEvery,
      splitDeferred: opts.splitDeferred,
      threads: target === "wasm-cpu-mt" ? (opts.threads ?? defaultWasmThreads()) : undefined,
      onShaderProgress: (progress, done, total) => emit({ phase: "shader-compile", progress, done, total }),
    });
    lib = runtime;
    signal?.throwIfAborted();

    const tensorCache = await uploadWeights(runtime, base, files, tcManifest, emit, signal);
    signal?.throwIfAborted();
    const purged = await finishStore(store, files, base, manifest, { offline, purge: opts.purge, log });
    files.endLoad();
    const t4 = performance.now();
    const stats = files.stats;
    emit({ phase: "ready", totalMs: t4 - t0, downloadedBytes: stats.downloadedBytes, cachedBytes: stats.cachedBytes });
    return {
      baseUrl: base,
      variant: variant ?? null,
      manifest,
      config,
      checked,
      tensorCacheManifest: tcManifest,
      lib: runtime,
      tensorCache,
      deviceKind: runtime.deviceKind,
      target,
      usesF16,
      verifiedBytes: stats.downloadedBytes + stats.cachedBytes,
      cache: { ...stats, evicted: [...stats.evicted], store: store?.kind ?? null, purged, offline, persisted: quota.persisted, available: quota.available },
      timings: {
        manifestMs: t1 - t0,
        fetchVerifyMs: t2 - t1,
        verifyMs: stats.verifyMs,
        instantiateMs: runtime.timings.instantiateMs,
        pipelinesMs: runtime.timings.pipelinesMs,
        vmMs: runtime.timings.vmMs,
        tensorCacheMs: tensorCache.loadMs,
        totalMs: t4 - t0,
      },
      readFile: (path, sig) => files.bytes(path, sig),
      dispose: () => runtime.dispose(),
    };
  } catch (err) {
    lib?.dispose();
    files.endLoad();
    throw err;
  }
}

/**
 * Fetch, verify and load a chat-model package: see the module comment. Afterwards
 * `lib.tvm.getParamsFromCacheByName(config.params.map(p => p.name))` returns the packed weights.
 */
export async function loadPackage(baseUrl: string, opts: LoadPackageOptions): Promise<LoadedPackage> {
  const deviceCheck = opts.deviceCheck;
  const { checked: memory, ...loaded } = await loadVerifiedPackage(baseUrl, opts, {
    loader: "loadPackage",
    parseConfig: parseChatConfig,
    usesF16: configUsesF16,
    checkConfig: (cfg: ChatConfig, { device, modelName }): MemoryEstimate => {
      const check = deviceCheck === false ? {} : (deviceCheck ?? {});
      const memory = estimateMemory(cfg, { maxTotalSeqLen: check.maxTotalSeqLen, prefillChunkSize: check.prefillChunkSize });
      if (deviceCheck !== false) {
        const fit = { memoryBudgetBytes: check.memoryBudgetBytes, modelName };
        if (device === undefined) checkCpuFits(memory, fit);
        else checkDeviceFits(memory, check.limits ?? readDeviceLimits((device as { limits?: unknown }).limits), fit);
      }
      return memory;
    },
  });
  return { ...loaded, memory };
}
