// WebLLM interop: the @mlc-ai/web-llm npm package's own engine (MLCEngine, its bundled tvmjs runtime)
// loads a Hearth package given as a custom model record (appConfig.model_list: model, model_id,
// model_lib = Hearth's own WebGPU wasm) and generates the same greedy tokens as Hearth's SDK on the same
// prompt, both on Dawn WebGPU. Default package: dist/tiny-qwen2-bpe/q4f16_1 (Qwen2: the `c_attn` names,
// a ChatML conv_template; f16, so the adapter needs shader-f16: lavapipe 25 has it), or
// HEARTH_WEBLLM_PACKAGE. The package must exist: this test FAILS (does not skip) without it; build it with
// `.venv/bin/python scripts/build_packages.py --tests`.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type * as WebLLM from "@mlc-ai/web-llm";
import { DecoderModel } from "../src/engine/index.js";
import { ChatTemplate, loadTokenizer, type ChatMessage, type Tokenizer } from "../src/tokenize/index.js";
import { installNodeGPU } from "./support/node-gpu.js";
import { fileFetch } from "./support/file-fetch.js";
import { asBrowser, importWebLLM, servePackage, type PackageServer } from "./support/webllm-node.js";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const PACKAGE = resolve(process.env["HEARTH_WEBLLM_PACKAGE"] ?? join(REPO, "dist/tiny-qwen2-bpe/q4f16_1"));
const MODEL_ID = "hearth-interop";
const NEW_TOKENS = 16;

// MLC's "LM" conversation template: the prompt as it is, no roles.
const PLAIN_LM = {
  system_template: "{system_message}",
  system_message: "",
  roles: { user: "", assistant: "" },
  seps: [""],
  role_content_sep: "",
  role_empty_sep: "",
  stop_str: [],
  stop_token_ids: [],
};

interface ChatConfigJson {
  model_lib: Record<string, string>;
  quantization: string;
  conv_template: { stop_token_ids: number[] } | null;
  params: { name: string }[];
}

let config: ChatConfigJson;
let server: PackageServer;
let webllm: typeof WebLLM;
let engine: WebLLM.MLCEngine;
let hearth: DecoderModel;
let tokenizer: Tokenizer;

before(async () => {
  assert.ok(
    existsSync(join(PACKAGE, "hearth-manifest.json")),
    `no compiled package at ${PACKAGE}: build it with \`.venv/bin/python scripts/build_packages.py --tests\` (or set HEARTH_WEBLLM_PACKAGE)`,
  );
  config = JSON.parse(readFileSync(join(PACKAGE, "mlc-chat-config.json"), "utf8")) as ChatConfigJson;
  const wasm = config.model_lib["webgpu"];
  assert.ok(wasm !== undefined, `${PACKAGE} has no webgpu library (model_lib: ${JSON.stringify(config.model_lib)})`);
  server = await servePackage(PACKAGE, MODEL_ID, join(PACKAGE, wasm));
  webllm = await importWebLLM(server.origin);
  const record: WebLLM.ModelRecord = {
    model: server.modelUrl,
    model_id: MODEL_ID,
    model_lib: server.libUrl,
    ...(config.quantization.includes("f16") ? { required_features: ["shader-f16"] } : {}),
    // WebLLM cannot even complete text without a conv_template (it reads stop tokens from it); a package
    // without one (not ChatML, see compile/hearth/build/conv_template.py) gets MLC's plain "LM" template.
    ...(config.conv_template === null ? { overrides: { conv_template: PLAIN_LM } } : {}),
  };
  engine = await asBrowser(() =>
    webllm.CreateMLCEngine(MODEL_ID, { appConfig: { model_list: [record] }, logLevel: "ERROR" }),
  );

  const gpu = await installNodeGPU();
  // target "webgpu": the SDK would take the wasm-cpu build on a software adapter such as lavapipe.
  hearth = await DecoderModel.load(pathToFileURL(PACKAGE).href + "/", { gpu, fetch: fileFetch, logger: () => {}, target: "webgpu" });
  tokenizer = await loadTokenizer({
    tokenizerJson: readFileSync(join(PACKAGE, "tokenizer.json"), "utf8"),
    tokenizerConfig: readFileSync(join(PACKAGE, "tokenizer_config.json"), "utf8"),
  });
});

after(async () => {
  await engine?.unload();
  await hearth?.dispose();
  await server?.close();
});

/** Token texts as WebLLM reports them (logprobs), for ids Hearth generated. */
function tokenTexts(ids: readonly number[]): string[] {
  return ids.map((id) => tokenizer.decode([id]));
}

test("WebLLM read the package's files by their names: config, tokenizer, tensor-cache.json, shards, Hearth's wasm", () => {
  const files = server.requests.map((p) => p.split("/").pop());
  for (const f of ["mlc-chat-config.json", "tokenizer.json", "tensor-cache.json", "params_shard_0.bin"]) {
    assert.ok(files.includes(f), `WebLLM never asked for ${f}; it asked for ${JSON.stringify(server.requests)}`);
  }
  assert.ok(server.requests.some((p) => p.startsWith("/lib/")), "WebLLM did not fetch the model library");
  assert.equal(hearth.loadInfo.deviceKind, "webgpu", "Hearth's SDK must run the same WebGPU build");
});

test("text completion: WebLLM's greedy tokens equal Hearth's on the same prompt", async () => {
  const prompt = "The list is a mutable sequence, and the tuple";
  const ids = Array.from(tokenizer.encode(prompt, { addSpecialTokens: false }));
  await hearth.reset();
  const expected = await hearth.greedy(ids, NEW_TOKENS);
  const out = await engine.completions.create({
    prompt,
    max_tokens: NEW_TOKENS,
    temperature: 0,
    top_p: 1,
    frequency_penalty: 0,
    presence_penalty: 0,
    logprobs: true,
    top_logprobs: 1,
  });
  const choice = out.choices[0];
  assert.ok(choice !== undefined);
  assert.equal(out.usage?.prompt_tokens, ids.length, "WebLLM tokenized the prompt differently");
  // WebLLM stops at the conv_template's stop tokens; Hearth's greedy does not, so compare up to there.
  const stops = new Set(config.conv_template?.stop_token_ids ?? []);
  const firstStop = expected.findIndex((t) => stops.has(t));
  const upTo = firstStop < 0 ? expected : expected.slice(0, firstStop);
  const got = (choice.logprobs?.content ?? []).map((c: { token: string }) => c.token);
  assert.deepEqual(got, tokenTexts(upTo));
  assert.equal(choice.text, tokenizer.decode(upTo));
  assert.equal(choice.finish_reason, firstStop < 0 ? "length" : "stop");
  assert.ok(new Set(upTo).size > 1, "the continuation should not be one repeated token (a weak check otherwise)");
  assert.ok(upTo.length >= 4, `too few tokens to compare (${upTo.length}): pick a prompt that does not stop at once`);
});

test("chat completion: WebLLM's conv_template prompt and greedy reply equal Hearth's (Jinja chat template)", async () => {
  assert.ok(
    config.conv_template !== null,
    `${PACKAGE} has no conv_template (its chat template is not ChatML), so WebLLM cannot chat with it ` +
      "unless the app passes overrides.conv_template (docs/webllm.md); use a ChatML package for this test",
  );
  const messages: ChatMessage[] = [
    { role: "system", content: "You are a terse assistant." },
    { role: "user", content: "What is a dictionary?" },
    { role: "assistant", content: "A mapping." },
    { role: "user", content: "And a list?" },
  ];
  const template = await ChatTemplate.fromSources({
    tokenizerConfig: JSON.parse(readFileSync(join(PACKAGE, "tokenizer_config.json"), "utf8")) as Record<string, unknown>,
    chatConfig: config as unknown as Record<string, unknown>,
  });
  const ids = Array.from(tokenizer.encode(template.render(messages, { add_generation_prompt: true }), { addSpecialTokens: false }));
  await hearth.reset();
  const expected = await hearth.greedy(ids, NEW_TOKENS);
  const out = await engine.chat.completions.create({
    messages,
    max_tokens: NEW_TOKENS,
    temperature: 0,
    top_p: 1,
    frequency_penalty: 0,
    presence_penalty: 0,
    ignore_eos: true,
    logprobs: true,
    top_logprobs: 1,
  });
  const choice = out.choices[0];
  assert.ok(choice !== undefined);
  assert.equal(out.usage?.prompt_tokens, ids.length, "WebLLM's conv_template prompt has a different length from the Jinja one");
  assert.deepEqual((choice.logprobs?.content ?? []).map((c: { token: string }) => c.token), tokenTexts(expected));
  assert.ok(new Set(expected).size > 1, "the reply should not be one repeated token (a weak check otherwise)");
});
