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
 */
import { DecoderModel, type DecoderLoadOptions, type DecoderStats } from "../decoder/model.js";
import { DecoderSession } from "../decoder/session.js";
import { ContextWindowExceededError } from "../decoder/kv-cache.js";
import type { AdapterDescription } from "../runtime/gpu.js";
import { SerialQueue } from "../runtime/serial-queue.js";
import type { FetchLike, Logger } from "../runtime/tvm.js";
import type { TvmjsModule } from "../runtime/tvmjs-types.js";
import { AbortError, EngineNotLoadedError, InvalidRequestError } from "../errors/index.js";
import { generate, type GeneratedToken, type GeneratePiece, type GenerateResult, type StopRequest } from "../decoder/generate.js";
import { validateChatRequest, validateCompletionRequest, validateEmbeddingRequest } from "./validate.js";
import type { EncoderModel, EncoderStats } from "../encoder/model.js";
import { createEmbeddings, describeEmbedder, loadEmbedder, type EmbedderInfo, type EmbedderLoadOptions } from "./embeddings.js";
import { ChatStream, chatLogprob, completionLogprobs } from "./responses.js";
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatMessage,
  Completion,
  CompletionChunk,
  CompletionRequest,
  CompletionUsage,
  ContextOverflow,
  CreateEmbeddingResponse,
  FinishReason,
} from "./openai.js";
import { ChatTemplate } from "../tokenize/chat-template.js";
import { loadTokenizer } from "../tokenize/load.js";
import type { Tokenizer } from "../tokenize/tokenizer.js";
import type { GenerationParams } from "../sample/params.js";
import { IntegrityError } from "../load/integrity.js";
import { readVerifiedText } from "../load/verified-text.js";
import { checkCacheOption } from "../load/store.js";

/** Options that only make sense in the realm that runs the engine (functions, GPU objects). */
export interface EngineRuntimeOptions {
  /** Fetch for package files (default: global fetch). In Node pass one that reads file:// URLs. */
  fetch?: FetchLike | undefined;
  /** WebGPU entry point (default navigator.gpu). */
  gpu?: GPU | undefined;
  logger?: Logger | undefined;
  tvmjs?: TvmjsModule | undefined;
}

/** Load options that can cross a Worker boundary (plain data). */
export interface EngineLoadOptions {
  /** Quantization variant: `model` is then the model folder and the package is `<model>/<variant>/`. */
  variant?: string | undefined;
  /**
   * Which manifest target to load: "webgpu" forces WebGPU (also on a software adapter), "wasm-cpu" the CPU
   * build. Default: WebGPU on a GPU, wasm-cpu without WebGPU or on a software adapter (load/device-fit.ts chooseBackend).
   */
  target?: string | undefined;
  /** KV-cache capacity in tokens (default and maximum: the package's context_window_size). */
  maxTotalSeqLen?: number | undefined;
  /** Tokens per prefill call (default and maximum: the package's prefill_chunk_size). */
  prefillChunkSize?: number | undefined;
  /** Prompt longer than the context window: "error" (default, ContextWindowExceededError) or "truncate". */
  contextOverflow?: ContextOverflow | undefined;
  /** Reuse the KV cache across requests when the new prompt starts with what it holds (default true). */
  kvReuse?: boolean | undefined;
  /** The `model` field of responses (default: the manifest's model_id). */
  modelId?: string | undefined;
  /**
   * Passed to DecoderModel.load / loadPackage as is: loader options this engine does not name
   * (they reach the loader unchanged, so new loader features need no engine change).
   */
  packageOptions?: Record<string, unknown> | undefined;
}

/**
 * A load progress event: the package loader's own events (phase "manifest", "download", "verify",
 * "shader-compile", "gpu-upload", "ready" once the loader reports them), then the engine's
 * "tokenizer" and "engine-ready".
 */
export interface LoadProgressEvent {
  phase: string;
  [key: string]: unknown;
}

export interface EngineLoadHooks {
  /** Called with every progress event; exceptions it throws are ignored. */
  onProgress?: ((event: LoadProgressEvent) => void) | undefined;
  signal?: AbortSignal | undefined;
}

export type EngineCoreLoadOptions = EngineLoadOptions & EngineRuntimeOptions & EngineLoadHooks;

export interface ModelInfo {
  model: string;
  baseUrl: string;
  quantization: string;
  usesF16: boolean;
  vocabSize: number;
  /** Token ids that end generation (mlc-chat-config's eos_token_id list and the tokenizer's eos). */
  eosTokenIds: number[];
  contextWindowSize: number;
  /** KV-cache capacity in use. */
  maxSequenceLength: number;
  prefillChunkSize: number;
  hasChatTemplate: boolean;
  adapter: AdapterDescription | null;
  loadMs: number;
}

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
  stop: { by: StopRequest; atToken: number; endedAtToken: number } | null;
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
}

export interface EngineRequestOptions<Chunk> {
  signal?: AbortSignal | undefined;
  /** Streaming: called with every chunk, in OpenAI's chunk shape. */
  onChunk?: ((chunk: Chunk) => void) | undefined;
  /** Called once the request leaves the queue and starts running. */
  onStart?: (() => void) | undefined;
}

interface Loaded {
  model: DecoderModel;
  session: DecoderSession;
  tokenizer: Tokenizer;
  template: ChatTemplate | null;
  templateError: Error | null;
  eosTokenIds: number[];
  info: ModelInfo;
  contextOverflow: ContextOverflow;
  defaults: Pick<GenerationParams, "temperature" | "top_p" | "presence_penalty" | "frequency_penalty" | "repetition_penalty">;
}

interface Running {
  stop: StopRequest | null;
  generated: number;
  stopInfo: RequestStats["stop"];
}

/** What a chat or completion request needs after validation: ids, params, response flavour. */
interface Prepared {
  promptIds: number[];
  params: GenerationParams;
  truncated: number;
}

const TOKENIZER_FILE = "tokenizer.json";
const TOKENIZER_CONFIG_FILE = "tokenizer_config.json";

function randomId(prefix: string): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  let s = "";
  for (const b of bytes) s += b.toString(36).padStart(2, "0");
  return `${prefix}-${s}`;
}

function rate(tokens: number, ms: number): number {
  return ms > 0 ? (tokens * 1000) / ms : 0;
}

function numberOr<T>(value: unknown, fallback: T): number | T {
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
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
  #loaded: Loaded | null = null;
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
      let loaded: Loaded;
      try {
        loaded = await this.#load(modelUrl, opts);
      } catch (err) {
        if (old === null || opts.signal?.aborted === true || !mayBeOutOfMemory(err)) throw err;
        this.#loaded = null;
        await old.model.dispose();
        try {
          loaded = await this.#load(modelUrl, opts);
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

  async #load(modelUrl: string, opts: EngineCoreLoadOptions): Promise<Loaded> {
    const t0 = performance.now();
    const progress = (event: LoadProgressEvent): void => {
      try {
        opts.onProgress?.(event);
      } catch {
        // a progress callback never breaks a load
      }
    };
    const fetchFn: FetchLike = opts.fetch ?? this.#runtime.fetch ?? ((url, init) => globalThis.fetch(url, init));
    // The loader's events are interfaces without an index signature: accept any {phase} object.
    const fromLoader = (event: { phase: string }): void => progress(event as LoadProgressEvent);
    const decoderOpts: DecoderLoadOptions & { onProgress?: (event: { phase: string }) => void } = {
      ...(opts.packageOptions ?? {}),
      fetch: fetchFn,
      gpu: opts.gpu ?? this.#runtime.gpu,
      logger: opts.logger ?? this.#runtime.logger,
      tvmjs: opts.tvmjs ?? this.#runtime.tvmjs,
      variant: opts.variant,
      target: opts.target,
      maxTotalSeqLen: opts.maxTotalSeqLen,
      prefillChunkSize: opts.prefillChunkSize,
      signal: opts.signal,
      // The package loader's progress events (when it has them); the engine adds its own after.
      onProgress: fromLoader,
    };
    const model = await DecoderModel.load(modelUrl, decoderOpts);
    try {
      progress({ phase: "tokenizer", file: TOKENIZER_FILE });
      // Package files beyond the weights: through the loader's verified store when this DecoderModel has
      // one (readFile), else fetched here and checked against the manifest's size and SHA-256.
      const modelRead = (model as { readFile?: (path: string, signal?: AbortSignal) => Promise<ArrayBuffer> }).readFile;
      const read = (file: string, required: boolean): Promise<string | undefined> =>
        readVerifiedText(model.manifest, file, required, async (path, entry) => {
          if (typeof modelRead === "function") return modelRead.call(model, path, opts.signal);
          const res = await fetchFn(new URL(path, model.baseUrl).href, opts.signal === undefined ? undefined : { signal: opts.signal });
          if (!res.ok) {
            throw new IntegrityError(path, "missing", entry.bytes, null, `${path}: HTTP ${res.status} ${res.statusText}`);
          }
          return res.arrayBuffer();
        });
      const [tokenizerJson, tokenizerConfigText] = await Promise.all([read(TOKENIZER_FILE, true), read(TOKENIZER_CONFIG_FILE, false)]);
      const tokenizerConfig = tokenizerConfigText === undefined ? undefined : (JSON.parse(tokenizerConfigText) as Record<string, unknown>);
      const tokenizer = await loadTokenizer(
        tokenizerConfig === undefined ? { tokenizerJson: tokenizerJson as string } : { tokenizerJson: tokenizerJson as string, tokenizerConfig },
      );
      let template: ChatTemplate | null = null;
      let templateError: Error | null = null;
      try {
        template = await ChatTemplate.fromSources(
          tokenizerConfig === undefined ? { chatConfig: model.config.raw } : { tokenizerConfig, chatConfig: model.config.raw },
        );
      } catch (err) {
        templateError = err instanceof Error ? err : new Error(String(err));
      }
      const eos = new Set(model.config.eos_token_ids);
      if (tokenizer.special.eos !== null) eos.add(tokenizer.special.eos.id);
      const raw = model.config.raw;
      const info: ModelInfo = {
        model: opts.modelId ?? (model.manifest.model_id || model.baseUrl),
        baseUrl: model.baseUrl,
        quantization: model.config.quantization,
        usesF16: model.usesF16,
        vocabSize: model.config.vocab_size,
        eosTokenIds: [...eos],
        contextWindowSize: model.config.context_window_size,
        maxSequenceLength: model.maxSequenceLength,
        prefillChunkSize: model.prefillChunkSize,
        hasChatTemplate: template !== null,
        adapter: model.adapter,
        loadMs: performance.now() - t0,
      };
      progress({ phase: "engine-ready", totalMs: info.loadMs });
      return {
        model,
        session: new DecoderSession(model, opts.kvReuse ?? true),
        tokenizer,
        template,
        templateError,
        eosTokenIds: [...eos],
        info,
        contextOverflow: opts.contextOverflow ?? "error",
        defaults: {
          temperature: numberOr(model.config.temperature, 1),
          top_p: numberOr(model.config.top_p, 1),
          presence_penalty: numberOr(raw["presence_penalty"], 0),
          frequency_penalty: numberOr(raw["frequency_penalty"], 0),
          repetition_penalty: numberOr(raw["repetition_penalty"], 1),
        },
      };
    } catch (err) {
      await model.dispose();
      throw err;
    }
  }

  /** OpenAI chat completion. With `onChunk`, also streams chunks (`stream: true` in the request). */
  async chatCompletion(request: ChatCompletionRequest, opts: EngineRequestOptions<ChatCompletionChunk> = {}): Promise<ChatCompletion> {
    const req = await validateChatRequest(request);
    return this.#request("chat", opts, async (loaded, id, created, run) => {
      const prepared = this.#prepareChat(loaded, req);
      const stream = new ChatStream(id, created, loaded, req, prepared.promptIds, opts.onChunk);
      const result = await this.#generate(loaded, prepared, run, (piece) => stream.piece(piece));
      const usage = this.#usage(result);
      stream.finish(result, usage);
      const choice: ChatCompletion["choices"][number] = {
        index: 0,
        message: { role: "assistant", content: result.text, refusal: null },
        logprobs: req.logprobs === true ? { content: result.tokens.map((t) => chatLogprob(loaded.tokenizer, t)), refusal: null } : null,
        finish_reason: result.finishReason,
      };
      if (req.return_token_ids === true) choice.token_ids = result.tokens.map((t) => t.token);
      const out: ChatCompletion = { id, object: "chat.completion", created, model: loaded.info.model, choices: [choice], usage };
      if (req.return_token_ids === true) out.prompt_token_ids = [...prepared.promptIds];
      return { response: out, result, prepared };
    });
  }

  /** OpenAI (legacy) text completion. */
  async completion(request: CompletionRequest, opts: EngineRequestOptions<CompletionChunk> = {}): Promise<Completion> {
    const req = await validateCompletionRequest(request);
    return this.#request("completion", opts, async (loaded, id, created, run) => {
      const prepared = this.#prepareCompletion(loaded, req);
      const model = loaded.info.model;
      const wantTokens = req.return_token_ids === true;
      let firstChunk = true;
      const chunk = (choice: Completion["choices"][number], usage?: CompletionUsage | null): CompletionChunk => {
        const c: CompletionChunk = { id, object: "text_completion", created, model, choices: [choice] };
        if (req.stream_options?.include_usage === true) c.usage = usage ?? null;
        if (wantTokens && firstChunk) c.prompt_token_ids = [...prepared.promptIds];
        firstChunk = false;
        return c;
      };
      let pendingTokens: GeneratedToken[] = [];
      const onPiece = (piece: GeneratePiece): void => {
        pendingTokens.push(piece.token);
        if (opts.onChunk === undefined || piece.text === "") return;
        const choice: Completion["choices"][number] = {
          index: 0,
          text: piece.text,
          logprobs: req.logprobs != null ? completionLogprobs(loaded.tokenizer, pendingTokens, 0) : null,
          finish_reason: null,
        };
        if (wantTokens) choice.token_ids = pendingTokens.map((t) => t.token);
        pendingTokens = [];
        opts.onChunk(chunk(choice));
      };
      const result = await this.#generate(loaded, prepared, run, onPiece);
      const usage = this.#usage(result);
      if (opts.onChunk !== undefined) {
        const last: Completion["choices"][number] = {
          index: 0,
          text: "",
          logprobs: req.logprobs != null && pendingTokens.length > 0 ? completionLogprobs(loaded.tokenizer, pendingTokens, 0) : null,
          finish_reason: result.finishReason,
        };
        if (wantTokens) last.token_ids = pendingTokens.map((t) => t.token);
        opts.onChunk(chunk(last));
        if (req.stream_options?.include_usage === true) {
          opts.onChunk({ id, object: "text_completion", created, model, choices: [], usage });
        }
      }
      const choice: Completion["choices"][number] = {
        index: 0,
        text: result.text,
        logprobs: req.logprobs != null ? completionLogprobs(loaded.tokenizer, result.tokens, 0) : null,
        finish_reason: result.finishReason,
      };
      if (wantTokens) choice.token_ids = result.tokens.map((t) => t.token);
      const out: Completion = { id, object: "text_completion", created, model, choices: [choice], usage };
      if (wantTokens) out.prompt_token_ids = [...prepared.promptIds];
      return { response: out, result, prepared };
    });
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
    body: (loaded: Loaded, id: string, created: number, run: Running) => Promise<{ response: R; result: GenerateResult; prepared: Prepared }>,
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

  async #generate(loaded: Loaded, prepared: Prepared, run: Running, onPiece: (piece: GeneratePiece) => void): Promise<GenerateResult> {
    return generate({
      session: loaded.session,
      tokenizer: loaded.tokenizer,
      promptIds: prepared.promptIds,
      params: prepared.params,
      eosTokenIds: loaded.eosTokenIds,
      stopRequested: () => run.stop,
      onPiece: (piece) => {
        run.generated++;
        onPiece(piece);
      },
    });
  }

  #usage(r: GenerateResult): CompletionUsage {
    return {
      prompt_tokens: r.promptTokens,
      completion_tokens: r.tokens.length,
      total_tokens: r.promptTokens + r.tokens.length,
      prompt_tokens_details: { cached_tokens: r.cachedTokens },
      prefill_tokens_per_s: rate(r.prefilledTokens, r.prefillMs),
      decode_tokens_per_s: rate(r.decodeSteps, r.decodeMs),
      time_to_first_token_ms: r.timeToFirstTokenMs ?? 0,
    };
  }

  /** Sampling/stopping params: the request's, else the package's defaults (mlc-chat-config.json). */
  #params(loaded: Loaded, req: ChatCompletionRequest | CompletionRequest, maxTokens: number | null, logprobs: number | null): GenerationParams {
    const d = loaded.defaults;
    const p: GenerationParams = {
      temperature: req.temperature ?? d.temperature ?? 1,
      top_p: req.top_p ?? d.top_p ?? 1,
      presence_penalty: req.presence_penalty ?? d.presence_penalty ?? 0,
      frequency_penalty: req.frequency_penalty ?? d.frequency_penalty ?? 0,
      repetition_penalty: req.repetition_penalty ?? d.repetition_penalty ?? 1,
    };
    if (req.top_k != null) p.top_k = req.top_k;
    if (req.seed != null) p.seed = req.seed;
    if (req.stop != null) p.stop = req.stop;
    if (req.stop_token_ids != null) p.stop_token_ids = req.stop_token_ids;
    if (req.ignore_eos != null) p.ignore_eos = req.ignore_eos;
    if (req.stop_on_repeat != null) p.stop_on_repeat = req.stop_on_repeat;
    if (maxTokens !== null) p.max_tokens = maxTokens;
    if (logprobs !== null) {
      p.logprobs = true;
      p.top_logprobs = logprobs;
    }
    if (req.logit_bias != null) {
      for (const key of Object.keys(req.logit_bias)) {
        if (Number(key) >= loaded.info.vocabSize) {
          throw new InvalidRequestError(`logit_bias: token id ${key} is outside the vocabulary [0, ${loaded.info.vocabSize})`, `logit_bias.${key}`);
        }
      }
      p.logit_bias = req.logit_bias;
    }
    return p;
  }

  #prepareChat(loaded: Loaded, req: ChatCompletionRequest): Prepared {
    const template = loaded.template;
    if (template === null) {
      throw new InvalidRequestError(
        `this model has no usable chat template (${loaded.templateError?.message ?? "none"}); use completions`,
        "messages",
        "unsupported_parameter",
      );
    }
    const maxTokens = req.max_completion_tokens ?? req.max_tokens ?? null;
    const encode = (messages: readonly ChatMessage[]): number[] =>
      Array.from(loaded.tokenizer.encode(template.render(messages, { add_generation_prompt: true }), { addSpecialTokens: false }));
    let messages = [...req.messages];
    let ids = encode(messages);
    const window = loaded.session.maxSequenceLength;
    let truncated = 0;
    if ((req.context_overflow ?? loaded.contextOverflow) === "truncate") {
      // Drop the oldest non-system turns (a user message with the assistant reply after it) until the
      // prompt leaves room for max_tokens (or one token); the last message always stays.
      const reserve = maxTokens ?? 1;
      while (ids.length + reserve > window) {
        const i = messages.findIndex((m, j) => m.role !== "system" && j < messages.length - 1);
        if (i < 0) break;
        let n = 1;
        if (i + 1 < messages.length - 1 && messages[i + 1]?.role === "assistant" && messages[i]?.role !== "assistant") n = 2;
        messages = [...messages.slice(0, i), ...messages.slice(i + n)];
        truncated += n;
        ids = encode(messages);
      }
    }
    this.#checkWindow(ids.length, window, truncated > 0);
    return { promptIds: ids, params: this.#params(loaded, req, maxTokens, req.logprobs === true ? (req.top_logprobs ?? 0) : null), truncated };
  }

  #prepareCompletion(loaded: Loaded, req: CompletionRequest): Prepared {
    let ids: number[];
    if (typeof req.prompt === "string") {
      ids = Array.from(loaded.tokenizer.encode(req.prompt));
    } else {
      req.prompt.forEach((t, i) => {
        if (t >= loaded.info.vocabSize) {
          throw new InvalidRequestError(`prompt[${i}]: token id ${t} is outside the vocabulary [0, ${loaded.info.vocabSize})`, `prompt[${i}]`);
        }
      });
      ids = [...req.prompt];
    }
    if (ids.length === 0) throw new InvalidRequestError("the prompt encodes to no tokens", "prompt");
    const window = loaded.session.maxSequenceLength;
    if (ids.length > window && (req.context_overflow ?? loaded.contextOverflow) === "truncate") {
      ids = ids.slice(ids.length - window); // keep the end of the text
    }
    this.#checkWindow(ids.length, window, false);
    // OpenAI's legacy default is 16 tokens.
    return { promptIds: ids, params: this.#params(loaded, req, req.max_tokens ?? 16, req.logprobs ?? null), truncated: 0 };
  }

  #checkWindow(promptTokens: number, window: number, afterTruncation: boolean): void {
    if (promptTokens <= window) return;
    const err = new ContextWindowExceededError(0, promptTokens, window);
    err.message =
      `the prompt is ${promptTokens} tokens, more than the context window of ${window} tokens` +
      (afterTruncation ? " even after dropping every older message" : "") +
      `; shorten it${afterTruncation ? "" : ', or pass context_overflow: "truncate" to drop the oldest messages'}`;
    throw err;
  }
}
