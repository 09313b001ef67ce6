/**
 * Dense vectors: normalisation, int8 quantisation and two-stage cosine search.
 *
 * Every stored vector is L2-normalised, so cosine similarity is a dot product. Each vector is also kept as
 * int8 with one scale per vector (q = round(x / scale), scale = max|x| / 127). Search first scans the int8
 * codes in memory (1 byte per dimension, the f32 copies stay in IndexedDB), keeps the best `candidates`,
 * then re-ranks those with exact f32 cosine. The functions here are the reference implementation; the
 * index scans its codes with `Catalog.prescan` (codes.ts, WebAssembly SIMD), tested equal to `prescan`.
 */

import { EmbedderOutputError } from "./errors.js";

/** L2-normalised copy. Throws on a zero, NaN or infinite vector (an embedder bug). */
export function normalize(v: Float32Array): Float32Array {
  let ss = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i] as number;
    ss += x * x;
  }
  if (!Number.isFinite(ss) || ss === 0) {
    throw new EmbedderOutputError(`embedding is ${ss === 0 ? "all zeros" : "not finite"}; cannot normalise it`);
  }
  const inv = 1 / Math.sqrt(ss);
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = (v[i] as number) * inv;
  return out;
}

export interface QuantizedVector {
  i8: Int8Array;
  /** Multiply an int8 code by this to get the f32 value back (approximately). */
  scale: number;
}

/** Symmetric per-vector int8 quantisation. */
export function quantize(v: Float32Array): QuantizedVector {
  let max = 0;
  for (let i = 0; i < v.length; i++) max = Math.max(max, Math.abs(v[i] as number));
  const scale = max === 0 ? 1 : max / 127;
  const i8 = new Int8Array(v.length);
  for (let i = 0; i < v.length; i++) i8[i] = Math.max(-127, Math.min(127, Math.round((v[i] as number) / scale)));
  return { i8, scale };
}

export function dot(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new RangeError(`dimension mismatch: ${a.length} vs ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

/** Cosine similarity of two arbitrary (not necessarily normalised) vectors. */
export function cosine(a: Float32Array, b: Float32Array): number {
  const d = dot(a, b);
  const na = Math.sqrt(dot(a, a));
  const nb = Math.sqrt(dot(b, b));
  return na === 0 || nb === 0 ? 0 : d / (na * nb);
}

/** Approximate dot product of an f32 query with an int8-coded vector. */
export function dotI8(q: Float32Array, v: QuantizedVector): number {
  const codes = v.i8;
  if (q.length !== codes.length) throw new RangeError(`dimension mismatch: ${q.length} vs ${codes.length}`);
  let s = 0;
  for (let i = 0; i < q.length; i++) s += (q[i] as number) * (codes[i] as number);
  return s * v.scale;
}

export interface VectorEntry extends QuantizedVector {
  chunkId: string;
}

export interface VectorHit {
  chunkId: string;
  score: number;
}

function byScore(a: VectorHit, b: VectorHit): number {
  return b.score - a.score || (a.chunkId < b.chunkId ? -1 : a.chunkId > b.chunkId ? 1 : 0);
}

/** Best `n` entries by int8 dot product (the pre-scan). `query` must be normalised. */
export function prescan(query: Float32Array, entries: Iterable<VectorEntry>, n: number, accept: (chunkId: string) => boolean = () => true): VectorHit[] {
  // A bounded list kept sorted ascending by score: entries are few thousands to tens of thousands, n is small.
  const best: VectorHit[] = [];
  for (const e of entries) {
    if (!accept(e.chunkId)) continue;
    const score = dotI8(query, e);
    if (best.length === n && score <= (best[0] as VectorHit).score) continue;
    const hit = { chunkId: e.chunkId, score };
    let lo = 0;
    let hi = best.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((best[mid] as VectorHit).score < score) lo = mid + 1;
      else hi = mid;
    }
    best.splice(lo, 0, hit);
    if (best.length > n) best.shift();
  }
  return best.sort(byScore);
}

/** Exact cosine re-rank of pre-scan candidates. `loadF32` returns the stored (normalised) f32 vectors. */
export async function rerank(
  query: Float32Array,
  candidates: readonly VectorHit[],
  loadF32: (chunkIds: string[]) => Promise<Map<string, Float32Array>>,
): Promise<VectorHit[]> {
  const f32 = await loadF32(candidates.map((c) => c.chunkId));
  const out: VectorHit[] = [];
  for (const c of candidates) {
    const v = f32.get(c.chunkId);
    if (v !== undefined) out.push({ chunkId: c.chunkId, score: dot(query, v) });
  }
  return out.sort(byScore);
}

/**
 * How many int8 candidates to re-rank for a final top-k. The int8 score error is ~1e-3 (per-vector scale,
 * 384-d unit vectors), so a margin of a quarter of k (at least 16) is enough to get the exact top k; each
 * candidate costs one IndexedDB read of its f32 vector, which is what bounds the margin (at 100k chunks in
 * Chromium, 200 reads were ~20 ms of a query).
 */
export function candidateCount(k: number): number {
  return k + Math.max(16, Math.ceil(k / 4));
}
