// DecoderModel.load without WebGPU. This file never installs Dawn, so navigator.gpu is absent here (node
// --test runs each file in its own process): a package with a wasm-cpu build loads on tvmjs's CPU device,
// one without fails with a WebGPUUnavailableError that says so.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { DecoderModel } from "../src/decoder/model.js";
import { WebGPUUnavailableError } from "../src/runtime/gpu.js";
import { MemoryArtifactStore } from "../src/load/index.js";
import { fileFetch } from "./support/file-fetch.js";
import { CountingFetch, CPU_PACKAGE, CPU_PACKAGE_BUILD, PROMPT, WEBGPU_PACKAGE } from "./support/load-fixtures.js";

test("no navigator.gpu + a wasm-cpu build: load falls back to the CPU and generates", async (t) => {
  assert.equal((globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu, undefined);
  assert.ok(existsSync(join(CPU_PACKAGE, "hearth-manifest.json")), `no wasm-cpu test package at ${CPU_PACKAGE}; build it with:\n  ${CPU_PACKAGE_BUILD}`);
  const manifest = JSON.parse(readFileSync(join(CPU_PACKAGE, "hearth-manifest.json"), "utf8")) as { targets: Record<string, string> };
  const store = new MemoryArtifactStore();
  const f = new CountingFetch();
  const m = await DecoderModel.load(pathToFileURL(CPU_PACKAGE).href, { fetch: f.fetch, logger: () => {}, cache: store });
  try {
    assert.equal(m.loadInfo.deviceKind, "cpu");
    assert.equal(m.loadInfo.target, "wasm-cpu");
    assert.match(m.loadInfo.webgpuUnavailable ?? "", /navigator\.gpu is undefined/);
    // Only the wasm-cpu library was fetched, not the webgpu one (nor the llvm .so).
    assert.equal(f.count(manifest.targets["wasm-cpu"] as string), 1);
    assert.equal(f.count(manifest.targets["webgpu"] as string), 0);
    assert.equal(f.count(manifest.targets["llvm"] as string), 0);
    const a = await m.greedy(PROMPT, 16);
    await m.reset();
    assert.deepEqual(await m.greedy(PROMPT, 16), a);
    t.diagnostic(`wasm-cpu greedy: ${a.join(",")}; load ${m.stats().load.totalMs.toFixed(0)} ms`);
  } finally {
    await m.dispose();
  }
});

/** A copy of `src` without its wasm-cpu library (file, manifest entry and target). */
function webgpuOnlyCopy(src: string): string {
  const dir = mkdtempSync(join(tmpdir(), "hearth-webgpu-only-"));
  cpSync(src, dir, { recursive: true });
  const manifestPath = join(dir, "hearth-manifest.json");
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { targets: Record<string, string>; files: { path: string }[] };
  const cpuLib = manifest.targets["wasm-cpu"];
  if (cpuLib !== undefined) {
    rmSync(join(dir, cpuLib));
    delete manifest.targets["wasm-cpu"];
    manifest.files = manifest.files.filter((f) => f.path !== cpuLib);
    writeFileSync(manifestPath, JSON.stringify(manifest));
  }
  return dir;
}

test("no navigator.gpu + a webgpu-only package: WebGPUUnavailableError saying there is no wasm-cpu build", async () => {
  assert.ok(existsSync(join(WEBGPU_PACKAGE, "hearth-manifest.json")), `no compiled package at ${WEBGPU_PACKAGE}: run \`make test\``);
  const webgpuOnly = webgpuOnlyCopy(WEBGPU_PACKAGE);
  await assert.rejects(DecoderModel.load(pathToFileURL(webgpuOnly).href, { fetch: fileFetch, logger: () => {}, cache: "none" }), (err: unknown) => {
    assert.ok(err instanceof WebGPUUnavailableError, String(err));
    assert.equal(err.reason, "no-navigator-gpu");
    assert.match(err.message, /navigator\.gpu is undefined/);
    assert.match(err.message, /has no wasm-cpu build to fall back to .*no "wasm-cpu" library \(targets: webgpu, llvm\)/);
    return true;
  });
  // Asking for WebGPU explicitly does not fall back.
  await assert.rejects(DecoderModel.load(pathToFileURL(CPU_PACKAGE).href, { target: "webgpu", fetch: fileFetch, logger: () => {}, cache: "none" }), {
    name: "WebGPUUnavailableError",
    reason: "no-navigator-gpu",
  });
});
