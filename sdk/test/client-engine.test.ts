// createEngine() with the "inline" transport (an in-process MessageChannel: the same messages and
// validation as a Worker) on Dawn WebGPU: OpenAI-shaped results, async-iterator streams, typed errors,
// abort / break / interrupt, completions, unload. Needs the compiled package (fails without it).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import {
  AbortError,
  ContextWindowExceededError,
  createEngine,
  InvalidRequestError,
  WorkerError,
  type ChatCompletionChunk,
  type Engine,
} from "../src/client/index.js";
import { installNodeGPU } from "./support/node-gpu.js";
import { fileFetch } from "./support/file-fetch.js";
import { CHAT, PACKAGE_URL, requirePackage } from "./support/engine-fixtures.js";

let gpu: GPU;
let engine: Engine;

before(async () => {
  requirePackage();
  gpu = await installNodeGPU();
  const phases: string[] = [];
  engine = await createEngine({
    model: PACKAGE_URL,
    // Dawn's lavapipe is a software adapter: without this the SDK would take the wasm-cpu build.
    target: "webgpu",
    worker: "inline",
    runtime: { fetch: fileFetch, gpu, logger: () => {} },
    onProgress: (e) => phases.push(e.phase),
  });
  assert.equal(phases.at(-1), "engine-ready");
});

after(async () => {
  await engine?.unload();
});

const greedy = { messages: CHAT, temperature: 0, max_tokens: 20, ignore_eos: true, return_token_ids: true } as const;

test("non-stream chat: an OpenAI ChatCompletion", async () => {
  const r = await engine.chat.completions.create(greedy);
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.object, "chat.completion");
  assert.equal(typeof r.created, "number");
  assert.equal(r.model, engine.model.model);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0]?.message.role, "assistant");
  assert.equal(r.choices[0]?.finish_reason, "length");
  assert.equal(r.choices[0]?.token_ids?.length, 20);
  assert.equal(r.usage.completion_tokens, 20);
});

test("stream: for await over OpenAI chunks; they concatenate to the non-stream result", async () => {
  const whole = await engine.chat.completions.create(greedy);
  const stream = await engine.chat.completions.create({ ...greedy, stream: true, stream_options: { include_usage: true } });
  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? "").join(""), whole.choices[0]?.message.content);
  assert.deepEqual(
    chunks.flatMap((c) => c.choices[0]?.token_ids ?? []),
    whole.choices[0]?.token_ids,
  );
  assert.equal(chunks.at(-1)?.usage?.completion_tokens, 20);
  const final = await stream.finalResponse();
  assert.equal(final.choices[0]?.message.content, whole.choices[0]?.message.content);
  assert.throws(() => stream[Symbol.asyncIterator](), /only once/);
});

test("typed errors survive the boundary: a bad request rejects create() itself", async () => {
  await assert.rejects(
    engine.chat.completions.create({ messages: [{ role: "wizard", content: "x" }] } as never),
    (err: unknown) => err instanceof InvalidRequestError && err.param === "messages[0].role" && err.code === "invalid_type",
  );
  await assert.rejects(
    engine.chat.completions.create({ messages: [{ role: "user", content: "x" }], stream: true, temperature: -1 }),
    (err: unknown) => err instanceof InvalidRequestError && err.param === "temperature",
  );
  await assert.rejects(
    engine.chat.completions.create({ messages: [{ role: "user", content: "lorem ipsum ".repeat(400) }] }),
    (err: unknown) => err instanceof ContextWindowExceededError && err.maxTotalSeqLen === engine.model.maxSequenceLength,
  );
  // The same error from a stream that was accepted first (context checks run when the request starts).
  const s = await engine.chat.completions.create({ messages: [{ role: "user", content: "lorem ipsum ".repeat(400) }], stream: true });
  await assert.rejects(async () => {
    for await (const _ of s) {
      // nothing arrives
    }
  }, ContextWindowExceededError);
});

test("AbortSignal mid-stream: the iterator throws AbortError; the engine stopped within one token", async () => {
  const previous = await lastId();
  const ac = new AbortController();
  const stream = await engine.chat.completions.create({ ...greedy, max_tokens: 200, stream: true }, { signal: ac.signal });
  let seen = 0;
  await assert.rejects(async () => {
    for await (const _ of stream) if (++seen === 3) ac.abort();
  }, AbortError);
  assert.equal(seen, 3, "no chunk is delivered after abort()");
  const stop = await waitForStop(previous);
  assert.equal(stop.by, "abort");
  assert.ok(stop.endedAtToken - stop.atToken <= 1, JSON.stringify(stop));
  // non-stream request with a signal
  const ac2 = new AbortController();
  const p = engine.chat.completions.create({ ...greedy, max_tokens: 200 }, { signal: ac2.signal });
  setTimeout(() => ac2.abort(), 50);
  await assert.rejects(p, AbortError);
  await assert.rejects(engine.chat.completions.create(greedy, { signal: AbortSignal.abort() }), AbortError);
});

/** The id of the engine's last finished request (to tell a new record from an old one). */
async function lastId(): Promise<string | null> {
  return (await engine.stats()).lastRequest?.id ?? null;
}

/** The engine's record of a stop request, once the aborted request (newer than `previous`) has finished there. */
async function waitForStop(previous: string | null) {
  for (let i = 0; i < 200; i++) {
    const last = (await engine.stats()).lastRequest;
    if (last?.stop && last.id !== previous) return last.stop;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("the engine never recorded the stop");
}

test("breaking out of for-await cancels the request; the engine moves on", async () => {
  const previous = await lastId();
  const stream = await engine.chat.completions.create({ ...greedy, max_tokens: 200, stream: true });
  let seen = 0;
  for await (const _ of stream) if (++seen === 2) break;
  const stop = await waitForStop(previous);
  assert.ok(stop.endedAtToken <= 4, JSON.stringify(stop));
  const next = await engine.chat.completions.create({ ...greedy, max_tokens: 3 });
  assert.equal(next.usage.completion_tokens, 3);
});

test("interrupt(): the running stream ends normally with finish_reason 'abort'", async () => {
  const stream = await engine.chat.completions.create({ ...greedy, max_tokens: 200, stream: true });
  const chunks: ChatCompletionChunk[] = [];
  for await (const c of stream) {
    chunks.push(c);
    if (chunks.length === 3) await engine.interrupt();
  }
  assert.equal(chunks.at(-1)?.choices[0]?.finish_reason, "abort");
  assert.ok(chunks.length < 10);
  assert.equal((await stream.finalResponse()).choices[0]?.finish_reason, "abort");
});

test("completions.create: non-stream and stream", async () => {
  const r = await engine.completions.create({ prompt: "def main():\n", temperature: 0, max_tokens: 10, ignore_eos: true });
  assert.equal(r.object, "text_completion");
  assert.equal(r.usage.completion_tokens, 10);
  const s = await engine.completions.create({ prompt: "def main():\n", temperature: 0, max_tokens: 10, ignore_eos: true, stream: true });
  let text = "";
  for await (const c of s) text += c.choices[0]?.text ?? "";
  assert.equal(text, r.choices[0]?.text);
});

test("resetChat, stats, and concurrent requests from the client are served in order", async () => {
  await engine.resetChat();
  assert.equal((await engine.stats()).kvCachedTokens, 0);
  const results = await Promise.all([4, 6, 2].map((n) => engine.chat.completions.create({ ...greedy, max_tokens: n })));
  assert.deepEqual(
    results.map((r) => r.usage.completion_tokens),
    [4, 6, 2],
  );
  const stats = await engine.stats();
  assert.equal(stats.loaded, true);
  assert.ok(stats.requests > 0);
  assert.ok((stats.decoder?.decode.calls ?? 0) > 0);
});

test("unload: later calls fail with WorkerError (connection closed)", async () => {
  const e2 = await createEngine({ model: PACKAGE_URL, target: "webgpu", worker: "inline", runtime: { fetch: fileFetch, gpu, logger: () => {} } });
  const pending = assert.rejects(
    e2.chat.completions.create({ ...greedy, max_tokens: 100 }),
    (err: unknown) => err instanceof AbortError || err instanceof WorkerError,
  );
  await e2.unload();
  await pending;
  await assert.rejects(e2.chat.completions.create(greedy), WorkerError);
  await e2.unload(); // idempotent
});

test("createEngine: a missing package rejects with the loader's typed error", async () => {
  await assert.rejects(
    createEngine({ model: "file:///nonexistent-hearth-package/", worker: "inline", runtime: { fetch: fileFetch, gpu } }),
    (err: unknown) => err instanceof Error && err.name === "PackageManifestError",
  );
  await assert.rejects(createEngine({ model: "" }), TypeError);
});

test("createEngine: packageOptions.cache that is no cache kind rejects with InvalidRequestError across the boundary", async () => {
  await assert.rejects(
    createEngine({ model: PACKAGE_URL, target: "webgpu", worker: "inline", packageOptions: { cache: "bogus" }, runtime: { fetch: fileFetch, gpu } }),
    (err: unknown) => {
      assert.ok(err instanceof InvalidRequestError, String(err));
      assert.equal(err.param, "packageOptions.cache");
      assert.match(err.message, /"bogus" is not a cache kind; use "cache-storage", "indexeddb", "none", or an ArtifactStore object/);
      return true;
    },
  );
});
