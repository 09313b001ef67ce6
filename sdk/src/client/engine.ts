/**
 * createEngine(): the main-thread API. The model runs in a module Worker (or, with worker: "inline",
 * behind an in-process MessageChannel, which is how Node and tests run it); this side only sends
 * validated-on-arrival messages and turns replies into OpenAI-shaped results, async-iterable streams
 * and typed errors.
 *
 *   const engine = await createEngine({ model: "https://host/models/m/q4f16_1/", onProgress: console.log });
 *   const reply = await engine.chat.completions.create({ messages: [{ role: "user", content: "Hi" }] });
 *   for await (const chunk of await engine.chat.completions.create({ messages, stream: true })) {
 *     out.textContent += chunk.choices[0]?.delta.content ?? "";
 *   }
 *   await engine.unload();
 *
 * Embeddings: name a text-encoder package (model_task "embedding") as `embedder`, beside the chat model
 * or alone; both run in the same Worker, one GPU job at a time.
 *
 *   const engine = await createEngine({ model: chatUrl, embedder: "https://host/models/all-MiniLM-L6-v2/q0f32/" });
 *   const { data } = await engine.embeddings.create({ input: ["first text", "second text"] });
 *   const embedOnly = await createEngine({ embedder: encoderUrl });   // engine.model is null
 */
import { WorkerError } from "../errors/index.js";
import type { EngineLoadOptions, EngineRuntimeOptions, EngineStats, LoadProgressEvent, ModelInfo } from "../service/engine-core.js";
import type { MessageEndpoint } from "../service/protocol.js";
import type { EmbedderInfo, EmbedderLoadOptions } from "../service/embeddings.js";
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  Completion,
  CompletionChunk,
  CompletionRequest,
  CreateEmbeddingResponse,
  EmbeddingCreateParams,
} from "../service/openai.js";
import { Connection, nodeWorkerEndpoint, type NodeWorkerLike } from "./connection.js";
import { ChunkStream } from "./stream.js";

/** A text encoder for engine.embeddings: its package URL, or the URL with load options. */
export type EmbedderSpec = string | ({ model: string } & EmbedderLoadOptions);

export interface CreateEngineOptions extends EngineLoadOptions {
  /**
   * The chat model's package folder URL (or, with `variant`, the model folder). May be left out when
   * `embedder` is given (an embeddings-only engine).
   */
  model?: string | undefined;
  /**
   * A text-encoder package (model_task "embedding") for `engine.embeddings.create`: its URL, or
   * `{ model: url, variant?, truncation?, modelId?, packageOptions? }`. Loaded after the chat model, in
   * the same Worker; progress events carry `model: "embedder"`.
   */
  embedder?: EmbedderSpec | undefined;
  /**
   * Where the engine runs:
   *  - a module `Worker` running `@hearth/sdk/worker` (or dist/browser/engine-worker.js), or any
   *    MessageEndpoint (a MessagePort served by serveEngine), or a Node worker_threads Worker;
   *  - "inline": in this thread, behind a MessageChannel (same messages, same validation);
   *  - default: in a browser, a new module Worker from dist/browser/engine-worker.js (terminated by
   *    unload()); elsewhere (Node), "inline".
   */
  worker?: Worker | MessageEndpoint | NodeWorkerLike | "inline" | undefined;
  /** Load progress (the loader's phases, then "tokenizer" and "engine-ready"). */
  onProgress?: ((event: LoadProgressEvent) => void) | undefined;
  /** Cancels the load. */
  signal?: AbortSignal | undefined;
  /** Only with worker: "inline": realm-local engine options (fetch, gpu, logger). */
  runtime?: EngineRuntimeOptions | undefined;
  /** Terminate a Worker you passed in when the engine is unloaded (default: only workers it created). */
  terminateWorker?: boolean | undefined;
  /** Errors the engine could not attribute to a request (default: console.warn). */
  onUnroutedError?: ((err: Error) => void) | undefined;
}

export interface CreateRequestOptions {
  /** Cancels the request: it rejects (or its stream throws) with AbortError; the engine stops within a token. */
  signal?: AbortSignal | undefined;
}

export type ChatCompletionCreateParamsStreaming = ChatCompletionRequest & { stream: true };
export type ChatCompletionCreateParamsNonStreaming = ChatCompletionRequest & { stream?: false | null | undefined };
export type CompletionCreateParamsStreaming = CompletionRequest & { stream: true };
export type CompletionCreateParamsNonStreaming = CompletionRequest & { stream?: false | null | undefined };

export interface Embeddings {
  /** OpenAI embeddings: `input` a string or an array of strings; vectors in input order. */
  create(body: EmbeddingCreateParams, options?: CreateRequestOptions): Promise<CreateEmbeddingResponse>;
}

export interface ChatCompletions {
  create(body: ChatCompletionCreateParamsStreaming, options?: CreateRequestOptions): Promise<ChunkStream<ChatCompletionChunk, ChatCompletion>>;
  create(body: ChatCompletionCreateParamsNonStreaming, options?: CreateRequestOptions): Promise<ChatCompletion>;
  create(body: ChatCompletionRequest, options?: CreateRequestOptions): Promise<ChunkStream<ChatCompletionChunk, ChatCompletion> | ChatCompletion>;
}

export interface Completions {
  create(body: CompletionCreateParamsStreaming, options?: CreateRequestOptions): Promise<ChunkStream<CompletionChunk, Completion>>;
  create(body: CompletionCreateParamsNonStreaming, options?: CreateRequestOptions): Promise<Completion>;
  create(body: CompletionRequest, options?: CreateRequestOptions): Promise<ChunkStream<CompletionChunk, Completion> | Completion>;
}

interface Transport {
  endpoint: MessageEndpoint;
  dispose: () => void;
}

function isEndpoint(x: unknown): x is MessageEndpoint {
  const e = x as Partial<MessageEndpoint> | null;
  return typeof e?.postMessage === "function" && typeof e.addEventListener === "function";
}

function isNodeWorker(x: unknown): x is NodeWorkerLike {
  const w = x as Partial<NodeWorkerLike> | null;
  return typeof w?.postMessage === "function" && typeof w.on === "function" && typeof w.terminate === "function";
}

async function openTransport(opts: CreateEngineOptions): Promise<Transport> {
  let worker = opts.worker;
  const WorkerCtor = (globalThis as { Worker?: new (url: URL, options: { type: "module"; name?: string }) => Worker }).Worker;
  const isBrowserLike = typeof WorkerCtor === "function" && typeof (globalThis as { process?: unknown }).process === "undefined";
  if (worker === undefined && isBrowserLike) {
    const created = new WorkerCtor(new URL("../browser/engine-worker.js", import.meta.url), { type: "module", name: "hearth-engine" });
    return { endpoint: created, dispose: () => created.terminate() };
  }
  worker ??= "inline";
  if (worker === "inline") {
    const { serveEngine } = await import("../service/serve.js");
    const channel = new MessageChannel();
    const server = serveEngine(channel.port1, opts.runtime ?? {});
    return {
      endpoint: channel.port2,
      dispose: () => {
        server.close();
        channel.port1.close();
        channel.port2.close();
      },
    };
  }
  if (opts.runtime !== undefined) {
    throw new TypeError('createEngine: `runtime` options only apply to worker: "inline" (configure a Worker in its own script)');
  }
  const terminate = opts.terminateWorker === true;
  if (isEndpoint(worker)) {
    const w = worker as MessageEndpoint & { terminate?: () => void };
    return { endpoint: w, dispose: () => (terminate ? w.terminate?.() : w.close?.()) };
  }
  if (isNodeWorker(worker)) {
    const endpoint = nodeWorkerEndpoint(worker);
    return { endpoint, dispose: () => (terminate ? endpoint.terminate() : undefined) };
  }
  throw new TypeError('createEngine: `worker` must be a Worker, a MessageEndpoint, a Node worker_threads Worker or "inline"');
}

function embedderSpec(spec: unknown): { model: string; options: EmbedderLoadOptions } | undefined {
  if (spec === undefined) return undefined;
  if (typeof spec === "string" && spec !== "") return { model: spec, options: {} };
  if (typeof spec === "object" && spec !== null && typeof (spec as { model?: unknown }).model === "string" && (spec as { model: string }).model !== "") {
    const { model, ...options } = spec as { model: string } & EmbedderLoadOptions;
    return { model, options: stripUndefined(options) };
  }
  throw new TypeError("createEngine: `embedder` must be an encoder package URL or { model: <package URL>, ...options }");
}

/** Start the engine (Worker or inline), load the chat model and/or the text encoder in it, and return the client API. */
export async function createEngine(opts: CreateEngineOptions & { model: string }): Promise<Engine>;
export async function createEngine(opts: CreateEngineOptions & { model?: undefined; embedder: EmbedderSpec }): Promise<Engine<null>>;
export async function createEngine(opts: CreateEngineOptions): Promise<Engine<ModelInfo | null>>;
export async function createEngine(opts: CreateEngineOptions): Promise<Engine<ModelInfo | null>> {
  const hasModel = typeof opts?.model === "string" && opts.model !== "";
  if (opts?.model !== undefined && !hasModel) throw new TypeError("createEngine: `model` must be a package URL");
  const embedder = embedderSpec(opts?.embedder);
  if (!hasModel && embedder === undefined) {
    throw new TypeError("createEngine: give `model` (a chat package URL), `embedder` (a text-encoder package URL), or both");
  }
  const transport = await openTransport(opts);
  const conn = new Connection(transport.endpoint, {
    dispose: transport.dispose,
    onUnroutedError: opts.onUnroutedError ?? ((err) => console.warn(`[hearth] engine error: ${err.name}: ${err.message}`)),
  });
  const { model, embedder: _e, worker: _w, onProgress, signal, runtime: _r, terminateWorker: _t, onUnroutedError: _u, ...loadOptions } = opts;
  try {
    const info = hasModel
      ? ((await conn.call("load", { model: model as string, options: stripUndefined(loadOptions) }, { onProgress, signal })) as ModelInfo)
      : null;
    const embedderInfo =
      embedder === undefined
        ? null
        : ((await conn.call("load-embedder", { model: embedder.model, options: embedder.options }, { onProgress, signal })) as EmbedderInfo);
    return new Engine(conn, info, embedderInfo);
  } catch (err) {
    conn.close(err instanceof Error ? err : new WorkerError(String(err)));
    throw err;
  }
}

/** Structured clone keeps `undefined` values, which the engine's strict validation would refuse. */
function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** The client API. `M`: ModelInfo with a chat model, null for an embeddings-only engine. */
export class Engine<M extends ModelInfo | null = ModelInfo> {
  /** The loaded chat model (from the engine's load reply); null for an embeddings-only engine. */
  readonly model: M;
  /** The loaded text encoder, or null when createEngine had no `embedder`. */
  readonly embedder: EmbedderInfo | null;
  readonly chat: { readonly completions: ChatCompletions };
  readonly completions: Completions;
  readonly embeddings: Embeddings;
  readonly #conn: Connection;

  /** Use {@link createEngine}. */
  constructor(conn: Connection, model: M, embedder: EmbedderInfo | null = null) {
    this.#conn = conn;
    this.model = model;
    this.embedder = embedder;
    this.embeddings = {
      create: async (body: EmbeddingCreateParams, options: CreateRequestOptions = {}) =>
        (await this.#conn.call("embeddings", { request: body }, { signal: options.signal })) as CreateEmbeddingResponse,
    };
    const chatCreate = ((body: ChatCompletionRequest, options: CreateRequestOptions = {}) =>
      this.#create<ChatCompletionChunk, ChatCompletion>("chat", body, options)) as ChatCompletions["create"];
    const completionCreate = ((body: CompletionRequest, options: CreateRequestOptions = {}) =>
      this.#create<CompletionChunk, Completion>("completion", body, options)) as Completions["create"];
    this.chat = { completions: { create: chatCreate } };
    this.completions = { create: completionCreate };
  }

  async #create<Chunk, Final>(
    type: "chat" | "completion",
    body: ChatCompletionRequest | CompletionRequest,
    options: CreateRequestOptions,
  ): Promise<ChunkStream<Chunk, Final> | Final> {
    const stream = (body as { stream?: unknown } | null)?.stream === true;
    if (!stream) return (await this.#conn.call(type, { request: body }, { signal: options.signal })) as Final;
    const out = new ChunkStream<Chunk, Final>();
    let accepted!: () => void;
    const acceptedP = new Promise<void>((resolve) => (accepted = resolve));
    const { id, result } = this.#conn.start(
      type,
      { request: body },
      {
        signal: options.signal,
        onAccepted: () => accepted(),
        onChunk: (chunk) => out.push(chunk as Chunk),
      },
    );
    out.onCancel = () => this.#conn.cancel(id);
    result.then(
      (final) => out.end(final as Final),
      (err: unknown) => out.fail(err),
    );
    // Resolve once the engine accepted the request (a bad request rejects create() itself, as OpenAI's
    // HTTP 400 does); later errors surface from the iterator.
    await Promise.race([acceptedP, result]);
    return out;
  }

  /** Stop the running generation: it completes with finish_reason "abort" and the text so far. */
  async interrupt(): Promise<void> {
    await this.#conn.call("interrupt", {});
  }

  /** Clear the KV cache (the next request prefills its whole prompt). */
  async resetChat(): Promise<void> {
    await this.#conn.call("reset", {});
  }

  async stats(): Promise<EngineStats> {
    return (await this.#conn.call("stats", {})) as EngineStats;
  }

  /** Abort pending requests, release the model and close the connection (terminating a worker it created). */
  async unload(): Promise<void> {
    if (this.#conn.closed) return;
    try {
      await this.#conn.call("unload", {});
    } finally {
      this.#conn.close(new WorkerError("the engine was unloaded"));
    }
  }

  /** The raw protocol endpoint (for tests and diagnostics). */
  get endpoint(): MessageEndpoint {
    return this.#conn.endpoint;
  }
}
