// Package loading in Chromium (module Workers, /sdk/dist unbundled): the Cache Storage store (the
// default) and the IndexedDB store against the real browser APIs, a warm load from a fresh Worker that
// fetches only the manifest, and, in a Chromium without WebGPU, the fallback to the package's wasm-cpu
// build giving the same greedy tokens as WebGPU (SwiftShader).
// Needs the wasm-cpu test package (see sdk/test/support/load-fixtures.ts CPU_PACKAGE; HEARTH_CPU_PACKAGE).
// Run: (cd sdk && npm run build) && node --test tests/browser/load.test.mjs
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openBrowser } from "./lib/harness.mjs";

// scripts/build_packages.py (run by `make test`) builds it with webgpu + wasm-cpu + llvm.
const PACKAGE = process.env.HEARTH_CPU_PACKAGE ?? fileURLToPath(new URL("../../dist/tiny-llama-trained/q4f32_1/", import.meta.url));
const HARNESS = fileURLToPath(new URL("./page/load-harness/", import.meta.url));

let h;
let manifest;
before(async () => {
  assert.ok(existsSync(join(PACKAGE, "hearth-manifest.json")), `no wasm-cpu test package at ${PACKAGE} (see sdk/test/support/load-fixtures.ts CPU_PACKAGE_BUILD)`);
  manifest = JSON.parse(readFileSync(join(PACKAGE, "hearth-manifest.json"), "utf8"));
  h = await openBrowser({ mounts: { "/harness/": HARNESS, "/pkg/": PACKAGE } });
});
after(async () => {
  await h?.close();
});

/** Files a load for `target` uses: all but the other targets' libraries. */
function usedBy(target) {
  const other = new Set(Object.entries(manifest.targets).filter(([t]) => t !== target).map(([, p]) => p));
  return manifest.files.map((f) => f.path).filter((p) => !other.has(p)).sort();
}

async function run(hh, task) {
  const r = await hh.run(task);
  assert.equal(r.ok, true, JSON.stringify(r.error));
  return r.result;
}

let webgpuTokens;

test("Cache Storage and IndexedDB stores work against Chromium's APIs", async (t) => {
  const r = await run(h, { task: "stores" });
  for (const [name, checks] of [["CacheStorageStore", r.cacheStorage], ["IndexedDBStore", r.indexedDB]]) {
    for (const c of checks) assert.ok(c.ok, `${name}: ${c.what}`);
  }
  assert.ok(r.storageEstimate && r.storageEstimate.quota > 0, JSON.stringify(r.storageEstimate));
  t.diagnostic(`navigator.storage.estimate() in the Worker: quota ${(r.storageEstimate.quota / 2 ** 30).toFixed(1)} GiB, usage ${r.storageEstimate.usage}`);
});

test("default store (Cache Storage): cold load downloads, a fresh Worker loads warm (manifest only), same tokens", async (t) => {
  const cold = await run(h, { task: "load", url: "/pkg/", target: "webgpu" });
  assert.equal(cold.deviceKind, "webgpu");
  assert.equal(cold.cache.store, "cache-storage");
  assert.equal(cold.fetched[0], "hearth-manifest.json");
  assert.deepEqual(cold.fetched.slice(1).sort(), usedBy("webgpu"));
  assert.equal(cold.cache.downloadedFiles, usedBy("webgpu").length);
  assert.ok(cold.cache.available > 0, "navigator.storage.estimate() was consulted");
  const warm = await run(h, { task: "load", url: "/pkg/", target: "webgpu" });
  assert.deepEqual(warm.fetched, ["hearth-manifest.json"]);
  assert.equal(warm.cache.cachedFiles, usedBy("webgpu").length);
  assert.deepEqual(warm.tokens, cold.tokens);
  webgpuTokens = cold.tokens;
  t.diagnostic(`Chromium WebGPU (SwiftShader): cold ${cold.loadMs.toFixed(0)} ms, warm ${warm.loadMs.toFixed(0)} ms; phases ${JSON.stringify(cold.phases)}`);
});

test("IndexedDB store: cold then warm from a fresh Worker", async (t) => {
  const cold = await run(h, { task: "load", url: "/pkg/", cache: "indexeddb", target: "webgpu" });
  assert.equal(cold.cache.store, "indexeddb");
  assert.deepEqual(cold.fetched.slice(1).sort(), usedBy("webgpu"));
  const warm = await run(h, { task: "load", url: "/pkg/", cache: "indexeddb", target: "webgpu" });
  assert.deepEqual(warm.fetched, ["hearth-manifest.json"]);
  assert.deepEqual(warm.tokens, cold.tokens);
  t.diagnostic(`IndexedDB: cold ${cold.loadMs.toFixed(0)} ms, warm ${warm.loadMs.toFixed(0)} ms`);
});

test("Chromium without WebGPU: the wasm-cpu build loads on the CPU and gives the WebGPU tokens", async (t) => {
  const noGpu = await openBrowser({ webgpu: false, mounts: { "/harness/": HARNESS, "/pkg/": PACKAGE } });
  try {
    const r = await run(noGpu, { task: "load", url: "/pkg/" });
    assert.equal(r.deviceKind, "cpu");
    assert.match(r.webgpuUnavailable, /no GPU adapter|navigator\.gpu is undefined/);
    assert.deepEqual(r.fetched.slice(1).sort(), usedBy("wasm-cpu"));
    assert.ok(webgpuTokens !== undefined, "the WebGPU test ran first");
    assert.deepEqual(r.tokens, webgpuTokens);
    t.diagnostic(`wasm-cpu in Chromium: load ${r.loadMs.toFixed(0)} ms (${r.webgpuUnavailable.slice(0, 80)}...)`);
  } finally {
    await noGpu.close();
  }
});

test("Chromium on SwiftShader, no target asked: the SDK takes the wasm-cpu build and says why", async () => {
  const r = await run(h, { task: "load", url: "/pkg/" });
  assert.equal(r.deviceKind, "cpu");
  assert.match(r.webgpuUnavailable, /software WebGPU adapter \(SwiftShader\): using the package's wasm-cpu build/);
  // The shared files come from the cache the earlier tests filled; the one library fetched is the CPU build.
  assert.deepEqual(r.fetched.filter((f) => f.endsWith(".wasm")), [manifest.targets["wasm-cpu"]]);
  assert.ok(webgpuTokens !== undefined, "the WebGPU test ran first");
  assert.deepEqual(r.tokens, webgpuTokens);
});
