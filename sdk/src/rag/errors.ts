/** Typed errors of the RAG index. Every error carries a stable `code` for programs and a sentence for people. */

export type RagErrorCode =
  | "embedding-model-mismatch"
  | "embedder-output"
  | "unsupported-type"
  | "empty-document"
  | "file-too-large"
  | "pdf-no-text-layer"
  | "pdf-invalid"
  | "pdf-encrypted"
  | "pdf-load"
  | "text-decode"
  | "prompt-too-long"
  | "invalid-snapshot"
  | "index-closed"
  | "no-chat-model";

export class RagError extends Error {
  readonly code: RagErrorCode;
  constructor(code: RagErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RagError";
    this.code = code;
  }
}

/** The index was built with another embedding model (or dimension) than the one passed to `openIndex`. */
export class EmbeddingModelMismatchError extends RagError {
  readonly stored: { modelId: string; dim: number };
  readonly current: { modelId: string; dim: number };
  constructor(stored: { modelId: string; dim: number }, current: { modelId: string; dim: number }) {
    super(
      "embedding-model-mismatch",
      `this index was embedded with "${stored.modelId}" (dim ${stored.dim}) but the embedder is "${current.modelId}" ` +
        `(dim ${current.dim}); open it with {reembed: true} to re-embed every chunk, or use the original model`,
    );
    this.name = "EmbeddingModelMismatchError";
    this.stored = stored;
    this.current = current;
  }
}

/** The embedder returned something that breaks its contract (wrong count, wrong length, NaN). */
export class EmbedderOutputError extends RagError {
  constructor(message: string) {
    super("embedder-output", message);
    this.name = "EmbedderOutputError";
  }
}

/** Text could not be extracted (broken PDF, scanned PDF, undecodable bytes). The index is unchanged. */
export class ExtractionError extends RagError {
  constructor(code: "pdf-no-text-layer" | "pdf-invalid" | "pdf-encrypted" | "pdf-load" | "text-decode", message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "ExtractionError";
  }
}

export class UnsupportedTypeError extends RagError {
  readonly mime: string;
  constructor(mime: string, name: string) {
    super("unsupported-type", `cannot index "${name}": unsupported type "${mime || "unknown"}" (supported: PDF, Markdown, HTML, plain text)`);
    this.name = "UnsupportedTypeError";
    this.mime = mime;
  }
}

export class EmptyDocumentError extends RagError {
  constructor(name: string, detail = "the file is empty") {
    super("empty-document", `cannot index "${name}": ${detail}`);
    this.name = "EmptyDocumentError";
  }
}

export class FileTooLargeError extends RagError {
  readonly bytes: number;
  readonly limit: number;
  constructor(name: string, bytes: number, limit: number) {
    super("file-too-large", `cannot index "${name}": ${bytes} bytes is over the limit of ${limit} bytes (option maxBytes)`);
    this.name = "FileTooLargeError";
    this.bytes = bytes;
    this.limit = limit;
  }
}

/** Even with no sources, the question and instructions do not fit the chat model's context. */
export class PromptTooLongError extends RagError {
  constructor(message: string) {
    super("prompt-too-long", message);
    this.name = "PromptTooLongError";
  }
}

export class InvalidSnapshotError extends RagError {
  constructor(message: string) {
    super("invalid-snapshot", message);
    this.name = "InvalidSnapshotError";
  }
}

export class IndexClosedError extends RagError {
  constructor() {
    super("index-closed", "this index is closed");
    this.name = "IndexClosedError";
  }
}

/** Throw the signal's reason (an AbortError DOMException unless the caller gave one) if it is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  signal?.throwIfAborted();
}
