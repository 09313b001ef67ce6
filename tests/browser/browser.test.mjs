// Browser tests (node:test): headless Chromium + module Worker + the built SDK.
// Run: (cd sdk && npm run test:browser)   or   node --test tests/browser/   (after `npm run build` in sdk/)
// Optional: HEARTH_CASE_DIR=<case folder> also runs that case end to end in Chromium.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { openBrowser, withBrowser } from "./lib/harness.mjs";

const MiB = 1 << 20;
const caseDir = process.env.HEARTH_CASE_DIR;
const f16CaseDir = mkdtempSync(join(tmpdir(), "hearth-f16-case-"));
writeFileSync(
  join(f16CaseDir, "case.json"),
  JSON.stringify({
    name: "needs-f16",
    wasm: "absent.wasm",
    function: "forward",
    requires_f16: true,
    inputs: [{ name: "x", shape: [2], dtype: "float16", data: [1, 2] }],
    params: [],
    expected: { shape: [2], dtype: "float16", data: [1, 2] },
    tolerance: 0,
  }),
);

// One browser for the whole file.
let h;
before(async () => {
  const mounts = { "/f16case/": f16CaseDir, ...(caseDir ? { "/case/": resolve(caseDir) } : {}) };
  h = await openBrowser({ mounts });
});
after(async () => {
  await h?.close();
  rmSync(f16CaseDir, { recursive: true, force: true });
});

test("module Worker sees a WebGPU adapter with sane limits (describeAdapter/requestGPU)", async (t) => {
  const r = await h.run({ task: "probe" });
  assert.equal(r.ok, true, JSON.stringify(r.error));
  const info = r.result;
  t.diagnostic(`adapter: vendor=${info.vendor} arch=${info.architecture} fallback=${info.isFallback} shaderF16=${info.shaderF16} requestGPU=${info.requestGPUMs.toFixed(1)}ms`);
  assert.ok(info.vendor.length > 0);
  assert.ok(info.limits.maxStorageBufferBindingSize >= 128 * MiB);
  assert.ok(info.limits.maxBufferSize >= 256 * MiB);
  assert.ok(info.limits.maxComputeInvocationsPerWorkgroup >= 256);
  assert.equal(info.shaderF16, info.features.includes("shader-f16"));
  assert.equal(info.deviceFeatures.includes("shader-f16"), info.shaderF16);
});

test("WGSL compute round trip in the Worker matches the CPU", async (t) => {
  const r = await h.run({ task: "compute", n: 1000 });
  assert.equal(r.ok, true, JSON.stringify(r.error));
  t.diagnostic(`first ${r.result.firstMs.toFixed(1)} ms, second ${r.result.secondMs.toFixed(1)} ms`);
  assert.equal(r.result.mismatches, 0);
  assert.equal(r.result.head[0], -100);
});

test("tvmjs loads in a module Worker from dist/vendor/tvmjs.js", async (t) => {
  const r = await h.run({ task: "tvmjs" });
  assert.equal(r.ok, true, JSON.stringify(r.error));
  t.diagnostic(`tvmjs import: ${r.result.loadMs.toFixed(1)} ms`);
  assert.equal(r.result.instantiate, "function");
  assert.equal(r.result.wasiStart, "function");
  assert.deepEqual(r.result.wasiImports, ["env", "wasi_snapshot_preview1"]);
});

test("runCase in the Worker skips an f16 case when the adapter lacks shader-f16", async (t) => {
  const probe = await h.run({ task: "probe" });
  if (probe.result?.shaderF16) {
    t.skip("this Chromium adapter has shader-f16");
    return;
  }
  const r = await h.run({ task: "case", caseUrl: "/f16case/" });
  assert.equal(r.ok, true, JSON.stringify(r.error));
  assert.equal(r.result.skipped, "adapter has no shader-f16");
});

test("end-to-end case in Chromium (HEARTH_CASE_DIR)", { skip: caseDir ? false : "set HEARTH_CASE_DIR=<case folder> to run" }, async (t) => {
  const r = await h.run({ task: "case", caseUrl: "/case/" });
  assert.equal(r.ok, true, JSON.stringify(r.error));
  t.diagnostic(JSON.stringify(r.result));
  if ("skipped" in r.result) return t.skip(r.result.skipped);
  assert.equal(r.result.ok, true, r.result.problems.join("; "));
});

test("without --enable-unsafe-webgpu, requestGPU fails with WebGPUUnavailableError", async () => {
  const r = await withBrowser({ webgpu: false, onLog: () => {} }, (h2) => h2.run({ task: "probe" }));
  assert.equal(r.ok, false);
  assert.equal(r.error.name, "WebGPUUnavailableError");
  assert.ok(["no-adapter", "no-navigator-gpu"].includes(r.error.reason), r.error.reason);
  assert.match(r.error.message, /wasm-cpu build/);
});
