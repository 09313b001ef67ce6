// Steps whose token the host picks from the logits (DecoderModel.decodePicked: penalties, grammars, host
// sampling), encoded ahead on WebGPU (step k + 1 encoded while the GPU runs step k, submitted once its token
// is written; DecoderFunctions.encodeAhead) against the step-by-step loop (decode() + the same pick) on Dawn
// with the trained test package: the same tokens for greedy and seeded penalized sampling, the cache where
// the loop leaves it after an end, a throwing or bad pick, the context window, nothing submitted before its
// token (no step redone), and generate() taking this path for host sampling and for a JSON Schema grammar
// (xgrammar's mask on the host) with the loop's result. Needs dist/tiny-llama-trained/q4f32_1 (make test builds it; FAILS without).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DecoderModel } from "../src/engine.js";
import { generate, type GenerateResult } from "../src/decoder/generate.js";
import { DecoderSession } from "../src/decoder/session.js";
import type { SamplingParams } from "../src/sample/params.js";
import { TokenHistory } from "../src/sample/history.js";
import { Sampler } from "../src/sample/sampler.js";
import { argmax } from "../src/sample/argmax.js";
import { DEFAULT_SUBMIT_EVERY } from "../src/runtime/webgpu-dispatch.js";
import { softwareAdapterName } from "../src/runtime/gpu.js";
import { loadTokenizer } from "../src/tokenize/load.js";
import { GrammarEngine } from "../src/grammar/index.js";
import { vocabType } from "../src/service/grammar-model.js";
import { installNodeGPU } from "./support/node-gpu.js";
import { fileFetch } from "./support/file-fetch.js";
import { PACKAGE, PACKAGE_URL, requirePackage } from "./support/engine-fixtures.js";

const PROMPT = Array.from({ length: 24 }, (_, i) => (i * 53 + 11) % 1000);

let model: DecoderModel;

before(async () => {
  requirePackage();
  const gpu = await installNodeGPU();
  model = await DecoderModel.load(PACKAGE_URL, { gpu, target: "webgpu", fetch: fileFetch, logger: () => {} });
  assert.equal(model.loadInfo.target, "webgpu");
  assert.ok(model.pipelinesHostFed, "Hearth's launch path on WebGPU encodes host-fed steps ahead");
});

after(async () => {
  await model?.dispose();
});

type Pick = (logits: Float32Array) => number;

/** The reference: prefill, then decode() + `pick` step by step, `n` picks. */
async function stepByStep(n: number, pick: Pick): Promise<{ first: number; tokens: number[] }> {
  await model.reset();
  const first = argmax(await model.prefill(PROMPT));
  const tokens: number[] = [];
  let t = first;
  for (let i = 0; i < n; i++) tokens.push((t = pick(await model.decode(t))));
  return { first, tokens };
}

/** decodePicked from the prefill's argmax, ending after `n` picks (the last one not fed). */
async function picked(n: number, pick: Pick): Promise<{ tokens: number[]; fed: number; ahead: number; redone: number; submits: number }> {
  await model.reset();
  const first = argmax(await model.prefill(PROMPT));
  const tokens: number[] = [];
  const before = model.stats();
  const fed = await model.decodePicked(first, (logits) => {
    tokens.push(pick(logits));
    return tokens.length < n ? (tokens.at(-1) as number) : null;
  });
  const after = model.stats();
  const submits = (after.dispatch?.submits ?? 0) - (before.dispatch?.submits ?? 0);
  return { tokens, fed, ahead: after.hostFed.steps - before.hostFed.steps, redone: after.hostFed.redone - before.hostFed.redone, submits };
}

test("decodePicked gives the step-by-step loop's tokens; every step encoded ahead, none redone", async () => {
  const ref = await stepByStep(40, argmax);
  const got = await picked(40, argmax);
  assert.deepEqual(got.tokens, ref.tokens);
  assert.equal(got.fed, 40, "the first token and 39 picks were fed");
  assert.equal(got.redone, 0, "a step was submitted before its token was written");
  assert.equal(got.ahead, 41, "40 fed steps and the one encoded ahead of the end, then undone");
  // Each step goes to the GPU in parts of submitEvery launches once its token is written (deferFlushes'
  // split), not whole: the GPU starts on the first part while Dawn records the rest.
  const launches = model.stats().dispatch?.launchesByKernel ?? {};
  const perStep = Math.ceil(Object.values(launches).reduce((a, b) => a + b, 0) / Math.max(1, model.stats().decode.calls + model.stats().prefill.calls));
  assert.ok(perStep > 2 * DEFAULT_SUBMIT_EVERY, `the test model launches ${perStep} kernels per step`);
  assert.ok(got.submits >= 3 * got.ahead, `${got.submits} submits for ${got.ahead} steps: a step was submitted whole`);
  // the cache is where the loop leaves it (the last pick not fed): the next step continues the same way
  assert.equal(model.sequenceLength, PROMPT.length + 40);
  const ref41 = await stepByStep(41, argmax);
  const again = await picked(40, argmax);
  assert.deepEqual(again.tokens, ref.tokens);
  assert.equal(argmax(await model.decode(ref.tokens[39] as number)), ref41.tokens[40]);
  assert.ok(new Set(ref.tokens).size > 3, `the test model repeats itself: ${ref.tokens}`);
});

test("seeded sampling with penalties on the host: the same tokens as step by step", async () => {
  const params: SamplingParams = { temperature: 0.9, top_p: 0.9, frequency_penalty: 0.4, presence_penalty: 0.2, seed: 17 };
  const withSampler = (): Pick => {
    const sampler = new Sampler(params);
    const history = new TokenHistory(PROMPT);
    return (logits) => {
      const t = sampler.sample(logits, history).token;
      history.push(t);
      return t;
    };
  };
  const ref = await stepByStep(30, withSampler());
  const got = await picked(30, withSampler());
  assert.deepEqual(got.tokens, ref.tokens);
  assert.equal(got.redone, 0);
});

test("a pick that throws, or names no token of the vocabulary, leaves the cache consistent and the model usable", async () => {
  const ref = await stepByStep(12, argmax);
  await model.reset();
  const first = argmax(await model.prefill(PROMPT));
  let n = 0;
  await assert.rejects(
    model.decodePicked(first, (logits) => {
      if (++n === 6) throw new Error("pick failed");
      return argmax(logits);
    }),
    /pick failed/,
  );
  assert.equal(model.sequenceLength, PROMPT.length + 6, "the first token and 5 picks fed; the step ahead undone");
  assert.equal(argmax(await model.decode(ref.tokens[5] as number)), ref.tokens[6]);
  await model.reset();
  await model.prefill(PROMPT);
  await assert.rejects(
    model.decodePicked(first, () => model.config.vocab_size),
    /outside the vocabulary/,
  );
  assert.equal(model.sequenceLength, PROMPT.length + 1);
  assert.equal(argmax(await model.decode(ref.tokens[0] as number)), ref.tokens[1]);
});

test("the context window ends it: the last pick is told it cannot be fed", async () => {
  await model.reset();
  const prompt = Array.from({ length: model.maxSequenceLength - 5 }, (_, i) => (i * 7 + 3) % 1000);
  const first = argmax(await model.prefill(prompt));
  const seen: boolean[] = [];
  const fed = await model.decodePicked(first, (logits, canFeed) => {
    seen.push(canFeed);
    return canFeed ? argmax(logits) : null;
  });
  assert.equal(fed, 5);
  assert.deepEqual(seen, [true, true, true, true, false]);
  assert.equal(model.sequenceLength, model.maxSequenceLength);
});

test("generate(): host sampling takes decodePicked and ends as the step-by-step loop does", async () => {
  const tokenizer = await loadTokenizer({ tokenizerJson: readFileSync(join(PACKAGE, "tokenizer.json"), "utf8") });
  const run = async (ahead: boolean, params: Record<string, unknown>, stopAfter?: number): Promise<GenerateResult> => {
    const session = new DecoderSession(model, false);
    session.gpuSampling = false;
    session.hostFedAhead = ahead;
    await model.reset();
    const before = model.stats().hostFed.steps;
    let pieces = 0;
    const r = await generate({
      session,
      tokenizer,
      promptIds: PROMPT,
      params,
      eosTokenIds: [],
      stopRequested: () => (stopAfter !== undefined && pieces >= stopAfter ? "interrupt" : null),
      onPiece: () => {
        pieces++;
      },
    });
    assert.equal(model.stats().hostFed.steps > before, ahead, `host-fed steps encoded ahead: ${ahead}`);
    assert.equal(session.cachedTokens, model.sequenceLength, "the session mirror matches the cache");
    return r;
  };
  for (const [params, stopAfter] of [
    [{ temperature: 0.8, top_k: 20, frequency_penalty: 0.5, seed: 3, max_tokens: 18, ignore_eos: true }, undefined],
    [{ temperature: 0, max_tokens: 18, ignore_eos: true, logprobs: true, top_logprobs: 2 }, undefined],
    [{ temperature: 0, max_tokens: 18, ignore_eos: true }, 7],
  ] as const) {
    const host = await run(false, params, stopAfter);
    const ahead = await run(true, params, stopAfter);
    assert.deepEqual(
      ahead.tokens.map((t) => [t.token, t.logprob]),
      host.tokens.map((t) => [t.token, t.logprob]),
    );
    assert.equal(ahead.text, host.text);
    assert.equal(ahead.finishReason, host.finishReason);
    assert.equal(ahead.decodeSteps, host.decodeSteps);
  }
});

test("generate(): a JSON Schema grammar's masked steps take decodePicked, with the loop's tokens and valid JSON", async () => {
  const tokenizer = await loadTokenizer({ tokenizerJson: readFileSync(join(PACKAGE, "tokenizer.json"), "utf8") });
  // as service/grammar-model.ts builds it; <|endoftext|> (0) ends the grammar
  const vocab = model.config.vocab_size;
  const tokens = Array.from({ length: Math.min(tokenizer.vocabSize, vocab) }, (_, id) => (tokenizer.specialIds.has(id) ? "" : (tokenizer.idToToken(id) ?? "")));
  const engine = new GrammarEngine({ tokens, ...vocabType(model.config.raw, tokens), vocabSize: vocab, stopTokenIds: [0] });
  const spec = {
    type: "json_schema" as const,
    schema: JSON.stringify({ type: "object", properties: { k: { enum: ["x", "y"] }, n: { type: "integer", minimum: 0, maximum: 99 } }, required: ["k", "n"] }),
  };
  const run = async (ahead: boolean): Promise<GenerateResult> => {
    const session = new DecoderSession(model, false);
    session.hostFedAhead = ahead;
    await model.reset();
    const before = model.stats().hostFed.steps;
    const constraint = await engine.constraint(spec);
    try {
      const r = await generate({
        session,
        tokenizer,
        promptIds: PROMPT,
        params: { temperature: 0.7, seed: 5, max_tokens: 40 },
        eosTokenIds: [],
        stopRequested: () => null,
        constraint,
      });
      assert.equal(model.stats().hostFed.steps > before, ahead);
      return r;
    } finally {
      constraint.dispose();
    }
  };
  const host = await run(false);
  const ahead = await run(true);
  assert.deepEqual(
    ahead.tokens.map((t) => t.token),
    host.tokens.map((t) => t.token),
  );
  assert.equal(ahead.text, host.text);
  assert.equal(ahead.finishReason, "stop", `the grammar completed: ${ahead.text}`);
  const value = JSON.parse(ahead.text) as { k: string; n: number };
  assert.ok(["x", "y"].includes(value.k) && Number.isInteger(value.n), ahead.text);
  engine.dispose();
});

test("hostFedAhead is on by default on a hardware adapter and off on a software one", () => {
  assert.notEqual(softwareAdapterName(model.adapter), null, "this test runs on a software adapter (lavapipe)");
  assert.equal(new DecoderSession(model).hostFedAhead, false);
  // The same model as if its adapter were a GPU (the rule reads only model.adapter).
  const onGpu = Object.create(model, {
    adapter: { value: { vendor: "nvidia", architecture: "hopper", device: "", description: "NVIDIA H100" } },
  }) as DecoderModel;
  assert.equal(new DecoderSession(onGpu).hostFedAhead, true);
  const noGpu = Object.create(model, { adapter: { value: null } }) as DecoderModel;
  assert.equal(new DecoderSession(noGpu).hostFedAhead, false);
});
