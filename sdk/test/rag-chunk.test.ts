import { test } from "node:test";
import assert from "node:assert/strict";
import { chunkText, chunkTextAsync, HUGE_SENTENCE_FACTOR, paragraphSpans, type ChunkResult } from "../src/rag/chunk.js";
import { HashingTestEmbedder } from "./support/rag-fixtures.js";

const emb = new HashingTestEmbedder();
const count = (t: string) => emb.countTokens(t);

/** Invariants every chunking must satisfy. */
function checkInvariants(text: string, r: ChunkResult, max: number, countFn = count): void {
  r.chunks.forEach((c, i) => {
    assert.equal(c.ordinal, i);
    assert.equal(c.text, text.slice(c.start, c.end), `chunk ${i} is not its span`);
    assert.equal(c.tokenCount, countFn(c.text));
    assert.ok(c.tokenCount <= max, `chunk ${i} has ${c.tokenCount} tokens > ${max}`);
    assert.equal(c.text, c.text.trim());
    if (i > 0) {
      const prev = r.chunks[i - 1]!;
      assert.ok(c.start > prev.start && c.end > prev.end, `chunk ${i} does not advance`);
    }
  });
  // Nothing silently dropped: every non-whitespace character is inside some chunk.
  for (let i = 0; i < text.length; i++) {
    if (/\s/u.test(text[i]!)) continue;
    assert.ok(
      r.chunks.some((c) => c.start <= i && i < c.end),
      `char ${i} (${JSON.stringify(text.slice(i, i + 20))}) is in no chunk`,
    );
  }
}

function sentence(words: number, seed: number): string {
  const vocab = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu"];
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(vocab[(seed * 7 + i * 3) % vocab.length]!);
  const s = out.join(" ");
  return `${s[0]!.toUpperCase()}${s.slice(1)}.`;
}

test("small text → one chunk equal to the trimmed text", () => {
  const text = "  First paragraph here.\n\nSecond one.  \n";
  const r = chunkText(text, { countTokens: count, maxTokens: 64 });
  assert.equal(r.chunks.length, 1);
  assert.equal(r.chunks[0]!.text, "First paragraph here.\n\nSecond one.");
  assert.deepEqual(r.warnings, []);
  checkInvariants(text, r, 64);
});

test("paragraph boundaries are respected when paragraphs fit (no overlap)", () => {
  const paras = Array.from({ length: 8 }, (_, p) => [sentence(6, p), sentence(7, p + 1), sentence(5, p + 2)].join(" "));
  const text = paras.join("\n\n");
  const max = 50; // each paragraph is ~20 tokens: two fit, three do not
  const r = chunkText(text, { countTokens: count, maxTokens: max, overlapTokens: 0 });
  checkInvariants(text, r, max);
  const spans = paragraphSpans(text);
  const starts = new Set(spans.map((s) => s.start));
  const ends = new Set(spans.map((s) => s.end));
  assert.ok(r.chunks.length >= 3);
  for (const c of r.chunks) {
    assert.ok(starts.has(c.start), `chunk starts mid-paragraph at ${c.start}`);
    assert.ok(ends.has(c.end), `chunk ends mid-paragraph at ${c.end}`);
  }
  // Non-overlapping and in order.
  for (let i = 1; i < r.chunks.length; i++) assert.ok(r.chunks[i]!.start >= r.chunks[i - 1]!.end);
});

test("a paragraph larger than the limit is packed on sentence boundaries", () => {
  const text = Array.from({ length: 12 }, (_, i) => sentence(8, i)).join(" ");
  const max = 30;
  const r = chunkText(text, { countTokens: count, maxTokens: max, overlapTokens: 0 });
  checkInvariants(text, r, max);
  assert.ok(r.chunks.length >= 4);
  for (const c of r.chunks) assert.ok(c.text.endsWith("."), `chunk does not end on a sentence: ${c.text.slice(-20)}`);
  assert.deepEqual(r.warnings, []);
});

test("overlap repeats whole trailing sentences of the previous chunk, within overlapTokens", () => {
  const text = Array.from({ length: 20 }, (_, i) => sentence(4, i)).join(" ");
  const max = 30;
  const overlapTokens = 10;
  const r = chunkText(text, { countTokens: count, maxTokens: max, overlapTokens });
  checkInvariants(text, r, max);
  assert.ok(r.chunks.length >= 3);
  for (let i = 1; i < r.chunks.length; i++) {
    const prev = r.chunks[i - 1]!;
    const cur = r.chunks[i]!;
    assert.ok(cur.start < prev.end, `chunk ${i} does not overlap the previous one`);
    const shared = text.slice(cur.start, prev.end);
    assert.ok(shared.endsWith("."), "overlap is not whole sentences");
    assert.ok(/^[A-Z]/u.test(shared), "overlap does not start at a sentence start");
    assert.ok(count(shared) - 2 <= overlapTokens, `overlap of ${count(shared) - 2} tokens > ${overlapTokens}`);
  }
  // With overlap 0 there is none.
  const r0 = chunkText(text, { countTokens: count, maxTokens: max, overlapTokens: 0 });
  for (let i = 1; i < r0.chunks.length; i++) assert.ok(r0.chunks[i]!.start >= r0.chunks[i - 1]!.end);
});

test("a short heading stays with the paragraph after it", () => {
  const body = Array.from({ length: 6 }, (_, i) => sentence(7, i)).join(" "); // ~50 tokens
  const text = `Introduction\n\n${body}`;
  const r = chunkText(text, { countTokens: count, maxTokens: 40, overlapTokens: 0 });
  checkInvariants(text, r, 40);
  assert.ok(r.chunks[0]!.text.startsWith("Introduction\n\n"));
  assert.ok(r.chunks[0]!.text.length > "Introduction".length + 10, "the heading became a chunk of its own");
});

test("never silently truncates: an over-long sentence is split on words and reported", () => {
  const words = Array.from({ length: 200 }, (_, i) => `w${i}`);
  const text = `Short start.\n\n${words.join(" ")}\n\nShort end.`;
  const max = 50;
  const r = chunkText(text, { countTokens: count, maxTokens: max, overlapTokens: 0 });
  checkInvariants(text, r, max);
  assert.equal(r.warnings.length, 1);
  const w = r.warnings[0]!;
  assert.equal(w.kind, "sentence-split-on-words");
  assert.equal(w.tokens, 202);
  assert.equal(text.slice(w.start, w.end), words.join(" "));
  // Every word appears, in order, exactly once across the chunks.
  const seen = r.chunks.flatMap((c) => c.text.split(/\s+/u)).filter((x) => /^w\d+$/u.test(x));
  assert.deepEqual(seen, words);
});

test("a single word longer than the limit is split on characters (code points) and reported", () => {
  const long = "x".repeat(700) + "😀".repeat(10); // 710 code points → ceil(710/12)=60 tokens + 2
  const text = `Before it. ${long} after it.`;
  const max = 20;
  const r = chunkText(text, { countTokens: count, maxTokens: max, overlapTokens: 0 });
  checkInvariants(text, r, max);
  const kinds = r.warnings.map((w) => w.kind).sort();
  assert.deepEqual(kinds, ["sentence-split-on-words", "word-split-on-characters"]);
  // No chunk cuts a surrogate pair.
  for (const c of r.chunks) assert.ok(!/^[\uDC00-\uDFFF]|[\uD800-\uDBFF]$/u.test(c.text));
  assert.equal(
    r.chunks
      .map((c) => c.text)
      .join("")
      .replace(/\s+/gu, "")
      .includes(long),
    true,
  );
});

test("the real token count is enforced even when counts are not additive", () => {
  // Each newline costs a token and each sentence end costs an extra one: estimates from the parts are low.
  const nonAdditive = (t: string) => 2 + (t.match(/\S+/gu)?.length ?? 0) + (t.match(/\n/gu)?.length ?? 0) * 3;
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let trial = 0; trial < 30; trial++) {
    const paras: string[] = [];
    for (let p = 0, n = 1 + Math.floor(rand() * 8); p < n; p++) {
      const lines: string[] = [];
      for (let l = 0, m = 1 + Math.floor(rand() * 5); l < m; l++) lines.push(sentence(1 + Math.floor(rand() * 14), trial + p + l));
      paras.push(lines.join("\n"));
    }
    const text = paras.join("\n\n");
    const max = 12 + Math.floor(rand() * 30);
    const overlap = Math.floor(rand() * 8);
    const r = chunkText(text, { countTokens: nonAdditive, maxTokens: max, overlapTokens: overlap });
    checkInvariants(text, r, max, nonAdditive);
  }
});

test("empty and whitespace-only text give no chunks; a too-small limit is rejected", () => {
  assert.deepEqual(chunkText(" \n\n \t", { countTokens: count, maxTokens: 10 }).chunks, []);
  assert.throws(() => chunkText("hello", { countTokens: count, maxTokens: 2 }), RangeError);
});

/** One line of `chars` characters: words, no sentence end, no newline (the shape that could not be interrupted). */
function singleLine(chars: number): string {
  const vocab = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"];
  const parts: string[] = [];
  let len = 0;
  for (let i = 0; len < chars; i++) {
    const w = vocab[(i * 7) % vocab.length]!;
    parts.push(w);
    len += w.length + 1;
  }
  return parts.join(" ");
}

test("chunkTextAsync: chunkText's exact result, with turns of the event loop while it works", async () => {
  const text = [singleLine(120_000), sentence(9, 1) + " " + sentence(12, 2), singleLine(30_000) + "."].join("\n\n");
  const opts = { countTokens: count, maxTokens: 48 };
  const sync = chunkText(text, opts);
  let turns = 0;
  let ticking = true;
  const tick = (): void => {
    if (!ticking) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  const async = await chunkTextAsync(text, { ...opts, sliceMs: 1 });
  ticking = false;
  assert.deepEqual(async, sync);
  checkInvariants(text, async, 48);
  assert.ok(turns >= 2, `the event loop ran ${turns} times while chunking`);
});

test("chunkTextAsync: an abort during chunking stops it at the next step (AbortError), not at the end", async () => {
  const text = singleLine(400_000);
  let calls = 0;
  const counting = (t: string): number => {
    calls++;
    return count(t);
  };
  chunkText(text, { countTokens: counting, maxTokens: 48 });
  const full = calls;
  calls = 0;
  const ac = new AbortController();
  let atAbort = -1;
  const aborting = (t: string): number => {
    calls++;
    if (calls === 200) {
      ac.abort();
      atAbort = calls;
    }
    return count(t);
  };
  await assert.rejects(chunkTextAsync(text, { countTokens: aborting, maxTokens: 48, signal: ac.signal }), { name: "AbortError" });
  // The step in progress finishes (a handful of probes of one piece); nothing after it runs.
  assert.ok(calls - atAbort <= 40, `${calls - atAbort} token counts after the abort (a full run makes ${full})`);
  assert.ok(full > 10 * calls, `a full run makes ${full} token counts, the aborted one ${calls}`);
  // Aborted before it starts: no work at all.
  calls = 0;
  await assert.rejects(chunkTextAsync(text, { countTokens: aborting, maxTokens: 48, signal: AbortSignal.abort() }), { name: "AbortError" });
  assert.equal(calls, 0);
});

test("a sentence far over the limit is never tokenized whole: every counted span stays bounded", () => {
  const text = singleLine(1_000_000);
  const max = 64;
  let longest = 0;
  const r = chunkText(text, {
    countTokens: (t) => {
      longest = Math.max(longest, t.length);
      return count(t);
    },
    maxTokens: max,
  });
  for (const c of r.chunks) {
    assert.equal(c.text, text.slice(c.start, c.end));
    assert.ok(c.tokenCount <= max);
  }
  assert.ok(r.chunks.length > 1000);
  assert.equal(r.chunks.at(-1)!.end, text.length);
  // The probe of the sentence's start, or a piece's probes (at most 4·max + 8 words of at most 8 chars).
  assert.ok(longest <= Math.max(HUGE_SENTENCE_FACTOR * max, (4 * max + 8) * 8), `a ${longest}-character span was tokenized`);
  assert.equal(r.warnings.length, 1);
  assert.equal(r.warnings[0]!.kind, "sentence-split-on-words");
  // Reported as the pieces' sum (special tokens once), which equals the whole count for this tokenizer.
  assert.equal(r.warnings[0]!.tokens, count(text));
  assert.match(r.warnings[0]!.message, /^a sentence of about \d+ tokens/);
});
