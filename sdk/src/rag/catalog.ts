/**
 * The in-memory side of an open index: document records, int8 vector codes, and BM25 chunk lengths and
 * totals. Loaded once from IndexedDB on open, then kept in step with every committed transaction (and
 * reloaded when another tab changes the same index). Chunk text and f32 vectors stay in IndexedDB and are
 * read per query.
 *
 * Memory: about `dim` bytes per chunk for the int8 codes plus small per-chunk maps; for 10 000 chunks of a
 * 384-dimensional model that is roughly 4-5 MB.
 */

import type { Bm25Corpus } from "./bm25.js";
import {
  readDocPostings,
  readQuantized,
  readStats,
  type Bm25Stats,
  type DocumentRecord,
  type PreparedDocument,
  type RagDB,
} from "./store.js";
import type { VectorEntry } from "./vectors.js";

export interface CatalogVector extends VectorEntry {
  docId: string;
}

export class Catalog implements Bm25Corpus {
  readonly docs = new Map<string, DocumentRecord>();
  readonly vectors = new Map<string, CatalogVector>();
  readonly lengths = new Map<string, number>();
  readonly chunkDoc = new Map<string, string>();
  chunkCount = 0;
  totalLength = 0;

  static async load(db: RagDB, modelId: string): Promise<Catalog> {
    const c = new Catalog();
    const [docs, docPostings, quantized, stats] = await Promise.all([
      db.getAllFromIndex("documents", "by-createdAt"), // schema v2 index
      readDocPostings(db),
      readQuantized(db, modelId),
      readStats(db),
    ]);
    for (const d of docs) c.docs.set(d.id, d);
    for (const [docId, p] of docPostings) {
      for (const [chunkId, len] of p.lengths) {
        c.lengths.set(chunkId, len);
        c.chunkDoc.set(chunkId, docId);
      }
    }
    for (const v of quantized) c.vectors.set(v.chunkId, v);
    c.setStats(stats);
    return c;
  }

  private setStats(s: Bm25Stats): void {
    this.chunkCount = s.chunkCount;
    this.totalLength = s.totalLength;
  }

  lengthOf(chunkId: string): number | undefined {
    return this.lengths.get(chunkId);
  }

  /** Mirror a committed `writeDocument`. */
  add(p: PreparedDocument): void {
    this.docs.set(p.document.id, p.document);
    for (const t of p.terms) {
      this.lengths.set(t.chunkId, t.length);
      this.chunkDoc.set(t.chunkId, p.document.id);
      this.totalLength += t.length;
    }
    this.chunkCount += p.terms.length;
    for (const v of p.vectors) this.vectors.set(v.chunkId, { chunkId: v.chunkId, docId: v.docId, i8: v.i8, scale: v.scale });
  }

  /** Mirror a committed `deleteDocument`. */
  remove(docId: string): void {
    this.docs.delete(docId);
    for (const [chunkId, d] of this.chunkDoc) {
      if (d !== docId) continue;
      this.totalLength -= this.lengths.get(chunkId) ?? 0;
      this.chunkCount -= 1;
      this.lengths.delete(chunkId);
      this.chunkDoc.delete(chunkId);
      this.vectors.delete(chunkId);
    }
    this.chunkCount = Math.max(0, this.chunkCount);
    this.totalLength = Math.max(0, this.totalLength);
  }

  /** Documents by creation time (then id). */
  list(): DocumentRecord[] {
    return [...this.docs.values()].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}
