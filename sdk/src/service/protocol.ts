/**
 * The engine's Worker protocol: what the client (main thread) and the engine (Worker, or an in-process
 * MessageChannel) say to each other. Plain structured-clone data only.
 *
 * Client -> engine (every message has a positive integer `id`, unique among those in flight):
 *
 *   load        {model, options}   load a package; answered by progress* then result (ModelInfo)
 *   chat        {request}          OpenAI chat completion; answered by accepted, chunk* (when
 *                                   request.stream), then result (the whole ChatCompletion)
 *   completion  {request}          the same for text completions
 *   load-embedder {model, options} load a text-encoder package; progress* then result (EmbedderInfo)
 *   embeddings  {request}          OpenAI embeddings; answered by accepted, then result
 *   abort       {target}           cancel request `target` (queued or running); result {found}
 *   interrupt / reset / stats / unload                              result
 *
 *   hello                          answered by ready (a client that attached late asks again)
 *
 * Engine -> client: ready {protocol} at start and for every hello; progress / accepted / chunk / result / error, each
 * naming the request id. An error answering a message too malformed to have an id carries id null.
 * The engine validates every message (validate.ts) before acting on it; a malformed one is answered
 * with an InvalidMessageError and never executed.
 */
import type { SerializedError } from "../errors/index.js";
import type { EngineLoadOptions, LoadProgressEvent } from "./engine-core.js";
import type { EmbedderLoadOptions } from "./embeddings.js";
import type { ChatCompletionChunk, CompletionChunk } from "./openai.js";

export const PROTOCOL = "hearth-engine/1";

/** Load options on the wire: EngineLoadOptions (packageOptions must be structured-clone data). */
export type WireEngineLoadOptions = EngineLoadOptions;

export type ClientMessage =
  | { type: "load"; id: number; model: string; options?: WireEngineLoadOptions | undefined }
  | { type: "chat"; id: number; request: unknown }
  | { type: "completion"; id: number; request: unknown }
  | { type: "load-embedder"; id: number; model: string; options?: EmbedderLoadOptions | undefined }
  | { type: "embeddings"; id: number; request: unknown }
  | { type: "abort"; id: number; target: number }
  | { type: "interrupt"; id: number }
  | { type: "reset"; id: number }
  | { type: "stats"; id: number }
  | { type: "unload"; id: number }
  | { type: "hello"; id: number };

export type ClientMessageType = ClientMessage["type"];

export type EngineMessage =
  | { type: "ready"; protocol: string }
  | { type: "progress"; id: number; event: LoadProgressEvent }
  | { type: "accepted"; id: number }
  | { type: "chunk"; id: number; chunk: ChatCompletionChunk | CompletionChunk }
  | { type: "result"; id: number; result: unknown }
  | { type: "error"; id: number | null; error: SerializedError };

/**
 * Either end of a message channel: a Worker, a worker's global scope (`self`), a MessagePort (browser
 * or Node). Node's worker_threads `Worker` is an EventEmitter: wrap it with nodeWorkerEndpoint().
 */
export interface MessageEndpoint {
  postMessage(message: unknown): void;
  addEventListener(type: "message", listener: (event: MessageEvent) => void): void;
  removeEventListener(type: "message", listener: (event: MessageEvent) => void): void;
  /** MessagePorts deliver nothing until started. */
  start?: () => void;
  close?: () => void;
}
