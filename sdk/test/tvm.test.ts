// Tensor-cache plumbing that does not need a compiled model: manifest parsing, the in-memory artifact
// cache (the object handed to tvmjs.fetchTensorCache in Node), and the file:// fetch used by Node tests.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { asDirectoryUrl, MemoryArtifactCache, parseTensorCacheManifest, type FetchLike } from "../src/runtime/tvm.js";
import { fileFetch } from "./support/file-fetch.js";

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "hearth-sdk-test-"));
}

// The layout tvm.contrib.tvmjs.dump_tensor_cache writes (TVM 0.27).
const MANIFEST = {
  metadata: { ParamSize: 2, ParamBytes: 24, BitsPerParam: 32 },
  records: [
    {
      dataPath: "params_shard_0.bin",
      format: "raw-shard",
      nbytes: 24,
      records: [
        { name: "fc1.weight", shape: [2, 2], dtype: "float32", format: "f32-to-bf16", nbytes: 16, byteOffset: 0 },
        { name: "fc1.bias", shape: [2], dtype: "float32", format: "raw", nbytes: 8, byteOffset: 16 },
      ],
    },
  ],
};

test("parseTensorCacheManifest accepts dump_tensor_cache output and rejects garbage", () => {
  const m = parseTensorCacheManifest(MANIFEST);
  assert.equal(m.records.length, 1);
  assert.deepEqual(
    m.records[0]?.records.map((r) => r.name),
    ["fc1.weight", "fc1.bias"],
  );
  assert.equal(m.metadata["ParamSize"], 2);
  assert.throws(() => parseTensorCacheManifest({}), /missing records/);
  assert.throws(() => parseTensorCacheManifest({ records: [{ dataPath: "x" }] }), /records\[0\]/);
  assert.throws(() => parseTensorCacheManifest({ records: [{ dataPath: "x", records: [{ name: "w" }] }] }), /records\[0\]\.records\[0\]/);
});

test("fileFetch reads file:// URLs and 404s on missing files", async () => {
  const dir = tempDir();
  try {
    writeFileSync(join(dir, "a.bin"), new Uint8Array([1, 2, 3]));
    const ok = await fileFetch(pathToFileURL(join(dir, "a.bin")).href);
    assert.equal(ok.status, 200);
    assert.deepEqual(new Uint8Array(await ok.arrayBuffer()), new Uint8Array([1, 2, 3]));
    const missing = await fileFetch(pathToFileURL(join(dir, "nope.bin")).href);
    assert.equal(missing.status, 404);
    assert.equal(missing.ok, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("MemoryArtifactCache fetches once, serves json/arraybuffer, tracks keys, reports HTTP errors", async () => {
  const dir = tempDir();
  try {
    writeFileSync(join(dir, "tensor-cache.json"), JSON.stringify(MANIFEST));
    writeFileSync(join(dir, "params_shard_0.bin"), new Uint8Array(24).fill(7));
    const calls: string[] = [];
    const counting: FetchLike = (url, init) => {
      calls.push(url);
      return fileFetch(url, init);
    };
    const cache = new MemoryArtifactCache(counting);
    const base = asDirectoryUrl(pathToFileURL(dir).href);
    const jsonUrl = new URL("tensor-cache.json", base).href;
    const shardUrl = new URL("params_shard_0.bin", base).href;

    assert.equal(await cache.hasAllKeys([jsonUrl]), false);
    assert.deepEqual(await cache.fetchWithCache(jsonUrl, "json"), MANIFEST);
    await Promise.all([cache.addToCache(shardUrl, "arraybuffer"), cache.addToCache(shardUrl, "arraybuffer")]);
    const buf = await cache.fetchWithCache(shardUrl, "arraybuffer");
    assert.ok(buf instanceof ArrayBuffer);
    assert.deepEqual(new Uint8Array(buf), new Uint8Array(24).fill(7));
    assert.equal(await cache.hasAllKeys([jsonUrl, shardUrl]), true);
    assert.deepEqual(calls, [jsonUrl, shardUrl], "each URL fetched exactly once");
    assert.equal(cache.size, JSON.stringify(MANIFEST).length + 24);

    await cache.deleteInCache(shardUrl);
    assert.equal(await cache.hasAllKeys([shardUrl]), false);
    await assert.rejects(cache.fetchWithCache(new URL("missing.bin", base).href, "arraybuffer"), /HTTP 404/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("asDirectoryUrl adds exactly one trailing slash", () => {
  assert.equal(asDirectoryUrl("http://h/a"), "http://h/a/");
  assert.equal(asDirectoryUrl("http://h/a/"), "http://h/a/");
});
