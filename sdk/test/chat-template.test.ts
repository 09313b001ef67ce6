// Chat template rendering and message validation (parity with transformers' apply_chat_template on the
// test models' templates is tests/test_sdk_tokenizers.py).
import { test } from "node:test";
import assert from "node:assert/strict";
import { ChatMessageError, ChatTemplate, ChatTemplateError, validateMessages, type ChatMessage } from "../src/tokenize/index.js";

// ChatML as Qwen2.5 writes it (no tools), and Llama-2-chat's template, which calls raise_exception.
const CHATML =
  "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}" +
  "{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}" +
  "{%- for message in messages %}{%- if not (message.role == 'system' and loop.first) %}" +
  "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
const LLAMA2 =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}" +
  "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}" +
  "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
  "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

const convo: ChatMessage[] = [
  { role: "user", content: "What is a list?" },
  { role: "assistant", content: "A mutable sequence." },
];

test("ChatML: generation prompt, default system message, roles", async () => {
  const t = await ChatTemplate.compile(CHATML);
  assert.equal(
    t.render(convo),
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is a list?<|im_end|>\n" +
      "<|im_start|>assistant\nA mutable sequence.<|im_end|>\n",
  );
  assert.equal(
    t.render(
      [
        { role: "system", content: "S" },
        { role: "user", content: "Hi" },
      ],
      { add_generation_prompt: true },
    ),
    "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
  );
  assert.equal(
    t.render([
      { role: "user", content: "q" },
      { role: "tool", content: '{"x": 1}', tool_call_id: "c1" },
    ]),
    '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nq<|im_end|>\n<|im_start|>tool\n{"x": 1}<|im_end|>\n',
  );
});

test("Llama-2: bos_token/eos_token from tokenizer_config.json, raise_exception becomes ChatTemplateError", async () => {
  const t = await ChatTemplate.fromSources({
    tokenizerConfig: { chat_template: LLAMA2, bos_token: "<s>", eos_token: { content: "</s>", __type: "AddedToken" } },
  });
  assert.equal(t.render(convo), "<s>[INST] What is a list? [/INST] A mutable sequence. </s>");
  assert.equal(
    t.render([
      { role: "system", content: "Be brief." },
      { role: "user", content: " hi " },
    ]),
    "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n hi [/INST]", // strip() applies to the joined content
  );
  assert.throws(
    () => t.render([{ role: "assistant", content: "first" }]),
    (err: unknown) => err instanceof ChatTemplateError && /roles must alternate/.test(err.message),
  );
});

test("template sources: chat_template.jinja > tokenizer_config.json > mlc-chat-config.json; named templates", async () => {
  const plain = "{% for m in messages %}{{ m.content }}{% endfor %}";
  assert.equal((await ChatTemplate.fromSources({ chatConfig: { chat_template: plain } })).render(convo), "What is a list?A mutable sequence.");
  assert.equal(
    (await ChatTemplate.fromSources({ chatTemplateJinja: "J", tokenizerConfig: { chat_template: "T" }, chatConfig: { chat_template: "C" } })).source,
    "J",
  );
  assert.equal((await ChatTemplate.fromSources({ tokenizerConfig: { chat_template: "T" }, chatConfig: { chat_template: "C" } })).source, "T");
  const named = {
    chat_template: [
      { name: "default", template: "D" },
      { name: "tool_use", template: "U" },
    ],
  };
  assert.equal((await ChatTemplate.fromSources({ tokenizerConfig: named })).source, "D");
  assert.equal((await ChatTemplate.fromSources({ tokenizerConfig: named, name: "tool_use" })).source, "U");
  await assert.rejects(ChatTemplate.fromSources({ tokenizerConfig: {} }), ChatTemplateError);
  await assert.rejects(ChatTemplate.fromSources({ chatConfig: { chat_template: null } }), ChatTemplateError);
});

test("tools, documents and extra variables reach the template; tools is none when absent", async () => {
  const t = await ChatTemplate.compile(
    "{% if tools %}{{ tools | length }} tools;{% else %}no tools;{% endif %}{% if documents is none %}no docs;{% endif %}" +
      "{{ enable_thinking }};{{ bos_token }}",
    { bos_token: "<s>" },
  );
  assert.equal(t.render(convo), "no tools;no docs;;<s>");
  assert.equal(
    t.render(convo, { tools: [{ type: "function" }, { type: "function" }], extra: { enable_thinking: true, bos_token: "B" } }),
    "2 tools;no docs;true;B",
  );
});

test("malformed messages are a ChatMessageError naming the fault", async () => {
  const bad: [unknown, RegExp][] = [
    [null, /must be an array/],
    [[], /is empty/],
    [[42], /messages\[0\] must be an object/],
    [[{ role: "robot", content: "x" }], /messages\[0\]\.role must be one of/],
    [[{ content: "x" }], /\.role must be one of/],
    [[{ role: "user" }], /\.content must be a string; got undefined/],
    [[{ role: "user", content: null }], /got null/],
    [[{ role: "user", content: [{ type: "text", text: "x" }] }], /content parts are not supported/],
    [
      [
        { role: "user", content: "ok" },
        { role: "tool", content: "r", tool_call_id: 7 },
      ],
      /messages\[1\]\.tool_call_id must be a string/,
    ],
    [[{ role: "user", content: "x", tool_calls: [] }], /only allowed on assistant/],
    [[{ role: "assistant", content: "", tool_calls: "call" }], /array of objects/],
    [[{ role: "user", contents: "typo" }], /content must be a string/],
    [[{ role: "user", content: "x", extra: 1 }], /unknown key "extra"/],
  ];
  for (const [messages, pattern] of bad) {
    assert.throws(
      () => validateMessages(messages),
      (err: unknown) => err instanceof ChatMessageError && pattern.test(err.message),
      JSON.stringify(messages),
    );
  }
  const t = await ChatTemplate.compile(CHATML);
  assert.throws(() => t.render([{ role: "user", content: 5 } as unknown as ChatMessage]), ChatMessageError);
  assert.deepEqual(validateMessages([{ role: "assistant", content: "", tool_calls: [{ id: "1" }], name: "bot" }]).length, 1);
});

test("a template that does not parse, or fails at render time, is a ChatTemplateError", async () => {
  await assert.rejects(ChatTemplate.compile("{% for m in messages %}"), ChatTemplateError);
  const failing = await ChatTemplate.compile("{{ messages[0].content.nosuchmethod() }}");
  assert.throws(() => failing.render(convo), ChatTemplateError);
});

test("strip(chars), lstrip, rstrip and | trim follow Python's str.strip (jinja-python.ts)", async () => {
  const t = await ChatTemplate.compile(
    "{{ messages[0].content.lstrip('\\n') }}|{{ messages[0].content.rstrip('\\n') }}|{{ messages[0].content.strip('\\n ') }}|" +
      "{{ messages[0].content.strip() }}|{{ messages[0].content | trim }}|{{ messages[1].content | trim }}|{{ messages[1].content.strip('x') }}",
  );
  const out = t.render([
    { role: "user", content: "\n ok \n" },
    { role: "assistant", content: "\ufeff\x1cbom\x85" },
  ]);
  // Python: "\n ok \n".lstrip("\n") == " ok \n"; "\ufeff\x1cbom\x85".strip() == "\ufeff\x1cbom" (U+FEFF is not
  // Python whitespace, U+001C and U+0085 are); a chars argument strips exactly those characters.
  assert.equal(out, " ok \n|\n ok |ok|ok|ok|\ufeff\x1cbom|\ufeff\x1cbom\x85");
});
