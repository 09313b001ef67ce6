#!/usr/bin/env node
// Run one smoke case (a folder with case.json, the wasm and tensor-cache.json + shards) in Node on Dawn
// WebGPU and print the result as one JSON line on stdout (runtime logs go to stderr).
// Usage: node scripts/run-case.mjs <caseDir> [--runs N]
// Exit: 0 ok or skipped, 1 ran but not ok, 2 error (a JSON line {"error": ...} is still printed).
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { register } from "tsx/esm/api";

register();
const args = process.argv.slice(2);
const runsAt = args.indexOf("--runs");
const runs = runsAt >= 0 ? Number(args.splice(runsAt, 2)[1]) : 5;
const caseDir = args[0];
if (caseDir === undefined || !Number.isInteger(runs) || runs < 1) {
  console.error("usage: node scripts/run-case.mjs <caseDir> [--runs N]");
  process.exit(2);
}
const { installNodeGPU } = await import("../test/support/node-gpu.ts");
const { fileFetch } = await import("../test/support/file-fetch.ts");
const { runCase } = await import("../src/testing/smoke.ts");

const caseUrl = pathToFileURL(resolve(caseDir) + "/").href;
try {
  const gpu = await installNodeGPU();
  const result = await runCase(caseUrl, { gpu, fetch: fileFetch, runs, logger: (m) => console.error(`[tvmjs] ${m}`) });
  console.log(JSON.stringify({ runtime: "node-dawn", ...result }));
  process.exitCode = "skipped" in result || result.ok ? 0 : 1;
} catch (err) {
  console.error(err?.stack ?? String(err));
  console.log(JSON.stringify({ runtime: "node-dawn", error: String(err?.message ?? err), errorName: err?.name ?? null }));
  process.exitCode = 2;
}
