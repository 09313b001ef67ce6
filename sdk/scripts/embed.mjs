#!/usr/bin/env node
// Sentence embeddings with a compiled text-encoder package in Node on Dawn WebGPU (EncoderModel).
// Prints JSON lines on stdout: one per text, in input order,
//   {"index": i, "tokens": n, "truncated": false, "embedding": [...dim floats]}
// then one summary line {"done": true, modelId, dim, maxTokens, calls, runs, stats, adapter, ...}.
// Runtime logs go to stderr. Float32 values are printed as the shortest decimal that round-trips, so
// parsing them as float64 and casting to float32 gives the exact bits back.
//
// Usage: node scripts/embed.mjs <packageDir> --texts file.json [--variant q4f32_1] [--batch N]
//                               [--repeat N] [--ids] [--target wasm-cpu] [--no-vectors]
//   <packageDir>   the package folder (with hearth-manifest.json), or the model folder with --variant
//   --texts        a JSON file holding an array of strings
//   --batch N      texts per embed call (default: all of them in one call)
//   --repeat N     embed everything N times (the first run pays the shader JIT of each bucket); "runs"
//                  lists each run's time; vectors are those of the last run and "deterministic" says
//                  whether every run gave the same bits
//   --ids          also print each text's token ids (after truncation)
//   --no-vectors   only the summary line (benchmarks)
// Exit: 0 ok, 2 error (a JSON line {"error": ...} is still printed).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

// In the repo the SDK's .ts sources load through tsx; the GPU bundle (esbuild, bench/gpu/prepare.py) has them inlined.
if (!globalThis.__HEARTH_BUNDLED__) {
  const { register } = await import("tsx/esm/api");
  register();
}

function positive(s, what) {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a positive integer, got ${s}`);
  return n;
}

function sameBits(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = new Uint32Array(a[i].buffer, a[i].byteOffset, a[i].length);
    const y = new Uint32Array(b[i].buffer, b[i].byteOffset, b[i].length);
    if (x.length !== y.length || x.some((v, j) => v !== y[j])) return false;
  }
  return true;
}

let model;
const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
try {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      texts: { type: "string" },
      variant: { type: "string" },
      batch: { type: "string" },
      repeat: { type: "string", default: "1" },
      ids: { type: "boolean", default: false },
      target: { type: "string", default: "webgpu" }, // "webgpu" also on a software adapter: tests compare the WebGPU build
      "no-vectors": { type: "boolean", default: false },
    },
  });
  if (positionals.length !== 1 || values.texts === undefined) {
    throw new Error(
      "usage: node scripts/embed.mjs <packageDir> --texts file.json [--variant V] [--batch N] [--repeat N] [--ids] [--target wasm-cpu] [--no-vectors]",
    );
  }
  const texts = JSON.parse(readFileSync(values.texts, "utf8"));
  if (!Array.isArray(texts) || !texts.every((t) => typeof t === "string")) throw new Error(`${values.texts}: expected a JSON array of strings`);
  const repeat = positive(values.repeat, "--repeat");
  const batch = values.batch === undefined ? Math.max(1, texts.length) : positive(values.batch, "--batch");

  const { installNodeGPU } = await import("../test/support/node-gpu.ts");
  const { fileFetch } = await import("../test/support/file-fetch.ts");
  const { EncoderModel } = await import("../src/encoder/model.ts");

  const gpu = values.target === "wasm-cpu" ? undefined : await installNodeGPU();
  const url = pathToFileURL(resolve(positionals[0]) + "/").href;
  const truncatedSeen = [];
  model = await EncoderModel.load(url, {
    gpu,
    fetch: fileFetch,
    variant: values.variant,
    target: values.target,
    cache: "none",
    // HEARTH_PIPELINES=eager: compile every bucket's pipelines while loading (the encoder's default is lazy).
    ...(process.env.HEARTH_PIPELINES ? { pipelines: process.env.HEARTH_PIPELINES } : {}),
    logger: (m) => console.error(`[hearth] ${m}`),
    onTruncate: (r) => truncatedSeen.push(r),
  });

  const runs = [];
  let last;
  let deterministic = true;
  for (let r = 0; r < repeat; r++) {
    model.resetStats();
    const vectors = [];
    const truncated = [];
    const tokenCounts = [];
    const calls = {};
    const t0 = performance.now();
    for (let i = 0; i < texts.length; i += batch) {
      const res = await model.embedDetailed(texts.slice(i, i + batch));
      vectors.push(...res.vectors);
      truncated.push(...res.truncated);
      tokenCounts.push(...res.tokenCounts);
      for (const [fn, n] of Object.entries(res.calls)) calls[fn] = (calls[fn] ?? 0) + n;
    }
    const ms = performance.now() - t0;
    const s = model.stats().embed;
    runs.push({
      ms,
      textsPerSec: texts.length / (ms / 1000),
      gpuMs: s.ms,
      syncMs: s.syncMs,
      tokenizeMs: s.tokenizeMs,
      tokens: s.tokens,
      paddedTokens: s.paddedTokens,
      calls,
    });
    if (last !== undefined && !sameBits(last.vectors, vectors)) deterministic = false;
    last = { vectors, truncated, tokenCounts, calls };
  }
  // embed() (the Embedder entry point) must report truncation through onTruncate: check it once.
  const firstCut = last.truncated.indexOf(true);
  if (firstCut >= 0) {
    const probe = await model.embed([texts[firstCut]]);
    if (probe.length !== 1 || truncatedSeen.length !== 1 || truncatedSeen[0].indices[0] !== 0) {
      throw new Error(`embed() did not report the truncation of text ${firstCut} (${JSON.stringify(truncatedSeen)})`);
    }
  }

  if (!values["no-vectors"]) {
    last.vectors.forEach((v, i) => {
      const line = { index: i, tokens: last.tokenCounts[i], truncated: last.truncated[i], embedding: Array.from(v) };
      if (values.ids) line.ids = Array.from(model.tokenize(texts[i]).ids);
      out(line);
    });
  }
  out({
    done: true,
    runtime: values.target === "wasm-cpu" ? "node-wasm-cpu" : "node-dawn",
    package: model.baseUrl,
    modelId: model.modelId,
    quantization: model.config.quantization,
    dim: model.dim,
    maxTokens: model.maxTokens,
    normalized: model.normalized,
    usesF16: model.usesF16,
    buckets: model.buckets.map((k) => k.fn),
    texts: texts.length,
    batch,
    calls: last.calls,
    truncatedIndices: last.truncated.flatMap((t, i) => (t ? [i] : [])),
    onTruncateReports: truncatedSeen.length,
    runs,
    deterministic,
    stats: model.stats(),
    loadInfo: model.loadInfo,
    adapter: model.adapter,
  });
} catch (err) {
  console.error(err?.stack ?? String(err));
  out({ runtime: "node-dawn", error: String(err?.message ?? err), errorName: err?.name ?? "Error", file: err?.file ?? null });
  process.exitCode = 2;
} finally {
  await model?.dispose().catch(() => {});
}
