#!/usr/bin/env node
// Stage 2 (WebGPU) of the document-QA benchmark: greedy answers from a chat package's WebGPU build in Node
// (the SDK's DecoderModel on Dawn), on prompt token ids rendered by the Python stage, so its tokens can be
// compared with the native build's token for token.
//
// Usage (from sdk/): cd sdk && node --import tsx ../bench/qa/webgpu.mjs <package dir> --in <ids.json> --out <tokens.json>
//   [--target webgpu|wasm-cpu] (default webgpu; wasm-cpu: the package's no-WebGPU build, bench/qa_wasm_cpu.py)
//   ids.json: {"maxNewTokens": 64, "prompts": [{"id": "q001", "ids": [1, 2, ...]}]}
//   tokens.json: {"adapter", "package", "prompts": [{"id", "tokens", "ms"}], "loadMs"}; the stop token is not
//   included in "tokens" (as in compile/hearth/eval/qa.py).
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const log = (s) => process.stderr.write(`[qa-webgpu] ${s}\n`);
const sdk = resolve(dirname(new URL(import.meta.url).pathname), "../../sdk");
const { values: args, positionals } = parseArgs({ allowPositionals: true, options: { in: { type: "string" }, out: { type: "string" }, target: { type: "string", default: "webgpu" } } });
if (positionals.length !== 1 || args.in === undefined || args.out === undefined) {
  console.error("usage: cd sdk && node --import tsx ../bench/qa/webgpu.mjs <package dir> --in ids.json --out tokens.json");
  process.exit(2);
}
const job = JSON.parse(readFileSync(args.in, "utf8"));
const { installNodeGPU } = await import(pathToFileURL(join(sdk, "test/support/node-gpu.ts")).href);
const { fileFetch } = await import(pathToFileURL(join(sdk, "test/support/file-fetch.ts")).href);
const { DecoderModel } = await import(pathToFileURL(join(sdk, "src/decoder/model.ts")).href);

const gpu = await installNodeGPU();
const t0 = performance.now();
const longest = Math.max(...job.prompts.map((p) => p.ids.length)) + job.maxNewTokens;
const model = await DecoderModel.load(pathToFileURL(resolve(positionals[0]) + "/").href, { gpu, target: args.target, fetch: fileFetch, maxTotalSeqLen: longest });
const loadMs = performance.now() - t0;
const stop = model.config.eos_token_ids;
log(`loaded ${positionals[0]} in ${(loadMs / 1000).toFixed(1)} s on ${JSON.stringify(model.adapter)}; stop ${JSON.stringify(stop)}`);
const out = [];
for (const p of job.prompts) {
  await model.reset();
  const s0 = performance.now();
  const tokens = await model.greedy(p.ids, job.maxNewTokens, { stopTokens: stop });
  if (tokens.length > 0 && stop.includes(tokens[tokens.length - 1])) tokens.pop();
  const ms = performance.now() - s0;
  out.push({ id: p.id, tokens, ms });
  log(`${p.id}: ${p.ids.length} prompt tokens, ${tokens.length} new, ${(ms / 1000).toFixed(1)} s`);
  writeFileSync(args.out, `${JSON.stringify({ adapter: model.adapter, package: resolve(positionals[0]), loadMs, prompts: out })}\n`);
}
await model.dispose?.();
process.exit(0);
