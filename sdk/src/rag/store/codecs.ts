/** Record codecs: compact texts, the BM25 term dictionary, varint-coded postings, docindex segments, chunk and vector groups. */
import {
  CHUNK_GROUP,
  type ChunkGroupRecord,
  chunkIdFor,
  type ChunkRecord,
  type DocIndexRecord,
  MAX_TF,
  type PreparedDocument,
  type PreparedVector,
  recordKey,
  SEGMENT_BYTES,
  SEGMENT_MAX_CHUNKS,
  type StoredText,
  type TermsRecord,
  type TextRecord,
  VECTOR_GROUP,
  type VectorGroupRecord,
  type VectorRecord,
} from "./schema.js";

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

export function chunkOf(docId: string, n: number, g: ChunkGroupRecord, row: number): ChunkRecord {
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
