/**
 * Instantiate a package's model library with tvmjs on WebGPU or, for a `wasm-cpu` build, on the CPU
 * (tvmjs's `tvm.cpu()` device: no initWebGPU, everything runs in the wasm module), and report shader
 * compilation progress. loadTVMLibrary is the WebGPU-only form of the same call. A threaded wasm-cpu
 * library (`wasm-cpu-mt`) is instantiated on a shared memory, with `threads` Workers (wasm-threads.ts).
 */
import { loadTvmjs, type Logger, type TVMLibrary } from "./tvm.js";
import { installFastDispatch, type DispatchMode, type FastDispatchStats, type PipelineMode } from "./webgpu-dispatch.js";
import type { TvmDevice, TvmInitProgressReport, TvmjsModule, TvmVirtualMachine, TvmWasiProvider } from "./tvmjs-types.js";
import { createSharedMemory, importedMemoryLimits, startWasmThreads, type WasmThreadPool } from "./wasm-threads.js";

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
  /** The worker threads of a threaded wasm-cpu library; undefined when every kernel runs on this thread. */
  wasmThreads: WasmThreadPool | undefined;
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
  /** Launches per submit (dispatch "hearth"; see FastDispatchOptions.submitEvery). */
  submitEvery?: number | undefined;
  /** Split decode steps encoded ahead into parts (dispatch "hearth"; see FastDispatchOptions.splitDeferred). */
  splitDeferred?: boolean | undefined;
  /** Shader compilation progress (WebGPU only): fraction done and, when known, pipelines done/total. */
  onShaderProgress?: ((progress: number, done: number | null, total: number | null) => void) | undefined;
  /**
   * Worker threads besides this one for a threaded wasm-cpu library (`wasm-cpu-mt`); 0 or undefined:
   * one thread. Asking threads of a single-thread library is an error.
   */
  threads?: number | undefined;
}

/**
 * tvmjs's WASI provider with `env.memory` added, and the emscripten glue shown an instance that
 * "exports" it: the glue takes its heap views from `instance.exports.memory`, and a threaded module
 * imports its memory instead (tvmjs itself finds an imported one).
 */
function withImportedMemory(wasi: TvmWasiProvider, memory: WebAssembly.Memory, seen: (inst: WebAssembly.Instance) => void): TvmWasiProvider {
  const env = { ...((wasi.imports.env as Record<string, unknown> | undefined) ?? {}), memory };
  return {
    imports: { ...wasi.imports, env },
    start: (inst) => {
      seen(inst);
      wasi.start({ exports: { ...inst.exports, memory } } as WebAssembly.Instance);
    },
  };
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
  const bytes = opts.wasm instanceof Uint8Array ? opts.wasm : new Uint8Array(opts.wasm);
  // Only a CPU library can be threaded; a WebGPU one goes to tvmjs unread (it reports bad bytes itself).
  const limits = opts.device === undefined ? importedMemoryLimits(bytes) : undefined;
  const threads = opts.threads ?? 0;
  if (threads > 0 && limits?.shared !== true) {
    throw new Error(`threads: ${threads} needs the package's threaded wasm-cpu build (target "wasm-cpu-mt"); this library is single-thread`);
  }
  let wasi = tvmjs.createPolyfillWASI();
  let memory: WebAssembly.Memory | undefined;
  let mainInstance: WebAssembly.Instance | undefined;
  if (limits?.shared === true) {
    memory = createSharedMemory(limits);
    wasi = withImportedMemory(wasi, memory, (inst) => {
      mainInstance = inst;
    });
  }
  const tvm = await tvmjs.instantiate(opts.wasm as ArrayBuffer, wasi, logger);
  let wasmThreads: WasmThreadPool | undefined;
  if (threads > 0 && memory !== undefined && mainInstance !== undefined) {
    try {
      wasmThreads = await startWasmThreads(await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>), memory, mainInstance.exports, threads);
    } catch (err) {
      tvm.dispose();
      throw err;
    }
  }
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
        const dispatch = opts.dispatch ?? "hearth";
        if (dispatch !== "tvmjs") {
          const directArgs = dispatch === "hearth";
          dispatchStats = installFastDispatch(tvm, {
            pipelines: opts.pipelines,
            kernelTiming: opts.kernelTiming,
            submitEvery: opts.submitEvery,
            splitDeferred: opts.splitDeferred,
            directArgs,
          });
        }
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
      wasmThreads,
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
          wasmThreads?.dispose();
          tvm.dispose();
        }
      },
    };
  } catch (err) {
    try {
      vm?.dispose();
      wasmThreads?.dispose();
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
