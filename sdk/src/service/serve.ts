/**
 * The engine end of the Worker protocol (protocol.ts): an {@link EngineCore} driven by validated
 * messages. worker.ts calls this on the module Worker's global scope; the client's "inline" transport
 * calls it on one end of an in-process MessageChannel, so both take the same path.
 *
 * Messages are handled in arrival order (validation is async the first time, while valibot loads, so
 * a FIFO inbox keeps an abort from overtaking the request it cancels). Long operations (load, chat)
 * are started, not awaited, by the inbox; EngineCore queues them so GPU work never interleaves.
 */
import { EngineCore, type EngineRuntimeOptions, type LoadProgressEvent } from "./engine-core.js";
import { InvalidMessageError, serializeError } from "../errors/index.js";
import type { ChatCompletionChunk, CompletionChunk } from "./openai.js";
import { PROTOCOL, type ClientMessage, type EngineMessage, type MessageEndpoint } from "./protocol.js";
import { validateChatRequest, validateClientMessage, validateCompletionRequest, validateEmbeddingRequest } from "./validate.js";

export interface EngineServer {
  readonly core: EngineCore;
  /** Stop listening (the model stays loaded; call core.unload() for that). */
  close(): void;
}

function idOf(data: unknown): number | null {
  const id = (data as { id?: unknown } | null)?.id;
  return typeof id === "number" && Number.isSafeInteger(id) && id > 0 ? id : null;
}

/** Serve an EngineCore on `endpoint`. `runtime`: realm-local options (fetch, gpu, logger). */
export function serveEngine(endpoint: MessageEndpoint, runtime: EngineRuntimeOptions = {}): EngineServer {
  const core = new EngineCore(runtime);
  /** Requests in flight (load, chat, completion) and their cancel handles. */
  const active = new Map<number, AbortController>();
  let inbox: Promise<void> = Promise.resolve();
  let closed = false;

  const post = (message: EngineMessage): void => {
    if (closed) return;
    try {
      endpoint.postMessage(message);
    } catch (err) {
      // e.g. DataCloneError: a progress event that cannot be cloned is dropped (it must not fail the
      // load); anything else is reported instead of the message.
      if (message.type === "progress") return;
      if (message.type !== "error") {
        endpoint.postMessage({ type: "error", id: "id" in message ? message.id : null, error: serializeError(err) } satisfies EngineMessage);
      }
    }
  };
  const fail = (id: number | null, err: unknown): void => post({ type: "error", id, error: serializeError(err) });

  /** Run a long operation without blocking the inbox; reply with its result or error. */
  const start = (id: number, job: (signal: AbortSignal) => Promise<unknown>): void => {
    const controller = new AbortController();
    active.set(id, controller);
    void job(controller.signal)
      .then(
        (result) => post({ type: "result", id, result }),
        (err: unknown) => fail(id, err),
      )
      .finally(() => active.delete(id));
  };

  const handle = async (data: unknown): Promise<void> => {
    let msg: ClientMessage;
    try {
      msg = await validateClientMessage(data);
    } catch (err) {
      fail(idOf(data), err);
      return;
    }
    const { id } = msg;
    if (active.has(id)) {
      fail(id, new InvalidMessageError(`request id ${id} is already in flight`, "id"));
      return;
    }
    switch (msg.type) {
      case "load": {
        const options = msg.options ?? {};
        start(id, (signal) =>
          core.load(msg.model, {
            ...options,
            signal,
            onProgress: (event: LoadProgressEvent) => post({ type: "progress", id, event }),
          }),
        );
        return;
      }
      case "chat":
      case "completion": {
        // Validate before accepting, so create() rejects a bad request at once (as an HTTP 400 would).
        const onChunk = (chunk: ChatCompletionChunk | CompletionChunk): void => post({ type: "chunk", id, chunk });
        try {
          if (msg.type === "chat") {
            const request = await validateChatRequest(msg.request);
            post({ type: "accepted", id });
            start(id, (signal) => core.chatCompletion(request, { signal, onChunk: request.stream === true ? onChunk : undefined }));
          } else {
            const request = await validateCompletionRequest(msg.request);
            post({ type: "accepted", id });
            start(id, (signal) => core.completion(request, { signal, onChunk: request.stream === true ? onChunk : undefined }));
          }
        } catch (err) {
          fail(id, err);
        }
        return;
      }
      case "load-embedder": {
        const options = msg.options ?? {};
        start(id, (signal) =>
          core.loadEmbedder(msg.model, {
            ...options,
            signal,
            onProgress: (event: LoadProgressEvent) => post({ type: "progress", id, event }),
          }),
        );
        return;
      }
      case "embeddings": {
        try {
          // Validated here too, so create() rejects a bad request before it queues (core re-checks `dimensions`).
          const request = await validateEmbeddingRequest(msg.request, core.embedder?.dim);
          post({ type: "accepted", id });
          start(id, (signal) => core.embeddings(request, { signal }));
        } catch (err) {
          fail(id, err);
        }
        return;
      }
      case "abort": {
        const target = active.get(msg.target);
        target?.abort();
        post({ type: "result", id, result: { found: target !== undefined } });
        return;
      }
      case "interrupt":
        core.interrupt();
        post({ type: "result", id, result: null });
        return;
      case "stats":
        post({ type: "result", id, result: core.stats() });
        return;
      case "reset":
        start(id, () => core.resetChat());
        return;
      case "unload":
        start(id, () => core.unload());
        return;
      case "hello":
        post({ type: "ready", protocol: PROTOCOL });
        return;
    }
  };

  const onMessage = (event: MessageEvent): void => {
    const data: unknown = event.data;
    inbox = inbox.then(() => handle(data)).catch((err: unknown) => fail(idOf(data), err));
  };
  endpoint.addEventListener("message", onMessage);
  endpoint.start?.();
  post({ type: "ready", protocol: PROTOCOL });
  return {
    core,
    close() {
      closed = true;
      endpoint.removeEventListener("message", onMessage);
    },
  };
}
