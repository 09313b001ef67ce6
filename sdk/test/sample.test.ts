// Sampler, logit processors and PRNG.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  InvalidLogitsError,
  processLogits,
  resolveSamplingParams,
  Sampler,
  SamplingParamsError,
  TokenHistory,
  Xoshiro128,
  type SamplingParams,
} from "../src/sample/index.js";

/** Reproducible test logits: roughly LM-shaped (a few large values, a long tail). */
function randomLogits(n: number, seed: number): Float32Array {
  const rng = new Xoshiro128(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rng.nextFloat();
    out[i] = -Math.log(-Math.log(u + 1e-12) + 1e-12); // Gumbel: a few large values, a long tail
  }
  return out;
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if ((x[i] as number) > (x[best] as number)) best = i;
  return best;
}

function draw(params: SamplingParams, logits: Float32Array, n: number, history?: TokenHistory): number[] {
  const s = new Sampler(params);
  return Array.from({ length: n }, () => s.sample(logits, history).token);
}

test("xoshiro128**: deterministic, seed-sensitive, uniform-looking", () => {
  const a = new Xoshiro128(42);
  const b = new Xoshiro128(42);
  const xs = Array.from({ length: 1000 }, () => a.nextFloat());
  assert.deepEqual(
    xs,
    Array.from({ length: 1000 }, () => b.nextFloat()),
  );
  assert.notDeepEqual(
    xs.slice(0, 10),
    Array.from(
      { length: 10 },
      (
        (c) => () =>
          c.nextFloat()
      )(new Xoshiro128(43)),
    ),
  );
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.03, `mean ${mean}`);
  // seeds above 2^32 use the high half too
  assert.notEqual(new Xoshiro128(2 ** 40).nextUint32(), new Xoshiro128(0).nextUint32());
  assert.throws(() => new Xoshiro128(1.5), RangeError);
});

test("temperature 0 is greedy: argmax, first index on ties, whatever the seed", () => {
  for (let trial = 0; trial < 50; trial++) {
    const logits = randomLogits(1000, trial);
    assert.equal(new Sampler({ temperature: 0, seed: trial }).sample(logits).token, argmax(logits));
  }
  assert.equal(new Sampler({ temperature: 0 }).sample(new Float32Array([1, 5, 5, 2])).token, 1);
  assert.equal(new Sampler({ temperature: 0 }).sample(new Float32Array([-Infinity, -3, -Infinity])).token, 1);
});

test("same seed -> same tokens; different seeds -> different tokens", () => {
  const logits = randomLogits(5000, 7);
  const params = { temperature: 1.2, top_p: 0.95, top_k: 200, seed: 1234 };
  const a = draw(params, logits, 200);
  assert.deepEqual(draw(params, logits, 200), a);
  assert.notDeepEqual(draw({ ...params, seed: 1235 }, logits, 200), a);
  assert.ok(new Set(a).size > 5, "sampling at temperature 1.2 should not be constant");
  // also across the full-vocabulary path (no top_k, no top_p)
  assert.deepEqual(draw({ seed: 9 }, logits, 100), draw({ seed: 9 }, logits, 100));
});

test("top_k = 1 and a tiny top_p are greedy at any temperature", () => {
  for (let trial = 0; trial < 30; trial++) {
    const logits = randomLogits(3000, 100 + trial);
    const want = argmax(logits);
    for (const temperature of [0.5, 1, 3]) {
      assert.equal(new Sampler({ temperature, top_k: 1, seed: trial }).sample(logits).token, want);
      assert.equal(new Sampler({ temperature, top_p: 1e-9, seed: trial }).sample(logits).token, want);
    }
  }
  // ties: both pick the lower id, like argmax
  const tied = new Float32Array([0, 3, 1, 3]);
  assert.equal(new Sampler({ top_k: 1, seed: 1 }).sample(tied).token, 1);
  assert.equal(new Sampler({ top_p: 1e-9, seed: 1 }).sample(tied).token, 1);
});

test("frequencies follow softmax(logits / T); top_k and top_p cut and renormalise", () => {
  const p = [0.5, 0.3, 0.15, 0.05];
  const logits = new Float32Array(p.map(Math.log));
  const freq = (params: SamplingParams, n = 20000): number[] => {
    const counts = [0, 0, 0, 0];
    for (const t of draw({ seed: 5, ...params }, logits, n)) counts[t]!++;
    return counts.map((c) => c / n);
  };
  const close = (got: number[], want: number[]) =>
    got.forEach((g, i) => {
      assert.ok(Math.abs(g - (want[i] as number)) < 0.015, `got ${got}, want ${want}`);
    });
  close(freq({}), p);
  close(freq({ top_k: 2 }), [0.5 / 0.8, 0.3 / 0.8, 0, 0]);
  close(freq({ top_p: 0.7 }), [0.5 / 0.8, 0.3 / 0.8, 0, 0]); // 0.5 < 0.7, 0.5 + 0.3 >= 0.7
  close(freq({ top_p: 0.45 }), [1, 0, 0, 0]); // the first token alone reaches 0.45
  close(freq({ top_p: 0.81 }), [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0]);
  close(freq({ top_k: 3, top_p: 0.9 }), [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0]); // top_p applies within top_k
  const t2 = p.map((x) => Math.sqrt(x)); // temperature 2 = p^(1/2), renormalised
  const z = t2.reduce((s, x) => s + x, 0);
  close(
    freq({ temperature: 2 }),
    t2.map((x) => x / z),
  );
});

test("top_k keeps exactly k tokens over a large vocabulary", () => {
  const logits = randomLogits(50000, 3);
  const top = Array.from(logits.keys())
    .sort((a, b) => (logits[b] as number) - (logits[a] as number))
    .slice(0, 10);
  const seen = new Set(draw({ top_k: 10, temperature: 5, seed: 2 }, logits, 3000));
  assert.ok(
    [...seen].every((t) => top.includes(t)),
    "a token outside the top 10 was sampled",
  );
  assert.ok(seen.size >= 8, `only ${seen.size} of the top 10 were ever sampled at temperature 5`);
});

test("repetition penalty (HF): seen ids of prompt and output; positive logits divided, negative multiplied", () => {
  const logits = new Float32Array([2, -2, 2, -2, 1]);
  const history = new TokenHistory([0, 1]); // prompt
  history.push(2); // output
  const p = resolveSamplingParams({ repetition_penalty: 2 }, 0);
  processLogits(logits, p, history);
  assert.deepEqual(Array.from(logits), [1, -4, 1, -2, 1]);
});

test("presence and frequency penalties (OpenAI): output tokens only, count-scaled frequency", () => {
  const logits = new Float32Array([5, 5, 5, 5]);
  const history = new TokenHistory([3]); // the prompt does not count
  for (const t of [0, 1, 1, 1]) history.push(t);
  processLogits(logits, resolveSamplingParams({ presence_penalty: 0.5, frequency_penalty: 1 }, 0), history);
  assert.deepEqual(Array.from(logits), [5 - 0.5 - 1, 5 - 0.5 - 3, 5, 5]);
});

test("penalties change what greedy picks; the caller's logits are not modified", () => {
  const logits = new Float32Array([3, 2.5, 0]);
  const history = new TokenHistory();
  history.push(0);
  assert.equal(new Sampler({ temperature: 0 }).sample(logits, history).token, 0); // no penalty
  assert.equal(new Sampler({ temperature: 0, frequency_penalty: 0.6 }).sample(logits, history).token, 1);
  assert.equal(new Sampler({ temperature: 0, presence_penalty: 0.6 }).sample(logits, history).token, 1);
  assert.equal(new Sampler({ temperature: 0, repetition_penalty: 1.25 }).sample(logits, history).token, 1);
  assert.equal(new Sampler({ temperature: 0, repetition_penalty: 1.25 }).sample(logits).token, 0); // no history
  assert.deepEqual(Array.from(logits), [3, 2.5, 0]);
});

test("logit_bias: added to the logit; +100 forces a token, -100 bans one; keys may be strings", () => {
  const logits = randomLogits(1000, 11);
  const best = argmax(logits);
  const other = (best + 1) % 1000;
  assert.equal(new Sampler({ temperature: 0, logit_bias: { [other]: 100 } }).sample(logits).token, other);
  assert.ok(draw({ temperature: 1, logit_bias: { [String(other)]: 100 }, seed: 4 }, logits, 50).every((t) => t === other));
  const banned = draw({ top_k: 1, logit_bias: { [best]: -100 } }, logits, 5);
  assert.ok(banned.every((t) => t !== best));
  const x = new Float32Array([1, 1, 1]);
  processLogits(x, resolveSamplingParams({ logit_bias: { 1: 2.5, 2: -1 } }, 0), undefined);
  assert.deepEqual(Array.from(x), [1, 3.5, 0]);
  assert.throws(() => new Sampler({ logit_bias: { 5: 1 } }).sample(new Float32Array(3)), InvalidLogitsError);
});

test("logprobs are the raw model log-softmax, independent of sampling settings", () => {
  const logits = new Float32Array([2, 1, 0, -1]);
  const lse = Math.log([2, 1, 0, -1].reduce((s, v) => s + Math.exp(v), 0));
  for (const params of [{ temperature: 0 }, { temperature: 0.3, top_k: 2 }, { temperature: 0, logit_bias: { 3: 100 } }]) {
    const r = new Sampler({ ...params, logprobs: true, top_logprobs: 3, seed: 1 }).sample(logits);
    assert.ok(Math.abs((r.logprob as number) - ((logits[r.token] as number) - lse)) < 1e-6);
    assert.deepEqual(
      r.topLogprobs?.map((t) => t.token),
      [0, 1, 2],
    );
    assert.ok(Math.abs((r.topLogprobs?.[0]?.logprob as number) - (2 - lse)) < 1e-6);
  }
  assert.equal(new Sampler({ temperature: 0 }).sample(logits).logprob, undefined); // only on request
});

test("bad logits and bad parameters are typed errors", () => {
  assert.throws(() => new Sampler().sample(new Float32Array([0, NaN, 1])), InvalidLogitsError);
  assert.throws(() => new Sampler({ temperature: 0 }).sample(new Float32Array([NaN, 1])), InvalidLogitsError);
  assert.throws(() => new Sampler().sample(new Float32Array([-Infinity, -Infinity])), InvalidLogitsError);
  assert.throws(() => new Sampler().sample(new Float32Array(0)), InvalidLogitsError);
  assert.equal(new Sampler({ seed: 1 }).sample(new Float32Array([0, Infinity, 1])).token, 1);
  const bad: SamplingParams[] = [
    { temperature: -1 },
    { temperature: NaN },
    { top_p: 0 },
    { top_p: 1.5 },
    { top_k: 2.5 },
    { top_k: -2 },
    { presence_penalty: 3 },
    { frequency_penalty: -2.5 },
    { repetition_penalty: 0 },
    { logit_bias: { 1: 101 } },
    { logit_bias: { x: 1 } },
    { logit_bias: { "-1": 1 } },
    { seed: 0.5 },
    { top_logprobs: 21 },
  ];
  for (const params of bad) assert.throws(() => new Sampler(params), SamplingParamsError, JSON.stringify(params));
  assert.equal(new Sampler({ top_k: -1 }).params.top_k, 0); // -1 = off, as in vLLM
});

test("speed: one sample over a 151,936-token vocabulary with top_p takes milliseconds", () => {
  const logits = randomLogits(151936, 21);
  const s = new Sampler({ temperature: 0.7, top_p: 0.9, top_k: 0, seed: 3 });
  const history = new TokenHistory(Array.from({ length: 500 }, (_, i) => i * 7));
  s.sample(logits, history); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) s.sample(logits, history);
  const ms = (performance.now() - t0) / 20;
  // Generous bound for a busy 2-core CI box; typical is a few ms.
  assert.ok(ms < 60, `${ms.toFixed(1)} ms per sample`);
});
