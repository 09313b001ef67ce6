/**
 * EncoderModel: a compiled text-encoder package (sentence embeddings, e.g. all-MiniLM-L6-v2) running on
 * WebGPU (or tvmjs's CPU device for a wasm-cpu build). It implements the RAG layer's `Embedder`.
 *
 *   const enc = await EncoderModel.load(url, { fetch });            // verified package -> GPU
 *   const vecs = await enc.embed(["a sentence", "another one"]);    // Float32Array(dim) each
 *   const { vectors, truncated } = await enc.embedDetailed(texts);  // + which texts were cut
 *   enc.stats();                                                    // texts/s, tokens/s, calls per bucket
 *   await enc.dispose();
 *
 * The package exports one function per static shape bucket (see config.ts):
 * `embed_b{B}_s{S}(input_ids int32[B,S], attention_mask int32[B,S], params) -> float32[B, hidden]`,
 * pooled (and L2-normalised when the checkpoint says so) inside.
 *
 * Per embed call: tokenize each text with the package's tokenizer.json ([CLS]/[SEP] added);
 * a text longer than `maxTokens` (max_seq_length, capped by the largest bucket) is truncated to it, the
 * way sentence-transformers does (`truncation=True, max_length=max_seq_length`: the text is cut, the
 * special tokens stay), and that is REPORTED: `embedDetailed` returns `truncated[i]`, `embed` calls
 * `onTruncate` (default: a warning through `logger`), and `truncation: "error"` refuses instead. Then
 * length-bucket the batch (plan.ts: the same plan as the Python driver), run each call, read the
 * [B, hidden] block back, drop padding rows, and return the vectors in input order.
 *
 * An empty or whitespace-only text tokenizes to [CLS] [SEP] and gets that sequence's embedding (a fixed,
 * finite vector), exactly as sentence-transformers and the native driver do.
 *
 * Every GPU job goes through one SerialQueue, so concurrent embed calls never interleave on the device.
 */
import type { FastDispatchStats } from "../runtime/webgpu-dispatch.js";
import type { AdapterDescription } from "../runtime/gpu.js";
import { chooseLoadDevice, loadOn, webgpuSkippedReason } from "../load/load-device.js";
import { watchDeviceLost, type DeviceLossWatch, type DeviceLostError } from "../runtime/device-lost.js";
import type { EncoderBucket, EncoderConfig } from "./config.js";
import { loadEncoderPackage, type EncoderPackageLoadOptions, type LoadedEncoderPackage } from "./load.js";
import { maxBucketSeq, planBatches, runPlanned, type PlannedCall } from "./plan.js";
import { tokenizeBatchForEncoder, tokenizeForEncoder, truncatedIndices, type EncoderBatchTokens } from "./tokens.js";
import { SerialQueue } from "../runtime/serial-queue.js";
import type { Logger } from "../runtime/tvm.js";
import { isTvmTensor } from "../runtime/tvmjs-llm.js";
import type { TvmObject, TvmPackedFunc, TvmTensor } from "../runtime/tvmjs-types.js";
import { PackageCompatibilityError, type PackageCacheReport, type PackageLoadTimings } from "../load/package.js";
import type { PackageManifest } from "../load/manifest.js";
import type { Embedder } from "../rag/types.js";
import { loadTokenizer } from "../tokenize/load.js";
import type { Tokenizer } from "../tokenize/tokenizer.js";
import { type TruncationReport, EncoderStateError, InputTooLongError } from "../errors/model.js";
export { type TruncationReport, EncoderStateError, InputTooLongError } from "../errors/model.js";

/** What `embed` does with a text longer than `maxTokens`. */
export type TruncationPolicy = "truncate" | "error";

export interface EncoderLoadOptions extends Omit<EncoderPackageLoadOptions, "device"> {
  /** Device to run on (owned by the model from then on). Default: `requestGPU({ gpu })`. */
  device?: GPUDevice | undefined;
  /** WebGPU entry point for the default device (default navigator.gpu). */
  gpu?: GPU | undefined;
  /**
   * The Embedder id (default `<manifest model_id>/<quantization>`: the RAG index refuses to mix vectors
   * of two ids, and two quantizations give different vectors).
   */
  modelId?: string | undefined;
  /** "truncate" (default: cut to maxTokens and report it) or "error" (reject with InputTooLongError). */
  truncation?: TruncationPolicy | undefined;
  /** Called by `embed` when texts were truncated (default: a warning through `logger`, else console.warn). */
  onTruncate?: ((report: TruncationReport) => void) | undefined;
  /** Called once if the WebGPU device is lost; later calls reject with that DeviceLostError. */
  onDeviceLost?: ((err: DeviceLostError) => void) | undefined;
}

export interface EmbedOptions {
  signal?: AbortSignal | undefined;
  /** Overrides the model's truncation policy for this call. */
  truncation?: TruncationPolicy | undefined;
}

export interface EmbedDetailedResult {
  /** One Float32Array(dim) per text, in input order. */
  vectors: Float32Array[];
  /** Whether text i was longer than maxTokens and was cut to it. */
  truncated: boolean[];
  /** Tokens of text i before truncation, special tokens included (countTokens). */
  tokenCounts: number[];
  /** Bucket function -> calls made. */
  calls: Record<string, number>;
  /** Wall time of the GPU part (queue wait excluded), ms. */
  ms: number;
}

export interface EncoderLoadInfo {
  deviceKind: "webgpu" | "cpu";
  target: string;
  variant: string | null;
  cache: PackageCacheReport;
  /** Buckets left out because they exceed this device's buffer limits. */
  skippedBuckets: { fn: string; reason: string }[];
  webgpuUnavailable: string | null;
}

export interface EncoderStats {
  load: PackageLoadTimings & { requestDeviceMs: number; setupMs: number; tokenizerMs: number; totalMs: number; verifiedBytes: number };
  embed: {
    /** embed / embedDetailed / embedTokens calls. */
    requests: number;
    texts: number;
    /** Real tokens (after truncation). */
    tokens: number;
    /** Tokens the bucket shapes processed (B x S per call): tokens / paddedTokens is the bucket efficiency. */
    paddedTokens: number;
    /** Bucket function calls. */
    calls: number;
    /** Per bucket function. */
    bucketCalls: Record<string, number>;
    truncatedTexts: number;
    /** GPU part (upload + run + readback), summed (ms). */
    ms: number;
    /** Of which waiting for the device + readback (ms). */
    syncMs: number;
    /** Tokenization, summed (ms). */
    tokenizeMs: number;
    textsPerSec: number;
    tokensPerSec: number;
  };
  /** The WebGPU launch path's counters since load, incl. pipelines compiled at first launch (absent on the CPU). */
  dispatch?: FastDispatchStats;
}

function emptyEmbedStats(): EncoderStats["embed"] {
  return {
    requests: 0,
    texts: 0,
    tokens: 0,
    paddedTokens: 0,
    calls: 0,
    bucketCalls: {},
    truncatedTexts: 0,
    ms: 0,
    syncMs: 0,
    tokenizeMs: 0,
    textsPerSec: 0,
    tokensPerSec: 0,
  };
}

export class EncoderModel implements Embedder {
  readonly modelId: string;
  /** Vector length (hidden size). */
  readonly dim: number;
  /** Longest input embedded whole, in tokens, special tokens included. */
  readonly maxTokens: number;
  readonly config: EncoderConfig;
  readonly manifest: PackageManifest;
  readonly baseUrl: string;
  readonly tokenizer: Tokenizer;
  /** The bucket functions in use (sorted by seq, batch). */
  readonly buckets: readonly EncoderBucket[];
  readonly adapter: AdapterDescription | null;
  readonly loadInfo: EncoderLoadInfo;
  /** Whether vectors come out L2-normalised (the checkpoint's Normalize module). */
  readonly normalized: boolean;

  private readonly queue = new SerialQueue();
  private readonly fns = new Map<string, TvmPackedFunc>();
  private readonly hosts = new Map<number, TvmTensor>();
  private readonly loadStats: EncoderStats["load"];
  private embedStats = emptyEmbedStats();
  private state: "ready" | "disposed" | "lost" = "ready";
  private lost: DeviceLostError | null = null;
  private lossWatch: DeviceLossWatch | undefined;
  private readonly truncation: TruncationPolicy;
  private readonly onTruncate: (r: TruncationReport) => void;
  private readonly onDeviceLost: ((err: DeviceLostError) => void) | undefined;

  private constructor(
    private readonly pkg: LoadedEncoderPackage,
    private readonly params: TvmObject,
    fns: Map<string, TvmPackedFunc>,
    tokenizer: Tokenizer,
    adapter: AdapterDescription | null,
    load: EncoderStats["load"],
    opts: EncoderLoadOptions,
    webgpuUnavailable: string | null,
  ) {
    this.config = pkg.config;
    this.manifest = pkg.manifest;
    this.baseUrl = pkg.baseUrl;
    this.buckets = pkg.buckets;
    this.dim = pkg.config.hiddenSize;
    this.maxTokens = Math.min(pkg.config.maxSeqLength, maxBucketSeq(pkg.buckets));
    this.modelId = opts.modelId ?? `${pkg.manifest.model_id || pkg.baseUrl}/${pkg.config.quantization || pkg.manifest.quantization || "unknown"}`;
    this.normalized = pkg.config.normalize;
    this.tokenizer = tokenizer;
    this.adapter = adapter;
    this.loadStats = load;
    for (const [k, f] of fns) this.fns.set(k, f);
    this.truncation = opts.truncation ?? "truncate";
    const log: Logger = opts.logger ?? ((m) => console.warn(m));
    this.onTruncate =
      opts.onTruncate ??
      ((r) =>
        log(
          `${this.modelId}: ${r.indices.length} text(s) longer than ${r.maxTokens} tokens were truncated ` +
            `(indices ${r.indices.slice(0, 10).join(", ")}${r.indices.length > 10 ? ", ..." : ""}; tokens ${r.tokens.slice(0, 10).join(", ")})`,
        ));
    this.onDeviceLost = opts.onDeviceLost;
    this.loadInfo = {
      deviceKind: pkg.deviceKind,
      target: pkg.target,
      variant: pkg.variant,
      cache: pkg.cache,
      skippedBuckets: pkg.skippedBuckets.map((s) => ({ fn: s.bucket.fn, reason: s.reason })),
      webgpuUnavailable,
    };
  }

  /**
   * Fetch + verify the package at `baseUrl` (the package folder, or the model folder with `variant` /
   * `variants`), load it on WebGPU, read its tokenizer. Without WebGPU and with no `device`/`target`
   * given, a wasm-cpu build is used when the package has one.
   */
  static async load(baseUrl: string, opts: EncoderLoadOptions = {}): Promise<EncoderModel> {
    const t0 = performance.now();
    const chosen = await chooseLoadDevice(opts, "hearth-encoder");
    const t1 = performance.now();
    const { value: pkg, used } = await loadOn(
      chosen,
      (on): Promise<LoadedEncoderPackage> =>
        loadEncoderPackage(baseUrl, {
          ...opts,
          device: on.device,
          target: on.target,
          preferThreads: opts.preferThreads ?? on.cpuByChoice,
          adapterInfo: opts.adapterInfo ?? on.adapter ?? undefined,
        }),
    );
    const { device, adapter } = used;
    const t2 = performance.now();
    let tokenizer: Tokenizer;
    let tokenizerMs: number;
    try {
      const files = pkg.manifest.files.map((f) => f.path);
      if (!files.includes("tokenizer.json")) {
        throw new PackageCompatibilityError(`${pkg.baseUrl} has no tokenizer.json; the SDK tokenizes with it (rebuild the package)`, ["tokenizer.json"]);
      }
      const dec = new TextDecoder();
      const json = dec.decode(await pkg.readFile("tokenizer.json", opts.signal));
      const cfg = files.includes("tokenizer_config.json") ? dec.decode(await pkg.readFile("tokenizer_config.json", opts.signal)) : undefined;
      tokenizer = await loadTokenizer(cfg === undefined ? { tokenizerJson: json } : { tokenizerJson: json, tokenizerConfig: cfg });
      tokenizerMs = performance.now() - t2;
    } catch (err) {
      pkg.dispose();
      throw err;
    }

    const t3 = performance.now();
    const tvm = pkg.lib.tvm;
    let params: TvmObject | undefined;
    const fns = new Map<string, TvmPackedFunc>();
    let failure: { error: unknown } | undefined;
    tvm.beginScope();
    try {
      params = tvm.detachFromCurrentScope(tvm.getParamsFromCacheByName(pkg.config.params.map((p) => p.name)));
      for (const k of pkg.buckets) {
        let fn: TvmPackedFunc;
        try {
          fn = pkg.lib.vm.getFunction(k.fn);
        } catch {
          throw new PackageCompatibilityError(`the model library does not export ${k.fn}, which mlc-chat-config.json lists`, [`function:${k.fn}`]);
        }
        fns.set(k.fn, tvm.detachFromCurrentScope(fn));
      }
    } catch (error) {
      failure = { error };
    } finally {
      tvm.endScope();
    }
    if (failure !== undefined || params === undefined) {
      for (const f of fns.values()) f.dispose();
      params?.dispose();
      pkg.dispose();
      throw failure?.error ?? new Error("encoder setup failed");
    }
    const t4 = performance.now();
    const model = new EncoderModel(
      pkg,
      params,
      fns,
      tokenizer,
      adapter,
      {
        ...pkg.timings,
        requestDeviceMs: t1 - t0,
        setupMs: t4 - t3,
        tokenizerMs,
        totalMs: t4 - t0,
        verifiedBytes: pkg.verifiedBytes,
      },
      opts,
      webgpuSkippedReason(used),
    );
    if (device !== undefined && pkg.deviceKind === "webgpu") {
      model.lossWatch = watchDeviceLost(device, (err) => model.deviceLostNow(err));
    }
    return model;
  }

  private deviceLostNow(err: DeviceLostError): void {
    if (this.state === "disposed") return;
    this.state = "lost";
    this.lost = err;
    try {
      this.onDeviceLost?.(err);
    } catch {
      // never an unhandled rejection from a callback
    }
  }

  /** The device loss, once it happened; else null. */
  get deviceLost(): DeviceLostError | null {
    return this.lost;
  }

  /** Whether this device computes in float16. */
  get usesF16(): boolean {
    return this.pkg.usesF16;
  }

  // -- tokens ------------------------------------------------------------------------------------

  /** Tokens `embed` would consume for `text` before truncation, [CLS]/[SEP] included. */
  countTokens(text: string): number {
    if (typeof text !== "string") throw new TypeError(`countTokens: expected a string, got ${typeof text}`);
    return this.tokenizer.encode(text).length;
  }

  /** The ids `embed` uses for `text` (truncated to maxTokens) and whether it was truncated. */
  tokenize(text: string): { ids: Int32Array; tokens: number; truncated: boolean } {
    return tokenizeForEncoder(this.tokenizer, text, this.maxTokens);
  }

  // -- embedding ---------------------------------------------------------------------------------

  /** Embedder: one Float32Array(dim) per text, in order. Truncation is reported through `onTruncate`. */
  async embed(texts: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    const r = await this.embedDetailed(texts, { signal });
    const indices = truncatedIndices(r.truncated);
    if (indices.length > 0) {
      try {
        this.onTruncate({ indices, tokens: indices.map((i) => r.tokenCounts[i] as number), maxTokens: this.maxTokens });
      } catch {
        // a throwing callback must not lose the vectors
      }
    }
    return r.vectors;
  }

  /** Vectors plus, per text, whether it was truncated and its token count; and the calls made. */
  embedDetailed(texts: readonly string[], opts: EmbedOptions = {}): Promise<EmbedDetailedResult> {
    let tok: EncoderBatchTokens;
    const t0 = performance.now();
    try {
      this.live();
      opts.signal?.throwIfAborted();
      tok = tokenizeBatchForEncoder(this.tokenizer, texts, this.maxTokens);
      const policy = opts.truncation ?? this.truncation;
      if (policy === "error" && tok.truncated.some(Boolean)) {
        const indices = truncatedIndices(tok.truncated);
        throw new InputTooLongError({ indices, tokens: indices.map((i) => tok.tokenCounts[i] as number), maxTokens: this.maxTokens });
      }
    } catch (err) {
      return Promise.reject(err);
    }
    const tokenizeMs = performance.now() - t0;
    return this.queue.run(async () => {
      const run = await this.runAll(tok.ids, opts.signal);
      const s = this.embedStats;
      s.tokenizeMs += tokenizeMs;
      s.truncatedTexts += tok.truncated.filter(Boolean).length;
      return { vectors: run.vectors, truncated: tok.truncated, tokenCounts: tok.tokenCounts, calls: run.calls, ms: run.ms };
    });
  }

  /**
   * Embed already tokenized sequences (each at most maxTokens ids, special tokens included, ids in the
   * vocabulary). For parity tests and callers with their own tokenization.
   */
  embedTokens(sequences: readonly ArrayLike<number>[], signal?: AbortSignal): Promise<Float32Array[]> {
    let ids: Int32Array[];
    try {
      this.live();
      if (!Array.isArray(sequences)) throw new TypeError("embedTokens: expected an array of token id arrays");
      ids = sequences.map((seq, i) => {
        if (seq.length === 0) throw new RangeError(`embedTokens: sequence ${i} is empty`);
        if (seq.length > this.maxTokens) throw new RangeError(`embedTokens: sequence ${i} has ${seq.length} tokens, more than ${this.maxTokens}`);
        const a = Int32Array.from(seq);
        for (let j = 0; j < a.length; j++) {
          const t = seq[j] as number;
          if (!Number.isInteger(t) || t < 0 || t >= this.config.vocabSize) {
            throw new RangeError(`embedTokens: sequence ${i} position ${j}: token id ${t} is outside [0, ${this.config.vocabSize})`);
          }
        }
        return a;
      });
    } catch (err) {
      return Promise.reject(err);
    }
    return this.queue.run(async () => (await this.runAll(ids, signal)).vectors);
  }

  /** The bucket calls `embed` would make for texts with these token counts (after truncation). */
  plan(tokenCounts: readonly number[]): PlannedCall[] {
    return planBatches(tokenCounts, this.buckets);
  }

  private live(): void {
    if (this.state === "disposed") throw new EncoderStateError("the encoder has been disposed");
    if (this.state === "lost" && this.lost !== null) throw this.lost;
  }

  /** Inside the queue: plan, run every call, unsort (plan.ts runPlanned). */
  private async runAll(ids: Int32Array[], signal: AbortSignal | undefined): Promise<{ vectors: Float32Array[]; calls: Record<string, number>; ms: number }> {
    this.live();
    const t0 = performance.now();
    const r = await runPlanned(
      ids,
      this.buckets,
      this.dim,
      (call, inputs) => {
        this.live();
        return this.runCall(call, inputs);
      },
      signal,
    );
    const ms = performance.now() - t0;
    const s = this.embedStats;
    for (const [fn, n] of Object.entries(r.calls)) {
      s.bucketCalls[fn] = (s.bucketCalls[fn] ?? 0) + n;
      s.calls += n;
    }
    s.paddedTokens += r.paddedTokens;
    s.requests += 1;
    s.texts += ids.length;
    s.tokens += ids.reduce((n, t) => n + t.length, 0);
    s.ms += ms;
    return { vectors: r.vectors, calls: r.calls, ms };
  }

  /** One bucket call: upload ids + mask, run, copy [B, dim] to the host, wait, read. */
  private async runCall(call: PlannedCall, { inputIds, attentionMask }: { inputIds: Int32Array; attentionMask: Int32Array }): Promise<Float32Array> {
    const { batch, seq, fn: name } = call.bucket;
    const fn = this.fns.get(name);
    if (fn === undefined) throw new Error(`internal: no function ${name}`);
    const lib = this.pkg.lib;
    const tvm = lib.tvm;
    const dev = lib.device();
    tvm.beginScope();
    try {
      const inIds = tvm.empty([batch, seq], "int32", dev).copyFrom(inputIds);
      const inMask = tvm.empty([batch, seq], "int32", dev).copyFrom(attentionMask);
      const out = fn(inIds, inMask, this.params);
      if (!isTvmTensor(out) || out.dtype !== "float32" || out.shape.length !== 2 || out.shape[0] !== batch || out.shape[1] !== this.dim) {
        const what = isTvmTensor(out) ? `${out.dtype}[${out.shape.join(", ")}]` : String(out);
        throw new Error(`${name} returned ${what}, expected float32[${batch}, ${this.dim}]`);
      }
      const host = this.hostFor(batch);
      host.copyFrom(out);
      const t1 = performance.now();
      await dev.sync();
      const raw = host.toRawBytes();
      this.embedStats.syncMs += performance.now() - t1;
      if (raw.byteLength !== batch * this.dim * 4) throw new Error(`${name}: read back ${raw.byteLength} bytes, expected ${batch * this.dim * 4}`);
      return raw.byteOffset % 4 === 0 ? new Float32Array(raw.buffer as ArrayBuffer, raw.byteOffset, batch * this.dim) : new Float32Array(raw.slice().buffer);
    } finally {
      tvm.endScope();
    }
  }

  /** A persistent host tensor [batch, dim] float32 per batch size. */
  private hostFor(batch: number): TvmTensor {
    let h = this.hosts.get(batch);
    if (h === undefined) {
      const tvm = this.pkg.lib.tvm;
      h = tvm.detachFromCurrentScope(tvm.empty([batch, this.dim], "float32", tvm.cpu()));
      this.hosts.set(batch, h);
    }
    return h;
  }

  // -- stats / lifetime --------------------------------------------------------------------------

  stats(): EncoderStats {
    const e = this.embedStats;
    const sec = e.ms / 1000;
    const d = this.pkg.lib.dispatchStats;
    return {
      load: { ...this.loadStats },
      embed: { ...e, bucketCalls: { ...e.bucketCalls }, textsPerSec: sec > 0 ? e.texts / sec : 0, tokensPerSec: sec > 0 ? e.tokens / sec : 0 },
      ...(d === undefined ? {} : { dispatch: { ...d } }),
    };
  }

  resetStats(): void {
    this.embedStats = emptyEmbedStats();
  }

  /** Release the weights, functions, runtime and device (after queued work). Idempotent. */
  dispose(): Promise<void> {
    return this.queue.run(() => {
      if (this.state === "disposed") return;
      const wasLost = this.lost !== null;
      this.state = "disposed";
      this.lossWatch?.expect();
      if (wasLost) return; // tvmjs already disposed its runtime
      try {
        for (const h of this.hosts.values()) h.dispose();
        for (const f of this.fns.values()) f.dispose();
        this.params.dispose();
      } finally {
        this.hosts.clear();
        this.fns.clear();
        this.pkg.dispose();
      }
    });
  }
}
