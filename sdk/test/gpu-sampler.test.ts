// GpuSampler on the real Dawn adapter against the host Sampler: for each setting (temperature, top-k,
// top-p, penalties, logit_bias, seed), the same seed gives the same tokens whether each position is
// sampled on the host or on the GPU (with the host deciding the positions the GPU hands back), on
// LM-like logits (a few strong tokens over a long tail), ties, and infinities. The real-model check
// (a decode loop on a compiled package) is in gpu-sampling-decode.test.ts.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { installNodeGPU } from "./support/node-gpu.js";
import { GpuSampler } from "../src/runtime/gpu-sampler.js";
import { Sampler, type SampledToken } from "../src/sample/sampler.js";
import { TokenHistory } from "../src/sample/history.js";
import { GPU_CANDIDATES, planOf } from "../src/sample/gpu-plan.js";
import { resolveSamplingParams, type SamplingParams } from "../src/sample/params.js";
import { InvalidLogitsError } from "../src/sample/logits.js";

let device: GPUDevice;
let kernel: GpuSampler;

before(async () => {
  const gpu = await installNodeGPU();
  const adapter = await gpu.requestAdapter();
  assert.ok(adapter);
  device = await adapter.requestDevice();
  kernel = new GpuSampler(device);
});

after(() => {
  kernel?.dispose();
  device?.destroy();
});

/** Deterministic LM-like logits: a normal-ish bulk plus a handful of strong tokens. */
function lmLogits(n: number, seed: number, strong = 8): Float32Array {
  let s = seed >>> 0;
  const rand = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (rand() + rand() + rand() - 1.5) * 4;
  for (let j = 0; j < strong; j++) x[Math.floor(rand() * n)] = 8 + rand() * 6;
  return x;
}

function upload(values: Float32Array, pad = 0): GPUBuffer {
  const buf = device.createBuffer({ size: (values.length + pad) * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const all = new Float32Array(values.length + pad).fill(50); // padding: a large logit that must be ignored
  all.set(values, pad);
  device.queue.writeBuffer(buf, 0, all);
  return buf;
}

interface Run {
  tokens: number[];
  logprobs: number[];
  alternatives: { token: number; logprob: number }[][];
  handedBack: number;
}

/** `steps` positions; each position's logits are `logitsAt(step)`; the chosen token feeds the history. */
async function run(params: SamplingParams, logitsAt: (step: number) => Float32Array, steps: number, gpu: boolean, prompt: number[] = []): Promise<Run> {
  const sampler = new Sampler(params);
  const history = new TokenHistory(prompt);
  const out: Run = { tokens: [], logprobs: [], alternatives: [], handedBack: 0 };
  for (let i = 0; i < steps; i++) {
    const logits = logitsAt(i);
    let got: SampledToken | null = null;
    if (gpu) {
      const plan = sampler.gpuPlan(logits.length, history);
      assert.ok(plan !== null, "this setting runs on the GPU");
      const buf = upload(logits, 32);
      try {
        got = sampler.gpuResult(plan, await kernel.sample(buf, 32, plan));
      } finally {
        buf.destroy();
      }
      if (got === null) out.handedBack++;
    }
    got ??= sampler.sample(logits, history);
    out.tokens.push(got.token);
    if (got.logprob !== undefined) out.logprobs.push(got.logprob);
    if (got.topLogprobs !== undefined) out.alternatives.push(got.topLogprobs);
    history.push(got.token);
  }
  return out;
}

const SETTINGS: SamplingParams[] = [
  { temperature: 0 },
  { temperature: 1 },
  { temperature: 0.7, top_k: 40 },
  { temperature: 1, top_p: 0.9 },
  { temperature: 1.3, top_k: 50, top_p: 0.8 },
  { temperature: 0.8, top_p: 0.95, repetition_penalty: 1.3, presence_penalty: 0.5, frequency_penalty: 0.7 },
  { temperature: 1, top_k: 200, logit_bias: { 3: 6, 17: -100, 1999: 9.5 }, frequency_penalty: -0.4 },
  { temperature: 0, repetition_penalty: 1.5, logit_bias: { 5: 3 } },
  { temperature: 2, top_p: 0.5, logprobs: true },
  { temperature: 0.9, top_k: 30, top_logprobs: 5 },
  { temperature: 0, top_logprobs: 20 },
];

test("same seed, same tokens: GPU sampling == host sampling for every mode (vocab 2048, 40 steps each)", async () => {
  let handedBack = 0;
  for (const [i, setting] of SETTINGS.entries()) {
    for (const seed of [1, 99]) {
      const params = { ...setting, seed };
      // A repeating logits pattern so the penalties (which see the history) bite.
      const logitsAt = (step: number): Float32Array => lmLogits(2048, 1000 * i + (step % 7), 6);
      const host = await run(params, logitsAt, 40, false, [3, 5, 7]);
      const gpu = await run(params, logitsAt, 40, true, [3, 5, 7]);
      assert.deepEqual(gpu.tokens, host.tokens, `setting ${JSON.stringify(params)}`);
      assert.equal(gpu.logprobs.length, host.logprobs.length);
      for (const [j, lp] of gpu.logprobs.entries()) {
        assert.ok(Math.abs(lp - (host.logprobs[j] as number)) < 1e-4, `logprob ${lp} vs ${host.logprobs[j]}`);
      }
      assert.equal(gpu.alternatives.length, host.alternatives.length);
      for (const [j, alts] of gpu.alternatives.entries()) {
        const want = host.alternatives[j] ?? [];
        assert.deepEqual(
          alts.map((a) => a.token),
          want.map((a) => a.token),
        );
        for (const [r, a] of alts.entries()) assert.ok(Math.abs(a.logprob - (want[r]?.logprob ?? 0)) < 1e-4);
      }
      handedBack += gpu.handedBack;
    }
  }
  assert.ok(handedBack < 0.1 * SETTINGS.length * 80, `${handedBack} positions handed back to the host`);
});

test("a Qwen2.5-sized vocabulary (151936) and an offset into the buffer", async () => {
  for (const setting of [{ temperature: 1 }, { top_p: 0.9 }, { top_k: 1000, temperature: 0.9 }]) {
    const params = { ...setting, seed: 5 };
    const logitsAt = (step: number): Float32Array => lmLogits(151936, 77 + step, 20);
    const host = await run(params, logitsAt, 6, false);
    const gpu = await run(params, logitsAt, 6, true);
    assert.deepEqual(gpu.tokens, host.tokens, JSON.stringify(params));
  }
});

test("a nucleus larger than the GPU's candidates: decided on the GPU when the draw lands inside them", async () => {
  // Flat logits: top_p 0.9 of 8192 tokens keeps ~7000, far past GPU_CANDIDATES; a draw lands in the
  // first 1024 about 1 time in 7.
  const flat = (step: number): Float32Array => lmLogits(8192, 300 + step, 0).map((v) => v / 8);
  const params = { top_p: 0.9, seed: 12 };
  const host = await run(params, flat, 60, false);
  const gpu = await run(params, flat, 60, true);
  assert.deepEqual(gpu.tokens, host.tokens);
  assert.ok(gpu.handedBack < 60, "some positions were decided on the GPU");
  assert.ok(gpu.handedBack > 20, `a draw past the candidates is the host's (${gpu.handedBack} of 60 handed back)`);
});

test("ties go to the lower id (top-k boundary, nucleus, greedy, top_logprobs); +Infinity wins without a draw", async () => {
  const tie = new Float32Array(3000).fill(-5);
  for (const id of [2500, 40, 1200, 7, 2999]) tie[id] = 4;
  for (const setting of [{ top_k: 3 }, { top_k: 2, temperature: 5 }, { top_p: 0.3 }, { temperature: 0 }, { top_logprobs: 7 }]) {
    const params = { ...setting, seed: 3 };
    const host = await run(params, () => tie, 12, false);
    const gpu = await run(params, () => tie, 12, true);
    assert.deepEqual(gpu.tokens, host.tokens, JSON.stringify(params));
    assert.deepEqual(
      gpu.alternatives.map((alts) => alts.map((a) => a.token)),
      host.alternatives.map((alts) => alts.map((a) => a.token)),
    );
  }
  // An infinite logit is picked without consuming a draw: the following positions still agree.
  const withInf = (step: number): Float32Array => {
    const x = lmLogits(1024, step);
    if (step % 3 === 1) x[77] = Infinity;
    return x;
  };
  const host = await run({ seed: 8 }, withInf, 9, false);
  const gpu = await run({ seed: 8 }, withInf, 9, true);
  assert.deepEqual(gpu.tokens, host.tokens);
  assert.equal(gpu.tokens[1], 77);
});

test("NaN and all -Infinity are handed back, and the host reports them", async () => {
  const nan = lmLogits(500, 1);
  nan[321] = Number.NaN;
  const sampler = new Sampler({ seed: 1 });
  const plan = sampler.gpuPlan(nan.length);
  assert.ok(plan);
  const buf = upload(nan);
  try {
    const outcome = await kernel.sample(buf, 0, plan);
    assert.equal(outcome.status, "host");
    assert.equal(sampler.gpuResult(plan, outcome), null);
  } finally {
    buf.destroy();
  }
  assert.throws(() => sampler.sample(nan), InvalidLogitsError);
  const dead = new Float32Array(300).fill(-Infinity);
  const greedy = new Sampler({ temperature: 0 });
  const plan2 = greedy.gpuPlan(dead.length);
  assert.ok(plan2);
  const buf2 = upload(dead);
  try {
    assert.equal((await kernel.sample(buf2, 0, plan2)).status, "host");
  } finally {
    buf2.destroy();
  }
});

test("what stays on the host: top_k above the GPU's candidates, a logit_bias id past the vocabulary", () => {
  const plan = (params: SamplingParams, vocab = 4096) => planOf(resolveSamplingParams(params, 0), undefined, vocab, () => 0.5);
  assert.equal(plan({ top_k: GPU_CANDIDATES + 1 }), null);
  assert.notEqual(plan({ top_k: GPU_CANDIDATES + 1 }, GPU_CANDIDATES + 1), null, "top_k >= vocab is no truncation");
  assert.equal(plan({ logit_bias: { 5000: 1 } }), null);
  assert.equal(plan({ temperature: 0, top_k: 5000 })?.mode, "greedy");
});
