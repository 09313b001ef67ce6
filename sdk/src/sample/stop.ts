/**
 * Stop strings over streamed text. A stop string can span tokens ("<|e" + "nd|>"), so text that could
 * be the start of one is held back until the next chunk proves it is or is not; the stop string itself
 * and anything after it are never emitted (OpenAI semantics).
 */
export interface StopPush {
  /** Text that is safe to emit now. */
  text: string;
  /** A stop string was found: generation is over, and `text` is the last of it. */
  stopped: boolean;
  /** Which stop string, when stopped. */
  stop?: string;
}

export class StopStringMatcher {
  readonly #stops: readonly string[];
  #held = "";
  #stopped = false;

  constructor(stops: readonly string[]) {
    if (stops.some((s) => s.length === 0)) throw new RangeError("stop strings must be non-empty");
    this.#stops = [...stops];
  }

  /** Feed newly decoded text. After a stop, further text is ignored. */
  push(text: string): StopPush {
    if (this.#stopped) return { text: "", stopped: true };
    const buffer = this.#held + text;
    // The match that ends first wins (then the longer one): that is what token-by-token feeding would have
    // found, so the result does not depend on how the text was chunked.
    let at = -1;
    let end = Infinity;
    let which = "";
    for (const s of this.#stops) {
      // Only a match that ends in the new text is new; searching from just before it bounds the work.
      const i = buffer.indexOf(s, Math.max(0, this.#held.length - s.length + 1));
      if (i >= 0 && (i + s.length < end || (i + s.length === end && i < at))) {
        at = i;
        end = i + s.length;
        which = s;
      }
    }
    if (at >= 0) {
      this.#stopped = true;
      this.#held = "";
      return { text: buffer.slice(0, at), stopped: true, stop: which };
    }
    const keep = this.#partialSuffix(buffer);
    this.#held = buffer.slice(buffer.length - keep);
    return { text: buffer.slice(0, buffer.length - keep), stopped: false };
  }

  /** Generation ended another way (EOS, max_tokens): the held-back text was not a stop after all. */
  flush(): string {
    const out = this.#stopped ? "" : this.#held;
    this.#held = "";
    return out;
  }

  /** Length of the longest suffix of `buffer` that is a proper prefix of some stop string. */
  #partialSuffix(buffer: string): number {
    let best = 0;
    for (const s of this.#stops) {
      for (let len = Math.min(s.length - 1, buffer.length); len > best; len--) {
        if (buffer.endsWith(s.slice(0, len))) {
          best = len;
          break;
        }
      }
    }
    return best;
  }
}
