/**
 * xgrammar's token bitmask applied to one position's logits: bit (id % 32) of word (id / 32) set means the
 * grammar allows token `id`. Disallowed tokens get -Infinity, so every sampling mode (greedy, temperature,
 * top-k/p, penalties, logit_bias) picks among the allowed ones only. Ids past the mask (logits padded
 * beyond the tokenizer's vocabulary) are never allowed.
 */

/** Mask `logits` in place; returns how many tokens stay allowed. */
export function applyTokenBitmask(logits: Float32Array, bitmask: Int32Array): number {
  const n = logits.length;
  const words = Math.min(bitmask.length, Math.ceil(n / 32));
  let allowed = 0;
  for (let w = 0; w < words; w++) {
    const bits = bitmask[w] as number;
    const base = w * 32;
    const end = Math.min(base + 32, n);
    if (bits === -1) {
      allowed += end - base;
      continue;
    }
    for (let id = base; id < end; id++) {
      if ((bits >>> (id - base)) & 1) allowed++;
      else logits[id] = Number.NEGATIVE_INFINITY;
    }
  }
  logits.fill(Number.NEGATIVE_INFINITY, words * 32);
  return allowed;
}
