/**
 * The client end of the engine protocol (../service/protocol.ts): numbered calls over a MessageEndpoint,
 * their replies routed back, remote errors rebuilt as their own classes, cancellation as abort messages.
 * No npm imports here: the client loads unbundled in a browser.
 */
import { AbortError, WorkerError, deserializeError, isSerializedError } from "../errors/index.js";
import { PROTOCOL, type ClientMessage, type EngineMessage, type MessageEndpoint } from "../service/protocol.js";

type Payload<T extends ClientMessage["type"]> = Omit<Extract<ClientMessage, { type: T }>, "type" | "id">;

export interface CallHandlers {
  onProgress?: ((event: Extract<EngineMessage, { type: "progress" }>["event"]) => void) | undefined;
  onAccepted?: (() => void) | undefined;
  onChunk?: ((chunk: Extract<EngineMessage, { type: "chunk" }>["chunk"]) => void) | undefined;
  signal?: AbortSignal | undefined;
}

interface Call extends CallHandlers {
  resolve(result: unknown): void;
  reject(err: Error): void;
}

export interface ConnectionOptions {
  /** Called when the connection closes (terminate an owned worker, close ports). */
  dispose?: (() => void) | undefined;
  /** Errors the engine could not attribute to a request (a message too malformed to carry an id). */
  onUnroutedError?: ((err: Error) => void) | undefined;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

export class Connection {
  readonly endpoint: MessageEndpoint;
  readonly ready: Promise<void>;
  #next = 1;
  readonly #calls = new Map<number, Call>();
  /** Cancelled calls whose final reply (an AbortError, usually) has not arrived yet: ignored, not unrouted. */
  readonly #cancelled = new Set<number>();
  #closed: Error | null = null;
  #readyResolve!: () => void;
  #readyReject!: (err: Error) => void;
  readonly #options: ConnectionOptions;
  readonly #onMessage = (event: MessageEvent): void => this.#receive(event.data as unknown);
  readonly #onError = (event: unknown): void => {
    const e = event as { message?: unknown; filename?: unknown; lineno?: unknown; preventDefault?: () => void };
    e.preventDefault?.();
    const where = typeof e.filename === "string" && e.filename !== "" ? ` at ${e.filename}:${String(e.lineno)}` : "";
    const message = typeof e.message === "string" && e.message !== "" ? e.message : "the engine worker failed (a module that did not load?)";
    this.close(new WorkerError(`${message}${where}`));
  };

  constructor(endpoint: MessageEndpoint, options: ConnectionOptions = {}) {
    this.endpoint = endpoint;
    this.#options = options;
    this.ready = new Promise<void>((resolve, reject) => {
      this.#readyResolve = resolve;
      this.#readyReject = reject;
    });
    this.ready.catch(() => {}); // observed through calls
    endpoint.addEventListener("message", this.#onMessage);
    // Worker: load errors and uncaught exceptions; messageerror: data that could not be deserialized.
    const target = endpoint as unknown as { addEventListener(type: string, l: (e: unknown) => void): void };
    target.addEventListener("error", this.#onError);
    target.addEventListener("messageerror", this.#onError);
    endpoint.start?.();
    // The engine announces itself when it starts; a Worker created earlier may have done so before this
    // listener existed, so ask again (the first "ready" either way resolves `ready`).
    this.#post({ type: "hello", id: this.#next++ });
  }

  get closed(): boolean {
    return this.#closed !== null;
  }

  /** Send a request and wait for its result. Aborting `signal` rejects at once and tells the engine. */
  call<T extends ClientMessage["type"]>(type: T, payload: Payload<T>, handlers: CallHandlers = {}): Promise<unknown> {
    return this.start(type, payload, handlers).result;
  }

  /** call(), also returning the request id (for cancel()). */
  start<T extends ClientMessage["type"]>(type: T, payload: Payload<T>, handlers: CallHandlers = {}): { id: number; result: Promise<unknown> } {
    const id = this.#next++;
    if (this.#closed !== null) return { id, result: Promise.reject(this.#closed) };
    const signal = handlers.signal;
    if (signal?.aborted === true) return { id, result: Promise.reject(new AbortError("the request was aborted before it was sent")) };
    const result = new Promise<unknown>((resolve, reject) => {
      const onAbort = (): void => this.cancel(id, new AbortError("the request was aborted"));
      const done = (): void => signal?.removeEventListener("abort", onAbort);
      this.#calls.set(id, {
        ...handlers,
        resolve: (r) => {
          done();
          resolve(r);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      signal?.addEventListener("abort", onAbort, { once: true });
      this.ready.then(
        () => {
          if (this.#calls.has(id)) this.#post({ type, id, ...payload } as ClientMessage);
        },
        (err: unknown) => this.#settle(id, undefined, err as Error),
      );
    });
    return { id, result };
  }

  /** Cancel call `id`: its promise rejects with `reason` now, and the engine is told to stop it. */
  cancel(id: number, reason: Error = new AbortError("the request was cancelled")): void {
    const call = this.#calls.get(id);
    if (call === undefined) return;
    this.#calls.delete(id);
    this.#cancelled.add(id);
    this.#post({ type: "abort", id: this.#next++, target: id });
    call.reject(reason);
  }

  /** Fail every pending call and stop listening. */
  close(reason: Error = new WorkerError("the engine connection was closed")): void {
    if (this.#closed !== null) return;
    this.#closed = reason;
    this.#readyReject(reason);
    for (const [id, call] of [...this.#calls]) {
      this.#calls.delete(id);
      call.reject(reason);
    }
    this.endpoint.removeEventListener("message", this.#onMessage);
    const target = this.endpoint as unknown as { removeEventListener(type: string, l: (e: unknown) => void): void };
    target.removeEventListener("error", this.#onError);
    target.removeEventListener("messageerror", this.#onError);
    this.#options.dispose?.();
  }

  #post(message: ClientMessage): void {
    if (this.#closed !== null) return;
    this.endpoint.postMessage(message);
  }

  #settle(id: number, result: unknown, error?: Error): void {
    const call = this.#calls.get(id);
    if (call === undefined) return;
    this.#calls.delete(id);
    if (error !== undefined) call.reject(error);
    else call.resolve(result);
  }

  #receive(data: unknown): void {
    if (!isRecord(data) || typeof data["type"] !== "string") return;
    const msg = data as EngineMessage;
    if (msg.type === "ready") {
      if (msg.protocol === PROTOCOL) this.#readyResolve();
      else this.close(new WorkerError(`the engine speaks ${String(msg.protocol)}, this client ${PROTOCOL}: rebuild both from one SDK version`));
      return;
    }
    const id = (msg as { id?: unknown }).id;
    if (typeof id === "number" && this.#cancelled.has(id)) {
      if (msg.type === "error" || msg.type === "result") this.#cancelled.delete(id);
      return;
    }
    if (msg.type === "error") {
      const err = isSerializedError(msg.error) ? deserializeError(msg.error) : new WorkerError("malformed error from the engine");
      if (typeof id === "number" && this.#calls.has(id)) this.#settle(id, undefined, err);
      else this.#options.onUnroutedError?.(err);
      return;
    }
    if (typeof id !== "number") return;
    const call = this.#calls.get(id);
    if (call === undefined) return; // cancelled, or not ours
    switch (msg.type) {
      case "progress":
        try {
          call.onProgress?.(msg.event);
        } catch {
          // a progress callback never breaks a load
        }
        return;
      case "accepted":
        call.onAccepted?.();
        return;
      case "chunk":
        call.onChunk?.(msg.chunk);
        return;
      case "result":
        this.#settle(id, msg.result);
        return;
    }
  }
}

/** A Node `worker_threads` Worker (an EventEmitter) as a {@link MessageEndpoint}. */
export interface NodeWorkerLike {
  postMessage(message: unknown): void;
  on(event: "message" | "error" | "exit", listener: (value: unknown) => void): unknown;
  off(event: "message" | "error" | "exit", listener: (value: unknown) => void): unknown;
  terminate(): unknown;
}

export function nodeWorkerEndpoint(worker: NodeWorkerLike): MessageEndpoint & { terminate(): void } {
  const wrapped = new Map<unknown, (value: unknown) => void>();
  const errorWrapped = new Map<unknown, (value: unknown) => void>();
  return {
    postMessage: (message) => worker.postMessage(message),
    addEventListener(type: string, listener: (event: never) => void) {
      if (type === "message") {
        const f = (data: unknown): void => (listener as (e: { data: unknown }) => void)({ data });
        wrapped.set(listener, f);
        worker.on("message", f);
      } else if (type === "error") {
        const f = (err: unknown): void => (listener as (e: unknown) => void)({ message: err instanceof Error ? err.message : String(err) });
        const onExit = (code: unknown): void => (listener as (e: unknown) => void)({ message: `the engine worker exited (code ${String(code)})` });
        errorWrapped.set(listener, f);
        errorWrapped.set(f, onExit);
        worker.on("error", f);
        worker.on("exit", onExit);
      }
    },
    removeEventListener(type: string, listener: (event: never) => void) {
      if (type === "message") {
        const f = wrapped.get(listener);
        if (f !== undefined) worker.off("message", f);
      } else if (type === "error") {
        const f = errorWrapped.get(listener);
        if (f !== undefined) {
          worker.off("error", f);
          const onExit = errorWrapped.get(f);
          if (onExit !== undefined) worker.off("exit", onExit);
        }
      }
    },
    terminate: () => void worker.terminate(),
  } as MessageEndpoint & { terminate(): void };
}
