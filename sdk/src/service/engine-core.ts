/**
 * EngineCore: one chat model (DecoderModel + tokenizer + chat template + config) behind OpenAI-shaped
 * calls. It runs wherever WebGPU does: in a module Worker (worker.ts serves it over messages) or on a
 * Node / browser main thread directly.
 *
 *   const core = new EngineCore({ fetch });                 // realm-local options (fetch, gpu, logger)
 *   await core.load("https://host/models/m/q4f16_1/");
 *   const reply = await core.chatCompletion({ messages: [{ role: "user", content: "Hi" }] });
 *   await core.chatCompletion({ messages, stream: true }, { onChunk: (c) => show(c) });
 *
 * Requests run one at a time, in arrival order (the GPU queue is serial anyway); load and unload queue
 * behind them. A request's AbortSignal ends it within one token and rejects it with {@link AbortError};
 * interrupt() ends the running request gracefully (finish_reason "abort", partial text returned).
 *
 * This class owns the lifecycle (load / replace / unload, the queue, stop flags, stats); each endpoint's
 * request handling is its own module: chat.ts, completions.ts, embeddings.ts, on chat-model.ts (opening
 * a package) and generation.ts (what chat and completions share).
 */
import type { DecoderStats } from "../decoder/model.js";
import type { StopRequest } from "../decoder/generate.js";
import { SerialQueue } from "../runtime/serial-queue.js";
import { AbortError, EngineNotLoadedError } from "../errors/index.js";
import { validateChatRequest, validateCompletionRequest, validateEmbeddingRequest } from "./validate.js";
import type { EncoderModel, EncoderStats } from "../encoder/model.js";
import { createEmbeddings, describeEmbedder, loadEmbedder, type EmbedderInfo, type EmbedderLoadOptions } from "./embeddings.js";
import {
  type EngineCoreLoadOptions,
  type EngineLoadHooks,
  type EngineRuntimeOptions,
  type LoadedChatModel,
  type LoadProgressEvent,
  type ModelInfo,
  openChatModel,
} from "./chat-model.js";
import { type EndpointResult, rate, type Running, type StopInfo } from "./generation.js";
import { runChat } from "./chat.js";
import { grammarStats } from "./grammar-model.js";
import type { GrammarStats } from "../grammar/engine.js";
import { runCompletion } from "./completions.js";
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  Completion,
  CompletionChunk,
  CompletionRequest,
  CreateEmbeddingResponse,
  FinishReason,
} from "./openai.js";
import { checkCacheOption } from "../load/store.js";

export type { EngineCoreLoadOptions, EngineLoadHooks, EngineLoadOptions, EngineRuntimeOptions, LoadProgressEvent, ModelInfo } from "./chat-model.js";

export interface RequestStats {
  id: string;
  kind: "chat" | "completion";
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
  finish_reason: FinishReason | null;
  time_to_first_token_ms: number | null;
  prefill_tokens_per_s: number;
  decode_tokens_per_s: number;
  /** Time spent waiting for earlier requests. */
  queue_ms: number;
  total_ms: number;
  /** Set when a stop request arrived: tokens generated when it arrived, and when generation ended. */
  stop: StopInfo | null;
  /** Messages dropped by context_overflow "truncate". */
  truncated_messages: number;
}

export interface EngineStats {
  loaded: boolean;
  model: ModelInfo | null;
  /** Tokens in the KV cache now (reusable by the next request). */
  kvCachedTokens: number;
  /** Requests completed since load (any finish reason). */
  requests: number;
  lastRequest: RequestStats | null;
  decoder: DecoderStats | null;
  /** The text encoder (loadEmbedder), or null. */
  embedder: EmbedderInfo | null;
  /** Its load timings and embedding counters (texts/s, tokens/s, calls per bucket). */
  encoder: EncoderStats | null;
  /** Structured output: grammars compiled and cache hits, compile times (null before the first one). */
  grammar: GrammarStats | null;
}

export interface EngineRequestOptions<Chunk> {
  signal?: AbortSignal | undefined;
  /** Streaming: called with every chunk, in OpenAI's chunk shape. */
  onChunk?: ((chunk: Chunk) => void) | undefined;
  /** Called once the request leaves the queue and starts running. */
  onStart?: (() => void) | undefined;
}

function randomId(prefix: string): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  let s = "";
  for (const b of bytes) s += b.toString(36).padStart(2, "0");
  return `${prefix}-${s}`;
}

/**
 * Whether a failed load may have failed for lack of memory (so that freeing the current model could let
 * it succeed): tvmjs destroys the device when a buffer allocation fails (a DeviceLostError follows), and
 * JS / wasm allocations fail with these messages.
 */
export function mayBeOutOfMemory(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === "DeviceLostError" || err.name === "GPUOutOfMemoryError") return true;
  return /out of memory|out-of-memory|allocation failed|cannot enlarge memory|could not allocate|failed to grow/i.test(err.message);
}

/** The error with `note` appended to its message (errors that are not Error objects become one). */
function withNote(err: unknown, note: string): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  e.message = `${e.message} ${note}`;
  return e;
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class EngineCore {
  readonly #runtime: EngineRuntimeOptions;
  readonly #queue = new SerialQueue();
  #loaded: LoadedChatModel | null = null;
  #embedder: { model: EncoderModel; info: EmbedderInfo } | null = null;
  #running: Running | null = null;
  /** Controllers of queued and running requests (unload() aborts them). */
  readonly #pending = new Set<AbortController>();
  #requests = 0;
  #last: RequestStats | null = null;

  constructor(runtime: EngineRuntimeOptions = {}) {
    this.#runtime = { ...runtime };
  }

  /** The loaded model's description, or null. */
  get model(): ModelInfo | null {
    return this.#loaded?.info ?? null;
  }

  /** The loaded text encoder's description, or null. */
  get embedder(): EmbedderInfo | null {
    return this.#embedder?.info ?? null;
  }

  /**
   * Load a text-encoder package (model_task "embedding") for embeddings(), beside the chat model;
   * replaces the current encoder after queued requests finish.
   */
  loadEmbedder(url: string, opts: EmbedderLoadOptions & EngineRuntimeOptions & EngineLoadHooks = {}): Promise<EmbedderInfo> {
    return this.#queue.run(async () => {
      // The current encoder stays until the new one is ready (a failed load leaves it working).
      const t0 = performance.now();
      const model = await loadEmbedder(url, opts, {
        fetch: opts.fetch ?? this.#runtime.fetch,
        gpu: opts.gpu ?? this.#runtime.gpu,
        logger: opts.logger ?? this.#runtime.logger,
        tvmjs: opts.tvmjs ?? this.#runtime.tvmjs,
        signal: opts.signal,
        onProgress: (event) => {
          try {
            opts.onProgress?.({ ...event, model: "embedder" } as LoadProgressEvent);
          } catch {
            // a progress callback never breaks a load
          }
        },
      });
      const info = describeEmbedder(model, performance.now() - t0);
      const previous = this.#embedder;
      this.#embedder = { model, info };
      try {
        await previous?.model.dispose();
      } catch (err) {
        (opts.logger ?? this.#runtime.logger)?.(`releasing the previous text encoder failed: ${describeError(err)}`);
      }
      try {
        opts.onProgress?.({ phase: "engine-ready", model: "embedder", totalMs: info.loadMs });
      } catch {
        // as above
      }
      return info;
    });
  }

  /**
   * OpenAI embeddings: one vector per input, in order; inputs length-bucketed into batches by the
   * encoder. Queued with the chat requests (one GPU job at a time); the signal cancels it between
   * bucket calls (AbortError).
   */
  async embeddings(request: unknown, opts: { signal?: AbortSignal | undefined; onStart?: (() => void) | undefined } = {}): Promise<CreateEmbeddingResponse> {
    const req = await validateEmbeddingRequest(request, this.#embedder?.info.dim);
    const signal = opts.signal;
    if (signal?.aborted === true) throw new AbortError("the request was aborted before it started");
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(new AbortError("the request was aborted"));
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#pending.add(controller);
    try {
      return await this.#queue.run(async () => {
        controller.signal.throwIfAborted();
        const e = this.#embedder;
        if (e === null) {
          throw new EngineNotLoadedError("no text encoder is loaded: pass `embedder` (an encoder package URL) to createEngine, or call loadEmbedder()");
        }
        opts.onStart?.();
        return await createEmbeddings(e.model, req, controller.signal);
      });
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#pending.delete(controller);
    }
  }

  /**
   * Load a package, replacing the current model after queued requests finish. The current model keeps
   * serving until the new one is ready, so a load that fails (bad URL, corrupt file, bad option, abort)
   * leaves it loaded and working. Only when the new load runs out of memory beside it is the current
   * model released and the load tried once more; if that fails too, the error says the old model is gone.
   */
  load(modelUrl: string, opts: EngineCoreLoadOptions = {}): Promise<ModelInfo> {
    return this.#queue.run(async () => {
      checkCacheOption(opts.packageOptions?.["cache"], "packageOptions.cache");
      const old = this.#loaded;
      let loaded: LoadedChatModel;
      try {
        loaded = await openChatModel(modelUrl, opts, this.#runtime);
      } catch (err) {
        if (old === null || opts.signal?.aborted === true || !mayBeOutOfMemory(err)) throw err;
        this.#loaded = null;
        await old.model.dispose();
        try {
          loaded = await openChatModel(modelUrl, opts, this.#runtime);
        } catch (retryErr) {
          throw withNote(
            retryErr,
            `The previously loaded model (${old.info.model}) was unloaded to free memory for this load, so no model is loaded now; load it again or a smaller one.`,
          );
        }
        this.#loaded = loaded;
        return loaded.info;
      }
      this.#loaded = loaded;
      try {
        await old?.model.dispose();
      } catch (err) {
        // The new model is loaded and serving: a failure to free the old one is reported, not thrown.
        (opts.logger ?? this.#runtime.logger)?.(`releasing the previous model (${old?.info.model}) failed: ${describeError(err)}`);
      }
      return loaded.info;
    });
  }

  /** OpenAI chat completion. With `onChunk`, also streams chunks (`stream: true` in the request). */
  async chatCompletion(request: ChatCompletionRequest, opts: EngineRequestOptions<ChatCompletionChunk> = {}): Promise<ChatCompletion> {
    const req = await validateChatRequest(request);
    return this.#request("chat", opts, (loaded, id, created, run) => runChat(loaded, req, id, created, run, opts.onChunk));
  }

  /** OpenAI (legacy) text completion. */
  async completion(request: CompletionRequest, opts: EngineRequestOptions<CompletionChunk> = {}): Promise<Completion> {
    const req = await validateCompletionRequest(request);
    return this.#request("completion", opts, (loaded, id, created, run) => runCompletion(loaded, req, id, created, run, opts.onChunk));
  }

  /** End the running request now: it returns what it has, with finish_reason "abort". */
  interrupt(): void {
    this.#stopRunning("interrupt");
  }

  /** Clear the KV cache (the next request prefills its whole prompt). Queued like a request. */
  resetChat(): Promise<void> {
    return this.#queue.run(async () => {
      await this.#loaded?.session.reset();
    });
  }

  /** Abort queued and running requests, then release the model (GPU memory, device). Idempotent. */
  unload(): Promise<void> {
    for (const c of this.#pending) c.abort(new AbortError("the engine was unloaded"));
    this.#stopRunning("abort");
    return this.#queue.run(async () => {
      try {
        await this.#dispose();
      } finally {
        await this.#disposeEmbedder();
      }
    });
  }

  stats(): EngineStats {
    const l = this.#loaded;
    return {
      loaded: l !== null,
      model: l?.info ?? null,
      kvCachedTokens: l?.session.cachedTokens ?? 0,
      requests: this.#requests,
      lastRequest: this.#last,
      decoder: l?.model.stats() ?? null,
      embedder: this.#embedder?.info ?? null,
      encoder: this.#embedder?.model.stats() ?? null,
      grammar: l === null ? null : grammarStats(l),
    };
  }

  // -- internals ---------------------------------------------------------------------------------

  #stopRunning(by: StopRequest): void {
    const r = this.#running;
    if (r !== null && r.stop === null) {
      r.stop = by;
      r.stopInfo = { by, atToken: r.generated, endedAtToken: r.generated };
    }
  }

  async #disposeEmbedder(): Promise<void> {
    const e = this.#embedder;
    this.#embedder = null;
    await e?.model.dispose();
  }

  async #dispose(): Promise<void> {
    const l = this.#loaded;
    this.#loaded = null;
    await l?.model.dispose();
  }

  /** Queue a request; it runs with the loaded model and a stop flag wired to the signal. */
  async #request<R>(
    kind: RequestStats["kind"],
    opts: EngineRequestOptions<never> | EngineRequestOptions<ChatCompletionChunk> | EngineRequestOptions<CompletionChunk>,
    body: (loaded: LoadedChatModel, id: string, created: number, run: Running) => Promise<EndpointResult<R>>,
  ): Promise<R> {
    const signal = opts.signal;
    if (signal?.aborted === true) throw new AbortError("the request was aborted before it started");
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(new AbortError("the request was aborted"));
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#pending.add(controller);
    const queued = performance.now();
    try {
      return await this.#queue.run(async () => {
        if (controller.signal.aborted) throw new AbortError(describeError(controller.signal.reason));
        const loaded = this.#loaded;
        if (loaded === null) throw new EngineNotLoadedError("no model is loaded: call load() first");
        const started = performance.now();
        opts.onStart?.();
        const run: Running = { stop: null, generated: 0, stopInfo: null };
        const stopOnAbort = (): void => {
          if (run.stop === null) {
            run.stop = "abort";
            run.stopInfo = { by: "abort", atToken: run.generated, endedAtToken: run.generated };
          }
        };
        controller.signal.addEventListener("abort", stopOnAbort, { once: true });
        this.#running = run;
        const id = randomId(kind === "chat" ? "chatcmpl" : "cmpl");
        try {
          const { response, result, prepared } = await body(loaded, id, Math.floor(Date.now() / 1000), run);
          if (run.stopInfo !== null) run.stopInfo.endedAtToken = result.tokens.length;
          this.#requests++;
          this.#last = {
            id,
            kind,
            prompt_tokens: result.promptTokens,
            cached_tokens: result.cachedTokens,
            completion_tokens: result.tokens.length,
            finish_reason: result.finishReason,
            time_to_first_token_ms: result.timeToFirstTokenMs,
            prefill_tokens_per_s: rate(result.prefilledTokens, result.prefillMs),
            decode_tokens_per_s: rate(result.decodeSteps, result.decodeMs),
            queue_ms: started - queued,
            total_ms: performance.now() - started,
            stop: run.stopInfo,
            truncated_messages: prepared.truncated,
          };
          if (result.stoppedBy === "abort") throw new AbortError(describeError(controller.signal.reason));
          return response;
        } finally {
          controller.signal.removeEventListener("abort", stopOnAbort);
          this.#running = null;
        }
      });
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#pending.delete(controller);
    }
  }
}
