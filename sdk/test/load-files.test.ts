// loadPackage up to the point where tvmjs would run, on synthetic packages (no GPU): bounded parallel
// downloads, progress, stores, resume after a failure or an abort, integrity failures and eviction,
// the quota check, retries, purging old versions, the offline manifest.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  artifactKey,
  DownloadError,
  IntegrityError,
  loadPackage,
  MemoryArtifactStore,
  PackageFiles,
  packageKeyPrefix,
  QuotaError,
  fetchManifest,
  type LoadProgress,
  type LoadPackageOptions,
} from "../src/load/index.js";
import { DeviceError } from "../src/load/device-fit.js";
import { fileFetch } from "./support/file-fetch.js";
import {
  brokenResponse,
  CountingFetch,
  enc,
  fakeDevice,
  makeFakePackage,
  ReachedTvmjs,
  sha,
  stopAtInstantiate,
  untouchableTvmjs,
  type FakePackage,
} from "./support/load-fixtures.js";

const made: FakePackage[] = [];
function pkg(opts: Parameters<typeof makeFakePackage>[0] = {}): FakePackage & { url: string } {
  const p = makeFakePackage(opts);
  made.push(p);
  return { ...p, url: pathToFileURL(p.dir).href + "/" };
}
after(() => {
  for (const p of made) rmSync(p.dir, { recursive: true, force: true });
});

/** Options that run the loader up to tvmjs.instantiate (which throws ReachedTvmjs). */
function upToTvmjs(extra: Partial<LoadPackageOptions> = {}): LoadPackageOptions & { tvmjs: ReturnType<typeof stopAtInstantiate> } {
  return { device: fakeDevice(), tvmjs: stopAtInstantiate(), logger: () => {}, ...extra } as LoadPackageOptions & {
    tvmjs: ReturnType<typeof stopAtInstantiate>;
  };
}

const ALL_FILES = (p: FakePackage) => Object.keys(p.files).sort();

test("cold load downloads every file once (bounded parallelism), a warm load only revalidates the manifest", async () => {
  const p = pkg({ shards: 10 });
  const store = new MemoryArtifactStore();
  const cold = new CountingFetch(fileFetch, 20);
  const events: LoadProgress[] = [];
  const opts = upToTvmjs({ fetch: cold.fetch, cache: store, onProgress: (e) => events.push(e) });
  await assert.rejects(loadPackage(p.url, opts), ReachedTvmjs);
  assert.equal(opts.tvmjs.calls, 1);
  assert.equal(cold.files()[0], "hearth-manifest.json");
  assert.deepEqual(cold.files().slice(1).sort(), ALL_FILES(p));
  assert.equal(cold.maxInflight, 4, "default concurrency is 4");
  for (const [path, bytes] of Object.entries(p.files)) {
    assert.equal(await store.has(artifactKey("fake-model", "q4f32_1", sha(bytes))), true, path);
  }

  // Progress: manifest, then download/verify events; byte counters grow to the totals.
  assert.equal(events[0]?.phase, "manifest");
  const dl = events.filter((e) => e.phase === "download");
  const ver = events.filter((e) => e.phase === "verify");
  const total = Object.values(p.files).reduce((n, b) => n + b.length, 0);
  assert.ok(dl.length >= Object.keys(p.files).length);
  for (let i = 1; i < dl.length; i++) assert.ok((dl[i] as { loadedBytes: number }).loadedBytes >= (dl[i - 1] as { loadedBytes: number }).loadedBytes);
  const lastDl = dl[dl.length - 1];
  assert.ok(lastDl?.phase === "download" && lastDl.loadedBytes === total && lastDl.totalBytes === total && lastDl.fileCount === ALL_FILES(p).length);
  assert.ok(dl.every((e) => e.phase === "download" && e.fileIndex >= 0 && e.fileIndex < e.fileCount));
  assert.deepEqual(ver.map((e) => (e.phase === "verify" ? e.file : "")).sort(), ALL_FILES(p));
  assert.ok(ver.every((e) => e.phase === "verify" && e.source === "network"));
  const lastVer = ver[ver.length - 1];
  assert.ok(lastVer?.phase === "verify" && lastVer.filesDone === ALL_FILES(p).length && lastVer.verifiedBytes === total);
  // The config is complete (and checked) before any shard download starts.
  const cfgDone = events.findIndex((e) => e.phase === "verify" && e.file === "mlc-chat-config.json");
  const firstShard = events.findIndex((e) => e.phase === "download" && e.file.startsWith("params_shard_"));
  assert.ok(cfgDone >= 0 && cfgDone < firstShard, `config verified at ${cfgDone}, first shard event at ${firstShard}`);

  const warm = new CountingFetch();
  const warmEvents: LoadProgress[] = [];
  await assert.rejects(loadPackage(p.url, upToTvmjs({ fetch: warm.fetch, cache: store, onProgress: (e) => warmEvents.push(e) })), ReachedTvmjs);
  assert.deepEqual(warm.files(), ["hearth-manifest.json"]);
  assert.equal(warmEvents.filter((e) => e.phase === "download").length, 0);
  const warmVer = warmEvents.filter((e) => e.phase === "verify");
  assert.equal(warmVer.length, ALL_FILES(p).length);
  assert.ok(warmVer.every((e) => e.phase === "verify" && e.source === "cache"));
});

test("concurrency option bounds parallel downloads", async () => {
  const p = pkg({ shards: 8 });
  const f = new CountingFetch(fileFetch, 20);
  await assert.rejects(loadPackage(p.url, upToTvmjs({ fetch: f.fetch, cache: "none", concurrency: 2 })), ReachedTvmjs);
  assert.equal(f.maxInflight, 2);
});

test("resume: after a download fails half-way, verified files are not fetched again", async () => {
  const p = pkg({ shards: 6, shardBytes: 256 * 1024 });
  const store = new MemoryArtifactStore();
  // Attempt 1: shard 3's connection drops after half its bytes (every time: retries exhausted).
  const failing = new CountingFetch(async (url, init) => {
    if (url.endsWith("/params_shard_3.bin")) return brokenResponse(p.files["params_shard_3.bin"] as Uint8Array, 128 * 1024);
    return fileFetch(url, init);
  });
  await assert.rejects(
    loadPackage(p.url, upToTvmjs({ fetch: failing.fetch, cache: store, retries: 1 })),
    (err: unknown) =>
      err instanceof DownloadError && err.file === "params_shard_3.bin" && /network connection lost/.test(String((err.cause as Error)?.message)),
  );
  assert.equal(failing.count("params_shard_3.bin"), 2, "one retry");
  const stored = await store.keys(packageKeyPrefix("fake-model", "q4f32_1"));
  assert.ok(stored.length >= 1 && stored.length < 12, `stored ${stored.length}`);
  const shard3Key = artifactKey("fake-model", "q4f32_1", sha(p.files["params_shard_3.bin"] as Uint8Array));
  assert.equal(await store.has(shard3Key), false, "a failed file is not stored");

  // Attempt 2: only the manifest and what attempt 1 did not finish are fetched.
  const counting = new CountingFetch();
  const opts = upToTvmjs({ fetch: counting.fetch, cache: store });
  await assert.rejects(loadPackage(p.url, opts), ReachedTvmjs);
  const storedNames = Object.entries(p.files)
    .filter(([, b]) => stored.includes(artifactKey("fake-model", "q4f32_1", sha(b))))
    .map(([n]) => n);
  const expectFetched = ALL_FILES(p).filter((n) => !storedNames.includes(n));
  assert.deepEqual(counting.files().slice(1).sort(), expectFetched);
  assert.ok(expectFetched.includes("params_shard_3.bin"));
  for (const n of storedNames) assert.equal(counting.count(n), 0, `${n} was verified in attempt 1 and must not be fetched again`);
});

test("AbortSignal: abort mid-download rejects with the abort reason; verified files stay for the next load", async () => {
  const p = pkg({ shards: 8 });
  const store = new MemoryArtifactStore();
  const ac = new AbortController();
  const slow = new CountingFetch(fileFetch, 30);
  let verified = 0;
  const opts = upToTvmjs({
    fetch: slow.fetch,
    cache: store,
    signal: ac.signal,
    concurrency: 1,
    onProgress: (e) => {
      if (e.phase === "verify" && ++verified === 4) ac.abort(new DOMException("user cancelled", "AbortError"));
    },
  });
  await assert.rejects(loadPackage(p.url, opts), (err: unknown) => (err as Error).name === "AbortError" && /user cancelled/.test((err as Error).message));
  assert.equal(opts.tvmjs.calls, 0);
  const kept = (await store.keys(packageKeyPrefix("fake-model", "q4f32_1"))).length;
  assert.ok(kept >= 4 && kept < 12, `kept ${kept}`);
  const f = new CountingFetch();
  await assert.rejects(loadPackage(p.url, upToTvmjs({ fetch: f.fetch, cache: store })), ReachedTvmjs);
  assert.equal(f.urls.length, 1 + 12 - kept);
  // An already-aborted signal: nothing is fetched at all.
  const none = new CountingFetch();
  await assert.rejects(loadPackage(p.url, upToTvmjs({ fetch: none.fetch, cache: store, signal: AbortSignal.abort() })), { name: "AbortError" });
  assert.equal(none.urls.length, 0);
});

test("a tampered download: IntegrityError naming the file, nothing loaded, nothing stored for it", async () => {
  const p = pkg({ shards: 4 });
  const bad = (p.files["params_shard_2.bin"] as Uint8Array).slice();
  bad[100] = (bad[100] as number) ^ 0xff;
  writeFileSync(join(p.dir, "params_shard_2.bin"), bad);
  const store = new MemoryArtifactStore();
  const opts = upToTvmjs({ fetch: fileFetch, cache: store, tvmjs: untouchableTvmjs as ReturnType<typeof stopAtInstantiate> });
  await assert.rejects(loadPackage(p.url, opts), (err: unknown) => {
    assert.ok(err instanceof IntegrityError, String(err));
    assert.equal(err.file, "params_shard_2.bin");
    assert.equal(err.problem, "sha256");
    assert.equal(err.actual, sha(bad));
    return true;
  });
  assert.equal(await store.has(artifactKey("fake-model", "q4f32_1", sha(bad))), false);
  assert.equal(await store.has(artifactKey("fake-model", "q4f32_1", sha(p.files["params_shard_2.bin"] as Uint8Array))), false);
  // An oversized body stops early with a size error.
  writeFileSync(join(p.dir, "params_shard_2.bin"), new Uint8Array((p.files["params_shard_2.bin"] as Uint8Array).length + 10));
  await assert.rejects(loadPackage(p.url, upToTvmjs({ fetch: fileFetch, cache: store })), {
    name: "IntegrityError",
    file: "params_shard_2.bin",
    problem: "size",
  });
});

test("a corrupted store entry: IntegrityError, nothing loaded, the entry is evicted; the next load downloads it again", async () => {
  const p = pkg({ shards: 4 });
  const store = new MemoryArtifactStore();
  await assert.rejects(loadPackage(p.url, upToTvmjs({ fetch: fileFetch, cache: store })), ReachedTvmjs);
  const shard = p.files["params_shard_1.bin"] as Uint8Array;
  const key = artifactKey("fake-model", "q4f32_1", sha(shard));
  const rotten = shard.slice();
  rotten[5] = (rotten[5] as number) ^ 1;
  await store.put(key, rotten.buffer); // bit rot on disk, or someone editing the cache
  const f = new CountingFetch();
  await assert.rejects(
    loadPackage(p.url, upToTvmjs({ fetch: f.fetch, cache: store, tvmjs: untouchableTvmjs as ReturnType<typeof stopAtInstantiate> })),
    (err: unknown) => {
      assert.ok(err instanceof IntegrityError, String(err));
      assert.equal(err.file, "params_shard_1.bin");
      assert.match(err.message, /memory cache; the entry was evicted/);
      return true;
    },
  );
  assert.equal(await store.has(key), false, "evicted");
  assert.deepEqual(f.files(), ["hearth-manifest.json"]);
  const again = new CountingFetch();
  await assert.rejects(loadPackage(p.url, upToTvmjs({ fetch: again.fetch, cache: store })), ReachedTvmjs);
  assert.deepEqual(again.files(), ["hearth-manifest.json", "params_shard_1.bin"]);
  assert.deepEqual([...new Uint8Array((await store.get(key)) as ArrayBuffer)], [...shard]);
});

test("QuotaError before any download when the store lacks room; cache: none skips the check", async () => {
  const p = pkg({ shards: 4, shardBytes: 1 << 20 });
  const f = new CountingFetch();
  const storage = { estimate: async () => ({ quota: 3 << 20, usage: 1 << 20 }), persist: async () => true };
  await assert.rejects(loadPackage(p.url, upToTvmjs({ fetch: f.fetch, cache: new MemoryArtifactStore(), storage })), (err: unknown) => {
    assert.ok(err instanceof QuotaError, String(err));
    assert.ok(err.needed > 4 << 20 && err.needed < 5 << 20, String(err.needed));
    assert.equal(err.available, 2 << 20);
    return true;
  });
  assert.deepEqual(f.files(), ["hearth-manifest.json"]);
  await assert.rejects(loadPackage(p.url, upToTvmjs({ fetch: fileFetch, cache: "none", storage })), ReachedTvmjs);
  // A store that refuses writes with QuotaExceededError also surfaces as QuotaError.
  const full = new MemoryArtifactStore();
  full.put = async () => {
    throw new DOMException("full", "QuotaExceededError");
  };
  await assert.rejects(loadPackage(p.url, upToTvmjs({ fetch: fileFetch, cache: full })), { name: "QuotaError" });
});

test("retries: HTTP 503 is retried, 404 is an IntegrityError at once, 403 a DownloadError", async () => {
  const p = pkg({ shards: 2 });
  let n503 = 0;
  const flaky = new CountingFetch(async (url, init) => {
    if (url.endsWith("params_shard_0.bin") && n503++ === 0) return new Response("busy", { status: 503 });
    return fileFetch(url, init);
  });
  await assert.rejects(loadPackage(p.url, upToTvmjs({ fetch: flaky.fetch, cache: "none" })), ReachedTvmjs);
  assert.equal(flaky.count("params_shard_0.bin"), 2);
  rmSync(join(p.dir, "params_shard_1.bin"));
  const gone = new CountingFetch();
  await assert.rejects(loadPackage(p.url, upToTvmjs({ fetch: gone.fetch, cache: "none" })), {
    name: "IntegrityError",
    file: "params_shard_1.bin",
    problem: "missing",
  });
  assert.equal(gone.count("params_shard_1.bin"), 1);
  const forbidden: typeof fileFetch = async (url, init) => (url.endsWith(".bin") ? new Response("", { status: 403 }) : fileFetch(url, init));
  await assert.rejects(
    loadPackage(p.url, upToTvmjs({ fetch: forbidden, cache: "none" })),
    (err: unknown) => err instanceof DownloadError && err.status === 403,
  );
});

test("the manifest is always revalidated (cache: no-cache), and an unlisted shard is refused", async () => {
  const p = pkg({ shards: 1 });
  const inits: unknown[] = [];
  const spy: typeof fileFetch = async (url, init) => {
    if (url.endsWith("hearth-manifest.json")) inits.push(init);
    return fileFetch(url, init);
  };
  await assert.rejects(loadPackage(p.url, upToTvmjs({ fetch: spy, cache: new MemoryArtifactStore() })), ReachedTvmjs);
  assert.equal((inits[0] as { cache?: string }).cache, "no-cache");

  // tensor-cache.json (listed, verified) names a shard the manifest does not list: refused before tvmjs.
  const tc = JSON.parse(new TextDecoder().decode(p.files["tensor-cache.json"])) as { records: unknown[] };
  tc.records.push({ dataPath: "sneaky.bin", format: "raw-shard", nbytes: 4, records: [] });
  const tcBytes = enc(JSON.stringify(tc));
  writeFileSync(join(p.dir, "tensor-cache.json"), tcBytes);
  writeFileSync(join(p.dir, "sneaky.bin"), new Uint8Array(4));
  const manifestPath = join(p.dir, "hearth-manifest.json");
  const m = JSON.parse(readFileSync(manifestPath, "utf8")) as { files: { path: string; bytes: number; sha256: string }[] };
  m.files = m.files.map((f) => (f.path === "tensor-cache.json" ? { ...f, bytes: tcBytes.length, sha256: sha(tcBytes) } : f));
  writeFileSync(manifestPath, JSON.stringify(m));
  await assert.rejects(loadPackage(p.url, upToTvmjs({ fetch: fileFetch, cache: "none", tvmjs: untouchableTvmjs as ReturnType<typeof stopAtInstantiate> })), {
    name: "IntegrityError",
    file: "sneaky.bin",
    problem: "unlisted",
  });
});

test("device checks run after the config, before the weights are downloaded", async () => {
  const p = pkg({ shards: 4, shardBytes: 1 << 20 });
  const f = new CountingFetch();
  const device = fakeDevice({ limits: { maxStorageBufferBindingSize: 512 * 1024, maxBufferSize: 1 << 30 } });
  await assert.rejects(loadPackage(p.url, upToTvmjs({ fetch: f.fetch, cache: "none", device })), (err: unknown) => {
    assert.ok(err instanceof DeviceError, String(err));
    assert.equal(err.limit, "maxStorageBufferBindingSize");
    assert.equal(err.needed, 1 << 20);
    assert.equal(err.available, 512 * 1024);
    assert.equal(err.shortBy, 512 * 1024);
    assert.match(err.message, /weight w0 needs 1\.0 MiB \(1048576 bytes\) but maxStorageBufferBindingSize is 512\.0 KiB/);
    return true;
  });
  assert.deepEqual(f.files(), ["hearth-manifest.json", "mlc-chat-config.json"]);
  // deviceCheck.limits overrides the device's; deviceCheck: false skips the check.
  await assert.rejects(loadPackage(p.url, upToTvmjs({ fetch: fileFetch, cache: "none", deviceCheck: { limits: { maxBufferSize: 1000 } } })), {
    name: "DeviceError",
    limit: "maxBufferSize",
  });
  await assert.rejects(loadPackage(p.url, upToTvmjs({ fetch: fileFetch, cache: "none", device, deviceCheck: false })), ReachedTvmjs);
});

test("purgeOldVersions removes other versions of the same model/quant only", async () => {
  const p = pkg({ shards: 2 });
  const store = new MemoryArtifactStore();
  const manifest = await fetchManifest(p.url, fileFetch);
  const files = new PackageFiles({ baseUrl: p.url, manifest, fetch: fileFetch, store });
  await files.ensure(manifest.files.map((f) => f.path));
  const old = artifactKey("fake-model", "q4f32_1", sha("an older shard"));
  const otherQuant = artifactKey("fake-model", "q4f16_1", sha("f16 variant"));
  const otherModel = artifactKey("other-model", "q4f32_1", sha("x"));
  for (const k of [old, otherQuant, otherModel]) await store.put(k, new ArrayBuffer(4));
  assert.deepEqual(await files.purgeOldVersions(), [old]);
  assert.equal(await store.has(old), false);
  assert.equal(await store.has(otherQuant), true);
  assert.equal(await store.has(otherModel), true);
  assert.equal((await store.keys(packageKeyPrefix("fake-model", "q4f32_1"))).length, manifest.files.length);
});

test("variants: the model folder + a preference list picks by shader-f16", async () => {
  const f32 = pkg({ shards: 1, quant: "q4f32_1" });
  // Lay out <model>/q4f32_1 as a sibling folder by loading through the parent with the folder name.
  const parent = pathToFileURL(join(f32.dir, "..")).href;
  const name = f32.dir.slice(f32.dir.lastIndexOf("/") + 1);
  const f = new CountingFetch();
  // With a fake device lacking shader-f16 the f16 variant ("<name>-f16", absent) is skipped.
  await assert.rejects(
    loadPackage(parent, upToTvmjs({ fetch: f.fetch, cache: "none", variants: [`${name}-f16`, name] })),
    /asked for variant/, // the folder exists, but its manifest says q4f32_1: proves the f32 entry was chosen
  );
  assert.ok(f.urls[0]?.endsWith(`/${name}/hearth-manifest.json`), f.urls[0]);
  const g = new CountingFetch();
  await assert.rejects(
    loadPackage(parent, upToTvmjs({ fetch: g.fetch, cache: "none", device: fakeDevice({ features: ["shader-f16"] }), variants: [`${name}-f16`, name] })),
    /HTTP 404/,
  );
  assert.ok(g.urls[0]?.endsWith(`/${name}-f16/hearth-manifest.json`), g.urls[0]);
});
