/** Greedy token selection on host logits: the one argmax (Sampler's temperature 0 and DecoderModel use it). */
import { NonFiniteLogitsError } from "../errors/text.js";
export { NonFiniteLogitsError } from "../errors/text.js";

/**
 * Index of the largest logit; the first one on ties (like numpy.argmax). +Infinity wins like any
 * value. Throws {@link NonFiniteLogitsError} on NaN instead of returning an arbitrary token.
 */
export function argmax(logits: ArrayLike<number>): number {
  if (logits.length === 0) throw new RangeError("argmax of empty logits");
  return scanMax(logits).index; // all -Infinity: index 0, as numpy
}

/**
 * The one argmax scan: index and value of the first largest logit (all -Infinity: index 0, value
 * -Infinity; the sampler refuses that case itself). NaN throws {@link NonFiniteLogitsError}.
 */
export function scanMax(logits: ArrayLike<number>): { index: number; value: number } {
  let index = 0;
  let value = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i] as number;
    if (v > value) {
      value = v;
      index = i;
    } else if (Number.isNaN(v)) {
      throw new NonFiniteLogitsError(`logits[${i}] is NaN`);
    }
  }
  return { index, value };
}

/** The `k` largest logits with their token ids, best first (for diagnostics: margins, near-ties). */
export function topK(logits: ArrayLike<number>, k: number): { token: number; logit: number }[] {
  const out: { token: number; logit: number }[] = [];
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i] as number;
    if (out.length < k || v > (out[out.length - 1] as { logit: number }).logit) {
      out.push({ token: i, logit: v });
      out.sort((a, b) => b.logit - a.logit || a.token - b.token);
      if (out.length > k) out.pop();
    }
  }
  return out;
}
