/**
 * Page side of the RAG worker (src/workers/rag.worker.ts): typed request/response calls with progress
 * events, cancellation, and the chat bridge: when the worker asks for a completion, `chat` (set by
 * main.ts to the SDK engine) streams it and the pieces go back to the worker.
 */
import { deserializeError, serializeError } from "@hearth/sdk/client";
import type { DocumentRecord } from "@hearth/sdk/rag";
import type {
  AddOutcome,
  AskOutcome,
  ChatSpec,
  EmbedderSpec,
  FromWorker,
  IndexStatsView,
  InitResult,
  PassageView,
  RagEvent,
  RagRequest,
  RetrieveOutcome,
  RetrieveSpec,
  ToWorker,
} from "./workers/protocol.ts";

/** Runs one streamed chat completion for the worker; yields text pieces. */
export type ChatRunner = (
  messages: { role: "system" | "user" | "assistant"; content: string }[],
  maxTokens: number,
  signal: AbortSignal,
) => AsyncIterable<string>;

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  onEvent?: ((e: RagEvent) => void) | undefined;
}

export interface CallHandle<T> {
  id: number;
  result: Promise<T>;
  cancel(): void;
}

export class RagClient {
  private readonly worker: Worker;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly chats = new Map<number, AbortController>();
  /** Set once the chat engine is loaded; chat requests before that fail. */
  chat: ChatRunner | null = null;

  constructor() {
    this.worker = new Worker(new URL("./workers/rag.worker.ts", import.meta.url), { type: "module", name: "hearth-rag" });
    this.worker.addEventListener("message", (e: MessageEvent<FromWorker>) => this.onMessage(e.data));
    this.worker.addEventListener("error", (e) => {
      const err = new Error(`the RAG worker failed: ${e.message || "could not start (see the console)"}`);
      err.name = "WorkerError";
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
  }

  private onMessage(m: FromWorker): void {
    if ("chat" in m) {
      void this.runChat(m.chat, m.messages, m.maxTokens);
      return;
    }
    if ("chatCancel" in m) {
      this.chats.get(m.chatCancel)?.abort(new DOMException("cancelled", "AbortError"));
      return;
    }
    const p = this.pending.get(m.id);
    if (p === undefined) return;
    if ("event" in m) {
      p.onEvent?.(m.event);
    } else if ("ok" in m) {
      this.pending.delete(m.id);
      p.resolve(m.ok);
    } else {
      this.pending.delete(m.id);
      p.reject(deserializeError(m.error));
    }
  }

  private async runChat(chatId: number, messages: Parameters<ChatRunner>[0], maxTokens: number): Promise<void> {
    const controller = new AbortController();
    this.chats.set(chatId, controller);
    const send = (m: ToWorker) => this.worker.postMessage(m);
    try {
      if (this.chat === null) throw new Error("the chat model is not loaded yet");
      for await (const piece of this.chat(messages, maxTokens, controller.signal)) send({ chatReply: chatId, piece });
      send({ chatReply: chatId, done: true });
    } catch (err) {
      send({ chatReply: chatId, error: serializeError(err) });
    } finally {
      this.chats.delete(chatId);
    }
  }

  call<T>(req: RagRequest, onEvent?: (e: RagEvent) => void): CallHandle<T> {
    const id = ++this.seq;
    const result = new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onEvent });
    });
    this.worker.postMessage({ id, req } satisfies ToWorker);
    return { id, result, cancel: () => this.worker.postMessage({ id: ++this.seq, req: { type: "cancel", target: id } } satisfies ToWorker) };
  }

  init(indexName: string, embedder: EmbedderSpec, chat: ChatSpec, onEvent: (e: RagEvent) => void): Promise<InitResult> {
    return this.call<InitResult>({ type: "init", indexName, embedder, chat }, onEvent).result;
  }
  add(files: File[], onEvent: (e: RagEvent) => void): CallHandle<AddOutcome[]> {
    return this.call<AddOutcome[]>({ type: "add", files }, onEvent);
  }
  remove(docId: string): Promise<boolean> {
    return this.call<boolean>({ type: "remove", docId }).result;
  }
  list(): Promise<DocumentRecord[]> {
    return this.call<DocumentRecord[]>({ type: "list" }).result;
  }
  stats(): Promise<IndexStatsView> {
    return this.call<IndexStatsView>({ type: "stats" }).result;
  }
  ask(question: string, k: number, onEvent: (e: RagEvent) => void): CallHandle<AskOutcome> {
    return this.call<AskOutcome>({ type: "ask", question, k }, onEvent);
  }
  retrieve(spec: RetrieveSpec): CallHandle<RetrieveOutcome> {
    return this.call<RetrieveOutcome>({ type: "retrieve", spec });
  }
  passage(docId: string, start: number, end: number): Promise<PassageView> {
    return this.call<PassageView>({ type: "passage", docId, start, end }).result;
  }
}
