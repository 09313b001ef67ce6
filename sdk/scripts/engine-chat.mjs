#!/usr/bin/env node
// One greedy chat completion through createEngine() (inline transport) in Node on Dawn WebGPU, then the
// same request streamed (it reuses the KV prefix); prints one JSON line on stdout (logs on stderr):
// {model, prompt_token_ids, token_ids, text, stream_text, stream_token_ids, finish_reason, usage, stream_usage}.
//
// Usage: node scripts/engine-chat.mjs <packageDir> [--messages JSON] [--max-tokens 32] [--variant V] [--eos]
//   --messages  a JSON array of {role, content} (default: a system + user message)
//   --eos       stop at EOS (default: ignore_eos, so exactly --max-tokens tokens, like the native greedy)
// Exit: 0 ok, 2 error (a JSON line {"error": ...} is still printed).
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { register } from "tsx/esm/api";

register();

const DEFAULT_MESSAGES = [
  { role: "system", content: "You answer questions about the Python standard library." },
  { role: "user", content: "How do I read a file line by line?" },
];

let engine;
try {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      messages: { type: "string" },
      "max-tokens": { type: "string", default: "32" },
      variant: { type: "string" },
      eos: { type: "boolean", default: false },
    },
  });
  if (positionals.length !== 1) throw new Error("usage: node scripts/engine-chat.mjs <packageDir> [--messages JSON] [--max-tokens N] [--variant V] [--eos]");
  const messages = values.messages === undefined ? DEFAULT_MESSAGES : JSON.parse(values.messages);
  const maxTokens = Number(values["max-tokens"]);
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new Error(`--max-tokens must be a positive integer, got ${values["max-tokens"]}`);

  const { installNodeGPU } = await import("../test/support/node-gpu.ts");
  const { fileFetch } = await import("../test/support/file-fetch.ts");
  const { createEngine } = await import("../src/client/index.ts");
  const gpu = await installNodeGPU();
  engine = await createEngine({
    model: pathToFileURL(resolve(positionals[0]) + "/").href,
    variant: values.variant,
    target: "webgpu", // also on a software adapter (lavapipe): the tests compare the WebGPU build with native
    worker: "inline",
    runtime: { fetch: fileFetch, gpu, logger: (m) => console.error(`[tvmjs] ${m}`) },
  });
  const request = { messages, temperature: 0, max_tokens: maxTokens, ignore_eos: !values.eos, return_token_ids: true };
  const r = await engine.chat.completions.create(request);
  const stream = await engine.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
  let streamText = "";
  const streamIds = [];
  let streamUsage = null;
  for await (const c of stream) {
    streamText += c.choices[0]?.delta?.content ?? "";
    streamIds.push(...(c.choices[0]?.token_ids ?? []));
    if (c.usage) streamUsage = c.usage;
  }
  console.log(
    JSON.stringify({
      runtime: "node-dawn",
      model: engine.model,
      prompt_token_ids: r.prompt_token_ids,
      token_ids: r.choices[0].token_ids,
      text: r.choices[0].message.content,
      finish_reason: r.choices[0].finish_reason,
      usage: r.usage,
      stream_text: streamText,
      stream_token_ids: streamIds,
      stream_usage: streamUsage,
    }),
  );
} catch (err) {
  console.error(err?.stack ?? String(err));
  console.log(JSON.stringify({ runtime: "node-dawn", error: String(err?.message ?? err), errorName: err?.name ?? null }));
  process.exitCode = 2;
} finally {
  await engine?.unload();
}
