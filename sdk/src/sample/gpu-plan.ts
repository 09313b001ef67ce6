/**
 * What the GPU sampler (runtime/gpu-sampler.ts) needs to pick the token the host Sampler would pick from
 * the same logits: the logit edits of logits.ts as a list of float32 operations in the host's order, the
 * mode, the truncation settings and the uniform number the host's RNG drew.
 *
 * Which requests stay on the host (planOf returns null): top_k between GPU_CANDIDATES and the vocabulary
 * size (more candidates than the GPU sorts in workgroup memory) and a logit_bias id outside the
 * vocabulary (the host reports that error).
 */
import type { TokenHistory } from "./history.js";
import { penaltyOf, repetitionFactors } from "./logits.js";
import type { ResolvedSamplingParams } from "./params.js";

/** Candidates the GPU sorts for top-k / top-p (workgroup memory: 8 KiB of keys and ids). */
export const GPU_CANDIDATES = 1024;

/** greedy: the argmax; full: draw over the whole vocabulary in id order; sorted: top-k and/or top-p. */
export type GpuSamplingMode = "greedy" | "full" | "sorted";

export const OP_ADD = 0;
export const OP_REPETITION = 1;
export const OP_SUBTRACT = 2;

export interface GpuSamplingPlan {
  mode: GpuSamplingMode;
  vocab: number;
  /** sorted: how many of the largest logits are candidates (top_k, or GPU_CANDIDATES for top-p alone). */
  select: number;
  /** sorted: top_k truncates (its probabilities are not cut at e^-40, and the total is theirs alone). */
  topK: boolean;
  invTemperature: number;
  topP: number;
  /** The host RNG's draw (unused, and given back, when the GPU picks without drawing). */
  u: number;
  logprob: boolean;
  /** How many raw-logit alternatives to return with their logprobs (top_logprobs, at most the vocabulary). */
  topLogprobs: number;
  /** 4 words per edit: id, kind (OP_*), two float32 operands (as bits). */
  ops: Uint32Array;
  opCount: number;
}

/**
 * The plan for one position, or null when it must be sampled on the host. `draw` is called (once) only
 * when the mode needs a uniform number.
 */
export function planOf(p: ResolvedSamplingParams, history: TokenHistory | undefined, vocab: number, draw: () => number): GpuSamplingPlan | null {
  const topK = p.top_k > 0 && p.top_k < vocab;
  if (topK && p.top_k > GPU_CANDIDATES && p.temperature !== 0) return null;
  const ops = opsOf(p, history, vocab);
  if (ops === null) return null;
  const greedy = p.temperature === 0 || p.top_k === 1;
  const mode: GpuSamplingMode = greedy ? "greedy" : topK || p.top_p < 1 ? "sorted" : "full";
  return {
    mode,
    vocab,
    select: topK ? p.top_k : Math.min(GPU_CANDIDATES, vocab),
    topK,
    invTemperature: greedy ? 0 : 1 / p.temperature,
    topP: p.top_p,
    u: greedy ? 0 : draw(),
    logprob: p.logprobs,
    topLogprobs: Math.min(p.top_logprobs, vocab),
    ops: ops.words,
    opCount: ops.count,
  };
}

/** processLogits (logits.ts) as a list of float32 operations, in its order; null for an out-of-range logit_bias id. */
function opsOf(p: ResolvedSamplingParams, history: TokenHistory | undefined, vocab: number): { words: Uint32Array; count: number } | null {
  const repetition = history !== undefined && p.repetition_penalty !== 1;
  const penalties = history !== undefined && (p.presence_penalty !== 0 || p.frequency_penalty !== 0);
  const max = p.logitBiasIds.length + (repetition ? history.seen.size : 0) + (penalties ? history.outputCounts.size : 0);
  const words = new Uint32Array(Math.max(1, max) * 4);
  const floats = new Float32Array(words.buffer);
  let n = 0;
  const push = (id: number, kind: number, a: number, b: number): void => {
    words[n * 4] = id;
    words[n * 4 + 1] = kind;
    floats[n * 4 + 2] = a;
    floats[n * 4 + 3] = b;
    n++;
  };
  for (let i = 0; i < p.logitBiasIds.length; i++) {
    const id = p.logitBiasIds[i] as number;
    if (id >= vocab) return null;
    push(id, OP_ADD, p.logitBiasValues[i] as number, 0);
  }
  if (repetition) {
    const { divide, multiply } = repetitionFactors(p.repetition_penalty);
    for (const id of history.seen) if (id >= 0 && id < vocab) push(id, OP_REPETITION, divide, multiply);
  }
  if (penalties) {
    for (const [id, count] of history.outputCounts) {
      if (id >= 0 && id < vocab) push(id, OP_SUBTRACT, penaltyOf(p.frequency_penalty, p.presence_penalty, count), 0);
    }
  }
  return { words, count: n };
}
