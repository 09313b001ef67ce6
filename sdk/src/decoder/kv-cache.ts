/**
 * The model's paged KV cache (TVM's TIR `PagedKVCache`, created by the package's
 * `create_tir_paged_kv_cache` / `create_paged_kv_cache`) and its bookkeeping, MLC/WebLLM style:
 *
 *   kv_state_add_sequence(kv, seq)                      a sequence exists before its first token
 *   kv_state_begin_forward(kv, [seq...], [len...])     before each embed + prefill/decode call
 *   <model function>(embeds, kv, params)               attention appends to / reads the pages
 *   kv_state_end_forward(kv)                           after it
 *   kv_state_clear(kv), kv_state_remove_sequence(kv, seq)
 *   kv_state_popn(kv, seq, n)                          drop a sequence's last n tokens (prefix reuse)
 *   attention_kv_cache_enable_sliding_window_for_seq(kv, seq, window, 0)
 *                                                      a cache whose layers all slide (Mistral v0.1's,
 *                                                      Gemma 3's local layers'): it keeps the last `window` tokens per
 *                                                      sequence and frees older pages (WebLLM does the same)
 *
 * A model may create a PAIR of caches (an ffi Array; Gemma 3: its global layers' and its local layers',
 * hearth/models/gemma3.py): the model functions take the pair as they take a cache (`handle`), every
 * bookkeeping call goes to each cache, and the sliding window to the last one.
 *
 * Every method must run inside an open tvmjs scope (the caller's): the shape tuples made here are
 * attached to it. The cache object and the functions are detached and owned by this class.
 */
import type { TvmArray, TvmObject, TvmPackedFunc, TvmVirtualMachine } from "../runtime/tvmjs-types.js";
import type { TvmLLMInstance } from "../runtime/tvmjs-llm.js";
import { ContextWindowExceededError } from "../errors/model.js";
export { ContextWindowExceededError } from "../errors/model.js";

export interface KVCacheOptions {
  /** Sequences per forward (1 for single-stream chat). */
  maxBatchSize: number;
  /** Total tokens the cache holds over all sequences (the context window for one sequence). */
  maxTotalSeqLen: number;
  /** Most tokens one forward may append (the model's prefill_chunk_size). */
  prefillChunkSize: number;
  /** Tokens per page (MLC uses 16). */
  pageSize?: number | undefined;
  /**
   * mlc-chat-config's `sliding_window_size`: tokens each sequence keeps once it slides (the package's
   * attention window less the token being decoded), or -1 / undefined for a cache that never slides.
   */
  slidingWindow?: number | undefined;
}

/** KVCacheOptions with defaults filled in. */
export interface KVCacheConfig {
  maxBatchSize: number;
  maxTotalSeqLen: number;
  prefillChunkSize: number;
  pageSize: number;
  /** > 0: every sequence slides (see KVCacheOptions.slidingWindow); -1: none. */
  slidingWindow: number;
}

const CREATE_NAMES = ["create_tir_paged_kv_cache", "create_paged_kv_cache"] as const;

function vmFunction(vm: TvmVirtualMachine, names: readonly string[]): TvmPackedFunc {
  const errors: string[] = [];
  for (const name of names) {
    try {
      return vm.getFunction(name);
    } catch (err) {
      errors.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(`the model library exports none of ${names.join(", ")} (${errors.join("; ")})`);
}

export class PagedKVCache {
  readonly options: KVCacheConfig;
  /** What the model functions take: the cache, or the pair of caches. */
  readonly handle: TvmObject;
  /** The cache objects the bookkeeping calls go to: [handle], or the pair's elements. */
  private readonly parts: readonly TvmObject[];
  private readonly fns: {
    add: TvmPackedFunc;
    remove: TvmPackedFunc;
    clear: TvmPackedFunc;
    begin: TvmPackedFunc;
    end: TvmPackedFunc;
    enableSlidingWindow: TvmPackedFunc | undefined;
  };
  private readonly lengths = new Map<number, number>();
  /** vm.builtin.kv_state_popn, looked up on first use (detached, owned). */
  private popn: TvmPackedFunc | undefined;
  private disposed = false;

  private constructor(
    private readonly tvm: TvmLLMInstance,
    handle: TvmObject,
    fns: PagedKVCache["fns"],
    options: KVCacheConfig,
  ) {
    this.handle = handle;
    this.parts =
      handle.typeKey() === "ffi.Array"
        ? Array.from({ length: (handle as TvmArray).size() }, (_, i) => tvm.detachFromCurrentScope((handle as TvmArray).get(i) as TvmObject))
        : [handle];
    this.fns = fns;
    this.options = options;
  }

  /** Create the cache on the VM's device. Call inside a tvmjs scope. */
  static create(tvm: TvmLLMInstance, vm: TvmVirtualMachine, opts: KVCacheOptions): PagedKVCache {
    const options: KVCacheConfig = {
      maxBatchSize: opts.maxBatchSize,
      maxTotalSeqLen: opts.maxTotalSeqLen,
      prefillChunkSize: opts.prefillChunkSize,
      pageSize: opts.pageSize ?? 16,
      slidingWindow: opts.slidingWindow ?? -1,
    };
    const { slidingWindow, ...sizes } = options;
    if (!Number.isSafeInteger(slidingWindow) || (slidingWindow <= 0 && slidingWindow !== -1)) {
      throw new RangeError(`KV cache option slidingWindow must be a positive integer or -1, got ${slidingWindow}`);
    }
    for (const [k, v] of Object.entries(sizes)) {
      if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`KV cache option ${k} must be a positive integer, got ${v}`);
    }
    const create = vmFunction(vm, CREATE_NAMES);
    const shape = (n: number) => tvm.makeShapeTuple([n]);
    const handle = tvm.detachFromCurrentScope(
      create(
        shape(options.maxBatchSize),
        shape(options.maxTotalSeqLen),
        shape(options.prefillChunkSize),
        shape(options.pageSize),
        shape(0), // whole-model-window packages turn it on in their own creation function
      ) as TvmObject,
    );
    const global = (name: string) => tvm.detachFromCurrentScope(tvm.getGlobalFunc(`vm.builtin.${name}`));
    const fns = {
      add: global("kv_state_add_sequence"),
      remove: global("kv_state_remove_sequence"),
      clear: global("kv_state_clear"),
      begin: global("kv_state_begin_forward"),
      end: global("kv_state_end_forward"),
      enableSlidingWindow: slidingWindow > 0 ? global("attention_kv_cache_enable_sliding_window_for_seq") : undefined,
    };
    return new PagedKVCache(tvm, handle, fns, options);
  }

  private live(): void {
    if (this.disposed) throw new Error("the KV cache has been disposed");
  }

  /** Tokens cached for `seqId` (undefined if the sequence does not exist). */
  sequenceLength(seqId: number): number | undefined {
    return this.lengths.get(seqId);
  }

  /** Total tokens cached over all sequences. */
  get totalLength(): number {
    let n = 0;
    for (const v of this.lengths.values()) n += v;
    return n;
  }

  addSequence(seqId: number): void {
    this.live();
    if (this.lengths.has(seqId)) throw new Error(`KV cache: sequence ${seqId} already exists`);
    for (const kv of this.parts) this.fns.add(kv, this.tvm.scalar(seqId, "int64"));
    if (this.fns.enableSlidingWindow !== undefined) {
      // No attention sink: the package's window is plain (transformers' sliding_window).
      this.fns.enableSlidingWindow(
        this.parts[this.parts.length - 1],
        this.tvm.scalar(seqId, "int64"),
        this.tvm.scalar(this.options.slidingWindow, "int32"),
        this.tvm.scalar(0, "int32"),
      );
    }
    this.lengths.set(seqId, 0);
  }

  removeSequence(seqId: number): void {
    this.live();
    if (!this.lengths.has(seqId)) throw new Error(`KV cache: no sequence ${seqId}`);
    for (const kv of this.parts) this.fns.remove(kv, this.tvm.scalar(seqId, "int64"));
    this.lengths.delete(seqId);
  }

  /**
   * Drop the last `n` tokens of `seqId` (`vm.builtin.kv_state_popn`): the sequence continues from
   * length - n, so a prompt that shares a prefix with what is cached only needs its suffix prefilled.
   * Call inside a tvmjs scope, between forwards.
   */
  popN(seqId: number, n: number): void {
    this.live();
    const len = this.lengths.get(seqId);
    if (len === undefined) throw new Error(`KV cache: no sequence ${seqId}`);
    if (!Number.isSafeInteger(n) || n < 0 || n > len) {
      throw new RangeError(`KV cache: cannot pop ${n} token(s) from sequence ${seqId} of length ${len}`);
    }
    if (n === 0) return;
    if (this.options.slidingWindow > 0 && len > this.options.slidingWindow) {
      // The window has slid: the tokens before it are gone, and TVM's popn does not account for
      // the slid offset inside the first page. The caller starts the sequence afresh instead.
      throw new Error(`KV cache: sequence ${seqId} has slid past its ${this.options.slidingWindow}-token window; cannot pop`);
    }
    this.popn ??= this.tvm.detachFromCurrentScope(this.tvm.getGlobalFunc("vm.builtin.kv_state_popn"));
    for (const kv of this.parts) this.popn(kv, this.tvm.scalar(seqId, "int64"), this.tvm.scalar(n, "int32"));
    this.lengths.set(seqId, len - n);
  }

  /** Drop every sequence and its pages. */
  clear(): void {
    this.live();
    for (const kv of this.parts) this.fns.clear(kv);
    this.lengths.clear();
  }

  /**
   * Check that the sequences can grow by `appendLengths` (exist, fit the chunk and the window) and
   * throw before anything touches the cache.
   */
  checkAppend(seqIds: readonly number[], appendLengths: readonly number[]): void {
    this.live();
    if (seqIds.length !== appendLengths.length || seqIds.length === 0) {
      throw new RangeError("KV cache: need one append length per sequence, and at least one sequence");
    }
    if (seqIds.length > this.options.maxBatchSize) {
      throw new RangeError(`KV cache: ${seqIds.length} sequences in one forward, the cache was created for ${this.options.maxBatchSize}`);
    }
    const total = appendLengths.reduce((a, b) => a + b, 0);
    if (total > this.options.prefillChunkSize) {
      throw new RangeError(`KV cache: ${total} tokens in one forward exceed prefill_chunk_size ${this.options.prefillChunkSize}`);
    }
    if (this.totalLength + total > this.options.maxTotalSeqLen) {
      const seq = seqIds.length === 1 ? (this.lengths.get(seqIds[0] as number) ?? 0) : this.totalLength;
      throw new ContextWindowExceededError(seq, total, this.options.maxTotalSeqLen);
    }
    seqIds.forEach((s, i) => {
      if (!this.lengths.has(s)) throw new Error(`KV cache: no sequence ${s} (addSequence first)`);
      const n = appendLengths[i] as number;
      if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`KV cache: append length ${n} for sequence ${s}`);
    });
  }

  /**
   * Bracket one model call: begin_forward(seqIds, appendLengths), `fn()`, end_forward. The lengths are
   * committed only when `fn` returns. Call inside a tvmjs scope.
   */
  forward<T>(seqIds: readonly number[], appendLengths: readonly number[], fn: () => T): T {
    this.checkAppend(seqIds, appendLengths);
    const lengths = [this.tvm.makeShapeTuple([...seqIds]), this.tvm.makeShapeTuple([...appendLengths])];
    for (const kv of this.parts) this.fns.begin(kv, ...lengths);
    let out: T;
    try {
      out = fn();
    } finally {
      for (const kv of this.parts) this.fns.end(kv);
    }
    seqIds.forEach((s, i) => {
      this.lengths.set(s, (this.lengths.get(s) ?? 0) + (appendLengths[i] as number));
    });
    return out;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const kv of this.parts) if (kv !== this.handle) kv.dispose();
    this.handle.dispose();
    for (const f of Object.values(this.fns)) f?.dispose();
    this.popn?.dispose();
  }
}
