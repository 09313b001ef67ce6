// Which WebGPU library target "webgpu" loads (load option webgpuBuild, device-fit.ts chooseWebGPUBuild): the
// package's "webgpu-fused" build on a hardware adapter, the plain "webgpu" one on a software adapter or an
// unknown one; an explicit choice wins, and one the package cannot serve names the targets it has. On adapter
// infos as the implementations report them; the loads themselves on Dawn: tests/test_webgpu_fused_target.py.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chooseWebGPUBuild, type WebGPUBuild } from "../src/load/device-fit.js";
import { JS_TARGETS, PackageCompatibilityError, isWebGPUTarget } from "../src/load/package.js";

const NVIDIA = { vendor: "nvidia", architecture: "hopper", device: "", description: "NVIDIA H100 80GB HBM3", isFallback: false };
const APPLE = { vendor: "apple", architecture: "metal-3", device: "", description: "" };
const LAVAPIPE = {
  vendor: "mesa",
  architecture: "software",
  device: "llvmpipe-llvm-15-0-6-256-bits-",
  description: "llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)",
  isFallback: true,
};
const SWIFTSHADER = { vendor: "google", architecture: "swiftshader", device: "", description: "SwiftShader Device (Subzero)", isFallback: false };

const BOTH = ["webgpu", "webgpu-fused", "wasm-cpu", "llvm"];
const PLAIN_ONLY = ["webgpu", "wasm-cpu", "llvm"];

test("auto: a hardware adapter gets the fused build when the package has it", () => {
  assert.equal(chooseWebGPUBuild(BOTH, NVIDIA).target, "webgpu-fused");
  assert.equal(chooseWebGPUBuild(BOTH, APPLE, "auto").target, "webgpu-fused");
  assert.equal(chooseWebGPUBuild(PLAIN_ONLY, NVIDIA).target, "webgpu");
});

test("auto: a software or unknown adapter gets the plain build", () => {
  const lavapipe = chooseWebGPUBuild(BOTH, LAVAPIPE);
  assert.equal(lavapipe.target, "webgpu");
  assert.match(lavapipe.reason, /software WebGPU adapter \(llvmpipe\)/);
  assert.equal(chooseWebGPUBuild(BOTH, SWIFTSHADER).target, "webgpu");
  assert.equal(chooseWebGPUBuild(BOTH, { isFallbackAdapter: true }).target, "webgpu");
  assert.equal(chooseWebGPUBuild(BOTH, undefined).target, "webgpu");
  assert.equal(chooseWebGPUBuild(BOTH, null).target, "webgpu");
});

test("auto: a package whose only WebGPU build is the fused one loads it anywhere", () => {
  assert.equal(chooseWebGPUBuild(["webgpu-fused", "wasm-cpu"], LAVAPIPE).target, "webgpu-fused");
});

test("an explicit build wins over the adapter", () => {
  assert.equal(chooseWebGPUBuild(BOTH, LAVAPIPE, "fused").target, "webgpu-fused");
  assert.equal(chooseWebGPUBuild(BOTH, undefined, "fused").target, "webgpu-fused");
  assert.equal(chooseWebGPUBuild(BOTH, NVIDIA, "plain").target, "webgpu");
});

test("an explicit build the package lacks fails naming its targets", () => {
  assert.throws(
    () => chooseWebGPUBuild(PLAIN_ONLY, NVIDIA, "fused"),
    (err: unknown) =>
      err instanceof PackageCompatibilityError &&
      err.message.includes('"webgpu-fused"') &&
      err.message.includes("targets: webgpu, wasm-cpu, llvm") &&
      err.message.includes("hearth compile --target webgpu-fused") &&
      err.missing.join() === "target:webgpu-fused",
  );
  assert.throws(() => chooseWebGPUBuild(["webgpu-fused"], LAVAPIPE, "plain"), /needs the package's "webgpu" library.*targets: webgpu-fused/);
});

test("a webgpuBuild outside auto/fused/plain is a TypeError", () => {
  assert.throws(() => chooseWebGPUBuild(BOTH, NVIDIA, "fast" as WebGPUBuild), /webgpuBuild must be one of "auto", "fused", "plain", got "fast"/);
});

test("webgpu-fused is a JS target that runs on WebGPU", () => {
  assert.ok((JS_TARGETS as readonly string[]).includes("webgpu-fused"));
  assert.ok(isWebGPUTarget("webgpu-fused") && isWebGPUTarget("webgpu"));
  assert.ok(!isWebGPUTarget("wasm-cpu") && !isWebGPUTarget("wasm-cpu-mt"));
});
