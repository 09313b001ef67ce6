#!/usr/bin/env node
// Run one smoke case folder (case.json + wasm + tensor cache) in headless Chromium, inside a module
// Worker via @hearth/sdk's runCase, and print the result as one JSON line (logs on stderr).
// Usage: (cd sdk && npm run build) && node tests/browser/run-case.mjs <caseDir> [--runs N]
// Exit: 0 ok or skipped, 1 ran but not ok, 2 error (a JSON line {"error": ...} is still printed).
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { withBrowser } from "./lib/harness.mjs";

const args = process.argv.slice(2);
const runsAt = args.indexOf("--runs");
const runs = runsAt >= 0 ? Number(args.splice(runsAt, 2)[1]) : 5;
const caseDir = args[0];
if (caseDir === undefined || !Number.isInteger(runs) || runs < 1) {
  console.error("usage: node tests/browser/run-case.mjs <caseDir> [--runs N]");
  process.exit(2);
}
if (!existsSync(join(caseDir, "case.json"))) {
  console.error(`run-case (chromium): ${join(caseDir, "case.json")} does not exist`);
  process.exit(2);
}

try {
  const out = await withBrowser({ mounts: { "/case/": resolve(caseDir) } }, async (h) => {
    const r = await h.run({ task: "case", caseUrl: "/case/", runs });
    return { r, launchMs: h.launchMs };
  });
  if (out.r.ok) {
    const result = out.r.result;
    console.log(JSON.stringify({ runtime: "chromium-worker", ...result, browserLaunchMs: out.launchMs }));
    process.exitCode = "skipped" in result || result.ok ? 0 : 1;
  } else {
    const e = out.r.error;
    if (e.stack) console.error(e.stack);
    console.log(JSON.stringify({ runtime: "chromium-worker", error: e.message, errorName: e.name, reason: e.reason ?? null }));
    process.exitCode = 2;
  }
} catch (err) {
  console.error(err?.stack ?? String(err));
  console.log(JSON.stringify({ runtime: "chromium-worker", error: String(err?.message ?? err) }));
  process.exitCode = 2;
}
