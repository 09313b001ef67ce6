// DecoderModel end to end on Dawn WebGPU with a real compiled package (default
// dist/tiny-llama-trained/q4f32_1, or HEARTH_LLM_PACKAGE): greedy determinism, reset, chunked prefill,
// the serial queue, errors, stats, and a tampered copy failing with IntegrityError.
// The package must exist: this test FAILS (does not skip) without it. `make test` builds it (pytest's
// tests/test_webgpu_decoder.py runs first); or: .venv/bin/python -m pytest tests/test_webgpu_decoder.py
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type * as tvmjsTypes from "@mlc-ai/web-runtime";
import { ContextWindowExceededError, DecoderModel, DecoderStateError } from "../src/engine.js";
import type { TvmLLMInstance, TvmViewTensor } from "../src/runtime/tvmjs-llm.js";
import { DEFAULT_SUBMIT_EVERY } from "../src/runtime/webgpu-dispatch.js";
import { argmax, topK } from "../src/sample/argmax.js";
import { IntegrityError } from "../src/load/index.js";
import { installNodeGPU } from "./support/node-gpu.js";
import { fileFetch } from "./support/file-fetch.js";

// Compile-time contract: tvmjs's classes provide what the decoder uses beyond tvmjs-types.ts.
type Assignable<From, To> = [From] extends [To] ? true : false;
const contract: [Assignable<tvmjsTypes.Instance, TvmLLMInstance>, Assignable<tvmjsTypes.Tensor, TvmViewTensor>] = [true, true];

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const PACKAGE = resolve(process.env["HEARTH_LLM_PACKAGE"] ?? join(REPO, "dist/tiny-llama-trained/q4f32_1"));
const PACKAGE_URL = pathToFileURL(PACKAGE).href + "/";
// 40 token ids (deterministic, < vocab 2048 of the default package).
const PROMPT = Array.from({ length: 40 }, (_, i) => (i * 37 + 5) % 1000);

let gpu: GPU;
let model: DecoderModel;

before(async () => {
  assert.ok(
    existsSync(join(PACKAGE, "hearth-manifest.json")),
    `no compiled package at ${PACKAGE}: build it with \`make test\` or ` +
      "`.venv/bin/python -m pytest tests/test_webgpu_decoder.py` (or set HEARTH_LLM_PACKAGE)",
  );
  gpu = await installNodeGPU();
  model = await DecoderModel.load(PACKAGE_URL, { gpu, target: "webgpu", fetch: fileFetch, logger: () => {} });
});

after(async () => {
  await model?.dispose();
});

test("tvmjs type contract for the decoder holds (compile time)", () => {
  assert.deepEqual(contract, [true, true]);
});

test("load: config, manifest, stats", () => {
  assert.equal(model.manifest.format, "hearth-package/1");
  assert.ok(model.config.vocab_size > 0);
  assert.equal(model.prefillChunkSize, model.config.prefill_chunk_size);
  assert.equal(model.maxSequenceLength, model.config.context_window_size);
  assert.equal(model.sequenceLength, 0);
  const { load } = model.stats();
  assert.ok(load.totalMs > 0 && load.pipelinesMs > 0 && load.verifiedBytes > 0, JSON.stringify(load));
  assert.ok(model.adapter !== null);
});

test("greedy is deterministic, and matches prefill + decode spelled out", async () => {
  await model.reset();
  const a = await model.greedy(PROMPT, 12);
  assert.equal(a.length, 12);
  // the last generated token is not fed yet (like the native twin)
  assert.equal(model.sequenceLength, PROMPT.length + 11);
  await model.reset();
  const b = await model.greedy(Int32Array.from(PROMPT), 12);
  assert.deepEqual(b, a);

  await model.reset();
  const logits = await model.prefill(PROMPT);
  assert.ok(logits instanceof Float32Array);
  assert.equal(logits.length, model.config.vocab_size);
  assert.ok(logits.every(Number.isFinite));
  const manual = [argmax(logits)];
  while (manual.length < 12) manual.push(argmax(await model.decode(manual[manual.length - 1] as number)));
  assert.deepEqual(manual, a);

  const s = model.stats();
  assert.equal(s.prefill.tokens, PROMPT.length);
  assert.equal(s.decode.tokens, 11);
  assert.ok(s.prefill.tokensPerSec > 0 && s.decode.tokensPerSec > 0);
});

test("decodeArgmax (argmax on the GPU, 8 bytes read back) picks argmax(decode()) at every step", async () => {
  // Two sequences from the same prompt: one stepped with decode + host argmax, one with decodeArgmax.
  await model.reset();
  const host = [argmax(await model.prefill(PROMPT))];
  const margins: number[] = [];
  for (let i = 0; i < 16; i++) {
    const logits = await model.decode(host[host.length - 1] as number);
    const top = topK(logits, 2);
    margins.push((top[0]?.logit ?? 0) - (top[1]?.logit ?? 0));
    host.push(argmax(logits));
  }
  await model.reset();
  const gpu = [argmax(await model.prefill(PROMPT))];
  for (let i = 0; i < 16; i++) gpu.push(await model.decodeArgmax(gpu[gpu.length - 1] as number));
  assert.deepEqual(gpu, host, `margins ${margins.map((m) => m.toFixed(4)).join(",")}`);
  assert.ok(new Set(host).size > 1, "the sequence should not be one repeated token (a weak check otherwise)");
});

test("reset clears the KV cache: the same prompt gives the same logits again", async () => {
  await model.reset();
  const first = await model.prefill(PROMPT);
  const continued = await model.prefill(PROMPT); // appended: a different context
  assert.equal(model.sequenceLength, 2 * PROMPT.length);
  assert.notDeepEqual(continued, first);
  await model.reset();
  assert.equal(model.sequenceLength, 0);
  assert.equal(model.stats().prefill.tokens, 0);
  assert.deepEqual(await model.prefill(PROMPT), first);
});

test("truncate(n) rolls the KV cache back to its first n tokens: the same continuation as a fresh prefill", async () => {
  await model.reset();
  const fresh = await model.prefill(PROMPT);
  await model.prefill(PROMPT.slice(0, 5)); // extend past the prompt, then roll back to it
  assert.equal(model.sequenceLength, PROMPT.length + 5);
  await model.truncate(PROMPT.length - 1);
  assert.equal(model.sequenceLength, PROMPT.length - 1);
  const again = await model.prefill(PROMPT.slice(-1)); // the last prompt token on the kept prefix
  assert.equal(model.sequenceLength, PROMPT.length);
  const close = fresh.every((x, i) => Math.abs(x - (again[i] as number)) < 1e-3);
  assert.ok(close && argmax(again) === argmax(fresh), "logits after truncate + refill differ from the fresh prefill");
  await assert.rejects(model.truncate(PROMPT.length + 1), RangeError);
  await assert.rejects(model.truncate(-1), RangeError);
  await model.truncate(PROMPT.length); // no-op
  assert.equal(model.sequenceLength, PROMPT.length);
});

test("stop tokens end greedy generation (the stop token is the last element)", async () => {
  await model.reset();
  const full = await model.greedy(PROMPT, 12);
  const stop = full[4] as number;
  await model.reset();
  const stopped = await model.greedy(PROMPT, 12, { stopTokens: [stop] });
  assert.deepEqual(stopped, full.slice(0, full.indexOf(stop) + 1));
});

test("calls are serialized: concurrent reset/greedy pairs run in order", async () => {
  const jobs = [model.reset(), model.greedy(PROMPT, 6), model.reset(), model.greedy(PROMPT, 6), model.decode(3)];
  const results = await Promise.all(jobs);
  assert.deepEqual(results[1], results[3]);
  assert.equal(model.sequenceLength, PROMPT.length + 5 + 1);
});

test("bad input is refused before the GPU is touched; the session stays usable", async () => {
  await model.reset();
  await assert.rejects(model.prefill([]), RangeError);
  await assert.rejects(model.prefill([model.config.vocab_size]), /outside the vocabulary/);
  await assert.rejects(model.prefill([1.5]), RangeError);
  await assert.rejects(model.greedy(PROMPT, 0), RangeError);
  const tooLong = new Array(model.maxSequenceLength + 1).fill(1);
  await assert.rejects(model.prefill(tooLong), ContextWindowExceededError);
  assert.equal(model.sequenceLength, 0);
  assert.equal((await model.greedy(PROMPT, 3)).length, 3);
});

test("greedy stops at a full context window instead of failing", async () => {
  await model.reset();
  const room = model.maxSequenceLength - PROMPT.length;
  const out = await model.greedy(PROMPT, room + 10);
  assert.equal(out.length, room + 1); // prefill gives one token; `room` decodes fill the cache
  assert.equal(model.sequenceLength, model.maxSequenceLength);
  await assert.rejects(model.decode(1), ContextWindowExceededError);
  await model.reset();
});

test("chunked prefill (prefillChunkSize 16) agrees with one-shot prefill", async () => {
  await model.reset();
  const whole = await model.prefill(PROMPT);
  const wholeTokens = await model.greedy([argmax(whole)], 6);
  const chunked = await DecoderModel.load(PACKAGE_URL, { gpu, target: "webgpu", fetch: fileFetch, logger: () => {}, prefillChunkSize: 16 });
  try {
    const logits = await chunked.prefill(PROMPT);
    assert.equal(chunked.stats().prefill.calls, Math.ceil(PROMPT.length / 16));
    let maxDiff = 0;
    for (let i = 0; i < logits.length; i++) maxDiff = Math.max(maxDiff, Math.abs((logits[i] as number) - (whole[i] as number)));
    assert.ok(maxDiff < 1e-3, `max |logit difference| ${maxDiff}`);
    assert.equal(argmax(logits), argmax(whole));
    assert.deepEqual(await chunked.greedy([argmax(logits)], 6), wholeTokens);
  } finally {
    await chunked.dispose();
  }
});

test("Hearth's kernel-launch path (cached bind groups, one pass) gives bit-identical logits to tvmjs's own", async () => {
  // Same kernels, same buffers: only the encoding of the launches differs, so the logits must be equal
  // bit for bit, through prefill, decode, reset (buffer reuse) and a second prompt.
  const plain = await DecoderModel.load(PACKAGE_URL, { gpu, target: "webgpu", fetch: fileFetch, logger: () => {}, dispatch: "tvmjs" });
  try {
    assert.equal(plain.stats().dispatch, undefined);
    for (const prompt of [PROMPT, PROMPT.slice(0, 7)]) {
      await model.reset();
      await plain.reset();
      let a = await model.prefill(prompt);
      let b = await plain.prefill(prompt);
      for (let step = 0; step < 12; step++) {
        assert.deepEqual(a, b, `logits differ at step ${step}`);
        const next = argmax(a);
        a = await model.decode(next);
        b = await plain.decode(next);
      }
    }
    const d = model.stats().dispatch;
    assert.ok(d !== undefined, "the default load uses the fast launch path");
    assert.equal(d.directArgs, true, "the default load reads launch arguments straight from wasm memory");
    // After the first decode step, launches reuse their bind groups.
    assert.ok(d.hits > 4 * d.misses, `bind-group cache hits ${d.hits}, misses ${d.misses}, uncached ${d.uncached}`);
    // Per-kernel launch counts add up to every launch; one decode step launches each layer's kernels.
    const counted = Object.values(d.launchesByKernel).reduce((x, y) => x + y, 0);
    assert.equal(counted, d.hits + d.misses + d.uncached);
    // Two decode steps launch the same kernels the same number of times (what kernel-launches.mjs reports).
    const snap = () => ({ ...(model.stats().dispatch?.launchesByKernel ?? {}) });
    const s0 = snap();
    await model.decode(0);
    const s1 = snap();
    await model.decode(0);
    const s2 = snap();
    const delta = (a: Record<string, number>, b: Record<string, number>) =>
      Object.fromEntries(Object.entries(b).flatMap(([k, n]) => (n > (a[k] ?? 0) ? [[k, n - (a[k] ?? 0)]] : [])));
    assert.ok(Object.keys(delta(s0, s1)).length > 3, JSON.stringify(delta(s0, s1)));
    assert.deepEqual(delta(s1, s2), delta(s0, s1));
  } finally {
    await plain.dispose();
  }
});

test("reading launch arguments through tvmjs's generic callback (dispatch hearth-tvmjs-args) gives bit-identical logits", async () => {
  // The direct reads (webgpu-dispatch.ts installDirectArgs) must decode every int, float and pointer as tvmjs does.
  const generic = await DecoderModel.load(PACKAGE_URL, { gpu, target: "webgpu", fetch: fileFetch, logger: () => {}, dispatch: "hearth-tvmjs-args" });
  try {
    assert.equal(generic.stats().dispatch?.directArgs, false);
    await model.reset();
    let a = await model.prefill(PROMPT);
    let b = await generic.prefill(PROMPT);
    for (let step = 0; step < 8; step++) {
      assert.deepEqual(b, a, `logits differ at step ${step}`);
      const next = argmax(a);
      a = await model.decode(next);
      b = await generic.decode(next);
    }
  } finally {
    await generic.dispose();
  }
});

test("submitting every launch (submitEvery 1) gives bit-identical logits; a bad submitEvery is refused", async () => {
  // Submitting mid-step only moves queue boundaries: queue order keeps every kernel after its producers.
  const eager = await DecoderModel.load(PACKAGE_URL, { gpu, target: "webgpu", fetch: fileFetch, logger: () => {}, submitEvery: 1 });
  try {
    await model.reset();
    let a = await model.prefill(PROMPT);
    let b = await eager.prefill(PROMPT);
    for (let step = 0; step < 8; step++) {
      assert.deepEqual(b, a, `logits differ at step ${step}`);
      const next = argmax(a);
      a = await model.decode(next);
      b = await eager.decode(next);
    }
    // One decode step: the default submits every DEFAULT_SUBMIT_EVERY launches and at the logits readback;
    // submitEvery 1 once per launch.
    const submits = (m: DecoderModel) => m.stats().dispatch?.submits ?? Number.NaN;
    const launches = (m: DecoderModel) => Object.values(m.stats().dispatch?.launchesByKernel ?? {}).reduce((x, y) => x + y, 0);
    const [d0, e0, l0] = [submits(model), submits(eager), launches(eager)];
    await model.decode(0);
    await eager.decode(0);
    const perStep = launches(eager) - l0;
    const [ds, es] = [submits(model) - d0, submits(eager) - e0];
    assert.ok(es >= perStep && es <= perStep + 2, `submitEvery 1: ${es} submits for ${perStep} launches in one decode step`);
    const expected = Math.floor(perStep / DEFAULT_SUBMIT_EVERY);
    assert.ok(ds >= expected && ds <= expected + 2, `default: ${ds} submits for ${perStep} launches (every ${DEFAULT_SUBMIT_EVERY})`);
  } finally {
    await eager.dispose();
  }
  await assert.rejects(
    DecoderModel.load(PACKAGE_URL, { gpu, target: "webgpu", fetch: fileFetch, logger: () => {}, submitEvery: -2 }),
    /submitEvery must be a whole number of launches >= 0/,
  );
});

test("a tampered copy of the package fails with IntegrityError naming params_shard_0.bin", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hearth-tampered-"));
  try {
    cpSync(PACKAGE, dir, { recursive: true });
    const shard = join(dir, "params_shard_0.bin");
    const bytes = readFileSync(shard);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = (bytes[at] as number) ^ 0x01;
    writeFileSync(shard, bytes);
    const manifest = JSON.parse(readFileSync(join(dir, "hearth-manifest.json"), "utf8")) as {
      files: { path: string; sha256: string }[];
    };
    const expected = manifest.files.find((f) => f.path === "params_shard_0.bin")?.sha256;
    await assert.rejects(DecoderModel.load(pathToFileURL(dir).href, { gpu, target: "webgpu", fetch: fileFetch, logger: () => {} }), (err: unknown) => {
      assert.ok(err instanceof IntegrityError, `expected IntegrityError, got ${String(err)}`);
      assert.equal(err.file, "params_shard_0.bin");
      assert.equal(err.problem, "sha256");
      assert.equal(err.expected, expected);
      assert.notEqual(err.actual, expected);
      assert.match(err.message, /params_shard_0\.bin/);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("dispose: later calls fail with DecoderStateError", async () => {
  const m = await DecoderModel.load(PACKAGE_URL, { gpu, target: "webgpu", fetch: fileFetch, logger: () => {} });
  const pending = m.greedy(PROMPT, 2); // queued before dispose: completes
  await m.dispose();
  assert.equal((await pending).length, 2);
  await assert.rejects(m.prefill(PROMPT), DecoderStateError);
  await m.dispose(); // idempotent
});
