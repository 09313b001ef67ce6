/**
 * DecoderModel: a compiled decoder LLM package (Hearth / MLC-LLM conventions) running on WebGPU, with
 * one KV-cache sequence: prefill a prompt (chunked), decode token by token, greedy generation, reset.
 *
 *   const model = await DecoderModel.load(url, { fetch });   // verified package -> GPU
 *   const tokens = await model.greedy([1, 2, 3], 32, { stopTokens: model.config.eos_token_ids });
 *   model.stats();                                          // load times, prefill/decode tok/s
 *   await model.dispose();
 *
 * Pieces: ../load (fetch + SHA-256 verify + tvmjs load), kv-cache.ts (PagedKVCache bookkeeping),
 * forward.ts (embed + prefill/decode + logits readback), ../runtime/serial-queue.ts (one GPU job at a time),
 * ../sample/argmax.ts (argmax on the host), ../runtime/gpu-argmax.ts (greedy's argmax on the GPU:
 * decodeArgmax, greedy). Every public method is queued, so concurrent calls never interleave on the GPU.
 */
import type { FastDispatchStats } from "../runtime/webgpu-dispatch.js";
import type { AdapterDescription } from "../runtime/gpu.js";
import { chooseLoadDevice, loadOn, webgpuSkippedReason } from "../load/load-device.js";
import type { MemoryEstimate } from "../load/device-fit.js";
import { watchDeviceLost, type DeviceLossWatch, type DeviceLostError } from "../runtime/device-lost.js";
import { DecoderFunctions, type ForwardKind, type ForwardTiming, type HostFedStep } from "./forward.js";
import { ContextWindowExceededError, PagedKVCache } from "./kv-cache.js";
import { argmax } from "../sample/argmax.js";
import type { TokenHistory } from "../sample/history.js";
import type { GpuSamplingOutcome, SampledToken, Sampler } from "../sample/sampler.js";
import type { GpuSamplingPlan } from "../sample/gpu-plan.js";
import { SerialQueue } from "../runtime/serial-queue.js";
import type { TvmObject } from "../runtime/tvmjs-types.js";
import { asLLMInstance } from "../runtime/tvmjs-llm.js";
import { loadPackage, type LoadedPackage, type LoadPackageOptions, type PackageCacheReport, type PackageLoadTimings } from "../load/package.js";
import type { ChatConfig } from "../load/chat-config.js";
import type { PackageManifest } from "../load/manifest.js";
import { DecoderStateError } from "../errors/model.js";
export { DecoderStateError } from "../errors/model.js";

export interface DecoderLoadOptions extends Omit<LoadPackageOptions, "device"> {
  /**
   * Device to run on (owned by the model from then on: dispose() destroys it). Default: a new device
   * from `requestGPU({ gpu })`, with shader-f16 when the adapter has it.
   */
  device?: GPUDevice | undefined;
  /** WebGPU entry point for the default device (default navigator.gpu). */
  gpu?: GPU | undefined;
  /** KV-cache capacity in tokens (default and maximum: the package's context_window_size). */
  maxTotalSeqLen?: number | undefined;
  /**
   * Tokens per prefill call (default and maximum: the package's prefill_chunk_size). Smaller chunks
   * bound the activation memory of long prompts; results match the native twin run with the same chunk.
   */
  prefillChunkSize?: number | undefined;
  /**
   * Called once if the WebGPU device is lost (driver reset, GPU process crash, device.destroy() by
   * someone else; not for dispose()). The model then rejects every call with that DeviceLostError;
   * `reload()` loads it again on a new device (from the store, so without downloading).
   */
  onDeviceLost?: ((err: DeviceLostError) => void) | undefined;
}

/** What a load found: where the model runs, the store's report, the memory estimate. */
export interface DecoderLoadInfo {
  /** "webgpu", or "cpu" for a wasm-cpu package (no WebGPU here, or target "wasm-cpu"). */
  deviceKind: "webgpu" | "cpu";
  target: string;
  /** The variant chosen (variant / variants options), else null. */
  variant: string | null;
  cache: PackageCacheReport;
  memory: MemoryEstimate;
  /** Why WebGPU was not used, when load() fell back to wasm-cpu by itself. */
  webgpuUnavailable: string | null;
}

export interface GreedyOptions {
  /**
   * Stop after generating one of these ids (it is included as the last element). Default: none, so
   * exactly `maxNewTokens` come back (what the native twin's `greedy` does).
   */
  stopTokens?: Iterable<number> | undefined;
  /**
   * decodeGreedy only: called with each new token before the next one is decided, and whether that token
   * can still be fed (false at maxNewTokens or a full context window: the loop ends after it either way).
   * Return false to end after this token (it is then not fed, as a stop token). If it throws, the loop
   * ends the same way and the error is rethrown; the model stays usable.
   */
  onToken?: ((token: number, canFeed: boolean) => boolean) | undefined;
}

export interface PhaseStats {
  tokens: number;
  /** Model calls (prefill: chunks). */
  calls: number;
  /** Wall time of those calls, logits readback included (ms). */
  ms: number;
  tokensPerSec: number;
}

export interface DecoderStats {
  load: PackageLoadTimings & {
    /** requestGPU (0 when a device was given). */
    requestDeviceMs: number;
    /** Params array + functions + KV cache creation. */
    setupMs: number;
    /** Whole DecoderModel.load. */
    totalMs: number;
    verifiedBytes: number;
  };
  prefill: PhaseStats;
  decode: PhaseStats;
  /** Time waiting for the GPU + logits readback, summed over all calls (ms). */
  syncMs: number;
  /** Host time enqueueing the GPU work (id upload, embed + model call, logits copy), summed over all calls (ms). */
  submitMs: number;
  /** Kernel launches by the fast WebGPU launch path since load (undefined with dispatch "tvmjs" or on the CPU). */
  dispatch?: FastDispatchStats;
  /** decodeSample positions since load: sampled on the GPU, and of those handed back to the host sampler. */
  gpuSampling: { sampled: number; handedBack: number };
  /**
   * Decode steps launched before the previous step's token was read back (greedy, decodeGreedy,
   * decodeSampled and decodePicked on WebGPU), and of those undone because the loop ended at that token.
   */
  launchedAhead: { steps: number; undone: number };
  /**
   * decodePicked steps encoded before their token was known (DecoderFunctions.encodeAhead), and of those
   * run again because something of them was submitted before the token was written.
   */
  hostFed: { steps: number; redone: number };
}

const SEQ = 0; // the one sequence of this session

/** Carries an error thrown by a caller's callback through greedyNow's model-failure handling. */
class CallerError {
  constructor(readonly error: unknown) {}
}

function phase(): PhaseStats {
  return { tokens: 0, calls: 0, ms: 0, tokensPerSec: 0 };
}

export class DecoderModel {
  readonly config: ChatConfig;
  readonly manifest: PackageManifest;
  /** The package folder URL. */
  readonly baseUrl: string;
  /** The adapter, when load() requested the device itself; else null. */
  readonly adapter: AdapterDescription | null;
  readonly usesF16: boolean;

  readonly loadInfo: DecoderLoadInfo;

  private readonly queue = new SerialQueue();
  private readonly stats_: Omit<DecoderStats, "gpuSampling" | "launchedAhead" | "hostFed">;
  private readonly launchedAhead = { steps: 0, undone: 0 };
  private state: "ready" | "broken" | "disposed" | "lost" = "ready";
  private lossWatch: DeviceLossWatch | undefined;
  private lost: DeviceLostError | null = null;
  /** load()'s arguments, for reload(). */
  private reloadArgs: { baseUrl: string; opts: DecoderLoadOptions } | undefined;

  private constructor(
    private readonly pkg: LoadedPackage,
    private readonly params: TvmObject,
    private readonly fns: DecoderFunctions,
    private readonly kv: PagedKVCache,
    /** Tokens per prefill call. */
    readonly prefillChunkSize: number,
    adapter: AdapterDescription | null,
    load: DecoderStats["load"],
    webgpuUnavailable: string | null,
  ) {
    this.loadInfo = {
      deviceKind: pkg.deviceKind,
      target: pkg.target,
      variant: pkg.variant,
      cache: pkg.cache,
      memory: pkg.memory,
      webgpuUnavailable,
    };
    this.config = pkg.config;
    this.manifest = pkg.manifest;
    this.baseUrl = pkg.baseUrl;
    this.usesF16 = pkg.usesF16;
    this.adapter = adapter;
    this.stats_ = { load, prefill: phase(), decode: phase(), syncMs: 0, submitMs: 0 };
  }

  /**
   * Fetch + verify the package at `baseUrl` (see loadPackage), load it on WebGPU, create the KV cache.
   * Without WebGPU (no navigator.gpu, no adapter, device request refused) and with no `device`/`target`
   * given, the package's wasm-cpu build is loaded on the CPU instead; a package without one fails with
   * WebGPUUnavailableError. On a software adapter (SwiftShader, llvmpipe/lavapipe, `isFallbackAdapter`:
   * load/device-fit.ts chooseBackend) the wasm-cpu build is taken too when the package has one.
   * `target: "wasm-cpu"` asks for the CPU build directly; `target: "webgpu"` (or a `device`) forces WebGPU.
   * On a hardware adapter a package's "webgpu-fused" build is loaded when it has one (`webgpuBuild`).
   */
  static async load(baseUrl: string, opts: DecoderLoadOptions = {}): Promise<DecoderModel> {
    const t0 = performance.now();
    const chosen = await chooseLoadDevice(opts, "hearth-decoder");
    const t1 = performance.now();
    const { value: pkg, used } = await loadOn(
      chosen,
      (on): Promise<LoadedPackage> =>
        loadPackage(baseUrl, {
          ...opts,
          device: on.device,
          target: on.target,
          preferThreads: opts.preferThreads ?? on.cpuByChoice,
          adapterInfo: opts.adapterInfo ?? on.adapter ?? undefined,
          deviceCheck:
            opts.deviceCheck === false ? false : { maxTotalSeqLen: opts.maxTotalSeqLen, prefillChunkSize: opts.prefillChunkSize, ...opts.deviceCheck },
        }),
    );
    const { device, adapter } = used;
    const t2 = performance.now();
    const config = pkg.config;
    const maxTotal = opts.maxTotalSeqLen ?? config.context_window_size;
    if (!Number.isSafeInteger(maxTotal) || maxTotal <= 0 || maxTotal > config.context_window_size) {
      pkg.dispose();
      throw new RangeError(`maxTotalSeqLen must be an integer in [1, ${config.context_window_size}], got ${maxTotal}`);
    }
    const chunk = opts.prefillChunkSize ?? config.prefill_chunk_size;
    if (!Number.isSafeInteger(chunk) || chunk <= 0 || chunk > config.prefill_chunk_size) {
      pkg.dispose();
      throw new RangeError(`prefillChunkSize must be an integer in [1, ${config.prefill_chunk_size}], got ${chunk}`);
    }
    const tvm = asLLMInstance(pkg.lib.tvm);
    let params: TvmObject | undefined;
    let fns: DecoderFunctions | undefined;
    let kv: PagedKVCache | undefined;
    let failure: { error: unknown } | undefined;
    tvm.beginScope();
    try {
      params = tvm.detachFromCurrentScope(tvm.getParamsFromCacheByName(config.params.map((p) => p.name)));
      fns = new DecoderFunctions(tvm, pkg.lib.vm, params, pkg.lib.device());
      kv = PagedKVCache.create(tvm, pkg.lib.vm, {
        maxBatchSize: 1,
        maxTotalSeqLen: maxTotal,
        prefillChunkSize: config.prefill_chunk_size,
        slidingWindow: config.sliding_window_size,
      });
      kv.addSequence(SEQ);
    } catch (error) {
      failure = { error };
    } finally {
      tvm.endScope();
    }
    if (failure !== undefined || params === undefined || fns === undefined || kv === undefined) {
      // Detached objects first, then the runtime (and with it the device).
      kv?.dispose();
      fns?.dispose();
      params?.dispose();
      pkg.dispose();
      throw failure?.error ?? new Error("decoder setup failed");
    }
    const t3 = performance.now();
    const model = new DecoderModel(
      pkg,
      params,
      fns,
      kv,
      chunk,
      adapter,
      { ...pkg.timings, requestDeviceMs: t1 - t0, setupMs: t3 - t2, totalMs: t3 - t0, verifiedBytes: pkg.verifiedBytes },
      webgpuSkippedReason(used),
    );
    model.reloadArgs = { baseUrl, opts };
    if (device !== undefined && pkg.deviceKind === "webgpu") {
      model.lossWatch = watchDeviceLost(device, (err) => model.deviceLostNow(err));
    }
    return model;
  }

  /** The device loss, once it happened (then every call rejects with it); else null. */
  get deviceLost(): DeviceLostError | null {
    return this.lost;
  }

  /**
   * Load the same package again with the same options, on a new device (requestGPU with `gpu`; a
   * `device` given to load() is not reused), after disposing this model: the way back from a device
   * loss. Files come from the store when there is one (no download). `overrides` replace options.
   */
  async reload(overrides: DecoderLoadOptions = {}): Promise<DecoderModel> {
    const args = this.reloadArgs;
    if (args === undefined) throw new DecoderStateError("this model cannot be reloaded");
    await this.dispose();
    const { device: _device, ...rest } = args.opts;
    return DecoderModel.load(args.baseUrl, { ...rest, ...overrides });
  }

  /** Verified bytes of a package file (e.g. "tokenizer.json"), from the store when it has them. */
  readFile(path: string, signal?: AbortSignal): Promise<ArrayBuffer> {
    return this.pkg.readFile(path, signal);
  }

  private deviceLostNow(err: DeviceLostError): void {
    if (this.state === "disposed") return;
    this.state = "lost";
    this.lost = err;
    // tvmjs disposed its runtime on the loss already (its own device.lost handler runs first).
    try {
      this.reloadArgs?.opts.onDeviceLost?.(err);
    } catch {
      // a throwing callback must not turn into an unhandled rejection here
    }
  }

  // -- public API (every call queued) -----------------------------------------------------------

  /** Tokens in the KV cache (prompt + decoded so far). */
  get sequenceLength(): number {
    return this.kv.sequenceLength(SEQ) ?? 0;
  }

  /** KV-cache capacity in tokens. */
  get maxSequenceLength(): number {
    return this.kv.options.maxTotalSeqLen;
  }

  /**
   * Append `ids` to the sequence (in prefill_chunk_size chunks); returns the float32 logits
   * (length vocab) for the token after the last one.
   */
  prefill(ids: Int32Array | readonly number[]): Promise<Float32Array> {
    return this.enqueue(ids, "prefill", (tokens) => this.prefillNow(tokens));
  }

  /** Append one token; returns the logits for the next. */
  decode(token: number): Promise<Float32Array> {
    return this.enqueue([token], "decode", (tokens) => this.forward("decode", tokens));
  }

  /**
   * Append one token; returns the greedy next token, argmax(decode(token)), computed on the GPU on
   * WebGPU so that only the token id is read back (gpu-argmax.ts); the same token as the host argmax.
   */
  decodeArgmax(token: number): Promise<number> {
    return this.enqueue([token], "decode", (tokens) => this.forwardArgmax("decode", tokens));
  }

  /**
   * Append one token; returns the next token as `sampler` picks it from decode(token)'s logits (with
   * `history` for its penalties), sampled on the GPU on WebGPU so that only the token id (and its logprob)
   * is read back (runtime/gpu-sampler.ts); the same token as sampler.sample(decode(token), history).
   */
  decodeSample(token: number, sampler: Sampler, history: TokenHistory): Promise<SampledToken> {
    return this.enqueue([token], "decode", (tokens) =>
      this.timed("decode", tokens, (timing) => this.fns.runSample("decode", tokens, this.kv, SEQ, sampler, history, timing)),
    );
  }

  /**
   * Greedy continuation: prefill `ids` (appended to the current sequence), then argmax + decode until
   * `maxNewTokens` tokens, a stop token, or a full context window. As in the native twin, the last returned token has not been
   * fed to the model yet (decode(it) continues the sequence).
   */
  greedy(ids: Int32Array | readonly number[], maxNewTokens: number, opts: GreedyOptions = {}): Promise<number[]> {
    if (!Number.isSafeInteger(maxNewTokens) || maxNewTokens < 1) {
      return Promise.reject(new RangeError(`maxNewTokens must be a positive integer, got ${maxNewTokens}`));
    }
    const stop = new Set(opts.stopTokens ?? []);
    return this.enqueue(ids, "greedy", async (tokens) => {
      const out = [argmax(await this.prefillNow(tokens))];
      if (!stop.has(out[0] as number)) await this.greedyNow(out, maxNewTokens, (t) => stop.has(t));
      return out;
    });
  }

  /**
   * Greedy continuation from `token` (not fed yet): decode it, then argmax + decode until `maxNewTokens`
   * new tokens, a stop token, or a full context window. Returns the new tokens; as in greedy(), the last
   * one has not been fed. The same tokens as decodeArgmax step by step; on WebGPU the steps are pipelined
   * (greedyNow).
   */
  decodeGreedy(token: number, maxNewTokens: number, opts: GreedyOptions = {}): Promise<number[]> {
    if (!Number.isSafeInteger(maxNewTokens) || maxNewTokens < 1) {
      return Promise.reject(new RangeError(`maxNewTokens must be a positive integer, got ${maxNewTokens}`));
    }
    const stop = new Set(opts.stopTokens ?? []);
    const onToken = opts.onToken;
    const ends = onToken === undefined ? (t: number) => stop.has(t) : (t: number, canFeed: boolean) => onToken(t, canFeed) === false || stop.has(t);
    return this.enqueue([token], "decodeGreedy", async ([first]) => {
      const out = [first as number];
      await this.greedyNow(out, maxNewTokens + 1, ends);
      return out.slice(1);
    });
  }

  /**
   * Sampled continuation from `token` (not fed yet), for a sampler without penalties (Sampler.historyFree):
   * decode it, then sample + decode, each new token (with its logprobs) going to `onToken` with whether
   * it can still be fed; it returns false to end after that token (then not fed), and the loop also ends
   * when the context window is full. `history` is the generation's (the caller pushes each token; only
   * the host fallback reads it). The same tokens as decodeSample step by step for the same seed: on WebGPU
   * the steps are pipelined as in decodeGreedy, the next position planned ahead (Sampler.gpuPlanAhead);
   * where the GPU's answer does not let that plan stand (a position it hands back to the host, or one that
   * keeps its uniform number), the step launched ahead is undone and redone as the step-by-step loop
   * would run it. Returns how many tokens were fed (the first included).
   */
  decodeSampled(token: number, sampler: Sampler, history: TokenHistory, onToken: (sampled: SampledToken, canFeed: boolean) => boolean): Promise<number> {
    if (!sampler.historyFree) return Promise.reject(new RangeError("decodeSampled needs a sampler without penalties"));
    return this.enqueue([token], "decodeSampled", ([first]) => this.sampledNow(first as number, sampler, history, onToken));
  }

  /**
   * Continuation from `token` (not fed yet) where the host picks each next token from the logits (penalties,
   * grammars, sampling on the host): `pick(logits, canFeed)` gets each position's logits, with whether the
   * context window has room to feed another token, and returns the token to feed next or null to end (it
   * must end when canFeed is false). Returns how many tokens were fed (the first included). The same tokens
   * and cache as decode() step by step. On WebGPU (pipelinesHostFed) step k + 1 is encoded while the GPU
   * runs step k and its logits come back, and submitted once `pick` has written its token
   * (DecoderFunctions.encodeAhead): the host's encoding overlaps the GPU's work and the readback. A step
   * encoded ahead that is not fed (the end, or `pick` throwing) is run with token 0 and dropped (kv popN).
   */
  decodePicked(token: number, pick: (logits: Float32Array, canFeed: boolean) => number | null | Promise<number | null>): Promise<number> {
    return this.enqueue([token], "decodePicked", ([first]) => this.pickedNow(first as number, pick));
  }

  /** Whether decodePicked encodes its steps ahead here (pipelinesGreedy, and Hearth's WebGPU launch path). */
  get pipelinesHostFed(): boolean {
    return this.pipelinesGreedy && this.fns.canEncodeAhead;
  }

  private async pickedNow(first: number, pick: (logits: Float32Array, canFeed: boolean) => number | null | Promise<number | null>): Promise<number> {
    const room = (): boolean => this.sequenceLength < this.maxSequenceLength;
    if (!this.pipelinesHostFed) {
      let fed = 0;
      for (let token: number | null = first; token !== null; ) {
        const logits = await this.forward("decode", Int32Array.of(token));
        fed++;
        const canFeed = room();
        token = await pick(logits, canFeed); // a throw leaves the cache consistent: the step was fed
        if (!canFeed) break;
        if (token !== null) this.validate([token], "decodePicked");
      }
      return fed;
    }
    return this.pipelined(async (count) => {
      const encode = (): HostFedStep => {
        const timing: ForwardTiming = { submitMs: 0, syncMs: 0 };
        const step = this.fns.encodeAhead(this.kv, SEQ, timing);
        count.submitMs += timing.submitMs;
        count.fed++;
        return step;
      };
      const feed = (step: HostFedStep, token: number): Promise<Float32Array> => {
        const p = step.feed(token);
        p.catch(() => {}); // awaited below, or abandoned after an earlier failure: never unhandled
        return p;
      };
      const undo = async (step: HostFedStep): Promise<void> => {
        await this.undoAhead(feed(step, 0));
        count.fed--;
      };
      let step = encode();
      let pending = feed(step, first);
      for (;;) {
        const canFeed = room();
        // Encoded while the GPU runs `pending`, unless `pending` is being run again (see HostFedStep.intact).
        let ahead = canFeed && step.intact ? encode() : null;
        if (ahead !== null) this.launchedAhead.steps++;
        const logits = await pending;
        let token: number | null;
        try {
          token = await pick(logits, canFeed);
          if (token !== null && canFeed) this.validate([token], "decodePicked");
        } catch (err) {
          if (ahead !== null) await undo(ahead);
          throw new CallerError(err);
        }
        if (token === null || !canFeed) {
          if (ahead !== null) await undo(ahead);
          break;
        }
        ahead ??= encode();
        step = ahead;
        pending = feed(step, token);
      }
      return count.fed;
    });
  }

  /** Whether greedy / decodeGreedy pipeline their steps here (WebGPU, float32 logits, a cache that does not slide). */
  get pipelinesGreedy(): boolean {
    return this.fns.canLaunchAhead && this.kv.options.slidingWindow <= 0;
  }

  /**
   * Append greedy tokens to `out` (its last token not fed yet) until it holds `limit`, ends with a stop
   * token, or the context window is full.
   *
   * On WebGPU (float32 logits, a cache that does not slide) the steps are pipelined: step k + 1 is encoded
   * and submitted before step k's token is read back, its input token taken on the GPU from step k's argmax
   * (DecoderFunctions.launchArgmax), so the host's encoding overlaps the GPU's work instead of alternating
   * with it. A step is launched ahead only where the sequential loop would run it whatever step k's token
   * is (below the limit and the window); when that token is a stop token, the step fed with it is undone
   * (kv popN), so the cache ends as the sequential loop leaves it.
   */
  private async greedyNow(out: number[], limit: number, ends: (token: number, canFeed: boolean) => boolean): Promise<void> {
    const last = (): number => out[out.length - 1] as number;
    const canFeed = (): boolean => out.length < limit && this.sequenceLength < this.maxSequenceLength;
    if (!this.pipelinesGreedy) {
      while (canFeed()) {
        out.push(await this.forwardArgmax("decode", Int32Array.of(last())));
        if (ends(last(), canFeed())) return;
      }
      return;
    }
    if (!canFeed()) return;
    await this.pipelined(async (count) => {
      const launch = (token: number | null): Promise<number> => {
        const timing: ForwardTiming = { submitMs: 0, syncMs: 0 };
        const p = this.fns.launchArgmax(token, this.kv, SEQ, timing);
        p.catch(() => {}); // awaited below, or abandoned after an earlier failure: never unhandled
        count.submitMs += timing.submitMs;
        count.fed++;
        return p;
      };
      let pending = launch(last());
      for (;;) {
        // the step fed with `pending`'s token, launched before that token is known
        const ahead = out.length + 1 < limit && this.sequenceLength < this.maxSequenceLength ? launch(null) : null;
        if (ahead !== null) this.launchedAhead.steps++;
        out.push(await pending);
        let end: boolean;
        try {
          end = ends(last(), ahead !== null);
        } catch (err) {
          if (ahead !== null) {
            await this.undoAhead(ahead);
            count.fed--;
          }
          throw new CallerError(err);
        }
        if (ahead === null) break; // out is at the limit or the window is full: the loop ends either way
        if (end) {
          await this.undoAhead(ahead);
          count.fed--;
          break;
        }
        pending = ahead;
      }
    });
  }

  private async sampledNow(
    first: number,
    sampler: Sampler,
    history: TokenHistory,
    onToken: (sampled: SampledToken, canFeed: boolean) => boolean,
  ): Promise<number> {
    const vocab = this.config.vocab_size;
    const room = (): boolean => this.sequenceLength < this.maxSequenceLength;
    let fed = 0;
    const firstPlan = this.pipelinesGreedy ? sampler.gpuPlan(vocab, history) : null;
    if (firstPlan === null) {
      // not pipelined here: the step-by-step loop
      let token = first;
      while (room()) {
        const ids = Int32Array.of(token);
        const sampled = await this.timed("decode", ids, (timing) => this.fns.runSample("decode", ids, this.kv, SEQ, sampler, history, timing));
        fed++;
        if (onToken(sampled, room()) === false || !room()) break;
        token = sampled.token;
      }
      return fed;
    }
    return this.pipelined(async (count) => {
      const launch = (token: number | null, p: GpuSamplingPlan): Promise<GpuSamplingOutcome> => {
        const timing: ForwardTiming = { submitMs: 0, syncMs: 0 };
        const out = this.fns.launchSample(token, this.kv, SEQ, p, timing);
        out.catch(() => {}); // awaited below, or abandoned after an earlier failure: never unhandled
        count.submitMs += timing.submitMs;
        count.fed++;
        return out;
      };
      const undo = async (step: Promise<unknown>, ahead: boolean): Promise<void> => {
        await (ahead ? this.undoAhead(step) : this.undoStep(step));
        count.fed--;
      };
      let plan = firstPlan;
      let input = first; // the token the pending step feeds
      let pending = launch(first, plan);
      for (;;) {
        const canFeed = room();
        const aheadPlan = canFeed ? sampler.gpuPlanAhead(vocab) : null;
        const ahead = aheadPlan === null ? null : launch(null, aheadPlan);
        if (ahead !== null) this.launchedAhead.steps++;
        const outcome = await pending;
        let sampled = sampler.gpuResult(plan, outcome);
        const holds = ahead !== null && sampled !== null && sampler.aheadHolds;
        if (ahead !== null && !holds) await undo(ahead, true);
        if (sampled === null) {
          // The host decides this position from its logits, which the step launched ahead may have
          // overwritten: undo this step too and run it again alone (the same plan: its number was kept).
          await undo(pending, false);
          sampled = await this.fns.runSample("decode", Int32Array.of(input), this.kv, SEQ, sampler, history);
          count.fed++;
        }
        if (!holds) sampler.dropAhead();
        let end: boolean;
        try {
          end = onToken(sampled, canFeed) === false || !canFeed;
        } catch (err) {
          if (holds) await undo(ahead as Promise<GpuSamplingOutcome>, true);
          throw new CallerError(err);
        }
        if (end) {
          if (holds) await undo(ahead as Promise<GpuSamplingOutcome>, true);
          break;
        }
        input = sampled.token;
        if (holds) {
          sampler.commitAhead();
          pending = ahead as Promise<GpuSamplingOutcome>;
          plan = aheadPlan as GpuSamplingPlan;
        } else {
          const again = sampler.gpuPlan(vocab, history);
          if (again === null) throw new Error("the GPU sampling plan changed between positions");
          plan = again;
          pending = launch(input, plan);
        }
      }
      return count.fed;
    });
  }

  /**
   * Run a pipelined decode loop: `body` counts the steps it feeds and its host encoding time in `count`.
   * A failure of the model marks it broken (the cache's state is unknown until reset()); a CallerError
   * (the caller's callback threw, after the loop undid what it launched ahead) is rethrown as its error
   * and leaves the model usable. The decode stats get the fed steps and the loop's time either way.
   */
  private async pipelined<T>(body: (count: { fed: number; submitMs: number }) => Promise<T>): Promise<T> {
    this.live();
    const t0 = performance.now();
    const count = { fed: 0, submitMs: 0 };
    try {
      return await body(count);
    } catch (err) {
      if (err instanceof CallerError) throw err.error; // the caller's callback failed; the cache is consistent
      if (this.state !== "lost") this.state = "broken"; // failed midway: the cache's state is unknown until reset()
      throw err;
    } finally {
      const ms = performance.now() - t0;
      const d = this.stats_.decode;
      d.tokens += count.fed;
      d.calls += count.fed;
      d.ms += ms;
      this.stats_.submitMs += count.submitMs;
      this.stats_.syncMs += Math.max(0, ms - count.submitMs);
    }
  }

  /** Wait for a step launched ahead that is not needed, then drop its token from the KV cache. */
  private async undoAhead(ahead: Promise<unknown>): Promise<void> {
    this.launchedAhead.undone++;
    await this.undoStep(ahead);
  }

  /** Wait for a launched step, then drop its token from the KV cache (the last one). */
  private async undoStep(step: Promise<unknown>): Promise<void> {
    await step;
    const tvm = this.pkg.lib.tvm;
    tvm.beginScope();
    try {
      this.kv.popN(SEQ, 1);
    } finally {
      tvm.endScope();
    }
  }

  /**
   * Keep only the first `length` tokens of the KV cache (drop the rest with `kv_state_popn`), so a
   * prompt that diverges inside the cache reuses the common prefix. Queued like a forward; refuses a
   * model that is broken, lost or disposed, and a length outside [0, sequenceLength].
   */
  truncate(length: number): Promise<void> {
    return this.queue.run(() => {
      this.live();
      const current = this.kv.sequenceLength(SEQ) ?? 0;
      if (!Number.isSafeInteger(length) || length < 0 || length > current) {
        throw new RangeError(`truncate(${length}): the KV cache holds ${current} tokens; pass a length in [0, ${current}]`);
      }
      if (length === current) return;
      const tvm = this.pkg.lib.tvm;
      tvm.beginScope();
      try {
        this.kv.popN(SEQ, current - length);
      } finally {
        tvm.endScope();
      }
    });
  }

  /** Clear the KV cache and start the sequence afresh (also recovers from a failed forward). */
  reset(opts: { keepStats?: boolean } = {}): Promise<void> {
    return this.queue.run(() => {
      this.live(true);
      const tvm = this.pkg.lib.tvm;
      tvm.beginScope();
      try {
        this.kv.clear();
        this.kv.addSequence(SEQ);
      } finally {
        tvm.endScope();
      }
      this.state = "ready";
      if (opts.keepStats !== true) this.resetStats();
    });
  }

  /** Timing statistics since load (or the last reset / resetStats). */
  stats(): DecoderStats {
    const s = this.stats_;
    const rate = (p: PhaseStats): PhaseStats => ({ ...p, tokensPerSec: p.ms > 0 ? (p.tokens * 1000) / p.ms : 0 });
    const d = this.pkg.lib.dispatchStats;
    return {
      load: { ...s.load },
      prefill: rate(s.prefill),
      decode: rate(s.decode),
      syncMs: s.syncMs,
      submitMs: s.submitMs,
      gpuSampling: { ...this.fns.gpuSampling },
      launchedAhead: { ...this.launchedAhead },
      hostFed: { ...this.fns.hostFed },
      ...(d === undefined ? {} : { dispatch: { ...d, launchesByKernel: { ...d.launchesByKernel } } }),
    };
  }

  resetStats(): void {
    this.stats_.prefill = phase();
    this.stats_.decode = phase();
    this.stats_.syncMs = 0;
    this.stats_.submitMs = 0;
  }

  /** Release the GPU memory, the runtime and the device (after queued work finishes). Idempotent. */
  dispose(): Promise<void> {
    return this.queue.run(() => {
      if (this.state === "disposed") return;
      const wasLost = this.lost !== null;
      this.state = "disposed";
      this.lossWatch?.expect(); // the loss our dispose causes is not an error
      if (wasLost) return; // tvmjs already disposed the runtime; its objects are gone
      try {
        this.kv.dispose();
        this.fns.dispose();
        this.params.dispose();
      } finally {
        this.pkg.dispose();
      }
    });
  }

  // -- internals (run inside the queue) ----------------------------------------------------------

  private live(allowBroken = false): void {
    if (this.state === "disposed") throw new DecoderStateError("the model has been disposed");
    if (this.state === "lost" && this.lost !== null) throw this.lost;
    if (this.state === "broken" && !allowBroken) {
      throw new DecoderStateError("a previous forward failed midway, so the KV cache is inconsistent: call reset()");
    }
  }

  /**
   * Validate and copy `ids` now (a caller may reuse its array), then queue `job`. Invalid ids reject
   * the returned promise; nothing is queued for them.
   */
  private enqueue<T>(ids: Int32Array | readonly number[], what: string, job: (tokens: Int32Array) => Promise<T>): Promise<T> {
    let tokens: Int32Array;
    try {
      tokens = this.validate(ids, what);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.queue.run(() => job(tokens));
  }

  private validate(ids: Int32Array | readonly number[], what: string): Int32Array {
    if (ids.length === 0) throw new RangeError(`${what}: no token ids`);
    const vocab = this.config.vocab_size;
    for (let i = 0; i < ids.length; i++) {
      const t = ids[i] as number;
      if (!Number.isInteger(t) || t < 0 || t >= vocab) {
        throw new RangeError(`${what}: token id ${t} at position ${i} is outside the vocabulary [0, ${vocab})`);
      }
    }
    return Int32Array.from(ids); // a copy: the job may run after the caller changed its array
  }

  private async prefillNow(ids: Int32Array): Promise<Float32Array> {
    this.live();
    const chunk = this.prefillChunkSize;
    // Refuse before touching the cache if the whole prompt cannot fit.
    if (this.sequenceLength + ids.length > this.maxSequenceLength) {
      throw new ContextWindowExceededError(this.sequenceLength, ids.length, this.maxSequenceLength);
    }
    let logits: Float32Array | undefined;
    for (let start = 0; start < ids.length; start += chunk) {
      // Always the `prefill` function, even for a 1-token chunk: the native twin does the same, so
      // the two builds run the same kernels on the same inputs.
      logits = await this.forward("prefill", ids.subarray(start, start + chunk));
    }
    return logits as Float32Array;
  }

  private forward(kind: ForwardKind, ids: Int32Array): Promise<Float32Array> {
    return this.timed(kind, ids, (timing) => this.fns.run(kind, ids, this.kv, SEQ, timing));
  }

  /** forward, returning the greedy next token instead of the logits (computed on the GPU where it can be). */
  private forwardArgmax(kind: ForwardKind, ids: Int32Array): Promise<number> {
    return this.timed(kind, ids, (timing) => this.fns.runArgmax(kind, ids, this.kv, SEQ, timing));
  }

  private async timed<T>(kind: ForwardKind, ids: Int32Array, call: (timing: ForwardTiming) => Promise<T>): Promise<T> {
    this.live();
    this.kv.checkAppend([SEQ], [ids.length]); // window / chunk errors: thrown before the cache is touched
    const timing: ForwardTiming = { submitMs: 0, syncMs: 0 };
    const t0 = performance.now();
    let out: T;
    try {
      out = await call(timing);
    } catch (err) {
      if (this.state !== "lost") this.state = "broken"; // failed midway: the cache's state is unknown until reset()
      throw err;
    }
    const p = kind === "prefill" ? this.stats_.prefill : this.stats_.decode;
    p.tokens += ids.length;
    p.calls += 1;
    p.ms += performance.now() - t0;
    this.stats_.syncMs += timing.syncMs;
    this.stats_.submitMs += timing.submitMs;
    return out;
  }
}
