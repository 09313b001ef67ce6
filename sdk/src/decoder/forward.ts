/**
 * The model's forward functions (MLC conventions, params "packed": ONE trailing argument holding the
 * weights array):
 *
 *   embed(input_ids int32[n], params)               -> [n, hidden]
 *   prefill(input_embed [1, n, hidden], kv, params) -> (logits f32[1, 1, vocab], kv)   (last token only)
 *   decode(input_embed [1, 1, hidden], kv, params)  -> (logits f32[1, 1, vocab], kv)
 *
 * One call = upload the ids, embed, run prefill/decode inside the KV cache's begin/end_forward, read the
 * logits of the last token back (through a persistent staging buffer on WebGPU), return them as float32.
 * Nothing else is read back. Callers serialize calls (one in flight; see SerialQueue).
 */
import { decodeTensorData, isTensorDType } from "../runtime/dtype.js";
import type { PagedKVCache } from "./kv-cache.js";
import type { TvmArray, TvmDevice, TvmObject, TvmPackedFunc, TvmTensor, TvmVirtualMachine } from "../runtime/tvmjs-types.js";
import { isTvmTensor, type TvmLLMInstance } from "../runtime/tvmjs-llm.js";
import { GpuArgmax } from "../runtime/gpu-argmax.js";
import { GpuReadback } from "../runtime/gpu-readback.js";
import { GpuSampler } from "../runtime/gpu-sampler.js";
import { argmax } from "../sample/argmax.js";
import type { TokenHistory } from "../sample/history.js";
import type { GpuSamplingOutcome, SampledToken, Sampler } from "../sample/sampler.js";
import type { GpuSamplingPlan } from "../sample/gpu-plan.js";
import { gpuAccess, type TvmjsGpuAccess } from "../runtime/webgpu-dispatch.js";

export type ForwardKind = "prefill" | "decode";

/** DLPack's device type of WebGPU (kDLWebGPU). */
const DL_WEBGPU = 15;

export interface ForwardTiming {
  /** Host time to enqueue the GPU work (embed + model call + logits copy). */
  submitMs: number;
  /** Wait for the GPU and read the logits back. */
  syncMs: number;
}

function required(vm: TvmVirtualMachine, name: string): TvmPackedFunc {
  try {
    return vm.getFunction(name);
  } catch (err) {
    throw new Error(`the model library does not export \`${name}\` (is this a Hearth/MLC decoder package?)`, { cause: err });
  }
}

function asArray(x: unknown): TvmArray | undefined {
  const a = x as Partial<TvmArray> | null;
  return typeof a?.size === "function" && typeof a.get === "function" ? (a as TvmArray) : undefined;
}

export class DecoderFunctions {
  private readonly embed: TvmPackedFunc;
  private readonly prefill: TvmPackedFunc;
  private readonly decode: TvmPackedFunc;
  private readonly device: TvmDevice;
  /** Host copy of the last logits; created on first use, reused (shape/dtype fixed per model). */
  private logitsHost: TvmTensor | undefined;
  /**
   * The decode step's one-token input on the device, reused: a fresh tensor per token would create and
   * destroy a GPU buffer every step (and invalidate the launches cached on it, see webgpu-dispatch.ts).
   */
  private decodeInput: TvmTensor | undefined;
  /** tvmjs's WebGPU context (undefined on the CPU): where runArgmax finds the logits' GPU buffer. */
  private readonly gpu: { access: TvmjsGpuAccess } | undefined;
  private argmaxKernel: GpuArgmax | undefined;
  private samplerKernel: GpuSampler | undefined;
  private readback: GpuReadback | undefined;
  /** The logits' dtype, once a forward has returned them (launchArgmax needs float32). */
  private logitsDtype: string | undefined;
  /** Positions sampled by runSample: on the GPU, and handed back to the host (stats). */
  readonly gpuSampling = { sampled: 0, handedBack: 0 };
  /** Steps encoded ahead of their token (encodeAhead), and those run again because they were submitted early. */
  readonly hostFed = { steps: 0, redone: 0 };
  private disposed = false;

  /**
   * Look the functions up on the VM. Call inside a tvmjs scope; the functions are detached and owned.
   * `params` is the packed weights array (getParamsFromCacheByName), owned by the caller.
   * `device`: where the VM runs (default tvm.webgpu(); tvm.cpu() for a wasm-cpu package).
   */
  constructor(
    private readonly tvm: TvmLLMInstance,
    vm: TvmVirtualMachine,
    private readonly params: TvmObject,
    device?: TvmDevice,
  ) {
    this.embed = tvm.detachFromCurrentScope(required(vm, "embed"));
    this.prefill = tvm.detachFromCurrentScope(required(vm, "prefill"));
    this.decode = tvm.detachFromCurrentScope(required(vm, "decode"));
    this.device = device ?? tvm.webgpu();
    const access = this.device.deviceType === DL_WEBGPU ? gpuAccess(tvm) : undefined;
    this.gpu = access === undefined ? undefined : { access };
  }

  /**
   * Append `ids` to sequence `seqId` with one `kind` call; returns the logits for the next token.
   * `ids.length` must fit the KV cache's prefill chunk (decode: exactly 1).
   */
  async run(kind: ForwardKind, ids: Int32Array, kv: PagedKVCache, seqId: number, timing?: ForwardTiming): Promise<Float32Array> {
    return this.step(kind, ids, kv, seqId, timing, (logits) => this.readBack(logits));
  }

  /**
   * Like run, but returns the greedy next token: the argmax of the logits, computed on the GPU where it
   * can be (WebGPU, float32 logits; gpu-argmax.ts), so only the token id comes back. Elsewhere the
   * logits are read back and scanned on the host, with the same result.
   */
  async runArgmax(kind: ForwardKind, ids: Int32Array, kv: PagedKVCache, seqId: number, timing?: ForwardTiming): Promise<number> {
    const gpu = this.gpu;
    if (gpu === undefined) return argmax(await this.run(kind, ids, kv, seqId, timing));
    return this.step(kind, ids, kv, seqId, timing, async (logits) => {
      if (logits.dtype !== "float32") {
        const { value, submitted } = await this.readBack(logits);
        return { value: argmax(value), submitted };
      }
      gpu.access.flush(); // submit the model's work first: the argmax is queued after it
      const submitted = performance.now();
      const buffer = gpu.access.bufferOf(logits.getDataPtr());
      this.argmaxKernel ??= new GpuArgmax(gpu.access.device);
      return { value: await this.argmaxKernel.argmax(buffer, byteOffsetOf(logits) / 4, logits.shape[2] as number), submitted };
    });
  }

  /**
   * Like run, but returns the token `sampler` picks (with `history` for its penalties), sampled on the GPU
   * where it can be (WebGPU, float32 logits, a setting gpu-plan.ts supports; runtime/gpu-sampler.ts), so
   * only the token id (and its logprob) comes back. Elsewhere, and for a position the GPU hands back (a
   * draw too close to a rounding boundary, NaN), the logits are read back and sampled on the host: the
   * same token either way, for the same seed.
   */
  async runSample(
    kind: ForwardKind,
    ids: Int32Array,
    kv: PagedKVCache,
    seqId: number,
    sampler: Sampler,
    history: TokenHistory,
    timing?: ForwardTiming,
  ): Promise<SampledToken> {
    const gpu = this.gpu;
    if (gpu === undefined) return sampler.sample(await this.run(kind, ids, kv, seqId, timing), history);
    return this.step(kind, ids, kv, seqId, timing, async (logits) => {
      const plan = logits.dtype === "float32" ? sampler.gpuPlan(logits.shape[2] as number, history) : null;
      if (plan === null) {
        const { value, submitted } = await this.readBack(logits);
        return { value: sampler.sample(value, history), submitted };
      }
      gpu.access.flush(); // submit the model's work first: the sampler is queued after it
      const submitted = performance.now();
      this.samplerKernel ??= new GpuSampler(gpu.access.device);
      const outcome = await this.samplerKernel.sample(gpu.access.bufferOf(logits.getDataPtr()), byteOffsetOf(logits) / 4, plan);
      this.gpuSampling.sampled++;
      const picked = sampler.gpuResult(plan, outcome);
      if (picked !== null) return { value: picked, submitted };
      this.gpuSampling.handedBack++;
      const { value } = await this.readBack(logits); // the logits are untouched: the kernel edits a copy
      return { value: sampler.sample(value, history), submitted };
    });
  }

  /**
   * One forward call: upload the ids, embed, run prefill/decode inside the KV cache's begin/end_forward,
   * then `finish` turns the last position's logits (still on the device) into the result, inside the same
   * tvmjs scope. `submitted`: when the host had enqueued everything (the rest is waiting for the GPU).
   */
  private async step<T>(
    kind: ForwardKind,
    ids: Int32Array,
    kv: PagedKVCache,
    seqId: number,
    timing: ForwardTiming | undefined,
    finish: (logits: TvmTensor) => Promise<{ value: T; submitted: number }>,
  ): Promise<T> {
    if (this.disposed) throw new Error("DecoderFunctions disposed");
    const n = ids.length;
    if (n === 0) throw new RangeError(`${kind}: no tokens`);
    if (kind === "decode" && n !== 1) throw new RangeError(`decode takes exactly one token, got ${n}`);
    kv.checkAppend([seqId], [n]);
    const tvm = this.tvm;
    const t0 = performance.now();
    tvm.beginScope();
    try {
      const input = kind === "decode" ? this.decodeInputTensor().copyFrom(ids) : tvm.empty([n], "int32", this.device).copyFrom(ids);
      const logits = this.call(kind, input, n, kv, seqId);
      this.logitsDtype = logits.dtype;
      const { value, submitted } = await finish(logits);
      if (timing !== undefined) {
        timing.submitMs = submitted - t0;
        timing.syncMs = performance.now() - submitted;
      }
      return value;
    } finally {
      tvm.endScope();
    }
  }

  /** embed + the model function inside the KV cache's begin/end_forward; the last position's logits. */
  private call(kind: ForwardKind, input: TvmTensor, n: number, kv: PagedKVCache, seqId: number): TvmTensor {
    const logits = kv.forward([seqId], [n], () => {
      const embedded = this.embed(input, this.params);
      if (!isTvmTensor(embedded) || embedded.shape.length !== 2 || embedded.shape[0] !== n) {
        throw new Error(`embed returned ${describe(embedded)}, expected a [${n}, hidden] tensor`);
      }
      const hidden = embedded.shape[1] as number;
      const fn = kind === "prefill" ? this.prefill : this.decode;
      const ret = fn(embedded.view([1, n, hidden]), kv.handle, this.params);
      const out = asArray(ret)?.get(0) ?? ret;
      if (!isTvmTensor(out)) throw new Error(`${kind} returned ${describe(ret)}, expected (logits, kv)`);
      return out;
    });
    // logits are [1, 1, vocab] (prefill keeps only the last position): exactly one row.
    if (logits.shape.length !== 3 || logits.shape[0] !== 1 || logits.shape[1] !== 1) {
      throw new Error(`logits have shape [${logits.shape.join(", ")}], expected [1, 1, vocab]`);
    }
    return logits;
  }

  /**
   * Whether launchArgmax works here: WebGPU and float32 logits (known after the first forward; until then
   * only the device is checked, and launchArgmax refuses other logits).
   */
  get canLaunchAhead(): boolean {
    return this.gpu !== undefined && (this.logitsDtype === undefined || this.logitsDtype === "float32");
  }

  /**
   * One greedy decode step, queued on the GPU without waiting for it: the input token is `token` (uploaded),
   * or with `token === null` the argmax of the previous launchArgmax, which that step's kernel copied into
   * the decode input on the GPU. So the host can encode step k + 1 while the GPU still runs step k, and only
   * each step's token id is read back. Resolves to this step's argmax (the token after its input).
   * `timing.submitMs` gets the host time to encode and submit it. WebGPU and float32 logits only.
   */
  launchArgmax(token: number | null, kv: PagedKVCache, seqId: number, timing?: ForwardTiming): Promise<number> {
    return this.launch(token, kv, seqId, timing, (gpu, logits, feed) => {
      this.argmaxKernel ??= new GpuArgmax(gpu.access.device);
      return this.argmaxKernel.launch(gpu.access.bufferOf(logits.getDataPtr()), byteOffsetOf(logits) / 4, logits.shape[2] as number, feed);
    });
  }

  /**
   * launchArgmax's counterpart for sampling: one decode step queued without waiting, its next token sampled
   * on the GPU with `plan` (runtime/gpu-sampler.ts) and fed to the following step's input on the GPU.
   * Resolves to the sampler's outcome (hand it to Sampler.gpuResult). WebGPU and float32 logits only.
   */
  launchSample(token: number | null, kv: PagedKVCache, seqId: number, plan: GpuSamplingPlan, timing?: ForwardTiming): Promise<GpuSamplingOutcome> {
    return this.launch(token, kv, seqId, timing, (gpu, logits, feed) => {
      this.samplerKernel ??= new GpuSampler(gpu.access.device);
      this.gpuSampling.sampled++;
      return this.samplerKernel.launch(gpu.access.bufferOf(logits.getDataPtr()), byteOffsetOf(logits) / 4, plan, feed);
    });
  }

  /** What launchArgmax and launchSample share: the step, then `pick` queues the token's kernel and its feed. */
  private launch<T>(
    token: number | null,
    kv: PagedKVCache,
    seqId: number,
    timing: ForwardTiming | undefined,
    pick: (gpu: { access: TvmjsGpuAccess }, logits: TvmTensor, feed: { buffer: GPUBuffer; byteOffset: number }) => Promise<T>,
  ): Promise<T> {
    if (this.disposed) throw new Error("DecoderFunctions disposed");
    const gpu = this.gpu;
    if (gpu === undefined) throw new Error("pipelined decode steps need a WebGPU device");
    kv.checkAppend([seqId], [1]);
    const tvm = this.tvm;
    const t0 = performance.now();
    tvm.beginScope();
    try {
      const input = this.decodeInputTensor();
      if (token !== null) input.copyFrom(Int32Array.of(token));
      // One submit per step: the GPU is still busy with the step before, so submitting within the step
      // (every submitEvery launches, or tvmjs's flush before the KV cache's page-table copy) would buy no
      // overlap, only host time (deferFlushes).
      gpu.access.deferFlushes(true);
      let logits: TvmTensor;
      try {
        logits = this.call("decode", input, 1, kv, seqId);
      } finally {
        gpu.access.deferFlushes(false);
      }
      this.logitsDtype = logits.dtype;
      if (logits.dtype !== "float32") throw new Error(`pipelined decode steps need float32 logits, this model's are ${logits.dtype}`);
      gpu.access.flush(); // the model's work first: the token's kernel is queued after it
      const next = pick(gpu, logits, { buffer: gpu.access.bufferOf(input.getDataPtr()), byteOffset: byteOffsetOf(input) });
      if (timing !== undefined) timing.submitMs = performance.now() - t0;
      return next;
    } finally {
      tvm.endScope();
    }
  }

  /** Whether encodeAhead works here: launchArgmax's conditions, and Hearth's launch path (deferFlushes). */
  get canEncodeAhead(): boolean {
    return this.canLaunchAhead && this.gpu?.access.canDeferFlushes === true;
  }

  /**
   * One decode step encoded now, before the host knows its input token, and submitted by the returned
   * `feed(token)`, which writes the token into the step's input first and resolves to the step's logits.
   * So the host encodes step k + 1 while the GPU runs step k and its logits come back, and the steps whose
   * token the host picks from the logits (penalties, grammars, host sampling) overlap as the pipelined
   * greedy steps do. Nothing of the step is submitted before `feed` (TvmjsGpuAccess.deferFlushes); where
   * something was (a buffer freed meanwhile), `feed` drops the step from the cache and runs it again with
   * the token (counted in `hostFed.redone`). Call `feed` exactly once, before any other call here; until
   * then the step holds a tvmjs scope. WebGPU, float32 logits and Hearth's launch path only (canEncodeAhead).
   */
  encodeAhead(kv: PagedKVCache, seqId: number, timing?: ForwardTiming): HostFedStep {
    if (this.disposed) throw new Error("DecoderFunctions disposed");
    const gpu = this.gpu;
    if (gpu === undefined || !gpu.access.canDeferFlushes) throw new Error("encodeAhead needs a WebGPU device and Hearth's launch path");
    kv.checkAppend([seqId], [1]);
    const tvm = this.tvm;
    const t0 = performance.now();
    tvm.beginScope();
    let logits: TvmTensor;
    const input = this.decodeInputTensor();
    gpu.access.deferFlushes(true, true); // in parts: the GPU starts on the first while Dawn records the rest
    try {
      logits = this.call("decode", input, 1, kv, seqId);
    } catch (err) {
      gpu.access.deferFlushes(false);
      tvm.endScope();
      throw err;
    }
    const intact = gpu.access.deferFlushes(false);
    this.logitsDtype = logits.dtype;
    if (timing !== undefined) timing.submitMs += performance.now() - t0;
    this.hostFed.steps++;
    let fed = false;
    const feed = async (token: number): Promise<Float32Array> => {
      if (fed) throw new Error("this step was fed already");
      fed = true;
      let read: Promise<{ value: Float32Array; submitted: number }> | undefined;
      try {
        if (intact) {
          gpu.access.device.queue.writeBuffer(gpu.access.bufferOf(input.getDataPtr()), byteOffsetOf(input), Int32Array.of(token));
          read = this.readBack(logits); // submits the step, then queues the copy (before its first await)
        } else {
          gpu.access.flush();
        }
      } finally {
        tvm.endScope();
      }
      if (read !== undefined) return (await read).value;
      // The step went to the GPU before its token was written: drop it and run it again with the token.
      this.hostFed.redone++;
      await this.device.sync();
      tvm.beginScope();
      try {
        kv.popN(seqId, 1);
      } finally {
        tvm.endScope();
      }
      return this.run("decode", Int32Array.of(token), kv, seqId);
    };
    return { intact, feed };
  }

  /**
   * Wait for the GPU and return the logits as float32. On WebGPU, float32 logits come through one
   * persistent staging buffer (gpu-readback.ts); elsewhere (the CPU, float16 logits) tvmjs copies them into
   * the persistent host tensor.
   */
  private async readBack(logits: TvmTensor): Promise<{ value: Float32Array; submitted: number }> {
    const gpu = this.gpu;
    if (gpu !== undefined && logits.dtype === "float32") {
      gpu.access.flush(); // submit the model's work first: the copy is queued after it
      const submitted = performance.now();
      this.readback ??= new GpuReadback(gpu.access.device);
      const n = logits.shape[2] as number;
      return { value: await this.readback.read(gpu.access.bufferOf(logits.getDataPtr()), byteOffsetOf(logits) / 4, n), submitted };
    }
    const host = this.hostFor(logits);
    host.copyFrom(logits);
    const submitted = performance.now();
    await this.device.sync();
    return { value: toFloat32(host.dtype, host.toRawBytes()), submitted };
  }

  private decodeInputTensor(): TvmTensor {
    this.decodeInput ??= this.tvm.detachFromCurrentScope(this.tvm.empty([1], "int32", this.device));
    return this.decodeInput;
  }

  private hostFor(logits: TvmTensor): TvmTensor {
    const h = this.logitsHost;
    if (h !== undefined && h.dtype === logits.dtype && h.shape.join(",") === logits.shape.join(",")) return h;
    h?.dispose();
    const created = this.tvm.detachFromCurrentScope(this.tvm.empty([...logits.shape], logits.dtype, this.tvm.cpu()));
    this.logitsHost = created;
    return created;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.logitsHost?.dispose();
    this.decodeInput?.dispose();
    this.argmaxKernel?.dispose();
    this.samplerKernel?.dispose();
    this.readback?.dispose();
    this.embed.dispose();
    this.prefill.dispose();
    this.decode.dispose();
  }
}

/** A decode step encoded before its input token is known (DecoderFunctions.encodeAhead). */
export interface HostFedStep {
  /**
   * Nothing of the step was submitted yet. When false, `feed` runs the step again after the GPU is done
   * (it changes the cache then): encode no other step before its result.
   */
  readonly intact: boolean;
  /** Write the input token, submit the step, and resolve to its logits (float32, length vocab). Once. */
  feed(token: number): Promise<Float32Array>;
}

/**
 * Byte offset of a tensor's first element in its buffer. tvmjs keeps it in a field its typings mark private
 * (it reads it from the DLTensor); read it defensively rather than widen the typed surface.
 */
function byteOffsetOf(t: TvmTensor): number {
  const off = (t as unknown as { byteOffset?: unknown }).byteOffset;
  if (typeof off !== "number" || !Number.isSafeInteger(off) || off % 4 !== 0) {
    throw new Error(`tvmjs tensor byteOffset is ${String(off)}; expected a multiple of 4 (is this tvmjs version supported?)`);
  }
  return off;
}

function describe(x: unknown): string {
  if (isTvmTensor(x)) return `a ${x.dtype}[${x.shape.join(", ")}] tensor`;
  const a = asArray(x);
  if (a !== undefined) return `a ${a.size()}-element array`;
  return String(x);
}

/** Raw little-endian bytes of a float32 (or float16) tensor -> Float32Array. */
function toFloat32(dtype: string, raw: Uint8Array): Float32Array {
  if (dtype === "float32") {
    // toRawBytes returns a fresh copy; still, only alias its buffer when it is aligned and exact.
    if (raw.byteOffset % 4 === 0 && raw.byteLength === raw.buffer.byteLength) {
      return new Float32Array(raw.buffer as ArrayBuffer, raw.byteOffset, raw.byteLength / 4);
    }
    return new Float32Array(raw.slice().buffer);
  }
  if (dtype === "float16" && isTensorDType(dtype)) return Float32Array.from(decodeTensorData(dtype, raw));
  throw new Error(`logits dtype ${dtype} is not supported (expected float32)`);
}
