/**
 * IndexedDB persistence of the RAG index (through `idb`).
 *
 * Stores (schema v3):
 *   documents  keyPath id        one record per document; indexes by-hash (unique), by-createdAt, by-mime (v2)
 *   texts      keyPath docId     page spans + the part of the extracted text that no chunk holds (v3; the full
 *                                text is rebuilt with the chunks: getText, export, re-chunking on a model change)
 *   chunks     keyPath id        chunk text + char span + page + tokenCount; index by-doc
 *   vectors    keyPath chunkId   the L2-normalised f32 vector + modelId; index by-doc (read per query only for
 *                                the re-rank candidates, and by export)
 *   docindex   keyPath key       (v3) everything search keeps in memory, per document segment ("<docId>#0000"),
 *                                in typed arrays: the int8 codes of its chunks (one Int8Array n*dim + scales),
 *                                the BM25 chunk lengths and postings in CSR form (distinct terms; per term the
 *                                chunk ordinals and term frequencies). One getAll() of this store loads an index.
 *   meta       out-of-line keys  "model" {modelId, dim}, "schema" {version, analyzer}
 *
 * Why per-document records (v3) and not per-term postings lists (v1/v2 "postings" store): a global list per
 * term has to be read, grown and rewritten by every document that uses the term, which made ingest quadratic
 * (21 ms per chunk at 5k chunks in Chromium) and left LevelDB full of superseded copies; and a query had to
 * read and deserialise whole lists of common terms. Per-document records are written once and deleted once,
 * and the inverted index is built in memory at open (catalog.ts).
 *
 * Atomicity: every document is written (or removed) in ONE readwrite transaction over all stores, after all
 * the slow work (extraction, chunking, embedding) is done, so a crash, a closed tab, an abort signal or a
 * failed write leaves either the whole document or none of it.
 */

import { wrap, type DBSchema, type IDBPDatabase, type IDBPTransaction, type StoreNames } from "idb";
import { ANALYZER_VERSION, hashTerm } from "./bm25.js";
import type { SupportedMime } from "./extract.js";
import type { PageSpan } from "./extract-pdf.js";
import { quantize } from "./vectors.js";

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

/**
 * How a document's text is stored (v3): only what its chunks do not already hold. `gaps[i]` is the text
 * between the end of what chunks 0..i-1 cover and the start of chunk i (chunks in start order), `gaps[n]` the
 * text after the last chunk. The chunks' own text is the rest, so the full text is rebuilt exactly from the
 * chunk records (see expandText) and is not stored twice (it was half of the text bytes of an index).
 */
export interface StoredText {
  docId: string;
  pages: PageSpan[] | null;
  gaps: string[];
  length: number;
}

function inStartOrder(chunks: readonly ChunkRecord[]): ChunkRecord[] {
  return [...chunks].sort((a, b) => a.start - b.start || a.ordinal - b.ordinal);
}

/** The stored form of `text`, given the document's chunks (each must equal its span of the text). */
export function compactText(text: TextRecord, chunks: readonly ChunkRecord[]): StoredText {
  const gaps: string[] = [];
  let covered = 0;
  for (const c of inStartOrder(chunks)) {
    if (text.text.slice(c.start, c.end) !== c.text) throw new Error(`internal: chunk ${c.id} differs from its span of the document text`);
    gaps.push(c.start > covered ? text.text.slice(covered, c.start) : "");
    covered = Math.max(covered, c.end);
  }
  gaps.push(text.text.slice(covered));
  return { docId: text.docId, pages: text.pages, gaps, length: text.text.length };
}

/** Rebuild the full text from its stored form and the document's chunks. */
export function expandText(stored: StoredText, chunks: readonly ChunkRecord[]): TextRecord {
  const sorted = inStartOrder(chunks);
  if (stored.gaps.length !== sorted.length + 1) throw new Error(`internal: stored text of ${stored.docId} does not match its ${sorted.length} chunks`);
  let out = "";
  let covered = 0;
  sorted.forEach((c, i) => {
    out += stored.gaps[i] as string;
    if (c.end > covered) out += c.text.slice(Math.max(0, covered - c.start));
    covered = Math.max(covered, c.end);
  });
  out += stored.gaps[sorted.length] as string;
  if (out.length !== stored.length) throw new Error(`internal: rebuilt text of ${stored.docId} has ${out.length} characters, stored ${stored.length}`);
  return { docId: stored.docId, text: out, pages: stored.pages };
}

/** A document's full text (texts + chunks, one read transaction). */
export async function readText(db: RagDB, docId: string): Promise<TextRecord | undefined> {
  const tx = db.transaction(["texts", "chunks"], "readonly");
  const [stored, chunks] = await Promise.all([tx.objectStore("texts").get(docId), tx.objectStore("chunks").index("by-doc").getAll(docId)]);
  await tx.done;
  return stored === undefined ? undefined : expandText(stored, chunks);
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
}

/** A vector as ingest produces it: the stored f32 plus its int8 code (which goes to the docindex record). */
export interface PreparedVector extends VectorRecord {
  i8: Int8Array;
  scale: number;
}

/**
 * Search data of one segment of a document (schema v3), all typed arrays. A document's chunks are split into
 * segments of at most SEGMENT_MAX_CHUNKS chunks and about SEGMENT_BYTES bytes, so that every record stays
 * below Chromium's 64 KiB threshold above which IndexedDB wraps a value into a separate blob file (an extra
 * file read per record on open).
 *
 * Chunk `i` of the segment is `chunkIds[i]`; its int8 code is `codes[i*dim .. (i+1)*dim)` with scale
 * `scales[i]`, its BM25 length `lengths[i]`. Postings in CSR form: term `t` (64-bit hash
 * `termHash[2t..2t+1]`, see bm25.hashTerm) occurs in chunks `postChunk[termStart[t] .. termStart[t+1])` with frequencies `postTf[...]`, clamped to 255 (BM25
 * saturates long before: with k1 = 1.2 the tf factor at 255 is within 0.5% of its limit).
 */
export interface DocIndexRecord {
  /** `${docId}#${segment, 4 digits}`. */
  key: string;
  docId: string;
  modelId: string;
  dim: number;
  chunkIds: string[];
  codes: Int8Array;
  scales: Float32Array;
  lengths: Uint32Array;
  /** Hashes of the distinct terms (sorted by term), two uint32 per term: hi, lo. */
  termHash: Uint32Array;
  termStart: Uint32Array;
  postChunk: Uint8Array;
  postTf: Uint8Array;
}

export const SEGMENT_MAX_CHUNKS = 255;
export const SEGMENT_BYTES = 48 * 1024;

export interface ModelMeta {
  modelId: string;
  dim: number;
}

export interface SchemaMeta {
  version: number;
  analyzer: number;
}

export type MetaValue = ModelMeta | SchemaMeta;

export interface RagDBSchema extends DBSchema {
  documents: { key: string; value: DocumentRecord; indexes: { "by-hash": string; "by-createdAt": number; "by-mime": string } };
  texts: { key: string; value: StoredText };
  chunks: { key: string; value: ChunkRecord; indexes: { "by-doc": string } };
  vectors: { key: string; value: VectorRecord; indexes: { "by-doc": string } };
  docindex: { key: string; value: DocIndexRecord };
  meta: { key: string; value: MetaValue };
}

export type RagDB = IDBPDatabase<RagDBSchema>;
type AllStores = StoreNames<RagDBSchema>[];
export type WriteTx = IDBPTransaction<RagDBSchema, AllStores, "readwrite">;

export const ALL_STORES: AllStores = ["documents", "texts", "chunks", "vectors", "docindex", "meta"];

/** One schema step. `up` runs inside the versionchange transaction (IDB rules: requests, no awaits). */
export interface Migration {
  version: number;
  description: string;
  up(db: IDBDatabase, tx: IDBTransaction): void;
}

/** One chunk's BM25 analysis and int8 code, the input of `buildDocIndex`. */
export interface ChunkIndexInput {
  chunkId: string;
  tf: ReadonlyMap<string, number>;
  length: number;
  i8: Int8Array;
  scale: number;
}

function segmentKey(docId: string, segment: number): string {
  return `${docId}#${String(segment).padStart(4, "0")}`;
}

/** Key range of all segments of a document. */
export function segmentRange(docId: string): IDBKeyRange {
  return IDBKeyRange.bound(`${docId}#`, `${docId}#\uffff`);
}

function packSegment(docId: string, segment: number, modelId: string, dim: number, chunks: readonly ChunkIndexInput[]): DocIndexRecord {
  const n = chunks.length;
  const codes = new Int8Array(n * dim);
  const scales = new Float32Array(n);
  const lengths = new Uint32Array(n);
  const byTerm = new Map<string, Array<[number, number]>>();
  let postings = 0;
  chunks.forEach((c, i) => {
    if (c.i8.length !== dim) throw new RangeError(`internal: code of ${c.chunkId} has ${c.i8.length} dimensions, expected ${dim}`);
    codes.set(c.i8, i * dim);
    scales[i] = c.scale;
    lengths[i] = c.length;
    for (const [term, tf] of c.tf) {
      let list = byTerm.get(term);
      if (list === undefined) byTerm.set(term, (list = []));
      list.push([i, tf]);
      postings++;
    }
  });
  // Sorted: the record is canonical (the same document gives the same bytes, however it was built).
  const terms = [...byTerm.keys()].sort();
  const termStart = new Uint32Array(terms.length + 1);
  const postChunk = new Uint8Array(postings);
  const postTf = new Uint8Array(postings);
  let at = 0;
  terms.forEach((term, t) => {
    termStart[t] = at;
    for (const [i, tf] of byTerm.get(term) as Array<[number, number]>) {
      postChunk[at] = i;
      postTf[at] = Math.min(tf, 255);
      at++;
    }
  });
  termStart[terms.length] = at;
  const termHash = new Uint32Array(2 * terms.length);
  terms.forEach((term, t) => hashTerm(term, termHash, 2 * t));
  return {
    key: segmentKey(docId, segment),
    docId,
    modelId,
    dim,
    chunkIds: chunks.map((c) => c.chunkId),
    codes,
    scales,
    lengths,
    termHash,
    termStart,
    postChunk,
    postTf,
  };
}

/** Pack one document's chunks (in order) into its docindex segments. */
export function buildDocIndex(docId: string, modelId: string, dim: number, chunks: readonly ChunkIndexInput[]): DocIndexRecord[] {
  const out: DocIndexRecord[] = [];
  let start = 0;
  let bytes = 0;
  const seen = new Set<string>();
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i] as ChunkIndexInput;
    // Upper estimate of what this chunk adds: code, scale, length, id, and 2 bytes per posting plus 12 per new term.
    let add = dim + 8 + 2 * c.chunkId.length + 8;
    for (const term of c.tf.keys()) add += 2 + (seen.has(term) ? 0 : 12);
    if (i > start && (bytes + add > SEGMENT_BYTES || i - start >= SEGMENT_MAX_CHUNKS)) {
      out.push(packSegment(docId, out.length, modelId, dim, chunks.slice(start, i)));
      start = i;
      bytes = 0;
      seen.clear();
      add = dim + 8 + 2 * c.chunkId.length + 8 + 14 * c.tf.size;
    }
    for (const term of c.tf.keys()) seen.add(term);
    bytes += add;
  }
  if (start < chunks.length) out.push(packSegment(docId, out.length, modelId, dim, chunks.slice(start)));
  return out;
}

interface LegacyPostings {
  kind: "term" | "doc";
  entries?: Array<[string, number]>;
  lengths?: Array<[string, number]>;
}

interface LegacyVector extends VectorRecord {
  i8?: Int8Array;
  scale?: number;
}

/**
 * v2 → v3: build a docindex record per document from the v2 postings ("t:" per-term lists, "d:" per-document
 * chunk lengths) and the vectors' int8 codes, strip the codes from the vector records, drop the postings
 * store and the "bm25" meta entry. Request callbacks chained inside the versionchange transaction.
 */
function migrateToDocIndex(db: IDBDatabase, tx: IDBTransaction): void {
  db.createObjectStore("docindex", { keyPath: "key" });
  const termLists = new Map<string, Array<[string, number]>>();
  const docLengths = new Map<string, Array<[string, number]>>();
  const postingsReq = tx.objectStore("postings").openCursor();
  postingsReq.onsuccess = () => {
    const cur = postingsReq.result;
    if (cur !== null) {
      const key = String(cur.key);
      const v = cur.value as LegacyPostings;
      if (key.startsWith("t:") && v.entries !== undefined) termLists.set(key.slice(2), v.entries);
      else if (key.startsWith("d:") && v.lengths !== undefined) docLengths.set(key.slice(2), v.lengths);
      cur.continue();
      return;
    }
    const codes = new Map<string, { modelId: string; i8: Int8Array; scale: number }>();
    const vectorsReq = tx.objectStore("vectors").openCursor();
    vectorsReq.onsuccess = () => {
      const vc = vectorsReq.result;
      if (vc !== null) {
        const v = vc.value as LegacyVector;
        const q = v.i8 !== undefined && v.scale !== undefined ? { i8: v.i8, scale: v.scale } : quantize(v.f32);
        codes.set(v.chunkId, { modelId: v.modelId, ...q });
        const stripped: VectorRecord = { chunkId: v.chunkId, docId: v.docId, modelId: v.modelId, f32: v.f32 };
        vc.update(stripped);
        vc.continue();
        return;
      }
      // Per document: chunk → its term frequencies, from the per-term lists.
      const owner = new Map<string, { docId: string; i: number }>();
      const tfs = new Map<string, Array<Map<string, number>>>();
      for (const [docId, lengths] of docLengths) {
        tfs.set(docId, lengths.map(() => new Map()));
        lengths.forEach(([chunkId], i) => owner.set(chunkId, { docId, i }));
      }
      for (const [term, entries] of termLists) {
        for (const [chunkId, tf] of entries) {
          const o = owner.get(chunkId);
          if (o !== undefined) (tfs.get(o.docId) as Array<Map<string, number>>)[o.i]?.set(term, tf);
        }
      }
      const store = tx.objectStore("docindex");
      for (const [docId, lengths] of docLengths) {
        const docTfs = tfs.get(docId) as Array<Map<string, number>>;
        const inputs: ChunkIndexInput[] = [];
        let modelId = "";
        let dim = 0;
        lengths.forEach(([chunkId, length], i) => {
          const code = codes.get(chunkId);
          if (code === undefined) return; // a chunk without a vector: not searchable by either retriever
          modelId = code.modelId;
          dim = code.i8.length;
          inputs.push({ chunkId, tf: docTfs[i] as Map<string, number>, length, i8: code.i8, scale: code.scale });
        });
        for (const segment of buildDocIndex(docId, modelId, dim, inputs)) store.put(segment);
      }
      db.deleteObjectStore("postings");
      tx.objectStore("meta").delete("bm25");
      // Texts: keep only what the chunks do not hold.
      const textsReq = tx.objectStore("texts").openCursor();
      textsReq.onsuccess = () => {
        const tc = textsReq.result;
        if (tc === null) return;
        const legacy = tc.value as TextRecord;
        const chunksReq = tx.objectStore("chunks").index("by-doc").getAll(legacy.docId);
        chunksReq.onsuccess = () => {
          tc.update(compactText(legacy, chunksReq.result as ChunkRecord[]));
          tc.continue();
        };
      };
    };
  };
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
  {
    version: 3,
    description:
      "docindex: per-document int8 codes + BM25 postings in typed arrays; vectors keep f32 only; postings store dropped; texts keep only what chunks do not hold",
    up: migrateToDocIndex,
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
  vectors: PreparedVector[];
  /** Per chunk: BM25 term frequencies and length. */
  terms: Array<{ chunkId: string; tf: Map<string, number>; length: number }>;
}

const segmentsOf = new WeakMap<PreparedDocument, DocIndexRecord[]>();

/** The docindex segments of a prepared document (vectors and terms are in chunk order); built once. */
export function docIndexOf(p: PreparedDocument): DocIndexRecord[] {
  const cached = segmentsOf.get(p);
  if (cached !== undefined) return cached;
  const built = buildSegments(p);
  segmentsOf.set(p, built);
  return built;
}

function buildSegments(p: PreparedDocument): DocIndexRecord[] {
  const first = p.vectors[0];
  const dim = first === undefined ? 0 : first.i8.length;
  const modelId = first === undefined ? "" : first.modelId;
  return buildDocIndex(
    p.document.id,
    modelId,
    dim,
    p.terms.map((t, i) => {
      const v = p.vectors[i] as PreparedVector;
      if (v.chunkId !== t.chunkId) throw new Error(`internal: vectors and terms of ${p.document.id} are not in the same order`);
      return { chunkId: t.chunkId, tf: t.tf, length: t.length, i8: v.i8, scale: v.scale };
    }),
  );
}

/**
 * Write a prepared document. Must run inside `writeTransaction`. All requests are queued at once and then
 * awaited together (one round of waiting instead of one per record).
 */
export async function writeDocument(tx: WriteTx, p: PreparedDocument): Promise<void> {
  const index = docIndexOf(p);
  const pending: Array<Promise<unknown>> = [];
  try {
    pending.push(tx.objectStore("documents").add(p.document), tx.objectStore("texts").put(compactText(p.text, p.chunks)));
    const chunks = tx.objectStore("chunks");
    for (const c of p.chunks) pending.push(chunks.add(c));
    const vectors = tx.objectStore("vectors");
    for (const v of p.vectors) pending.push(vectors.put({ chunkId: v.chunkId, docId: v.docId, modelId: v.modelId, f32: v.f32 }));
    const docindex = tx.objectStore("docindex");
    for (const segment of index) pending.push(docindex.put(segment));
  } catch (err) {
    // A request that throws synchronously: the caller aborts the transaction, which rejects the queued ones.
    for (const r of pending) r.catch(() => undefined);
    throw err;
  }
  await Promise.all(pending);
}

/** Delete a document and everything derived from it. Must run inside `writeTransaction`. Returns false if absent. */
export async function deleteDocument(tx: WriteTx, docId: string): Promise<boolean> {
  const existing = await tx.objectStore("documents").get(docId);
  if (existing === undefined) return false;
  const [chunkKeys, vectorKeys] = await Promise.all([
    tx.objectStore("chunks").index("by-doc").getAllKeys(docId),
    tx.objectStore("vectors").index("by-doc").getAllKeys(docId),
  ]);
  await Promise.all([
    ...chunkKeys.map((k) => tx.objectStore("chunks").delete(k)),
    ...vectorKeys.map((k) => tx.objectStore("vectors").delete(k)),
    tx.objectStore("docindex").delete(segmentRange(docId)),
    tx.objectStore("texts").delete(docId),
    tx.objectStore("documents").delete(docId),
  ]);
  return true;
}

export async function readModel(db: RagDB): Promise<ModelMeta | undefined> {
  return (await db.get("meta", "model")) as ModelMeta | undefined;
}

export async function readSchema(db: RagDB): Promise<SchemaMeta | undefined> {
  return (await db.get("meta", "schema")) as SchemaMeta | undefined;
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

/** Every document's search data (one getAll). */
export async function readDocIndex(db: RagDB): Promise<DocIndexRecord[]> {
  return db.getAll("docindex");
}
