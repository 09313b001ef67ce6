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

export interface ChunkWarning {
  kind: "sentence-split-on-words" | "word-split-on-characters";
  start: number;
  end: number;
  /** Tokens of the unit that had to be split. */
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
  const out: Span[] = [];
  const sep = /\n[^\S\n]*\n\s*/gu;
  let last = 0;
  for (const m of text.matchAll(sep)) {
    const s = trimSpan(text, last, m.index ?? 0);
    if (s !== null) out.push(s);
    last = (m.index ?? 0) + m[0].length;
  }
  const s = trimSpan(text, last, text.length);
  if (s !== null) out.push(s);
  return out;
}

let segmenter: Intl.Segmenter | null | undefined;

/** Sentence spans inside [start, end) of `text`. */
export function sentenceSpans(text: string, start: number, end: number): Span[] {
  const out: Span[] = [];
  const slice = text.slice(start, end);
  if (segmenter === undefined) {
    segmenter = typeof Intl !== "undefined" && typeof Intl.Segmenter === "function" ? new Intl.Segmenter(undefined, { granularity: "sentence" }) : null;
  }
  if (segmenter !== null) {
    for (const seg of segmenter.segment(slice)) {
      const s = trimSpan(text, start + seg.index, start + seg.index + seg.segment.length);
      if (s !== null) out.push(s);
    }
    return out;
  }
  const re = /[^.!?\u3002\uff01\uff1f\n]*(?:[.!?\u3002\uff01\uff1f]+["'\u201d\u2019)\]]*|\n|$)/gu;
  for (const m of slice.matchAll(re)) {
    if (m[0].length === 0) continue;
    const s = trimSpan(text, start + (m.index ?? 0), start + (m.index ?? 0) + m[0].length);
    if (s !== null) out.push(s);
  }
  return out;
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

/** Split one over-long sentence into pieces that fit, on words, else on characters. */
function splitOversized(
  text: string,
  unit: Span,
  tokens: number,
  para: number,
  count: (t: string) => number,
  max: number,
  warnings: ChunkWarning[],
): Unit[] {
  warnings.push({
    kind: "sentence-split-on-words",
    start: unit.start,
    end: unit.end,
    tokens,
    maxTokens: max,
    message: `a sentence of ${tokens} tokens (chars ${unit.start}-${unit.end}) is longer than the ${max}-token limit and was split on words`,
  });
  const words: Span[] = [];
  for (const m of text.slice(unit.start, unit.end).matchAll(/\S+/gu)) {
    const s = unit.start + (m.index ?? 0);
    words.push({ start: s, end: s + m[0].length });
  }
  const out: Unit[] = [];
  let i = 0;
  while (i < words.length) {
    const first = words[i] as Span;
    const firstTokens = count(text.slice(first.start, first.end));
    if (firstTokens > max) {
      out.push(...splitWord(text, first, firstTokens, para, count, max, warnings));
      i++;
      continue;
    }
    const fits = (a: number, b: number) => count(text.slice((words[a] as Span).start, (words[b - 1] as Span).end)) <= max;
    const j = largestFitting(i, words.length, fits);
    const piece = { start: first.start, end: (words[j - 1] as Span).end };
    out.push({ ...piece, tokens: count(text.slice(piece.start, piece.end)), para });
    i = j;
  }
  return out;
}

function splitWord(
  text: string,
  word: Span,
  tokens: number,
  para: number,
  count: (t: string) => number,
  max: number,
  warnings: ChunkWarning[],
): Unit[] {
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

/** Chunk `text`. Pure and deterministic for a given tokenizer. */
export function chunkText(text: string, opts: ChunkOptions): ChunkResult {
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
  paragraphSpans(text).forEach((para, p) => {
    for (const s of sentenceSpans(text, para.start, para.end)) {
      const tokens = count(text.slice(s.start, s.end));
      if (tokens <= max) units.push({ ...s, tokens, para: p });
      else units.push(...splitOversized(text, s, tokens, p, count, max, warnings));
    }
    paraEnd[p] = units.length;
  });
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
