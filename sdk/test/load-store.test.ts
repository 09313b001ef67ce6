// Artifact stores (memory, file system, IndexedDB through fake-indexeddb), their keys, and the quota check.
// No GPU.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IDBFactory, IDBKeyRange } from "fake-indexeddb";
import {
  artifactKey,
  checkQuota,
  FileSystemArtifactStore,
  IndexedDBStore,
  keyDigest,
  manifestKey,
  MemoryArtifactStore,
  packageKeyPrefix,
  QuotaError,
  resolveStore,
  type ArtifactStore,
  type StorageManagerLike,
} from "../src/load/index.js";
import { sha } from "./support/load-fixtures.js";

const D1 = sha("one");
const D2 = sha("two");
const D3 = sha("three");

test("keys: hearth/v1/<model>/<quant>/<sha256>, segments encoded, no path tricks", () => {
  assert.equal(artifactKey("tiny-llama-trained", "q4f32_1", D1), `hearth/v1/tiny-llama-trained/q4f32_1/${D1}`);
  assert.equal(packageKeyPrefix("org/model name", "q4f16_1"), "hearth/v1/org%2Fmodel%20name/q4f16_1/");
  assert.equal(packageKeyPrefix("..", ""), "hearth/v1/%2E%2E/_/");
  assert.throws(() => artifactKey("m", "q", "xyz"), /not a lower-case hex SHA-256/);
  assert.equal(keyDigest(artifactKey("m", "q", D2)), D2);
  assert.equal(keyDigest(manifestKey("https://x.test/models/m/q/")), undefined);
  assert.ok(!manifestKey("https://x.test/m/").startsWith(packageKeyPrefix("m", "q")));
});

async function conformance(store: ArtifactStore): Promise<void> {
  const a = artifactKey("m", "q4f32_1", D1);
  const b = artifactKey("m", "q4f32_1", D2);
  const other = artifactKey("m", "q4f16_1", D3);
  assert.equal(await store.get(a), undefined);
  assert.equal(await store.has(a), false);
  await store.put(a, new TextEncoder().encode("alpha").buffer);
  await store.put(b, new Uint8Array([1, 2, 3]).buffer);
  await store.put(other, new Uint8Array(1000).buffer);
  assert.equal(await store.has(a), true);
  assert.equal(new TextDecoder().decode(await store.get(a)), "alpha");
  assert.deepEqual([...new Uint8Array((await store.get(b)) as ArrayBuffer)], [1, 2, 3]);
  assert.deepEqual((await store.keys(packageKeyPrefix("m", "q4f32_1"))).sort(), [a, b].sort());
  assert.deepEqual((await store.keys("hearth/v1/m/")).sort(), [a, b, other].sort());
  await store.put(a, new TextEncoder().encode("replaced").buffer);
  assert.equal(new TextDecoder().decode(await store.get(a)), "replaced");
  await store.delete(a);
  await store.delete(a); // absent: no error
  assert.equal(await store.has(a), false);
  assert.deepEqual(await store.keys(packageKeyPrefix("m", "q4f32_1")), [b]);
  assert.deepEqual(await store.keys("hearth/v1/nothing/"), []);
}

test("MemoryArtifactStore conformance", async () => {
  await conformance(new MemoryArtifactStore());
});

test("FileSystemArtifactStore conformance; atomic writes leave no temp files; keys cannot escape the root", async () => {
  const root = mkdtempSync(join(tmpdir(), "hearth-fs-store-"));
  try {
    const store = new FileSystemArtifactStore(root);
    await conformance(store);
    const dir = join(root, "hearth/v1/m/q4f32_1");
    assert.deepEqual(readdirSync(dir), [D2]);
    await assert.rejects(store.put("hearth/../../etc/x", new ArrayBuffer(1)), /invalid key/);
    await assert.rejects(store.get("/abs"), /invalid key/);
    // A second instance (another process, in effect) sees the same entries.
    assert.equal(await new FileSystemArtifactStore(root).has(artifactKey("m", "q4f32_1", D2)), true);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("IndexedDBStore conformance (fake-indexeddb)", async () => {
  const store = new IndexedDBStore("hearth-test", new IDBFactory(), IDBKeyRange);
  await conformance(store);
  await store.close();
});

test("resolveStore: Node has no Cache Storage / IndexedDB; default is none; custom stores pass through", () => {
  assert.equal(resolveStore(undefined), null);
  assert.equal(resolveStore("none"), null);
  assert.throws(() => resolveStore("cache-storage"), /Cache Storage .* unavailable/);
  assert.throws(() => resolveStore("indexeddb"), /IndexedDB is unavailable/);
  const mine = new MemoryArtifactStore();
  assert.equal(resolveStore(mine), mine);
});

test("checkQuota: persist() best effort, estimate() shortfall -> QuotaError {needed, available}", async () => {
  const calls: string[] = [];
  const storage = (quota: number, usage: number): StorageManagerLike => ({
    persisted: async () => {
      calls.push("persisted");
      return false;
    },
    persist: async () => {
      calls.push("persist");
      return true;
    },
    estimate: async () => {
      calls.push("estimate");
      return { quota, usage };
    },
  });
  const ok = await checkQuota(storage(10_000_000, 1_000_000), 5_000_000);
  assert.deepEqual(ok, { persisted: true, available: 9_000_000, quota: 10_000_000, usage: 1_000_000 });
  assert.deepEqual(calls, ["persisted", "persist", "estimate"]);
  await assert.rejects(checkQuota(storage(100 << 20, 90 << 20), 20 << 20), (err: unknown) => {
    assert.ok(err instanceof QuotaError);
    assert.equal(err.name, "QuotaError");
    assert.equal(err.needed, 20 << 20);
    assert.equal(err.available, 10 << 20);
    assert.match(err.message, /needs 20\.0 MiB, but only 10\.0 MiB are available .*short by 10\.0 MiB/);
    return true;
  });
  // A broken StorageManager does not block loading.
  const broken: StorageManagerLike = {
    persist: async () => {
      throw new Error("nope");
    },
    estimate: async () => {
      throw new Error("nope");
    },
  };
  assert.equal((await checkQuota(broken, 1 << 30)).available, null);
  assert.equal((await checkQuota(undefined, 1 << 30)).available, null);
});

test("FileSystemArtifactStore: an entry written by one process is read by another", () => {
  const root = mkdtempSync(join(tmpdir(), "hearth-fs-store-"));
  try {
    const key = artifactKey("m", "q", D1);
    const script = (body: string) =>
      `import { FileSystemArtifactStore } from ${JSON.stringify(new URL("../src/load/fs-store.ts", import.meta.url).pathname)};
       const s = new FileSystemArtifactStore(${JSON.stringify(root)}); ${body}`;
    const run = (body: string) => spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script(body)], { encoding: "utf8" });
    const w = run(`await s.put(${JSON.stringify(key)}, new TextEncoder().encode("from process 1").buffer);`);
    assert.equal(w.status, 0, w.stderr);
    const r = run(`process.stdout.write(new TextDecoder().decode(await s.get(${JSON.stringify(key)})));`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "from process 1");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
