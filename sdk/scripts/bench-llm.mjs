#!/usr/bin/env node
// LLM speed benchmark of one compiled decoder package in Node on Dawn WebGPU (bench/llm.py drives it;
// also bundled for the H200 run by bench/gpu/prepare.py). Prints one JSON line on stdout, logs on stderr.
//
// Usage: node scripts/bench-llm.mjs <packageDir> [--runs 5] [--prefill 128,512] [--decode-new 128]
//                                   [--decode-prompt 16] [--ttft-prompt 128] [--target webgpu|wasm-cpu]
// Measures, with the timings taken around the public DecoderModel calls (logits readback included):
//   load_cold_ms   first DecoderModel.load into an empty FileSystemArtifactStore (read + SHA-256 + store,
//                  shader compilation, weights upload): what a first visit costs
//   load_warm_ms   a second load from that store, on a new device, in the same process
//   the rest       scripts/bench-llm-protocol.mjs (prefill_<L>_tok_s, decode_tok_s, ttft_ms, breakdown), the
//                  protocol the Chromium benchmark (bench/embed/browser.mjs, runtime hearth-llm-chromium) shares
// Exit: 0 ok, 2 error (a JSON line {"error": ...} is still printed).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { measureDecoder } from "./bench-llm-protocol.mjs";

// In the repo the SDK's .ts sources load through tsx; the H200 bundle (esbuild) has them inlined.
if (!globalThis.__HEARTH_BUNDLED__) {
  const { register } = await import("tsx/esm/api");
  register();
}

/** HEARTH_SAMPLING modes: the settings of each decode-sampling A/B (host vs GPU sampler). */
const SAMPLING_MODES = {
  greedy: { temperature: 0 },
  temperature: { temperature: 0.7 },
  "top-k": { temperature: 0.7, top_k: 40 },
  "top-p": { temperature: 0.7, top_p: 0.95 },
  "top-k-top-p": { temperature: 0.7, top_k: 40, top_p: 0.95 },
  penalties: { temperature: 0.7, top_p: 0.95, repetition_penalty: 1.1, presence_penalty: 0.5, frequency_penalty: 0.5, logit_bias: { 0: -100, 1: 2 } },
};

function positive(s, what) {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a positive integer, got ${s}`);
  return n;
}

let model;
let storeDir;
try {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      runs: { type: "string", default: "5" },
      prefill: { type: "string", default: "128,512" },
      "decode-new": { type: "string", default: "128" },
      "decode-prompt": { type: "string", default: "16" },
      "ttft-prompt": { type: "string", default: "128" },
      // wasm-cpu: the package's CPU build (the no-WebGPU path), run by tvmjs on Node's wasm engine.
      target: { type: "string", default: "webgpu" },
    },
  });
  if (positionals.length !== 1) throw new Error("usage: node scripts/bench-llm.mjs <packageDir> [--runs N] [--prefill 128,512] [--decode-new 128]");
  const runs = positive(values.runs, "--runs");
  const prefillLens = values.prefill.split(",").map((s) => positive(s, "--prefill"));
  const decodeNew = positive(values["decode-new"], "--decode-new");
  const decodePrompt = positive(values["decode-prompt"], "--decode-prompt");
  const ttftPrompt = positive(values["ttft-prompt"], "--ttft-prompt");
  const target = values.target;
  if (target !== "webgpu" && target !== "wasm-cpu") throw new Error(`--target must be webgpu or wasm-cpu, got ${target}`);

  const { installNodeGPU } = await import("../test/support/node-gpu.ts");
  const { fileFetch } = await import("../test/support/file-fetch.ts");
  const { DecoderModel } = await import("../src/decoder/model.ts");
  const { FileSystemArtifactStore } = await import("../src/load/fs-store.ts");

  // HEARTH_DAWN_FLAGS (e.g. the f16 toggle on NVIDIA): read by installNodeGPU (test/support/node-gpu.ts).
  const gpu = await installNodeGPU();
  // HEARTH_DISPATCH=tvmjs: tvmjs's own kernel-launch encoding instead of Hearth's (A/B of webgpu-dispatch.ts).
  const dispatch = process.env.HEARTH_DISPATCH ?? "hearth";
  // HEARTH_SUBMIT_EVERY=<n>: submit every n launches (A/B of webgpu-dispatch.ts's submitEvery; unset: the SDK default).
  const submitEvery = process.env.HEARTH_SUBMIT_EVERY === undefined ? undefined : Number(process.env.HEARTH_SUBMIT_EVERY);
  // HEARTH_SPLIT_DEFERRED=0: a step encoded ahead (HEARTH_GPU_ARGMAX=picked) is submitted whole, not in parts.
  const splitDeferred = process.env.HEARTH_SPLIT_DEFERRED !== "0";
  // HEARTH_WEBGPU_BUILD=auto|fused|plain|subgroups: the package's webgpu-fused, plain webgpu or
  // webgpu-fused-sg<N> library (A/B from one package; unset: the SDK's auto choice, fused on a hardware
  // adapter, sg<N> where its subgroups are exactly N lanes). "loadedTarget" says which ran. The device is
  // requestGPU's, which asks for "subgroups" whenever the adapter has it (the sg libraries need it).
  const webgpuBuild = process.env.HEARTH_WEBGPU_BUILD || undefined;
  const url = pathToFileURL(resolve(positionals[0]) + "/").href;
  storeDir = mkdtempSync(join(tmpdir(), "hearth-bench-store-"));
  const store = new FileSystemArtifactStore(storeDir);
  const load = async () => {
    const t0 = performance.now();
    const m = await DecoderModel.load(url, {
      gpu,
      target,
      fetch: fileFetch,
      cache: store,
      dispatch,
      submitEvery,
      splitDeferred,
      webgpuBuild,
      logger: (s) => console.error(`[tvmjs] ${s}`),
    });
    return { m, ms: performance.now() - t0 };
  };
  const cold = await load();
  const loadCold = { ms: cold.ms, stats: cold.m.stats().load };
  await cold.m.dispose();
  const warm = await load();
  model = warm.m;
  const loadWarm = { ms: warm.ms, stats: model.stats().load };

  // HEARTH_GPU_ARGMAX=1: greedy decode steps take the argmax on the GPU (DecoderModel.decodeArgmax);
  // =ahead: the decode run is one DecoderModel.decodeGreedy call (argmax on the GPU, steps pipelined);
  // =picked: one DecoderModel.decodePicked call (logits read back, argmax on the host, steps encoded ahead).
  const argmaxEnv = process.env.HEARTH_GPU_ARGMAX;
  if (argmaxEnv !== undefined && !["0", "1", "ahead", "picked"].includes(argmaxEnv))
    throw new Error(`HEARTH_GPU_ARGMAX must be 0, 1, ahead or picked, got ${argmaxEnv}`);
  const gpuArgmax = argmaxEnv === "ahead" || argmaxEnv === "picked" ? argmaxEnv : argmaxEnv === "1";
  // HEARTH_SAMPLING=<mode> (SAMPLING_MODES): decode steps sample with that mode's settings instead of the
  // greedy argmax, on the host, or on the GPU with HEARTH_GPU_SAMPLING=1 (DecoderModel.decodeSample) or
  // =ahead (pipelined, DecoderModel.decodeSampled).
  const samplingMode = process.env.HEARTH_SAMPLING ?? null;
  let sampling = null;
  if (samplingMode !== null) {
    const params = SAMPLING_MODES[samplingMode];
    if (params === undefined) throw new Error(`HEARTH_SAMPLING must be one of ${Object.keys(SAMPLING_MODES).join(", ")}, got ${samplingMode}`);
    const { Sampler } = await import("../src/sample/sampler.ts");
    const { TokenHistory } = await import("../src/sample/history.ts");
    const newSampler = (p, prompt) => ({ sampler: new Sampler(p), history: new TokenHistory(prompt) });
    // HEARTH_GPU_SAMPLING=ahead: the decode run is one DecoderModel.decodeSampled call (pipelined; modes
    // without penalties only); =picked: one DecoderModel.decodePicked call (sampled on the host, steps
    // encoded ahead).
    const g = process.env.HEARTH_GPU_SAMPLING;
    sampling = { params: { ...params, seed: 1 }, gpu: g === "ahead" || g === "picked" ? g : g === "1", newSampler };
  }
  const measured = await measureDecoder(model, { runs, prefillLens, decodeNew, decodePrompt, ttftPrompt, gpuArgmax, sampling });
  const samples = { load_cold_ms: [loadCold.ms], load_warm_ms: [loadWarm.ms], ...measured.samples };
  const { skipped, breakdown } = measured;

  console.log(
    JSON.stringify({
      runtime: target === "webgpu" ? "node-dawn" : "node-wasm-cpu",
      package: model.baseUrl,
      model_id: model.manifest.model_id,
      quantization: model.config.quantization,
      usesF16: model.usesF16,
      prefillChunkSize: model.prefillChunkSize,
      contextWindow: model.maxSequenceLength,
      adapter: model.adapter,
      dawnFlags: process.env.HEARTH_DAWN_FLAGS ?? null,
      dispatch,
      submitEvery: submitEvery ?? null,
      splitDeferred,
      webgpuBuild: webgpuBuild ?? null,
      loadedTarget: model.loadInfo.target,
      gpuArgmax,
      sampling: samplingMode,
      gpuSampling: sampling?.gpu ?? false,
      runs,
      breakdown,
      samples,
      skipped,
      load: { cold: loadCold.stats, warm: loadWarm.stats },
    }),
  );
} catch (err) {
  console.error(err?.stack ?? String(err));
  console.log(JSON.stringify({ runtime: "node-dawn", error: String(err?.message ?? err), errorName: err?.name ?? null }));
  process.exitCode = 2;
} finally {
  await model?.dispose();
  if (storeDir !== undefined) rmSync(storeDir, { recursive: true, force: true });
}
