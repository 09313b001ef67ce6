#!/usr/bin/env node
// Print the Chromium WebGPU adapter (obtained inside a module Worker through @hearth/sdk's requestGPU)
// as one JSON line. Exit 1 with a message on stderr if there is no adapter.
// Usage: (cd sdk && npm run build) && node tests/browser/probe-adapter.mjs
import { withBrowser } from "./lib/harness.mjs";

const t0 = performance.now();
try {
  const out = await withBrowser({}, async (h) => {
    const r = await h.run({ task: "probe" });
    return { r, launchMs: h.launchMs };
  });
  if (!out.r.ok) {
    console.error(`probe-adapter (chromium): ${out.r.error.name}: ${out.r.error.message}`);
    process.exitCode = 1;
  } else {
    console.log(JSON.stringify({ runtime: "chromium-worker", ...out.r.result, launchMs: out.launchMs, totalMs: performance.now() - t0 }));
  }
} catch (err) {
  console.error(`probe-adapter (chromium): ${err?.stack ?? err}`);
  process.exitCode = 1;
}
