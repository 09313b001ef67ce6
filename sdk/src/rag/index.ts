/**
 * @hearth/sdk/rag: a local retrieval index in IndexedDB (documents → chunks → vectors + BM25), hybrid
 * search, and grounded answers with citations. The embedder and chat model are injected (types.ts).
 *
 *   import { openIndex } from "@hearth/sdk/rag";
 *   const index = await openIndex("notes", { embedder, chat });
 *   await index.add([file1, file2, { text: "…", title: "Memo" }], { onProgress });
 *   const hits = await index.search("when is the review?", { k: 5, filter: { mime: "application/pdf" } });
 *   const { answer, citations } = await index.ask("When is the review?");
 */

import { Catalog } from "./catalog.js";
import { termFrequencies } from "./bm25.js";
import type { ChunkWarning } from "./chunk.js";
import { resolveCitations, type CitationReport } from "./citations.js";
import { embedAll, embedQuery } from "./embed.js";
import { EmbeddingModelMismatchError, IndexClosedError, InvalidSnapshotError, RagError } from "./errors.js";
import { DEFAULT_MAX_BYTES } from "./extract.js";
import type { PdfjsLoader } from "./extract-pdf.js";
import { buildRecords, chunkIdFor, inputName, prepareDocument, readInput, sha256Hex, type AddInput, type IngestPhase, type IngestTimings } from "./ingest.js";
import { buildPrompt, type PromptOptions, type PromptSource } from "./prompt.js";
import { hybridSearch, type SearchHit, type SearchOptions } from "./search.js";
import { base64ToF32, f32ToBase64, readSnapshot, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, type IndexSnapshot } from "./snapshot.js";
import {
  deleteDocument,
  openDatabase,
  expandText,
  readChunks,
  readDocChunks,
  readDocVectors,
  readF32,
  readModel,
  readSchema,
  readText,
  TermDictionary,
  TermsResetError,
  writeDocument,
  writeTransaction,
  type ChunkRecord,
  type DocumentRecord,
  type Migration,
  type ModelMeta,
  type PreparedDocument,
  type PreparedVector,
  type RagDB,
} from "./store.js";
import type { ChatModel, Embedder } from "./types.js";
import { quantize } from "./vectors.js";

export * from "./types.js";
export * from "./errors.js";
export type { AddInput, FileInput, IngestTimings, TextInput } from "./ingest.js";
export { newIngestTimings } from "./ingest.js";
export type { ChunkRecord, DocumentRecord, JsonValue, Migration, VectorRecord } from "./store.js";
export { MIGRATIONS, SCHEMA_VERSION, databaseName } from "./store.js";
export type { ChunkWarning, TextChunk, ChunkAsyncOptions, ChunkOptions, ChunkResult } from "./chunk.js";
export { chunkText, chunkTextAsync } from "./chunk.js";
export type { Fusion, SearchFilter, SearchHit, SearchOptions, SearchTimings, DuplicateRef } from "./search.js";
export { convexFusion, DEFAULT_FUSION, reciprocalRankFusion, RRF_K } from "./search.js";
export type { BuiltPrompt, PromptOptions, PromptSource } from "./prompt.js";
export { buildPrompt, DEFAULT_ANSWER_INSTRUCTION, DEFAULT_PROMPT_EXAMPLES, DEFAULT_SYSTEM_PROMPT, type PromptExample } from "./prompt.js";
export type { Citation, CitationMarker, CitationReport, CitedSource, InvalidCitation } from "./citations.js";
export { parseCitations, resolveCitations } from "./citations.js";
export type { IndexSnapshot, SnapshotDocument } from "./snapshot.js";
export type { PageSpan, PdfjsLike, PdfjsLoader } from "./extract-pdf.js";
export type { SupportedMime } from "./extract.js";
export { DEFAULT_MAX_BYTES, SUPPORTED_MIMES } from "./extract.js";
export { tokenize as bm25Tokenize } from "./bm25.js";

export interface OpenIndexOptions {
  embedder: Embedder;
  /** Needed for ask(). */
  chat?: ChatModel;
  /** IndexedDB factory (default globalThis.indexedDB). In Node tests: fake-indexeddb with its globals installed. */
  dbFactory?: IDBFactory;
  /** When the index was built with another embedder: re-embed every chunk instead of throwing. */
  reembed?: boolean;
  onReembedProgress?: (p: { documents: number; total: number }) => void;
  /** Largest file accepted, in bytes (default 64 MiB). */
  maxBytes?: number;
  /** Chunk size limit (default and maximum: embedder.maxTokens) and overlap (default 12% of the limit). */
  chunking?: { maxTokens?: number; overlapTokens?: number };
  /** Texts per embed() call (default 16). */
  embedBatchSize?: number;
  /** pdf.js loader (default: see extract-pdf.ts). */
  pdfjs?: PdfjsLoader;
  /** Clock for createdAt (default Date.now). */
  now?: () => number;
  /** Called after the in-memory search state is (re)loaded: ms for the IndexedDB reads and for building it. */
  onLoad?: (t: { readMs: number; buildMs: number; chunks: number }) => void;
  /** Schema migrations (default MIGRATIONS). Only for tests of migrations. */
  migrations?: readonly Migration[];
}

export interface AddProgress {
  /** Position of the input in this add() call, 0-based, and the number of inputs. */
  index: number;
  total: number;
  name: string;
  phase: IngestPhase | "done" | "duplicate" | "failed";
  /** During "embed": chunks embedded so far and chunks in the document. */
  embedded?: number;
  chunks?: number;
}

export interface AddOptions {
  onProgress?: (p: AddProgress) => void;
  signal?: AbortSignal;
  /**
   * false (default): the first failing input rejects add() with its typed error; inputs before it stay
   * added (each document is atomic). true: failures are returned as {status: "failed"} entries.
   */
  continueOnError?: boolean;
  /** An object to which the time spent per ingest stage is added (ms), for profiling. */
  timings?: IngestTimings;
}

export type AddResult =
  | { status: "added"; document: DocumentRecord; warnings: string[]; chunkWarnings: ChunkWarning[] }
  | { status: "duplicate"; document: DocumentRecord }
  | { status: "failed"; name: string; error: Error };

export interface IndexStats {
  documents: number;
  chunks: number;
  /** Sum of the documents' original sizes. */
  bytes: number;
  embedding: ModelMeta;
  schemaVersion: number;
}

/** The answer ask() gives, without calling the chat model, when retrieval finds nothing relevant. */
export const NOT_FOUND_ANSWER = "I could not find this in your documents.";

/** Default for AskOptions.minVectorScore. */
export const DEFAULT_MIN_VECTOR_SCORE = 0.3;

export interface AskOptions extends PromptOptions {
  /** Sources to retrieve before sizing (default 8). */
  k?: number;
  /**
   * A hit counts as relevant when it matched a query term (BM25) or its cosine with the query is at least
   * this (default 0.3, fit for sentence-transformers models such as all-MiniLM-L6-v2, whose unrelated
   * passages score mostly below 0.2; set it for your embedder). With no relevant hit, ask() answers
   * `notFoundAnswer` without calling the chat model, and `notFound` is true.
   */
  minVectorScore?: number;
  /** Default NOT_FOUND_ANSWER. */
  notFoundAnswer?: string;
  filter?: SearchOptions["filter"];
  signal?: AbortSignal;
  stream?: boolean;
}

export interface AskResult {
  answer: string;
  citations: CitationReport;
  /** The sources given to the model, numbered as it saw them. */
  sources: PromptSource[];
  /** Retrieved hits that did not fit the context. */
  dropped: SearchHit[];
  promptTokens: number;
  /** True when retrieval found nothing relevant and `answer` is the not-found answer (no model call). */
  notFound: boolean;
}

/** ask(…, {stream: true}): iterate for answer text as it is generated; `result` resolves at the end. */
export interface AskStream extends AsyncIterable<string> {
  readonly result: Promise<AskResult>;
}

export interface ImportResult {
  added: string[];
  duplicates: string[];
}

export interface RagIndex {
  readonly name: string;
  add(input: AddInput | readonly AddInput[], opts?: AddOptions): Promise<AddResult[]>;
  search(query: string, opts?: SearchOptions): Promise<SearchHit[]>;
  ask(question: string, opts: AskOptions & { stream: true }): AskStream;
  ask(question: string, opts?: AskOptions & { stream?: false }): Promise<AskResult>;
  remove(docId: string): Promise<boolean>;
  list(): Promise<DocumentRecord[]>;
  get(docId: string): Promise<DocumentRecord | undefined>;
  /** A document's extracted text (what chunk spans index into). */
  getText(docId: string): Promise<string | undefined>;
  stats(): Promise<IndexStats>;
  export(): Promise<IndexSnapshot>;
  exportBlob(): Promise<Blob>;
  import(snapshot: IndexSnapshot | string | Blob, opts?: { reembed?: boolean; signal?: AbortSignal }): Promise<ImportResult>;
  clear(): Promise<void>;
  close(): void;
}

function assertNever(message: string): never {
  throw new Error(message);
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** A FIFO of text pieces with an async iterator; push/end/fail from the producer. */
class PieceQueue implements AsyncIterable<string> {
  private pieces: string[] = [];
  private done = false;
  private error: unknown = undefined;
  private wake: (() => void) | null = null;
  private iterated = false;

  push(p: string): void {
    this.pieces.push(p);
    this.wake?.();
  }
  end(): void {
    this.done = true;
    this.wake?.();
  }
  fail(err: unknown): void {
    this.error = err;
    this.done = true;
    this.wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    if (this.iterated) throw new Error("an ask() stream can be iterated once");
    this.iterated = true;
    for (;;) {
      if (this.pieces.length > 0) {
        yield this.pieces.shift() as string;
        continue;
      }
      if (this.done) {
        if (this.error !== undefined) throw this.error;
        return;
      }
      await new Promise<void>((r) => (this.wake = r));
      this.wake = null;
    }
  }
}

class Index implements RagIndex {
  private closed = false;
  private stale = false;
  private writes: Promise<unknown> = Promise.resolve();
  private channel: BroadcastChannel | null = null;

  constructor(
    readonly name: string,
    private readonly db: RagDB,
    private catalog: Catalog,
    private readonly model: ModelMeta,
    private readonly schemaVersion: number,
    private readonly opts: OpenIndexOptions,
  ) {
    if (typeof BroadcastChannel !== "undefined") {
      this.channel = new BroadcastChannel(`hearth-rag:${name}`);
      this.channel.onmessage = () => {
        this.stale = true;
      };
      (this.channel as { unref?: () => void }).unref?.(); // Node: do not keep the process alive
    }
  }

  private get embedder(): Embedder {
    return this.opts.embedder;
  }

  private get chunkMaxTokens(): number {
    const want = this.opts.chunking?.maxTokens ?? this.embedder.maxTokens;
    return Math.min(want, this.embedder.maxTokens);
  }

  private check(): void {
    if (this.closed) throw new IndexClosedError();
  }

  /** Reload the in-memory catalog if another connection changed the index. */
  private async fresh(): Promise<Catalog> {
    this.check();
    if (this.stale) {
      this.stale = false;
      const model = await readModel(this.db);
      if (model !== undefined && (model.modelId !== this.model.modelId || model.dim !== this.model.dim)) {
        this.closed = true;
        throw new EmbeddingModelMismatchError(model, this.model);
      }
      this.catalog = await Catalog.load(this.db, this.model.modelId);
    }
    return this.catalog;
  }

  private changed(): void {
    this.channel?.postMessage({ type: "changed" });
  }

  /** Run write operations one at a time, in call order. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writes.then(fn, fn);
    this.writes = run.catch(() => undefined);
    return run;
  }

  private async commit(p: PreparedDocument, signal: AbortSignal | undefined, replace: boolean, timings?: IngestTimings): Promise<DocumentRecord | null> {
    const t0 = performance.now();
    const write = (catalog: Catalog) =>
      writeTransaction(
        this.db,
        async (tx) => {
          if (replace) {
            await deleteDocument(tx, p.document.id);
          } else {
            const dup = await tx.objectStore("documents").index("by-hash").get(p.document.contentHash);
            if (dup !== undefined) return { dup };
          }
          return { written: await writeDocument(tx, p, catalog.terms) };
        },
        signal,
      );
    let catalog = this.catalog;
    let result: Awaited<ReturnType<typeof write>>;
    try {
      result = await write(catalog);
    } catch (err) {
      if (!(err instanceof TermsResetError)) throw err;
      // Another connection cleared the index since this one loaded it: reload, then write again.
      catalog = this.catalog = await Catalog.load(this.db, this.model.modelId);
      result = await write(catalog);
    }
    const t1 = performance.now();
    const existing = "dup" in result ? result.dup : null;
    if ("written" in result) {
      if (replace) catalog.remove(p.document.id);
      catalog.addWritten(p.document, result.written);
      this.changed();
    }
    if (timings !== undefined) {
      timings.writeMs += t1 - t0;
      timings.memoryIndexMs += performance.now() - t1;
    }
    return existing;
  }

  add(input: AddInput | readonly AddInput[], opts: AddOptions = {}): Promise<AddResult[]> {
    this.check();
    const inputs: readonly AddInput[] = Array.isArray(input) ? input : [input as AddInput];
    return this.serial(async () => {
      await this.fresh();
      const results: AddResult[] = [];
      for (let index = 0; index < inputs.length; index++) {
        const item = inputs[index] as AddInput;
        const name = inputName(item);
        const progress = (phase: AddProgress["phase"], extra: Partial<AddProgress> = {}) =>
          opts.onProgress?.({ index, total: inputs.length, name, phase, ...extra });
        try {
          opts.signal?.throwIfAborted();
          results.push(await this.addOne(item, opts.signal, progress, opts.timings));
        } catch (err) {
          progress("failed");
          // An abort stops the whole call; so does any failure unless continueOnError.
          if (opts.continueOnError !== true || opts.signal?.aborted === true) throw err;
          results.push({ status: "failed", name, error: asError(err) });
        }
      }
      return results;
    });
  }

  private async addOne(
    item: AddInput,
    signal: AbortSignal | undefined,
    progress: (phase: AddProgress["phase"], extra?: Partial<AddProgress>) => void,
    timings: IngestTimings | undefined,
  ): Promise<AddResult> {
    const maxBytes = this.opts.maxBytes ?? DEFAULT_MAX_BYTES;
    const raw = await readInput(item, maxBytes);
    const contentHash = await sha256Hex(raw.bytes);
    const known = [...this.catalog.docs.values()].find((d) => d.contentHash === contentHash);
    if (known !== undefined) {
      progress("duplicate");
      return { status: "duplicate", document: known };
    }
    const { prepared, warnings, chunkWarnings } = await prepareDocument(raw, contentHash, {
      timings,
      embedder: this.embedder,
      maxBytes,
      chunkMaxTokens: this.chunkMaxTokens,
      overlapTokens: this.opts.chunking?.overlapTokens,
      batchSize: this.opts.embedBatchSize ?? 16,
      pdfjs: this.opts.pdfjs,
      now: this.opts.now ?? Date.now,
      signal,
      onPhase: (phase, detail) => progress(phase, detail ?? {}),
    });
    progress("store");
    const dup = await this.commit(prepared, signal, false, timings);
    if (dup !== null) {
      progress("duplicate");
      return { status: "duplicate", document: dup };
    }
    progress("done");
    return { status: "added", document: prepared.document, warnings, chunkWarnings };
  }

  async search(query: string, opts: SearchOptions = {}): Promise<SearchHit[]> {
    const catalog = await this.fresh();
    return hybridSearch(
      {
        catalog,
        embedQuery: (q, signal) => embedQuery(this.embedder, q, signal),
        readF32: (ids) => readF32(this.db, ids),
        readChunks: (ids) => readChunks(this.db, ids),
      },
      query,
      opts,
    );
  }

  ask(question: string, opts: AskOptions & { stream: true }): AskStream;
  ask(question: string, opts?: AskOptions & { stream?: false }): Promise<AskResult>;
  ask(question: string, opts: AskOptions = {}): AskStream | Promise<AskResult> {
    const queue = new PieceQueue();
    const result = this.runAsk(question, opts, (p) => queue.push(p)).then(
      (r) => {
        queue.end();
        return r;
      },
      (err: unknown) => {
        queue.fail(err);
        throw err;
      },
    );
    if (opts.stream !== true) return result;
    result.catch(() => undefined); // the error also reaches the iterator; do not report it as unhandled
    return Object.assign(queue, { result }) as unknown as AskStream;
  }

  private async runAsk(question: string, opts: AskOptions, onPiece: (p: string) => void): Promise<AskResult> {
    this.check();
    const chat = this.opts.chat;
    if (chat === undefined) throw new RagError("no-chat-model", "ask() needs a chat model: pass {chat} to openIndex");
    const hits = await this.search(question, {
      k: opts.k ?? 8,
      ...(opts.filter === undefined ? {} : { filter: opts.filter }),
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    });
    const minVector = opts.minVectorScore ?? DEFAULT_MIN_VECTOR_SCORE;
    if (!hits.some((h) => h.scores.bm25 !== null || (h.scores.vector !== null && h.scores.vector >= minVector))) {
      const answer = opts.notFoundAnswer ?? NOT_FOUND_ANSWER;
      onPiece(answer);
      return { answer, citations: resolveCitations(answer, []), sources: [], dropped: hits, promptTokens: 0, notFound: true };
    }
    const prompt = buildPrompt(question, hits, chat, opts);
    let answer = "";
    for await (const piece of chat.stream(prompt.messages, {
      maxTokens: prompt.maxAnswerTokens,
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    })) {
      opts.signal?.throwIfAborted();
      answer += piece;
      onPiece(piece);
    }
    opts.signal?.throwIfAborted();
    return {
      answer,
      citations: resolveCitations(answer, prompt.sources),
      sources: prompt.sources,
      dropped: prompt.dropped,
      promptTokens: prompt.promptTokens,
      notFound: false,
    };
  }

  remove(docId: string): Promise<boolean> {
    this.check();
    return this.serial(async () => {
      await this.fresh();
      const removed = await writeTransaction(this.db, (tx) => deleteDocument(tx, docId));
      if (removed) {
        this.catalog.remove(docId);
        this.changed();
      }
      return removed;
    });
  }

  async list(): Promise<DocumentRecord[]> {
    return (await this.fresh()).list();
  }

  async get(docId: string): Promise<DocumentRecord | undefined> {
    return (await this.fresh()).docs.get(docId);
  }

  async getText(docId: string): Promise<string | undefined> {
    this.check();
    return (await readText(this.db, docId))?.text;
  }

  async stats(): Promise<IndexStats> {
    const c = await this.fresh();
    let bytes = 0;
    for (const d of c.docs.values()) bytes += d.bytes;
    return { documents: c.docs.size, chunks: c.chunkCount, bytes, embedding: { ...this.model }, schemaVersion: this.schemaVersion };
  }

  async export(): Promise<IndexSnapshot> {
    const catalog = await this.fresh();
    const documents: IndexSnapshot["documents"] = [];
    for (const document of catalog.list()) {
      const tx = this.db.transaction(["texts", "chunks", "vectors"], "readonly");
      const [text, chunks, vectors] = await Promise.all([
        tx.objectStore("texts").get(document.id),
        readDocChunks(tx.objectStore("chunks"), document.id),
        readDocVectors(tx.objectStore("vectors"), document.id),
      ]);
      await tx.done;
      const full = text === undefined ? undefined : expandText(text, chunks);
      chunks.sort((a, b) => a.ordinal - b.ordinal);
      const byChunk = new Map(vectors.map((v) => [v.chunkId, v]));
      documents.push({
        document,
        text: full?.text ?? "",
        pages: full?.pages ?? null,
        chunks,
        vectors: chunks.map((c) => {
          const v = byChunk.get(c.id);
          if (v === undefined) throw new Error(`internal: chunk ${c.id} has no vector`);
          return f32ToBase64(v.f32);
        }),
      });
    }
    return { format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, exportedAt: Date.now(), embedding: { ...this.model }, documents };
  }

  async exportBlob(): Promise<Blob> {
    return new Blob([JSON.stringify(await this.export())], { type: "application/json" });
  }

  import(snapshotInput: IndexSnapshot | string | Blob, opts: { reembed?: boolean; signal?: AbortSignal } = {}): Promise<ImportResult> {
    this.check();
    return this.serial(async () => {
      const snapshot = await readSnapshot(snapshotInput);
      await this.fresh();
      const sameModel = snapshot.embedding.modelId === this.model.modelId && snapshot.embedding.dim === this.model.dim;
      if (!sameModel && opts.reembed !== true) throw new EmbeddingModelMismatchError(snapshot.embedding, this.model);
      const result: ImportResult = { added: [], duplicates: [] };
      for (const sd of snapshot.documents) {
        opts.signal?.throwIfAborted();
        const document = sd.document;
        if ([...this.catalog.docs.values()].some((d) => d.contentHash === document.contentHash)) {
          result.duplicates.push(document.id);
          continue;
        }
        for (const c of sd.chunks) {
          if (sd.text.slice(c.start, c.end) !== c.text) {
            throw new InvalidSnapshotError(`invalid snapshot: a chunk of ${document.id} does not match its span in the text`);
          }
        }
        let prepared: PreparedDocument;
        if (sameModel) {
          const chunks: ChunkRecord[] = sd.chunks.map((c, i) => ({ ...c, id: chunkIdFor(document.id, i), docId: document.id, ordinal: i }));
          const vectors: PreparedVector[] = chunks.map((c, i) => {
            const f32 = base64ToF32(sd.vectors[i] as string, this.model.dim);
            if (!f32.every(Number.isFinite)) throw new InvalidSnapshotError(`invalid snapshot: a vector of ${document.id} is not finite`);
            const q = quantize(f32);
            return { chunkId: c.id, docId: document.id, modelId: this.model.modelId, f32, i8: q.i8, scale: q.scale };
          });
          prepared = {
            document: { ...document, chunkCount: chunks.length },
            text: { docId: document.id, text: sd.text, pages: sd.pages },
            chunks,
            vectors,
            terms: chunks.map((c) => ({ chunkId: c.id, ...termFrequencies(c.text) })),
          };
        } else {
          prepared = (await buildRecords(document, sd.text, sd.pages, this.recordOptions(opts.signal))).prepared;
        }
        const dup = await this.commit(prepared, opts.signal, false);
        (dup === null ? result.added : result.duplicates).push(document.id);
      }
      return result;
    });
  }

  private recordOptions(signal: AbortSignal | undefined) {
    return {
      embedder: this.embedder,
      chunkMaxTokens: this.chunkMaxTokens,
      overlapTokens: this.opts.chunking?.overlapTokens,
      batchSize: this.opts.embedBatchSize ?? 16,
      signal,
      onPhase: () => undefined,
    };
  }

  clear(): Promise<void> {
    this.check();
    return this.serial(async () => {
      await writeTransaction(this.db, async (tx) => {
        await Promise.all((["documents", "texts", "chunks", "vectors", "docindex", "terms"] as const).map((store) => tx.objectStore(store).clear()));
      });
      this.catalog = new Catalog(this.model.modelId);
      this.changed();
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.channel?.close();
    this.channel = null;
    this.db.close();
  }

  /** Re-embed (and where needed re-chunk) every document for the current embedder. Resumable. */
  static async reembed(db: RagDB, opts: OpenIndexOptions, chunkMaxTokens: number): Promise<void> {
    const embedder = opts.embedder;
    const docs = await db.getAll("documents");
    // Filled from the terms store by the first write (writeDocument brings it up to date).
    const dict = new TermDictionary();
    const rewrite = (prepared: PreparedDocument) =>
      writeTransaction(db, async (wtx) => {
        await deleteDocument(wtx, prepared.document.id);
        const written = await writeDocument(wtx, prepared, dict);
        return written.terms;
      }).then((terms) => {
        if (terms !== null) dict.append(terms);
      });
    let done = 0;
    for (const document of docs) {
      const tx = db.transaction(["chunks", "vectors", "texts"], "readonly");
      const [chunks, vectors, stored] = await Promise.all([
        readDocChunks(tx.objectStore("chunks"), document.id),
        readDocVectors(tx.objectStore("vectors"), document.id),
        tx.objectStore("texts").get(document.id),
      ]);
      await tx.done;
      const text = stored === undefined ? undefined : expandText(stored, chunks);
      const current = vectors.every((v) => v.modelId === embedder.modelId && v.f32.length === embedder.dim) && vectors.length === chunks.length;
      if (!current) {
        const fits = chunks.every((c) => embedder.countTokens(c.text) <= chunkMaxTokens);
        if (fits) {
          chunks.sort((a, b) => a.ordinal - b.ordinal);
          const vecs = await embedAll(
            embedder,
            chunks.map((c) => c.text),
            { batchSize: opts.embedBatchSize ?? 16 },
          );
          // Same chunks, new vectors: the document is rewritten whole (its docindex record holds the int8 codes).
          const prepared: PreparedDocument = {
            document,
            text: text ?? assertNever(`internal: document ${document.id} has no stored text`),
            chunks,
            vectors: chunks.map((c, i) => {
              const f32 = vecs[i] as Float32Array;
              return { chunkId: c.id, docId: document.id, modelId: embedder.modelId, f32, ...quantize(f32) };
            }),
            terms: chunks.map((c) => ({ chunkId: c.id, ...termFrequencies(c.text) })),
          };
          await rewrite(prepared);
        } else {
          // Chunks too long for the new tokenizer: re-chunk from the stored text (replaces the document's data).
          if (text === undefined) throw new Error(`internal: document ${document.id} has no stored text to re-chunk`);
          const { prepared } = await buildRecords(document, text.text, text.pages, {
            embedder,
            chunkMaxTokens,
            overlapTokens: opts.chunking?.overlapTokens,
            batchSize: opts.embedBatchSize ?? 16,
            signal: undefined,
            onPhase: () => undefined,
          });
          await rewrite(prepared);
        }
      }
      opts.onReembedProgress?.({ documents: ++done, total: docs.length });
    }
    // Only now does the index belong to the new model (an interrupted run throws the mismatch again).
    await db.put("meta", { modelId: embedder.modelId, dim: embedder.dim }, "model");
  }
}

/**
 * Open (or create) the index `name`. Checks the stored embedding model: a different `embedder.modelId` or
 * `dim` throws EmbeddingModelMismatchError unless `{reembed: true}`, which re-embeds every chunk first.
 */
export async function openIndex(name: string, opts: OpenIndexOptions): Promise<RagIndex> {
  const embedder = opts.embedder;
  if (!Number.isInteger(embedder.dim) || embedder.dim <= 0) throw new RangeError(`embedder.dim must be a positive integer, got ${embedder.dim}`);
  if (!Number.isInteger(embedder.maxTokens) || embedder.maxTokens <= 0) {
    throw new RangeError(`embedder.maxTokens must be a positive integer, got ${embedder.maxTokens}`);
  }
  const db = await openDatabase(name, {
    ...(opts.dbFactory === undefined ? {} : { dbFactory: opts.dbFactory }),
    ...(opts.migrations === undefined ? {} : { migrations: opts.migrations }),
  });
  try {
    const current: ModelMeta = { modelId: embedder.modelId, dim: embedder.dim };
    const stored = await readModel(db);
    const chunkMaxTokens = Math.min(opts.chunking?.maxTokens ?? embedder.maxTokens, embedder.maxTokens);
    if (stored === undefined) {
      await db.put("meta", current, "model");
    } else if (stored.modelId !== current.modelId || stored.dim !== current.dim) {
      if (opts.reembed !== true) throw new EmbeddingModelMismatchError(stored, current);
      await Index.reembed(db, opts, chunkMaxTokens);
    }
    const schema = await readSchema(db);
    const catalog = await Catalog.load(db, current.modelId);
    if (catalog.loadTimings !== null) opts.onLoad?.({ ...catalog.loadTimings, chunks: catalog.chunkCount });
    return new Index(name, db, catalog, current, schema?.version ?? 0, opts);
  } catch (err) {
    db.close();
    throw err;
  }
}
