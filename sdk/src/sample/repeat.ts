/**
 * A guard against answers that loop: small models (SmolLM2-135M measured: one sentence ~30 times, to the
 * token limit) fall into repeating a sentence or line forever. The guard ends generation at the first
 * sentence or line that repeats an earlier one of the same answer, and never emits that repetition.
 *
 * How: completed sentences (ended by . ! ? followed by whitespace, or by a newline) of at least `minChars`
 * characters are remembered. While the sentence being generated is still a prefix of a remembered one, its
 * text is held back (as a stop string's start is: stop.ts); once it differs it is released, and if it
 * completes as an exact copy, generation stops there. Ordinary text streams without delay, because it
 * rarely starts like an earlier sentence of the same answer. The whitespace after a sentence belongs to the
 * next one, so a stopped answer ends with the last sentence's punctuation.
 */

export interface RepeatPush {
  /** Text that is safe to emit now. */
  text: string;
  /** A repeated sentence was found: generation is over; `text` is the last of it (the repeat excluded). */
  stopped: boolean;
}

export interface RepeatGuardOptions {
  /** Sentences shorter than this (trimmed) are never treated as loops ("Yes.", list markers). Default 12. */
  minChars?: number;
}

// A sentence ends at . ! ? followed by whitespace, or at a newline.
const BOUNDARY = /[.!?](?=\s)|\n/u;

export class RepeatGuard {
  readonly #minChars: number;
  readonly #seen = new Set<string>();
  /** The current sentence's text so far. */
  #sentence = "";
  /** The whole current sentence is held back (it may still turn into an earlier one). */
  #holding = true;
  #stopped = false;

  constructor(opts: RepeatGuardOptions = {}) {
    this.#minChars = opts.minChars ?? 12;
    if (!Number.isSafeInteger(this.#minChars) || this.#minChars < 1) throw new RangeError("minChars must be a positive integer");
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Feed newly generated text. After a stop, further text is ignored. */
  push(text: string): RepeatPush {
    if (this.#stopped) return { text: "", stopped: true };
    let out = "";
    let rest = text;
    for (;;) {
      const joined = this.#sentence + rest;
      // #sentence never holds a boundary, except a final [.!?] still waiting for its whitespace: the
      // search over the joined text finds that one when the whitespace arrives.
      const m = BOUNDARY.exec(joined);
      if (m === null) {
        this.#sentence = joined;
        if (!this.#holding) return { text: out + rest, stopped: false };
        const s = joined.trimStart();
        if (/[.!?]$/u.test(s) && s.length >= this.#minChars && this.#seen.has(s)) {
          // An exact copy of an earlier sentence, up to its final punctuation: no need to wait for the space.
          this.#stopped = true;
          this.#sentence = "";
          return { text: out, stopped: true };
        }
        if (s.length > 0 && ![...this.#seen].some((k) => k.startsWith(s))) {
          this.#holding = false;
          out += joined;
        }
        return { text: out, stopped: false };
      }
      const end = m.index + m[0].length;
      const complete = joined.slice(0, end);
      const fresh = rest.slice(0, end - this.#sentence.length);
      rest = rest.slice(end - this.#sentence.length);
      const key = complete.trim();
      if (this.#holding && key.length >= this.#minChars && this.#seen.has(key)) {
        // Held back throughout (it matched an earlier sentence all along) and now equal to it: a loop.
        this.#stopped = true;
        this.#sentence = "";
        return { text: out, stopped: true };
      }
      if (key.length >= this.#minChars) this.#seen.add(key);
      out += this.#holding ? complete : fresh;
      this.#sentence = "";
      this.#holding = true;
    }
  }

  /** Generation ended another way: the held-back text was not a repeat after all. */
  flush(): string {
    const out = this.#stopped || !this.#holding ? "" : this.#sentence;
    this.#sentence = "";
    this.#holding = true;
    return out;
  }
}
