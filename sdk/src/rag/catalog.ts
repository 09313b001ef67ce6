/**
 * The in-memory side of an open index: document records, and everything a query scans, in typed arrays:
 *
 * - an int8 code matrix (one row of `dim` bytes per chunk "slot") with per-slot scales, scanned whole per query;
 * - BM25: per-slot lengths and an inverted index term id (the `terms` dictionary) → (slots, tfs), in growable
 *   typed arrays.
 *
 * Loaded once from the `docindex` and `terms` stores on open (one getAll each), then kept in step with every committed
 * transaction (and reloaded when another tab changes the same index). Chunk text and f32 vectors stay in
 * IndexedDB and are read per query only for the few hits and re-rank candidates.
 *
 * Slots of removed documents are freed and reused; the BM25 lists of the removed document's terms are
 * compacted at once, so scoring never sees a dead slot.
 *
 * Memory: `dim` bytes per chunk for the codes plus ~6 bytes per posting; for 100 000 chunks of a
 * 384-dimensional model with ~60 distinct terms per chunk that is about 38 MB + 36 MB.
 */

import { DEFAULT_BM25, idf, type Bm25Params } from "./bm25.js";
import { CodeMatrix } from "./codes.js";
import {
  chunkIdFor,
  decodeTerms,
  documentRecords,
  readDocIndex,
  TermDictionary,
  type DocIndexRecord,
  type DocumentRecord,
  type PreparedDocument,
  type RagDB,
  type WrittenDocument,
} from "./store.js";

/** A growable list of (slot, tf) pairs. */
class PostingList {
  slots = new Int32Array(0);
  tfs = new Uint16Array(0);
  n = 0;

  constructor(readonly id: number) {}

  /** Room for at least `n` entries (grows by doubling). */
  reserve(n: number): void {
    if (n <= this.slots.length) return;
    const cap = Math.max(n, this.slots.length * 2, 4);
    const slots = new Int32Array(cap);
    slots.set(this.slots.subarray(0, this.n));
    this.slots = slots;
    const tfs = new Uint16Array(cap);
    tfs.set(this.tfs.subarray(0, this.n));
    this.tfs = tfs;
  }

  /** Drop the entries whose slot is marked in `dead`. */
  compact(dead: Uint8Array): void {
    let w = 0;
    for (let r = 0; r < this.n; r++) {
      const s = this.slots[r] as number;
      if (dead[s] === 1) continue;
      this.slots[w] = s;
      this.tfs[w] = this.tfs[r] as number;
      w++;
    }
    this.n = w;
  }
}

export interface SlotHit {
  slot: number;
  score: number;
}

/**
 * The best `n` of `count` scores, by descending score (ties by slot). `scoreOf` is called once per candidate
 * slot; `accept` (a slot mask) filters. A bounded binary min-heap: O(count log n).
 */
function topN(n: number, candidates: Iterable<number> | null, count: number, scoreOf: (slot: number) => number, accept: Uint8Array | null): SlotHit[] {
  const heapS = new Float64Array(n);
  const heapI = new Int32Array(n);
  let size = 0;
  const worse = (a: number, b: number) =>
    (heapS[a] as number) < (heapS[b] as number) || ((heapS[a] as number) === (heapS[b] as number) && (heapI[a] as number) > (heapI[b] as number));
  const swap = (a: number, b: number) => {
    const s = heapS[a] as number;
    heapS[a] = heapS[b] as number;
    heapS[b] = s;
    const i = heapI[a] as number;
    heapI[a] = heapI[b] as number;
    heapI[b] = i;
  };
  const offer = (slot: number) => {
    if (accept !== null && accept[slot] !== 1) return;
    const score = scoreOf(slot);
    if (size === n) {
      if (score < (heapS[0] as number) || (score === heapS[0] && slot > (heapI[0] as number))) return;
      heapS[0] = score;
      heapI[0] = slot;
      // sift down
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < size && worse(l, m)) m = l;
        if (r < size && worse(r, m)) m = r;
        if (m === i) break;
        swap(i, m);
        i = m;
      }
      return;
    }
    heapS[size] = score;
    heapI[size] = slot;
    let i = size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!worse(i, p)) break;
      swap(i, p);
      i = p;
    }
  };
  if (candidates === null) for (let s = 0; s < count; s++) offer(s);
  else for (const s of candidates) offer(s);
  const out: SlotHit[] = [];
  for (let i = 0; i < size; i++) out.push({ slot: heapI[i] as number, score: heapS[i] as number });
  return out.sort((a, b) => b.score - a.score || a.slot - b.slot);
}

export class Catalog {
  readonly docs = new Map<string, DocumentRecord>();
  /** Slot → chunk id and owning document ("" for a free slot). */
  private slotChunk: string[] = [];
  private slotDoc: string[] = [];
  private codes: CodeMatrix | null = null;
  private scales = new Float32Array(0);
  private lengths = new Float64Array(0);
  /** 1 = free slot. */
  private dead = new Uint8Array(0);
  /** Slots in use (≤ capacity) and free slots below it. */
  private used = 0;
  private free: number[] = [];
  /** The term dictionary; posting list of term id t: postings[t]. */
  readonly terms = new TermDictionary();
  private postings: Array<PostingList | undefined> = [];
  /** Document → its slots and its distinct term ids (for remove). */
  private readonly docSlots = new Map<string, { slots: Int32Array[]; terms: Uint32Array[] }>();
  private readonly slotOf = new Map<string, number>();
  chunkCount = 0;
  totalLength = 0;
  private dim = 0;
  /** How long the last load took: the IndexedDB reads, and building the in-memory state. */
  loadTimings: { readMs: number; buildMs: number } | null = null;

  constructor(
    readonly modelId: string,
    private readonly opts: { simd?: boolean } = {},
  ) {}

  /** Whether the vector pre-scan runs as WebAssembly SIMD (see codes.ts). */
  get simd(): boolean {
    return this.codes?.simd ?? false;
  }

  static async load(db: RagDB, modelId: string, opts: { simd?: boolean } = {}): Promise<Catalog> {
    const c = new Catalog(modelId, opts);
    const t0 = performance.now();
    const [docs, { segments, terms }] = await Promise.all([
      db.getAllFromIndex("documents", "by-createdAt"), // schema v2 index
      readDocIndex(db),
    ]);
    const tRead = performance.now();
    for (const d of docs) c.docs.set(d.id, d);
    for (const r of terms.sort((a, b) => a.first - b.first)) c.terms.append(r);
    const live = segments.filter((r) => c.docs.has(r.docId));
    let total = 0;
    for (const r of live) total += r.count;
    c.reserve(total);
    const decoded = live.map((r) => decodeTerms(r.terms, r.count));
    c.sizePostings(decoded);
    live.forEach((r, i) => {
      c.addRecord(r, decoded[i] as ReturnType<typeof decodeTerms>);
    });
    c.loadTimings = { readMs: tRead - t0, buildMs: performance.now() - tRead };
    return c;
  }

  /** Grow the slot arrays to hold at least `n` slots. */
  private reserve(n: number): void {
    const cap = this.scales.length;
    if (n <= cap) return;
    const next = Math.max(n, cap * 2, 64);
    const grow = <T extends Float32Array | Float64Array | Uint8Array>(old: T, make: (len: number) => T): T => {
      const a = make(next);
      a.set(old as never);
      return a;
    };
    this.scales = grow(this.scales, (l) => new Float32Array(l));
    this.lengths = grow(this.lengths, (l) => new Float64Array(l));
    this.dead = grow(this.dead, (l) => new Uint8Array(l));
    this.codes?.reserve(next);
  }

  private allocSlot(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    this.reserve(this.used + 1);
    return this.used++;
  }

  private postingList(id: number): PostingList {
    let list = this.postings[id];
    if (list === undefined) {
      list = new PostingList(id);
      this.postings[id] = list;
    }
    return list;
  }

  /**
   * Give every posting list of `records` its final capacity at once. Growing ~30k typed arrays by doubling
   * while filling them was most of the load time at 100k chunks (allocation and copying, not the fill).
   */
  private sizePostings(records: ReadonlyArray<ReturnType<typeof decodeTerms>>): void {
    const need = new Int32Array(this.terms.next);
    let total = 0;
    for (const r of records) {
      const ids = r.ids;
      for (let p = 0; p < ids.length; p++) {
        const id = ids[p] as number;
        need[id] = (need[id] as number) + 1;
      }
      total += ids.length;
    }
    // Lists still empty get their room as views of two shared buffers (one allocation instead of ~2 per term;
    // a list that outgrows its view later moves to arrays of its own, see PostingList.reserve).
    const slots = new Int32Array(total);
    const tfs = new Uint16Array(total);
    let at = 0;
    for (let id = 0; id < need.length; id++) {
      const k = need[id] as number;
      if (k === 0) continue;
      const list = this.postingList(id);
      if (list.n === 0 && list.slots.length < k) {
        list.slots = slots.subarray(at, at + k);
        list.tfs = tfs.subarray(at, at + k);
        at += k;
      } else list.reserve(list.n + k);
    }
  }

  private addRecord(r: DocIndexRecord, t = decodeTerms(r.terms, r.count)): void {
    const n = r.count;
    const vectorsUsable = r.modelId === this.modelId && r.dim > 0;
    if (vectorsUsable && this.codes === null) {
      this.dim = r.dim;
      this.codes = new CodeMatrix(r.dim, this.opts);
      this.codes.reserve(this.scales.length);
    }
    const slots = new Int32Array(n);
    const postings = this.postings;
    const ids = t.ids;
    const tfs = t.tfs;
    for (let i = 0; i < n; i++) {
      const slot = this.allocSlot();
      slots[i] = slot;
      const chunkId = chunkIdFor(r.docId, r.first + i);
      this.slotChunk[slot] = chunkId;
      this.slotDoc[slot] = r.docId;
      this.slotOf.set(chunkId, slot);
      this.dead[slot] = 0;
      const len = t.lengths[i] as number;
      this.lengths[slot] = len;
      this.totalLength += len;
      if (vectorsUsable && r.dim === this.dim) {
        this.codes?.setRow(slot, r.codes, i * this.dim);
        this.scales[slot] = r.scales[i] as number;
      } else {
        this.codes?.clearRow(slot); // no usable vector: scores 0
        this.scales[slot] = 0;
      }
      for (let p = t.termStart[i] as number, end = t.termStart[i + 1] as number; p < end; p++) {
        const id = ids[p] as number;
        const list = postings[id] ?? this.postingList(id);
        const at = list.n;
        if (at === list.slots.length) list.reserve(at + 1);
        list.slots[at] = slot;
        list.tfs[at] = tfs[p] as number;
        list.n = at + 1;
      }
    }
    const terms = this.distinct(t.ids);
    this.chunkCount += n;
    // A document of several segments: append.
    const prev = this.docSlots.get(r.docId);
    if (prev === undefined) this.docSlots.set(r.docId, { slots: [slots], terms: [terms] });
    else {
      prev.slots.push(slots);
      prev.terms.push(terms);
    }
  }

  /** Per term id, the last `distinct` call that saw it (a Set of ~6M ids was ~15% of the load time at 100k). */
  private seen = new Int32Array(0);
  private seenGen = 0;

  /** The distinct values of `ids` (term ids below terms.next). */
  private distinct(ids: Uint32Array): Uint32Array {
    if (this.seen.length < this.terms.next) {
      const grown = new Int32Array(Math.max(this.terms.next, 2 * this.seen.length));
      grown.set(this.seen);
      this.seen = grown;
    }
    const gen = ++this.seenGen;
    const out = new Uint32Array(ids.length);
    let n = 0;
    for (const id of ids) {
      if (this.seen[id] === gen) continue;
      this.seen[id] = gen;
      out[n++] = id;
    }
    return out.slice(0, n);
  }

  /** Mirror a committed `writeDocument` (its segments and new terms). */
  addWritten(document: DocumentRecord, written: WrittenDocument): void {
    if (written.terms !== null) this.terms.append(written.terms);
    this.docs.set(document.id, document);
    for (const segment of written.segments) this.addRecord(segment);
  }

  /** Add a prepared document that is not stored (tests, in-memory use): new terms are numbered here. */
  add(p: PreparedDocument): void {
    const alloc = this.terms.allocator();
    const { segments } = documentRecords(p.document.id, p.chunks, p.vectors, p.terms, alloc.id);
    this.addWritten(p.document, { segments, terms: alloc.record() });
  }

  /** Mirror a committed `deleteDocument`. */
  remove(docId: string): void {
    this.docs.delete(docId);
    const entry = this.docSlots.get(docId);
    if (entry === undefined) return;
    this.docSlots.delete(docId);
    const slots = entry.slots.flatMap((s) => Array.from(s));
    for (const slot of slots) {
      this.dead[slot] = 1;
      this.slotOf.delete(this.slotChunk[slot] as string);
      this.slotChunk[slot] = "";
      this.slotDoc[slot] = "";
      this.totalLength -= this.lengths[slot] as number;
      this.lengths[slot] = 0;
      this.scales[slot] = 0;
    }
    const lists = new Set<PostingList>();
    for (const ids of entry.terms) {
      for (const id of ids) {
        const list = this.postings[id];
        if (list !== undefined) lists.add(list);
      }
    }
    for (const list of lists) list.compact(this.dead);
    // Slots become reusable only after every list has dropped them.
    for (const slot of slots) this.free.push(slot);
    this.chunkCount -= slots.length;
    if (this.chunkCount === 0) this.totalLength = 0;
  }

  /** Documents by creation time (then id). */
  list(): DocumentRecord[] {
    return [...this.docs.values()].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  chunkId(slot: number): string {
    return this.slotChunk[slot] as string;
  }

  docOf(slot: number): string {
    return this.slotDoc[slot] as string;
  }

  slotFor(chunkId: string): number | undefined {
    return this.slotOf.get(chunkId);
  }

  /** Slot mask of the chunks of `docIds` (null = every live chunk, no mask needed). */
  mask(docIds: ReadonlySet<string> | null): Uint8Array | null {
    if (docIds === null) {
      if (this.free.length === 0) return null;
      const m = new Uint8Array(this.used);
      for (let s = 0; s < this.used; s++) m[s] = this.dead[s] === 1 ? 0 : 1;
      return m;
    }
    const m = new Uint8Array(this.used);
    for (const id of docIds) {
      const e = this.docSlots.get(id);
      if (e !== undefined) for (const seg of e.slots) for (const s of seg) m[s] = 1;
    }
    return m;
  }

  /** BM25 top `n` (Lucene BM25 with the +1 idf), over the in-memory postings. */
  bm25(terms: readonly string[], n: number, accept: Uint8Array | null, params: Bm25Params = DEFAULT_BM25): SlotHit[] {
    const N = this.chunkCount;
    if (N === 0) return [];
    const avgdl = this.totalLength / N || 1;
    const scores = new Float64Array(this.used);
    const touched: number[] = [];
    const { k1, b } = params;
    for (const term of new Set(terms)) {
      const id = this.terms.ids.get(term);
      const list = id === undefined ? undefined : this.postings[id];
      if (list === undefined || list.n === 0) continue;
      const w = idf(list.n, N);
      for (let i = 0; i < list.n; i++) {
        const slot = list.slots[i] as number;
        const tf = list.tfs[i] as number;
        const len = this.lengths[slot] as number;
        if (scores[slot] === 0) touched.push(slot);
        scores[slot] = (scores[slot] as number) + (w * tf * (k1 + 1)) / (tf + k1 * (1 - b + (b * len) / avgdl));
      }
    }
    return topN(n, touched, this.used, (s) => scores[s] as number, accept);
  }

  /** Approximate cosine top `n` by the int8 codes (`query` L2-normalised): one pass over the code matrix. */
  prescan(query: Float32Array, n: number, accept: Uint8Array | null): SlotHit[] {
    if (this.codes === null || this.used === 0) return [];
    const scores = this.codes.scan(query, this.used, this.scales);
    const live = accept ?? (this.free.length > 0 ? this.mask(null) : null);
    return topN(n, null, this.used, (s) => scores[s] as number, live);
  }
}
