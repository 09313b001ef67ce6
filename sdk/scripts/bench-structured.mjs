#!/usr/bin/env node
// Cost of structured output (issue 16) in Node on Dawn WebGPU: xgrammar compile time per JSON Schema
// (the test corpus, test/support/structured-schemas.ts, against the package's tokenizer) and decode speed
// with vs without a JSON-Schema constraint, through EngineCore (logits readback, mask, sampling: all of it).
// Prints one JSON line on stdout.
//
// Usage: node scripts/bench-structured.mjs <packageDir> [--tokens 96] [--runs 3]
//   decode tok/s = (completion tokens - 1) / (request time - time to first token), median of --runs, greedy;
//   "free": ignore_eos, max_tokens --tokens; "json": an array of --tokens/4 integers 0..999 under its schema
//   (the grammar decides every token), max_tokens 4 * --tokens. Timed after one warm-up request of each.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const { register } = await import("tsx/esm/api");
register();

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { tokens: { type: "string", default: "96" }, runs: { type: "string", default: "3" } },
});
if (positionals.length !== 1) throw new Error("usage: node scripts/bench-structured.mjs <packageDir> [--tokens 96] [--runs 3]");
const dir = resolve(positionals[0]);
const tokens = Number(values.tokens);
const runs = Number(values.runs);

const { EngineCore } = await import("../src/service/engine-core.ts");
const { installNodeGPU } = await import("../test/support/node-gpu.ts");
const { fileFetch } = await import("../test/support/file-fetch.ts");
const { SCHEMAS } = await import("../test/support/structured-schemas.ts");

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const gpu = await installNodeGPU();
const core = new EngineCore({ fetch: fileFetch, gpu, logger: () => {} });
const info = await core.load(`${pathToFileURL(dir).href}/`, { target: "webgpu" });

// -- compile time: a fresh grammar engine for this tokenizer, every corpus schema once (no cache hits) --
const { GrammarEngine } = await import("../src/grammar/engine.ts");
const { loadTokenizer } = await import("../src/tokenize/load.ts");
const { readFileSync } = await import("node:fs");
const tok = await loadTokenizer({
  tokenizerJson: readFileSync(`${dir}/tokenizer.json`, "utf8"),
  tokenizerConfig: JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, "utf8")),
});
const chatConfig = JSON.parse(readFileSync(`${dir}/mlc-chat-config.json`, "utf8"));
const t0 = performance.now();
const engine = new GrammarEngine({
  tokens: Array.from({ length: tok.vocabSize }, (_, id) => (tok.specialIds.has(id) ? "" : (tok.idToToken(id) ?? ""))),
  vocabType: chatConfig.tokenizer_info?.token_postproc_method ?? "raw",
  prependSpace: chatConfig.tokenizer_info?.prepend_space_in_encode === true,
  vocabSize: info.vocabSize,
  stopTokenIds: info.eosTokenIds,
});
await engine.compile({ type: "json" });
const firstMs = performance.now() - t0;
const compileMs = [];
for (const { schema } of SCHEMAS) {
  const c0 = performance.now();
  await engine.compile({ type: "json_schema", schema: JSON.stringify(schema) });
  compileMs.push(performance.now() - c0);
}

// -- decode speed --
const messages = [{ role: "user", content: "List numbers." }];
const n = Math.max(1, Math.floor(tokens / 4));
const schema = {
  type: "object",
  properties: { xs: { type: "array", items: { type: "integer", minimum: 0, maximum: 999 }, minItems: n, maxItems: n } },
  required: ["xs"],
};
const free = { messages, temperature: 0, max_tokens: tokens, ignore_eos: true };
const json = { messages, temperature: 0, max_tokens: 4 * tokens, response_format: { type: "json_schema", json_schema: { name: "xs", schema } } };
async function rate(req) {
  const t = performance.now();
  const r = await core.chatCompletion(req);
  const ms = performance.now() - t;
  return {
    tokS: ((r.usage.completion_tokens - 1) * 1000) / (ms - r.usage.time_to_first_token_ms),
    tokens: r.usage.completion_tokens,
    finish: r.choices[0].finish_reason,
  };
}
await rate(free);
await rate(json);
const freeRuns = [];
const jsonRuns = [];
for (let i = 0; i < runs; i++) {
  freeRuns.push(await rate(free));
  jsonRuns.push(await rate(json));
}
const freeTokS = median(freeRuns.map((r) => r.tokS));
const jsonTokS = median(jsonRuns.map((r) => r.tokS));
console.log(
  JSON.stringify({
    package: dir,
    vocab: info.vocabSize,
    adapter: info.adapter?.description ?? info.adapter?.device ?? null,
    tokenizer_info_and_first_compile_ms: Math.round(firstMs),
    schemas: SCHEMAS.length,
    compile_ms_median: +median(compileMs).toFixed(1),
    compile_ms_max: +Math.max(...compileMs).toFixed(1),
    compile_ms_total: Math.round(compileMs.reduce((a, b) => a + b, 0)),
    decode_tok_s_free: +freeTokS.toFixed(1),
    decode_tok_s_json_schema: +jsonTokS.toFixed(1),
    json_tokens: jsonRuns.map((r) => r.tokens),
    json_finish: jsonRuns.map((r) => r.finish),
    slowdown_pct: +((1 - jsonTokS / freeTokS) * 100).toFixed(1),
  }),
);
engine.dispose();
await core.unload();
