/**
 * IndexedDB persistence of the RAG index (through `idb`).
 *
 * Stores (schema v2):
 *   documents  keyPath id        one record per document; indexes by-hash (unique), by-createdAt, by-mime (v2)
 *   texts      keyPath docId     the extracted text + page spans (for re-chunking on a model change)
 *   chunks     keyPath id        chunk text + char span + page + tokenCount; index by-doc
 *   vectors    keyPath chunkId   f32 (normalised) + i8 + scale + modelId; index by-doc
 *   postings   out-of-line keys  "t:<term>" → [chunkId, tf][]; "d:<docId>" → that document's chunk lengths
 *                                and distinct terms (so remove() knows which postings to edit)
 *   meta       out-of-line keys  "model" {modelId, dim}, "bm25" {chunkCount, totalLength},
 *                                "schema" {version, analyzer}
 *
 * Atomicity: every document is written (or removed) in ONE readwrite transaction over all stores, after all
 * the slow work (extraction, chunking, embedding) is done, so a crash, a closed tab, an abort signal or a
 * failed write leaves either the whole document or none of it.
 */

import { wrap, type DBSchema, type IDBPDatabase, type IDBPTransaction, type StoreNames } from "idb";
import { ANALYZER_VERSION, type Posting } from "./bm25.js";
import type { SupportedMime } from "./extract.js";
import type { PageSpan } from "./extract-pdf.js";

/** A JSON value (document `meta` must survive export/import). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface DocumentRecord {
  id: string;
  title: string;
  mime: SupportedMime;
  /** SHA-256 (hex) of the original bytes (files) or of the UTF-8 text (text input). */
  contentHash: string;
  /** Size of the original input in bytes. */
  bytes: number;
  /** ms since the epoch. */
  createdAt: number;
  /** Page count (PDF), else null. */
  pages: number | null;
  meta: Record<string, JsonValue>;
  chunkCount: number;
  /** Characters of extracted text. */
  textLength: number;
}

export interface TextRecord {
  docId: string;
  text: string;
  pages: PageSpan[] | null;
}

export interface ChunkRecord {
  id: string;
  docId: string;
  ordinal: number;
  text: string;
  /** Page of the chunk's first character (PDF), else null. */
  page: number | null;
  /** Page of the chunk's last character (PDF; differs from `page` when the chunk spans pages), else null. */
  pageEnd: number | null;
  /** Char span in the document's extracted text. */
  start: number;
  end: number;
  /** Embedder tokens (special tokens included). */
  tokenCount: number;
}

export interface VectorRecord {
  chunkId: string;
  docId: string;
  modelId: string;
  /** L2-normalised. */
  f32: Float32Array;
  i8: Int8Array;
  scale: number;
}

export interface TermPostings {
  kind: "term";
  entries: Array<[chunkId: string, tf: number]>;
}

export interface DocPostings {
  kind: "doc";
  /** BM25 length (terms) of each chunk of the document. */
  lengths: Array<[chunkId: string, length: number]>;
  /** Distinct terms of the document. */
  terms: string[];
}

export interface ModelMeta {
  modelId: string;
  dim: number;
}

export interface Bm25Stats {
  chunkCount: number;
  totalLength: number;
}

export interface SchemaMeta {
  version: number;
  analyzer: number;
}

export type MetaValue = ModelMeta | Bm25Stats | SchemaMeta;

export interface RagDBSchema extends DBSchema {
  documents: { key: string; value: DocumentRecord; indexes: { "by-hash": string; "by-createdAt": number; "by-mime": string } };
  texts: { key: string; value: TextRecord };
  chunks: { key: string; value: ChunkRecord; indexes: { "by-doc": string } };
  vectors: { key: string; value: VectorRecord; indexes: { "by-doc": string } };
  postings: { key: string; value: TermPostings | DocPostings };
  meta: { key: string; value: MetaValue };
}

export type RagDB = IDBPDatabase<RagDBSchema>;
type AllStores = StoreNames<RagDBSchema>[];
export type WriteTx = IDBPTransaction<RagDBSchema, AllStores, "readwrite">;

export const ALL_STORES: AllStores = ["documents", "texts", "chunks", "vectors", "postings", "meta"];

/** One schema step. `up` runs inside the versionchange transaction, synchronously (IDB rules). */
export interface Migration {
  version: number;
  description: string;
  up(db: IDBDatabase, tx: IDBTransaction): void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "documents, texts, chunks, vectors, postings, meta",
    up(db) {
      const documents = db.createObjectStore("documents", { keyPath: "id" });
      documents.createIndex("by-hash", "contentHash", { unique: true });
      db.createObjectStore("texts", { keyPath: "docId" });
      db.createObjectStore("chunks", { keyPath: "id" }).createIndex("by-doc", "docId");
      db.createObjectStore("vectors", { keyPath: "chunkId" }).createIndex("by-doc", "docId");
      db.createObjectStore("postings");
      db.createObjectStore("meta");
    },
  },
  {
    version: 2,
    description: "documents: by-createdAt and by-mime indexes (list order, date and type filters)",
    up(_db, tx) {
      const documents = tx.objectStore("documents");
      documents.createIndex("by-createdAt", "createdAt");
      documents.createIndex("by-mime", "mime");
    },
  },
];

export const SCHEMA_VERSION = (MIGRATIONS[MIGRATIONS.length - 1] as Migration).version;

export interface OpenDatabaseOptions {
  /** IDBFactory to use (default: globalThis.indexedDB). Tests pass fake-indexeddb's. */
  dbFactory?: IDBFactory;
  /** Migrations to apply (default MIGRATIONS); the database version is the last one's. For tests. */
  migrations?: readonly Migration[];
  /** Called when another connection (another tab) needs to upgrade: this one has been closed. */
  onVersionChange?: () => void;
  /** Called when an upgrade is blocked by an older connection that did not close. */
  onBlocked?: () => void;
}

export function databaseName(name: string): string {
  return `hearth-rag:${name}`;
}

/** Open (creating or migrating) the database behind index `name`. */
export async function openDatabase(name: string, opts: OpenDatabaseOptions = {}): Promise<RagDB> {
  const factory = opts.dbFactory ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (factory === undefined) throw new Error("IndexedDB is not available here; pass {dbFactory} (e.g. fake-indexeddb in Node)");
  const migrations = [...(opts.migrations ?? MIGRATIONS)].sort((a, b) => a.version - b.version);
  const version = (migrations[migrations.length - 1] as Migration).version;
  const request = factory.open(databaseName(name), version);
  request.addEventListener("upgradeneeded", (event) => {
    const db = request.result;
    const tx = request.transaction as IDBTransaction;
    for (const m of migrations) if (m.version > event.oldVersion && m.version <= version) m.up(db, tx);
    const schema: SchemaMeta = { version, analyzer: ANALYZER_VERSION };
    tx.objectStore("meta").put(schema, "schema");
  });
  request.addEventListener("blocked", () => opts.onBlocked?.());
  const raw = await new Promise<IDBDatabase>((resolve, reject) => {
    request.addEventListener("success", () => resolve(request.result));
    request.addEventListener("error", () => reject(request.error ?? new Error("IndexedDB open failed")));
  });
  raw.addEventListener("versionchange", () => {
    raw.close();
    opts.onVersionChange?.();
  });
  return wrap(raw) as unknown as RagDB;
}

/**
 * Run `body` in one readwrite transaction over all stores and wait for the commit. On any error (in
 * `body`, in a request, or an abort of `signal`) the transaction is aborted and the error rethrown, so
 * nothing of it is stored.
 */
export async function writeTransaction<T>(db: RagDB, body: (tx: WriteTx) => Promise<T>, signal?: AbortSignal): Promise<T> {
  signal?.throwIfAborted();
  const tx = db.transaction(ALL_STORES, "readwrite", { durability: "strict" });
  const onAbort = () => {
    try {
      tx.abort();
    } catch {
      // already finished
    }
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const result = await body(tx);
    signal?.throwIfAborted();
    await tx.done;
    return result;
  } catch (err) {
    onAbort();
    await tx.done.catch(() => undefined);
    if (signal?.aborted === true) throw signal.reason;
    throw err;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

/** Everything a document adds, computed before the write transaction opens. */
export interface PreparedDocument {
  document: DocumentRecord;
  text: TextRecord;
  chunks: ChunkRecord[];
  vectors: VectorRecord[];
  /** Per chunk: BM25 term frequencies and length. */
  terms: Array<{ chunkId: string; tf: Map<string, number>; length: number }>;
}

export function termKey(term: string): string {
  return `t:${term}`;
}

export function docKey(docId: string): string {
  return `d:${docId}`;
}

async function readBm25(tx: WriteTx): Promise<Bm25Stats> {
  const v = (await tx.objectStore("meta").get("bm25")) as Bm25Stats | undefined;
  return v ?? { chunkCount: 0, totalLength: 0 };
}

/** Write a prepared document. Must run inside `writeTransaction`. */
export async function writeDocument(tx: WriteTx, p: PreparedDocument): Promise<void> {
  const postings = tx.objectStore("postings");
  await tx.objectStore("documents").add(p.document);
  await tx.objectStore("texts").put(p.text);
  for (const c of p.chunks) await tx.objectStore("chunks").add(c);
  for (const v of p.vectors) await tx.objectStore("vectors").put(v);

  const byTerm = new Map<string, Array<[string, number]>>();
  let totalLength = 0;
  for (const t of p.terms) {
    totalLength += t.length;
    for (const [term, tf] of t.tf) {
      let list = byTerm.get(term);
      if (list === undefined) byTerm.set(term, (list = []));
      list.push([t.chunkId, tf]);
    }
  }
  // Read-modify-write of each term's postings list (all requests queued at once, then awaited).
  const terms = [...byTerm.keys()];
  const current = await Promise.all(terms.map((term) => postings.get(termKey(term))));
  await Promise.all(
    terms.map((term, i) => {
      const old = current[i];
      const entries = old !== undefined && old.kind === "term" ? old.entries : [];
      entries.push(...(byTerm.get(term) as Array<[string, number]>));
      const rec: TermPostings = { kind: "term", entries };
      return postings.put(rec, termKey(term));
    }),
  );
  const doc: DocPostings = { kind: "doc", lengths: p.terms.map((t) => [t.chunkId, t.length]), terms };
  await postings.put(doc, docKey(p.document.id));
  const stats = await readBm25(tx);
  const next: Bm25Stats = { chunkCount: stats.chunkCount + p.chunks.length, totalLength: stats.totalLength + totalLength };
  await tx.objectStore("meta").put(next, "bm25");
}

/** Delete a document and everything derived from it. Must run inside `writeTransaction`. Returns false if absent. */
export async function deleteDocument(tx: WriteTx, docId: string): Promise<boolean> {
  const existing = await tx.objectStore("documents").get(docId);
  if (existing === undefined) return false;
  const postings = tx.objectStore("postings");
  const docPostings = await postings.get(docKey(docId));
  let removedChunks = 0;
  let removedLength = 0;
  if (docPostings !== undefined && docPostings.kind === "doc") {
    const ids = new Set(docPostings.lengths.map(([id]) => id));
    removedChunks = docPostings.lengths.length;
    for (const [, len] of docPostings.lengths) removedLength += len;
    const current = await Promise.all(docPostings.terms.map((t) => postings.get(termKey(t))));
    await Promise.all(
      docPostings.terms.map((term, i) => {
        const old = current[i];
        if (old === undefined || old.kind !== "term") return undefined;
        const entries = old.entries.filter(([id]) => !ids.has(id));
        return entries.length === 0 ? postings.delete(termKey(term)) : postings.put({ kind: "term", entries }, termKey(term));
      }),
    );
    await postings.delete(docKey(docId));
  }
  for (const store of ["chunks", "vectors"] as const) {
    const keys = await tx.objectStore(store).index("by-doc").getAllKeys(docId);
    await Promise.all(keys.map((k) => tx.objectStore(store).delete(k)));
  }
  await tx.objectStore("texts").delete(docId);
  await tx.objectStore("documents").delete(docId);
  const stats = await readBm25(tx);
  await tx.objectStore("meta").put(
    { chunkCount: Math.max(0, stats.chunkCount - removedChunks), totalLength: Math.max(0, stats.totalLength - removedLength) },
    "bm25",
  );
  return true;
}

export async function readModel(db: RagDB): Promise<ModelMeta | undefined> {
  return (await db.get("meta", "model")) as ModelMeta | undefined;
}

export async function readSchema(db: RagDB): Promise<SchemaMeta | undefined> {
  return (await db.get("meta", "schema")) as SchemaMeta | undefined;
}

export async function readStats(db: RagDB): Promise<Bm25Stats> {
  return ((await db.get("meta", "bm25")) as Bm25Stats | undefined) ?? { chunkCount: 0, totalLength: 0 };
}

/** Postings lists of the given terms (absent terms are left out). */
export async function readPostings(db: RagDB, terms: readonly string[]): Promise<Map<string, Posting[]>> {
  const tx = db.transaction("postings", "readonly");
  const unique = [...new Set(terms)];
  const recs = await Promise.all(unique.map((t) => tx.store.get(termKey(t))));
  await tx.done;
  const out = new Map<string, Posting[]>();
  unique.forEach((t, i) => {
    const r = recs[i];
    if (r !== undefined && r.kind === "term") out.set(t, r.entries);
  });
  return out;
}

async function getMany<S extends "chunks" | "vectors">(db: RagDB, store: S, keys: readonly string[]) {
  const tx = db.transaction(store, "readonly");
  const recs = await Promise.all(keys.map((k) => tx.store.get(k)));
  await tx.done;
  return recs;
}

export async function readChunks(db: RagDB, ids: readonly string[]): Promise<Map<string, ChunkRecord>> {
  const recs = await getMany(db, "chunks", ids);
  const out = new Map<string, ChunkRecord>();
  for (const r of recs) if (r !== undefined) out.set(r.id, r as ChunkRecord);
  return out;
}

export async function readF32(db: RagDB, chunkIds: readonly string[]): Promise<Map<string, Float32Array>> {
  const recs = await getMany(db, "vectors", chunkIds);
  const out = new Map<string, Float32Array>();
  for (const r of recs) if (r !== undefined) out.set((r as VectorRecord).chunkId, (r as VectorRecord).f32);
  return out;
}

/** Per-document BM25 records ("d:" keys), in one range read. */
export async function readDocPostings(db: RagDB): Promise<Map<string, DocPostings>> {
  const range = IDBKeyRange.bound("d:", "d:\uffff");
  const tx = db.transaction("postings", "readonly");
  const [keys, values] = await Promise.all([tx.store.getAllKeys(range), tx.store.getAll(range)]);
  await tx.done;
  const out = new Map<string, DocPostings>();
  keys.forEach((k, i) => {
    const v = values[i];
    if (v !== undefined && v.kind === "doc") out.set(k.slice(2), v);
  });
  return out;
}

/** Int8 codes of every vector of `modelId` (the f32 copies are not kept). */
export async function readQuantized(
  db: RagDB,
  modelId: string,
): Promise<Array<{ chunkId: string; docId: string; i8: Int8Array; scale: number }>> {
  const out: Array<{ chunkId: string; docId: string; i8: Int8Array; scale: number }> = [];
  let cursor = await db.transaction("vectors", "readonly").store.openCursor();
  while (cursor !== null) {
    const v = cursor.value;
    if (v.modelId === modelId) out.push({ chunkId: v.chunkId, docId: v.docId, i8: v.i8, scale: v.scale });
    cursor = await cursor.continue();
  }
  return out;
}
