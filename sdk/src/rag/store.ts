/**
 * IndexedDB persistence of the RAG index (through `idb`), in store/: schema.ts (record shapes, keys),
 * codecs.ts (texts, term dictionary, varint postings, groups), migrations.ts, db.ts (open, write, read).
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
export * from "./store/schema.js";
export * from "./store/codecs.js";
export * from "./store/migrations.js";
export * from "./store/db.js";
