/**
 * WebGPU adapter and device acquisition for the engine (worker side).
 *
 * Works wherever `navigator.gpu` (or an injected `GPU` object) exists: browsers, module Workers,
 * and Node with Dawn (`webgpu` package) exposed as `navigator.gpu`.
 */
import { type AdapterLimits, type AdapterLimitName, type AdapterDescription, WebGPUUnavailableError, WebGPUCapabilityError } from "../errors/runtime.js";
export {
  type AdapterLimits,
  type AdapterLimitName,
  type AdapterDescription,
  type WebGPUUnavailableReason,
  WebGPUUnavailableError,
  WebGPUCapabilityError,
} from "../errors/runtime.js";

const LIMIT_NAMES: readonly AdapterLimitName[] = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
  "maxUniformBufferBindingSize",
  "maxUniformBuffersPerShaderStage",
  "maxBindGroups",
  "maxBindingsPerBindGroup",
  "minStorageBufferOffsetAlignment",
  "minUniformBufferOffsetAlignment",
];

/**
 * Limits requested at the adapter's maximum when creating the device. The WebGPU defaults
 * (128 MiB binding, 256 MiB buffer, 16 KiB workgroup storage, 8 storage buffers per stage) are too
 * small for model weights and for TVM's kernels.
 */
const MAXED_LIMITS: readonly AdapterLimitName[] = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxStorageBuffersPerShaderStage",
];

/** Legacy/alternative spellings some implementations still expose. */
interface AdapterCompat {
  readonly info?: GPUAdapterInfo & { readonly isFallbackAdapter?: boolean; readonly subgroupMinSize?: number; readonly subgroupMaxSize?: number };
  readonly isFallbackAdapter?: boolean;
}

function readLimit(limits: GPUSupportedLimits, name: AdapterLimitName): number {
  const value: unknown = (limits as unknown as Record<string, unknown>)[name];
  return typeof value === "number" ? value : 0;
}

/** Describe an adapter as plain data (for logs, reports, postMessage). */
export function describeAdapter(adapter: GPUAdapter): AdapterDescription {
  const compat = adapter as GPUAdapter & AdapterCompat;
  const info = compat.info;
  const features = [...adapter.features].map(String).sort();
  const limits = {} as AdapterLimits;
  for (const name of LIMIT_NAMES) limits[name] = readLimit(adapter.limits, name);
  return {
    vendor: info?.vendor ?? "",
    architecture: info?.architecture ?? "",
    device: info?.device ?? "",
    description: info?.description ?? "",
    isFallback: Boolean(info?.isFallbackAdapter ?? compat.isFallbackAdapter ?? false),
    features,
    shaderF16: adapter.features.has("shader-f16"),
    subgroups: adapter.features.has("subgroups"),
    subgroupMinSize: typeof info?.subgroupMinSize === "number" ? info.subgroupMinSize : null,
    subgroupMaxSize: typeof info?.subgroupMaxSize === "number" ? info.subgroupMaxSize : null,
    limits,
  };
}

/** The adapter fields {@link softwareAdapterName} reads (an {@link AdapterDescription}, or a plain GPUAdapterInfo-like object). */
export interface AdapterIdentity {
  vendor?: string | undefined;
  architecture?: string | undefined;
  device?: string | undefined;
  description?: string | undefined;
  isFallback?: boolean | undefined;
  /** GPUAdapterInfo's own spelling. */
  isFallbackAdapter?: boolean | undefined;
  /** GPUAdapterInfo's subgroup size range (the "subgroups" feature), which picks a `webgpu-fused-sg<N>` build. */
  subgroupMinSize?: number | null | undefined;
  subgroupMaxSize?: number | null | undefined;
}

// Software rasterizers that implement WebGPU on the CPU, by what they write into the adapter info:
// Chromium's SwiftShader (vendor "google", architecture "swiftshader"), Mesa's llvmpipe/lavapipe and
// softpipe (Dawn on Vulkan: description "llvmpipe (LLVM ...)"), and Windows' WARP ("Microsoft Basic Render Driver").
const SOFTWARE_RASTERIZERS: readonly [RegExp, string][] = [
  [/swiftshader/i, "SwiftShader"],
  [/lavapipe/i, "lavapipe"],
  [/llvmpipe/i, "llvmpipe"],
  [/softpipe/i, "softpipe"],
  [/microsoft basic render|\bwarp\b/i, "WARP"],
];

/**
 * The name of the software rasterizer behind an adapter ("SwiftShader", "llvmpipe", "lavapipe", ...,
 * or "fallback adapter" when the adapter says `isFallbackAdapter` and names nothing), or null for a GPU.
 * A model on such an adapter runs its shaders on the CPU, emulated: its wasm-cpu build is much faster
 * (measured with SmolLM2-135M in Chromium: first token after 16 min on SwiftShader, seconds on wasm-cpu).
 */
export function softwareAdapterName(info: AdapterIdentity | null | undefined): string | null {
  if (info === null || info === undefined) return null;
  const text = [info.vendor, info.architecture, info.device, info.description].filter((s) => typeof s === "string").join(" ");
  for (const [re, name] of SOFTWARE_RASTERIZERS) if (re.test(text)) return name;
  return info.isFallback === true || info.isFallbackAdapter === true ? "fallback adapter" : null;
}

export interface RequestGPUOptions {
  /** The `GPU` object to use. Defaults to `navigator.gpu`. */
  gpu?: GPU | undefined;
  powerPreference?: GPUPowerPreference | undefined;
  /** Request `shader-f16` when the adapter has it (default true). */
  shaderF16?: boolean | undefined;
  /** Fail with WebGPUCapabilityError unless the adapter has `shader-f16` (default false). */
  requireShaderF16?: boolean | undefined;
  /** Request `subgroups` when the adapter has it (default true). */
  subgroups?: boolean | undefined;
  /** Minimum limits the workload needs; checked against the adapter before requesting a device. */
  minLimits?: Partial<AdapterLimits> | undefined;
  /** Request `timestamp-query` (for the `kernelTiming` diagnostics); fails when the adapter lacks it. */
  timestampQuery?: boolean | undefined;
  label?: string | undefined;
}

export interface GPUHandle {
  adapter: GPUAdapter;
  device: GPUDevice;
  /** Description of the adapter the device was created from. */
  info: AdapterDescription;
  /** Features actually enabled on the device (sorted). */
  deviceFeatures: string[];
}

const NO_API_MESSAGE =
  "WebGPU is not available in this browser: navigator.gpu is undefined. " +
  "Use a browser with WebGPU enabled (Chrome/Edge 113+ on Windows/macOS/ChromeOS/Android; on Linux launch " +
  "Chrome/Chromium with --enable-unsafe-webgpu or enable chrome://flags/#enable-unsafe-webgpu; Safari 26+; " +
  "Firefox 141+ on Windows), make sure the page is served from a secure context (https:// or http://localhost), " +
  "or use a wasm-cpu build of the model. In Node, install the `webgpu` package (Dawn) and expose " +
  "create([]) as navigator.gpu, or pass { gpu } explicitly.";

const NO_ADAPTER_MESSAGE =
  "WebGPU is exposed but no GPU adapter was found: navigator.gpu.requestAdapter() returned null. " +
  "The GPU or its driver may be blocklisted or disabled (check chrome://gpu, update the graphics driver, " +
  "enable hardware acceleration); headless Chromium needs --enable-unsafe-webgpu; Node/Dawn needs a Vulkan " +
  "driver it accepts (on CPU-only Linux: mesa-vulkan-drivers >= 25 lavapipe, selected with VK_ICD_FILENAMES). " +
  "Otherwise use a wasm-cpu build of the model.";

function defaultGPU(): GPU | undefined {
  const nav: unknown = (globalThis as { navigator?: unknown }).navigator;
  if (typeof nav !== "object" || nav === null) return undefined;
  const gpu: unknown = (nav as { gpu?: unknown }).gpu;
  return typeof gpu === "object" && gpu !== null ? (gpu as GPU) : undefined;
}

function secureContextHint(): string {
  const secure: unknown = (globalThis as { isSecureContext?: unknown }).isSecureContext;
  return secure === false ? " This page is not a secure context (WebGPU requires https:// or localhost)." : "";
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/**
 * Find WebGPU, request an adapter and a device sized for model inference.
 *
 * The device gets `shader-f16` (and `subgroups`) when the adapter has them and the adapter's maximum
 * for the buffer/binding-size and compute limits in {@link MAXED_LIMITS}.
 *
 * @throws WebGPUUnavailableError when there is no WebGPU, no adapter, or requestDevice fails.
 * @throws WebGPUCapabilityError when `requireShaderF16` / `minLimits` are not met by the adapter.
 */
export async function requestGPU(opts: RequestGPUOptions = {}): Promise<GPUHandle> {
  const gpu = opts.gpu ?? defaultGPU();
  if (gpu === undefined) {
    throw new WebGPUUnavailableError("no-navigator-gpu", NO_API_MESSAGE + secureContextHint());
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter(opts.powerPreference === undefined ? undefined : { powerPreference: opts.powerPreference });
  } catch (err) {
    throw new WebGPUUnavailableError("no-adapter", `${NO_ADAPTER_MESSAGE} (requestAdapter threw ${errorMessage(err)})`, {
      cause: err,
    });
  }
  if (adapter === null) {
    throw new WebGPUUnavailableError("no-adapter", NO_ADAPTER_MESSAGE + secureContextHint());
  }
  const info = describeAdapter(adapter);

  const missing: string[] = [];
  if (opts.requireShaderF16 === true && !info.shaderF16) missing.push("shader-f16");
  if (opts.timestampQuery === true && !adapter.features.has("timestamp-query")) missing.push("timestamp-query (for kernelTiming)");
  for (const [name, need] of Object.entries(opts.minLimits ?? {}) as [AdapterLimitName, number | undefined][]) {
    if (need === undefined) continue;
    const have = info.limits[name];
    // "min*" limits are alignments: smaller is better.
    const ok = name.startsWith("min") ? have <= need : have >= need;
    if (!ok) missing.push(`${name}: need ${need}, have ${have}`);
  }
  if (missing.length > 0) {
    throw new WebGPUCapabilityError(
      `The GPU adapter "${info.description || info.vendor || "unknown"}" cannot run this model: ` +
        `${missing.join("; ")}. Use a model variant built for smaller limits / without f16 (e.g. a q4f32 or f32 build).`,
      info,
      missing,
    );
  }

  const requiredFeatures: GPUFeatureName[] = [];
  if (opts.shaderF16 !== false && adapter.features.has("shader-f16")) requiredFeatures.push("shader-f16");
  if (opts.subgroups !== false && adapter.features.has("subgroups")) requiredFeatures.push("subgroups" as GPUFeatureName);
  if (opts.timestampQuery === true) requiredFeatures.push("timestamp-query");
  const requiredLimits: Record<string, number> = {};
  for (const name of MAXED_LIMITS) {
    const value = readLimit(adapter.limits, name);
    if (value > 0) requiredLimits[name] = value;
  }

  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      requiredFeatures,
      requiredLimits,
      ...(opts.label === undefined ? {} : { label: opts.label }),
    });
  } catch (err) {
    throw new WebGPUUnavailableError(
      "request-device-failed",
      `WebGPU adapter "${info.description || info.vendor}" refused to create a device ` +
        `(features ${JSON.stringify(requiredFeatures)}, limits ${JSON.stringify(requiredLimits)}): ${errorMessage(err)}`,
      { cause: err },
    );
  }
  return { adapter, device, info, deviceFeatures: [...device.features].map(String).sort() };
}
