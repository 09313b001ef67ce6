/**
 * Calling the embedder: batching, progress, abort, output validation, and query embedding without
 * truncation.
 */

import { chunkText } from "./chunk.js";
import { EmbedderOutputError } from "./errors.js";
import type { Embedder } from "./types.js";
import { normalize } from "./vectors.js";

/** Embed `texts` in batches; returns L2-normalised vectors. `onBatch(done)` after every batch. */
export async function embedAll(
  embedder: Embedder,
  texts: readonly string[],
  opts: { batchSize: number; signal?: AbortSignal | undefined; onBatch?: (done: number) => void },
): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let i = 0; i < texts.length; i += opts.batchSize) {
    opts.signal?.throwIfAborted();
    const batch = texts.slice(i, i + opts.batchSize);
    const vecs = await embedder.embed(batch, opts.signal);
    opts.signal?.throwIfAborted();
    if (!Array.isArray(vecs) || vecs.length !== batch.length) {
      throw new EmbedderOutputError(`embedder "${embedder.modelId}" returned ${Array.isArray(vecs) ? vecs.length : "no"} vectors for ${batch.length} texts`);
    }
    for (const v of vecs) {
      if (!(v instanceof Float32Array) || v.length !== embedder.dim) {
        throw new EmbedderOutputError(
          `embedder "${embedder.modelId}" returned a vector of length ${v instanceof Float32Array ? v.length : "?"}, expected Float32Array(${embedder.dim})`,
        );
      }
      out.push(normalize(v));
    }
    opts.onBatch?.(out.length);
  }
  return out;
}

/**
 * One normalised vector for a query. A query longer than the embedder's limit is split by the chunker
 * (no overlap) and the normalised mean of its pieces is used, so nothing is cut off.
 */
export async function embedQuery(embedder: Embedder, query: string, signal?: AbortSignal): Promise<Float32Array> {
  const pieces =
    embedder.countTokens(query) <= embedder.maxTokens
      ? [query]
      : chunkText(query, { countTokens: (t) => embedder.countTokens(t), maxTokens: embedder.maxTokens, overlapTokens: 0 }).chunks.map((c) => c.text);
  const vecs = await embedAll(embedder, pieces, { batchSize: 16, signal });
  if (vecs.length === 1) return vecs[0] as Float32Array;
  const mean = new Float32Array(embedder.dim);
  for (const v of vecs) for (let i = 0; i < v.length; i++) mean[i] = (mean[i] as number) + (v[i] as number);
  return normalize(mean);
}
