// EngineCore end to end on Dawn WebGPU (lavapipe) with a real package (default
// dist/tiny-llama-trained/q4f32_1, or HEARTH_LLM_PACKAGE): greedy parity with DecoderModel.greedy and
// with hearth.native (Python, when .venv exists), seeded sampling, streaming == non-stream, KV prefix
// reuse == a fresh run (including rollbacks), stop strings, EOS, abort/interrupt, context window errors
// and truncation, request validation, the request queue. FAILS (does not skip) without the package.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { DecoderModel } from "../src/decoder/model.js";
import { ContextWindowExceededError } from "../src/decoder/kv-cache.js";
import { EngineCore } from "../src/service/engine-core.js";
import { AbortError, EngineNotLoadedError, InvalidRequestError } from "../src/errors/index.js";
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatMessage, CompletionChunk } from "../src/service/openai.js";
import { installNodeGPU } from "./support/node-gpu.js";
import { fileFetch } from "./support/file-fetch.js";
import { CHAT, nativeGreedy, PACKAGE_URL, requirePackage } from "./support/engine-fixtures.js";

let gpu: GPU;
let core: EngineCore;

before(async () => {
  requirePackage();
  gpu = await installNodeGPU();
  core = new EngineCore({ fetch: fileFetch, gpu, logger: () => {} });
  // Dawn's lavapipe is a software adapter: without target "webgpu" the SDK would take the wasm-cpu build.
  await core.load(PACKAGE_URL, { target: "webgpu" });
});

after(async () => {
  await core?.unload();
});

const greedy = (extra: Partial<ChatCompletionRequest> = {}): ChatCompletionRequest => ({
  messages: CHAT,
  temperature: 0,
  max_tokens: 24,
  ignore_eos: true,
  return_token_ids: true,
  ...extra,
});

const tokenIds = (r: ChatCompletion): number[] => r.choices[0]?.token_ids ?? [];

async function streamed(request: ChatCompletionRequest): Promise<{ chunks: ChatCompletionChunk[]; result: ChatCompletion }> {
  const chunks: ChatCompletionChunk[] = [];
  const result = await core.chatCompletion({ ...request, stream: true }, { onChunk: (c) => chunks.push(c) });
  return { chunks, result };
}

test("load: model info, progress events from the loader and the engine", async () => {
  const phases: string[] = [];
  const c2 = new EngineCore({ fetch: fileFetch, gpu, logger: () => {} });
  try {
    const info = await c2.load(PACKAGE_URL, { target: "webgpu", onProgress: (e) => phases.push(e.phase), modelId: "tiny" });
    assert.equal(info.model, "tiny");
    assert.equal(info.hasChatTemplate, true);
    assert.ok(info.maxSequenceLength > 0 && info.vocabSize > 0);
    assert.equal(phases.at(-1), "engine-ready");
    assert.ok(phases.includes("tokenizer"));
    const stats = c2.stats();
    assert.equal(stats.loaded, true);
    assert.equal(stats.kvCachedTokens, 0);
  } finally {
    await c2.unload();
  }
  assert.equal(c2.stats().loaded, false);
  await assert.rejects(c2.chatCompletion(greedy()), EngineNotLoadedError);
});

test("greedy chat: tokens equal DecoderModel.greedy and hearth.native (Python) on the same prompt ids", async (t) => {
  await core.resetChat();
  const r = await core.chatCompletion(greedy());
  const prompt = r.prompt_token_ids ?? [];
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices[0]?.finish_reason, "length");
  assert.equal(tokenIds(r).length, 24);
  assert.equal(r.usage.prompt_tokens, prompt.length);
  assert.equal(r.usage.completion_tokens, 24);
  assert.equal(r.usage.total_tokens, prompt.length + 24);
  assert.equal(r.usage.prompt_tokens_details.cached_tokens, 0);
  assert.ok(r.usage.time_to_first_token_ms > 0 && r.usage.decode_tokens_per_s > 0 && r.usage.prefill_tokens_per_s > 0);
  t.diagnostic(
    `ttft ${r.usage.time_to_first_token_ms.toFixed(1)} ms, prefill ${r.usage.prefill_tokens_per_s.toFixed(0)} tok/s (${prompt.length} tokens), ` +
      `decode ${r.usage.decode_tokens_per_s.toFixed(1)} tok/s`,
  );
  // The prompt is the chat template's rendering, tokenized without extra special tokens.
  assert.ok(prompt.length > 10);

  const ref = await DecoderModel.load(PACKAGE_URL, { gpu, target: "webgpu", fetch: fileFetch, logger: () => {} });
  try {
    assert.deepEqual(tokenIds(r), await ref.greedy(prompt, 24));
  } finally {
    await ref.dispose();
  }
  const native = nativeGreedy(prompt, 24);
  if (native === null) t.diagnostic("no .venv: the hearth.native comparison is skipped");
  else assert.deepEqual(tokenIds(r), native, "engine greedy differs from hearth.native");
});

test("seeded sampling is reproducible: same seed -> same text; another seed -> different", async () => {
  const sampled = (seed: number) => core.chatCompletion(greedy({ temperature: 1, top_p: 0.95, top_k: 50, seed, max_tokens: 32 }));
  const a = await sampled(1234);
  const b = await sampled(1234);
  const c = await sampled(4321);
  assert.deepEqual(tokenIds(a), tokenIds(b));
  assert.equal(a.choices[0]?.message.content, b.choices[0]?.message.content);
  assert.notDeepEqual(tokenIds(a), tokenIds(c));
  // and it is not greedy
  assert.notDeepEqual(tokenIds(a), tokenIds(await core.chatCompletion(greedy({ max_tokens: 32 }))));
});

test("streaming chunks concatenate to the non-stream result (OpenAI chunk shape)", async () => {
  for (const extra of [{}, { temperature: 0.9, seed: 7, max_tokens: 40 }]) {
    const whole = await core.chatCompletion(greedy(extra));
    const { chunks, result } = await streamed(greedy({ ...extra, stream_options: { include_usage: true } }));
    const first = chunks[0] as ChatCompletionChunk;
    assert.deepEqual(first.choices[0]?.delta, { role: "assistant", content: "" });
    assert.deepEqual(first.prompt_token_ids, whole.prompt_token_ids);
    assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === first.id && c.created === first.created));
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    assert.equal(text, whole.choices[0]?.message.content);
    assert.equal(text, result.choices[0]?.message.content);
    assert.deepEqual(
      chunks.flatMap((c) => c.choices[0]?.token_ids ?? []),
      tokenIds(whole),
    );
    // every content chunk carries text; the finish chunk an empty delta; the usage chunk no choices
    const body = chunks.slice(1, -2);
    assert.ok(body.every((c) => (c.choices[0]?.delta.content ?? "").length > 0 && c.choices[0]?.finish_reason === null));
    const fin = chunks.at(-2) as ChatCompletionChunk;
    assert.deepEqual(fin.choices[0]?.delta, {});
    assert.equal(fin.choices[0]?.finish_reason, "length");
    const usage = chunks.at(-1) as ChatCompletionChunk;
    assert.deepEqual(usage.choices, []);
    assert.equal(usage.usage?.completion_tokens, whole.usage.completion_tokens);
    assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));
  }
  // without include_usage, chunks have no usage key at all
  const { chunks } = await streamed(greedy({ max_tokens: 3 }));
  assert.ok(chunks.every((c) => !("usage" in c)));
});

test("KV prefix reuse gives the same tokens as a fresh run (next turn, edited history, regenerate)", async () => {
  await core.resetChat();
  const turn1 = await core.chatCompletion(greedy({ ignore_eos: false, max_tokens: 20 }));
  const reply = turn1.choices[0]?.message.content ?? "";
  const conversations: { name: string; messages: ChatMessage[]; minCached: number }[] = [
    {
      name: "next turn",
      messages: [...CHAT, { role: "assistant", content: reply }, { role: "user", content: "And how do I write one?" }],
      minCached: (turn1.prompt_token_ids?.length ?? 0) - 1,
    },
    // Diverges inside the cache: the cache is rolled back (kv_state_popn) to the common prefix.
    { name: "edited first message", messages: [{ role: "system", content: "You answer questions about files." }, ...CHAT.slice(1)], minCached: 3 },
    // The same prompt again: the cached reply tokens are popped.
    { name: "regenerate", messages: [{ role: "system", content: "You answer questions about files." }, ...CHAT.slice(1)], minCached: 10 },
  ];
  for (const conv of conversations) {
    const reused = await core.chatCompletion(greedy({ messages: conv.messages }));
    const cached = reused.usage.prompt_tokens_details.cached_tokens;
    assert.ok(cached >= conv.minCached && cached < reused.usage.prompt_tokens, `${conv.name}: cached ${cached} of ${reused.usage.prompt_tokens}`);
    assert.equal(core.stats().kvCachedTokens, reused.usage.prompt_tokens + 23);
    await core.resetChat();
    const fresh = await core.chatCompletion(greedy({ messages: conv.messages }));
    assert.equal(fresh.usage.prompt_tokens_details.cached_tokens, 0);
    assert.deepEqual(tokenIds(reused), tokenIds(fresh), `${conv.name}: reused KV gave different tokens`);
  }
  // With kvReuse off every request prefills its whole prompt.
  const noReuse = new EngineCore({ fetch: fileFetch, gpu, logger: () => {} });
  try {
    await noReuse.load(PACKAGE_URL, { target: "webgpu", kvReuse: false });
    await noReuse.chatCompletion(greedy());
    const again = await noReuse.chatCompletion(greedy());
    assert.equal(again.usage.prompt_tokens_details.cached_tokens, 0);
  } finally {
    await noReuse.unload();
  }
});

test("stop strings end generation before the stop text; EOS (forced by logit_bias) ends with 'stop'", async () => {
  const full = await core.chatCompletion(greedy({ max_tokens: 32 }));
  const text = full.choices[0]?.message.content ?? "";
  // a stop string from the middle of the greedy text
  const cut = Math.floor(text.length / 2);
  const stop = text.slice(cut, cut + 3);
  assert.equal(stop.length, 3);
  const stopped = await core.chatCompletion(greedy({ max_tokens: 32, stop }));
  assert.equal(stopped.choices[0]?.finish_reason, "stop");
  assert.equal(stopped.choices[0]?.message.content, text.slice(0, text.indexOf(stop)));
  // the streamed version agrees and never emitted part of the stop string
  const { chunks } = await streamed(greedy({ max_tokens: 32, stop }));
  assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? "").join(""), stopped.choices[0]?.message.content);

  const eos = core.model?.eosTokenIds[0] ?? -1;
  const ended = await core.chatCompletion({ messages: CHAT, temperature: 0, logit_bias: { [eos]: 100 }, max_tokens: 10 });
  assert.equal(ended.choices[0]?.finish_reason, "stop");
  assert.equal(ended.choices[0]?.message.content, "");
  assert.equal(ended.usage.completion_tokens, 1);
  // ignore_eos keeps going
  const ignored = await core.chatCompletion({ messages: CHAT, temperature: 0, logit_bias: { [eos]: 100 }, max_tokens: 5, ignore_eos: true });
  assert.equal(ignored.choices[0]?.finish_reason, "length");
  assert.equal(ignored.usage.completion_tokens, 5);
});

test("an AbortSignal stops a running request within one token (AbortError); queued ones never start", async () => {
  const ac = new AbortController();
  let seen = 0;
  const running = core.chatCompletion(greedy({ max_tokens: 200, stream: true }), {
    signal: ac.signal,
    onChunk: () => {
      if (++seen === 4) ac.abort();
    },
  });
  const queued = new AbortController();
  const second = assert.rejects(core.chatCompletion(greedy({ max_tokens: 5 }), { signal: queued.signal }), AbortError);
  queued.abort();
  await assert.rejects(running, AbortError);
  await second;
  const last = core.stats().lastRequest;
  assert.ok(last?.stop !== null && last?.stop !== undefined);
  assert.equal(last.stop.by, "abort");
  assert.ok(last.stop.endedAtToken - last.stop.atToken <= 1, JSON.stringify(last.stop));
  assert.ok(last.completion_tokens < 10, `generated ${last.completion_tokens} tokens after an abort at ~3`);
  // the engine is still usable, and the cache mirror is consistent (reuse == fresh)
  const after1 = await core.chatCompletion(greedy());
  await core.resetChat();
  assert.deepEqual(tokenIds(after1), tokenIds(await core.chatCompletion(greedy())));
  // already aborted: rejected before queueing
  await assert.rejects(core.chatCompletion(greedy(), { signal: AbortSignal.abort() }), AbortError);
});

test("interrupt() ends the running request gracefully: finish_reason 'abort', partial text", async () => {
  const whole = await core.chatCompletion(greedy({ max_tokens: 40 }));
  let seen = 0;
  const chunks: ChatCompletionChunk[] = [];
  const r = await core.chatCompletion(greedy({ max_tokens: 40, stream: true }), {
    onChunk: (c) => {
      chunks.push(c);
      if (++seen === 4) core.interrupt();
    },
  });
  assert.equal(r.choices[0]?.finish_reason, "abort");
  assert.ok(r.usage.completion_tokens <= 5, `${r.usage.completion_tokens} tokens`);
  assert.ok((whole.choices[0]?.message.content ?? "").startsWith(r.choices[0]?.message.content ?? "?"));
  assert.equal(chunks.at(-1)?.choices[0]?.finish_reason, "abort");
  assert.equal(core.stats().lastRequest?.stop?.by, "interrupt");
  core.interrupt(); // nothing running: a no-op
});

test("context window: ContextWindowExceededError by default; 'truncate' drops the oldest turns", async () => {
  const window = core.model?.maxSequenceLength ?? 0;
  const long: ChatMessage[] = [{ role: "system", content: "Be brief." }];
  for (let i = 0; i < 12; i++) {
    long.push({ role: "user", content: `Question ${i}: what does the os.path module offer for joining paths?` });
    long.push({ role: "assistant", content: `Answer ${i}: os.path.join joins path components with the separator.` });
  }
  long.push({ role: "user", content: "And pathlib?" });
  await assert.rejects(core.chatCompletion({ messages: long, max_tokens: 4 }), (err: unknown) => {
    assert.ok(err instanceof ContextWindowExceededError);
    assert.equal(err.maxTotalSeqLen, window);
    assert.ok(err.appendLen > window);
    assert.match(err.message, /context window/);
    return true;
  });
  const r = await core.chatCompletion({ messages: long, max_tokens: 8, temperature: 0, context_overflow: "truncate" });
  assert.ok(r.usage.prompt_tokens + 8 <= window, `${r.usage.prompt_tokens} prompt tokens`);
  const stats = core.stats().lastRequest;
  assert.ok((stats?.truncated_messages ?? 0) >= 2);
  // a single message that cannot fit fails even when truncating
  await assert.rejects(
    core.chatCompletion({ messages: [{ role: "user", content: "word ".repeat(window * 2) }], context_overflow: "truncate" }),
    ContextWindowExceededError,
  );
});

test("completions: token-id prompts equal DecoderModel.greedy; default max_tokens 16; streaming", async () => {
  const ids = Array.from({ length: 30 }, (_, i) => (i * 37 + 5) % 1000);
  const r = await core.completion({ prompt: ids, temperature: 0, ignore_eos: true, return_token_ids: true });
  assert.equal(r.object, "text_completion");
  assert.equal(r.choices[0]?.token_ids?.length, 16);
  const ref = await DecoderModel.load(PACKAGE_URL, { gpu, target: "webgpu", fetch: fileFetch, logger: () => {} });
  try {
    assert.deepEqual(r.choices[0]?.token_ids, await ref.greedy(ids, 16));
  } finally {
    await ref.dispose();
  }
  const chunks: CompletionChunk[] = [];
  const s = await core.completion(
    { prompt: "import os\n", temperature: 0, max_tokens: 12, ignore_eos: true, stream: true },
    { onChunk: (c) => chunks.push(c) },
  );
  assert.equal(chunks.map((c) => c.choices[0]?.text ?? "").join(""), s.choices[0]?.text);
  assert.equal(chunks.at(-1)?.choices[0]?.finish_reason, "length");
  await assert.rejects(core.completion({ prompt: [1, 999999] }), (e: unknown) => e instanceof InvalidRequestError && e.param === "prompt[1]");
});

test("chat logprobs: OpenAI shape; the greedy token is the most likely one", async () => {
  const r = await core.chatCompletion(greedy({ max_tokens: 6, logprobs: true, top_logprobs: 3 }));
  const content = r.choices[0]?.logprobs?.content ?? [];
  assert.equal(content.length, 6);
  for (const entry of content) {
    assert.equal(typeof entry.token, "string");
    assert.ok(entry.logprob <= 0);
    assert.equal(entry.top_logprobs.length, 3);
    assert.equal(entry.top_logprobs[0]?.logprob, entry.logprob);
    assert.ok(entry.bytes === null || Array.isArray(entry.bytes));
  }
  assert.equal((await core.chatCompletion(greedy({ max_tokens: 2 }))).choices[0]?.logprobs, null);
});

test("malformed requests are refused with InvalidRequestError before any GPU work", async () => {
  const before = core.stats().decoder?.decode.calls;
  const cases: [unknown, string | null, string][] = [
    [{ messages: [{ role: "bot", content: "x" }] }, "messages[0].role", "invalid_type"],
    [{ messages: [{ role: "user" }] }, "messages[0].content", "missing_parameter"],
    [{ messages: [{ role: "user", content: 5 }] }, "messages[0].content", "invalid_type"],
    [{ messages: [{ role: "user", content: "x", contents: "y" }] }, "messages[0].contents", "unknown_parameter"],
    [{ messages: "hello" }, "messages", "invalid_type"],
    [{ messages: [] }, "messages", "invalid_value"],
    [{}, "messages", "missing_parameter"],
    [[], null, "invalid_type"],
    [{ messages: CHAT, temperature: "hot" }, "temperature", "invalid_type"],
    [{ messages: CHAT, temperature: 9 }, "temperature", "invalid_value"],
    [{ messages: CHAT, max_token: 5 }, "max_token", "unknown_parameter"],
    [{ messages: CHAT, max_tokens: 0 }, "max_tokens", "invalid_value"],
    [{ messages: CHAT, n: 2 }, "n", "invalid_type"],
    [{ messages: CHAT, functions: [{ name: "f" }] }, "functions", "unsupported_parameter"],
    [{ messages: CHAT, tools: [{ type: "function" }] }, "tools[0].function", "missing_parameter"],
    [{ messages: CHAT, stop: [""] }, "stop[0]", "invalid_value"],
    [{ messages: CHAT, logit_bias: { x: 1 } }, "logit_bias.x", "invalid_value"],
    [{ messages: CHAT, logit_bias: { "999999": 1 } }, "logit_bias.999999", "invalid_value"],
    [{ messages: CHAT, top_logprobs: 2 }, "top_logprobs", "invalid_value"],
    [{ messages: CHAT, stream_options: { include_usage: true } }, "stream_options", "invalid_value"],
  ];
  for (const [request, param, code] of cases) {
    await assert.rejects(core.chatCompletion(request as ChatCompletionRequest), (err: unknown) => {
      assert.ok(err instanceof InvalidRequestError, `${JSON.stringify(request)}: ${String(err)}`);
      assert.equal(err.param, param, JSON.stringify(request));
      assert.equal(err.code, code, `${JSON.stringify(request)}: ${err.message}`);
      return true;
    });
  }
  assert.equal(core.stats().decoder?.decode.calls, before, "a refused request ran the model");
});

test("requests queue: concurrent calls run one at a time, in order, with the same results", async () => {
  await core.resetChat();
  const sequential = [];
  for (const n of [5, 7, 3]) sequential.push(tokenIds(await core.chatCompletion(greedy({ max_tokens: n }))));
  const concurrent = await Promise.all([5, 7, 3].map((n) => core.chatCompletion(greedy({ max_tokens: n }))));
  assert.deepEqual(concurrent.map(tokenIds), sequential);
  assert.ok(concurrent.every((r) => r.usage.prompt_tokens_details.cached_tokens > 0));
});
