// The question check (src/workers/question.ts) with the demo's real chat model: SmolLM2-135M-Instruct's
// tokenizer and chat template, read and verified from its package by ProxyChat exactly as the RAG worker
// does, and the encoder limit of the demo's all-MiniLM-L6-v2 package. A question pasted by mistake (31,032
// characters) is refused at once, in words and characters, without tokenizing it whole or repeating it.
// Needs dist/SmolLM2-135M-Instruct/q4f32_gguf and dist/all-MiniLM-L6-v2/q8f32_1 (make packages); fails without.
// Run: cd sdk && node --import tsx --test ../demo_rag/test/question.test.ts
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ProxyChat } from "../src/workers/chat-proxy.ts";
import { checkQuestion, maxQuestionTokens, PROBE_CHARS_PER_TOKEN, promptOptionsFor, QuestionTooLongError } from "../src/workers/question.ts";
import { shownQuestion, SHOWN_QUESTION_CHARS } from "../src/ui/ask.ts";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const CHAT_PACKAGE = join(REPO, "dist/SmolLM2-135M-Instruct/q4f32_gguf");
const ENCODER_PACKAGE = join(REPO, "dist/all-MiniLM-L6-v2/q8f32_1");
/** The demo's KV-cache cap (main.ts MAX_CONTEXT). */
const MAX_CONTEXT = 4096;

/** fetch for file:// URLs (Node's fetch refuses them), as the page's fetch serves the package over HTTP. */
async function fileFetch(url: string): Promise<Response> {
  try {
    return new Response(await readFile(fileURLToPath(url)));
  } catch {
    return new Response("not found", { status: 404 });
  }
}

const never = (): AsyncIterable<string> => {
  throw new Error("the question check must not generate");
};

/** ProxyChat, recording the length of every text it tokenizes. */
async function openChat(maxContext: number): Promise<{ chat: ProxyChat; counted: number[] }> {
  const chat = await ProxyChat.open(pathToFileURL(CHAT_PACKAGE).href, maxContext, never, fileFetch);
  const counted: number[] = [];
  const count = chat.countTokens.bind(chat);
  chat.countTokens = (text: string): number => {
    counted.push(text.length);
    return count(text);
  };
  return { chat, counted };
}

let encoderMax: number;
/** 31,032 characters, as in the report: a paragraph repeated, then the actual question. */
const LONG = `${"Please tell me everything about the boats and the people and the towns. ".repeat(500).slice(0, 31_016)} Who is the CEO?`;

before(() => {
  const config = JSON.parse(readFileSync(join(ENCODER_PACKAGE, "mlc-chat-config.json"), "utf8")) as { embedding_metadata: { max_seq_length: number } };
  encoderMax = config.embedding_metadata.max_seq_length;
});

test("a 31,032-character question is refused at once, in characters, without tokenizing it whole", async () => {
  assert.equal(LONG.length, 31_032);
  const { chat, counted } = await openChat(MAX_CONTEXT);
  const opts = promptOptionsFor(chat.contextWindow);
  const max = maxQuestionTokens(chat, opts, encoderMax);
  const t0 = performance.now();
  let error: unknown;
  try {
    checkQuestion(LONG, chat, opts, encoderMax);
  } catch (err) {
    error = err;
  }
  const ms = performance.now() - t0;
  assert.ok(error instanceof QuestionTooLongError, String(error));
  assert.match(error.message, /^Your question is too long \(31,032 characters\); the model can take about [\d,]+\. Shorten it\.$/);
  assert.ok(!error.message.includes("boats"), "the question is not repeated");
  assert.equal(error.chars, 31_032);
  assert.equal(error.maxTokens, max);
  // About 4-5 characters per SmolLM2 token for this English text.
  assert.ok(error.maxChars > 2 * max && error.maxChars < 8 * max, `about ${error.maxChars} characters for ${max} tokens`);
  assert.ok(Math.max(...counted) <= max * PROBE_CHARS_PER_TOKEN, `tokenized ${Math.max(...counted)} characters at once`);
  assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
});

test("a question a little over the limit is counted whole; the estimate is consistent with its own ratio", async () => {
  const { chat } = await openChat(MAX_CONTEXT);
  const opts = promptOptionsFor(chat.contextWindow);
  const max = maxQuestionTokens(chat, opts, encoderMax);
  const q = "Who founded the company and when? ".repeat(Math.ceil((max * 1.5) / 8));
  const tokens = chat.countTokens(q.trim());
  assert.ok(tokens > max && q.length < max * PROBE_CHARS_PER_TOKEN);
  assert.throws(
    () => checkQuestion(q, chat, opts, encoderMax),
    (err: unknown) => {
      assert.ok(err instanceof QuestionTooLongError);
      assert.equal(err.tokens, tokens);
      // "about": this question's characters per token times the limit, rounded down (to 100 above 1,000).
      const exact = (max * q.trim().length) / tokens;
      assert.ok(err.maxChars <= exact && err.maxChars > exact - 100, `${err.maxChars} for ${exact.toFixed(0)}`);
      return true;
    },
  );
});

test("ordinary questions pass", async () => {
  const { chat } = await openChat(MAX_CONTEXT);
  const opts = promptOptionsFor(chat.contextWindow);
  checkQuestion("Who is the CEO of Marrhaven Optics?", chat, opts, encoderMax);
  checkQuestion(`${"Which year was it founded, and by whom? ".repeat(10)}`, chat, opts, encoderMax);
});

test("a small context window where the instructions leave less room: still words and characters, not PromptTooLongError", async () => {
  // 80 tokens: the answer takes 16, the instructions alone about 60 of the 64 left, the question limit is 16.
  const { chat } = await openChat(80);
  const opts = promptOptionsFor(chat.contextWindow);
  const max = maxQuestionTokens(chat, opts, encoderMax);
  // Fits the question limit alone, but not beside the instructions.
  let q = "Who runs it? ";
  while (chat.countTokens(`${q}Who runs it? `.trim()) <= max) q += "Who runs it? ";
  assert.throws(
    () => checkQuestion(q, chat, opts, encoderMax),
    (err: unknown) => {
      assert.ok(err instanceof QuestionTooLongError, String(err));
      assert.match(err.message, /^Your question is too long \([\d,]+ characters\); the model can take about [\d,]+\. Shorten it\.$/);
      assert.ok(err.maxTokens < max);
      return true;
    },
  );
});

test("the turn shows a long question's start and its length, not the whole of it", () => {
  assert.equal(shownQuestion("Who is the CEO?"), "Who is the CEO?");
  const shown = shownQuestion(LONG);
  assert.ok(shown.length < SHOWN_QUESTION_CHARS + 40);
  assert.ok(shown.startsWith("Please tell me everything"));
  assert.match(shown, /… \(31,032 characters\)$/);
});
