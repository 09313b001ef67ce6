#!/usr/bin/env node
// Tokenize texts and render chat templates with the SDK, in batch; prints one JSON object on stdout.
// The Python parity test (tests/test_sdk_tokenizers.py) compares this output with Hugging Face's.
//
// Usage: node scripts/tokenize.mjs <tokenizerDir> [--texts texts.json] [--chat chats.json]
//                                  [--no-special-tokens] [--max-length N] [--decode]
//   <tokenizerDir>       folder with tokenizer.json (+ tokenizer_config.json, chat_template.jinja,
//                        mlc-chat-config.json when present)
//   --texts FILE         JSON list of strings -> "ids": one list of ids per text
//   --no-special-tokens  encode with addSpecialTokens: false
//   --max-length N       truncate to N ids (special tokens included)
//   --decode             also "decoded" (decode(ids)), "decoded_skip" (skipSpecialTokens) and "streamed"
//                        (StreamDecoder over ids, specials kept, joined + flush) per text
//   --decode-ids FILE    JSON list of id lists -> "decoded_ids": [decode(ids), decode(ids, skip specials)] each
//   --chat FILE          JSON list of {messages, add_generation_prompt?, tools?, extra?} -> "chat": one
//                        rendered string (or {"error": name, "message": ...}) per conversation; `extra`
//                        holds more template variables (e.g. {"enable_thinking": false})
//   --chat-config FILE --accept-ids FILE
//                        an mlc-chat-config.json and a JSON list of ids: feed the ids to a Generation (one
//                        token at a time, as sampled) with the package's stop ids (chatStopTokenIds) ->
//                        "stop_ids", "accepted" (ids consumed until finish), "finish_reason", "text"
// Also prints "vocab_size", "special" ({bos, eos, pad, unk} ids) and "encode_ms" (encode time, all texts).
// Exit: 0 ok, 2 error (a JSON line {"error": ...} is still printed).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { register } from "tsx/esm/api";

register();
const { loadTokenizer, ChatTemplate } = await import("../src/tokenize/index.ts");
const { chatStopTokenIds, parseChatConfig } = await import("../src/load/chat-config.ts");
const { Generation } = await import("../src/sample/generation.ts");

function readIf(dir, name, encoding = "utf8") {
  const path = join(dir, name);
  return existsSync(path) ? readFileSync(path, encoding === null ? undefined : encoding) : undefined;
}

function jsonIf(dir, name) {
  const text = readIf(dir, name);
  return text === undefined ? undefined : JSON.parse(text);
}

try {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      texts: { type: "string" },
      chat: { type: "string" },
      "decode-ids": { type: "string" },
      "no-special-tokens": { type: "boolean", default: false },
      "max-length": { type: "string" },
      decode: { type: "boolean", default: false },
      "chat-config": { type: "string" },
      "accept-ids": { type: "string" },
    },
  });
  const dir = positionals[0];
  if (dir === undefined) throw new Error("usage: node scripts/tokenize.mjs <tokenizerDir> [--texts F] [--chat F] ...");

  const tokenizerConfig = jsonIf(dir, "tokenizer_config.json");
  const files = {};
  const tokenizerJson = readIf(dir, "tokenizer.json");
  const tokenizerModel = readIf(dir, "tokenizer.model", null);
  if (tokenizerJson !== undefined) files.tokenizerJson = tokenizerJson;
  if (tokenizerConfig !== undefined) files.tokenizerConfig = tokenizerConfig;
  if (tokenizerModel !== undefined) files.tokenizerModel = tokenizerModel;
  const tokenizer = await loadTokenizer(files);

  const special = Object.fromEntries(Object.entries(tokenizer.special).map(([k, v]) => [k, v?.id ?? null]));
  const out = { vocab_size: tokenizer.vocabSize, special };

  if (values.texts !== undefined) {
    const texts = JSON.parse(readFileSync(values.texts, "utf8"));
    const options = { addSpecialTokens: !values["no-special-tokens"] };
    if (values["max-length"] !== undefined) options.truncation = { maxLength: Number(values["max-length"]) };
    const t0 = performance.now();
    const ids = texts.map((t) => tokenizer.encode(t, options));
    out.encode_ms = performance.now() - t0;
    out.ids = ids.map((a) => Array.from(a));
    if (values.decode) {
      out.decoded = ids.map((a) => tokenizer.decode(a));
      out.decoded_skip = ids.map((a) => tokenizer.decode(a, { skipSpecialTokens: true }));
      out.streamed = ids.map((a) => {
        const stream = tokenizer.streamDecoder({ skipSpecialTokens: false });
        let text = "";
        for (const id of a) text += stream.push(id);
        return text + stream.flush();
      });
    }
  }

  if (values["decode-ids"] !== undefined) {
    const lists = JSON.parse(readFileSync(values["decode-ids"], "utf8"));
    out.decoded_ids = lists.map((ids) => [tokenizer.decode(ids), tokenizer.decode(ids, { skipSpecialTokens: true })]);
  }

  if (values.chat !== undefined) {
    const chats = JSON.parse(readFileSync(values.chat, "utf8"));
    const sources = {};
    const jinja = readIf(dir, "chat_template.jinja");
    const chatConfig = jsonIf(dir, "mlc-chat-config.json");
    if (jinja !== undefined) sources.chatTemplateJinja = jinja;
    if (tokenizerConfig !== undefined) sources.tokenizerConfig = tokenizerConfig;
    if (chatConfig !== undefined) sources.chatConfig = chatConfig;
    const template = await ChatTemplate.fromSources(sources);
    out.chat = chats.map((c) => {
      try {
        const options = { add_generation_prompt: c.add_generation_prompt ?? false };
        if (c.tools != null) options.tools = c.tools;
        if (c.extra != null) options.extra = c.extra;
        return template.render(c.messages, options);
      } catch (err) {
        return { error: err?.name ?? "Error", message: String(err?.message ?? err) };
      }
    });
  }
  if (values["chat-config"] !== undefined) {
    const config = parseChatConfig(JSON.parse(readFileSync(values["chat-config"], "utf8")));
    out.stop_ids = chatStopTokenIds(config, tokenizer.special.eos?.id ?? null);
    if (values["accept-ids"] !== undefined) {
      const gen = new Generation(tokenizer, { max_tokens: 10_000 }, { eosTokenIds: out.stop_ids });
      let accepted = 0;
      for (const id of JSON.parse(readFileSync(values["accept-ids"], "utf8"))) {
        if (gen.finishReason !== null) break;
        gen.accept(id);
        accepted++;
      }
      Object.assign(out, { accepted, finish_reason: gen.finishReason, text: gen.text });
    }
  }
  console.log(JSON.stringify(out));
} catch (err) {
  console.error(err?.stack ?? String(err));
  console.log(JSON.stringify({ error: String(err?.message ?? err), errorName: err?.name ?? null }));
  process.exitCode = 2;
}
