/**
 * Token-aware chunking with the embedder's own tokenizer.
 *
 * - Units: the text is split into paragraphs (blank lines) and each paragraph into sentences
 *   (Intl.Segmenter, or a punctuation regex where it is missing). A chunk is always the exact span
 *   `text.slice(start, end)` from the first to the last unit it holds, so spans map back to the source.
 * - Packing prefers paragraph boundaries: a paragraph that fits goes whole into the current chunk or starts a
 *   new one; only a paragraph too big for one chunk is packed sentence by sentence. A small leading piece
 *   (a heading) is kept with the paragraph after it instead of becoming a chunk of its own.
 * - Overlap: each chunk after the first starts with the trailing sentences of the previous one, up to
 *   `overlapTokens`.
 * - Limit: every chunk satisfies `countTokens(chunk.text) <= maxTokens`, checked with the real tokenizer.
 *   Nothing is ever truncated: a sentence longer than the limit is split on words (and a word longer than
 *   the limit on characters), and each such split is reported in `warnings`.
 * - Interruptible: the work is a generator that yields after every sentence, piece and chunk, so
 *   {@link chunkTextAsync} can give the event loop a turn every few milliseconds and honour an AbortSignal
 *   promptly (a 20 MB single-line text takes tens of seconds to chunk on a slow CPU). No single step
 *   tokenizes more than a bounded span: a sentence longer than {@link HUGE_SENTENCE_FACTOR} × maxTokens
 *   characters is known to be over the limit from its first such characters, and is never counted whole.
 */

export interface ChunkOptions {
  /** The embedder's tokenizer (special tokens included). */
  countTokens: (text: string) => number;
  /** Hard limit per chunk, in the same tokens. */
  maxTokens: number;
  /** Tokens of the previous chunk repeated at the start of the next (default: 12% of maxTokens; 0 = none). */
  overlapTokens?: number;
}

export interface TextChunk {
  ordinal: number;
  text: string;
  /** Char span in the extracted text: text === source.slice(start, end). */
  start: number;
  end: number;
  tokenCount: number;
}

export interface ChunkAsyncOptions extends ChunkOptions {
  /** Stops chunking (rejecting with the signal's reason) at the next step once aborted. */
  signal?: AbortSignal | undefined;
  /** Longest run of work between two turns of the event loop, in ms (default 10). */
  sliceMs?: number | undefined;
}

export interface ChunkWarning {
  kind: "sentence-split-on-words" | "word-split-on-characters";
  start: number;
  end: number;
  /**
   * Tokens of the unit that had to be split (for a sentence over HUGE_SENTENCE_FACTOR × maxTokens
   * characters, which is never tokenized whole: the sum over its pieces, special tokens counted once).
   */
  tokens: number;
  maxTokens: number;
  message: string;
}

export interface ChunkResult {
  chunks: TextChunk[];
  warnings: ChunkWarning[];
}

interface Unit {
  start: number;
  end: number;
  tokens: number;
  para: number;
}

interface Span {
  start: number;
  end: number;
}

/** Trim a [start, end) span of `text` to its non-whitespace content (empty → null). */
function trimSpan(text: string, start: number, end: number): Span | null {
  while (start < end && /\s/u.test(text[start] as string)) start++;
  while (end > start && /\s/u.test(text[end - 1] as string)) end--;
  return start < end ? { start, end } : null;
}

/** Paragraph spans: separated by lines that are empty or whitespace only. */
export function paragraphSpans(text: string): Span[] {
  return [...paragraphs(text)];
}

function* paragraphs(text: string): Generator<Span, void, void> {
  const sep = /\n[^\S\n]*\n\s*/gu;
  let last = 0;
  for (const m of text.matchAll(sep)) {
    const s = trimSpan(text, last, m.index ?? 0);
    if (s !== null) yield s;
    last = (m.index ?? 0) + m[0].length;
  }
  const s = trimSpan(text, last, text.length);
  if (s !== null) yield s;
}

let segmenter: Intl.Segmenter | null | undefined;

/** Sentence spans inside [start, end) of `text`. */
export function sentenceSpans(text: string, start: number, end: number): Span[] {
  return [...sentences(text, start, end)];
}

/** Sentence spans, lazily: the segmenter finds each boundary only when asked. */
function* sentences(text: string, start: number, end: number): Generator<Span, void, void> {
  const slice = text.slice(start, end);
  if (segmenter === undefined) {
    segmenter = typeof Intl !== "undefined" && typeof Intl.Segmenter === "function" ? new Intl.Segmenter(undefined, { granularity: "sentence" }) : null;
  }
  if (segmenter !== null) {
    for (const seg of segmenter.segment(slice)) {
      const s = trimSpan(text, start + seg.index, start + seg.index + seg.segment.length);
      if (s !== null) yield s;
    }
    return;
  }
  const re = /[^.!?\u3002\uff01\uff1f\n]*(?:[.!?\u3002\uff01\uff1f]+["'\u201d\u2019)\]]*|\n|$)/gu;
  for (const m of slice.matchAll(re)) {
    if (m[0].length === 0) continue;
    const s = trimSpan(text, start + (m.index ?? 0), start + (m.index ?? 0) + m[0].length);
    if (s !== null) yield s;
  }
}

/**
 * A sentence of more than this many characters per token of the limit is tested on its first
 * `HUGE_SENTENCE_FACTOR * maxTokens` characters instead of being tokenized whole.
 */
export const HUGE_SENTENCE_FACTOR = 32;

/**
 * Words of [start, end) read on demand, keeping only a window in memory (a 20 MB sentence has millions).
 * Indices are global; `at(i)` is valid for i >= the last index passed to `release`.
 */
class Words {
  readonly #re = /\S+/gu;
  readonly #starts: number[] = [];
  readonly #ends: number[] = [];
  #base = 0;
  #done = false;

  constructor(
    readonly text: string,
    readonly start: number,
    readonly end: number,
  ) {
    this.#re.lastIndex = start;
  }

  /** The number of words up to `want` (fewer when the span has fewer words). */
  fill(want: number): number {
    while (!this.#done && this.#base + this.#starts.length < want) {
      const m = this.#re.exec(this.text);
      if (m === null || m.index >= this.end) {
        this.#done = true;
        break;
      }
      this.#starts.push(m.index);
      this.#ends.push(Math.min(m.index + m[0].length, this.end));
      if (m.index + m[0].length >= this.end) this.#done = true;
    }
    return this.#base + this.#starts.length;
  }

  at(i: number): Span {
    return { start: this.#starts[i - this.#base] as number, end: this.#ends[i - this.#base] as number };
  }

  /** Words before `i` are no longer needed. */
  release(i: number): void {
    const drop = i - this.#base;
    if (drop < 4096) return;
    this.#starts.splice(0, drop);
    this.#ends.splice(0, drop);
    this.#base = i;
  }
}

/**
 * Largest `hi` in (lo, limit] such that fits(lo, hi), assuming fits is monotone (longer never fits when
 * shorter does not). fits(lo, lo + 1) must hold.
 */
function largestFitting(lo: number, limit: number, fits: (a: number, b: number) => boolean): number {
  let good = lo + 1;
  let bad = limit + 1;
  // Exponential probe first: pieces are usually far shorter than `limit`.
  let step = 1;
  while (good + step < bad) {
    const probe = good + step;
    if (fits(lo, probe)) {
      good = probe;
      step *= 2;
    } else {
      bad = probe;
      break;
    }
  }
  while (bad - good > 1) {
    const mid = (good + bad) >> 1;
    if (fits(lo, mid)) good = mid;
    else bad = mid;
  }
  return good;
}

/**
 * Split one over-long sentence into pieces that fit, on words, else on characters. `tokens` is the
 * sentence's count, or null when it was too long to count whole (then the pieces' sum is reported).
 */
function* splitOversized(
  text: string,
  unit: Span,
  tokens: number | null,
  para: number,
  count: (t: string) => number,
  max: number,
  warnings: ChunkWarning[],
): Generator<void, Unit[], void> {
  const warningAt = warnings.length;
  const words = new Words(text, unit.start, unit.end);
  // A piece that fits holds at most about `max` words (every word is at least one token); the window
  // leaves room for tokenizers that drop some words, and only bounds how much one probe tokenizes.
  const window = 4 * max + 8;
  const out: Unit[] = [];
  let i = 0;
  while (words.fill(i + 1) > i) {
    yield;
    words.release(i);
    const first = words.at(i);
    const firstTokens = count(text.slice(first.start, first.end));
    if (firstTokens > max) {
      for (const u of yield* splitWord(text, first, firstTokens, para, count, max, warnings)) out.push(u);
      i++;
      continue;
    }
    const limit = words.fill(i + window);
    const fits = (a: number, b: number) => count(text.slice(words.at(a).start, words.at(b - 1).end)) <= max;
    const j = largestFitting(i, limit, fits);
    const piece = { start: first.start, end: words.at(j - 1).end };
    out.push({ ...piece, tokens: count(text.slice(piece.start, piece.end)), para });
    i = j;
  }
  const base = count("");
  const total = tokens ?? out.reduce((n, u) => n + u.tokens - base, base);
  warnings.splice(warningAt, 0, {
    kind: "sentence-split-on-words",
    start: unit.start,
    end: unit.end,
    tokens: total,
    maxTokens: max,
    message: `a sentence of ${tokens === null ? "about " : ""}${total} tokens (chars ${unit.start}-${unit.end}) is longer than the ${max}-token limit and was split on words`,
  });
  return out;
}

function* splitWord(
  text: string,
  word: Span,
  tokens: number,
  para: number,
  count: (t: string) => number,
  max: number,
  warnings: ChunkWarning[],
): Generator<void, Unit[], void> {
  warnings.push({
    kind: "word-split-on-characters",
    start: word.start,
    end: word.end,
    tokens,
    maxTokens: max,
    message: `a single word of ${tokens} tokens (chars ${word.start}-${word.end}) is longer than the ${max}-token limit and was split on characters`,
  });
  // Code point boundaries, so a surrogate pair is never cut.
  const cuts: number[] = [];
  for (let p = word.start; p < word.end; ) {
    cuts.push(p);
    const cp = text.codePointAt(p) as number;
    p += cp > 0xffff ? 2 : 1;
  }
  cuts.push(word.end);
  const n = cuts.length - 1;
  const out: Unit[] = [];
  let i = 0;
  while (i < n) {
    yield;
    const fits = (a: number, b: number) => count(text.slice(cuts[a] as number, cuts[b] as number)) <= max;
    if (!fits(i, i + 1)) {
      throw new RangeError(`the embedder counts more than maxTokens=${max} tokens for the single character at ${cuts[i]}; maxTokens is too small`);
    }
    const j = largestFitting(i, n, fits);
    const s = cuts[i] as number;
    const e = cuts[j] as number;
    out.push({ start: s, end: e, tokens: count(text.slice(s, e)), para });
    i = j;
  }
  return out;
}

/** Chunk `text`. Pure and deterministic for a given tokenizer. Runs to the end without yielding. */
export function chunkText(text: string, opts: ChunkOptions): ChunkResult {
  const steps = chunkSteps(text, opts);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** A turn of the event loop (a macrotask), so that timers and messages (an abort) get to run. */
export function yieldToEventLoop(): Promise<void> {
  const g = globalThis as { setImmediate?: (cb: () => void) => unknown };
  if (typeof g.setImmediate === "function") {
    const setImmediate = g.setImmediate;
    return new Promise((resolve) => setImmediate(resolve));
  }
  if (typeof MessageChannel === "function") {
    // Unlike setTimeout(0), not clamped to 4 ms when nested.
    const channel = new MessageChannel();
    return new Promise((resolve) => {
      channel.port1.onmessage = () => {
        channel.port1.close();
        resolve();
      };
      channel.port2.postMessage(null);
    });
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * {@link chunkText}, the same result, in slices of at most about `sliceMs` with a turn of the event loop
 * between them; checks `signal` at every step and rejects with its reason once it is aborted.
 */
export async function chunkTextAsync(text: string, opts: ChunkAsyncOptions): Promise<ChunkResult> {
  const signal = opts.signal;
  const sliceMs = opts.sliceMs ?? 10;
  signal?.throwIfAborted();
  const steps = chunkSteps(text, opts);
  let sliceStart = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    signal?.throwIfAborted();
    if (performance.now() - sliceStart >= sliceMs) {
      await yieldToEventLoop();
      signal?.throwIfAborted();
      sliceStart = performance.now();
    }
  }
}

/** The chunker itself: yields after every bounded piece of work, returns the result. */
function* chunkSteps(text: string, opts: ChunkOptions): Generator<void, ChunkResult, void> {
  const count = opts.countTokens;
  const max = opts.maxTokens;
  const base = count("");
  if (!Number.isInteger(max) || max <= base) {
    throw new RangeError(`maxTokens (${max}) must be an integer above the tokenizer's empty-text count (${base})`);
  }
  const overlap = Math.max(0, Math.floor(opts.overlapTokens ?? Math.floor(max * 0.12)));
  const warnings: ChunkWarning[] = [];

  // 1. Units (sentences, pre-split so each fits on its own), grouped by paragraph.
  const units: Unit[] = [];
  const paraEnd: number[] = []; // paraEnd[p] = index after the last unit of paragraph p
  const huge = HUGE_SENTENCE_FACTOR * max;
  let p = 0;
  for (const para of paragraphs(text)) {
    for (const s of sentences(text, para.start, para.end)) {
      yield;
      if (s.end - s.start > huge && count(text.slice(s.start, s.start + huge)) > max) {
        for (const u of yield* splitOversized(text, s, null, p, count, max, warnings)) units.push(u);
        continue;
      }
      const tokens = count(text.slice(s.start, s.end));
      if (tokens <= max) units.push({ ...s, tokens, para: p });
      else for (const u of yield* splitOversized(text, s, tokens, p, count, max, warnings)) units.push(u);
    }
    paraEnd[p] = units.length;
    p++;
  }
  const n = units.length;
  if (n === 0) return { chunks: [], warnings };

  // 2. Estimated tokens of units [a, b): specials counted once. Verified with the real tokenizer at flush.
  const prefix = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) prefix[i + 1] = (prefix[i] as number) + (units[i] as Unit).tokens - base;
  const est = (a: number, b: number) => base + (prefix[b] as number) - (prefix[a] as number);
  const content = (a: number, b: number) => (prefix[b] as number) - (prefix[a] as number);

  const chunks: TextChunk[] = [];
  const span = (a: number, b: number) => ({ start: (units[a] as Unit).start, end: (units[b - 1] as Unit).end });

  // Emit units [a, b) (fresh units start at `fresh`). Returns the end actually emitted: units are
  // given back from the end while the real count is over the limit.
  const flush = (a: number, fresh: number, b: number): { a: number; b: number } => {
    for (;;) {
      const { start, end } = span(a, b);
      const chunkTextValue = text.slice(start, end);
      const tokenCount = count(chunkTextValue);
      if (tokenCount <= max) {
        chunks.push({ ordinal: chunks.length, text: chunkTextValue, start, end, tokenCount });
        return { a, b };
      }
      if (b - 1 > fresh) b--;
      else if (a < fresh) a++;
      else throw new Error(`internal: unit at ${start}-${end} does not fit after pre-splitting`);
    }
  };
  // Start of the overlap that the next chunk repeats from chunk [a, b): never the whole chunk.
  const overlapStart = (a: number, b: number): number => {
    if (overlap === 0) return b;
    let j = b;
    while (j - 1 > a && content(j - 1, b) <= overlap) j--;
    return j;
  };

  let a = 0;
  let fresh = 0; // units before `fresh` in the current chunk are overlap from the previous chunk
  let b = 0;
  for (;;) {
    yield;
    if (b === n) {
      if (b === fresh) break;
      const done = flush(a, fresh, b);
      if (done.b === n) break;
      b = done.b; // units were given back: continue from there
      a = overlapStart(done.a, done.b);
      fresh = b;
      continue;
    }
    const u = units[b] as Unit;
    const startsParagraph = b === 0 || (units[b - 1] as Unit).para !== u.para;
    if (startsParagraph) {
      const pe = paraEnd[u.para] as number;
      if (est(a, pe) <= max) {
        b = pe;
        continue;
      }
      if (b > fresh) {
        const fill = est(a, b);
        const fitsAlone = est(b, pe) <= max;
        if (fill >= (fitsAlone ? 0.25 : 0.5) * max) {
          const done = flush(a, fresh, b);
          b = done.b;
          a = overlapStart(done.a, done.b);
          fresh = b;
          continue;
        }
      }
    }
    if (est(a, b + 1) <= max) {
      b++;
      continue;
    }
    if (b === fresh) {
      // Only overlap in the chunk and the next unit does not fit with it: shorten the overlap.
      a++;
      continue;
    }
    const done = flush(a, fresh, b);
    b = done.b;
    a = overlapStart(done.a, done.b);
    fresh = b;
  }
  return { chunks, warnings };
}
