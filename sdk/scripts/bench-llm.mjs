#!/usr/bin/env node
// LLM speed benchmark of one compiled decoder package in Node on Dawn WebGPU (bench/llm.py drives it;
// also bundled for the H200 run by bench/gpu/prepare.py). Prints one JSON line on stdout, logs on stderr.
//
// Usage: node scripts/bench-llm.mjs <packageDir> [--runs 5] [--prefill 128,512] [--decode-new 128]
//                                   [--decode-prompt 16] [--ttft-prompt 128]
// Measures, with the timings taken around the public DecoderModel calls (logits readback included):
//   load_cold_ms   first DecoderModel.load into an empty FileSystemArtifactStore (read + SHA-256 + store,
//                  shader compilation, weights upload): what a first visit costs
//   load_warm_ms   a second load from that store, on a new device, in the same process
//   prefill_<L>    L-token prompt, one prefill() (chunked by the package's prefill_chunk_size), tok/s
//   decode         --decode-new decode() calls after a --decode-prompt prompt, greedy on the host,
//                  EOS ignored, tok/s
//   ttft_ms        prefill of --ttft-prompt tokens + argmax of the logits
// Every metric lists all --runs samples; the caller takes medians. Lengths that do not fit the
// package's context window are reported under "skipped" with the reason.
// Exit: 0 ok, 2 error (a JSON line {"error": ...} is still printed).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

// In the repo the SDK's .ts sources load through tsx; the H200 bundle (esbuild) has them inlined.
if (!globalThis.__HEARTH_BUNDLED__) {
  const { register } = await import("tsx/esm/api");
  register();
}

function positive(s, what) {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a positive integer, got ${s}`);
  return n;
}

// Deterministic token ids spread over the vocabulary (values do not change the speed).
function promptIds(n, vocab, salt = 0) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7919 + 104729 * salt + 13) % vocab;
  return out;
}

function argmax(a) {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
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
    },
  });
  if (positionals.length !== 1) throw new Error("usage: node scripts/bench-llm.mjs <packageDir> [--runs N] [--prefill 128,512] [--decode-new 128]");
  const runs = positive(values.runs, "--runs");
  const prefillLens = values.prefill.split(",").map((s) => positive(s, "--prefill"));
  const decodeNew = positive(values["decode-new"], "--decode-new");
  const decodePrompt = positive(values["decode-prompt"], "--decode-prompt");
  const ttftPrompt = positive(values["ttft-prompt"], "--ttft-prompt");

  const { installNodeGPU } = await import("../test/support/node-gpu.ts");
  const { fileFetch } = await import("../test/support/file-fetch.ts");
  const { DecoderModel } = await import("../src/engine/llm.ts");
  const { FileSystemArtifactStore } = await import("../src/load/fs-store.ts");

  // HEARTH_DAWN_FLAGS: Dawn options for create(), e.g. "enable-dawn-features=vulkan_enable_f16_on_nvidia"
  // (Dawn hides shader-f16 on NVIDIA's Vulkan driver unless that toggle is on; Chrome has the same flag).
  let gpu;
  if (process.env.HEARTH_DAWN_FLAGS) {
    const { configureVulkanEnv } = await import("../test/support/node-gpu.ts");
    configureVulkanEnv();
    const { create, globals } = await import("webgpu");
    Object.assign(globalThis, globals);
    gpu = create(process.env.HEARTH_DAWN_FLAGS.split(" ").filter(Boolean));
  } else gpu = await installNodeGPU();
  // HEARTH_DISPATCH=tvmjs: tvmjs's own kernel-launch encoding instead of Hearth's (A/B of webgpu-dispatch.ts).
  const dispatch = process.env.HEARTH_DISPATCH ?? "hearth";
  const url = pathToFileURL(resolve(positionals[0]) + "/").href;
  storeDir = mkdtempSync(join(tmpdir(), "hearth-bench-store-"));
  const store = new FileSystemArtifactStore(storeDir);
  const load = async () => {
    const t0 = performance.now();
    const m = await DecoderModel.load(url, { gpu, fetch: fileFetch, cache: store, dispatch, logger: (s) => console.error(`[tvmjs] ${s}`) });
    return { m, ms: performance.now() - t0 };
  };
  const cold = await load();
  const loadCold = { ms: cold.ms, stats: cold.m.stats().load };
  await cold.m.dispose();
  const warm = await load();
  model = warm.m;
  const loadWarm = { ms: warm.ms, stats: model.stats().load };

  const vocab = model.config.vocab_size;
  const maxSeq = model.maxSequenceLength;
  const skipped = {};
  let breakdown = null;
  const samples = { load_cold_ms: [loadCold.ms], load_warm_ms: [loadWarm.ms] };

  // Warm-up: first calls of each function pay for lazy pipeline creation and buffer allocation.
  await model.reset();
  let tok = argmax(await model.prefill(promptIds(Math.min(decodePrompt, maxSeq - 4), vocab, 9)));
  for (let i = 0; i < 3; i++) tok = argmax(await model.decode(tok));
  for (const L of prefillLens) {
    if (L + 1 > maxSeq) continue;
    await model.reset();
    await model.prefill(promptIds(L, vocab, 8));
  }

  for (const L of prefillLens) {
    if (L > maxSeq) {
      skipped[`prefill_${L}`] = `prompt of ${L} tokens exceeds the context window (${maxSeq})`;
      continue;
    }
    const xs = [];
    for (let r = 0; r < runs; r++) {
      await model.reset();
      const ids = promptIds(L, vocab, r + 1);
      const t0 = performance.now();
      await model.prefill(ids);
      xs.push((L * 1000) / (performance.now() - t0));
    }
    samples[`prefill_${L}_tok_s`] = xs;
  }

  if (ttftPrompt <= maxSeq) {
    const xs = [];
    for (let r = 0; r < runs; r++) {
      await model.reset();
      const ids = promptIds(ttftPrompt, vocab, r + 11);
      const t0 = performance.now();
      argmax(await model.prefill(ids));
      xs.push(performance.now() - t0);
    }
    samples.ttft_ms = xs;
  } else skipped.ttft_ms = `prompt of ${ttftPrompt} tokens exceeds the context window (${maxSeq})`;

  if (decodePrompt + decodeNew <= maxSeq) {
    const xs = [];
    for (let r = 0; r < runs; r++) {
      await model.reset();
      let t = argmax(await model.prefill(promptIds(decodePrompt, vocab, r + 21)));
      const t0 = performance.now();
      for (let i = 0; i < decodeNew; i++) t = argmax(await model.decode(t));
      xs.push((decodeNew * 1000) / (performance.now() - t0));
    }
    samples.decode_tok_s = xs;
    // Where a decode step's time goes (last run; stats cover its 1 prefill + decodeNew decodes):
    // host-side encoding and submission of the dispatches vs waiting for the GPU + logits readback.
    const st = model.stats();
    breakdown = {
      decodeMsPerToken: st.decode.ms / st.decode.calls,
      syncMsPerCall: st.syncMs / (st.decode.calls + st.prefill.calls),
      submitMsPerCall: st.submitMs / (st.decode.calls + st.prefill.calls),
      dispatch: st.dispatch ?? null,
      calls: st.decode.calls + st.prefill.calls,
    };
  } else skipped.decode_tok_s = `${decodePrompt} + ${decodeNew} tokens exceed the context window (${maxSeq})`;

  console.log(
    JSON.stringify({
      runtime: "node-dawn",
      package: model.baseUrl,
      model_id: model.manifest.model_id,
      quantization: model.config.quantization,
      usesF16: model.usesF16,
      prefillChunkSize: model.prefillChunkSize,
      contextWindow: maxSeq,
      adapter: model.adapter,
      dawnFlags: process.env.HEARTH_DAWN_FLAGS ?? null,
      dispatch,
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
