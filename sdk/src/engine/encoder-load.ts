/**
 * Load a text-encoder package (`model_task: "embedding"`) with the same verified-loading pieces as
 * ../load/package.ts's loadPackage: PackageFiles (download or read back from the store, size + SHA-256
 * of every file before anything uses a byte), the artifact store, quota check, progress events,
 * instantiateRuntime (tvmjs wasm + WebGPU pipelines), and the tensor cache uploaded through the verified
 * file set; the steps the two loaders share (manifest with offline fallback, library choice, weight
 * check, upload, purge) are package.ts's exported helpers, called from both. What differs from loadPackage is only the config: an encoder's mlc-chat-config.json has
 * bucket functions and no KV cache / prefill chunk (loadPackage's decoder config parser and memory
 * estimate reject it), so it is parsed by {@link parseEncoderConfig} and checked against the device's
 * buffer limits per bucket.
 */
import { dtypeByteSize, pickVariant, readDeviceLimits } from "./device.js";
import { bucketLargestBuffer, encoderUsesF16, parseEncoderConfig, type EncoderBucket, type EncoderConfig } from "./encoder-config.js";
import { parseTensorCacheManifest, type FetchLike, type Logger, type TensorCacheManifest } from "./tvm.js";
import type { TvmjsModule } from "./tvmjs-types.js";
import { PackageFiles } from "../load/files.js";
import { MANIFEST_FILE, PackageManifestError, type PackageManifest } from "../load/manifest.js";
import {
  CHAT_CONFIG_FILE,
  checkParams,
  finishStore,
  libraryFor,
  manifestFor,
  PackageCompatibilityError,
  packageUrl,
  parseJsonFile,
  TENSOR_CACHE_FILE,
  uploadWeights,
  type PackageCacheReport,
  type PackageLoadTimings,
} from "../load/package.js";
import { safeProgress, type ProgressCallback } from "../load/progress.js";
import { checkQuota, defaultStorageManager, type StorageManagerLike } from "../load/quota.js";
import { instantiateRuntime, type RuntimeDeviceKind, type RuntimeLibrary } from "../load/runtime.js";
import { resolveStore, type CacheOption } from "../load/store.js";

/** The options of loadPackage that apply to encoders (same meaning; see LoadPackageOptions). */
export interface EncoderPackageLoadOptions {
  fetch?: FetchLike | undefined;
  /** Required for target "webgpu"; owned by the package once the wasm is instantiated on it. */
  device?: GPUDevice | undefined;
  variant?: string | undefined;
  variants?: readonly string[] | undefined;
  /** "webgpu" (default) or "wasm-cpu". */
  target?: string | undefined;
  logger?: Logger | undefined;
  tvmjs?: TvmjsModule | undefined;
  signal?: AbortSignal | undefined;
  cache?: CacheOption | undefined;
  concurrency?: number | undefined;
  retries?: number | undefined;
  onProgress?: ProgressCallback | undefined;
  storage?: StorageManagerLike | null | undefined;
  /** Limit checks before the big downloads (default on; false to skip). `limits` overrides the device's. */
  deviceCheck?: { limits?: { maxStorageBufferBindingSize?: number | undefined; maxBufferSize?: number | undefined } | undefined } | false | undefined;
  purge?: boolean | undefined;
}

export interface LoadedEncoderPackage {
  baseUrl: string;
  variant: string | null;
  manifest: PackageManifest;
  config: EncoderConfig;
  /** The buckets this device can run (all of them unless a bucket's buffers exceed the device limits). */
  buckets: EncoderBucket[];
  /** Buckets left out because they exceed the device limits, with the reason. */
  skippedBuckets: { bucket: EncoderBucket; reason: string }[];
  tensorCacheManifest: TensorCacheManifest;
  lib: RuntimeLibrary;
  deviceKind: RuntimeDeviceKind;
  target: string;
  usesF16: boolean;
  verifiedBytes: number;
  cache: PackageCacheReport;
  timings: PackageLoadTimings;
  readFile(path: string, signal?: AbortSignal): Promise<ArrayBuffer>;
  dispose(): void;
}

function mib(n: number): string {
  return `${(n / 2 ** 20).toFixed(1)} MiB`;
}

/**
 * Which buckets fit the device's maxStorageBufferBindingSize / maxBufferSize (unknown limits: all).
 * Throws PackageCompatibilityError when a weight does not fit, or when no bucket at all does.
 */
export function fitBuckets(
  config: EncoderConfig,
  limits: { maxStorageBufferBindingSize?: number | undefined; maxBufferSize?: number | undefined },
  modelName: string,
): { buckets: EncoderBucket[]; skipped: { bucket: EncoderBucket; reason: string }[] } {
  const cap = Math.min(limits.maxStorageBufferBindingSize ?? Infinity, limits.maxBufferSize ?? Infinity);
  const bytesOf = (shape: number[], dtype: string) => shape.reduce((a, b) => a * b, 1) * dtypeByteSize(dtype);
  const tooBig = config.params.filter((p) => bytesOf(p.shape, p.dtype) > cap);
  if (tooBig.length > 0) {
    const p = tooBig[0] as (typeof tooBig)[number];
    throw new PackageCompatibilityError(
      `${modelName}: weight ${p.name} (${mib(bytesOf(p.shape, p.dtype))}) exceeds this device's buffer limit (${mib(cap)})`,
      tooBig.map((q) => `${q.name}: ${bytesOf(q.shape, q.dtype)} > ${cap}`),
    );
  }
  const buckets: EncoderBucket[] = [];
  const skipped: { bucket: EncoderBucket; reason: string }[] = [];
  for (const k of config.buckets) {
    const need = bucketLargestBuffer(config, k);
    if (need !== null && need > cap) skipped.push({ bucket: k, reason: `largest buffer ${mib(need)} > device limit ${mib(cap)}` });
    else buckets.push(k);
  }
  if (buckets.length === 0) {
    throw new PackageCompatibilityError(
      `${modelName}: no bucket function fits this device's buffer limit (${mib(cap)}); recompile with smaller buckets`,
      skipped.map((s) => `${s.bucket.fn}: ${s.reason}`),
    );
  }
  return { buckets, skipped };
}

/** Fetch, verify and load an encoder package (see the module comment). */
export async function loadEncoderPackage(baseUrl: string, opts: EncoderPackageLoadOptions): Promise<LoadedEncoderPackage> {
  const fetchFn: FetchLike = opts.fetch ?? ((url, init) => globalThis.fetch(url, init));
  const target = opts.target ?? "webgpu";
  const signal = opts.signal;
  const log: Logger = opts.logger ?? ((msg) => console.warn(msg));
  const emit = safeProgress(opts.onProgress, log);
  signal?.throwIfAborted();
  if (target === "webgpu" && opts.device === undefined) {
    throw new TypeError('loadEncoderPackage: target "webgpu" needs a GPUDevice (opts.device); use target "wasm-cpu" to run without WebGPU');
  }
  const device = target === "webgpu" ? opts.device : undefined;
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
  const task = manifest.raw["model_task"];
  if (task !== undefined && task !== "embedding") {
    throw new PackageCompatibilityError(
      `${manifest.model_id || base} is a ${JSON.stringify(task)} package, not a text encoder (model_task "embedding"); load it with DecoderModel`,
      [`model_task:${String(task)}`],
    );
  }
  const libPath = libraryFor(manifest, base, target);
  const t1 = performance.now();
  const modelName = `${manifest.model_id || base} (${manifest.quantization ?? target})`;

  const files = new PackageFiles({ baseUrl: base, manifest, fetch: fetchFn, store, retries: opts.retries, logger: log });
  const otherLibs = new Set(Object.entries(manifest.targets).filter(([t]) => t !== target).map(([, p]) => p));
  const paths = manifest.files.map((f) => f.path).filter((p) => !otherLibs.has(p));
  if (!paths.includes(CHAT_CONFIG_FILE)) files.entry(CHAT_CONFIG_FILE); // throws IntegrityError "unlisted"
  if (!paths.includes(TENSOR_CACHE_FILE)) files.entry(TENSOR_CACHE_FILE);

  let lib: RuntimeLibrary | undefined;
  try {
    const { missing } = await files.plan(paths);
    const needed = missing.reduce((n, e) => n + e.bytes, 0);
    const storage =
      opts.storage === null
        ? undefined
        : (opts.storage ?? (store !== null && (store.kind === "cache-storage" || store.kind === "indexeddb") ? defaultStorageManager() : undefined));
    const quota = store === null ? { persisted: null, available: null } : await checkQuota(storage, needed);

    let config: EncoderConfig | undefined;
    let fit: ReturnType<typeof fitBuckets> | undefined;
    let usesF16 = false;
    await files.ensure(paths, {
      signal,
      concurrency: opts.concurrency,
      onProgress: emit,
      first: [CHAT_CONFIG_FILE],
      afterFirst: async () => {
        const cfg = parseEncoderConfig(parseJsonFile(await files.bytes(CHAT_CONFIG_FILE, signal), CHAT_CONFIG_FILE));
        config = cfg;
        usesF16 = encoderUsesF16(cfg);
        if (device !== undefined && usesF16 && !device.features.has("shader-f16")) {
          throw new PackageCompatibilityError(
            `${modelName} computes in float16, but this WebGPU device has no "shader-f16" feature. ` +
              "Use a float32 variant (q0f32 or q4f32_1) of the model, or a GPU/browser with shader-f16.",
            ["shader-f16"],
          );
        }
        const check = opts.deviceCheck;
        const limits = check === false || device === undefined ? {} : (check?.limits ?? readDeviceLimits((device as { limits?: unknown }).limits));
        fit = fitBuckets(cfg, limits, modelName);
      },
    });
    if (config === undefined || fit === undefined) throw new Error("internal: the config was not checked");
    for (const s of fit.skipped) log(`${modelName}: bucket ${s.bucket.fn} skipped (${s.reason})`);
    const tcManifest = parseTensorCacheManifest(parseJsonFile(await files.bytes(TENSOR_CACHE_FILE, signal), TENSOR_CACHE_FILE));
    checkParams(config, tcManifest);
    for (const shard of tcManifest.records) files.entry(shard.dataPath);
    const t2 = performance.now();

    signal?.throwIfAborted();
    const runtime = await instantiateRuntime({
      wasm: await files.bytes(libPath, signal),
      device,
      logger: opts.logger,
      tvmjs: opts.tvmjs,
      onShaderProgress: (progress, done, total) => emit({ phase: "shader-compile", progress, done, total }),
    });
    lib = runtime;
    signal?.throwIfAborted();

    const { loadMs: tensorCacheMs } = await uploadWeights(runtime, base, files, tcManifest, emit, signal);
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
      buckets: fit.buckets,
      skippedBuckets: fit.skipped,
      tensorCacheManifest: tcManifest,
      lib: runtime,
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
        tensorCacheMs,
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
