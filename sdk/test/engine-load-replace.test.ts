// EngineCore.load over a loaded model, on Dawn WebGPU (lavapipe) with the real tiny package (issue 19
// item 9): a load that fails (missing package, corrupt shard, bad option, abort) leaves the working
// model loaded and answering the same tokens; a good load replaces it; a load that runs out of memory
// beside it frees it and retries once, and says so when that fails too. A failed loadEmbedder keeps the
// loaded text encoder (all-MiniLM-L6-v2 q0f32's CPU build). `cache` options that are not a cache kind or
// an ArtifactStore are refused with InvalidRequestError naming the field and the values.
// FAILS (does not skip) without the package.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { EngineCore, mayBeOutOfMemory } from "../src/service/engine-core.js";
import { EngineNotLoadedError, InvalidRequestError } from "../src/errors/index.js";
import { IntegrityError } from "../src/load/integrity.js";
import { DecoderModel } from "../src/decoder/model.js";
import { loadPackage } from "../src/load/package.js";
import type { FetchLike } from "../src/runtime/tvm.js";
import type { ChatCompletionRequest } from "../src/service/openai.js";
import { installNodeGPU } from "./support/node-gpu.js";
import { fileFetch } from "./support/file-fetch.js";
import { CHAT, PACKAGE, PACKAGE_URL, REPO, requirePackage } from "./support/engine-fixtures.js";

let gpu: GPU;
let core: EngineCore;
let reference: number[];
let scratch: string;

const GREEDY: ChatCompletionRequest = { messages: CHAT, temperature: 0, max_tokens: 12, ignore_eos: true, return_token_ids: true };
// Dawn's lavapipe is a software adapter: without target "webgpu" the SDK would take the wasm-cpu build.
const WEBGPU = { target: "webgpu" } as const;

async function answerTokens(): Promise<number[]> {
  await core.resetChat();
  const r = await core.chatCompletion(GREEDY);
  return r.choices[0]?.token_ids ?? [];
}

/** The first model still loaded, and still giving the same greedy tokens. */
async function assertFirstModelServes(): Promise<void> {
  assert.equal(core.model?.model, "first");
  assert.equal(core.stats().loaded, true);
  assert.deepEqual(await answerTokens(), reference);
}

/** fileFetch, except that the weight shard fails `failures` times as a failed allocation would. */
function allocationFailingFetch(failures: number): FetchLike & { failed: () => number } {
  let failed = 0;
  const f = (async (url, init) => {
    if (url.endsWith("params_shard_0.bin") && failed < failures) {
      failed++;
      throw new RangeError("Array buffer allocation failed");
    }
    return fileFetch(url, init);
  }) as FetchLike & { failed: () => number };
  f.failed = () => failed;
  return f;
}

before(async () => {
  requirePackage();
  gpu = await installNodeGPU();
  scratch = mkdtempSync(join(tmpdir(), "hearth-load-replace-"));
  core = new EngineCore({ fetch: fileFetch, gpu, logger: () => {} });
  await core.load(PACKAGE_URL, { ...WEBGPU, modelId: "first" });
  reference = await answerTokens();
  assert.equal(reference.length, 12);
});

after(async () => {
  await core?.unload();
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

test("a load of a missing package fails; the loaded model keeps answering", async () => {
  const missing = pathToFileURL(join(scratch, "no-such-package")).href + "/";
  await assert.rejects(core.load(missing, WEBGPU), (err: unknown) => err instanceof Error && err.name === "PackageManifestError");
  await assertFirstModelServes();
});

test("a package with a flipped byte in its weights is refused (IntegrityError); the loaded model keeps answering", async () => {
  const copy = join(scratch, "corrupt");
  cpSync(PACKAGE, copy, { recursive: true });
  const shard = join(copy, "params_shard_0.bin");
  const bytes = readFileSync(shard);
  bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 0x01;
  writeFileSync(shard, bytes);
  await assert.rejects(core.load(pathToFileURL(copy).href + "/", { ...WEBGPU, packageOptions: { cache: "none" } }), IntegrityError);
  await assertFirstModelServes();
});

test("packageOptions.cache that is no cache kind: InvalidRequestError naming the field and the allowed values", async () => {
  for (const cache of ["bogus", 42, null, {}, { get: () => undefined }]) {
    await assert.rejects(core.load(PACKAGE_URL, { ...WEBGPU, packageOptions: { cache } }), (err: unknown) => {
      assert.ok(err instanceof InvalidRequestError, `cache ${JSON.stringify(cache)}: ${String(err)}`);
      assert.equal(err.param, "packageOptions.cache");
      assert.match(err.message, /^packageOptions\.cache: /);
      assert.match(err.message, /"cache-storage", "indexeddb", "none", or an ArtifactStore object/);
      return true;
    });
  }
  await assertFirstModelServes();
  // The loaders themselves refuse it too (param "cache"), before fetching anything.
  let fetched = 0;
  const counting: FetchLike = (url, init) => {
    fetched++;
    return fileFetch(url, init);
  };
  await assert.rejects(loadPackage(PACKAGE_URL, { fetch: counting, target: "wasm-cpu", cache: "bogus" as never }), {
    name: "InvalidRequestError",
    param: "cache",
  });
  await assert.rejects(DecoderModel.load(PACKAGE_URL, { fetch: counting, gpu, ...WEBGPU, cache: "bogus" as never }), InvalidRequestError);
  assert.equal(fetched, 0);
  // A fresh engine with nothing loaded refuses it the same way.
  const fresh = new EngineCore({ fetch: fileFetch, gpu, logger: () => {} });
  await assert.rejects(fresh.load(PACKAGE_URL, { ...WEBGPU, packageOptions: { cache: "bogus" } }), InvalidRequestError);
  assert.equal(fresh.model, null);
});

test("an aborted load leaves the loaded model in place", async () => {
  const ac = new AbortController();
  const pending = core.load(PACKAGE_URL, {
    ...WEBGPU,
    signal: ac.signal,
    onProgress: (e) => {
      if (e.phase === "manifest") ac.abort();
    },
  });
  await assert.rejects(pending);
  await assertFirstModelServes();
});

test("a good load replaces the model; the engine answers with the new one", async () => {
  const info = await core.load(PACKAGE_URL, { ...WEBGPU, modelId: "second" });
  assert.equal(info.model, "second");
  assert.equal(core.model?.model, "second");
  assert.deepEqual(await answerTokens(), reference); // the same package: the same tokens
  await core.load(PACKAGE_URL, { ...WEBGPU, modelId: "first" });
  await assertFirstModelServes();
});

test("out of memory beside the loaded model: it is released and the load retried once", async () => {
  const fetch = allocationFailingFetch(1);
  const info = await core.load(PACKAGE_URL, { ...WEBGPU, fetch, modelId: "after-retry", packageOptions: { retries: 0, cache: "none" } });
  assert.equal(fetch.failed(), 1);
  assert.equal(info.model, "after-retry");
  assert.deepEqual(await answerTokens(), reference);
});

test("out of memory even alone: the error says the previous model was unloaded; nothing is loaded", async () => {
  const fetch = allocationFailingFetch(2);
  await assert.rejects(core.load(PACKAGE_URL, { ...WEBGPU, fetch, packageOptions: { retries: 0, cache: "none" } }), (err: unknown) => {
    assert.ok(err instanceof Error);
    assert.match(err.message, /Array buffer allocation failed/);
    assert.match(err.message, /The previously loaded model \(after-retry\) was unloaded to free memory for this load, so no model is loaded now/);
    return true;
  });
  assert.equal(fetch.failed(), 2);
  assert.equal(core.model, null);
  await assert.rejects(core.chatCompletion(GREEDY), EngineNotLoadedError);
  await core.load(PACKAGE_URL, { ...WEBGPU, modelId: "first" });
  await assertFirstModelServes();
});

test("a failed loadEmbedder keeps the loaded text encoder; a good one replaces it", async () => {
  const encoderUrl = pathToFileURL(join(REPO, "dist/all-MiniLM-L6-v2/q0f32")).href + "/";
  // The encoder's CPU build: this test is about the engine's bookkeeping, not about the encoder's kernels.
  const info = await core.loadEmbedder(encoderUrl, { target: "wasm-cpu" });
  const request = { input: ["Someone plays the guitar."] };
  const first = (await core.embeddings(request)).data[0]?.embedding as number[];
  assert.equal(first.length, info.dim);
  const missing = pathToFileURL(join(scratch, "no-such-encoder")).href + "/";
  await assert.rejects(core.loadEmbedder(missing, { target: "wasm-cpu" }), (err: unknown) => err instanceof Error && err.name === "PackageManifestError");
  assert.deepEqual(core.embedder, info);
  assert.deepEqual((await core.embeddings(request)).data[0]?.embedding, first);
  const again = await core.loadEmbedder(encoderUrl, { target: "wasm-cpu" });
  assert.notEqual(again, info);
  assert.deepEqual((await core.embeddings(request)).data[0]?.embedding, first);
  await assertFirstModelServes();
});

test("mayBeOutOfMemory: device loss and allocation failures yes; integrity, HTTP and option errors no", () => {
  const named = (name: string, message: string): Error => Object.assign(new Error(message), { name });
  assert.equal(mayBeOutOfMemory(named("DeviceLostError", "The WebGPU device was lost (destroyed)")), true);
  assert.equal(mayBeOutOfMemory(new RangeError("Array buffer allocation failed")), true);
  assert.equal(mayBeOutOfMemory(new Error("Cannot enlarge memory arrays")), true);
  assert.equal(mayBeOutOfMemory(new IntegrityError("a.bin", "sha256", 1, 1, "a.bin: SHA-256 mismatch")), false);
  assert.equal(mayBeOutOfMemory(new InvalidRequestError("packageOptions.cache: bad", "packageOptions.cache")), false);
  assert.equal(mayBeOutOfMemory("out of memory"), false);
});
