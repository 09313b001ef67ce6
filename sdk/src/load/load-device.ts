/**
 * Where a model load runs, shared by DecoderModel.load and EncoderModel.load: the caller's GPUDevice,
 * a new WebGPU device, or the package's wasm-cpu build on the CPU when no target was asked for and
 * either WebGPU is unavailable or the adapter is a software rasterizer (device-fit.ts chooseBackend).
 * `target: "webgpu"` forces WebGPU, software adapter or not; `target: "wasm-cpu"` forces the CPU build.
 * On WebGPU the adapter found here also picks the package's fused or plain WebGPU library (package.ts
 * `webgpuBuild`, device-fit.ts chooseWebGPUBuild).
 */
import { PackageCompatibilityError } from "./package.js";
import { chooseBackend } from "./device-fit.js";
import { requestGPU, WebGPUUnavailableError, type AdapterDescription, type GPUHandle } from "../runtime/gpu.js";

export interface LoadDevice {
  /** undefined: the wasm-cpu build runs on tvmjs's CPU device. */
  device: GPUDevice | undefined;
  adapter: AdapterDescription | null;
  /** The package target to load: "webgpu" (fused or plain: package.ts webgpuBuild), "webgpu-fused", "wasm-cpu" or "wasm-cpu-mt". */
  target: string;
  /** We created the device (release it if the load fails); a caller's device stays theirs. */
  owned: boolean;
  /** Why WebGPU was skipped, when the CPU fallback was taken because WebGPU is unavailable. */
  noWebGPU: WebGPUUnavailableError | undefined;
  /** The CPU was chosen here, not asked for: the package's threaded build may be taken (preferThreads). */
  cpuByChoice?: boolean | undefined;
  /**
   * The CPU build was taken over a software adapter: its WebGPU device and description, used when the
   * package turns out to have no wasm-cpu build, else destroyed once the CPU load succeeded.
   */
  softwareFallback?: { device: GPUDevice; adapter: AdapterDescription; name: string } | undefined;
}

/** Why WebGPU is not used on this load (for loadInfo.webgpuUnavailable), or null. */
export function webgpuSkippedReason(used: LoadDevice): string | null {
  if (used.noWebGPU !== undefined) return used.noWebGPU.message;
  if (used.softwareFallback !== undefined) {
    return `software WebGPU adapter (${used.softwareFallback.name}): using the package's wasm-cpu build; pass target: "webgpu" to run on the adapter anyway`;
  }
  return null;
}

export async function chooseLoadDevice(
  opts: { device?: GPUDevice | undefined; gpu?: GPU | undefined; target?: string | undefined; kernelTiming?: boolean | undefined },
  label: string,
): Promise<LoadDevice> {
  if (opts.device !== undefined || opts.target === "wasm-cpu" || opts.target === "wasm-cpu-mt") {
    return { device: opts.device, adapter: null, target: opts.target ?? "webgpu", owned: false, noWebGPU: undefined };
  }
  let handle: GPUHandle;
  try {
    handle = await requestGPU({ gpu: opts.gpu, label, timestampQuery: opts.kernelTiming });
  } catch (err) {
    if (!(err instanceof WebGPUUnavailableError) || opts.target !== undefined) throw err;
    return { device: undefined, adapter: null, target: "wasm-cpu", owned: false, noWebGPU: err, cpuByChoice: true };
  }
  const webgpu: LoadDevice = { device: handle.device, adapter: handle.info, target: opts.target ?? "webgpu", owned: true, noWebGPU: undefined };
  if (opts.target !== undefined) return webgpu;
  const choice = chooseBackend(handle.info);
  if (choice.target === "webgpu" || choice.software === null) return webgpu;
  return {
    device: undefined,
    adapter: null,
    target: "wasm-cpu",
    owned: false,
    noWebGPU: undefined,
    cpuByChoice: true,
    softwareFallback: { device: handle.device, adapter: handle.info, name: choice.software },
  };
}

/**
 * Run the package load on the chosen device; returns its result and the device it ran on. On failure, a
 * device we created is destroyed, and a CPU fallback that found no wasm-cpu build either runs on the
 * software adapter it skipped or becomes the WebGPUUnavailableError that caused it.
 */
export async function loadOn<T>(chosen: LoadDevice, load: (on: LoadDevice) => Promise<T>): Promise<{ value: T; used: LoadDevice }> {
  let value: T;
  try {
    value = await load(chosen);
  } catch (err) {
    if (chosen.owned) chosen.device?.destroy();
    const noCpuBuild = err instanceof PackageCompatibilityError && err.missing.includes("target:wasm-cpu");
    const soft = chosen.softwareFallback;
    if (soft !== undefined) {
      if (noCpuBuild) {
        return loadOn({ device: soft.device, adapter: soft.adapter, target: "webgpu", owned: true, noWebGPU: undefined }, load);
      }
      soft.device.destroy();
    }
    const noWebGPU = chosen.noWebGPU;
    if (noWebGPU !== undefined && noCpuBuild) {
      throw new WebGPUUnavailableError(noWebGPU.reason, `${noWebGPU.message} The package has no wasm-cpu build to fall back to (${(err as Error).message}).`, {
        cause: err,
      });
    }
    throw err;
  }
  // The CPU build loaded: the software adapter's device is not needed.
  chosen.softwareFallback?.device.destroy();
  return { value, used: chosen };
}
