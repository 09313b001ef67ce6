/** The RAG database's shape (schema v4): record types, group sizes, the idb schema, per-document keys. Layout and rationale: ../store.ts. */
import type { DBSchema, IDBPDatabase, IDBPTransaction, StoreNames } from "idb";
import type { PageSpan } from "../extract-pdf.js";
import type { SupportedMime } from "../extract.js";

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

export function recordNumber(key: string): number {
  return Number(key.slice(key.lastIndexOf("#") + 1));
}

/** Where chunk `chunkId` lives: its document, ordinal, and the key and row of its group of `size`. */
export function locate(chunkId: string, size: number): { docId: string; ordinal: number; key: string; row: number } | null {
  const at = chunkId.lastIndexOf(":");
  const ordinal = Number(chunkId.slice(at + 1));
  if (at < 0 || !Number.isInteger(ordinal) || ordinal < 0) return null;
  const docId = chunkId.slice(0, at);
  return { docId, ordinal, key: recordKey(docId, Math.floor(ordinal / size)), row: ordinal % size };
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
