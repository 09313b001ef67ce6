/**
 * Hybrid retrieval: BM25 and vector search, fused, filtered by document metadata, with near-duplicate chunks
 * collapsed.
 *
 * Fusion (DEFAULT_FUSION): each list's scores min-max normalised over its depth (50), then 0.55 * BM25 +
 * 0.45 * dense. Reciprocal rank fusion (Cormack et al. 2009; `{method: "rrf"}`) uses ranks only, so a
 * retriever's confident top hit counts no more than a weak one at the same rank; on the project's labelled
 * pydoc set (sdk/test/rag-recall.test.ts) RRF with k = 60 let the weaker dense list push BM25's answers out
 * of the top 5 (recall@5 with all-MiniLM-L6-v2: RRF 0.664 at dense weight 0.5, below BM25's 0.686). The
 * weight 0.55 was chosen on one half of the questions (split by topic) and checked on the other
 * (bench/rag/fusion-split.mjs): held-out recall@5 0.877 vs BM25 0.836 (test embedder), 0.726 vs 0.712
 * (all-MiniLM-L6-v2); all questions 0.836 / 0.729 (BM25 0.779 / 0.686, dense 0.664 / 0.521).
 */

import { tokenize } from "./bm25.js";
import type { Catalog } from "./catalog.js";
import type { ChunkRecord, DocumentRecord } from "./store.js";
import { candidateCount, rerank, type VectorHit } from "./vectors.js";

export const RRF_K = 60;
/** RRF weights of the [BM25, dense] lists used by `{method: "rrf"}` without weights (the default before DEFAULT_FUSION). */
export const HYBRID_WEIGHTS: readonly [number, number] = [1, 0.5];

/**
 * Fusion of the BM25 and dense lists in hybrid mode.
 * - `rrf`: reciprocal rank fusion, Σ w / (k + rank) (default k RRF_K, weights HYBRID_WEIGHTS). Ranks only.
 * - `convex`: each list's scores min-max normalised over its depth (best 1, worst 0; a chunk missing from a
 *   list gets 0), then `bm25Weight * bm25 + (1 - bm25Weight) * dense`. Unlike RRF it keeps how far ahead a
 *   retriever's top hit is: a confident BM25 hit (high score, steep drop) is not overtaken by a dense hit
 *   with a flat score profile, and the reverse.
 */
export type Fusion = { method: "rrf"; k?: number; weights?: readonly [number, number] } | { method: "convex"; bm25Weight: number };

/** The default fusion (see the module comment for how it was chosen). */
export const DEFAULT_FUSION: Fusion = { method: "convex", bm25Weight: 0.55 };

/** Convex combination of min-max normalised scores (see Fusion). Ties by first appearance. */
export function convexFusion(
  lists: ReadonlyArray<ReadonlyArray<{ id: string; score: number }>>,
  weights: readonly number[],
): Array<{ id: string; score: number }> {
  const scores = new Map<string, number>();
  const order = new Map<string, number>();
  for (const [l, list] of lists.entries()) {
    const w = weights[l] ?? 1;
    let lo = Infinity;
    let hi = -Infinity;
    for (const h of list) {
      lo = Math.min(lo, h.score);
      hi = Math.max(hi, h.score);
    }
    for (const h of list) {
      const norm = hi > lo ? (h.score - lo) / (hi - lo) : 1;
      scores.set(h.id, (scores.get(h.id) ?? 0) + w * norm);
      if (!order.has(h.id)) order.set(h.id, order.size);
    }
  }
  return [...scores].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score || (order.get(a.id) as number) - (order.get(b.id) as number));
}

export interface SearchFilter {
  /** Only these documents. */
  docId?: string | readonly string[];
  /** Only these types (e.g. "application/pdf"). */
  mime?: string | readonly string[];
  /** Only documents added at or after this time (Date or ms since the epoch). */
  from?: Date | number;
  /** Only documents added at or before this time. */
  to?: Date | number;
}

export interface SearchOptions {
  /** Number of hits (default 8). */
  k?: number;
  filter?: SearchFilter;
  /** "hybrid" (default), or one retriever alone. */
  mode?: "hybrid" | "bm25" | "vector";
  /**
   * Collapse near-duplicate chunks (word-trigram Jaccard similarity at or above the threshold) into the
   * best-ranked one. Default true with threshold 0.8; false turns it off.
   */
  collapseDuplicates?: boolean | { threshold: number };
  /** How hybrid mode fuses the BM25 and dense lists (default DEFAULT_FUSION). */
  fusion?: Fusion;
  /** @deprecated RRF weights of the [BM25, dense] lists: the same as `fusion: {method: "rrf", weights}`. */
  hybridWeights?: readonly [number, number];
  signal?: AbortSignal;
  /** An object to fill with where this search spent its time (for profiling). */
  timings?: SearchTimings;
}

export interface DuplicateRef {
  chunkId: string;
  docId: string;
  page: number | null;
}

export interface SearchHit {
  /** Fused score in hybrid mode (see Fusion); BM25 score or cosine with a single retriever. Higher is better. */
  score: number;
  chunk: ChunkRecord;
  document: DocumentRecord;
  /** First page of the chunk (PDF), else null. */
  page: number | null;
  /** Last page of the chunk (PDF), else null. */
  pageEnd: number | null;
  /** Char span of the chunk in the document's extracted text. */
  start: number;
  end: number;
  /** 1-based rank in each retriever's list, null when the chunk was not in it. */
  ranks: { bm25: number | null; vector: number | null };
  /** Each retriever's own score (BM25; cosine with the query), null when the chunk was not in its list. */
  scores: { bm25: number | null; vector: number | null };
  /** Chunks collapsed into this one as near-duplicates. */
  duplicates: DuplicateRef[];
}

/**
 * Reciprocal rank fusion of ranked id lists, each list's terms scaled by its weight (default 1).
 * Ties are broken by first appearance.
 */
export function reciprocalRankFusion(
  lists: ReadonlyArray<readonly string[]>,
  k = RRF_K,
  weights: readonly number[] = [],
): Array<{ id: string; score: number }> {
  const scores = new Map<string, number>();
  const order = new Map<string, number>();
  for (const [l, list] of lists.entries()) {
    const w = weights[l] ?? 1;
    list.forEach((id, i) => {
      scores.set(id, (scores.get(id) ?? 0) + w / (k + i + 1));
      if (!order.has(id)) order.set(id, order.size);
    });
  }
  return [...scores].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score || (order.get(a.id) as number) - (order.get(b.id) as number));
}

function asTime(t: Date | number): number {
  return t instanceof Date ? t.getTime() : t;
}

function asSet(v: string | readonly string[] | undefined): Set<string> | null {
  if (v === undefined) return null;
  return new Set(typeof v === "string" ? [v] : v);
}

/** Predicate over documents for a filter (undefined filter accepts everything). */
export function documentFilter(filter: SearchFilter | undefined): (doc: DocumentRecord) => boolean {
  if (filter === undefined) return () => true;
  const ids = asSet(filter.docId);
  const mimes = asSet(filter.mime);
  const from = filter.from === undefined ? -Infinity : asTime(filter.from);
  const to = filter.to === undefined ? Infinity : asTime(filter.to);
  return (d) => (ids === null || ids.has(d.id)) && (mimes === null || mimes.has(d.mime)) && d.createdAt >= from && d.createdAt <= to;
}

/** Word trigrams (lowercase letters/digits), for near-duplicate detection. */
export function shingles(text: string): Set<string> {
  const words =
    text
      .normalize("NFKC")
      .toLowerCase()
      .match(/[\p{L}\p{M}\p{N}]+/gu) ?? [];
  const out = new Set<string>();
  if (words.length < 3) {
    if (words.length > 0) out.add(words.join(" "));
    return out;
  }
  for (let i = 0; i + 2 < words.length; i++) out.add(`${words[i]} ${words[i + 1]} ${words[i + 2]}`);
  return out;
}

export function jaccard(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  if (a.size === 0 && b.size === 0) return 1;
  let inter = 0;
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  for (const x of small) if (large.has(x)) inter++;
  return inter / (a.size + b.size - inter);
}

/** Keep hits in order, folding each near-duplicate into the first (best-ranked) hit it resembles. */
export function collapseNearDuplicates(hits: SearchHit[], threshold: number): SearchHit[] {
  const kept: Array<{ hit: SearchHit; sh: Set<string> }> = [];
  for (const hit of hits) {
    const sh = shingles(hit.chunk.text);
    const twin = kept.find((k) => jaccard(k.sh, sh) >= threshold);
    if (twin !== undefined) {
      twin.hit.duplicates.push({ chunkId: hit.chunk.id, docId: hit.chunk.docId, page: hit.page }, ...hit.duplicates);
    } else {
      kept.push({ hit, sh });
    }
  }
  return kept.map((k) => k.hit);
}

/** Where one search spent its time (ms), filled in when `SearchOptions.timings` is given. */
export interface SearchTimings {
  bm25Ms: number;
  embedMs: number;
  prescanMs: number;
  rerankMs: number;
  fetchMs: number;
}

/** What hybrid search needs from the open index. */
export interface SearchContext {
  catalog: Catalog;
  embedQuery(query: string, signal?: AbortSignal): Promise<Float32Array>;
  readF32(chunkIds: string[]): Promise<Map<string, Float32Array>>;
  readChunks(ids: readonly string[]): Promise<Map<string, ChunkRecord>>;
}

export async function hybridSearch(ctx: SearchContext, query: string, opts: SearchOptions = {}): Promise<SearchHit[]> {
  const k = opts.k ?? 8;
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
  const mode = opts.mode ?? "hybrid";
  const signal = opts.signal;
  signal?.throwIfAborted();
  const catalog = ctx.catalog;
  const acceptDoc = documentFilter(opts.filter);
  const allowed = new Set<string>();
  for (const d of catalog.docs.values()) if (acceptDoc(d)) allowed.add(d.id);
  if (allowed.size === 0 || query.trim() === "") return [];
  // No filter: no mask (every live slot); otherwise a slot mask of the allowed documents' chunks.
  const mask = opts.filter === undefined ? null : catalog.mask(allowed);
  const depth = Math.max(50, 5 * k);
  const timings = opts.timings;
  let t = performance.now();
  const lap = (key: keyof SearchTimings) => {
    const now = performance.now();
    if (timings !== undefined) timings[key] = now - t;
    t = now;
  };

  let bm25: Array<{ chunkId: string; score: number }> = [];
  if (mode !== "vector") {
    const terms = tokenize(query);
    if (terms.length > 0) bm25 = catalog.bm25(terms, depth, mask).map((h) => ({ chunkId: catalog.chunkId(h.slot), score: h.score }));
  }
  lap("bm25Ms");
  let vector: VectorHit[] = [];
  if (mode !== "bm25") {
    const q = await ctx.embedQuery(query, signal);
    signal?.throwIfAborted();
    lap("embedMs");
    const candidates = catalog.prescan(q, candidateCount(depth), mask).map((h) => ({ chunkId: catalog.chunkId(h.slot), score: h.score }));
    lap("prescanMs");
    vector = (await rerank(q, candidates, ctx.readF32)).slice(0, depth);
    lap("rerankMs");
  }
  signal?.throwIfAborted();

  const bm25Rank = new Map(bm25.map((h, i) => [h.chunkId, i + 1]));
  const vectorRank = new Map(vector.map((h, i) => [h.chunkId, i + 1]));
  const bm25Score = new Map(bm25.map((h) => [h.chunkId, h.score]));
  const vectorScore = new Map(vector.map((h) => [h.chunkId, h.score]));
  let ranked: Array<{ id: string; score: number }>;
  if (mode === "bm25") ranked = bm25.map((h) => ({ id: h.chunkId, score: h.score }));
  else if (mode === "vector") ranked = vector.map((h) => ({ id: h.chunkId, score: h.score }));
  else {
    const fusion: Fusion = opts.fusion ?? (opts.hybridWeights !== undefined ? { method: "rrf", weights: opts.hybridWeights } : DEFAULT_FUSION);
    if (fusion.method === "rrf") {
      ranked = reciprocalRankFusion([bm25.map((h) => h.chunkId), vector.map((h) => h.chunkId)], fusion.k ?? RRF_K, fusion.weights ?? HYBRID_WEIGHTS);
    } else {
      const w = fusion.bm25Weight;
      if (!(w >= 0 && w <= 1)) throw new RangeError(`fusion.bm25Weight must be in [0, 1], got ${w}`);
      ranked = convexFusion([bm25.map((h) => ({ id: h.chunkId, score: h.score })), vector.map((h) => ({ id: h.chunkId, score: h.score }))], [w, 1 - w]);
    }
  }

  const collapse = opts.collapseDuplicates ?? true;
  const threshold = collapse === false ? null : collapse === true ? 0.8 : collapse.threshold;
  // Read chunk records in rounds: k plus a margin for collapsed duplicates first, more only if collapsing
  // left fewer than k (each read is an IndexedDB request).
  let hits: SearchHit[] = [];
  let read = 0;
  while (read < ranked.length) {
    const take = ranked.slice(read, read + (threshold === null ? k : read === 0 ? k + Math.ceil(k / 2) : 2 * k));
    read += take.length;
    const chunks = await ctx.readChunks(take.map((r) => r.id));
    for (const r of take) {
      const chunk = chunks.get(r.id);
      const document = chunk === undefined ? undefined : catalog.docs.get(chunk.docId);
      if (chunk === undefined || document === undefined) continue; // removed meanwhile
      hits.push({
        score: r.score,
        chunk,
        document,
        page: chunk.page,
        pageEnd: chunk.pageEnd,
        start: chunk.start,
        end: chunk.end,
        ranks: { bm25: bm25Rank.get(r.id) ?? null, vector: vectorRank.get(r.id) ?? null },
        scores: { bm25: bm25Score.get(r.id) ?? null, vector: vectorScore.get(r.id) ?? null },
        duplicates: [],
      });
    }
    if (threshold !== null) hits = collapseNearDuplicates(hits, threshold);
    if (hits.length >= k || read >= 3 * k + k) break;
  }
  const out = hits.slice(0, k);
  lap("fetchMs");
  return out;
}
