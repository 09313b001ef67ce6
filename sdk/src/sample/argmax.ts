/** Token selection on host logits. (Greedy only for now; temperature / top-p sampling comes later.) */
import { NonFiniteLogitsError } from "../errors/text.js";
export { NonFiniteLogitsError } from "../errors/text.js";

/**
 * Index of the largest logit; the first one on ties (like numpy.argmax). +Infinity wins like any
 * value. Throws {@link NonFiniteLogitsError} on NaN instead of returning an arbitrary token.
 */
export function argmax(logits: ArrayLike<number>): number {
  if (logits.length === 0) throw new RangeError("argmax of empty logits");
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i] as number;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    } else if (v !== v) {
      throw new NonFiniteLogitsError(`logits[${i}] is NaN`);
    }
  }
  return best; // all -Infinity: index 0, as numpy
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
