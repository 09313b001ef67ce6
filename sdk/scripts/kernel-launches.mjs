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
  options: { steps: { type: "string", default: "8" }, prompt: { type: "string", default: "16" }, "gpu-time": { type: "boolean", default: false } },
});
if (positionals.length !== 1) throw new Error("usage: node scripts/kernel-launches.mjs <packageDir> [--steps 8] [--prompt 16]");
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
const timing = values["gpu-time"];
const model = await DecoderModel.load(url, { gpu, target: "webgpu", fetch: fileFetch, dispatch: "hearth", kernelTiming: timing });
/** The kernel-time totals once every submitted batch has been read back. */
async function settledGpuTime() {
  const t = model.stats().dispatch?.gpuTime;
  if (t === undefined) throw new Error("no kernel timing: the package did not load on Hearth's WebGPU launch path");
  for (let i = 0; t.pendingReads > 0 && i < 500; i++) await new Promise((r) => setTimeout(r, 10));
  if (t.pendingReads > 0) throw new Error("kernel timestamps were not read back within 5 s");
  return structuredClone(t.byKernel);
}
try {
  const argmax = (logits) => {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  };
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
      total: counted.total,
      kernels: Object.keys(byKernel).length,
      byKernel,
      decodeTokS: (steps * 1000) / ms,
      gpuMsPerToken,
      tokens,
    }),
  );
} finally {
  await model.dispose();
}
