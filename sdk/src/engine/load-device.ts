/**
 * Where a model load runs, shared by DecoderModel.load and EncoderModel.load: the caller's GPUDevice,
 * a new WebGPU device, or, when WebGPU is unavailable and no target was asked for, the package's
 * wasm-cpu build on the CPU.
 */
import { PackageCompatibilityError } from "../load/package.js";
import { requestGPU, WebGPUUnavailableError, type AdapterDescription } from "./gpu.js";

export interface LoadDevice {
  /** undefined: the wasm-cpu build runs on tvmjs's CPU device. */
  device: GPUDevice | undefined;
  adapter: AdapterDescription | null;
  /** The package target to load: "webgpu" or "wasm-cpu". */
  target: string;
  /** We created the device (release it if the load fails); a caller's device stays theirs. */
  owned: boolean;
  /** Why WebGPU was skipped, when the CPU fallback was taken. */
  noWebGPU: WebGPUUnavailableError | undefined;
}

export async function chooseLoadDevice(
  opts: { device?: GPUDevice | undefined; gpu?: GPU | undefined; target?: string | undefined },
  label: string,
): Promise<LoadDevice> {
  if (opts.device !== undefined || opts.target === "wasm-cpu") {
    return { device: opts.device, adapter: null, target: opts.target ?? "webgpu", owned: false, noWebGPU: undefined };
  }
  try {
    const handle = await requestGPU({ gpu: opts.gpu, label });
    return { device: handle.device, adapter: handle.info, target: opts.target ?? "webgpu", owned: true, noWebGPU: undefined };
  } catch (err) {
    if (!(err instanceof WebGPUUnavailableError) || opts.target !== undefined) throw err;
    return { device: undefined, adapter: null, target: "wasm-cpu", owned: false, noWebGPU: err };
  }
}

/**
 * Run the package load on the chosen device. On failure, a device we created is destroyed, and a CPU
 * fallback that found no wasm-cpu build becomes the WebGPUUnavailableError that caused it.
 */
export async function loadOn<T>(chosen: LoadDevice, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if (chosen.owned) chosen.device?.destroy();
    const noWebGPU = chosen.noWebGPU;
    if (noWebGPU !== undefined && err instanceof PackageCompatibilityError && err.missing.includes("target:wasm-cpu")) {
      throw new WebGPUUnavailableError(noWebGPU.reason, `${noWebGPU.message} The package has no wasm-cpu build to fall back to (${err.message}).`, {
        cause: err,
      });
    }
    throw err;
  }
}
