// Package loading without a GPU: manifest parsing, SHA-256 verification, the verified artifact cache, and
// loadPackage refusing a tampered package before tvmjs (or the device) is touched.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  fetchManifest,
  IntegrityError,
  loadPackage,
  PackageCompatibilityError,
  PackageManifestError,
  packageUrl,
  parseChatConfig,
  parsePackageManifest,
  sha256Hex,
  verifyFile,
} from "../src/load/index.js";
import type { TvmjsModule } from "../src/runtime/tvmjs-types.js";
import { fileFetch } from "./support/file-fetch.js";

const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");
const enc = (s: string) => new TextEncoder().encode(s);

test("sha256Hex matches node:crypto", async () => {
  for (const s of ["", "abc", "x".repeat(100_000)]) assert.equal(await sha256Hex(enc(s)), sha(s));
});

test("verifyFile checks size, then SHA-256, and names the file", async () => {
  const bytes = enc("hello world");
  await verifyFile(bytes, { path: "a.bin", bytes: bytes.length, sha256: sha(bytes) });
  await verifyFile(bytes.buffer, { path: "a.bin", bytes: bytes.length, sha256: sha(bytes).toUpperCase() });
  await assert.rejects(verifyFile(bytes, { path: "a.bin", bytes: 3, sha256: sha(bytes) }), (err: unknown) => {
    assert.ok(err instanceof IntegrityError);
    assert.equal(err.file, "a.bin");
    assert.equal(err.problem, "size");
    assert.equal(err.expected, 3);
    assert.equal(err.actual, bytes.length);
    return true;
  });
  const flipped = bytes.slice();
  flipped[0] = (flipped[0] as number) ^ 1;
  await assert.rejects(verifyFile(flipped, { path: "w/x.bin", bytes: bytes.length, sha256: sha(bytes) }), (err: unknown) => {
    assert.ok(err instanceof IntegrityError);
    assert.equal(err.name, "IntegrityError");
    assert.equal(err.file, "w/x.bin");
    assert.equal(err.problem, "sha256");
    assert.equal(err.expected, sha(bytes));
    assert.equal(err.actual, sha(flipped));
    assert.match(err.message, /w\/x\.bin does not match its SHA-256/);
    return true;
  });
});

const GOOD = { path: "a.bin", bytes: 1, sha256: "0".repeat(64) };

test("parsePackageManifest validates the document", () => {
  const m = parsePackageManifest({ format: "hearth-package/1", model_id: "m", targets: { webgpu: "m.wasm" }, files: [GOOD] });
  assert.equal(m.targets["webgpu"], "m.wasm");
  assert.equal(m.quantization, null);
  assert.throws(() => parsePackageManifest([]), PackageManifestError);
  assert.throws(() => parsePackageManifest({ format: "other", files: [] }), /"format"/);
  assert.throws(() => parsePackageManifest({ format: "hearth-package/1" }), /"files" must be an array/);
  assert.throws(() => parsePackageManifest({ format: "hearth-package/1", files: [{ ...GOOD, sha256: "xyz" }] }), /files\[0\]/);
  assert.throws(() => parsePackageManifest({ format: "hearth-package/1", files: [{ ...GOOD, path: "../x" }] }), /inside the package/);
  assert.throws(() => parsePackageManifest({ format: "hearth-package/1", files: [{ ...GOOD, path: "/etc/x" }] }), /inside the package/);
  assert.throws(() => parsePackageManifest({ format: "hearth-package/1", files: [GOOD, GOOD] }), /listed twice/);
});

test("parseChatConfig normalises eos ids and requires the sizes", () => {
  const base = { vocab_size: 10, context_window_size: 8, prefill_chunk_size: 8, params: [{ name: "w", shape: [2], dtype: "float32" }] };
  assert.deepEqual(parseChatConfig({ ...base, eos_token_id: [2, 0] }).eos_token_ids, [2, 0]);
  assert.deepEqual(parseChatConfig({ ...base, eos_token_id: 5 }).eos_token_ids, [5]);
  assert.deepEqual(parseChatConfig({ ...base, eos_token_id: null }).eos_token_ids, []);
  assert.throws(() => parseChatConfig({ ...base, prefill_chunk_size: 0 }), /prefill_chunk_size/);
  assert.throws(() => parseChatConfig({ ...base, params: [] }), /params/);
});

test("packageUrl normalises and appends the variant folder", () => {
  assert.equal(packageUrl("file:///a/b/../m"), "file:///a/m/");
  assert.equal(packageUrl("https://x.test/models/m/", "q4f16_1"), "https://x.test/models/m/q4f16_1/");
});

/** A package folder on disk with the given files and a manifest over them (tamper hooks after). */
function makePackage(files: Record<string, string | Uint8Array>, extra: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "hearth-load-test-"));
  const entries = Object.entries(files).map(([path, data]) => {
    const bytes = typeof data === "string" ? enc(data) : data;
    writeFileSync(join(dir, path), bytes);
    return { path, bytes: bytes.length, sha256: sha(bytes) };
  });
  writeFileSync(
    join(dir, "hearth-manifest.json"),
    JSON.stringify({ format: "hearth-package/1", model_id: "fake", quantization: "q4f32_1", targets: { webgpu: "m.wasm" }, files: entries, ...extra }),
  );
  return dir;
}

test("fetchManifest: 404 and bad JSON are PackageManifestErrors", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hearth-load-test-"));
  try {
    await assert.rejects(fetchManifest(pathToFileURL(dir).href, fileFetch), /HTTP 404.*not a Hearth package/);
    writeFileSync(join(dir, "hearth-manifest.json"), "{nope");
    await assert.rejects(fetchManifest(pathToFileURL(dir).href, fileFetch), PackageManifestError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** tvmjs stand-in that fails the test if anything reaches it. */
const untouchableTvmjs: TvmjsModule = {
  instantiate: () => assert.fail("tvmjs.instantiate must not run for a package that failed verification"),
  createPolyfillWASI: () => assert.fail("tvmjs must not be used"),
};
const fakeDevice = (features: string[] = []) =>
  ({ features: new Set(features), destroy: () => assert.fail("the device must not be destroyed") }) as unknown as GPUDevice;

const CONFIG = JSON.stringify({
  quantization: "q4f32_1",
  vocab_size: 16,
  context_window_size: 32,
  prefill_chunk_size: 32,
  params: [{ name: "w", shape: [4], dtype: "float32" }],
});
const TENSOR_CACHE = JSON.stringify({
  metadata: {},
  records: [
    {
      dataPath: "params_shard_0.bin",
      format: "raw-shard",
      nbytes: 16,
      records: [{ name: "w", shape: [4], dtype: "float32", format: "raw", nbytes: 16, byteOffset: 0 }],
    },
  ],
});

test("loadPackage rejects a tampered shard before tvmjs or the device is used", async () => {
  const dir = makePackage({
    "mlc-chat-config.json": CONFIG,
    "tensor-cache.json": TENSOR_CACHE,
    "params_shard_0.bin": new Uint8Array(16),
    "m.wasm": "not really wasm",
  });
  try {
    const shard = new Uint8Array(16);
    shard[7] = 1;
    writeFileSync(join(dir, "params_shard_0.bin"), shard);
    await assert.rejects(
      loadPackage(pathToFileURL(dir).href, { fetch: fileFetch, device: fakeDevice(), tvmjs: untouchableTvmjs }),
      (err: unknown) => err instanceof IntegrityError && err.file === "params_shard_0.bin" && err.problem === "sha256",
    );
    writeFileSync(join(dir, "params_shard_0.bin"), new Uint8Array(16));
    writeFileSync(join(dir, "m.wasm"), "not really wasn");
    await assert.rejects(loadPackage(pathToFileURL(dir).href, { fetch: fileFetch, device: fakeDevice(), tvmjs: untouchableTvmjs }), {
      name: "IntegrityError",
      file: "m.wasm",
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("loadPackage: variant mismatch, missing target, f16 on a device without shader-f16", async () => {
  const f16Config = JSON.stringify({ ...JSON.parse(CONFIG), quantization: "q4f16_1" });
  const dir = makePackage({ "mlc-chat-config.json": f16Config, "tensor-cache.json": TENSOR_CACHE, "params_shard_0.bin": new Uint8Array(16), "m.wasm": "x" });
  try {
    const url = pathToFileURL(dir).href;
    const opts = { fetch: fileFetch, device: fakeDevice(), tvmjs: untouchableTvmjs };
    await assert.rejects(loadPackage(url, opts), (err: unknown) => err instanceof PackageCompatibilityError && err.missing.includes("shader-f16"));
    await assert.rejects(loadPackage(url, { ...opts, target: "llvm" }), /no "llvm" library \(targets: webgpu\)/);
    // The folder name as the variant: found, but its manifest says another quantization.
    await assert.rejects(
      loadPackage(pathToFileURL(join(dir, "..")).href, { ...opts, variant: basename(dir) }),
      /asked for variant "hearth-load-test-.*", the manifest says quantization "q4f32_1"/,
    );
    await assert.rejects(loadPackage(pathToFileURL(dir).href, { ...opts, variant: "q4f16_1" }), /HTTP 404/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
