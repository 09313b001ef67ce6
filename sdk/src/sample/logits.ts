/**
 * Logit processors that run before temperature and truncation, in place on a working copy, in vLLM's
 * order: logit_bias, then repetition penalty, then presence/frequency penalties (semantics: params.ts).
 *
 * Each change to a logit is ONE float32 operation (an add, a multiply or a subtract of a float32
 * constant), so the GPU sampler (runtime/gpu-sampler.ts, fed by gpu-plan.ts) computes bit-identical
 * processed logits: WGSL's +, - and * are correctly rounded, its division is not (2.5 ulp), hence the
 * repetition penalty multiplies by fround(1 / penalty) instead of dividing.
 */
import type { TokenHistory } from "./history.js";
import type { ResolvedSamplingParams } from "./params.js";
import { InvalidLogitsError } from "../errors/text.js";
export { InvalidLogitsError } from "../errors/text.js";

type Processing = Pick<ResolvedSamplingParams, "logitBiasIds" | "logitBiasValues" | "repetition_penalty" | "presence_penalty" | "frequency_penalty">;

/** True when {@link processLogits} would change nothing (so the caller may skip copying the logits). */
export function isIdentity(p: Processing, history: TokenHistory | undefined): boolean {
  const penalties = history !== undefined && (p.repetition_penalty !== 1 || p.presence_penalty !== 0 || p.frequency_penalty !== 0) && history.seen.size > 0;
  return p.logitBiasIds.length === 0 && !penalties;
}

export function processLogits(logits: Float32Array, p: Processing, history: TokenHistory | undefined): void {
  for (let i = 0; i < p.logitBiasIds.length; i++) {
    const id = p.logitBiasIds[i] as number;
    if (id >= logits.length) throw new InvalidLogitsError(`logit_bias names token ${id}, but the vocabulary has ${logits.length}`);
    logits[id] = (logits[id] as number) + (p.logitBiasValues[i] as number);
  }
  if (history === undefined) return;
  if (p.repetition_penalty !== 1) {
    const { divide, multiply } = repetitionFactors(p.repetition_penalty);
    for (const id of history.seen) {
      if (id < 0 || id >= logits.length) continue; // ids past the logits (a mismatched tokenizer) cannot be penalised
      const v = logits[id] as number;
      logits[id] = v > 0 ? v * divide : v * multiply;
    }
  }
  const { presence_penalty: pp, frequency_penalty: fp } = p;
  if (pp !== 0 || fp !== 0) {
    for (const [id, count] of history.outputCounts) {
      if (id < 0 || id >= logits.length) continue;
      logits[id] = (logits[id] as number) - penaltyOf(fp, pp, count);
    }
  }
}

/** The repetition penalty as float32 factors: positive logits times `divide`, negative ones times `multiply`. */
export function repetitionFactors(penalty: number): { divide: number; multiply: number } {
  return { divide: Math.fround(1 / penalty), multiply: Math.fround(penalty) };
}

/** What presence/frequency subtract from a logit seen `count` times in the output, as one float32. */
export function penaltyOf(frequency: number, presence: number, count: number): number {
  return Math.fround(frequency * count + presence);
}
