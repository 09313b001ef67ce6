/**
 * Instantiate a package's model library with tvmjs on WebGPU or, for a `wasm-cpu` build, on the CPU
 * (tvmjs's `tvm.cpu()` device: no initWebGPU, everything runs in the wasm module), and report shader
 * compilation progress. loadTVMLibrary is the WebGPU-only form of the same call.
 */
import { loadTvmjs, type Logger, type TVMLibrary } from "./tvm.js";
import { installFastDispatch, type DispatchMode, type FastDispatchStats, type PipelineMode } from "./webgpu-dispatch.js";
import type { TvmDevice, TvmInitProgressReport, TvmjsModule, TvmVirtualMachine } from "./tvmjs-types.js";

export type RuntimeDeviceKind = "webgpu" | "cpu";

export interface RuntimeLibrary extends TVMLibrary {
  deviceKind: RuntimeDeviceKind;
  /** The tvmjs device the VM, weights and KV cache live on (tvm.webgpu() or tvm.cpu()). */
  device(): TvmDevice;
  /**
   * Route tvmjs's init-progress reports (shader compilation, tensor-cache loading) to `cb`; the
   * loader switches the handler between phases. undefined: drop them.
   */
  setProgressHandler(cb: ((report: TvmInitProgressReport) => void) | undefined): void;
  /** Counters of the fast kernel-launch path; undefined on the CPU or with dispatch "tvmjs". */
  dispatchStats: FastDispatchStats | undefined;
}

export interface InstantiateOptions {
  wasm: ArrayBuffer | Uint8Array;
  /** The WebGPU device; omit for a wasm-cpu library. */
  device?: GPUDevice | undefined;
  logger?: Logger | undefined;
  tvmjs?: TvmjsModule | undefined;
  /** Kernel-launch encoding on WebGPU (default "hearth"; see webgpu-dispatch.ts). */
  dispatch?: DispatchMode | undefined;
  /** When kernels' pipelines compile (default "eager"; "lazy" needs dispatch "hearth"). */
  pipelines?: PipelineMode | undefined;
  /** Per-kernel GPU time from timestamp queries (dispatch "hearth" only; slows launches: diagnostics). */
  kernelTiming?: boolean | undefined;
  /** Shader compilation progress (WebGPU only): fraction done and, when known, pipelines done/total. */
  onShaderProgress?: ((progress: number, done: number | null, total: number | null) => void) | undefined;
}

/** "[12/40]" in tvmjs's report text. */
function countsOf(text: string): { done: number; total: number } | undefined {
  const m = /\[(\d+)\/(\d+)\]/.exec(text);
  return m === null ? undefined : { done: Number(m[1]), total: Number(m[2]) };
}

export async function instantiateRuntime(opts: InstantiateOptions): Promise<RuntimeLibrary> {
  const tvmjs = opts.tvmjs ?? (await loadTvmjs());
  const logger: Logger = opts.logger ?? ((msg) => console.log(msg));
  const t0 = performance.now();
  const tvm = await tvmjs.instantiate(opts.wasm as ArrayBuffer, tvmjs.createPolyfillWASI(), logger);
  const t1 = performance.now();
  let handler: ((r: TvmInitProgressReport) => void) | undefined;
  let vm: TvmVirtualMachine | undefined;
  let dispatchStats: FastDispatchStats | undefined;
  try {
    tvm.registerInitProgressCallback((r) => handler?.(r));
    const deviceKind: RuntimeDeviceKind = opts.device === undefined ? "cpu" : "webgpu";
    const device = (): TvmDevice => (deviceKind === "cpu" ? tvm.cpu() : tvm.webgpu());
    let t2 = t1;
    tvm.beginScope();
    try {
      if (opts.device !== undefined) {
        tvm.initWebGPU(opts.device);
        // Before the pipelines are created: the fast path wraps each kernel as tvmjs creates it.
        if ((opts.dispatch ?? "hearth") === "hearth") dispatchStats = installFastDispatch(tvm, { pipelines: opts.pipelines, kernelTiming: opts.kernelTiming });
        const onShader = opts.onShaderProgress;
        onShader?.(0, null, null);
        handler = (r) => {
          const c = countsOf(r.text);
          onShader?.(r.progress, c?.done ?? null, c?.total ?? null);
        };
        // Every TVM object tvmjs returns is attached to the current scope, so one stays open across
        // the await: nothing else uses this instance meanwhile.
        await tvm.asyncLoadWebGPUPipelines(tvm.systemLib());
        handler = undefined;
        t2 = performance.now();
      }
      vm = tvm.detachFromCurrentScope(tvm.createVirtualMachine(device()));
    } finally {
      tvm.endScope();
    }
    const t3 = performance.now();
    const ownedVm = vm;
    let disposed = false;
    return {
      tvm,
      vm: ownedVm,
      deviceKind,
      device,
      timings: { instantiateMs: t1 - t0, pipelinesMs: t2 - t1, vmMs: t3 - t2 },
      dispatchStats,
      setProgressHandler(cb) {
        handler = cb;
      },
      dispose() {
        if (disposed) return;
        disposed = true;
        handler = undefined;
        try {
          ownedVm.dispose();
        } finally {
          tvm.dispose();
        }
      },
    };
  } catch (err) {
    try {
      vm?.dispose();
      tvm.dispose();
    } catch {
      // keep the original error
    }
    throw err;
  }
}

export interface LoadTVMLibraryOptions {
  /** The model library: a wasm linked against the TVM web runtime (system-lib, WebGPU target). */
  wasm: ArrayBuffer | Uint8Array;
  device: GPUDevice;
  /** Runtime log sink (default: console.log). */
  logger?: Logger | undefined;
  /** Use this tvmjs module instead of loading `@mlc-ai/web-runtime`. */
  tvmjs?: TvmjsModule | undefined;
}

/**
 * Instantiate a TVM wasm library on a WebGPU device:
 * `instantiate(bytes, createPolyfillWASI(), logger)`, `initWebGPU(device)`,
 * `await asyncLoadWebGPUPipelines(systemLib())`, `createVirtualMachine(webgpu())`.
 * One implementation: this is instantiateRuntime (which the package loaders use,
 * with progress and the wasm-cpu case) on a WebGPU device.
 */
export async function loadTVMLibrary(opts: LoadTVMLibraryOptions): Promise<TVMLibrary> {
  return instantiateRuntime({ wasm: opts.wasm, device: opts.device, logger: opts.logger, tvmjs: opts.tvmjs });
}
