/**
 * IndexedDB persistence of the RAG index (through `idb`).
 *
 * Stores (schema v4). Keys of per-document records are `<docId>#<n, 6 digits>`, so one key range holds all
 * of a document's records (no `by-doc` index: an index entry per record cost as much as the key itself).
 *   documents  keyPath id        one record per document; indexes by-hash (unique: dedupe), by-createdAt, by-mime
 *   texts      keyPath docId     page spans + the part of the extracted text that no chunk holds (the full text
 *                                is rebuilt with the chunks: getText, export, re-chunking on a model change)
 *   chunks     out-of-line key   CHUNK_GROUP consecutive chunks per record (`<docId>#<ordinal / CHUNK_GROUP>`):
 *                                their texts, and span start, token count and pages as typed arrays
 *   vectors    out-of-line key   VECTOR_GROUP consecutive chunks' L2-normalised f32 vectors in one Float32Array,
 *                                with the embedding model id (read per query only for the re-rank candidates)
 *   docindex   keyPath key       everything search keeps in memory, per document segment: the int8 codes of
 *                                its chunks (one Int8Array n*dim + scales) and the BM25 postings as a
 *                                varint-coded forward index over global term ids (see encodeTerms). One
 *                                getAll() of this store (and of `terms`) loads an index.
 *   terms      keyPath first     the BM25 term dictionary: each record the terms one write added, numbered
 *                                from `first` on (append-only; ids are what docindex stores)
 *   meta       out-of-line keys  "model" {modelId, dim}, "schema" {version, analyzer}
 *
 * Why grouped records (v4) and not one record per chunk (v3): Chromium's IndexedDB pays ~110-140 bytes per
 * record (the LevelDB entry, an "exists" entry, the UTF-16 key, the value envelope) plus about as much again
 * per index entry. Why global term ids: a per-segment 64-bit hash of every distinct term (v3) was 8 + 4 bytes
 * per term per segment, most of the postings' bytes (568 bytes a chunk serialised; the v4 forward index: 97).
 * Together: 1.61 → 1.19 x the raw f32 vectors + text at 100k chunks (bench/rag/run.mjs, docs/benchmarks.md).
 *
 * Why per-document records (v3 on) and not per-term postings lists (v1/v2 "postings" store): a global list
 * per term has to be read, grown and rewritten by every document that uses the term, which made ingest
 * quadratic.
 *
 * Atomicity: every document is written (or removed) in ONE readwrite transaction over all stores, after all
 * the slow work (extraction, chunking, embedding) is done, so a crash, a closed tab, an abort signal or a
 * failed write leaves either the whole document or none of it. New terms are added to the dictionary in the
 * same transaction.
 */

import { wrap, type DBSchema, type IDBPDatabase, type IDBPTransaction, type StoreNames } from "idb";
import { ANALYZER_VERSION, hashTerm, termFrequencies } from "./bm25.js";
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

/** Chunks per `chunks` record (~8 KB of text at 500 characters a chunk; one read per search hit). */
export const CHUNK_GROUP = 16;
/** Vectors per `vectors` record (6 KB at 384 dimensions; one read per re-rank candidate). */
export const VECTOR_GROUP = 4;

/** A `chunks` record (v4): chunks `n * CHUNK_GROUP ..` of a document, key `<docId>#<n>`. */
export interface ChunkGroupRecord {
  texts: string[];
  /** Char offset of each chunk in the document's extracted text (it ends at start + text length). */
  start: Uint32Array;
  /** Embedder tokens of each chunk. */
  tokens: Uint32Array;
  /** First and last page of each chunk (PDF; -1 = none), null where the document has no pages. */
  page: Int32Array | null;
  pageEnd: Int32Array | null;
}

/** A `vectors` record (v4): the f32 vectors of chunks `n * VECTOR_GROUP ..` of a document, key `<docId>#<n>`. */
export interface VectorGroupRecord {
  modelId: string;
  dim: number;
  /** rows x dim, L2-normalised rows. */
  f32: Float32Array;
}

/**
 * Search data of one segment of a document (v4), everything typed arrays. A document's chunks are split into
 * segments of at most SEGMENT_MAX_CHUNKS chunks and about SEGMENT_BYTES bytes, so that every record stays
 * below Chromium's 64 KiB threshold above which IndexedDB wraps a value into a separate blob file.
 *
 * The segment holds chunks `first .. first + count - 1` (ordinals; chunk ids are `<docId>:<ordinal>`). Chunk
 * `i`'s int8 code is `codes[i*dim .. (i+1)*dim)` with scale `scales[i]`; its BM25 length and terms are in
 * `terms` (see encodeTerms).
 */
export interface DocIndexRecord {
  /** `<docId>#<segment>`. */
  key: string;
  docId: string;
  modelId: string;
  dim: number;
  first: number;
  count: number;
  codes: Int8Array;
  scales: Float32Array;
  terms: Uint8Array;
}

/** A `terms` record: terms numbered `first`, `first + 1`, … (added by one write). */
export interface TermsRecord {
  first: number;
  terms: string[];
}

export const SEGMENT_MAX_CHUNKS = 255;
export const SEGMENT_BYTES = 48 * 1024;
/** BM25 term frequencies are stored clamped to this (with k1 = 1.2 the tf factor at 255 is within 0.5% of its limit). */
export const MAX_TF = 255;

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
  chunks: { key: string; value: ChunkGroupRecord };
  vectors: { key: string; value: VectorGroupRecord };
  docindex: { key: string; value: DocIndexRecord };
  terms: { key: number; value: TermsRecord };
  meta: { key: string; value: MetaValue };
}

export type RagDB = IDBPDatabase<RagDBSchema>;
type AllStores = StoreNames<RagDBSchema>[];
export type WriteTx = IDBPTransaction<RagDBSchema, AllStores, "readwrite">;

export const ALL_STORES: AllStores = ["documents", "texts", "chunks", "vectors", "docindex", "terms", "meta"];

/**
 * One schema step. `up` runs inside the versionchange transaction: IndexedDB requests only (awaiting them is
 * fine, awaiting anything else lets the transaction commit). A step that returns a promise is finished when it
 * resolves; the next step starts then.
 */
export interface Migration {
  version: number;
  description: string;
  up(db: IDBDatabase, tx: IDBTransaction): void | Promise<void>;
}

export function chunkIdFor(docId: string, ordinal: number): string {
  return `${docId}:${ordinal}`;
}

/** Key of a document's record number `n` in chunks, vectors and docindex (v4). */
export function recordKey(docId: string, n: number): string {
  return `${docId}#${String(n).padStart(6, "0")}`;
}

/** Key range of all of a document's records in chunks, vectors and docindex. */
export function segmentRange(docId: string): IDBKeyRange {
  return IDBKeyRange.bound(`${docId}#`, `${docId}#\uffff`);
}

function recordNumber(key: string): number {
  return Number(key.slice(key.lastIndexOf("#") + 1));
}

/** Where chunk `chunkId` lives: its document, ordinal, and the key and row of its group of `size`. */
function locate(chunkId: string, size: number): { docId: string; ordinal: number; key: string; row: number } | null {
  const at = chunkId.lastIndexOf(":");
  const ordinal = Number(chunkId.slice(at + 1));
  if (at < 0 || !Number.isInteger(ordinal) || ordinal < 0) return null;
  const docId = chunkId.slice(0, at);
  return { docId, ordinal, key: recordKey(docId, Math.floor(ordinal / size)), row: ordinal % size };
}

/** The BM25 term dictionary (term → id) of an index, as loaded from the `terms` store. */
export class TermDictionary {
  readonly ids = new Map<string, number>();
  /** The next id to give out (= number of terms). */
  next = 0;

  /** Add a `terms` record; it must be the next one. */
  append(r: TermsRecord): void {
    if (r.first !== this.next) throw new Error(`internal: term dictionary record ${r.first} does not follow term ${this.next}`);
    for (const t of r.terms) this.ids.set(t, this.next++);
  }

  /** Ids for one write: known terms keep theirs; new ones are numbered from `next` on (added at `append`). */
  allocator(): { id(term: string): number; record(): TermsRecord | null } {
    const fresh = new Map<string, number>();
    const first = this.next;
    return {
      id: (term) => {
        const known = this.ids.get(term) ?? fresh.get(term);
        if (known !== undefined) return known;
        const id = first + fresh.size;
        fresh.set(term, id);
        return id;
      },
      record: () => (fresh.size === 0 ? null : { first, terms: [...fresh.keys()] }),
    };
  }
}

/** One chunk's BM25 analysis and int8 code, the input of `buildDocIndex`. */
export interface ChunkIndexInput {
  tf: ReadonlyMap<string, number>;
  length: number;
  i8: Int8Array;
  scale: number;
}

/** Growable byte buffer for varints. */
class ByteWriter {
  buf = new Uint8Array(256);
  n = 0;

  varint(v: number): void {
    if (this.n + 10 > this.buf.length) {
      const grown = new Uint8Array(this.buf.length * 2);
      grown.set(this.buf);
      this.buf = grown;
    }
    while (v >= 128) {
      this.buf[this.n++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    this.buf[this.n++] = v;
  }
}

/**
 * The BM25 forward index of some chunks, as unsigned LEB128 varints: per chunk its BM25 length, its number
 * of distinct terms, then per term in ascending id order `(id - previous id) * 2 + (tf > 1 ? 1 : 0)`,
 * followed by `tf - 2` when tf > 1 (tf clamped to MAX_TF). With ids numbered by first appearance, frequent
 * terms have small ids, and a posting takes ~2 bytes (v3: ~10, most of it a 64-bit term hash per segment).
 */
export function encodeTerms(chunks: ReadonlyArray<{ tf: ReadonlyMap<string, number>; length: number }>, idOf: (term: string) => number): Uint8Array {
  const w = new ByteWriter();
  for (const c of chunks) {
    const entries: Array<[number, number]> = [];
    for (const [term, tf] of c.tf) entries.push([idOf(term), Math.min(tf, MAX_TF)]);
    entries.sort((a, b) => a[0] - b[0]);
    w.varint(c.length);
    w.varint(entries.length);
    let prev = 0;
    for (const [id, tf] of entries) {
      w.varint((id - prev) * 2 + (tf > 1 ? 1 : 0));
      if (tf > 1) w.varint(tf - 2);
      prev = id;
    }
  }
  return w.buf.slice(0, w.n);
}

/** A decoded forward index: chunk i has terms `ids[termStart[i] .. termStart[i+1])` with `tfs[…]`. */
export interface DecodedTerms {
  lengths: Uint32Array;
  termStart: Uint32Array;
  ids: Uint32Array;
  tfs: Uint16Array;
}

export function decodeTerms(bytes: Uint8Array, count: number): DecodedTerms {
  const len = bytes.length;
  let at = 0;
  // One varint (LEB128), inlined by hand below: a closure per value was ~20% of the load time at 100k chunks.
  const slow = (first: number): number => {
    let v = first & 127;
    let mul = 128;
    for (;;) {
      if (at >= len) throw new Error("internal: truncated BM25 terms");
      const b = bytes[at++] as number;
      v += (b & 127) * mul;
      if (b < 128) return v;
      mul *= 128;
    }
  };
  const lengths = new Uint32Array(count);
  const termStart = new Uint32Array(count + 1);
  // At least 1 byte per posting: bytes.length bounds the postings.
  const ids = new Uint32Array(len);
  const tfs = new Uint16Array(len);
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (at >= len) throw new Error("internal: truncated BM25 terms");
    let b = bytes[at++] as number;
    lengths[i] = b < 128 ? b : slow(b);
    if (at >= len) throw new Error("internal: truncated BM25 terms");
    b = bytes[at++] as number;
    const n = b < 128 ? b : slow(b);
    termStart[i] = p;
    let id = 0;
    for (let t = 0; t < n; t++, p++) {
      if (at >= len) throw new Error("internal: truncated BM25 terms");
      b = bytes[at++] as number;
      const v = b < 128 ? b : slow(b);
      id += Math.floor(v / 2);
      ids[p] = id;
      if (v % 2 === 1) {
        if (at >= len) throw new Error("internal: truncated BM25 terms");
        b = bytes[at++] as number;
        tfs[p] = (b < 128 ? b : slow(b)) + 2;
      } else tfs[p] = 1;
    }
  }
  termStart[count] = p;
  return { lengths, termStart, ids: ids.subarray(0, p), tfs: tfs.subarray(0, p) };
}

/** Pack one document's chunks (in ordinal order, from 0) into its docindex segments. */
export function buildDocIndex(
  docId: string,
  modelId: string,
  dim: number,
  chunks: readonly ChunkIndexInput[],
  idOf: (term: string) => number,
): DocIndexRecord[] {
  const encoded = chunks.map((c) => encodeTerms([c], idOf));
  const out: DocIndexRecord[] = [];
  const pack = (from: number, to: number) => {
    const n = to - from;
    const codes = new Int8Array(n * dim);
    const scales = new Float32Array(n);
    let bytes = 0;
    for (let i = from; i < to; i++) bytes += (encoded[i] as Uint8Array).length;
    const terms = new Uint8Array(bytes);
    let at = 0;
    for (let i = from; i < to; i++) {
      const c = chunks[i] as ChunkIndexInput;
      if (dim > 0) codes.set(c.i8, (i - from) * dim);
      scales[i - from] = c.scale;
      terms.set(encoded[i] as Uint8Array, at);
      at += (encoded[i] as Uint8Array).length;
    }
    out.push({ key: recordKey(docId, out.length), docId, modelId, dim, first: from, count: n, codes, scales, terms });
  };
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < chunks.length; i++) {
    const add = dim + 4 + (encoded[i] as Uint8Array).length;
    if (i > start && (bytes + add > SEGMENT_BYTES || i - start >= SEGMENT_MAX_CHUNKS)) {
      pack(start, i);
      start = i;
      bytes = 0;
    }
    bytes += add;
  }
  if (start < chunks.length) pack(start, chunks.length);
  return out;
}

/** The records of one document in chunks, vectors and docindex (v4), and the new terms it brings. */
export interface DocumentRecords {
  chunkGroups: Array<[string, ChunkGroupRecord]>;
  vectorGroups: Array<[string, VectorGroupRecord]>;
  segments: DocIndexRecord[];
  terms: TermsRecord | null;
}

function groupChunks(docId: string, chunks: readonly ChunkRecord[]): Array<[string, ChunkGroupRecord]> {
  const paged = chunks.some((c) => c.page !== null || c.pageEnd !== null);
  const out: Array<[string, ChunkGroupRecord]> = [];
  for (let from = 0; from < chunks.length; from += CHUNK_GROUP) {
    const part = chunks.slice(from, from + CHUNK_GROUP);
    out.push([
      recordKey(docId, from / CHUNK_GROUP),
      {
        texts: part.map((c) => c.text),
        start: Uint32Array.from(part, (c) => c.start),
        tokens: Uint32Array.from(part, (c) => c.tokenCount),
        page: paged ? Int32Array.from(part, (c) => c.page ?? -1) : null,
        pageEnd: paged ? Int32Array.from(part, (c) => c.pageEnd ?? -1) : null,
      },
    ]);
  }
  return out;
}

function groupVectors(docId: string, vectors: readonly VectorRecord[]): Array<[string, VectorGroupRecord]> {
  const out: Array<[string, VectorGroupRecord]> = [];
  for (let from = 0; from < vectors.length; from += VECTOR_GROUP) {
    const part = vectors.slice(from, from + VECTOR_GROUP);
    const first = part[0] as VectorRecord;
    const dim = first.f32.length;
    const f32 = new Float32Array(part.length * dim);
    part.forEach((v, i) => {
      if (v.f32.length !== dim || v.modelId !== first.modelId) throw new Error(`internal: vectors of ${docId} differ in model or dimension`);
      f32.set(v.f32, i * dim);
    });
    out.push([recordKey(docId, from / VECTOR_GROUP), { modelId: first.modelId, dim, f32 }]);
  }
  return out;
}

/**
 * A document's v4 records. `chunks` must be its chunks in ordinal order with ordinals 0..n-1 and ids
 * `chunkIdFor(docId, ordinal)`; `vectors`, `codes` and `terms` are per chunk in the same order.
 */
export function documentRecords(
  docId: string,
  chunks: readonly ChunkRecord[],
  vectors: readonly PreparedVector[],
  terms: ReadonlyArray<{ tf: ReadonlyMap<string, number>; length: number }>,
  idOf: (term: string) => number,
): Omit<DocumentRecords, "terms"> {
  chunks.forEach((c, i) => {
    if (c.ordinal !== i || c.id !== chunkIdFor(docId, i)) throw new Error(`internal: chunk ${c.id} of ${docId} is not chunk ${i}`);
    if (vectors[i]?.chunkId !== c.id) throw new Error(`internal: vectors and chunks of ${docId} are not in the same order`);
  });
  if (terms.length !== chunks.length) throw new Error(`internal: terms and chunks of ${docId} differ in number`);
  const first = vectors[0];
  const dim = first === undefined ? 0 : first.i8.length;
  const modelId = first === undefined ? "" : first.modelId;
  return {
    chunkGroups: groupChunks(docId, chunks),
    vectorGroups: groupVectors(docId, vectors),
    segments: buildDocIndex(
      docId,
      modelId,
      dim,
      terms.map((t, i) => ({ tf: t.tf, length: t.length, i8: (vectors[i] as PreparedVector).i8, scale: (vectors[i] as PreparedVector).scale })),
      idOf,
    ),
  };
}

/** The docindex segments of a prepared document with the term ids of `dict` (new terms numbered after it). */
export function docIndexOf(p: PreparedDocument, dict: TermDictionary = new TermDictionary()): DocIndexRecord[] {
  return documentRecords(p.document.id, p.chunks, p.vectors, p.terms, dict.allocator().id).segments;
}

function chunkOf(docId: string, n: number, g: ChunkGroupRecord, row: number): ChunkRecord {
  const ordinal = n * CHUNK_GROUP + row;
  const text = g.texts[row] as string;
  const start = g.start[row] as number;
  const page = g.page === null ? -1 : (g.page[row] as number);
  const pageEnd = g.pageEnd === null ? -1 : (g.pageEnd[row] as number);
  return {
    id: chunkIdFor(docId, ordinal),
    docId,
    ordinal,
    text,
    page: page < 0 ? null : page,
    pageEnd: pageEnd < 0 ? null : pageEnd,
    start,
    end: start + text.length,
    tokenCount: g.tokens[row] as number,
  };
}

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
  terms.forEach((term, t) => hashTerm(term, termHash, 2 * t));
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
    const records = documentRecords(docId, renumbered, prepared, renumbered.map((c) => termFrequencies(c.text)), alloc.id);
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
    description:
      "chunks and vectors grouped per document (no by-doc indexes); docindex postings as varints over global term ids; terms dictionary",
    up: migrateToGroups,
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
  let upgradeError: unknown = undefined;
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

/** Everything a document adds, computed before the write transaction opens. */
export interface PreparedDocument {
  document: DocumentRecord;
  text: TextRecord;
  /** In ordinal order, ordinals 0..n-1, ids chunkIdFor(docId, ordinal). */
  chunks: ChunkRecord[];
  /** One per chunk, in chunk order. */
  vectors: PreparedVector[];
  /** Per chunk: BM25 term frequencies and length. */
  terms: Array<{ chunkId: string; tf: Map<string, number>; length: number }>;
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
