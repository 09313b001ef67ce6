/** Schema migrations v1 -> v4 (the older formats they read live here too); SCHEMA_VERSION is the last one's. */
import { hashTerm, termFrequencies } from "../bm25.js";
import { quantize } from "../vectors.js";
import { type ChunkIndexInput, compactText, documentRecords, TermDictionary } from "./codecs.js";
import { chunkIdFor, type ChunkRecord, type Migration, type PreparedVector, SEGMENT_MAX_CHUNKS, type TextRecord, type VectorRecord } from "./schema.js";

// ---- Schema v1-v3 formats, for the migrations ----

/** v3 docindex record: per segment the chunk ids, int8 codes, and BM25 postings in CSR form over 64-bit term hashes. */
interface LegacyDocIndexRecord {
  key: string;
  docId: string;
  modelId: string;
  dim: number;
  chunkIds: string[];
  codes: Int8Array;
  scales: Float32Array;
  lengths: Uint32Array;
  termHash: Uint32Array;
  termStart: Uint32Array;
  postChunk: Uint8Array;
  postTf: Uint8Array;
}

interface LegacyChunkIndexInput extends ChunkIndexInput {
  chunkId: string;
}

const LEGACY_SEGMENT_BYTES = 48 * 1024;

function legacyPackSegment(docId: string, segment: number, modelId: string, dim: number, chunks: readonly LegacyChunkIndexInput[]): LegacyDocIndexRecord {
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
  terms.forEach((term, t) => {
    hashTerm(term, termHash, 2 * t);
  });
  return {
    key: `${docId}#${String(segment).padStart(4, "0")}`,
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

/** v3: pack one document's chunks (in order) into its docindex segments. */
function legacyBuildDocIndex(docId: string, modelId: string, dim: number, chunks: readonly LegacyChunkIndexInput[]): LegacyDocIndexRecord[] {
  const out: LegacyDocIndexRecord[] = [];
  let start = 0;
  let bytes = 0;
  const seen = new Set<string>();
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i] as LegacyChunkIndexInput;
    // Upper estimate of what this chunk adds: code, scale, length, id, and 2 bytes per posting plus 12 per new term.
    let add = dim + 8 + 2 * c.chunkId.length + 8;
    for (const term of c.tf.keys()) add += 2 + (seen.has(term) ? 0 : 12);
    if (i > start && (bytes + add > LEGACY_SEGMENT_BYTES || i - start >= SEGMENT_MAX_CHUNKS)) {
      out.push(legacyPackSegment(docId, out.length, modelId, dim, chunks.slice(start, i)));
      start = i;
      bytes = 0;
      seen.clear();
      add = dim + 8 + 2 * c.chunkId.length + 8 + 14 * c.tf.size;
    }
    for (const term of c.tf.keys()) seen.add(term);
    bytes += add;
  }
  if (start < chunks.length) out.push(legacyPackSegment(docId, out.length, modelId, dim, chunks.slice(start)));
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
function migrateToDocIndex(db: IDBDatabase, tx: IDBTransaction, done: () => void): void {
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
        tfs.set(
          docId,
          lengths.map(() => new Map()),
        );
        lengths.forEach(([chunkId], i) => {
          owner.set(chunkId, { docId, i });
        });
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
        const inputs: LegacyChunkIndexInput[] = [];
        let modelId = "";
        let dim = 0;
        lengths.forEach(([chunkId, length], i) => {
          const code = codes.get(chunkId);
          if (code === undefined) return; // a chunk without a vector: not searchable by either retriever
          modelId = code.modelId;
          dim = code.i8.length;
          inputs.push({ chunkId, tf: docTfs[i] as Map<string, number>, length, i8: code.i8, scale: code.scale });
        });
        for (const segment of legacyBuildDocIndex(docId, modelId, dim, inputs)) store.put(segment);
      }
      db.deleteObjectStore("postings");
      tx.objectStore("meta").delete("bm25");
      // Texts: keep only what the chunks do not hold.
      const textsReq = tx.objectStore("texts").openCursor();
      textsReq.onsuccess = () => {
        const tc = textsReq.result;
        if (tc === null) {
          done();
          return;
        }
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

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error("IndexedDB request failed"));
  });
}

/**
 * v3 → v4: chunks and vectors from one record per chunk (with by-doc indexes) to groups of CHUNK_GROUP /
 * VECTOR_GROUP chunks; docindex segments rebuilt with global term ids (the v3 segments hold only term
 * hashes, so the terms come from the chunk texts again, with the same analyzer) and a `terms` dictionary.
 * One document at a time; texts are unchanged (their gaps depend only on the chunk spans).
 */
async function migrateToGroups(db: IDBDatabase, tx: IDBTransaction): Promise<void> {
  tx.objectStore("chunks").name = "chunks-v3";
  tx.objectStore("vectors").name = "vectors-v3";
  db.deleteObjectStore("docindex");
  const chunksOut = db.createObjectStore("chunks");
  const vectorsOut = db.createObjectStore("vectors");
  const docindexOut = db.createObjectStore("docindex", { keyPath: "key" });
  const termsOut = db.createObjectStore("terms", { keyPath: "first" });
  const oldChunks = tx.objectStore("chunks-v3").index("by-doc");
  const oldVectors = tx.objectStore("vectors-v3").index("by-doc");
  const dict = new TermDictionary();
  const docIds = (await request(tx.objectStore("documents").getAllKeys())) as string[];
  for (const docId of docIds) {
    const [chunks, vectors] = await Promise.all([request(oldChunks.getAll(docId)), request(oldVectors.getAll(docId))]);
    const byChunk = new Map((vectors as VectorRecord[]).map((v) => [v.chunkId, v]));
    const sorted = (chunks as ChunkRecord[]).sort((a, b) => a.ordinal - b.ordinal);
    const dim = (vectors as VectorRecord[])[0]?.f32.length ?? 0;
    const modelId = (vectors as VectorRecord[])[0]?.modelId ?? "";
    // Ordinals 0..n-1 (they always were; renumbered if not, which changes those chunk ids).
    const renumbered = sorted.map((c, i) => ({ ...c, ordinal: i, id: chunkIdFor(docId, i) }));
    const prepared: PreparedVector[] = sorted.map((c, i) => {
      // A chunk without a vector (not written by any version) gets a zero vector: found by BM25 only.
      const f32 = byChunk.get(c.id)?.f32 ?? new Float32Array(dim);
      return { chunkId: chunkIdFor(docId, i), docId, modelId: byChunk.get(c.id)?.modelId ?? modelId, f32, ...quantize(f32) };
    });
    const alloc = dict.allocator();
    const records = documentRecords(
      docId,
      renumbered,
      prepared,
      renumbered.map((c) => termFrequencies(c.text)),
      alloc.id,
    );
    const terms = alloc.record();
    const puts: Array<Promise<unknown>> = [];
    for (const [key, g] of records.chunkGroups) puts.push(request(chunksOut.put(g, key)));
    for (const [key, g] of records.vectorGroups) puts.push(request(vectorsOut.put(g, key)));
    for (const s of records.segments) puts.push(request(docindexOut.put(s)));
    if (terms !== null) {
      puts.push(request(termsOut.put(terms)));
      dict.append(terms);
    }
    await Promise.all(puts);
  }
  db.deleteObjectStore("chunks-v3");
  db.deleteObjectStore("vectors-v3");
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
    up: (db, tx) => new Promise<void>((resolve) => migrateToDocIndex(db, tx, resolve)),
  },
  {
    version: 4,
    description: "chunks and vectors grouped per document (no by-doc indexes); docindex postings as varints over global term ids; terms dictionary",
    up: migrateToGroups,
  },
];

export const SCHEMA_VERSION = (MIGRATIONS[MIGRATIONS.length - 1] as Migration).version;
