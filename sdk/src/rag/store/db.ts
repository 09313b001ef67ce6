/** The database itself: open (running migrations), one readwrite transaction per document, reads for search and export. */
import { wrap } from "idb";
import { ANALYZER_VERSION } from "../bm25.js";
import { chunkOf, compactText, documentRecords, expandText, type TermDictionary } from "./codecs.js";
import { MIGRATIONS } from "./migrations.js";
import {
  ALL_STORES,
  CHUNK_GROUP,
  type ChunkGroupRecord,
  chunkIdFor,
  type ChunkRecord,
  type DocIndexRecord,
  locate,
  type Migration,
  type ModelMeta,
  type PreparedDocument,
  type RagDB,
  recordNumber,
  type SchemaMeta,
  segmentRange,
  type TermsRecord,
  type TextRecord,
  VECTOR_GROUP,
  type VectorGroupRecord,
  type VectorRecord,
  type WriteTx,
} from "./schema.js";

/** The stores `readDocChunks` / `readDocVectors` read from (an idb object store of any transaction). */
interface GroupSource<V> {
  getAll(query: IDBKeyRange): Promise<V[]>;
  getAllKeys(query: IDBKeyRange): Promise<string[]>;
}

/** All chunks of a document, in ordinal order. */
export async function readDocChunks(store: GroupSource<ChunkGroupRecord>, docId: string): Promise<ChunkRecord[]> {
  const range = segmentRange(docId);
  const [keys, groups] = await Promise.all([store.getAllKeys(range), store.getAll(range)]);
  const out: ChunkRecord[] = [];
  groups.forEach((g, i) => {
    const n = recordNumber(keys[i] as string);
    for (let row = 0; row < g.texts.length; row++) out.push(chunkOf(docId, n, g, row));
  });
  return out.sort((a, b) => a.ordinal - b.ordinal);
}

/** All vectors of a document, in chunk order. */
export async function readDocVectors(store: GroupSource<VectorGroupRecord>, docId: string): Promise<VectorRecord[]> {
  const range = segmentRange(docId);
  const [keys, groups] = await Promise.all([store.getAllKeys(range), store.getAll(range)]);
  const out: Array<VectorRecord & { ordinal: number }> = [];
  groups.forEach((g, i) => {
    const n = recordNumber(keys[i] as string);
    for (let row = 0; row * g.dim < g.f32.length; row++) {
      const ordinal = n * VECTOR_GROUP + row;
      out.push({ chunkId: chunkIdFor(docId, ordinal), docId, modelId: g.modelId, f32: g.f32.slice(row * g.dim, (row + 1) * g.dim), ordinal });
    }
  });
  return out.sort((a, b) => a.ordinal - b.ordinal).map(({ ordinal: _, ...v }) => v);
}

/** A document's full text (texts + chunks, one read transaction). */
export async function readText(db: RagDB, docId: string): Promise<TextRecord | undefined> {
  const tx = db.transaction(["texts", "chunks"], "readonly");
  const [stored, chunks] = await Promise.all([tx.objectStore("texts").get(docId), readDocChunks(tx.objectStore("chunks"), docId)]);
  await tx.done;
  return stored === undefined ? undefined : expandText(stored, chunks);
}

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
  let upgradeError: unknown;
  request.addEventListener("upgradeneeded", (event) => {
    const db = request.result;
    const tx = request.transaction as IDBTransaction;
    const run = async () => {
      for (const m of migrations) if (m.version > event.oldVersion && m.version <= version) await m.up(db, tx);
      const schema: SchemaMeta = { version, analyzer: ANALYZER_VERSION };
      tx.objectStore("meta").put(schema, "schema");
    };
    run().catch((err: unknown) => {
      upgradeError = err;
      try {
        tx.abort();
      } catch {
        // already finished
      }
    });
  });
  request.addEventListener("blocked", () => opts.onBlocked?.());
  const raw = await new Promise<IDBDatabase>((resolve, reject) => {
    request.addEventListener("success", () => resolve(request.result));
    request.addEventListener("error", () => reject(upgradeError ?? request.error ?? new Error("IndexedDB open failed")));
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

/** What `writeDocument` stored that the in-memory state needs: the docindex segments and the new terms. */
export interface WrittenDocument {
  segments: DocIndexRecord[];
  terms: TermsRecord | null;
}

/** The stored term dictionary is shorter than the one in memory: another connection cleared the index. */
export class TermsResetError extends Error {
  constructor() {
    super("the index was cleared by another connection; reload it");
    this.name = "TermsResetError";
  }
}

/**
 * Bring `dict` up to date with terms committed since it was loaded (by this or another connection). Throws
 * TermsResetError when the stored dictionary ends before `dict` does (clear() in another connection): ids
 * that `dict` knows would then point at nothing.
 */
export async function syncTerms(tx: WriteTx, dict: TermDictionary): Promise<void> {
  const store = tx.objectStore("terms");
  const last = await store.openCursor(null, "prev");
  const end = last === null ? 0 : last.value.first + last.value.terms.length;
  if (end < dict.next) throw new TermsResetError();
  if (end > dict.next) for (const r of await store.getAll(IDBKeyRange.lowerBound(dict.next))) dict.append(r);
}

/**
 * Write a prepared document. Must run inside `writeTransaction`. All requests are queued at once and then
 * awaited together (one round of waiting instead of one per record). The terms new to `dict` are numbered
 * here and written in the same transaction; `dict` itself gets them only when the caller appends
 * `terms` after the commit.
 */
export async function writeDocument(tx: WriteTx, p: PreparedDocument, dict: TermDictionary): Promise<WrittenDocument> {
  await syncTerms(tx, dict);
  const alloc = dict.allocator();
  const records = documentRecords(p.document.id, p.chunks, p.vectors, p.terms, alloc.id);
  const terms = alloc.record();
  const pending: Array<Promise<unknown>> = [];
  try {
    pending.push(tx.objectStore("documents").add(p.document), tx.objectStore("texts").put(compactText(p.text, p.chunks)));
    const chunks = tx.objectStore("chunks");
    for (const [key, g] of records.chunkGroups) pending.push(chunks.put(g, key));
    const vectors = tx.objectStore("vectors");
    for (const [key, g] of records.vectorGroups) pending.push(vectors.put(g, key));
    const docindex = tx.objectStore("docindex");
    for (const segment of records.segments) pending.push(docindex.put(segment));
    if (terms !== null) pending.push(tx.objectStore("terms").add(terms));
  } catch (err) {
    // A request that throws synchronously: the caller aborts the transaction, which rejects the queued ones.
    for (const r of pending) r.catch(() => undefined);
    throw err;
  }
  await Promise.all(pending);
  return { segments: records.segments, terms };
}

/** Delete a document and everything derived from it. Must run inside `writeTransaction`. Returns false if absent. */
export async function deleteDocument(tx: WriteTx, docId: string): Promise<boolean> {
  const existing = await tx.objectStore("documents").get(docId);
  if (existing === undefined) return false;
  const range = segmentRange(docId);
  await Promise.all([
    tx.objectStore("chunks").delete(range),
    tx.objectStore("vectors").delete(range),
    tx.objectStore("docindex").delete(range),
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

/** Read the groups holding `ids` from `store` (one request per distinct group, one transaction). */
async function readGroups<S extends "chunks" | "vectors", V>(
  db: RagDB,
  store: S,
  ids: readonly string[],
  size: number,
  pick: (docId: string, n: number, group: V, row: number) => unknown,
): Promise<Map<string, unknown>> {
  const where = ids.map((id) => locate(id, size));
  const keys = [...new Set(where.flatMap((w) => (w === null ? [] : [w.key])))];
  const tx = db.transaction(store, "readonly");
  const groups = await Promise.all(keys.map((k) => tx.store.get(k)));
  await tx.done;
  const byKey = new Map(keys.map((k, i) => [k, groups[i] as V | undefined]));
  const out = new Map<string, unknown>();
  ids.forEach((id, i) => {
    const w = where[i];
    const g = w === null || w === undefined ? undefined : byKey.get(w.key);
    if (w === null || w === undefined || g === undefined) return;
    const value = pick(w.docId, Math.floor(w.ordinal / size), g, w.row);
    if (value !== undefined) out.set(id, value);
  });
  return out;
}

export async function readChunks(db: RagDB, ids: readonly string[]): Promise<Map<string, ChunkRecord>> {
  return (await readGroups<"chunks", ChunkGroupRecord>(db, "chunks", ids, CHUNK_GROUP, (docId, n, g, row) =>
    row < g.texts.length ? chunkOf(docId, n, g, row) : undefined,
  )) as Map<string, ChunkRecord>;
}

export async function readF32(db: RagDB, chunkIds: readonly string[]): Promise<Map<string, Float32Array>> {
  return (await readGroups<"vectors", VectorGroupRecord>(db, "vectors", chunkIds, VECTOR_GROUP, (_docId, _n, g, row) =>
    (row + 1) * g.dim <= g.f32.length ? g.f32.subarray(row * g.dim, (row + 1) * g.dim) : undefined,
  )) as Map<string, Float32Array>;
}

/** Every document's search data and the term dictionary (one read transaction). */
export async function readDocIndex(db: RagDB): Promise<{ segments: DocIndexRecord[]; terms: TermsRecord[] }> {
  const tx = db.transaction(["docindex", "terms"], "readonly");
  const [segments, terms] = await Promise.all([tx.objectStore("docindex").getAll(), tx.objectStore("terms").getAll()]);
  await tx.done;
  return { segments, terms };
}
