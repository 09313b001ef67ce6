// The Extract action's request and reply handling (src/extract.ts): the request passes the SDK's own request
// validation (valibot + xgrammar's schema conversion, the check create() runs before any generation), and a
// reply becomes a record only when it is complete and of the schema's shape.
// Run: cd sdk && node --import tsx --test ../demo_rag/test/extract.test.ts
import { test } from "node:test";
import assert from "node:assert/strict";
import { validateChatRequest } from "../../sdk/src/service/validate.ts";
import {
  buildExtractRequest,
  citeRecord,
  EXTRACT_MAX_TOKENS,
  EXTRACT_SCHEMA,
  extractReplyTokens,
  extractRetrieveSpec,
  MAX_CHARS,
  MAX_ITEMS,
  parseExtractReply,
  type ReplyChoice,
} from "../src/extract.ts";

const MESSAGES = [
  { role: "system" as const, content: "You read the numbered sources." },
  { role: "user" as const, content: "Sources:\n\n[1] marrhaven-optics.pdf, page 1\nMarrhaven Optics was founded in 1936.\n\nQuestion: ..." },
];

const reply = (content: string | null, finish_reason = "stop", refusal: string | null = null): ReplyChoice => ({
  message: { content, refusal },
  finish_reason,
});

const GOOD = {
  title: "Marrhaven Optics: company profile",
  dates: ["1936"],
  people: ["Linnea Orskstrom", " Linnea  Orskstrom "],
  organizations: ["Marrhaven Optics"],
  amounts: ["8,568 people"],
};

test("buildExtractRequest: greedy, bounded, OpenAI json_schema; the SDK accepts the schema (xgrammar compiles it)", async () => {
  const req = buildExtractRequest(MESSAGES, EXTRACT_MAX_TOKENS);
  assert.equal(req.max_tokens, EXTRACT_MAX_TOKENS);
  assert.equal(req.temperature, 0);
  assert.notEqual(req.stream, true);
  assert.deepEqual(req.messages, MESSAGES);
  assert.ok(req.response_format?.type === "json_schema");
  assert.equal(req.response_format.json_schema.name, "document_record");
  assert.equal(req.response_format.json_schema.strict, true);
  assert.deepEqual(req.response_format.json_schema.schema, EXTRACT_SCHEMA);
  // The real check create() runs: an unsupported keyword would be an InvalidRequestError here.
  const checked = await validateChatRequest(req);
  assert.equal(checked.response_format?.type, "json_schema");
  assert.throws(() => buildExtractRequest([], EXTRACT_MAX_TOKENS), /no prompt messages/);
  const spec = extractRetrieveSpec(4096);
  assert.equal(spec.maxAnswerTokens, EXTRACT_MAX_TOKENS);
  assert.ok(spec.query.length > 0 && spec.k > 0);
  // A small context window (the 256-token test model) keeps half of it for the prompt.
  const small = extractRetrieveSpec(256);
  assert.equal(small.maxAnswerTokens, 128);
  assert.ok(small.system.length + small.task.length + small.instruction.length < (spec.system + spec.task + spec.instruction).length / 3);
  assert.equal(extractReplyTokens(20), 16);
});

test("the same schema with a keyword the grammar does not enforce is refused, naming it (so the check above can fail)", async () => {
  const req = buildExtractRequest(MESSAGES, EXTRACT_MAX_TOKENS);
  assert.ok(req.response_format?.type === "json_schema");
  const schema = structuredClone(req.response_format.json_schema.schema) as { properties: { people: Record<string, unknown> } };
  schema.properties.people["uniqueItems"] = true;
  req.response_format.json_schema.schema = schema as unknown as Record<string, unknown>;
  await assert.rejects(validateChatRequest(req), (err: Error) => err.name === "InvalidRequestError" && /uniqueItems/.test(err.message));
});

test("parseExtractReply: a complete reply of the schema's shape is a record (values trimmed, repeats dropped)", () => {
  const r = parseExtractReply(reply(JSON.stringify(GOOD)), EXTRACT_MAX_TOKENS);
  assert.ok(r.ok);
  assert.deepEqual(r.record, { ...GOOD, people: ["Linnea Orskstrom"] });
  const empty = parseExtractReply(reply('{"title": "", "dates": [], "people": [], "organizations": [], "amounts": []}'), EXTRACT_MAX_TOKENS);
  assert.ok(empty.ok);
  assert.deepEqual(empty.record.people, []);
});

test("parseExtractReply: cut by max_tokens ('length') is never a record, even when the text happens to parse", () => {
  const cut = JSON.stringify(GOOD).slice(0, 50);
  const r = parseExtractReply(reply(cut, "length"), 128);
  assert.ok(!r.ok);
  assert.equal(r.reason, "length");
  assert.match(r.message, /all 128 reply tokens/);
  const parses = parseExtractReply(reply(JSON.stringify(GOOD), "length"), EXTRACT_MAX_TOKENS);
  assert.ok(!parses.ok && parses.reason === "length");
});

test("parseExtractReply: refusal, stop, empty, not JSON, wrong shape: a message, no record", () => {
  const cases: [ReplyChoice, string, RegExp][] = [
    [reply(null, "stop", "I cannot help with that."), "refused", /declined: I cannot help/],
    [reply('{"title": "x"', "abort"), "stopped", /Stopped/],
    [reply("   "), "empty", /no record/],
    [reply(null), "empty", /no record/],
    [reply('{"title": "x", "dates": [}'), "invalid", /not JSON/],
    [reply("[1, 2]"), "invalid", /not a JSON object/],
    [reply(JSON.stringify({ ...GOOD, ceo: "x" })), "invalid", /unexpected fields: ceo/],
    [reply(JSON.stringify({ ...GOOD, title: 3 })), "invalid", /"title"/],
    [reply(JSON.stringify({ ...GOOD, title: "t".repeat(MAX_CHARS + 1) })), "invalid", /characters/],
    [reply(JSON.stringify({ ...GOOD, dates: "1936" })), "invalid", /"dates" is not a list/],
    [reply(JSON.stringify({ ...GOOD, people: [null] })), "invalid", /"people" holds a null/],
    [reply(JSON.stringify({ ...GOOD, amounts: Array(MAX_ITEMS + 1).fill("1") })), "invalid", /"amounts" has 5 values/],
    [reply(JSON.stringify({ title: "t", dates: [], people: [], organizations: [] })), "invalid", /"amounts" is not a list/],
  ];
  for (const [choice, reason, message] of cases) {
    const r = parseExtractReply(choice, EXTRACT_MAX_TOKENS);
    assert.ok(!r.ok, `${JSON.stringify(choice)} should fail`);
    assert.equal(r.reason, reason, JSON.stringify(choice));
    assert.match(r.message, message);
  }
});

test("citeRecord: each value cites the passages that hold it word for word (thousands separators, case, spaces ignored)", () => {
  const sources = [
    { n: 1, text: "Marrhaven Optics: company profile\nMarrhaven Optics was founded in 1936. The chief executive officer is\nLinnea Orskstrom." },
    { n: 2, text: "Marrhaven Optics employs 8568 people across its offices." },
  ];
  const r = parseExtractReply(reply(JSON.stringify({ ...GOOD, dates: ["1936", "1999"] })), EXTRACT_MAX_TOKENS);
  assert.ok(r.ok);
  const cited = citeRecord(r.record, sources);
  assert.deepEqual(cited.title, { value: GOOD.title, sources: [1] });
  assert.deepEqual(cited.fields.dates, [
    { value: "1936", sources: [1] },
    { value: "1999", sources: [] },
  ]);
  assert.deepEqual(cited.fields.people, [{ value: "Linnea Orskstrom", sources: [1] }]);
  assert.deepEqual(cited.fields.organizations, [{ value: "Marrhaven Optics", sources: [1, 2] }]);
  assert.deepEqual(cited.fields.amounts, [{ value: "8,568 people", sources: [2] }]);
  assert.equal(citeRecord({ ...r.record, title: "" }, sources).title, null);
});
