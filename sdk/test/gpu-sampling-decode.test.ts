// GPU sampling in a real decode loop (Dawn WebGPU, a compiled package: default
// dist/tiny-llama-trained/q4f32_1, or HEARTH_LLM_PACKAGE): for several (seed, temperature, top_k, top_p,
// penalties, logit_bias, logprobs) settings, the tokens of DecoderModel.decodeSample (sampled on the GPU, only the
// token read back) equal those of decode() + Sampler.sample on the host, and the session's generate loop
// takes the GPU path. The package must exist: this test FAILS (does not skip) without it (`make test`
// builds it first; or .venv/bin/python -m pytest tests/test_webgpu_decoder.py).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { DecoderModel } from "../src/engine.js";
import { generate } from "../src/decoder/generate.js";
import { DecoderSession } from "../src/decoder/session.js";
import { loadTokenizer } from "../src/tokenize/load.js";
import { TokenHistory } from "../src/sample/history.js";
import type { SamplingParams } from "../src/sample/params.js";
import { Sampler, type SampledToken } from "../src/sample/sampler.js";
import { installNodeGPU } from "./support/node-gpu.js";
import { fileFetch } from "./support/file-fetch.js";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const PACKAGE = resolve(process.env["HEARTH_LLM_PACKAGE"] ?? join(REPO, "dist/tiny-llama-trained/q4f32_1"));
const PROMPT = Array.from({ length: 24 }, (_, i) => (i * 37 + 5) % 1000);
const STEPS = 24;

let model: DecoderModel;

before(async () => {
  assert.ok(existsSync(join(PACKAGE, "hearth-manifest.json")), `no compiled package at ${PACKAGE}: build it with \`make test\` or set HEARTH_LLM_PACKAGE`);
  const gpu = await installNodeGPU();
  model = await DecoderModel.load(pathToFileURL(PACKAGE).href + "/", { gpu, target: "webgpu", fetch: fileFetch, logger: () => {} });
});

after(async () => {
  await model?.dispose();
});

/** Prefill PROMPT, then STEPS decode steps; each token sampled on the GPU (decodeSample) or on the host. */
async function decodeLoop(params: SamplingParams, onGpu: boolean): Promise<SampledToken[]> {
  await model.reset();
  const sampler = new Sampler(params);
  const history = new TokenHistory(PROMPT);
  const out = [sampler.sample(await model.prefill(PROMPT), history)];
  history.push((out[0] as SampledToken).token);
  while (out.length < STEPS) {
    const last = (out[out.length - 1] as SampledToken).token;
    const next = onGpu ? await model.decodeSample(last, sampler, history) : sampler.sample(await model.decode(last), history);
    out.push(next);
    history.push(next.token);
  }
  return out;
}

const SETTINGS: SamplingParams[] = [
  { temperature: 0 },
  { temperature: 1 },
  { temperature: 1.5 },
  { temperature: 0.8, top_k: 20 },
  { temperature: 1, top_p: 0.9 },
  { temperature: 1.2, top_k: 64, top_p: 0.95 },
  { temperature: 0.9, top_p: 0.8, repetition_penalty: 1.3, presence_penalty: 0.4, frequency_penalty: 0.6 },
  { temperature: 1, logit_bias: { 5: 4, 42: -100, 1000: 7.5 }, frequency_penalty: 1.5 },
  { temperature: 0.7, top_k: 10, logprobs: true },
  { temperature: 1, top_p: 0.9, top_logprobs: 3 },
];

test("same seed, same tokens: decodeSample (GPU) == decode + host Sampler, for every sampling mode", async () => {
  const before = model.stats().gpuSampling;
  let compared = 0;
  for (const setting of SETTINGS) {
    for (const seed of [7, 2024]) {
      const params = { ...setting, seed };
      const host = await decodeLoop(params, false);
      const gpu = await decodeLoop(params, true);
      assert.deepEqual(
        gpu.map((s) => s.token),
        host.map((s) => s.token),
        JSON.stringify(params),
      );
      for (const [i, s] of gpu.entries()) {
        const h = host[i] as SampledToken;
        assert.equal(s.logprob === undefined, h.logprob === undefined);
        if (s.logprob !== undefined) assert.ok(Math.abs(s.logprob - (h.logprob as number)) < 1e-4, `logprob ${s.logprob} vs ${h.logprob}`);
        assert.deepEqual(
          s.topLogprobs?.map((a) => a.token),
          h.topLogprobs?.map((a) => a.token),
        );
      }
      compared += STEPS - 1;
    }
  }
  const after = model.stats().gpuSampling;
  const sampled = after.sampled - before.sampled;
  assert.equal(sampled, compared, "every decode step ran the GPU sampler");
  assert.ok(after.handedBack - before.handedBack < 0.1 * sampled, `handed back to the host: ${after.handedBack - before.handedBack} of ${sampled}`);
});

test("generate(): decode steps take the GPU path, and give the host path's tokens for the same seed", async () => {
  const tokenizer = await loadTokenizer({ tokenizerJson: readFileSync(join(PACKAGE, "tokenizer.json"), "utf8") });
  const session = new DecoderSession(model, false);
  const params = { temperature: 0.9, top_p: 0.9, frequency_penalty: 0.4, seed: 31, max_tokens: 20, ignore_eos: true };
  const run = async (onGpu: boolean): Promise<number[]> => {
    session.gpuSampling = onGpu;
    const r = await generate({ session, tokenizer, promptIds: PROMPT, params, eosTokenIds: [], stopRequested: () => null });
    assert.equal(r.tokens.length, 20);
    return r.tokens.map((t) => t.token);
  };
  const before = model.stats().gpuSampling.sampled;
  const host = await run(false);
  assert.equal(model.stats().gpuSampling.sampled, before, "gpuSampling = false samples on the host");
  const gpu = await run(true);
  assert.equal(model.stats().gpuSampling.sampled - before, 19, "every decode step sampled on the GPU");
  assert.deepEqual(gpu, host);
});
