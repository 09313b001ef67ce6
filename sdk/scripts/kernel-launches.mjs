#!/usr/bin/env node
// Kernel launches per decode token of one compiled decoder package (issue 17: fewer, fused kernels), in Node
// on Dawn WebGPU through the SDK's DecoderModel and Hearth's launch path, which counts launches per kernel.
// Prints one JSON line on stdout: {total, byKernel: {name: launches per token}, tokens: [greedy ids]}.
//
// Usage: node scripts/kernel-launches.mjs <packageDir> [--steps 8] [--prompt 16] [--gpu-time]
// The count is exact (the same kernels run every decode step; the KV cache's page bookkeeping aside, which
// launches nothing), so a few steps suffice; the greedy tokens let two builds of one model be compared.
// --gpu-time: load with `kernelTiming` (timestamp queries, runtime/kernel-timer.ts) and add gpuMsPerToken:
// {total, byKernel} of the decode steps. Each launch then runs in its own compute pass, so decodeTokS of
// such a run is not the model's speed. In Node, HEARTH_DAWN_FLAGS=disable-dawn-features=timestamp_quantization
// keeps Dawn from rounding the timestamps.
// --prefill-gpu-time <n>: instead, one prefill of n tokens (chunked like DecoderModel.prefill), timed per launch
// after an untimed warm-up prefill of the same length (pipelines and bind groups created) and a reset; prints
// {package, mode: "prefill", tokens: n, launches, kernels, gpuMs, byKernel: {name: {launches, ms}}, untimed,
// prefillMs, token}: byKernel sorted by GPU time, token the greedy next token (compare builds of one model).
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { perToken } from "./bench-llm-protocol.mjs";

// In the repo the SDK's .ts sources load through tsx; the GPU bundle (esbuild, bench/gpu/prepare.py) has them inlined.
if (!globalThis.__HEARTH_BUNDLED__) {
  const { register } = await import("tsx/esm/api");
  register();
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    steps: { type: "string", default: "8" },
    prompt: { type: "string", default: "16" },
    "gpu-time": { type: "boolean", default: false },
    "prefill-gpu-time": { type: "string" },
  },
});
if (positionals.length !== 1) {
  throw new Error("usage: node scripts/kernel-launches.mjs <packageDir> [--steps 8] [--prompt 16] [--gpu-time | --prefill-gpu-time <tokens>]");
}
const prefillTokens = values["prefill-gpu-time"] === undefined ? undefined : Number(values["prefill-gpu-time"]);
if (prefillTokens !== undefined && (!Number.isInteger(prefillTokens) || prefillTokens < 1)) {
  throw new Error(`--prefill-gpu-time takes the prompt length, a positive integer; got ${values["prefill-gpu-time"]}`);
}
if (prefillTokens !== undefined && values["gpu-time"]) throw new Error("--gpu-time (decode) and --prefill-gpu-time are separate runs: pass one");
const steps = Number(values.steps);
const promptLen = Number(values.prompt);
if (!Number.isInteger(steps) || steps < 1 || !Number.isInteger(promptLen) || promptLen < 1) {
  throw new Error(`--steps and --prompt must be positive integers, got ${values.steps} and ${values.prompt}`);
}

const { installNodeGPU } = await import("../test/support/node-gpu.ts");
const { fileFetch } = await import("../test/support/file-fetch.ts");
const { DecoderModel } = await import("../src/decoder/model.ts");

const gpu = await installNodeGPU();
const url = pathToFileURL(resolve(positionals[0]) + "/").href;
const timing = values["gpu-time"] || prefillTokens !== undefined;
// HEARTH_WEBGPU_BUILD=fused|plain|subgroups picks a package's webgpu-fused, plain or webgpu-fused-sg<N> library
// (unset: the SDK's choice).
const webgpuBuild = process.env.HEARTH_WEBGPU_BUILD || undefined;
const model = await DecoderModel.load(url, { gpu, target: "webgpu", fetch: fileFetch, dispatch: "hearth", kernelTiming: timing, webgpuBuild });
/** The kernel-time totals once every submitted batch has been read back. */
async function settledGpuTime() {
  const t = model.stats().dispatch?.gpuTime;
  if (t === undefined) throw new Error("no kernel timing: the package did not load on Hearth's WebGPU launch path");
  for (let i = 0; t.pendingReads > 0 && i < 500; i++) await new Promise((r) => setTimeout(r, 10));
  if (t.pendingReads > 0) throw new Error("kernel timestamps were not read back within 5 s");
  return structuredClone(t.byKernel);
}
/** launches and GPU ms per kernel between two snapshots, sorted by GPU time. */
function kernelDelta(before, after) {
  return Object.entries(after)
    .map(([k, v]) => [k, { launches: v.launches - (before[k]?.launches ?? 0), ms: v.totalMs - (before[k]?.totalMs ?? 0) }])
    .filter(([, v]) => v.launches > 0)
    .sort((a, b) => b[1].ms - a[1].ms || a[0].localeCompare(b[0]));
}
/** One prefill of `n` tokens, timed per kernel (the --prefill-gpu-time mode). */
async function prefillRun(n, argmax) {
  const vocab = model.config.vocab_size;
  if (n > model.maxSequenceLength) throw new Error(`--prefill-gpu-time ${n} exceeds the package's context window (${model.maxSequenceLength})`);
  const prompt = Array.from({ length: n }, (_, i) => (i * 7919 + 13) % vocab);
  await model.prefill(prompt); // warm-up: pipelines, bind groups
  await model.reset();
  const before = await settledGpuTime();
  const untimed = model.stats().dispatch.gpuTime.untimed;
  const t0 = performance.now();
  const token = argmax(await model.prefill(prompt));
  const prefillMs = performance.now() - t0;
  const per = kernelDelta(before, await settledGpuTime());
  return {
    package: positionals[0],
    mode: "prefill",
    tokens: n,
    launches: per.reduce((a, [, v]) => a + v.launches, 0),
    kernels: per.length,
    gpuMs: per.reduce((a, [, v]) => a + v.ms, 0),
    byKernel: Object.fromEntries(per),
    untimed: model.stats().dispatch.gpuTime.untimed - untimed,
    prefillMs,
    token,
  };
}
try {
  const argmax = (logits) => {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  };
  if (prefillTokens !== undefined) console.log(JSON.stringify(await prefillRun(prefillTokens, argmax)));
  else await decodeRun(argmax);
} finally {
  await model.dispose();
}

/** The decode mode: launches (and with --gpu-time GPU ms) per decode token. */
async function decodeRun(argmax) {
  const vocab = model.config.vocab_size;
  const prompt = Array.from({ length: promptLen }, (_, i) => (i * 7919 + 13) % vocab);
  const tokens = [argmax(await model.prefill(prompt))];
  // One warm-up step: the first decode creates the bind-group cache entries (launched all the same).
  tokens.push(argmax(await model.decode(tokens.at(-1))));
  const before = structuredClone(model.stats().dispatch?.launchesByKernel);
  if (before === undefined) throw new Error("no launch counters: the package did not load on Hearth's WebGPU launch path");
  const timeBefore = timing ? await settledGpuTime() : undefined;
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) tokens.push(argmax(await model.decode(tokens.at(-1))));
  const ms = performance.now() - t0;
  let gpuMsPerToken;
  if (timeBefore !== undefined) {
    const after = await settledGpuTime();
    const per = Object.entries(after)
      .map(([k, v]) => [k, (v.totalMs - (timeBefore[k]?.totalMs ?? 0)) / steps])
      .filter(([, v]) => v > 0)
      .sort((a, b) => b[1] - a[1]);
    gpuMsPerToken = { total: per.reduce((a, [, v]) => a + v, 0), byKernel: Object.fromEntries(per), untimed: model.stats().dispatch.gpuTime.untimed };
  }
  const counted = perToken(before, model.stats().dispatch.launchesByKernel, steps);
  const byKernel = Object.fromEntries(Object.entries(counted.byKernel).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
  console.log(
    JSON.stringify({
      package: positionals[0],
      loadedTarget: model.loadInfo.target,
      total: counted.total,
      kernels: Object.keys(byKernel).length,
      byKernel,
      decodeTokS: (steps * 1000) / ms,
      gpuMsPerToken,
      tokens,
    }),
  );
}
