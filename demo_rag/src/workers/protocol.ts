/**
 * Messages between the page (src/rag-client.ts) and the RAG worker (src/workers/rag.worker.ts).
 *
 * Page -> worker: {id, req} requests, plus replies to the worker's chat requests.
 * Worker -> page: {id, ok} / {id, error} replies, {id, event} progress for a request, and
 * {chat} requests: the worker builds the answer prompt, but the chat model runs in the SDK's engine
 * worker, which the page owns; so the page streams the completion and forwards the text pieces back.
 *
 * Everything here is structured-clone data (File objects included).
 */
import type { SerializedError } from "@hearth/sdk/client";
import type { DocumentRecord } from "@hearth/sdk/rag";

export interface EmbedderSpec {
  url: string;
  /** "wasm-cpu" when WebGPU is unavailable. */
  target: "webgpu" | "wasm-cpu";
}

export interface ChatSpec {
  /** The chat model's package folder: its tokenizer and chat template size the prompts. */
  url: string;
  /** KV-cache capacity the engine was (or will be) loaded with, in tokens. */
  maxContext: number;
}

/** Where a model load spent its time (the SDK's PackageLoadTimings, ms). */
export interface LoadPhases {
  fetchVerifyMs: number;
  pipelinesMs: number;
  tensorCacheMs: number;
  totalMs: number;
}

export interface InitResult {
  embedder: { modelId: string; dim: number; maxTokens: number; loadMs: number; device: string; cache: LoadCacheSummary; phases: LoadPhases };
  chat: { contextWindow: number; hasTemplate: boolean };
  chunkTokens: number;
  documents: DocumentRecord[];
  stats: IndexStatsView;
}

export interface LoadCacheSummary {
  /** Package files read back from the local store (no download) / downloaded now. */
  filesFromCache: number;
  filesDownloaded: number;
  bytesFromCache: number;
  bytesDownloaded: number;
}

export interface IndexStatsView {
  documents: number;
  chunks: number;
  bytes: number;
  embeddingModel: string;
}

/** One source the answer may cite, as shown to the user. */
export interface SourceView {
  n: number;
  docId: string;
  title: string;
  mime: string;
  page: number | null;
  pageEnd: number | null;
  start: number;
  end: number;
  text: string;
  score: number;
  ranks: { bm25: number | null; vector: number | null };
}

export interface AddOutcome {
  name: string;
  status: "added" | "duplicate" | "failed";
  document?: DocumentRecord;
  error?: SerializedError;
  warnings?: string[];
  ms: number;
}

export interface AskOutcome {
  answer: string;
  /** Cited source numbers that hold the answer (the model's, else the app's match). */
  cited: number[];
  /**
   * Who cited: "model" (at least one of its [n] holds the answer's words), "app" (the model cited none that
   * does; the app matched the source and appended its [n]: attribute.ts), "none" (no source matches).
   */
  citedBy: "model" | "app" | "none";
  /** The model's citations whose source does not hold the answer's words (left in the text, not counted). */
  unsupported: number[];
  /** Markers that cite no given source. */
  invalid: { marker: string; n: number }[];
  retrievalMs: number;
  promptTokens: number;
}

/** A retrieval without an answer (the Extract action): what to search for, and the prompt to build around the passages. */
export interface RetrieveSpec {
  /** Search query (keywords). */
  query: string;
  k: number;
  /** The prompt's "question": the task given to the model. */
  task: string;
  system: string;
  instruction: string;
  /** Tokens kept free for the reply. */
  maxAnswerTokens: number;
}

export interface RetrieveOutcome {
  sources: SourceView[];
  /** Passages found that did not fit the context. */
  dropped: number;
  retrievalMs: number;
  promptTokens: number;
  /** The built prompt: the page sends it to the chat model itself (with a response_format). */
  messages: { role: "system" | "user" | "assistant"; content: string }[];
}

export interface PassageView {
  docId: string;
  title: string;
  mime: string;
  /** Page count of the document (PDF), else null. */
  pages: number | null;
  /** Extracted text before, inside and after the cited span (a window around it). */
  before: string;
  passage: string;
  after: string;
}

export type RagRequest =
  | { type: "init"; indexName: string; embedder: EmbedderSpec; chat: ChatSpec }
  | { type: "add"; files: File[] }
  | { type: "remove"; docId: string }
  | { type: "list" }
  | { type: "stats" }
  | { type: "ask"; question: string; k: number }
  | { type: "retrieve"; spec: RetrieveSpec }
  | { type: "passage"; docId: string; start: number; end: number }
  | { type: "cancel"; target: number };

export type RagEvent =
  | { type: "load"; phase: string; detail: Record<string, unknown> }
  | { type: "ingest"; index: number; total: number; name: string; phase: string; embedded?: number; chunks?: number }
  | { type: "sources"; sources: SourceView[]; dropped: number; promptTokens: number; retrievalMs: number }
  | { type: "piece"; text: string };

export type ToWorker =
  | { id: number; req: RagRequest }
  | { chatReply: number; piece: string }
  | { chatReply: number; done: true }
  | { chatReply: number; error: SerializedError };

export type FromWorker =
  | { id: number; ok: unknown }
  | { id: number; error: SerializedError }
  | { id: number; event: RagEvent }
  | { chat: number; messages: { role: "system" | "user" | "assistant"; content: string }[]; maxTokens: number }
  | { chatCancel: number };
