// A software GPU is not a GPU: the default backend on SwiftShader / llvmpipe / lavapipe / a fallback adapter
// is the package's wasm-cpu build; `target: "webgpu"` forces WebGPU; a package without a wasm-cpu build
// stays on the software adapter. The rule on fake adapter infos (as Chromium, Dawn and Windows report them),
// the device bookkeeping on a fake GPU, then the real thing on Dawn's lavapipe (a software adapter).
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { chooseBackend, pickVariant } from "../src/load/device-fit.js";
import { softwareAdapterName } from "../src/runtime/gpu.js";
import { chooseLoadDevice, loadOn, webgpuSkippedReason } from "../src/load/load-device.js";
import { DecoderModel } from "../src/decoder/model.js";
import { PackageCompatibilityError } from "../src/load/package.js";
import { fileFetch } from "./support/file-fetch.js";
import { CPU_PACKAGE, CPU_PACKAGE_BUILD, PROMPT } from "./support/load-fixtures.js";
import { installNodeGPU } from "./support/node-gpu.js";

// Adapter infos as the implementations report them.
const SWIFTSHADER = { vendor: "google", architecture: "swiftshader", device: "", description: "SwiftShader Device (Subzero)", isFallback: false };
const LAVAPIPE = {
  vendor: "mesa",
  architecture: "software",
  device: "llvmpipe-llvm-15-0-6-256-bits-",
  description: "llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)",
  isFallback: true,
};
const WARP = { vendor: "microsoft", architecture: "", device: "", description: "Microsoft Basic Render Driver" };
const FLAG_ONLY = { vendor: "", architecture: "", device: "", description: "", isFallbackAdapter: true };
const NVIDIA = { vendor: "nvidia", architecture: "hopper", device: "", description: "NVIDIA H200", isFallback: false };
const APPLE = { vendor: "apple", architecture: "metal-3", device: "", description: "" };
const INTEL = { vendor: "intel", architecture: "gen-12lp", device: "", description: "Intel(R) UHD Graphics 770" };

test("softwareAdapterName: SwiftShader, llvmpipe, WARP and the fallback flag are software; GPUs are not", () => {
  assert.equal(softwareAdapterName(SWIFTSHADER), "SwiftShader");
  assert.equal(softwareAdapterName(LAVAPIPE), "llvmpipe");
  assert.equal(softwareAdapterName({ description: "lavapipe" }), "lavapipe");
  assert.equal(softwareAdapterName(WARP), "WARP");
  assert.equal(softwareAdapterName(FLAG_ONLY), "fallback adapter");
  assert.equal(softwareAdapterName({ isFallback: true }), "fallback adapter");
  for (const gpu of [NVIDIA, APPLE, INTEL, {}]) assert.equal(softwareAdapterName(gpu), null, JSON.stringify(gpu));
  assert.equal(softwareAdapterName(null), null);
});

test("chooseBackend: wasm-cpu without WebGPU or on a software adapter, unless forced or the package has no CPU build", () => {
  const both = ["webgpu", "wasm-cpu", "llvm"];
  assert.deepEqual(chooseBackend(NVIDIA, { packageTargets: both }), { target: "webgpu", software: null, reason: null });
  assert.deepEqual(chooseBackend(SWIFTSHADER, { packageTargets: both }), {
    target: "wasm-cpu",
    software: "SwiftShader",
    reason: "software WebGPU adapter (SwiftShader): using the CPU build",
  });
  assert.equal(chooseBackend(LAVAPIPE).target, "wasm-cpu", "targets not known yet: assume a CPU build (the loader checks)");
  assert.equal(chooseBackend(FLAG_ONLY, { packageTargets: both }).target, "wasm-cpu");
  assert.deepEqual(chooseBackend(SWIFTSHADER, { packageTargets: both, forceWebGPU: true }), { target: "webgpu", software: "SwiftShader", reason: null });
  assert.deepEqual(chooseBackend(SWIFTSHADER, { packageTargets: ["webgpu"] }), { target: "webgpu", software: "SwiftShader", reason: null });
  assert.deepEqual(chooseBackend(null, { packageTargets: both }), { target: "wasm-cpu", software: null, reason: "no WebGPU adapter" });
  // The variant follows the backend: the CPU build takes f32 even where the software adapter has shader-f16.
  const cpu = chooseBackend(LAVAPIPE, { packageTargets: both }).target === "wasm-cpu";
  assert.equal(pickVariant(["q4f16_1", "q4f32_1"], { shaderF16: true, cpu }), "q4f32_1");
  assert.equal(pickVariant(["q4f16_1", "q4f32_1"], { shaderF16: true, cpu: false }), "q4f16_1");
});

/** A GPU whose only adapter reports `info`; counts the devices it made and destroyed. */
function fakeGPU(info: Record<string, unknown>) {
  const made = { devices: 0, destroyed: 0 };
  const adapter = {
    info,
    features: new Set<string>(),
    limits: {},
    async requestDevice() {
      made.devices++;
      return { features: new Set<string>(), destroy: () => void made.destroyed++ } as unknown as GPUDevice;
    },
  };
  return { gpu: { requestAdapter: async () => adapter } as unknown as GPU, made };
}

test("chooseLoadDevice on a software adapter: wasm-cpu first, its device kept for a package without one, then released", async () => {
  const noCpu = () => new PackageCompatibilityError('no "wasm-cpu" library (targets: webgpu)', ["target:wasm-cpu"]);
  {
    const { gpu, made } = fakeGPU(SWIFTSHADER);
    const chosen = await chooseLoadDevice({ gpu }, "t");
    assert.equal(chosen.target, "wasm-cpu");
    assert.equal(chosen.device, undefined);
    const seen: string[] = [];
    const { value, used } = await loadOn(chosen, async (on) => {
      seen.push(on.target);
      return "loaded";
    });
    assert.equal(value, "loaded");
    assert.deepEqual(seen, ["wasm-cpu"]);
    assert.equal(made.destroyed, 1, "the unused software device is released after the CPU load");
    assert.match(webgpuSkippedReason(used) ?? "", /^software WebGPU adapter \(SwiftShader\): using the package's wasm-cpu build; pass target: "webgpu"/);
  }
  {
    const { gpu, made } = fakeGPU(SWIFTSHADER);
    const chosen = await chooseLoadDevice({ gpu }, "t");
    const seen: string[] = [];
    const { used } = await loadOn(chosen, async (on) => {
      seen.push(on.target);
      if (on.target === "wasm-cpu") throw noCpu();
      return on.device;
    });
    assert.deepEqual(seen, ["wasm-cpu", "webgpu"], "no CPU build: the software adapter it is");
    assert.equal(used.target, "webgpu");
    assert.equal(used.adapter?.description, SWIFTSHADER.description);
    assert.equal(made.destroyed, 0, "the device is in use");
    assert.equal(webgpuSkippedReason(used), null);
  }
  {
    // A failure other than "no CPU build" releases the software device and is reported as it is.
    const { gpu, made } = fakeGPU(LAVAPIPE);
    const chosen = await chooseLoadDevice({ gpu }, "t");
    await assert.rejects(
      loadOn(chosen, async () => Promise.reject(new Error("HTTP 404"))),
      /HTTP 404/,
    );
    assert.equal(made.destroyed, 1);
  }
  {
    const { gpu } = fakeGPU(SWIFTSHADER);
    assert.equal((await chooseLoadDevice({ gpu, target: "webgpu" }, "t")).target, "webgpu", "target: webgpu forces WebGPU");
    const hw = fakeGPU(NVIDIA);
    const onGpu = await chooseLoadDevice({ gpu: hw.gpu }, "t");
    assert.equal(onGpu.target, "webgpu");
    assert.notEqual(onGpu.device, undefined);
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

test("Dawn's lavapipe is a software adapter: DecoderModel.load takes the wasm-cpu build; target webgpu forces WebGPU", async (t) => {
  assert.ok(existsSync(join(CPU_PACKAGE, "hearth-manifest.json")), `no wasm-cpu test package at ${CPU_PACKAGE}; build it with:\n  ${CPU_PACKAGE_BUILD}`);
  const gpu = await installNodeGPU();
  const url = pathToFileURL(CPU_PACKAGE).href;
  const auto = await DecoderModel.load(url, { gpu, fetch: fileFetch, logger: () => {}, cache: "none" });
  const forced = await DecoderModel.load(url, { gpu, target: "webgpu", fetch: fileFetch, logger: () => {}, cache: "none" });
  try {
    assert.equal(auto.loadInfo.deviceKind, "cpu");
    assert.equal(auto.loadInfo.target, "wasm-cpu");
    assert.equal(auto.adapter, null);
    assert.match(auto.loadInfo.webgpuUnavailable ?? "", /software WebGPU adapter \(llvmpipe\)/);
    assert.equal(forced.loadInfo.deviceKind, "webgpu");
    assert.equal(forced.loadInfo.webgpuUnavailable, null);
    assert.match(forced.adapter?.description ?? "", /llvmpipe/);
    // Same model, both backends: the same greedy tokens.
    assert.deepEqual(await auto.greedy(PROMPT, 8), await forced.greedy(PROMPT, 8));
    t.diagnostic(`auto: ${auto.loadInfo.webgpuUnavailable}`);
  } finally {
    await auto.dispose();
    await forced.dispose();
  }
  const webgpuOnly = webgpuOnlyCopy(CPU_PACKAGE);
  try {
    const m = await DecoderModel.load(pathToFileURL(webgpuOnly).href, { gpu, fetch: fileFetch, logger: () => {}, cache: "none" });
    try {
      assert.equal(m.loadInfo.deviceKind, "webgpu", "no CPU build: the software adapter runs it");
      assert.equal(m.loadInfo.webgpuUnavailable, null);
    } finally {
      await m.dispose();
    }
  } finally {
    rmSync(webgpuOnly, { recursive: true, force: true });
  }
});
