/**
 * The token history the penalties look at: which ids occurred in prompt + output (repetition penalty,
 * HF semantics) and how often each id occurred in the output alone (presence/frequency, OpenAI semantics).
 * Maps over the distinct ids seen, not vocab-sized arrays, so applying a penalty costs O(distinct tokens).
 */
export class TokenHistory {
  /** Distinct ids of prompt and output. */
  readonly seen = new Set<number>();
  /** Output id -> occurrences. */
  readonly outputCounts = new Map<number, number>();
  #outputLength = 0;

  constructor(prompt: ArrayLike<number> = []) {
    for (let i = 0; i < prompt.length; i++) this.seen.add(prompt[i] as number);
  }

  /** Record a generated token. */
  push(token: number): void {
    this.seen.add(token);
    this.outputCounts.set(token, (this.outputCounts.get(token) ?? 0) + 1);
    this.#outputLength++;
  }

  /** Number of generated tokens recorded. */
  get outputLength(): number {
    return this.#outputLength;
  }
}
