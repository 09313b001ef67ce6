/**
 * BM25 text analysis and scoring (pure functions; persistence lives in store.ts).
 *
 * Analysis: NFKC, lowercase, split on runs of Unicode letters/marks/digits (`\p{L}\p{M}\p{N}`), drop a tiny
 * English stopword list. Han, Hiragana and Katakana runs (written without spaces) become overlapping
 * character bigrams, as in Lucene's CJKBigramFilter. This is deliberately a regex, not Intl.Segmenter:
 * postings are persisted and exported, so the analysis must give the same terms in every browser, Worker
 * and Node version (ICU dictionaries differ between them). Change it only together with ANALYZER_VERSION.
 */

/** Stored in the index meta; a different value means the postings were built by another analyzer. */
export const ANALYZER_VERSION = 1;

/** Lucene's classic English stop set. */
export const STOPWORDS: ReadonlySet<string> = new Set([
  "a",
  "an",
  "and",
  "are",
  "as",
  "at",
  "be",
  "but",
  "by",
  "for",
  "if",
  "in",
  "into",
  "is",
  "it",
  "no",
  "not",
  "of",
  "on",
  "or",
  "such",
  "that",
  "the",
  "their",
  "then",
  "there",
  "these",
  "they",
  "this",
  "to",
  "was",
  "will",
  "with",
]);

const WORD = /[\p{L}\p{M}\p{N}]+/gu;
const CJK_RUN = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]+/gu;
const HAS_CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;

function pushCjk(run: string, out: string[]): void {
  const chars = Array.from(run);
  if (chars.length === 1) {
    out.push(chars[0] as string);
    return;
  }
  for (let i = 0; i + 1 < chars.length; i++) out.push(`${chars[i]}${chars[i + 1]}`);
}

function pushWord(word: string, out: string[]): void {
  if (word.length > 0 && !STOPWORDS.has(word)) out.push(word);
}

/** Terms of `text`, in order, with repeats. */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  const norm = text.normalize("NFKC").toLowerCase();
  for (const m of norm.matchAll(WORD)) {
    const word = m[0];
    if (!HAS_CJK.test(word)) {
      pushWord(word, out);
      continue;
    }
    let last = 0;
    for (const c of word.matchAll(CJK_RUN)) {
      const at = c.index ?? 0;
      if (at > last) pushWord(word.slice(last, at), out);
      pushCjk(c[0], out);
      last = at + c[0].length;
    }
    if (last < word.length) pushWord(word.slice(last), out);
  }
  return out;
}

/**
 * A 64-bit hash of a term, as two 32-bit halves written to `out[at]` (hi) and `out[at + 1]` (lo): FNV-1a and
 * a second FNV-style hash with another basis and a murmur finaliser. The in-memory inverted index is keyed by
 * it (typed arrays instead of string-keyed maps: building it on open was ~6M string map operations at 100k
 * chunks). Two different terms of one index collide with probability ~n^2 / 2^65 (1e-8 for a million terms).
 */
export function hashTerm(term: string, out: Uint32Array, at: number): void {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < term.length; i++) {
    const c = term.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 13;
  }
  b = Math.imul(b ^ (b >>> 16), 0x85ebca6b);
  b = Math.imul(b ^ (b >>> 13), 0xc2b2ae35);
  b ^= b >>> 16;
  out[at] = b >>> 0;
  out[at + 1] = a >>> 0;
}

/** Term frequencies and length (number of terms) of one chunk. */
export function termFrequencies(text: string): { tf: Map<string, number>; length: number } {
  const terms = tokenize(text);
  const tf = new Map<string, number>();
  for (const t of terms) tf.set(t, (tf.get(t) ?? 0) + 1);
  return { tf, length: terms.length };
}

export interface Bm25Params {
  k1: number;
  b: number;
}

export const DEFAULT_BM25: Bm25Params = { k1: 1.2, b: 0.75 };

/** One posting: the chunk and the term's frequency in it. */
export type Posting = readonly [chunkId: string, tf: number];

export interface Bm25Corpus {
  /** Number of chunks in the index. */
  chunkCount: number;
  /** Sum of chunk lengths (terms). */
  totalLength: number;
  /** Length of a chunk, in terms. */
  lengthOf(chunkId: string): number | undefined;
}

/** Robertson/Sparck Jones idf with the +1 that keeps it positive (Lucene's BM25Similarity). */
export function idf(df: number, n: number): number {
  return Math.log(1 + (n - df + 0.5) / (df + 0.5));
}

/**
 * BM25 scores for a query. `postings` maps each distinct query term to its postings list (absent or empty
 * when the term is unknown). `accept` filters chunks before scoring. Returns chunk ids by descending score
 * (ties by chunk id, so results are deterministic).
 */
export function scoreBm25(
  queryTerms: readonly string[],
  postings: ReadonlyMap<string, readonly Posting[]>,
  corpus: Bm25Corpus,
  accept: (chunkId: string) => boolean = () => true,
  params: Bm25Params = DEFAULT_BM25,
): Array<{ chunkId: string; score: number }> {
  const n = corpus.chunkCount;
  if (n === 0) return [];
  const avgdl = corpus.totalLength / n || 1;
  const scores = new Map<string, number>();
  for (const term of new Set(queryTerms)) {
    const list = postings.get(term);
    if (list === undefined || list.length === 0) continue;
    const w = idf(list.length, n);
    for (const [chunkId, tf] of list) {
      if (!accept(chunkId)) continue;
      const len = corpus.lengthOf(chunkId) ?? avgdl;
      const s = (w * tf * (params.k1 + 1)) / (tf + params.k1 * (1 - params.b + (params.b * len) / avgdl));
      scores.set(chunkId, (scores.get(chunkId) ?? 0) + s);
    }
  }
  return [...scores]
    .map(([chunkId, score]) => ({ chunkId, score }))
    .sort((a, b) => b.score - a.score || (a.chunkId < b.chunkId ? -1 : a.chunkId > b.chunkId ? 1 : 0));
}
