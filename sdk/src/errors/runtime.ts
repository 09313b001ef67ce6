/** Errors of the WebGPU runtime (no WebGPU, a too-weak adapter, device loss), with the adapter description they carry. */

/** Limits the engine cares about, copied out of `GPUSupportedLimits` (plain numbers, JSON-safe). */
export interface AdapterLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupSizeY: number;
  maxComputeWorkgroupSizeZ: number;
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBuffersPerShaderStage: number;
  maxUniformBufferBindingSize: number;
  maxUniformBuffersPerShaderStage: number;
  maxBindGroups: number;
  maxBindingsPerBindGroup: number;
  minStorageBufferOffsetAlignment: number;
  minUniformBufferOffsetAlignment: number;
}

export type AdapterLimitName = keyof AdapterLimits;

/** A plain, structured-clone/JSON-safe description of a GPU adapter. */
export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for software / fallback adapters (lavapipe, SwiftShader report this on some stacks). */
  isFallback: boolean;
  /** Sorted feature names. */
  features: string[];
  shaderF16: boolean;
  subgroups: boolean;
  /** Subgroup size range when the adapter reports it (newer implementations), else null. */
  subgroupMinSize: number | null;
  subgroupMaxSize: number | null;
  limits: AdapterLimits;
}

export type WebGPUUnavailableReason = "no-navigator-gpu" | "no-adapter" | "request-device-failed";

/** WebGPU cannot be used at all here: no API, no adapter, or the device request failed. */
export class WebGPUUnavailableError extends Error {
  override readonly name = "WebGPUUnavailableError";
  readonly reason: WebGPUUnavailableReason;
  constructor(reason: WebGPUUnavailableReason, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
  }
}

/** The adapter exists but cannot run this workload (missing feature or too-small limit). */
export class WebGPUCapabilityError extends Error {
  override readonly name = "WebGPUCapabilityError";
  readonly adapter: AdapterDescription;
  /** Missing feature names and unmet limits, e.g. ["shader-f16", "maxBufferSize: need 2147483648, have 268435456"]. */
  readonly missing: string[];
  constructor(message: string, adapter: AdapterDescription, missing: string[]) {
    super(message);
    this.adapter = adapter;
    this.missing = missing;
  }
}

/** The WebGPU device was lost (driver reset, GPU process crash, `device.destroy()` by someone else). */
export class DeviceLostError extends Error {
  override readonly name = "DeviceLostError";
  /** GPUDeviceLostInfo.reason: "destroyed" or "unknown". */
  readonly reason: string;
  constructor(reason: string, detail: string) {
    super(
      `The WebGPU device was lost (${reason}${detail ? `: ${detail}` : ""}). The model's GPU state is gone; ` +
        "reload it (DecoderModel.reload()) to continue.",
    );
    this.reason = reason;
  }
}
