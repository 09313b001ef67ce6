/**
 * The Extract action (issue 16): a small record (title, dates, people, organizations, amounts) read from
 * the retrieved passages by the chat model under a JSON Schema response_format, so the reply is JSON of
 * that shape by construction (the SDK's grammar-constrained decoding). This module builds the request and
 * checks the reply; it has no DOM and no worker, so it runs in unit tests as it runs in the page.
 *
 * The grammar guarantees the shape only for a complete reply: a reply cut by max_tokens (finish_reason
 * "length") is refused here, never shown as a half table. The shape is checked again anyway, because the
 * server route or a future SDK change must not turn into a broken table.
 */
import type { ChatCompletionCreateParamsNonStreaming } from "@hearth/sdk/client";
import type { RetrieveSpec, SourceView } from "./workers/protocol.ts";

/** Values per list field; what a small table shows, and a bound on the reply's length. */
export const MAX_ITEMS = 4;
/** Characters per value. */
export const MAX_CHARS = 60;
/**
 * Reply budget: the longest record the schema allows is ~1,100 characters of JSON (~350 tokens); a model
 * that writes that much is cut ("length") and told so, instead of being given room it does not need.
 */
export const EXTRACT_MAX_TOKENS = 400;
/** Passages searched for; the prompt keeps those that fit the context. */
export const EXTRACT_TOP_K = 4;

export const LIST_FIELDS = ["dates", "people", "organizations", "amounts"] as const;
export type ListField = (typeof LIST_FIELDS)[number];

export interface ExtractRecord {
  title: string;
  dates: string[];
  people: string[];
  organizations: string[];
  amounts: string[];
}

const STRING = { type: "string", maxLength: MAX_CHARS } as const;
const LIST = { type: "array", items: STRING, maxItems: MAX_ITEMS } as const;

/** Only keywords the SDK's grammar enforces (no uniqueItems, no number ranges): sdk/README.md. */
export const EXTRACT_SCHEMA = {
  type: "object",
  properties: { title: STRING, dates: LIST, people: LIST, organizations: LIST, amounts: LIST },
  required: ["title", ...LIST_FIELDS],
  additionalProperties: false,
} as const;

/** Keywords, not a sentence: hybrid search ranks passages holding such facts (BM25) and about them (vectors). */
export const EXTRACT_QUERY = "title date year founded people name chief executive organization company amount price number";

export const EXTRACT_SYSTEM =
  "You read the numbered sources and fill in a JSON record. Copy facts from the sources exactly; leave a list empty when the sources have none.";
export const EXTRACT_TASK = "What is the document's title, and which dates, people, organizations and amounts (money, counts) do the sources mention?";
export const EXTRACT_INSTRUCTION = 'Reply with JSON: {"title": "...", "dates": [], "people": [], "organizations": [], "amounts": []}.';

/**
 * Reply tokens for a context window: {@link EXTRACT_MAX_TOKENS}, or half a small window (the other half
 * holds the instructions and at least the start of a passage); a record longer than that ends "length".
 */
export function extractReplyTokens(contextWindow: number): number {
  return Math.max(16, Math.min(EXTRACT_MAX_TOKENS, Math.floor(contextWindow / 2)));
}

/** What the RAG worker retrieves and how it builds the prompt (the page then adds the response_format). */
export function extractRetrieveSpec(contextWindow: number): RetrieveSpec {
  return {
    query: EXTRACT_QUERY,
    k: EXTRACT_TOP_K,
    // A small window (a test model's 256 tokens) cannot hold the full instructions and a passage: the
    // schema tells the shape anyway, so the words can shrink to the task alone.
    ...(contextWindow >= 1024
      ? { task: EXTRACT_TASK, system: EXTRACT_SYSTEM, instruction: EXTRACT_INSTRUCTION }
      : { task: "Title, dates, people, organizations, amounts?", system: "Fill the JSON record from the sources.", instruction: "" }),
    maxAnswerTokens: extractReplyTokens(contextWindow),
  };
}

/** The chat request: the built prompt, greedy decoding, the schema as OpenAI's json_schema response_format. */
export function buildExtractRequest(messages: PromptMessages, maxTokens: number): ChatCompletionCreateParamsNonStreaming {
  if (messages.length === 0) throw new Error("buildExtractRequest: no prompt messages (retrieve first)");
  return {
    messages: messages.map((m) => ({ role: m.role, content: m.content })),
    max_tokens: maxTokens,
    // Greedy: the record should be the same on every press of the button.
    temperature: 0,
    response_format: {
      type: "json_schema",
      json_schema: { name: "document_record", schema: structuredClone(EXTRACT_SCHEMA) as unknown as Record<string, unknown>, strict: true },
    },
  };
}

type PromptMessages = readonly { role: "system" | "user" | "assistant"; content: string }[];

/** The part of a chat completion choice the parser reads. */
export interface ReplyChoice {
  message: { content: string | null; refusal?: string | null };
  finish_reason: string | null;
}

export type ExtractFailure = "length" | "refused" | "stopped" | "empty" | "invalid";

export type ExtractResult = { ok: true; record: ExtractRecord } | { ok: false; reason: ExtractFailure; message: string };

const fail = (reason: ExtractFailure, message: string): ExtractResult => ({ ok: false, reason, message });

function cleanList(value: unknown, field: string): string[] | string {
  if (!Array.isArray(value)) return `"${field}" is not a list`;
  if (value.length > MAX_ITEMS) return `"${field}" has ${value.length} values (at most ${MAX_ITEMS})`;
  const out: string[] = [];
  const seen = new Set<string>();
  for (const item of value) {
    if (typeof item !== "string") return `"${field}" holds a ${item === null ? "null" : typeof item}, not text`;
    if (item.length > MAX_CHARS) return `a value of "${field}" has ${item.length} characters (at most ${MAX_CHARS})`;
    const v = item.replace(/\s+/gu, " ").trim();
    // A small model under greedy decoding repeats itself; the grammar cannot forbid that (no uniqueItems).
    if (v === "" || seen.has(v.toLowerCase())) continue;
    seen.add(v.toLowerCase());
    out.push(v);
  }
  return out;
}

/** The model's reply as a record, or why there is none (in words the page shows as they are); `maxTokens` is the request's. */
export function parseExtractReply(choice: ReplyChoice, maxTokens: number): ExtractResult {
  const refusal = choice.message.refusal;
  if (typeof refusal === "string" && refusal !== "") return fail("refused", `The model declined: ${refusal}`);
  if (choice.finish_reason === "abort") return fail("stopped", "Stopped.");
  if (choice.finish_reason === "length") {
    return fail(
      "length",
      `The model used all ${maxTokens} reply tokens before the record was complete, so nothing is shown. Try again with fewer or shorter documents.`,
    );
  }
  const text = choice.message.content?.trim() ?? "";
  if (text === "") return fail("empty", "The model returned no record.");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail("invalid", `The model's reply is not JSON (${text.length} characters, starting “${text.slice(0, 40)}”).`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return fail("invalid", "The model's reply is not a JSON object.");
  const obj = value as Record<string, unknown>;
  const extra = Object.keys(obj).filter((k) => k !== "title" && !(LIST_FIELDS as readonly string[]).includes(k));
  if (extra.length > 0) return fail("invalid", `The model's record has unexpected fields: ${extra.join(", ")}.`);
  const title = obj["title"];
  if (typeof title !== "string") return fail("invalid", 'The model\'s record has no "title" text.');
  if (title.length > MAX_CHARS) return fail("invalid", `The model's title has ${title.length} characters (at most ${MAX_CHARS}).`);
  const record: ExtractRecord = { title: title.replace(/\s+/gu, " ").trim(), dates: [], people: [], organizations: [], amounts: [] };
  for (const field of LIST_FIELDS) {
    const list = cleanList(obj[field], field);
    if (typeof list === "string") return fail("invalid", `The model's record is malformed: ${list}.`);
    record[field] = list;
  }
  return { ok: true, record };
}

/** Lower case, one space, no thousands separators: "8,568" in a value matches "8568" in a passage and back. */
function normalize(text: string): string {
  return text
    .toLowerCase()
    .replace(/(\d),(?=\d{3}\b)/gu, "$1")
    .replace(/\s+/gu, " ")
    .trim();
}

export interface CitedValue {
  value: string;
  /** Source numbers whose passage holds the value word for word; empty when none does (the model's own words). */
  sources: number[];
}

export interface CitedRecord {
  title: CitedValue | null;
  fields: Record<ListField, CitedValue[]>;
}

/** Each value with the passages that contain it, so every row of the table can cite like an answer does. */
export function citeRecord(record: ExtractRecord, sources: readonly Pick<SourceView, "n" | "text">[]): CitedRecord {
  const texts = sources.map((s) => ({ n: s.n, text: normalize(s.text) }));
  const cite = (value: string): CitedValue => {
    const v = normalize(value);
    return { value, sources: v === "" ? [] : texts.filter((t) => t.text.includes(v)).map((t) => t.n) };
  };
  const fields = {} as Record<ListField, CitedValue[]>;
  for (const f of LIST_FIELDS) fields[f] = record[f].map(cite);
  return { title: record.title === "" ? null : cite(record.title), fields };
}
