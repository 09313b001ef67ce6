// loadPackage / DecoderModel.load with a real package (dist/tiny-llama-trained/q4f32_1) on Dawn:
// cold vs warm loads through a store (fetch counts; timings reported, not asserted), a warm load in a
// second process through the file-system store, the progress sequence of a real load, resume after a
// dropped connection, eviction of a corrupted cache entry, the offline manifest, purging old versions.
// The package must exist: this FAILS (does not skip) without it (see llm.test.ts).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { DecoderModel } from "../src/decoder/model.js";
import { requestGPU } from "../src/runtime/gpu.js";
import {
  artifactKey,
  DownloadError,
  IntegrityError,
  loadPackage,
  MemoryArtifactStore,
  packageKeyPrefix,
  type LoadProgress,
  type PackageManifest,
} from "../src/load/index.js";
import { fileFetch } from "./support/file-fetch.js";
import { brokenResponse, CountingFetch, fakeDevice, PROMPT, sha, untouchableTvmjs, WEBGPU_PACKAGE } from "./support/load-fixtures.js";
import { installNodeGPU } from "./support/node-gpu.js";

const URL_ = pathToFileURL(WEBGPU_PACKAGE).href + "/";
let gpu: GPU;
let manifest: PackageManifest;
/** Files a webgpu load uses: everything but the llvm library. */
let used: string[];
let reference: number[];
const dirs: string[] = [];

before(async () => {
  assert.ok(
    existsSync(join(WEBGPU_PACKAGE, "hearth-manifest.json")),
    `no compiled package at ${WEBGPU_PACKAGE}: run \`make test\` (or set HEARTH_LLM_PACKAGE)`,
  );
  gpu = await installNodeGPU();
  manifest = JSON.parse(readFileSync(join(WEBGPU_PACKAGE, "hearth-manifest.json"), "utf8")) as PackageManifest;
  const libs = new Set(
    Object.entries(manifest.targets)
      .filter(([t]) => t !== "webgpu")
      .map(([, p]) => p),
  );
  used = manifest.files
    .map((f) => f.path)
    .filter((p) => !libs.has(p))
    .sort();
  const m = await DecoderModel.load(URL_, { gpu, target: "webgpu", fetch: fileFetch, logger: () => {}, cache: "none" });
  reference = await m.greedy(PROMPT, 12);
  await m.dispose();
});
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const keyOf = (path: string) => artifactKey(manifest.model_id, manifest.quantization ?? "", manifest.files.find((f) => f.path === path)?.sha256 ?? "");

test("cold then warm load through a memory store: the warm one fetches only the manifest, gives the same tokens", async (t) => {
  const store = new MemoryArtifactStore();
  const cold = new CountingFetch();
  const events: LoadProgress[] = [];
  const t0 = performance.now();
  const a = await DecoderModel.load(URL_, { gpu, target: "webgpu", fetch: cold.fetch, cache: store, logger: () => {}, onProgress: (e) => events.push(e) });
  const coldMs = performance.now() - t0;
  assert.equal(cold.files()[0], "hearth-manifest.json");
  assert.deepEqual(cold.files().slice(1).sort(), used);
  assert.equal(a.loadInfo.cache.store, "memory");
  assert.equal(a.loadInfo.cache.downloadedFiles, used.length);
  assert.equal(a.loadInfo.cache.cachedFiles, 0);
  assert.deepEqual(await a.greedy(PROMPT, 12), reference);
  const coldStats = a.stats().load;
  await a.dispose();

  // The progress sequence of a real load.
  const phases = events.map((e) => e.phase);
  assert.equal(phases[0], "manifest");
  assert.equal(phases[phases.length - 1], "ready");
  const last = (p: string) => phases.lastIndexOf(p as LoadProgress["phase"]);
  const first = (p: string) => phases.indexOf(p as LoadProgress["phase"]);
  assert.ok(last("download") < first("shader-compile"), "downloads finish before shaders compile");
  assert.ok(last("verify") < first("shader-compile"), "everything is verified before tvmjs runs");
  assert.ok(last("shader-compile") < first("gpu-upload"), "shaders, then weights");
  assert.ok(last("gpu-upload") < last("ready"));
  const shader = events.filter((e) => e.phase === "shader-compile");
  assert.equal(shader[0]?.phase === "shader-compile" && shader[0].progress, 0);
  const sLast = shader[shader.length - 1];
  assert.ok(sLast?.phase === "shader-compile" && sLast.progress === 1 && sLast.done === sLast.total && (sLast.total ?? 0) > 0, JSON.stringify(sLast));
  const up = events.filter((e) => e.phase === "gpu-upload");
  const uLast = up[up.length - 1];
  assert.ok(uLast?.phase === "gpu-upload" && uLast.shardsDone === uLast.shardCount && uLast.loadedBytes === uLast.totalBytes && uLast.device === "webgpu");
  const ver = events.filter((e) => e.phase === "verify");
  assert.deepEqual(ver.map((e) => (e.phase === "verify" ? e.file : "")).sort(), used);
  t.diagnostic(`events: ${phases.length} (${[...new Set(phases)].map((p) => `${p}×${phases.filter((q) => q === p).length}`).join(", ")})`);

  const warm = new CountingFetch();
  const warmEvents: LoadProgress[] = [];
  const t1 = performance.now();
  const b = await DecoderModel.load(URL_, { gpu, target: "webgpu", fetch: warm.fetch, cache: store, logger: () => {}, onProgress: (e) => warmEvents.push(e) });
  const warmMs = performance.now() - t1;
  assert.deepEqual(warm.files(), ["hearth-manifest.json"]);
  assert.equal(b.loadInfo.cache.downloadedFiles, 0);
  assert.equal(b.loadInfo.cache.cachedFiles, used.length);
  assert.equal(warmEvents.filter((e) => e.phase === "download").length, 0);
  assert.deepEqual(await b.greedy(PROMPT, 12), reference);
  const warmStats = b.stats().load;
  // readFile: verified bytes from the store, no fetch.
  const tok = new TextDecoder().decode(await b.readFile("tokenizer.json"));
  assert.ok(tok.startsWith("{"));
  assert.equal(warm.urls.length, 1);
  await b.dispose();
  t.diagnostic(
    `cold ${coldMs.toFixed(0)} ms (fetch+verify ${coldStats.fetchVerifyMs.toFixed(0)} ms, pipelines ${coldStats.pipelinesMs.toFixed(0)} ms), ` +
      `warm ${warmMs.toFixed(0)} ms (fetch+verify ${warmStats.fetchVerifyMs.toFixed(0)} ms, pipelines ${warmStats.pipelinesMs.toFixed(0)} ms)`,
  );
});

test("a second process loads warm from the file-system store (fetch count, same tokens)", async (t) => {
  const storeDir = mkdtempSync(join(tmpdir(), "hearth-fs-cache-"));
  dirs.push(storeDir);
  const child = new URL("./support/load-child.ts", import.meta.url).pathname;
  const run = () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", child, WEBGPU_PACKAGE, storeDir], { encoding: "utf8", timeout: 300_000 });
    const lines = r.stdout.trim().split("\n");
    assert.equal(r.status, 0, `child failed: ${r.stderr.slice(-2000)}`);
    return JSON.parse(lines[lines.length - 1] as string) as {
      fetched: string[];
      loadMs: number;
      fetchVerifyMs: number;
      cachedFiles: number;
      downloadedFiles: number;
      tokens: number[];
    };
  };
  const first = run();
  const second = run();
  assert.deepEqual(first.fetched.slice(1).sort(), used);
  assert.equal(first.downloadedFiles, used.length);
  assert.deepEqual(second.fetched, ["hearth-manifest.json"]);
  assert.equal(second.cachedFiles, used.length);
  assert.equal(second.downloadedFiles, 0);
  assert.deepEqual(second.tokens, reference.slice(0, 8));
  t.diagnostic(
    `process 1 (cold): load ${first.loadMs.toFixed(0)} ms, fetch+verify ${first.fetchVerifyMs.toFixed(1)} ms; ` +
      `process 2 (warm): load ${second.loadMs.toFixed(0)} ms, fetch+verify ${second.fetchVerifyMs.toFixed(1)} ms`,
  );
});

test("resume: a connection dropped mid-wasm; the next load fetches only what was not verified", async () => {
  const store = new MemoryArtifactStore();
  const wasm = manifest.targets["webgpu"] as string;
  const wasmBytes = new Uint8Array(readFileSync(join(WEBGPU_PACKAGE, wasm)));
  // The wasm's connection drops half-way, once the weights shard (downloading alongside) is stored.
  const shardStored = (async () => {
    while (!(await store.has(keyOf("params_shard_0.bin")))) await new Promise((r) => setTimeout(r, 5));
  })();
  const failing = new CountingFetch(async (url, init) =>
    url.endsWith(`/${wasm}`) ? brokenResponse(wasmBytes, wasmBytes.length >> 1, shardStored) : fileFetch(url, init),
  );
  const device = fakeDevice({ features: ["shader-f16"] });
  await assert.rejects(
    loadPackage(URL_, { fetch: failing.fetch, cache: store, device, tvmjs: untouchableTvmjs, retries: 0, logger: () => {} }),
    (err: unknown) => err instanceof DownloadError && err.file === wasm,
  );
  assert.equal(await store.has(keyOf(wasm)), false);
  assert.equal(await store.has(keyOf("params_shard_0.bin")), true);
  const missing: string[] = [];
  for (const p of used) if (!(await store.has(keyOf(p)))) missing.push(p);

  const counting = new CountingFetch();
  const m = await DecoderModel.load(URL_, { gpu, target: "webgpu", fetch: counting.fetch, cache: store, logger: () => {} });
  assert.deepEqual(counting.files()[0], "hearth-manifest.json");
  assert.deepEqual(counting.files().slice(1).sort(), missing.sort());
  assert.equal(counting.count("params_shard_0.bin"), 0, "the verified shard is not fetched again");
  assert.equal(counting.count(wasm), 1);
  assert.deepEqual(await m.greedy(PROMPT, 12), reference);
  await m.dispose();
});

test("a corrupted cache entry of the real shard: IntegrityError, device untouched, entry evicted, next load heals", async () => {
  const store = new MemoryArtifactStore();
  const warmup = await DecoderModel.load(URL_, { gpu, target: "webgpu", fetch: fileFetch, cache: store, logger: () => {} });
  await warmup.dispose();
  const key = keyOf("params_shard_0.bin");
  const bytes = new Uint8Array((await store.get(key)) as ArrayBuffer).slice();
  bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 0x01;
  await store.put(key, bytes.buffer);
  const device = fakeDevice({ features: ["shader-f16"] }); // destroy() fails the test: nothing may touch it
  await assert.rejects(loadPackage(URL_, { fetch: fileFetch, cache: store, device, tvmjs: untouchableTvmjs, logger: () => {} }), (err: unknown) => {
    assert.ok(err instanceof IntegrityError, String(err));
    assert.equal(err.file, "params_shard_0.bin");
    assert.equal(err.problem, "sha256");
    assert.equal(err.actual, sha(bytes));
    return true;
  });
  assert.equal(await store.has(key), false);
  const f = new CountingFetch();
  const m = await DecoderModel.load(URL_, { gpu, target: "webgpu", fetch: f.fetch, cache: store, logger: () => {} });
  assert.deepEqual(f.files(), ["hearth-manifest.json", "params_shard_0.bin"]);
  assert.deepEqual(await m.greedy(PROMPT, 12), reference);
  await m.dispose();
});

test("offline: the network is down, the store has the package: the last good manifest is used", async () => {
  const store = new MemoryArtifactStore();
  await (await DecoderModel.load(URL_, { gpu, target: "webgpu", fetch: fileFetch, cache: store, logger: () => {} })).dispose();
  const down: typeof fileFetch = async () => {
    throw new TypeError("fetch failed (offline)");
  };
  const events: LoadProgress[] = [];
  const m = await DecoderModel.load(URL_, { gpu, target: "webgpu", fetch: down, cache: store, logger: () => {}, onProgress: (e) => events.push(e) });
  assert.equal(m.loadInfo.cache.offline, true);
  assert.ok(events[0]?.phase === "manifest" && events[0].offline);
  assert.deepEqual(await m.greedy(PROMPT, 12), reference);
  await m.dispose();
  // Without a stored manifest the network error stands.
  await assert.rejects(DecoderModel.load(URL_, { gpu, target: "webgpu", fetch: down, cache: new MemoryArtifactStore(), logger: () => {} }), {
    name: "PackageManifestError",
    reason: "network",
  });
});

test("after a successful load, older versions of the package are purged from the store", async () => {
  const store = new MemoryArtifactStore();
  const prefix = packageKeyPrefix(manifest.model_id, manifest.quantization ?? "");
  const old = [sha("old shard"), sha("old wasm")].map((d) => prefix + d);
  for (const k of old) await store.put(k, new ArrayBuffer(8));
  const f16 = artifactKey(manifest.model_id, "q4f16_1", sha("f16 sibling"));
  await store.put(f16, new ArrayBuffer(8));
  const m = await DecoderModel.load(URL_, { gpu, target: "webgpu", fetch: fileFetch, cache: store, logger: () => {} });
  assert.deepEqual([...m.loadInfo.cache.purged].sort(), [...old].sort());
  await m.dispose();
  for (const k of old) assert.equal(await store.has(k), false);
  assert.equal(await store.has(f16), true, "another quantization is another package");
  assert.deepEqual((await store.keys(prefix)).sort(), used.map(keyOf).sort());
});

test("loadPackage with a caller's device: the package owns it after a successful load", async () => {
  const h = await requestGPU({ gpu });
  const pkg = await loadPackage(URL_, { fetch: fileFetch, device: h.device, logger: () => {}, cache: "none" });
  assert.equal(pkg.deviceKind, "webgpu");
  assert.equal(pkg.target, "webgpu");
  assert.ok(pkg.memory.weightsBytes > 0);
  pkg.dispose();
});
