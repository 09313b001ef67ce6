/**
 * Logit processors that run before temperature and truncation, in place on a working copy, in vLLM's
 * order: logit_bias, then repetition penalty, then presence/frequency penalties (semantics: params.ts).
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
  const rp = p.repetition_penalty;
  if (rp !== 1) {
    for (const id of history.seen) {
      if (id < 0 || id >= logits.length) continue; // ids past the logits (a mismatched tokenizer) cannot be penalised
      const v = logits[id] as number;
      logits[id] = v > 0 ? v / rp : v * rp;
    }
  }
  const { presence_penalty: pp, frequency_penalty: fp } = p;
  if (pp !== 0 || fp !== 0) {
    for (const [id, count] of history.outputCounts) {
      if (id < 0 || id >= logits.length) continue;
      logits[id] = (logits[id] as number) - fp * count - pp;
    }
  }
}
