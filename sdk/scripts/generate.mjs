#!/usr/bin/env node
// Greedy generation with a compiled decoder package in Node on Dawn WebGPU; prints one JSON line
// {tokens, stats, adapter, ...} on stdout (runtime logs go to stderr).
//
// Usage: node scripts/generate.mjs <packageDir> --ids 1,2,3 [--max-new 32] [--stop 2,0] [--variant q4f16_1]
//                                  [--trace K] [--repeat N] [--prefill-chunk N] [--target webgpu|wasm-cpu|auto]
//                                  [--webgpu-build auto|fused|plain|subgroups]
//   <packageDir>  the package folder (with hearth-manifest.json), or the model folder with --variant
//   --target      which build runs (default webgpu, also on a software adapter such as lavapipe: this
//                 script is how tests compare the WebGPU build with the native one); "auto" is the SDK's
//                 own choice (the wasm-cpu build on a software adapter); "deviceKind" in the output says
//                 which ran
//   --webgpu-build  with target webgpu: the package's fused or plain WebGPU library (the SDK's webgpuBuild;
//                 default auto: fused on a hardware adapter, plain on lavapipe); "target" in the output says
//                 which loaded
//   --stop        stop token ids (default: none, exactly --max-new tokens, like the native greedy)
//   --trace K     also report, for every generated position, the top K (token, logit) pairs and the
//                 margin between the best two logits (same calls as greedy: prefill, then decode)
//   --prefill-chunk N  tokens per prefill call (default: the package's prefill_chunk_size)
//   --repeat N    run the generation N times (reset in between); "runs" lists every token list and
//                 "deterministic" says whether they agree; stats are those of the last run
// Exit: 0 ok, 2 error (a JSON line {"error": ...} is still printed).
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { register } from "tsx/esm/api";

register();

function ids(s, what) {
  if (s === undefined || s.trim() === "") return [];
  const out = s.split(",").map((x) => Number(x.trim()));
  if (!out.every((x) => Number.isInteger(x) && x >= 0)) throw new Error(`${what}: expected comma-separated token ids, got ${s}`);
  return out;
}

function positive(s, what) {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a positive integer, got ${s}`);
  return n;
}

let model;
try {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      ids: { type: "string" },
      "max-new": { type: "string", default: "32" },
      stop: { type: "string" },
      variant: { type: "string" },
      trace: { type: "string" },
      repeat: { type: "string", default: "1" },
      "prefill-chunk": { type: "string" },
      target: { type: "string", default: "webgpu" },
      "webgpu-build": { type: "string" },
    },
  });
  if (positionals.length !== 1 || values.ids === undefined) {
    throw new Error(
      "usage: node scripts/generate.mjs <packageDir> --ids 1,2,3 [--max-new 32] [--stop 2] [--variant V] [--trace K] [--repeat N] [--prefill-chunk N]",
    );
  }
  const prompt = ids(values.ids, "--ids");
  if (prompt.length === 0) throw new Error("--ids: at least one token id");
  const maxNew = positive(values["max-new"], "--max-new");
  const stopTokens = ids(values.stop, "--stop");
  const trace = values.trace === undefined ? 0 : positive(values.trace, "--trace");
  const repeat = positive(values.repeat, "--repeat");
  const prefillChunk = values["prefill-chunk"] === undefined ? undefined : positive(values["prefill-chunk"], "--prefill-chunk");

  const { installNodeGPU } = await import("../test/support/node-gpu.ts");
  const { fileFetch } = await import("../test/support/file-fetch.ts");
  const { DecoderModel } = await import("../src/decoder/model.ts");
  const { argmax, topK } = await import("../src/sample/argmax.ts");

  const gpu = await installNodeGPU();
  const url = pathToFileURL(resolve(positionals[0]) + "/").href;
  model = await DecoderModel.load(url, {
    gpu,
    fetch: fileFetch,
    variant: values.variant,
    ...(values.target === "auto" ? {} : { target: values.target }),
    webgpuBuild: values["webgpu-build"],
    prefillChunkSize: prefillChunk,
    logger: (m) => console.error(`[tvmjs] ${m}`),
  });

  const runs = [];
  const runStats = [];
  let steps;
  for (let r = 0; r < repeat; r++) {
    if (r > 0) await model.reset(); // also resets the stats: each run is measured on its own
    if (trace > 0) {
      // greedy() spelled out, recording the logits' top-K at every generated position.
      steps = [];
      const record = (logits) => {
        const top = topK(logits, Math.max(2, trace));
        steps.push({ top: top.slice(0, trace).map((t) => [t.token, t.logit]), margin: top[0].logit - top[1].logit });
        return argmax(logits);
      };
      const out = [record(await model.prefill(prompt))];
      while (out.length < maxNew && !stopTokens.includes(out[out.length - 1])) out.push(record(await model.decode(out[out.length - 1])));
      runs.push(out);
    } else {
      runs.push(await model.greedy(prompt, maxNew, { stopTokens }));
    }
    const s = model.stats();
    runStats.push({ prefillTokPerS: s.prefill.tokensPerSec, decodeTokPerS: s.decode.tokensPerSec, prefillMs: s.prefill.ms, decodeMs: s.decode.ms });
  }
  const tokens = runs[runs.length - 1];
  const result = {
    runtime: "node-dawn",
    package: model.baseUrl,
    model_id: model.manifest.model_id,
    quantization: model.config.quantization,
    usesF16: model.usesF16,
    deviceKind: model.loadInfo.deviceKind,
    target: model.loadInfo.target,
    promptTokens: prompt.length,
    prefillChunkSize: model.prefillChunkSize,
    tokens,
    stats: model.stats(),
    adapter: model.adapter,
  };
  if (repeat > 1) {
    result.runs = runs;
    result.runStats = runStats;
    result.deterministic = runs.every((t) => JSON.stringify(t) === JSON.stringify(tokens));
  }
  if (steps !== undefined) result.steps = steps;
  console.log(JSON.stringify(result));
} catch (err) {
  console.error(err?.stack ?? String(err));
  console.log(
    JSON.stringify({
      runtime: "node-dawn",
      error: String(err?.message ?? err),
      errorName: err?.name ?? null,
      file: err?.file ?? null,
    }),
  );
  process.exitCode = 2;
} finally {
  await model?.dispose();
}
