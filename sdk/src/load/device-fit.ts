/**
 * Device checks for model packages: which package variant a device can run, whether the model fits the
 * device's limits, and what to do without WebGPU.
 *
 * - Variants: a model folder holds one package per quantization (`<model>/q4f16_1/`, `<model>/q4f32_1/`,
 *   the layout `hearth compile` writes and `hearth serve` lists at `/models/`). {@link pickVariant}
 *   chooses the first variant of a preference list the device can run: an `f16` variant needs the
 *   WebGPU `shader-f16` feature; without WebGPU (wasm-cpu) f32 variants are preferred.
 *   {@link variantsFromModelIndex} builds that list from a `/models/` index.
 * - Memory: {@link estimateMemory} sizes the weights (from mlc-chat-config.json `params`), the paged KV
 *   cache for the chosen context (`model_config` layers / KV heads / head_dim) and the prefill
 *   activations; {@link checkDeviceFits} compares the largest single buffers with
 *   `maxStorageBufferBindingSize` and `maxBufferSize`, and the total with an optional budget, and throws
 *   a {@link DeviceError} naming the limit and the shortfall.
 * - WebGPU build: {@link chooseWebGPUBuild} picks a package's fused or plain WebGPU library for the adapter.
 * (Device loss, at run time: runtime/device-lost.ts.)
 */
import type { ChatConfig } from "./chat-config.js";
import { configUsesF16 } from "./chat-config.js";
import type { FetchLike } from "../runtime/tvm.js";
import { softwareAdapterName, type AdapterIdentity } from "../runtime/gpu.js";
import { type MemoryEstimate, type DeviceLimit, type DeviceProblem, DeviceError, PackageCompatibilityError, VariantSelectionError } from "../errors/load.js";
export { type MemoryEstimate, type DeviceLimit, type DeviceProblem, DeviceError, VariantSelectionError } from "../errors/load.js";

// -- memory estimate ----------------------------------------------------------------------------

/** Bytes per element of a TVM dtype string ("float16" -> 2, "uint32" -> 4, "bool" -> 1). */
export function dtypeByteSize(dtype: string): number {
  if (dtype === "bool") return 1;
  const m = /(\d+)(?:x(\d+))?$/.exec(dtype);
  if (m === null) throw new Error(`unknown dtype ${JSON.stringify(dtype)}`);
  const bits = Number(m[1]) * (m[2] === undefined ? 1 : Number(m[2]));
  return Math.max(1, Math.ceil(bits / 8));
}

export interface MemoryEstimateOptions {
  /** KV-cache capacity in tokens (default: the package's context_window_size). */
  maxTotalSeqLen?: number | undefined;
  /** Tokens per prefill call (default: the package's prefill_chunk_size). */
  prefillChunkSize?: number | undefined;
  /** KV-cache page size in tokens (default 16, as PagedKVCache uses). */
  pageSize?: number | undefined;
  maxBatchSize?: number | undefined;
}

function numberField(doc: Record<string, unknown>, ...names: string[]): number | undefined {
  for (const n of names) {
    const v = doc[n];
    if (typeof v === "number" && Number.isFinite(v) && v > 0) return v;
  }
  return undefined;
}

/** Estimate what a decoder package needs on the device (see {@link MemoryEstimate}). */
export function estimateMemory(config: ChatConfig, opts: MemoryEstimateOptions = {}): MemoryEstimate {
  const maxTotalSeqLen = opts.maxTotalSeqLen ?? config.context_window_size;
  const chunk = opts.prefillChunkSize ?? config.prefill_chunk_size;
  const pageSize = opts.pageSize ?? 16;
  const batch = opts.maxBatchSize ?? 1;
  const computeDtype = configUsesF16(config) ? "float16" : "float32";
  const cBytes = computeDtype === "float16" ? 2 : 4;

  let weightsBytes = 0;
  let largestParam = { name: "", bytes: 0, shape: [] as number[], dtype: "" };
  for (const p of config.params) {
    const bytes = p.shape.reduce((a, b) => a * b, 1) * dtypeByteSize(p.dtype);
    weightsBytes += bytes;
    if (bytes > largestParam.bytes) largestParam = { name: p.name, bytes, shape: [...p.shape], dtype: p.dtype };
  }

  const mc = (config.raw["model_config"] ?? {}) as Record<string, unknown>;
  const hidden = numberField(mc, "hidden_size", "n_embd", "d_model");
  const heads = numberField(mc, "num_attention_heads", "n_head");
  const layers = numberField(mc, "num_hidden_layers", "n_layer", "num_layers");
  const kvHeads = numberField(mc, "num_key_value_heads", "num_kv_heads") ?? heads;
  const headDim = numberField(mc, "head_dim") ?? (hidden !== undefined && heads !== undefined ? hidden / heads : undefined);
  const intermediate = numberField(mc, "intermediate_size", "n_inner") ?? (hidden !== undefined ? 4 * hidden : 0);

  let kvCache: MemoryEstimate["kvCache"] = null;
  if (layers !== undefined && kvHeads !== undefined && headDim !== undefined) {
    // TVM's paged cache: whole pages, plus one spare page per sequence slot.
    const pages = Math.ceil(maxTotalSeqLen / pageSize) + batch;
    const perLayerBytes = pages * 2 * kvHeads * pageSize * headDim * cBytes;
    kvCache = { bytes: perLayerBytes * layers, perLayerBytes, layers, kvHeads, headDim, pages };
  }

  // Per prefill token: residual + norm + attention output (4 x hidden), fused QKV, gate+up (2 x
  // intermediate) and the activated MLP input (intermediate); plus float32 logits of the last token.
  const qkv = heads !== undefined && headDim !== undefined && kvHeads !== undefined ? (heads + 2 * kvHeads) * headDim : 3 * (hidden ?? 0);
  const perToken = (4 * (hidden ?? 0) + qkv + 3 * intermediate) * cBytes;
  const activationBytes = chunk * perToken + config.vocab_size * 4;
  const biggestActivation = chunk * Math.max(2 * intermediate, qkv, hidden ?? 0) * cBytes;

  const candidates: [string, number][] = [
    [`weight ${largestParam.name}`, largestParam.bytes],
    ["KV cache (one layer)", kvCache?.perLayerBytes ?? 0],
    ["prefill activation", biggestActivation],
  ];
  const [largestBuffer, largestBufferBytes] = candidates.reduce((a, b) => (b[1] > a[1] ? b : a));
  return {
    weightsBytes,
    largestParam,
    computeDtype,
    kvCache,
    activationBytes,
    totalBytes: weightsBytes + (kvCache?.bytes ?? 0) + activationBytes,
    largestBufferBytes,
    largestBuffer,
    maxTotalSeqLen,
    prefillChunkSize: chunk,
  };
}

// -- limit checks -------------------------------------------------------------------------------

/** The limits {@link checkDeviceFits} reads (plain numbers; GPUSupportedLimits, GPUDevice.limits and AdapterLimits all fit). */
export interface DeviceLimits {
  maxStorageBufferBindingSize?: number | undefined;
  maxBufferSize?: number | undefined;
}

export interface DeviceFitOptions {
  /** Fail when the estimated total exceeds this many bytes (no default: WebGPU does not expose VRAM size). */
  memoryBudgetBytes?: number | undefined;
  modelName?: string | undefined;
}

/** Read the limits of a GPUDevice / GPUAdapter (or a fake), tolerating missing fields. */
export function readDeviceLimits(limits: unknown): DeviceLimits {
  const l = (limits ?? {}) as Record<string, unknown>;
  const n = (k: string): number | undefined => (typeof l[k] === "number" && Number.isFinite(l[k]) ? (l[k] as number) : undefined);
  return { maxStorageBufferBindingSize: n("maxStorageBufferBindingSize"), maxBufferSize: n("maxBufferSize") };
}

/** The problems of running `estimate` under `limits` (empty when it fits). */
export function deviceProblems(estimate: MemoryEstimate, limits: DeviceLimits, opts: DeviceFitOptions = {}): DeviceProblem[] {
  const problems: DeviceProblem[] = [];
  const check = (limit: DeviceLimit, available: number | undefined, what: string, needed: number) => {
    if (available !== undefined && needed > available) problems.push({ limit, what, needed, available, shortBy: needed - available });
  };
  // Every weight, KV-cache layer and activation is one buffer bound as a storage buffer.
  const buffers: [string, number][] = [
    [`weight ${estimate.largestParam.name}`, estimate.largestParam.bytes],
    ["KV cache (one layer)", estimate.kvCache?.perLayerBytes ?? 0],
  ];
  if (estimate.largestBuffer === "prefill activation") buffers.push(["prefill activation", estimate.largestBufferBytes]);
  for (const [what, bytes] of buffers) {
    check("maxStorageBufferBindingSize", limits.maxStorageBufferBindingSize, what, bytes);
    check("maxBufferSize", limits.maxBufferSize, what, bytes);
  }
  check("memoryBudget", opts.memoryBudgetBytes, "total (weights + KV cache + activations)", estimate.totalBytes);
  return problems;
}

/** Throw a {@link DeviceError} unless `estimate` fits `limits` (and the optional budget). */
export function checkDeviceFits(estimate: MemoryEstimate, limits: DeviceLimits, opts: DeviceFitOptions = {}): void {
  const problems = deviceProblems(estimate, limits, opts);
  if (problems.length > 0) throw new DeviceError(problems, estimate, opts.modelName);
}

/** wasm32 address space: a wasm-cpu build holds weights, KV cache and activations in at most 4 GiB. */
export const WASM32_MAX_BYTES = 4 * 1024 * 1024 * 1024;

/** Throw a {@link DeviceError} when a wasm-cpu build cannot fit its weights + KV cache in wasm32 memory. */
export function checkCpuFits(estimate: MemoryEstimate, opts: DeviceFitOptions = {}): void {
  const problems: DeviceProblem[] = [];
  const budget = Math.min(WASM32_MAX_BYTES, opts.memoryBudgetBytes ?? WASM32_MAX_BYTES);
  if (estimate.totalBytes > budget) {
    problems.push({
      limit: budget < WASM32_MAX_BYTES ? "memoryBudget" : "wasm32Memory",
      what: "total (weights + KV cache + activations)",
      needed: estimate.totalBytes,
      available: budget,
      shortBy: estimate.totalBytes - budget,
    });
  }
  if (problems.length > 0) throw new DeviceError(problems, estimate, opts.modelName);
}

// -- variants -----------------------------------------------------------------------------------

/** Whether a quantization name computes in float16 ("q4f16_1", "q0f16" -> true; "q4f32_1" -> false). */
export function isF16Variant(quantization: string): boolean {
  return /f16/.test(quantization);
}

export interface VariantCapabilities {
  /** The WebGPU device/adapter has `shader-f16`. */
  shaderF16: boolean;
  /**
   * Running without WebGPU (wasm-cpu): prefer float32 variants. Also true when {@link chooseBackend}
   * took the wasm-cpu build because the adapter is a software one.
   */
  cpu?: boolean | undefined;
}

/** Where a package runs by default, and why (see {@link chooseBackend}). */
export interface BackendChoice {
  target: "webgpu" | "wasm-cpu";
  /** The software adapter's name ("SwiftShader", "llvmpipe", ...) when that decided it; else null. */
  software: string | null;
  /** Why WebGPU is not used (no WebGPU, or a software adapter); null on WebGPU. */
  reason: string | null;
}

export interface BackendChoiceOptions {
  /** The targets the package has (its manifest's / index's `targets`); undefined: not known yet. */
  packageTargets?: readonly string[] | undefined;
  /** Use WebGPU even on a software adapter (the SDK's `target: "webgpu"`, the demo's `?webgpu=force`). */
  forceWebGPU?: boolean | undefined;
}

/**
 * The default backend: WebGPU on a hardware adapter; the package's wasm-cpu build when there is no
 * WebGPU adapter (`adapter` null) or the adapter is a software rasterizer (SwiftShader, llvmpipe/lavapipe,
 * WARP, or `isFallbackAdapter`), unless `forceWebGPU`. Software WebGPU emulates every shader invocation on
 * the CPU: SmolLM2-135M's first token took 16 min on SwiftShader against seconds on wasm-cpu. A package
 * known to have no wasm-cpu build stays on the software adapter (slow beats nothing).
 */
export function chooseBackend(adapter: AdapterIdentity | null, opts: BackendChoiceOptions = {}): BackendChoice {
  const hasCpu = opts.packageTargets === undefined || opts.packageTargets.includes("wasm-cpu");
  if (adapter === null) return { target: "wasm-cpu", software: null, reason: "no WebGPU adapter" };
  const software = softwareAdapterName(adapter);
  if (software === null || opts.forceWebGPU === true || !hasCpu) return { target: "webgpu", software, reason: null };
  return { target: "wasm-cpu", software, reason: `software WebGPU adapter (${software}): using the CPU build` };
}

/**
 * Which of a package's WebGPU libraries to load for target "webgpu" (the load option `webgpuBuild`):
 * "auto" (default) takes "webgpu-fused-sg<N>" (the fused build with subgroup-shuffle reductions) on a hardware
 * adapter whose subgroups are exactly N lanes wide, else "webgpu-fused" (the staged decode fusion: fewer,
 * heavier kernels) on a hardware adapter, and the plain "webgpu" on a software one, or when the adapter is
 * unknown; "fused" / "plain" ask for one by name; "subgroups" asks for the subgroup build that fits this
 * adapter (also on a software adapter: lavapipe runs "webgpu-fused-sg8").
 */
export type WebGPUBuild = "auto" | "fused" | "plain" | "subgroups";

export const WEBGPU_BUILDS: readonly WebGPUBuild[] = ["auto", "fused", "plain", "subgroups"];

/** A package target compiled for one exact subgroup size ("webgpu-fused-sg32" -> 32), else null. */
export function subgroupBuildSize(target: string): number | null {
  const m = /^webgpu-fused-sg(\d+)$/.exec(target);
  return m === null ? null : Number(m[1]);
}

/** The target {@link chooseWebGPUBuild} picked, and why (logged by the loader). */
export interface WebGPUBuildChoice {
  target: "webgpu" | "webgpu-fused" | `webgpu-fused-sg${number}`;
  reason: string;
}

/**
 * The one subgroup size every subgroup of this device has, or why there is none: the sg builds' shuffle
 * trees (TVM's LowerThreadAllreduce) sum exactly N lanes, so a device whose subgroups vary (Intel: 8..32)
 * or whose size is unknown cannot run them correctly.
 */
function fixedSubgroupSize(adapter: AdapterIdentity | null | undefined, deviceHasSubgroups: boolean): number | string {
  if (!deviceHasSubgroups) return 'the device has no "subgroups" feature (request it: requestGPU does when the adapter has it)';
  const min = adapter?.subgroupMinSize;
  const max = adapter?.subgroupMaxSize;
  if (typeof min !== "number" || typeof max !== "number") return "the adapter does not report subgroupMinSize / subgroupMaxSize";
  if (min !== max) return `the adapter's subgroup size varies (${min}..${max}), and the subgroup builds need one fixed size`;
  return min;
}

/**
 * The WebGPU library to load from a package with `packageTargets` on `adapter` (undefined or null: not
 * known, e.g. a caller's GPUDevice without `adapterInfo`); `deviceHasSubgroups`: the device was created
 * with the "subgroups" feature. The fused build cuts SmolLM2-135M's decode from
 * 273 to 182 launches per token and decoded 397 -> 485 tok/s on an H100 (0.54 -> 0.66 of native CUDA), but its
 * GPU time per token was 3.2x the plain build's on CPU-emulated WebGPU (lavapipe, SwiftShader), so "auto" takes
 * it on hardware adapters only
 * (docs/benchmarks.md). A package with only one of the two gets that one under "auto"; asking for a build the
 * package lacks is a {@link PackageCompatibilityError} naming the targets it has.
 */
export function chooseWebGPUBuild(
  packageTargets: readonly string[],
  adapter: AdapterIdentity | null | undefined,
  build: WebGPUBuild = "auto",
  deviceHasSubgroups = false,
): WebGPUBuildChoice {
  if (!WEBGPU_BUILDS.includes(build)) {
    throw new TypeError(`webgpuBuild must be one of ${WEBGPU_BUILDS.map((b) => JSON.stringify(b)).join(", ")}, got ${JSON.stringify(build)}`);
  }
  const have = packageTargets.length > 0 ? packageTargets.join(", ") : "none";
  const sgSizes = packageTargets.map(subgroupBuildSize).filter((n): n is number => n !== null);
  const size = fixedSubgroupSize(adapter, deviceHasSubgroups);
  if (build === "subgroups") {
    if (sgSizes.length === 0) {
      throw new PackageCompatibilityError(
        `webgpuBuild "subgroups" needs a "webgpu-fused-sg<N>" library, and the package has none (targets: ${have}); ` +
          'recompile with `hearth compile --target webgpu-fused-sg32` (NVIDIA/Apple-class adapters), or load with webgpuBuild "auto"',
        ["target:webgpu-fused-sg<N>"],
      );
    }
    if (typeof size === "string") {
      throw new PackageCompatibilityError(`webgpuBuild "subgroups" cannot run here: ${size}; load with webgpuBuild "auto"`, ["subgroups"]);
    }
    if (!sgSizes.includes(size)) {
      throw new PackageCompatibilityError(
        `webgpuBuild "subgroups": this adapter's subgroups are ${size} lanes wide, and the package's subgroup builds are for ` +
          `${sgSizes.join(", ")} (targets: ${have}); recompile with \`hearth compile --target webgpu-fused-sg${size}\`, or load with webgpuBuild "auto"`,
        [`target:webgpu-fused-sg${size}`],
      );
    }
    return { target: `webgpu-fused-sg${size}`, reason: `webgpuBuild "subgroups" (subgroup size ${size})` };
  }
  const hasFused = packageTargets.includes("webgpu-fused");
  const hasPlain = packageTargets.includes("webgpu");
  if (build !== "auto") {
    const target = build === "fused" ? "webgpu-fused" : "webgpu";
    if (!packageTargets.includes(target)) {
      throw new PackageCompatibilityError(
        `webgpuBuild ${JSON.stringify(build)} needs the package's ${JSON.stringify(target)} library, and it has none (targets: ${have}); ` +
          `recompile with \`hearth compile --target ${target}\`, or load with webgpuBuild "auto"`,
        [`target:${target}`],
      );
    }
    return { target, reason: `webgpuBuild ${JSON.stringify(build)}` };
  }
  const hardware = adapter !== null && adapter !== undefined && softwareAdapterName(adapter) === null;
  if (hardware && typeof size === "number" && sgSizes.includes(size)) {
    return { target: `webgpu-fused-sg${size}`, reason: `hardware adapter with ${size}-lane subgroups: the fused subgroup build` };
  }
  if (!hasFused) return { target: "webgpu", reason: "the package has no webgpu-fused build" };
  if (!hasPlain) return { target: "webgpu-fused", reason: "the package's only WebGPU build" };
  if (adapter === null || adapter === undefined) return { target: "webgpu", reason: "adapter unknown: the plain build is never slow" };
  const software = softwareAdapterName(adapter);
  if (software !== null) return { target: "webgpu", reason: `software WebGPU adapter (${software}): the fused build is slower there` };
  return { target: "webgpu-fused", reason: "hardware adapter: the fused decode build" };
}

/**
 * The variant to load: the first of `variants` (your preference order, e.g. `["q4f16_1", "q4f32_1"]`)
 * that this device can run. On WebGPU an f16 variant needs `shader-f16`; on the CPU an f32 variant is
 * taken when there is one (wasm has no fast float16), else the first.
 */
export function pickVariant(variants: readonly string[], caps: VariantCapabilities): string {
  if (variants.length === 0) throw new VariantSelectionError("no package variants to choose from", []);
  if (caps.cpu === true) return variants.find((v) => !isF16Variant(v)) ?? (variants[0] as string);
  const ok = variants.find((v) => caps.shaderF16 || !isF16Variant(v));
  if (ok === undefined) {
    throw new VariantSelectionError(
      `every variant (${variants.join(", ")}) computes in float16, and this WebGPU device has no "shader-f16" feature: ` +
        "build a float32 variant (e.g. `hearth compile ... --quant q4f32_1`)",
      [...variants],
    );
  }
  return ok;
}

/** One entry of a `hearth serve` `/models/` index. */
export interface ModelIndexEntry {
  model_id: string;
  quantization: string;
  /** Package folder URL (absolute after {@link fetchModelIndex}). */
  url: string;
  bytes: number | null;
  targets: Record<string, string>;
}

/** Fetch and validate a `/models/` index (a JSON array; see compile/hearth/serve/app.py). */
export async function fetchModelIndex(indexUrl: string, fetchFn?: FetchLike, signal?: AbortSignal): Promise<ModelIndexEntry[]> {
  const f: FetchLike = fetchFn ?? ((u, i) => globalThis.fetch(u, i));
  const res = await f(indexUrl, signal === undefined ? {} : { signal });
  if (!res.ok) throw new Error(`GET ${indexUrl} failed: HTTP ${res.status}`);
  const json: unknown = JSON.parse(await res.text());
  const list = Array.isArray(json) ? json : (json as { packages?: unknown } | null)?.packages;
  if (!Array.isArray(list)) throw new Error(`${indexUrl} is not a model index (expected a JSON array)`);
  return list.flatMap((e: unknown): ModelIndexEntry[] => {
    const r = e as Partial<Record<keyof ModelIndexEntry, unknown>> | null;
    if (typeof r?.model_id !== "string" || typeof r.quantization !== "string" || typeof r.url !== "string") return [];
    const targets: Record<string, string> = {};
    if (typeof r.targets === "object" && r.targets !== null) {
      for (const [k, v] of Object.entries(r.targets)) if (typeof v === "string") targets[k] = v;
    }
    return [
      { model_id: r.model_id, quantization: r.quantization, url: new URL(r.url, indexUrl).href, bytes: typeof r.bytes === "number" ? r.bytes : null, targets },
    ];
  });
}

/**
 * The variants of `modelId` in an index, f16 first (use with {@link pickVariant} or loadPackage's
 * `variants`); optionally only those with a given target. Returns the model folder (the variants'
 * common parent) and the quantization names.
 */
export function variantsFromModelIndex(
  entries: readonly ModelIndexEntry[],
  modelId: string,
  opts: { target?: string } = {},
): { modelUrl: string; variants: string[] } {
  const mine = entries.filter((e) => e.model_id === modelId && (opts.target === undefined || opts.target in e.targets));
  if (mine.length === 0) throw new VariantSelectionError(`the model index has no package for ${JSON.stringify(modelId)}`, []);
  const parent = (url: string) => new URL("../", url.endsWith("/") ? url : `${url}/`).href;
  const modelUrl = parent((mine[0] as ModelIndexEntry).url);
  const sameParent = mine.filter((e) => parent(e.url) === modelUrl);
  const variants = sameParent.map((e) => e.quantization).sort((a, b) => Number(isF16Variant(b)) - Number(isF16Variant(a)));
  return { modelUrl, variants };
}
