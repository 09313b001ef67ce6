/**
 * Length bucketing for encoder packages (pure; no GPU): which `embed_b{B}_s{S}` calls embed a batch of
 * tokenized texts, and the padded int32 inputs of one call. The same algorithm as the Python driver
 * (`hearth.models.encoder_driver.plan_batches`), so the SDK and the native build run the same kernels on
 * the same inputs:
 *
 *   texts are sorted by token count, longest first (ties: input order); each call takes the longest
 *   remaining text's smallest fitting sequence bucket S, and its batch size is chosen for the texts that
 *   NEED S (longer than the next smaller bucket): the largest batch bucket of length S, or for a
 *   remainder the next size up when they fill at least half of it, else the next size down. Rows they
 *   leave free take the next (shorter) texts at no cost; rows past the texts are all padding
 *   (attention_mask 0) and their outputs are dropped. Counting only the needy texts keeps one long text
 *   from padding 31 short ones to its length: padded tokens are what software WebGPU pays for.
 */
import type { EncoderBucket } from "./config.js";
import { SequenceTooLongError } from "../errors/model.js";
export { SequenceTooLongError } from "../errors/model.js";

export interface PlannedCall {
  bucket: EncoderBucket;
  /** Input positions of the texts in this call, in row order (rows past `indices.length` are padding). */
  indices: number[];
}

/** The batch size for `remaining` texts among the sorted `sizes` of one sequence length. */
export function pickBatch(sizes: readonly number[], remaining: number): number {
  const largest = sizes[sizes.length - 1] as number;
  if (remaining >= largest) return largest;
  const up = sizes.find((s) => s >= remaining) as number; // exists: remaining < largest
  const down = sizes.filter((s) => s <= remaining);
  if (remaining * 2 >= up || down.length === 0) return up;
  return down[down.length - 1] as number;
}

/** Split texts with these token counts into bucket calls (see the module comment). */
export function planBatches(lengths: readonly number[], buckets: readonly EncoderBucket[]): PlannedCall[] {
  if (buckets.length === 0) throw new RangeError("no buckets");
  const seqs = [...new Set(buckets.map((k) => k.seq))].sort((a, b) => a - b);
  const maxSeq = seqs[seqs.length - 1] as number;
  const bySeq = new Map<number, EncoderBucket[]>();
  for (const k of buckets) {
    const list = bySeq.get(k.seq) ?? [];
    list.push(k);
    bySeq.set(k.seq, list);
  }
  for (const list of bySeq.values()) list.sort((a, b) => a.batch - b.batch);

  for (let i = 0; i < lengths.length; i++) {
    const n = lengths[i] as number;
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`lengths[${i}] must be a non-negative integer, got ${n}`);
  }
  const order = lengths.map((_, i) => i).sort((a, b) => (lengths[b] as number) - (lengths[a] as number) || a - b);
  const calls: PlannedCall[] = [];
  let pos = 0;
  while (pos < order.length) {
    const longest = lengths[order[pos] as number] as number;
    const seq = seqs.find((s) => s >= longest);
    if (seq === undefined) throw new SequenceTooLongError(longest, maxSeq);
    const sizes = (bySeq.get(seq) as EncoderBucket[]).map((k) => k.batch);
    const shorter = seqs.filter((s) => s < seq).pop() ?? 0;
    let needy = 0; // contiguous from pos: order is by length
    while (pos + needy < order.length && (lengths[order[pos + needy] as number] as number) > shorter) needy++;
    const batch = pickBatch(sizes, needy);
    const bucket = (bySeq.get(seq) as EncoderBucket[]).find((k) => k.batch === batch) as EncoderBucket;
    const indices = order.slice(pos, pos + batch);
    calls.push({ bucket, indices });
    pos += indices.length;
  }
  return calls;
}

/**
 * The int32 [B, S] input_ids and attention_mask of one call: row r holds `tokens[indices[r]]`, right-padded
 * with `padId` (mask 0); rows past the texts are all padding.
 */
export function buildInputs(tokens: readonly ArrayLike<number>[], call: PlannedCall, padId = 0): { inputIds: Int32Array; attentionMask: Int32Array } {
  const { batch, seq } = call.bucket;
  if (call.indices.length > batch) throw new RangeError(`${call.indices.length} texts do not fit ${call.bucket.fn}`);
  const inputIds = new Int32Array(batch * seq);
  if (padId !== 0) inputIds.fill(padId);
  const attentionMask = new Int32Array(batch * seq);
  call.indices.forEach((i, row) => {
    const t = tokens[i];
    if (t === undefined) throw new RangeError(`no tokens for text ${i}`);
    if (t.length > seq) throw new SequenceTooLongError(t.length, seq);
    const base = row * seq;
    for (let j = 0; j < t.length; j++) inputIds[base + j] = t[j] as number;
    attentionMask.fill(1, base, base + t.length);
  });
  return { inputIds, attentionMask };
}

/** The largest sequence length the buckets take. */
export function maxBucketSeq(buckets: readonly EncoderBucket[]): number {
  return buckets.reduce((m, k) => Math.max(m, k.seq), 0);
}

/** Runs one planned call on the device: [B * dim] float32 outputs for the padded inputs, row-major. */
export type BucketRunner = (call: PlannedCall, inputs: { inputIds: Int32Array; attentionMask: Int32Array }) => Promise<Float32Array>;

export interface PlannedResult {
  /** One Float32Array(dim) per sequence, in input order (copies: they do not alias the call outputs). */
  vectors: Float32Array[];
  /** Bucket function -> calls made. */
  calls: Record<string, number>;
  /** B x S summed over the calls (what the kernels processed, padding included). */
  paddedTokens: number;
}

/**
 * Plan `sequences` into bucket calls, run them one after the other with `run`, drop the padding rows and
 * put the vectors back in input order. `signal` is checked before every call (rejects with its reason).
 */
export async function runPlanned(
  sequences: readonly Int32Array[],
  buckets: readonly EncoderBucket[],
  dim: number,
  run: BucketRunner,
  signal?: AbortSignal,
): Promise<PlannedResult> {
  const plan = planBatches(
    sequences.map((t) => t.length),
    buckets,
  );
  const vectors = new Array<Float32Array>(sequences.length);
  const calls: Record<string, number> = {};
  let paddedTokens = 0;
  for (const call of plan) {
    signal?.throwIfAborted();
    const out = await run(call, buildInputs(sequences, call, 0));
    const { batch, seq, fn } = call.bucket;
    if (out.length !== batch * dim) throw new Error(`${fn} returned ${out.length} values, expected ${batch} x ${dim}`);
    call.indices.forEach((i, row) => {
      vectors[i] = out.slice(row * dim, (row + 1) * dim);
    });
    calls[fn] = (calls[fn] ?? 0) + 1;
    paddedTokens += batch * seq;
  }
  return { vectors, calls, paddedTokens };
}
