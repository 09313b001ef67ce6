/**
 * Load a text-encoder package (`model_task: "embedding"`) with the same verified-loading pieces as
 * ../load/package.ts's loadPackage: PackageFiles (download or read back from the store, size + SHA-256
 * of every file before anything uses a byte), the artifact store, quota check, progress events,
 * instantiateRuntime (tvmjs wasm + WebGPU pipelines), and the tensor cache uploaded through the verified
 * file set: both are package.ts's loadVerifiedPackage with their own PackageKind. What differs from
 * loadPackage is only the config: an encoder's mlc-chat-config.json has
 * bucket functions and no KV cache / prefill chunk (loadPackage's decoder config parser and memory
 * estimate reject it), so it is parsed by {@link parseEncoderConfig} and checked against the device's
 * buffer limits per bucket.
 */
import { dtypeByteSize, readDeviceLimits } from "../load/device-fit.js";
import { bucketLargestBuffer, encoderUsesF16, parseEncoderConfig, type EncoderBucket, type EncoderConfig } from "./config.js";
import type { Logger, TensorCacheManifest } from "../runtime/tvm.js";
import type { PackageManifest } from "../load/manifest.js";
import {
  loadVerifiedPackage,
  PackageCompatibilityError,
  type PackageCacheReport,
  type PackageLoadCommonOptions,
  type PackageLoadTimings,
} from "../load/package.js";
import type { RuntimeDeviceKind, RuntimeLibrary } from "../runtime/instantiate.js";

/** loadPackage's options (same meaning; see LoadPackageOptions), with the encoder's own device check. */
export interface EncoderPackageLoadOptions extends PackageLoadCommonOptions {
  /** Limit checks before the big downloads (default on; false to skip). `limits` overrides the device's. */
  deviceCheck?: { limits?: { maxStorageBufferBindingSize?: number | undefined; maxBufferSize?: number | undefined } | undefined } | false | undefined;
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
  const log: Logger = opts.logger ?? ((msg) => console.warn(msg));
  const deviceCheck = opts.deviceCheck;
  // Lazy pipelines: a session runs two or three of the library's static-shape buckets, and compiling all
  // of them at load took minutes in Chromium on SwiftShader (docs/benchmarks.md, embeddings).
  const {
    checked: fit,
    tensorCache: _weights,
    ...loaded
  } = await loadVerifiedPackage(
    baseUrl,
    { ...opts, pipelines: opts.pipelines ?? "lazy" },
    {
      loader: "loadEncoderPackage",
      checkManifest: (manifest, base) => {
        const task = manifest.raw["model_task"];
        if (task !== undefined && task !== "embedding") {
          throw new PackageCompatibilityError(
            `${manifest.model_id || base} is a ${JSON.stringify(task)} package, not a text encoder (model_task "embedding"); load it with DecoderModel`,
            [`model_task:${String(task)}`],
          );
        }
      },
      parseConfig: parseEncoderConfig,
      usesF16: encoderUsesF16,
      checkConfig: (cfg: EncoderConfig, { device, modelName }) => {
        const limits = deviceCheck === false || device === undefined ? {} : (deviceCheck?.limits ?? readDeviceLimits((device as { limits?: unknown }).limits));
        const fitted = fitBuckets(cfg, limits, modelName);
        for (const s of fitted.skipped) log(`${modelName}: bucket ${s.bucket.fn} skipped (${s.reason})`);
        return fitted;
      },
    },
  );
  return { ...loaded, buckets: fit.buckets, skippedBuckets: fit.skipped };
}
