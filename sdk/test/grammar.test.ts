// The grammar layer and the tool-call text handling without a GPU (issue 16): bitmask application, the
// JSON Schema keyword checks, GrammarEngine on a real tokenizer (compile cache, a fresh xgrammar instance
// after one aborted, masked random walks that always end in schema-valid JSON), and parseToolCalls ==
// ToolCallStream for every way of cutting the text into pieces.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { applyTokenBitmask, checkJsonSchema, GrammarEngine, GrammarError } from "../src/grammar/index.js";
import { loadTokenizer } from "../src/tokenize/load.js";
import { parseToolCalls, ToolCallStream } from "../src/service/tool-calls.js";
import { vocabType } from "../src/service/grammar-model.js";
import { REPO } from "./support/engine-fixtures.js";
import { BAD_SCHEMAS, SCHEMAS } from "./support/structured-schemas.js";

test("applyTokenBitmask: cleared bits and ids past the mask become -Infinity, set bits keep their logit", () => {
  const logits = Float32Array.from({ length: 70 }, (_, i) => i);
  const mask = new Int32Array([0b1011, -1]); // ids 0, 1, 3 and 32..63 allowed; 64..69 are past the mask
  const allowed = applyTokenBitmask(logits, mask);
  assert.equal(allowed, 3 + 32);
  for (let i = 0; i < 70; i++) {
    const ok = i === 0 || i === 1 || i === 3 || (i >= 32 && i < 64);
    assert.equal(logits[i], ok ? i : Number.NEGATIVE_INFINITY, `id ${i}`);
  }
});

test("checkJsonSchema: the test corpus passes; bad schemas fail naming the keyword", () => {
  for (const { name, schema } of SCHEMAS) assert.doesNotThrow(() => checkJsonSchema(schema), name);
  for (const bad of BAD_SCHEMAS.filter((b) => !b.name.includes("xgrammar's own"))) {
    assert.throws(
      () => checkJsonSchema(bad.schema),
      (err: unknown) => err instanceof GrammarError && err.keyword === bad.keyword,
      bad.name,
    );
  }
});

async function qwenVocab(): Promise<{ engine: GrammarEngine; decode: (ids: number[]) => string }> {
  const dir = join(REPO, "dist/tiny-qwen2-bpe/q4f16_1");
  const tok = await loadTokenizer({
    tokenizerJson: readFileSync(join(dir, "tokenizer.json"), "utf8"),
    tokenizerConfig: JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")),
  });
  const tokens = Array.from({ length: tok.vocabSize }, (_, id) => (tok.specialIds.has(id) ? "" : (tok.idToToken(id) ?? "")));
  const engine = new GrammarEngine({ tokens, vocabType: "byte_level", prependSpace: false, vocabSize: 1024, stopTokenIds: [1023, 1021] });
  return { engine, decode: (ids) => tok.decode(ids, { skipSpecialTokens: true }) };
}

test("GrammarEngine: cached compiles, a new instance after an abort, masked random walks end in valid JSON", async () => {
  const { engine, decode } = await qwenVocab();
  const spec = {
    type: "json_schema" as const,
    schema: JSON.stringify({ type: "object", properties: { k: { enum: ["x", "y"] }, n: { type: "integer", minimum: 0, maximum: 9 } }, required: ["k", "n"] }),
  };
  await engine.compile(spec);
  await engine.compile(spec);
  assert.equal(engine.stats().compiles, 1);
  assert.equal(engine.stats().cacheHits, 1);
  await assert.rejects(
    engine.compile({ type: "ebnf", grammar: 'root ::= "a" |' }),
    (err: unknown) => err instanceof GrammarError && /EBNF|element/i.test(err.message),
  );
  await assert.rejects(
    engine.compile({ type: "json_schema", schema: JSON.stringify({ type: "object", properties: {}, additionalProperties: false, minProperties: 1 }) }),
    (err: unknown) => err instanceof GrammarError && err.keyword === "minProperties",
  );
  let seed = 7;
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (let walk = 0; walk < 5; walk++) {
    const c = await engine.constraint(spec); // after the aborts: a new instance, the cache refilled
    const ids: number[] = [];
    while (!c.terminated && ids.length < 100) {
      const logits = Float32Array.from({ length: 1024 }, () => rnd());
      await c.mask(logits);
      let best = 0;
      for (let j = 1; j < logits.length; j++) if ((logits[j] as number) > (logits[best] as number)) best = j;
      c.accept(best);
      ids.push(best);
    }
    c.dispose();
    assert.ok(ids.length < 100);
    const value = JSON.parse(decode(ids)) as { k: string; n: number };
    assert.ok(["x", "y"].includes(value.k) && Number.isInteger(value.n) && value.n >= 0 && value.n <= 9, decode(ids));
  }
  assert.ok(engine.stats().instances >= 2, "an instance that aborted was replaced");
  engine.dispose();
});

test("parseToolCalls and ToolCallStream agree for every split of the text", () => {
  const names = ["get_weather", "add"];
  const texts = [
    '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>',
    'Let me check. <tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n<tool_call>\n{"name": "add", "arguments": "{\\"a\\": 3}"}\n</tool_call>',
    'Text <tool_call>not json</tool_call> more <tool_call>{"name": "unknown", "arguments": {}}</tool_call> end',
    "plain text, no calls < tool",
    'cut <tool_call>\n{"name": "add", "argu',
  ];
  for (const text of texts) {
    const whole = parseToolCalls(text, names);
    for (let cut = 0; cut <= text.length; cut++) {
      const stream = new ToolCallStream(names);
      const pieces = [stream.push(text.slice(0, cut)), stream.push(text.slice(cut)), stream.finish()];
      const content = pieces.map((p) => p.content).join("");
      assert.equal(content, whole.content ?? "", `${JSON.stringify(text)} cut at ${cut}`);
      const deltas = pieces.flatMap((p) => p.toolCalls);
      assert.deepEqual(
        stream.calls.map((c) => c.function),
        whole.toolCalls.map((c) => c.function),
      );
      assert.equal(deltas.length, 2 * whole.toolCalls.length);
    }
  }
  const parsed = parseToolCalls(texts[1] as string, names);
  assert.equal(parsed.content, "Let me check.");
  assert.deepEqual(
    parsed.toolCalls.map((c) => [c.function.name, c.function.arguments]),
    [
      ["get_weather", '{"city":"Oslo"}'],
      ["add", '{"a":3}'],
    ],
  );
  assert.equal(parseToolCalls(texts[0] as string, names).content, null);
  assert.equal(parseToolCalls(texts[2] as string, names).toolCalls.length, 0);
});

test("vocabType: mlc-chat-config's tokenizer_info, else recognised from the vocabulary (packages built before it)", () => {
  const info = { tokenizer_info: { token_postproc_method: "byte_fallback", prepend_space_in_encode: true } };
  assert.deepEqual(vocabType(info, []), { vocabType: "byte_fallback", prependSpace: true });
  assert.deepEqual(vocabType({}, ["a", "\u0120the", "\u010a"]), { vocabType: "byte_level", prependSpace: false });
  assert.deepEqual(vocabType({}, ["<0x0A>", "\u2581the"]), { vocabType: "byte_fallback", prependSpace: true });
  assert.deepEqual(vocabType({}, ["a", "b"]), { vocabType: "raw", prependSpace: false });
});
