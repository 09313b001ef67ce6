/**
 * Load a Hearth model package onto a WebGPU device, verifying every file first.
 *
 *   hearth-manifest.json ── the file list (size + SHA-256); the root of trust
 *   mlc-chat-config.json ── verified, parsed
 *   tensor-cache.json    ── verified, parsed (names the shards)
 *   <model>.wasm, shards ── fetched and verified (SHA-256) before tvmjs sees any byte
 *   then: instantiate the wasm (tvmjs), upload the weights through a {@link VerifiedArtifactCache}
 *
 * A file that is missing, resized, altered or not in the manifest fails with an {@link IntegrityError}
 * naming it; nothing is instantiated or uploaded in that case.
 */
import {
  asDirectoryUrl,
  loadTensorCache,
  loadTVMLibrary,
  parseTensorCacheManifest,
  type FetchLike,
  type LoadedTensorCache,
  type Logger,
  type TensorCacheManifest,
  type TVMLibrary,
} from "../engine/tvm.js";
import type { TvmjsModule } from "../engine/tvmjs-types.js";
import { configUsesF16, parseChatConfig, type ChatConfig } from "./chat-config.js";
import { fetchManifest, PackageManifestError, type PackageManifest } from "./manifest.js";
import { VerifiedArtifactCache } from "./verified-cache.js";

export const CHAT_CONFIG_FILE = "mlc-chat-config.json";
export const TENSOR_CACHE_FILE = "tensor-cache.json";

export interface LoadPackageOptions {
  /** Fetch for every package file (default: global fetch). In Node pass one that reads file:// URLs. */
  fetch?: FetchLike | undefined;
  /**
   * The WebGPU device to run on. Once the wasm is instantiated on it, the package owns it: disposing the
   * package destroys it (tvmjs's runtime dispose does), and so does a load that fails after that point.
   * A load that fails earlier (manifest, integrity, compatibility checks) leaves the device untouched.
   */
  device: GPUDevice;
  /**
   * Quantization variant ("q4f16_1", "q4f32_1", ...). When given, `baseUrl` is the model folder and the
   * package is `<baseUrl>/<variant>/`, whose manifest must say that quantization. When omitted,
   * `baseUrl` is the package folder itself.
   */
  variant?: string | undefined;
  /** Which of the manifest's `targets` to load (default "webgpu"). */
  target?: string | undefined;
  logger?: Logger | undefined;
  tvmjs?: TvmjsModule | undefined;
  signal?: AbortSignal | undefined;
}

export interface PackageLoadTimings {
  /** hearth-manifest.json fetch + parse. */
  manifestMs: number;
  /** Config, tensor-cache.json, wasm and shards: fetch + SHA-256 (wall clock). */
  fetchVerifyMs: number;
  /** Of which hashing (summed over files). */
  verifyMs: number;
  instantiateMs: number;
  /** WebGPU shader/pipeline compilation. */
  pipelinesMs: number;
  vmMs: number;
  /** Weights onto the GPU. */
  tensorCacheMs: number;
  totalMs: number;
}

export interface LoadedPackage {
  /** The package folder URL (ends with "/"). */
  baseUrl: string;
  manifest: PackageManifest;
  config: ChatConfig;
  tensorCacheManifest: TensorCacheManifest;
  lib: TVMLibrary;
  tensorCache: LoadedTensorCache;
  /** The model computes in float16 (device has shader-f16, checked). */
  usesF16: boolean;
  /** Bytes fetched and verified. */
  verifiedBytes: number;
  timings: PackageLoadTimings;
  /** Dispose the runtime (weights, VM, device). */
  dispose(): void;
}

/** The package cannot run on this device or is internally inconsistent. */
export class PackageCompatibilityError extends Error {
  override readonly name = "PackageCompatibilityError";
  /** Missing device features / mismatches, e.g. ["shader-f16"]. */
  readonly missing: string[];
  constructor(message: string, missing: string[]) {
    super(message);
    this.missing = missing;
  }
}

function parseJson(buf: ArrayBuffer, file: string): unknown {
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
function checkParams(config: ChatConfig, tc: TensorCacheManifest): void {
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
 * Fetch, verify and load a package: see the module comment. Afterwards
 * `lib.tvm.getParamsFromCacheByName(config.params.map(p => p.name))` returns the packed weights.
 */
export async function loadPackage(baseUrl: string, opts: LoadPackageOptions): Promise<LoadedPackage> {
  const fetchFn: FetchLike = opts.fetch ?? ((url, init) => globalThis.fetch(url, init));
  const target = opts.target ?? "webgpu";
  const signal = opts.signal;
  const base = packageUrl(baseUrl, opts.variant);
  const t0 = performance.now();

  const manifest = await fetchManifest(base, fetchFn, signal);
  if (opts.variant !== undefined && manifest.quantization !== opts.variant) {
    throw new PackageManifestError(
      `${base}: asked for variant ${JSON.stringify(opts.variant)}, the manifest says quantization ${JSON.stringify(manifest.quantization)}`,
    );
  }
  const wasmPath = manifest.targets[target];
  if (wasmPath === undefined) {
    const have = Object.keys(manifest.targets);
    throw new PackageCompatibilityError(
      `${base} has no ${JSON.stringify(target)} library (targets: ${have.length > 0 ? have.join(", ") : "none"}); ` +
        `recompile with \`hearth compile --target ${target}\``,
      [`target:${target}`],
    );
  }
  const t1 = performance.now();

  const cache = new VerifiedArtifactCache(base, manifest, fetchFn);
  try {
    const [configBuf, tcBuf] = await Promise.all([
      cache.file(CHAT_CONFIG_FILE, signal),
      cache.file(TENSOR_CACHE_FILE, signal),
    ]);
    const config = parseChatConfig(parseJson(configBuf, CHAT_CONFIG_FILE));
    const tcManifest = parseTensorCacheManifest(parseJson(tcBuf, TENSOR_CACHE_FILE));
    checkParams(config, tcManifest);
    const usesF16 = configUsesF16(config);
    if (usesF16 && !opts.device.features.has("shader-f16")) {
      throw new PackageCompatibilityError(
        `${manifest.model_id || base} (${config.quantization}) computes in float16, but this WebGPU device has no ` +
          `"shader-f16" feature. Use a float32 variant (e.g. q4f32_1) of the model, or a GPU/browser with shader-f16.`,
        ["shader-f16"],
      );
    }
    // Everything tvmjs will read, verified before it reads any of it.
    await cache.prefetch([wasmPath, ...tcManifest.records.map((s) => s.dataPath)], signal);
    const t2 = performance.now();

    const lib = await loadTVMLibrary({
      wasm: await cache.file(wasmPath),
      device: opts.device,
      logger: opts.logger,
      tvmjs: opts.tvmjs,
    });
    let tensorCache: LoadedTensorCache;
    try {
      tensorCache = await loadTensorCache(lib.tvm, base, { artifactCache: cache, signal });
    } catch (err) {
      lib.dispose();
      throw err;
    }
    const t3 = performance.now();
    const verifiedBytes = cache.stats.bytes;
    return {
      baseUrl: base,
      manifest,
      config,
      tensorCacheManifest: tcManifest,
      lib,
      tensorCache,
      usesF16,
      verifiedBytes,
      timings: {
        manifestMs: t1 - t0,
        fetchVerifyMs: t2 - t1,
        verifyMs: cache.stats.verifyMs,
        instantiateMs: lib.timings.instantiateMs,
        pipelinesMs: lib.timings.pipelinesMs,
        vmMs: lib.timings.vmMs,
        tensorCacheMs: tensorCache.loadMs,
        totalMs: t3 - t0,
      },
      dispose: () => lib.dispose(),
    };
  } finally {
    cache.clear(); // the weights live on the GPU now (or the load failed): drop the CPU copies
  }
}
