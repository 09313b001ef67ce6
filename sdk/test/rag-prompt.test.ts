import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCitations, resolveCitations } from "../src/rag/citations.js";
import { PromptTooLongError } from "../src/rag/errors.js";
import {
  buildPrompt,
  countPromptTokens,
  DEFAULT_ANSWER_INSTRUCTION,
  DEFAULT_PROMPT_EXAMPLES,
  DEFAULT_SYSTEM_PROMPT,
  type PromptOptions,
  type PromptSource,
} from "../src/rag/prompt.js";
import type { SearchHit } from "../src/rag/search.js";
import type { ChatMessage } from "../src/rag/types.js";
import { ScriptedChatModel } from "./support/rag-fixtures.js";

function hit(i: number, words: number, page: number | null = null): SearchHit {
  const text = Array.from({ length: words }, (_, w) => `s${i}w${w}`).join(" ");
  const docId = `doc-${i}`;
  return {
    score: 1 / (60 + i),
    chunk: { id: `${docId}:0`, docId, ordinal: 0, text, page, pageEnd: page, start: 10 * i, end: 10 * i + text.length, tokenCount: words },
    document: {
      id: docId,
      title: `Title ${i}`,
      mime: "text/plain",
      contentHash: `${i}`,
      bytes: 1,
      createdAt: 0,
      pages: null,
      meta: {},
      chunkCount: 1,
      textLength: 1,
    },
    page,
    pageEnd: page,
    start: 10 * i,
    end: 10 * i + text.length,
    ranks: { bm25: i + 1, vector: i + 1 },
    scores: { bm25: 10 - i, vector: 0.9 - i / 100 },
    duplicates: [],
  };
}

test("prompt: numbered sources in rank order, everything fits in a large context", () => {
  const chat = new ScriptedChatModel("", 4096);
  const hits = [hit(0, 20, 3), hit(1, 20), hit(2, 20)];
  const p = buildPrompt("What is it?", hits, chat);
  assert.equal(p.sources.length, 3);
  assert.deepEqual(
    p.sources.map((s) => [s.n, s.hit.chunk.id]),
    [
      [1, "doc-0:0"],
      [2, "doc-1:0"],
      [3, "doc-2:0"],
    ],
  );
  assert.deepEqual(p.dropped, []);
  assert.equal(p.maxAnswerTokens, 512);
  // system, the worked examples (a user turn and the assistant's cited answer each), then the question.
  assert.equal(p.messages.length, 2 + 2 * DEFAULT_PROMPT_EXAMPLES.length);
  assert.deepEqual(p.messages[0], { role: "system", content: DEFAULT_SYSTEM_PROMPT });
  assert.deepEqual(
    p.messages.slice(1, -1).map((m) => m.role),
    DEFAULT_PROMPT_EXAMPLES.flatMap(() => ["user", "assistant"]),
  );
  assert.equal(
    p.messages[1]!.content,
    "Sources:\n\n[1] museum-guide.pdf, page 1\nThe Harbour Museum opened in 1998. Its director is Ines Dahl.\n\n" +
      `[2] museum-guide.pdf, page 3\nThe gift shop sells postcards and maps.\n\nQuestion: Who is the director of the Harbour Museum?\n${DEFAULT_ANSWER_INSTRUCTION}`,
  );
  assert.equal(p.messages[2]!.content, "The director of the Harbour Museum is Ines Dahl [1].");
  const user = p.messages.at(-1)!.content;
  assert.ok(user.startsWith("Sources:\n\n[1] Title 0, page 3\ns0w0 "));
  assert.ok(user.includes("\n\n[2] Title 1\ns1w0 "));
  assert.ok(user.endsWith(`\n\nQuestion: What is it?\n${DEFAULT_ANSWER_INSTRUCTION}`));
  assert.equal(p.promptTokens, countPromptTokens(chat, p.messages, 8));
  // Without examples and instruction: system + one user turn that ends with the question.
  const plain = buildPrompt("What is it?", hits, chat, { examples: [], instruction: "", system: "S" });
  assert.deepEqual(
    plain.messages.map((m) => m.role),
    ["system", "user"],
  );
  assert.equal(plain.messages[0]!.content, "S");
  assert.ok(plain.messages[1]!.content.endsWith("\n\nQuestion: What is it?"));
  assert.ok(plain.promptTokens < p.promptTokens);
});

/** The sizing tests below are about budgets, not wording: no examples, no trailing instruction. */
const PLAIN: PromptOptions = { examples: [], instruction: "" };

test("prompt sizing: the lowest-ranked sources that do not fit are dropped, and the result fits", () => {
  // Budget = 300 - 100 = 200 tokens. Each source is ~52 tokens (50 words + "[n] Title i").
  const chat = new ScriptedChatModel("", 300);
  const hits = [0, 1, 2, 3, 4, 5].map((i) => hit(i, 50));
  const p = buildPrompt("Which one?", hits, chat, { ...PLAIN, maxAnswerTokens: 100 });
  assert.ok(p.promptTokens <= 200, `prompt ${p.promptTokens} tokens > budget 200`);
  assert.ok(p.sources.length >= 1 && p.sources.length < hits.length);
  // The kept ones are the best-ranked prefix; the dropped ones are the rest, in order.
  assert.deepEqual(
    p.sources.map((s) => s.hit.chunk.id),
    hits.slice(0, p.sources.length).map((h) => h.chunk.id),
  );
  assert.deepEqual(p.dropped, hits.slice(p.sources.length));
  // One more source would not fit.
  const withOneMore = buildPrompt("Which one?", hits.slice(0, p.sources.length + 1), new ScriptedChatModel("", 100_000), { ...PLAIN, maxAnswerTokens: 100 });
  assert.ok(withOneMore.promptTokens > 200);
  // Exact count via countMessageTokens when the model has it.
  let calls = 0;
  const exact = Object.assign(new ScriptedChatModel("", 1000), {
    countMessageTokens(messages: ChatMessage[]) {
      calls++;
      return messages.reduce((n, m) => n + m.content.length, 0); // 1 token per char: far more than words
    },
  });
  const pe = buildPrompt("Which one?", hits, exact, { ...PLAIN, maxAnswerTokens: 100 });
  assert.ok(calls > 0);
  assert.ok(pe.promptTokens <= 900);
  assert.ok(pe.sources.length >= 1 && pe.sources.length < 6, `${pe.sources.length} sources`);
  assert.equal(buildPrompt("Which one?", hits, new ScriptedChatModel("", 1000), { ...PLAIN, maxAnswerTokens: 100 }).sources.length, 6);
});

test("prompt: a question that cannot fit even without sources → PromptTooLongError", () => {
  const chat = new ScriptedChatModel("", 200);
  const question = Array.from({ length: 300 }, (_, i) => `q${i}`).join(" ");
  assert.throws(() => buildPrompt(question, [hit(0, 5)], chat, { ...PLAIN, maxAnswerTokens: 50 }), PromptTooLongError);
  assert.throws(() => buildPrompt("short", [], chat, { ...PLAIN, maxAnswerTokens: 200 }), PromptTooLongError);
  // No hits: an explicit "(no sources found)".
  const p = buildPrompt("short", [], chat, { ...PLAIN, maxAnswerTokens: 50 });
  assert.match(p.messages[1]!.content, /\(no sources found\)/u);
  // The worked examples never cost a source: in a context too small for both, they are left out.
  const small = buildPrompt("short", [hit(0, 5)], chat, { maxAnswerTokens: 100 });
  assert.equal(small.sources.length, 1);
  assert.equal(small.messages.length, 2, "no examples");
  assert.ok(small.promptTokens <= 100);
  const roomy = buildPrompt("short", [hit(0, 5)], new ScriptedChatModel("", 4096), { maxAnswerTokens: 100 });
  assert.equal(roomy.messages.length, 2 + 2 * DEFAULT_PROMPT_EXAMPLES.length, "with room, the examples are in");
});

test("citation parsing: [n], [n, m], [n; m], ranges; links and non-numbers ignored", () => {
  const answer = "A [1]. B [2, 3]. C [4;5] D [6-8] E[ 9 ]. Link [1](http://x) and [a] and [1.5] and [] and [10–11].";
  const markers = parseCitations(answer);
  assert.deepEqual(
    markers.map((m) => [m.marker, m.numbers]),
    [
      ["[1]", [1]],
      ["[2, 3]", [2, 3]],
      ["[4;5]", [4, 5]],
      ["[6-8]", [6, 7, 8]],
      ["[ 9 ]", [9]],
      ["[10–11]", [10, 11]],
    ],
  );
  assert.equal(answer.slice(markers[1]!.at, markers[1]!.at + markers[1]!.marker.length), "[2, 3]");
});

test("citations are validated against the given sources and mapped to document/page/span", () => {
  const sources: PromptSource[] = [hit(0, 5, 4), hit(1, 5), hit(2, 5)].map((h, i) => ({ n: i + 1, hit: h }));
  const r = resolveCitations("Fact one [1]. Fact two [1, 3]. Made up [4] and [0]. Repeat [3].", sources);
  assert.deepEqual(
    r.citations.map((c) => [c.n, c.marker, c.docId, c.page]),
    [
      [1, "[1]", "doc-0", 4],
      [1, "[1, 3]", "doc-0", 4],
      [3, "[1, 3]", "doc-2", null],
      [3, "[3]", "doc-2", null],
    ],
  );
  assert.deepEqual(
    r.invalid.map((i) => [i.n, i.marker, i.reason]),
    [
      [4, "[4]", "there are only sources 1-3"],
      [0, "[0]", "there are only sources 1-3"],
    ],
  );
  assert.deepEqual(r.cited, [1, 3]);
  assert.deepEqual(r.uncited, [2]);
  assert.deepEqual(
    r.sources.map((s) => [s.n, s.chunkId, s.start, s.end, s.title]),
    [
      [1, "doc-0:0", 0, sources[0]!.hit.end, "Title 0"],
      [3, "doc-2:0", 20, sources[2]!.hit.end, "Title 2"],
    ],
  );
  const none = resolveCitations("No sources [1].", []);
  assert.equal(none.invalid[0]!.reason, "no sources were given");
  assert.deepEqual(resolveCitations("No citations at all.", sources).citations, []);
});
