/**
 * Citations in a model's answer: `[n]`, `[n, m]` (also `[n; m]` and ranges `[n-m]`), validated against the
 * sources the prompt gave, each mapped to its document, page and char span. A bracket followed by `(` is
 * a Markdown link, not a citation.
 */

import type { PromptSource } from "./prompt.js";

export interface CitationMarker {
  /** The marker as written, e.g. "[1, 3]". */
  marker: string;
  /** Char offset of the marker in the answer. */
  at: number;
  numbers: number[];
}

export interface CitedSource {
  n: number;
  docId: string;
  title: string;
  chunkId: string;
  page: number | null;
  pageEnd: number | null;
  start: number;
  end: number;
}

export interface Citation extends CitedSource {
  marker: string;
  at: number;
}

export interface InvalidCitation {
  n: number;
  marker: string;
  at: number;
  reason: string;
}

export interface CitationReport {
  /** Valid citations in answer order (a marker "[1, 2]" gives two). */
  citations: Citation[];
  /** Numbers that match no source given to the model. */
  invalid: InvalidCitation[];
  /** Distinct valid source numbers cited, ascending. */
  cited: number[];
  /** Sources given but never cited. */
  uncited: number[];
  /** Each cited source once, by number. */
  sources: CitedSource[];
}

const MARKER = /\[(\s*\d{1,4}\s*(?:[-\u2013]\s*\d{1,4}\s*)?(?:[,;]\s*\d{1,4}\s*(?:[-\u2013]\s*\d{1,4}\s*)?)*)\](?!\()/gu;
const MAX_RANGE = 50;

/** Every citation marker in `answer`, in order. */
export function parseCitations(answer: string): CitationMarker[] {
  const out: CitationMarker[] = [];
  for (const m of answer.matchAll(MARKER)) {
    const numbers: number[] = [];
    for (const part of (m[1] as string).split(/[,;]/u)) {
      const range = /^\s*(\d+)\s*[-\u2013]\s*(\d+)\s*$/u.exec(part);
      if (range !== null) {
        const a = Number(range[1]);
        const b = Number(range[2]);
        if (b >= a && b - a <= MAX_RANGE) for (let i = a; i <= b; i++) numbers.push(i);
        else numbers.push(a, b);
      } else {
        numbers.push(Number(part.trim()));
      }
    }
    out.push({ marker: m[0], at: m.index ?? 0, numbers: [...new Set(numbers)] });
  }
  return out;
}

/** Parse and check an answer's citations against the sources given in the prompt. */
export function resolveCitations(answer: string, sources: readonly PromptSource[]): CitationReport {
  const byNumber = new Map(sources.map((s) => [s.n, s]));
  const citations: Citation[] = [];
  const invalid: InvalidCitation[] = [];
  for (const m of parseCitations(answer)) {
    for (const n of m.numbers) {
      const src = byNumber.get(n);
      if (src === undefined) {
        invalid.push({
          n,
          marker: m.marker,
          at: m.at,
          reason: sources.length === 0 ? "no sources were given" : `there are only sources 1-${sources.length}`,
        });
        continue;
      }
      citations.push({ ...describe(src), marker: m.marker, at: m.at });
    }
  }
  const cited = [...new Set(citations.map((c) => c.n))].sort((a, b) => a - b);
  return {
    citations,
    invalid,
    cited,
    uncited: sources.map((s) => s.n).filter((n) => !cited.includes(n)),
    sources: cited.map((n) => describe(byNumber.get(n) as PromptSource)),
  };
}

function describe(s: PromptSource): CitedSource {
  return {
    n: s.n,
    docId: s.hit.document.id,
    title: s.hit.document.title,
    chunkId: s.hit.chunk.id,
    page: s.hit.page,
    pageEnd: s.hit.pageEnd,
    start: s.hit.start,
    end: s.hit.end,
  };
}
