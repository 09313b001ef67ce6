/**
 * kernelTiming (runtime/kernel-timer.ts): per-kernel GPU time from timestamp queries, on Dawn + lavapipe.
 * Each timed launch must be accounted to its kernel (launches timed == launches made), the times must be
 * positive, and timing must not change what the model computes (greedy tokens equal to an untimed load).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { DecoderModel } from "../src/engine.js";
import type { KernelGpuTime } from "../src/runtime/kernel-timer.js";
import { installNodeGPU } from "./support/node-gpu.js";
import { fileFetch } from "./support/file-fetch.js";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const PACKAGE = resolve(process.env["HEARTH_LLM_PACKAGE"] ?? join(REPO, "dist/tiny-llama-trained/q4f32_1"));
const PROMPT = Array.from({ length: 12 }, (_, i) => (i * 37 + 5) % 1000);
const STEPS = 6;

let timed: DecoderModel;
let plain: DecoderModel;

before(async () => {
  assert.ok(existsSync(join(PACKAGE, "hearth-manifest.json")), `no compiled package at ${PACKAGE}: build it with \`make test\` or set HEARTH_LLM_PACKAGE`);
  const gpu = await installNodeGPU();
  const url = pathToFileURL(PACKAGE).href + "/";
  timed = await DecoderModel.load(url, { gpu, target: "webgpu", fetch: fileFetch, logger: () => {}, kernelTiming: true });
  plain = await DecoderModel.load(url, { gpu, target: "webgpu", fetch: fileFetch, logger: () => {} });
});

after(async () => {
  await timed?.dispose();
  await plain?.dispose();
});

const argmax = (logits: Float32Array): number => logits.reduce((best, v, i, a) => (v > (a[best] as number) ? i : best), 0);

async function greedy(model: DecoderModel): Promise<number[]> {
  await model.reset();
  const tokens = [argmax(await model.prefill(PROMPT))];
  for (let i = 0; i < STEPS; i++) tokens.push(argmax(await model.decode(tokens[tokens.length - 1] as number)));
  return tokens;
}

test("kernelTiming: every launch timed under its kernel, positive times, same tokens as without timing", async () => {
  const tokens = await greedy(timed);
  assert.deepEqual(tokens, await greedy(plain), "timing changed the model's output");
  const dispatch = timed.stats().dispatch;
  assert.ok(dispatch?.gpuTime !== undefined, "no gpuTime in stats().dispatch with kernelTiming on");
  for (let i = 0; dispatch.gpuTime.pendingReads > 0 && i < 500; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(dispatch.gpuTime.pendingReads, 0, "timestamps not read back");
  assert.equal(dispatch.gpuTime.untimed, 0);
  const launched = Object.entries(dispatch.launchesByKernel).filter(([, n]) => n > 0);
  assert.ok(launched.length >= 5, `too few kernels launched: ${JSON.stringify(launched)}`);
  for (const [name, n] of launched) {
    const t: KernelGpuTime | undefined = dispatch.gpuTime.byKernel[name];
    assert.ok(t !== undefined, `kernel ${name} launched ${n} times but never timed`);
    assert.equal(t.launches, n, `kernel ${name}: ${n} launches, ${t.launches} timed`);
    assert.ok(t.totalMs > 0, `kernel ${name}: GPU time ${t.totalMs} ms`);
  }
  assert.equal(plain.stats().dispatch?.gpuTime, undefined, "an untimed load reports no GPU times");
});
