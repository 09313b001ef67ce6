/**
 * A faster kernel-launch path for tvmjs's WebGPU runtime.
 *
 * Why: on a real GPU the decode step of a 0.5B model is bound by host-side launch cost, not by the
 * GPU (docs/benchmarks.md, H200: 8.4 of 14.7 ms per token before the submit). tvmjs 0.27 encodes
 * every kernel launch as a new compute pass + a `queue.writeBuffer` of the scalar arguments into a
 * pooled uniform buffer + a new bind group: ~6 calls into the WebGPU implementation, two of them
 * allocating descriptor objects, per dispatch, and a decode step has hundreds of dispatches.
 *
 * What changes (installed on one tvmjs WebGPU context, before the library's shaders are created):
 *   - One compute pass stays open across consecutive dispatches; it is ended only where the command
 *     encoder must carry something else (a buffer copy) or is submitted. WebGPU orders storage-buffer
 *     accesses between the dispatches of one pass, so kernels still see their predecessors' writes.
 *   - Bind groups are cached per kernel by (buffer handles, scalar arguments), each entry with its own
 *     uniform buffer written once at creation. A decode step launches the same kernels on the same
 *     buffers with the same scalars every token (the VM's pooled allocator hands the same buffers
 *     back), so after the first token a launch is setPipeline + setBindGroup + dispatchWorkgroups.
 *     Entries that reference a buffer are dropped when tvmjs frees it (its handle can be reused).
 *   - A kernel whose scalars keep changing (a new cache entry on most launches) falls back to the
 *     uncached encoding for its remaining launches, so the cache cannot grow without bound.
 *   - The wasm -> JS call of a launch reads its arguments straight from wasm memory. tvmjs's generic
 *     callback opens and closes a disposal scope, decodes every argument through a type switch into a
 *     fresh array and spreads it into the kernel function; a launch only ever passes integers, floats
 *     and buffer pointers, which are read here into one reused array (anything else takes tvmjs's path).
 *     With the cache lookup keyed by a number instead of a string, a cached launch allocates nothing.
 * Everything else (buffer table, copies, readback, sync) stays tvmjs's own.
 */

import { KernelTimer, type KernelTimingStats } from "./kernel-timer.js";

/**
 * When each kernel's compute pipeline is compiled: "eager" (default) while the package loads, as tvmjs
 * does; "lazy" at the kernel's first launch. Lazy suits libraries whose kernels are mostly never run in a
 * session, like an encoder's static-shape buckets (12 shapes, of which a RAG session uses two or three):
 * pipeline creation dominates their load time (Chromium on SwiftShader: minutes).
 */
export type PipelineMode = "eager" | "lazy";

export interface FastDispatchOptions {
  pipelines?: PipelineMode | undefined;
  /** Time every launch on the GPU with timestamp queries (kernel-timer.ts; the device needs timestamp-query). */
  kernelTiming?: boolean | undefined;
  /**
   * Submit the pending commands after this many launches (0: only where tvmjs flushes, i.e. at a readback,
   * a copy from the host or a free). Why: a decode step is otherwise encoded whole and submitted at its
   * logits readback, so the GPU idles while the host encodes hundreds of launches and the host idles while
   * the GPU runs them; submitting every few dozen launches lets the two overlap.
   */
  submitEvery?: number | undefined;
  /**
   * Split a step encoded ahead into command buffers of `submitEvery` launches (TvmjsGpuAccess.deferFlushes
   * `split`; default true; false: one command buffer, for the A/B).
   */
  splitDeferred?: boolean | undefined;
  /** Read launch arguments straight from wasm memory (default true; false: tvmjs's generic decoding). */
  directArgs?: boolean | undefined;
}

/**
 * Launches per submit when the caller does not say (FastDispatchOptions.submitEvery); 0: at readbacks only.
 * 16: on an H100 (Node + Dawn, Vulkan) SmolLM2-135M decode went 212 -> 287 tok/s (16) / 287 (64) / 313 (32,
 * another run), and with the staged fusion 292 -> 392 (16) / 369 (32) / 386 (64); docs/benchmarks.md.
 */
export const DEFAULT_SUBMIT_EVERY = 16;

/**
 * "hearth": this module's launch path; "hearth-tvmjs-args": the same, but with tvmjs's generic wasm -> JS
 * argument decoding (for A/B benchmarks of the direct reads); "tvmjs": tvmjs's own (A/B and escape hatch).
 */
export type DispatchMode = "hearth" | "hearth-tvmjs-args" | "tvmjs";

/** The launch metadata tvmjs's codegen attaches to each WGSL kernel. */
interface ShaderInfo {
  name: string;
  arg_types: string[];
  launch_param_tags: string[];
}

/** The parts of tvmjs's (untyped, internal) WebGPUContext this module reads and overrides. */
interface TvmjsWebGPUContext {
  device: GPUDevice;
  pendingEncoder: GPUCommandEncoder | null;
  shaderSubmitCounter: number;
  gpuBufferFromPtr(ptr: number): GPUBuffer;
  getUniformFromPool(nbytes: number): GPUBuffer;
  createShadeInternal(finfo: ShaderInfo, code: string, asyncMode: boolean): unknown;
  flushCommands(): void;
  deviceCopyWithinGPU(from: number, fromOffset: number, to: number, toOffset: number, nbytes: number): void;
  deviceFreeDataSpace(ptr: number): void;
  dispose(): void;
  /** Set by installFastDispatch (idempotence guard and counters). */
  hearthFastDispatch?: FastDispatchStats;
  /** Set by installFastDispatch: TvmjsGpuAccess.deferFlushes. */
  hearthDeferFlushes?: (defer: boolean, split?: boolean) => boolean;
}

export interface FastDispatchStats {
  /** Launches served from the bind-group cache. */
  hits: number;
  /** Launches that created a cache entry. */
  misses: number;
  /** Launches encoded the uncached way (kernels whose scalar arguments keep changing). */
  uncached: number;
  /** Launch arguments are read straight from wasm memory (FastDispatchOptions.directArgs). */
  directArgs: boolean;
  /** Command buffers submitted (tvmjs's flushes plus those of `submitEvery`). */
  submits: number;
  /** Compute pipelines compiled so far (with pipelines "lazy": only the kernels launched). */
  pipelinesCompiled: number;
  /** Time spent compiling pipelines at first launch (pipelines "lazy"; eager ones count in the load). */
  pipelineMs: number;
  /**
   * Launches per kernel name since install (all three paths). What the compiler's fusion work is measured
   * by: the difference across one decode step is that step's kernel list (sdk/scripts/kernel-launches.mjs).
   */
  launchesByKernel: Record<string, number>;
  /** Per-kernel GPU time, when loaded with `kernelTiming` (kernel-timer.ts). */
  gpuTime?: KernelTimingStats;
}

/**
 * A kernel is launched uncached once one set of buffers has come with this many different sets of scalar
 * arguments (e.g. a prefill kernel given each prompt's length). A few are normal: the KV-append kernel
 * runs on the same buffers with prefill's and decode's token counts.
 */
const VOLATILE_AFTER_SCALAR_SETS = 8;

interface CachedLaunch {
  kernel: KernelLaunches;
  /** hashLaunch() of `values`: the bucket it sits in. */
  hash: number;
  /** The launch's buffer handles, then its scalars, then the packed grid's x size (packGrid). */
  values: Float64Array;
  bindGroup: GPUBindGroup;
  /** Buffer-table handles this bind group references (to drop it when one is freed). */
  ptrs: number[];
}

class KernelLaunches {
  /** hash of (buffers, scalars) -> the cached launches with that hash (almost always one). */
  readonly entries = new Map<number, CachedLaunch[]>();
  /** buffers key -> the scalar sets seen with those buffers (updated on cache misses only). */
  readonly scalarSets = new Map<string, Set<string>>();
  volatile = false;
}

/** The tvmjs Instance parts the direct argument path reads and overrides. */
interface TvmjsInstance {
  memory?: { memory?: WebAssembly.Memory };
  wrapJSFuncAsSafeCallType?: (func: (...args: unknown[]) => unknown) => SafeCall;
}

/** tvmjs's wasm -> JS callback signature: (function id, TVMFFIAny* args, count, TVMFFIAny* result) -> status. */
type SafeCall = (self: number, packedArgs: number, numArgs: number, ret: number) => number;

/** Marks a kernel function made here: its direct-argument launcher (args in one reused array). */
const DIRECT_LAUNCH = Symbol("hearth.directLaunch");
type KernelFunction = ((...args: number[]) => void) & { [DIRECT_LAUNCH]?: (args: number[], n: number) => void };

// tvm-ffi type indices (TVMFFIAny: i32 type index, i32 padding, 8-byte value).
const FFI_INT = 1;
const FFI_FLOAT = 3;
const FFI_OPAQUE_PTR = 4;
const FFI_ANY_BYTES = 16;

/**
 * Route tvmjs's wrapping of the kernel functions made here to a reader of the raw arguments. Launches
 * pass ints (read as their low 32 bits, as tvmjs does), floats and wasm32 pointers; any other type falls
 * back to tvmjs's generic callback. A throwing launch reports through tvmjs's path, so the error reaches
 * the caller of the model function exactly as before.
 */
function installDirectArgs(tvm: unknown): boolean {
  const inst = tvm as TvmjsInstance;
  const memory = inst.memory?.memory;
  const wrap = inst.wrapJSFuncAsSafeCallType;
  if (memory === undefined || typeof wrap !== "function") return false;
  const generic = wrap.bind(inst);
  let buffer = memory.buffer;
  let i32 = new Int32Array(buffer);
  let view = new DataView(buffer);
  inst.wrapJSFuncAsSafeCallType = (func) => {
    const direct = (func as KernelFunction)[DIRECT_LAUNCH];
    if (direct === undefined) return generic(func);
    const slow = generic(func);
    let failure: unknown;
    const reportFailure = generic(() => {
      throw failure;
    });
    const args: number[] = [];
    return (self, packedArgs, numArgs, ret) => {
      if (buffer !== memory.buffer) {
        buffer = memory.buffer; // the wasm memory grew: views over the old buffer are detached
        i32 = new Int32Array(buffer);
        view = new DataView(buffer);
      }
      for (let i = 0; i < numArgs; ++i) {
        const at = packedArgs + i * FFI_ANY_BYTES;
        const type = i32[at >> 2];
        if (type === FFI_INT || type === FFI_OPAQUE_PTR) args[i] = i32[(at + 8) >> 2] as number;
        else if (type === FFI_FLOAT) args[i] = view.getFloat64(at + 8, true);
        else return slow(self, packedArgs, numArgs, ret);
      }
      try {
        direct(args, numArgs);
      } catch (err) {
        failure = err;
        return reportFailure(self, packedArgs, 0, ret);
      }
      return 0;
    };
  };
  return true;
}

/** A cheap hash of a launch's values (collisions only cost a comparison). */
function hashLaunch(values: ArrayLike<number>, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < n; ++i) {
    const v = values[i] as number;
    h = Math.imul(h ^ (v | 0), 0x01000193);
    if (!Number.isInteger(v)) h = Math.imul(h ^ ((v * 4096) | 0), 0x01000193);
  }
  return h;
}

/** What Hearth's own GPU work (gpu-argmax.ts) needs from tvmjs's WebGPU context. */
export interface TvmjsGpuAccess {
  device: GPUDevice;
  /** The GPUBuffer behind a tensor's data pointer. */
  bufferOf(ptr: number): GPUBuffer;
  /** Submit tvmjs's pending commands (so work queued after them sees their results). */
  flush(): void;
  /** Whether deferFlushes works here (Hearth's launch path is installed). */
  readonly canDeferFlushes: boolean;
  /**
   * While deferring, nothing is submitted: not every `submitEvery` launches, and not where tvmjs flushes
   * before a host-to-device copy (the KV cache copies its page tables at a step's first attention call),
   * so the commands encoded meanwhile wait for the caller's flush. For a decode step encoded before the
   * host knows its input token (DecoderFunctions.encodeAhead): the token is written with queue.writeBuffer
   * and then the step is submitted, so its kernels read the token. And for pipelined decode steps, whose
   * GPU work already overlaps the host's encoding of the next step: there submits within the step buy no
   * overlap and cost host time (an H100, Qwen2.5-0.5B shape: 2.65 -> 1.46 ms of host encoding per token
   * going from a submit every 16 launches to one per step; docs/benchmarks.md). A copy that goes ahead of
   * the commands encoded before it is safe there: those commands (the embedding, the first layer's projections) do not
   * read what the KV cache copies. A freed buffer ends the deferral (its commands must be submitted before
   * the buffer is destroyed). `deferFlushes(false)` returns whether the deferral held, i.e. nothing was
   * submitted since `deferFlushes(true)`; without the fast path nothing is deferred and it returns false.
   *
   * `split`: the commands are still cut every `submitEvery` launches, into command buffers held back, each
   * submitted on its own, in order, at the caller's flush. Dawn records a command buffer into Vulkan when it
   * is submitted, not when it is encoded; a decode step submitted whole once its token is known (encodeAhead)
   * puts that recording of every launch ahead of the GPU's first kernel, and in parts the GPU starts after
   * the first part's. Pipelined steps do not split: their submit is already off the critical path.
   */
  deferFlushes(defer: boolean, split?: boolean): boolean;
}

export function gpuAccess(tvm: unknown): TvmjsGpuAccess | undefined {
  const ctx = (tvm as { lib?: { webGPUContext?: TvmjsWebGPUContext } }).lib?.webGPUContext;
  if (ctx === undefined) return undefined;
  return {
    device: ctx.device,
    bufferOf: (ptr) => ctx.gpuBufferFromPtr(ptr),
    flush: () => ctx.flushCommands(),
    canDeferFlushes: ctx.hearthDeferFlushes !== undefined,
    deferFlushes: (defer, split) => ctx.hearthDeferFlushes?.(defer, split) ?? false,
  };
}

/**
 * Install the fast launch path on tvmjs's WebGPU context of `tvm` (call right after initWebGPU, before
 * asyncLoadWebGPUPipelines). Returns the counters, or undefined when `tvm` has no WebGPU context.
 */
export function installFastDispatch(tvm: unknown, opts: FastDispatchOptions = {}): FastDispatchStats | undefined {
  const ctx = (tvm as { lib?: { webGPUContext?: TvmjsWebGPUContext } }).lib?.webGPUContext;
  if (ctx === undefined) return undefined;
  if (ctx.hearthFastDispatch !== undefined) return ctx.hearthFastDispatch;
  for (const m of ["createShadeInternal", "flushCommands", "deviceCopyWithinGPU", "deviceFreeDataSpace", "gpuBufferFromPtr", "getUniformFromPool"] as const) {
    if (typeof ctx[m] !== "function") {
      throw new Error(`tvmjs WebGPUContext has no ${m}(): this tvmjs version is not supported by the fast dispatch path`);
    }
  }
  const stats: FastDispatchStats = {
    hits: 0,
    misses: 0,
    uncached: 0,
    directArgs: false,
    submits: 0,
    pipelinesCompiled: 0,
    pipelineMs: 0,
    launchesByKernel: {},
  };
  const lazy = opts.pipelines === "lazy";
  const submitEvery = opts.submitEvery ?? DEFAULT_SUBMIT_EVERY;
  if (!Number.isInteger(submitEvery) || submitEvery < 0) {
    throw new Error(`submitEvery must be a whole number of launches >= 0 (0: submit only at readbacks), got ${submitEvery}`);
  }
  let sinceSubmit = 0;
  // deferFlushes: "deferring" while on, "broken" once a free ended it early.
  let deferral: "off" | "deferring" | "broken" = "off";
  let splitting = false;
  /** Command buffers cut from a split deferral, submitted in order ahead of the pending encoder. */
  let held: GPUCommandBuffer[] = [];
  ctx.hearthDeferFlushes = (defer, split = false) => {
    const intact = deferral === "deferring";
    deferral = defer ? "deferring" : "off";
    splitting = defer && split && opts.splitDeferred !== false && timer === undefined; // timed launches resolve their queries per encoder
    return intact;
  };
  ctx.hearthFastDispatch = stats;
  const directArgs = opts.directArgs !== false && installDirectArgs(tvm);
  stats.directArgs = directArgs;

  const device = ctx.device;
  const timer = opts.kernelTiming === true ? new KernelTimer(device) : undefined;
  if (timer !== undefined) stats.gpuTime = timer.stats;
  let pass: GPUComputePassEncoder | null = null;
  let passPipeline: GPUComputePipeline | null = null;
  /** buffer handle -> the cache entries that bind it. */
  const users = new Map<number, Set<CachedLaunch>>();
  const drop = (entry: CachedLaunch): void => {
    const bucket = entry.kernel.entries.get(entry.hash);
    if (bucket !== undefined) {
      const at = bucket.indexOf(entry);
      if (at >= 0) bucket.splice(at, 1);
      if (bucket.length === 0) entry.kernel.entries.delete(entry.hash);
    }
    for (const p of entry.ptrs) users.get(p)?.delete(entry);
  };

  const endPass = (): void => {
    if (pass !== null) {
      pass.end();
      pass = null;
      passPipeline = null;
    }
  };

  const cut = (): void => {
    endPass();
    sinceSubmit = 0;
    if (ctx.pendingEncoder === null) return;
    held.push(ctx.pendingEncoder.finish());
    ctx.pendingEncoder = null;
  };
  const flushCommands = ctx.flushCommands.bind(ctx);
  ctx.flushCommands = () => {
    if (deferral === "deferring") return; // the caller flushes (deferFlushes)
    endPass();
    sinceSubmit = 0;
    if (held.length > 0) {
      const parts = held;
      held = [];
      for (const part of parts) device.queue.submit([part]);
      stats.submits += parts.length;
    }
    if (ctx.pendingEncoder !== null) stats.submits++;
    if (timer !== undefined && ctx.pendingEncoder !== null) timer.beforeSubmit(ctx.pendingEncoder);
    flushCommands();
    timer?.afterSubmit();
  };
  const copyWithin = ctx.deviceCopyWithinGPU.bind(ctx);
  ctx.deviceCopyWithinGPU = (from, fromOffset, to, toOffset, nbytes) => {
    endPass();
    copyWithin(from, fromOffset, to, toOffset, nbytes);
  };
  const free = ctx.deviceFreeDataSpace.bind(ctx);
  ctx.deviceFreeDataSpace = (ptr) => {
    const refs = users.get(ptr);
    if (refs !== undefined) {
      for (const entry of [...refs]) drop(entry);
      users.delete(ptr);
    }
    if (deferral === "deferring") deferral = "broken"; // the pending commands may use the buffer: submit them
    free(ptr); // flushes (ends the pass) before destroying the buffer
  };
  const dispose = ctx.dispose.bind(ctx);
  ctx.dispose = () => {
    endPass();
    users.clear();
    timer?.dispose();
    dispose();
  };

  ctx.createShadeInternal = (finfo: ShaderInfo, code: string, asyncMode: boolean) => {
    const launch = parseLaunch(finfo);
    const bindGroupLayout = device.createBindGroupLayout({ entries: launch.layoutEntries });
    const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [bindGroupLayout] });
    const kernel = new KernelLaunches();
    const nBuffers = launch.bufferArgIndices.length;
    const nPods = launch.podArgIndices.length;
    const nArgs = nBuffers + nPods;
    stats.launchesByKernel[finfo.name] ??= 0;

    const uniformBytes = (args: number[], packDimX: number): Int32Array => {
      const i32 = new Int32Array(nPods + 1);
      const u32 = new Uint32Array(i32.buffer);
      const f32 = new Float32Array(i32.buffer);
      for (let i = 0; i < nPods; ++i) {
        const value = args[launch.podArgIndices[i] as number] as number;
        const kind = launch.podKinds[i];
        if (kind === "int") i32[i] = value;
        else if (kind === "uint") u32[i] = value;
        else f32[i] = value;
      }
      u32[nPods] = packDimX; // tvmjs always passes the packed grid's x size last
      return i32;
    };

    const bindGroupFor = (args: number[], uniform: GPUBuffer, uniformSize: number): GPUBindGroup => {
      const entries: GPUBindGroupEntry[] = [];
      for (let i = 0; i < nBuffers; ++i) {
        entries.push({ binding: i, resource: { buffer: ctx.gpuBufferFromPtr(args[launch.bufferArgIndices[i] as number] as number) } });
      }
      entries.push({ binding: nBuffers, resource: { buffer: uniform, size: uniformSize } });
      return device.createBindGroup({ layout: bindGroupLayout, entries });
    };

    // One launch's key values (buffers, scalars, packed grid x), reused: a cache hit allocates nothing.
    const nValues = nBuffers + nPods + 1;
    const values = new Float64Array(nValues);
    const grid = { x: 1, y: 1, z: 1, packDimX: 1 };

    const makeLaunch =
      (pipeline: GPUComputePipeline) =>
      (args: number[], n: number): void => {
        if (n !== nArgs + launch.dispatchToDim.length) {
          throw new Error(`WebGPU kernel ${finfo.name}: expected ${nArgs + launch.dispatchToDim.length} launch arguments, got ${n}`);
        }
        packGrid(launch.dispatchToDim, args, nArgs, grid);
        if (ctx.pendingEncoder === null) ctx.pendingEncoder = device.createCommandEncoder();
        // The pass belongs to the pending encoder; tvmjs replaces the encoder only through flushCommands.
        // Timed launches get a pass of their own: timestamps are written at pass boundaries.
        if (timer !== undefined) {
          endPass();
          pass = ctx.pendingEncoder.beginComputePass(timer.passFor(finfo.name));
        } else if (pass === null) pass = ctx.pendingEncoder.beginComputePass();

        let bindGroup: GPUBindGroup;
        if (kernel.volatile) {
          stats.uncached++;
          const bytes = uniformBytes(args, grid.packDimX);
          const uniform = ctx.getUniformFromPool(bytes.byteLength);
          device.queue.writeBuffer(uniform, 0, bytes);
          bindGroup = bindGroupFor(args, uniform, bytes.byteLength);
        } else {
          for (let i = 0; i < nBuffers; ++i) values[i] = args[launch.bufferArgIndices[i] as number] as number;
          for (let i = 0; i < nPods; ++i) values[nBuffers + i] = args[launch.podArgIndices[i] as number] as number;
          values[nValues - 1] = grid.packDimX;
          const hash = hashLaunch(values, nValues);
          let hit: CachedLaunch | undefined;
          const bucket = kernel.entries.get(hash);
          if (bucket !== undefined) {
            for (const entry of bucket) {
              let same = true;
              for (let i = 0; i < nValues && same; ++i) same = entry.values[i] === values[i];
              if (same) {
                hit = entry;
                break;
              }
            }
          }
          if (hit !== undefined) {
            stats.hits++;
            bindGroup = hit.bindGroup;
          } else {
            stats.misses++;
            const bytes = uniformBytes(args, grid.packDimX);
            // A fresh buffer per entry: written once, here, before any pass can read it.
            const uniform = device.createBuffer({ size: bytes.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
            device.queue.writeBuffer(uniform, 0, bytes);
            bindGroup = bindGroupFor(args, uniform, bytes.byteLength);
            const ptrs = Array.from(values.subarray(0, nBuffers));
            const entry: CachedLaunch = { kernel, hash, values: values.slice(), bindGroup, ptrs };
            for (const p of ptrs) {
              let set = users.get(p);
              if (set === undefined) users.set(p, (set = new Set()));
              set.add(entry);
            }
            if (bucket === undefined) kernel.entries.set(hash, [entry]);
            else bucket.push(entry);
            const buffersKey = ptrs.join(",");
            const scalarsKey = Array.from(values.subarray(nBuffers)).join(",");
            let sets = kernel.scalarSets.get(buffersKey);
            if (sets === undefined) kernel.scalarSets.set(buffersKey, (sets = new Set()));
            sets.add(scalarsKey);
            if (sets.size >= VOLATILE_AFTER_SCALAR_SETS) {
              kernel.volatile = true;
              for (const b of [...kernel.entries.values()]) for (const e of [...b]) drop(e);
              kernel.scalarSets.clear();
            }
          }
        }
        if (passPipeline !== pipeline) {
          pass.setPipeline(pipeline);
          passPipeline = pipeline;
        }
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(grid.x, grid.y, grid.z);
        if (timer !== undefined) endPass();
        ctx.shaderSubmitCounter += 1;
        (stats.launchesByKernel[finfo.name] as number) += 1;
        if (submitEvery > 0 && ++sinceSubmit >= submitEvery) {
          if (deferral !== "deferring") ctx.flushCommands();
          else if (splitting) cut();
        }
      };

    /** The kernel function tvmjs registers: called with spread arguments, or directly (installDirectArgs). */
    const kernelFunction = (run: (args: number[], n: number) => void): KernelFunction => {
      const f: KernelFunction = (...args: number[]) => run(args, args.length);
      if (directArgs) f[DIRECT_LAUNCH] = run;
      return f;
    };

    const descriptor = (): GPUComputePipelineDescriptor => {
      const module = device.createShaderModule({ code, compilationHints: [{ entryPoint: "main", layout: pipelineLayout }] } as GPUShaderModuleDescriptor);
      return { layout: pipelineLayout, compute: { module, entryPoint: finfo.name } };
    };
    if (lazy) {
      // Compiled synchronously at the first launch; later launches go straight to the cached launcher.
      let run: ((args: number[], n: number) => void) | undefined;
      const first = kernelFunction((args, n) => {
        if (run === undefined) {
          const t0 = performance.now();
          run = makeLaunch(device.createComputePipeline(descriptor()));
          stats.pipelinesCompiled++;
          stats.pipelineMs += performance.now() - t0;
        }
        run(args, n);
      });
      return asyncMode ? Promise.resolve(first) : first;
    }
    stats.pipelinesCompiled++;
    if (asyncMode) return device.createComputePipelineAsync(descriptor()).then((p) => kernelFunction(makeLaunch(p)));
    return kernelFunction(makeLaunch(device.createComputePipeline(descriptor())));
  };
  return stats;
}

interface Launch {
  /** For each launch-extent argument: grid dimension 0-2 (blockIdx) or 3-5 (threadIdx). */
  dispatchToDim: number[];
  bufferArgIndices: number[];
  podArgIndices: number[];
  podKinds: ("int" | "uint" | "float")[];
  layoutEntries: GPUBindGroupLayoutEntry[];
}

/** tvmjs's reading of the kernel metadata (same bindings, same order), done once per kernel. */
function parseLaunch(finfo: ShaderInfo): Launch {
  const dispatchToDim: number[] = [];
  let paramWriteAccess: number[] = [];
  for (const tag of finfo.launch_param_tags) {
    const axis = tag.charCodeAt(tag.length - 1) - "x".charCodeAt(0);
    if (tag.startsWith("blockIdx.") && axis >= 0 && axis < 3) dispatchToDim.push(axis);
    else if (tag.startsWith("threadIdx.") && axis >= 0 && axis < 3) dispatchToDim.push(axis + 3);
    else if (tag.startsWith("paramWriteAccess:")) paramWriteAccess = JSON.parse(tag.substring(17)) as number[];
    else throw new Error(`WebGPU kernel ${finfo.name}: cannot handle launch tag ${tag}`);
  }
  const layoutEntries: GPUBindGroupLayoutEntry[] = [];
  const bufferArgIndices: number[] = [];
  const podArgIndices: number[] = [];
  const podKinds: ("int" | "uint" | "float")[] = [];
  finfo.arg_types.forEach((dtype, i) => {
    if (dtype === "handle") {
      const type: GPUBufferBindingType = paramWriteAccess[bufferArgIndices.length] ? "storage" : "read-only-storage";
      layoutEntries.push({ binding: bufferArgIndices.length, visibility: GPUShaderStage.COMPUTE, buffer: { type } });
      bufferArgIndices.push(i);
    } else if (dtype.startsWith("int") || dtype.startsWith("uint") || dtype.startsWith("float")) {
      podArgIndices.push(i);
      podKinds.push(dtype.startsWith("int") ? "int" : dtype.startsWith("uint") ? "uint" : "float");
    } else {
      throw new Error(`WebGPU kernel ${finfo.name}: cannot handle argument type ${dtype}`);
    }
  });
  if (paramWriteAccess.length !== bufferArgIndices.length) {
    throw new Error(`WebGPU kernel ${finfo.name}: paramWriteAccess lists ${paramWriteAccess.length} buffers, the signature has ${bufferArgIndices.length}`);
  }
  // Scalars travel in one uniform buffer bound after the storage buffers.
  layoutEntries.push({ binding: bufferArgIndices.length, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform" } });
  return { dispatchToDim, bufferArgIndices, podArgIndices, podKinds, layoutEntries };
}

/**
 * The workgroup grid of one launch. tvmjs reserves blockIdx.z: a grid.x of 65536 or more is folded
 * into z (the kernel unpacks it with the x size passed as the last uniform), exactly as tvmjs does.
 */
function packGrid(dispatchToDim: number[], args: number[], first: number, out: { x: number; y: number; z: number; packDimX: number }): void {
  let x = 1;
  let y = 1;
  for (let i = 0; i < dispatchToDim.length; ++i) {
    const d = dispatchToDim[i] as number;
    const v = args[first + i] as number;
    if (d === 0) x = v;
    else if (d === 1) y = v;
    else if (d === 2 && v !== 1) throw new Error("WebGPU: blockIdx.z is reserved for internal use");
  }
  out.packDimX = x;
  let z = 1;
  while (x >= 1 << 16) {
    x = x % 2 === 0 ? x / 2 : (x + 1) / 2;
    z *= 2;
  }
  out.x = x;
  out.y = y;
  out.z = z;
}
