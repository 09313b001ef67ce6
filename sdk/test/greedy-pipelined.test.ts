// Pipelined greedy decoding (DecoderModel.decodeGreedy / greedy on WebGPU: step k + 1 encoded before step
// k's token is read back, its input taken from step k's argmax on the GPU) against the sequential loop
// (decodeArgmax step by step) on Dawn with the trained test package: the same tokens, a stop token that
// undoes the step launched ahead (the cache continues exactly as after the sequential loop), the context
// window, the decode stats, and the engine's generate() loop taking this path for greedy requests with the
// host loop's tokens, text, finish reason and cache. Needs dist/tiny-llama-trained/q4f32_1 (make test builds it; FAILS without).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { DecoderModel } from "../src/engine.js";
import { generate, type GenerateResult, type StopRequest } from "../src/decoder/generate.js";
import { DecoderSession } from "../src/decoder/session.js";
import type { GenerationParams, SamplingParams } from "../src/sample/params.js";
import type { GpuSamplingPlan } from "../src/sample/gpu-plan.js";
import { TokenHistory } from "../src/sample/history.js";
import { type GpuSamplingOutcome, type SampledToken, Sampler } from "../src/sample/sampler.js";
import { argmax } from "../src/sample/argmax.js";
import { loadTokenizer } from "../src/tokenize/load.js";
import { installNodeGPU } from "./support/node-gpu.js";
import { fileFetch } from "./support/file-fetch.js";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const PACKAGE = resolve(process.env["HEARTH_LLM_PACKAGE"] ?? join(REPO, "dist/tiny-llama-trained/q4f32_1"));
const PROMPT = Array.from({ length: 24 }, (_, i) => (i * 53 + 11) % 1000);

let model: DecoderModel;

before(async () => {
  assert.ok(existsSync(join(PACKAGE, "hearth-manifest.json")), `no compiled package at ${PACKAGE}: run \`make test\``);
  const gpu = await installNodeGPU();
  model = await DecoderModel.load(pathToFileURL(PACKAGE).href + "/", { gpu, target: "webgpu", fetch: fileFetch, logger: () => {} });
  assert.equal(model.loadInfo.target, "webgpu");
});

after(async () => {
  await model?.dispose();
});

/** The sequential reference: prefill, then decodeArgmax `n` times from the prefill's argmax. */
async function sequential(n: number): Promise<{ first: number; tokens: number[] }> {
  await model.reset();
  const first = argmax(await model.prefill(PROMPT));
  const tokens: number[] = [];
  let t = first;
  for (let i = 0; i < n; i++) tokens.push((t = await model.decodeArgmax(t)));
  return { first, tokens };
}

test("decodeGreedy gives the sequential loop's tokens, and greedy() agrees", async () => {
  const ref = await sequential(40);
  await model.reset();
  const first = argmax(await model.prefill(PROMPT));
  assert.equal(first, ref.first);
  const before = model.stats().decode;
  const ahead = model.stats().launchedAhead;
  const got = await model.decodeGreedy(first, 40);
  // every step after the first was launched before its input token was read back
  assert.equal(model.stats().launchedAhead.steps - ahead.steps, 39);
  assert.deepEqual(got, ref.tokens);
  // fed: the first token and all new ones but the last
  assert.equal(model.sequenceLength, PROMPT.length + 40);
  const after = model.stats().decode;
  assert.equal(after.tokens - before.tokens, 40);
  assert.ok(after.ms > before.ms);
  // the cache is where the sequential loop leaves it: the next step continues the same way
  const ref41 = await sequential(41);
  await model.reset();
  assert.deepEqual(await model.greedy(PROMPT, 41), [ref41.first, ...ref41.tokens.slice(0, 40)]);
  assert.equal(await model.decodeArgmax(ref41.tokens[39] as number), ref41.tokens[40]);
  assert.deepEqual(new Set(ref.tokens).size > 3, true, `the test model repeats itself: ${ref.tokens}`);
});

test("a stop token ends it and undoes the step launched ahead", async () => {
  const ref = await sequential(30);
  // stop at the first occurrence of the token at position 6 (it may occur earlier)
  const stopToken = ref.tokens[6] as number;
  const k = ref.tokens.indexOf(stopToken) + 1;
  await model.reset();
  const first = argmax(await model.prefill(PROMPT));
  const undone = model.stats().launchedAhead.undone;
  const got = await model.decodeGreedy(first, 30, { stopTokens: [stopToken] });
  assert.equal(model.stats().launchedAhead.undone - undone, 1);
  assert.deepEqual(got, ref.tokens.slice(0, k));
  assert.equal(model.sequenceLength, PROMPT.length + k, "the stop token must not be in the cache");
  // continuing from the stop token follows the sequential reference
  assert.equal(await model.decodeArgmax(stopToken), ref.tokens[k]);
  // a stop on the very first new token
  await model.reset();
  await model.prefill(PROMPT);
  assert.deepEqual(await model.decodeGreedy(first, 30, { stopTokens: [ref.tokens[0] as number] }), [ref.tokens[0]]);
  assert.equal(model.sequenceLength, PROMPT.length + 1);
});

test("stops at the context window and at maxNewTokens; bad counts are refused", async () => {
  const max = model.maxSequenceLength;
  await model.reset();
  const long = Array.from({ length: max - 5 }, (_, i) => (i * 7 + 3) % 1000);
  let t = -1;
  for (let s = 0; s < long.length; s += model.prefillChunkSize) t = argmax(await model.prefill(long.slice(s, s + model.prefillChunkSize)));
  const got = await model.decodeGreedy(t, 50);
  // 5 free slots: the first token and 4 new ones fed, the 5th new one returned unfed
  assert.equal(got.length, 5);
  assert.equal(model.sequenceLength, max);
  await model.reset();
  await model.prefill(PROMPT);
  assert.equal((await model.decodeGreedy(t, 1)).length, 1);
  assert.equal(model.sequenceLength, PROMPT.length + 1);
  await assert.rejects(model.decodeGreedy(t, 0), /maxNewTokens must be a positive integer/);
  await assert.rejects(model.decodeGreedy(model.config.vocab_size, 4), /outside the vocabulary/);
});

/** generate() on a fresh session, greedy on the GPU (pipelined) or sampled on the host. */
async function run(
  params: GenerationParams,
  pipelined: boolean,
  opts: { prompt?: number[]; stopAfter?: number; throwAt?: number } = {},
): Promise<{ r: GenerateResult; cached: number; ahead: number }> {
  const tokenizer = await loadTokenizer({ tokenizerJson: readFileSync(join(PACKAGE, "tokenizer.json"), "utf8") });
  const session = new DecoderSession(model, false);
  session.gpuSampling = pipelined;
  await model.reset();
  let pieces = 0;
  const ahead = model.stats().launchedAhead.steps;
  const r = await generate({
    session,
    tokenizer,
    promptIds: opts.prompt ?? PROMPT,
    params,
    eosTokenIds: [],
    stopRequested: (): StopRequest | null => (opts.stopAfter !== undefined && pieces >= opts.stopAfter ? "interrupt" : null),
    onPiece: () => {
      pieces++;
      if (pieces === opts.throwAt) throw new Error("consumer failed");
    },
  });
  return { r, cached: session.cachedTokens, ahead: model.stats().launchedAhead.steps - ahead };
}

function same(a: GenerateResult, b: GenerateResult): void {
  assert.deepEqual(
    a.tokens.map((t) => t.token),
    b.tokens.map((t) => t.token),
  );
  assert.equal(a.text, b.text);
  assert.equal(a.finishReason, b.finishReason);
  assert.equal(a.stoppedBy, b.stoppedBy);
  assert.equal(a.decodeSteps, b.decodeSteps);
}

test("generate(): greedy requests are pipelined and end as the host loop does (max_tokens, stop string, interrupt, window)", async () => {
  const base = { temperature: 0, ignore_eos: true };
  // max_tokens
  let host = await run({ ...base, max_tokens: 20 }, false);
  let gpu = await run({ ...base, max_tokens: 20 }, true);
  same(gpu.r, host.r);
  assert.equal(gpu.r.tokens.length, 20);
  assert.equal(gpu.r.finishReason, "length");
  assert.equal(gpu.cached, host.cached);
  assert.ok(gpu.ahead >= 18, `steps launched ahead: ${gpu.ahead}`);
  assert.equal(host.ahead, 0);
  assert.equal(model.sequenceLength, gpu.cached, "the session mirror matches the cache");
  // a stop string taken from the middle of the reply
  const text = host.r.text;
  const stopString = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 3);
  host = await run({ ...base, max_tokens: 20, stop: [stopString] }, false);
  gpu = await run({ ...base, max_tokens: 20, stop: [stopString] }, true);
  same(gpu.r, host.r);
  assert.equal(gpu.r.finishReason, "stop");
  assert.equal(model.sequenceLength, gpu.cached);
  // interrupted after 7 pieces
  host = await run({ ...base, max_tokens: 20 }, false, { stopAfter: 7 });
  gpu = await run({ ...base, max_tokens: 20 }, true, { stopAfter: 7 });
  same(gpu.r, host.r);
  assert.equal(gpu.r.finishReason, "abort");
  assert.equal(gpu.r.stoppedBy, "interrupt");
  assert.equal(model.sequenceLength, gpu.cached);
  // the context window fills first
  const prompt = Array.from({ length: model.maxSequenceLength - 6 }, (_, i) => (i * 7 + 3) % 1000);
  host = await run({ ...base, max_tokens: 50 }, false, { prompt });
  gpu = await run({ ...base, max_tokens: 50 }, true, { prompt });
  same(gpu.r, host.r);
  assert.equal(gpu.r.finishReason, "length");
  assert.equal(gpu.cached, model.maxSequenceLength);
});

test("generate(): a consumer that throws mid-stream leaves the model usable; sampling without penalties is pipelined too", async () => {
  const params = { temperature: 0, ignore_eos: true, max_tokens: 16 };
  await assert.rejects(run(params, true, { throwAt: 5 }), /consumer failed/);
  // not marked broken (a broken model refuses forwards until reset): the step launched ahead was undone
  const len = model.sequenceLength;
  assert.equal(len, PROMPT.length + 4, "prompt + the 4 tokens fed before the 5th piece's consumer threw");
  await model.decodeArgmax(0);
  const again = await run(params, true);
  const host = await run(params, false);
  same(again.r, host.r);
  // penalties need the token before: sampled step by step on the GPU, nothing launched ahead
  const penalized = await run({ ...params, frequency_penalty: 0.5 }, true);
  assert.equal(penalized.ahead, 0);
  assert.equal(penalized.r.tokens.length, 16);
  // logprobs, logit_bias and seeded sampling without penalties: pipelined through the sampled path, with
  // the host loop's tokens, logprobs and text
  for (const extra of [{ logprobs: true, top_logprobs: 2 }, { logit_bias: { 5: 3 } }, { temperature: 0.9, top_p: 0.9, seed: 5 }]) {
    const gpu = await run({ ...params, ...extra }, true);
    assert.ok(gpu.ahead >= 12, `${JSON.stringify(extra)}: launched ahead ${gpu.ahead}`);
    const host = await run({ ...params, ...extra }, false);
    same(gpu.r, host.r);
    // logprobs: the GPU's float32 against the host's float64
    gpu.r.tokens.forEach((t, i) => {
      const h = host.r.tokens[i];
      assert.equal(t.logprob === undefined, h?.logprob === undefined);
      if (t.logprob !== undefined) assert.ok(Math.abs(t.logprob - (h?.logprob as number)) < 1e-4, `${t.logprob} vs ${h?.logprob}`);
      assert.deepEqual(
        t.topLogprobs?.map((x) => x.token),
        h?.topLogprobs?.map((x) => x.token),
      );
    });
    assert.equal(gpu.cached, host.cached);
  }
});

/**
 * A Sampler whose GPU answers are overridden by the plan's uniform number (so a rerun of the same position
 * gets the same override): u < 0.15 hands the position back to the host, 0.15 <= u < 0.25 reports
 * "picked" (the token kept, the number given back). Both paths then run in the pipelined loop.
 */
class Overridden extends Sampler {
  override gpuResult(plan: GpuSamplingPlan, outcome: GpuSamplingOutcome): SampledToken | null {
    if (plan.mode !== "greedy" && outcome.status === "drew") {
      if (plan.u < 0.15) return super.gpuResult(plan, { status: "host", token: 0, logprob: 0 });
      if (plan.u < 0.25) return super.gpuResult(plan, { ...outcome, status: "picked" });
    }
    return super.gpuResult(plan, outcome);
  }
}

/** Prefill, then `n` sampled tokens: step by step (decodeSample) or pipelined (decodeSampled). */
async function sampled(params: SamplingParams, n: number, pipelined: boolean, make = (p: SamplingParams) => new Sampler(p)): Promise<SampledToken[]> {
  await model.reset();
  const sampler = make(params);
  const history = new TokenHistory(PROMPT);
  const first = sampler.sample(await model.prefill(PROMPT), history);
  history.push(first.token);
  const out: SampledToken[] = [];
  if (pipelined) {
    const fed = await model.decodeSampled(first.token, sampler, history, (s) => {
      out.push(s);
      history.push(s.token);
      return out.length < n;
    });
    assert.equal(fed, n, "the first token and all new ones but the last are fed");
  } else {
    let t = first.token;
    for (let i = 0; i < n; i++) {
      const s = await model.decodeSample(t, sampler, history);
      out.push(s);
      history.push(s.token);
      t = s.token;
    }
  }
  assert.equal(model.sequenceLength, PROMPT.length + (pipelined ? n : n));
  return out;
}

test("decodeSampled (pipelined) gives decodeSample's tokens and logprobs for the same seed, every mode without penalties", async () => {
  const settings: SamplingParams[] = [
    { temperature: 1, seed: 3 },
    { temperature: 0.8, top_k: 20, seed: 4 },
    { temperature: 1, top_p: 0.9, seed: 5 },
    { temperature: 1.2, top_k: 64, top_p: 0.95, seed: 6 },
    { temperature: 1, logit_bias: { 5: 4, 42: -100 }, seed: 7 },
    { temperature: 0.7, top_k: 10, logprobs: true, seed: 8 },
    { temperature: 1, top_p: 0.9, top_logprobs: 3, seed: 9 },
    { temperature: 0, logprobs: true, seed: 10 },
  ];
  for (const params of settings) {
    const ahead = model.stats().launchedAhead.steps;
    const piped = await sampled(params, 24, true);
    assert.ok(model.stats().launchedAhead.steps - ahead >= 20, `${JSON.stringify(params)}: launched ahead`);
    const reference = await sampled(params, 24, false);
    assert.deepEqual(piped, reference, JSON.stringify(params));
  }
});

test("decodeSampled: positions handed back to the host or keeping their number redo the step ahead, same tokens", async () => {
  for (const params of [
    { temperature: 1, seed: 11 },
    { temperature: 0.9, top_p: 0.9, seed: 12 },
  ] as SamplingParams[]) {
    const make = (p: SamplingParams) => new Overridden(p);
    const undone = model.stats().launchedAhead.undone;
    const piped = await sampled(params, 32, true, make);
    assert.ok(model.stats().launchedAhead.undone - undone >= 4, "some steps launched ahead were undone");
    const reference = await sampled(params, 32, false, make);
    assert.deepEqual(piped, reference, JSON.stringify(params));
  }
  // penalties need the token before: refused
  await assert.rejects(
    model.decodeSampled(0, new Sampler({ temperature: 1, frequency_penalty: 0.5 }), new TokenHistory([]), () => false),
    /without penalties/,
  );
});

test("pipelined steps submit once each, whatever submitEvery says; the sequential loop keeps its cadence", async () => {
  // submitEvery 1: the per-step loop submits after every launch, so a step's submits count its launches.
  const gpu = await installNodeGPU();
  const eager = await DecoderModel.load(pathToFileURL(PACKAGE).href + "/", { gpu, target: "webgpu", fetch: fileFetch, logger: () => {}, submitEvery: 1 });
  try {
    const submits = (): number => eager.stats().dispatch?.submits ?? Number.NaN;
    const launches = (): number => Object.values(eager.stats().dispatch?.launchesByKernel ?? {}).reduce((a, b) => a + b, 0);
    const first = argmax(await eager.prefill(PROMPT));
    const [s0, l0] = [submits(), launches()];
    const seq: number[] = [];
    let t = first;
    for (let i = 0; i < 8; i++) seq.push((t = await eager.decodeArgmax(t)));
    const perStep = { submits: (submits() - s0) / 8, launches: (launches() - l0) / 8 };
    assert.ok(perStep.launches > 8 && perStep.submits >= perStep.launches, `sequential: ${JSON.stringify(perStep)}`);

    await eager.reset();
    assert.equal(argmax(await eager.prefill(PROMPT)), first);
    const [s1, l1] = [submits(), launches()];
    const piped = await eager.decodeGreedy(first, 8);
    assert.deepEqual(piped, seq);
    const pipedStep = { submits: (submits() - s1) / 8, launches: (launches() - l1) / 8 };
    // the model's step in one submit (the argmax with its feed goes in its own, not counted here): nothing
    // inside the step, not even tvmjs's flush before the KV cache's page-table copy (deferFlushes)
    assert.ok(pipedStep.submits <= 1 && pipedStep.launches >= perStep.launches, `pipelined: ${JSON.stringify(pipedStep)}`);
    // and the hold is released: the sequential loop submits per launch again
    const s2 = submits();
    await eager.decodeArgmax(piped[piped.length - 1] as number);
    assert.ok(submits() - s2 >= perStep.launches, "submits per launch after the pipelined loop");
  } finally {
    await eager.dispose();
  }
});
