// Which WebGPU library target "webgpu" loads (load option webgpuBuild, device-fit.ts chooseWebGPUBuild): the
// package's "webgpu-fused" build on a hardware adapter, the plain "webgpu" one on a software adapter or an
// unknown one; an explicit choice wins, and one the package cannot serve names the targets it has. On adapter
// infos as the implementations report them; the loads themselves on Dawn: tests/test_webgpu_fused_target.py.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chooseWebGPUBuild, subgroupBuildSize, type WebGPUBuild } from "../src/load/device-fit.js";
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
const WITH_SG = ["webgpu", "webgpu-fused", "webgpu-fused-sg32", "webgpu-fused-sg8", "wasm-cpu"];
// Subgroup sizes as the adapters report them (adapter.info.subgroupMinSize / subgroupMaxSize).
const NVIDIA_SG = { ...NVIDIA, subgroupMinSize: 32, subgroupMaxSize: 32 };
const INTEL_SG = { vendor: "intel", architecture: "gen-12lp", device: "", description: "", subgroupMinSize: 8, subgroupMaxSize: 32 };
const LAVAPIPE_SG = { ...LAVAPIPE, subgroupMinSize: 8, subgroupMaxSize: 8 };
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
  assert.throws(() => chooseWebGPUBuild(BOTH, NVIDIA, "fast" as WebGPUBuild), /webgpuBuild must be one of "auto", "fused", "plain", "subgroups", got "fast"/);
});

test("webgpu-fused is a JS target that runs on WebGPU", () => {
  assert.ok((JS_TARGETS as readonly string[]).includes("webgpu-fused"));
  assert.ok(isWebGPUTarget("webgpu-fused") && isWebGPUTarget("webgpu"));
  assert.ok(!isWebGPUTarget("wasm-cpu") && !isWebGPUTarget("wasm-cpu-mt"));
});

test("auto: a hardware adapter with fixed-size subgroups gets the matching subgroup build", () => {
  const got = chooseWebGPUBuild(WITH_SG, NVIDIA_SG, "auto", true);
  assert.equal(got.target, "webgpu-fused-sg32");
  assert.match(got.reason, /32-lane subgroups/);
  assert.equal(
    chooseWebGPUBuild(["webgpu", "webgpu-fused-sg8"], { ...APPLE, subgroupMinSize: 8, subgroupMaxSize: 8 }, "auto", true).target,
    "webgpu-fused-sg8",
  );
});

test("auto: no subgroup build without the device feature, a fixed size the package has, or a hardware adapter", () => {
  assert.equal(chooseWebGPUBuild(WITH_SG, NVIDIA_SG, "auto", false).target, "webgpu-fused"); // device without "subgroups"
  assert.equal(chooseWebGPUBuild(WITH_SG, NVIDIA, "auto", true).target, "webgpu-fused"); // sizes not reported
  assert.equal(chooseWebGPUBuild(WITH_SG, INTEL_SG, "auto", true).target, "webgpu-fused"); // 8..32 varies
  assert.equal(chooseWebGPUBuild(["webgpu", "webgpu-fused", "webgpu-fused-sg8"], NVIDIA_SG, "auto", true).target, "webgpu-fused");
  assert.equal(chooseWebGPUBuild(WITH_SG, LAVAPIPE_SG, "auto", true).target, "webgpu"); // software: plain, as before
  assert.equal(chooseWebGPUBuild(WITH_SG, undefined, "auto", true).target, "webgpu");
});

test('"subgroups" loads the build of the adapter\'s subgroup size, also on a software adapter', () => {
  assert.equal(chooseWebGPUBuild(WITH_SG, LAVAPIPE_SG, "subgroups", true).target, "webgpu-fused-sg8");
  assert.equal(chooseWebGPUBuild(WITH_SG, NVIDIA_SG, "subgroups", true).target, "webgpu-fused-sg32");
});

test('"subgroups" fails naming what is missing', () => {
  const fails = (targets: string[], adapter: object, hasFeature: boolean, re: RegExp, missing: string) =>
    assert.throws(
      () => chooseWebGPUBuild(targets, adapter, "subgroups", hasFeature),
      (err: unknown) => err instanceof PackageCompatibilityError && re.test(err.message) && err.missing.join() === missing,
    );
  fails(
    BOTH,
    NVIDIA_SG,
    true,
    /has none \(targets: webgpu, webgpu-fused, wasm-cpu, llvm\).*hearth compile --target webgpu-fused-sg32/,
    "target:webgpu-fused-sg<N>",
  );
  fails(WITH_SG, NVIDIA_SG, false, /the device has no "subgroups" feature/, "subgroups");
  fails(WITH_SG, NVIDIA, true, /does not report subgroupMinSize/, "subgroups");
  fails(WITH_SG, INTEL_SG, true, /subgroup size varies \(8\.\.32\)/, "subgroups");
  fails(
    ["webgpu", "webgpu-fused-sg32"],
    LAVAPIPE_SG,
    true,
    /subgroups are 8 lanes wide.*builds are for 32.*--target webgpu-fused-sg8/,
    "target:webgpu-fused-sg8",
  );
});

test("the subgroup builds are JS targets that run on WebGPU", () => {
  for (const t of ["webgpu-fused-sg32", "webgpu-fused-sg8"]) {
    assert.ok((JS_TARGETS as readonly string[]).includes(t) && isWebGPUTarget(t), t);
  }
  assert.equal(subgroupBuildSize("webgpu-fused-sg32"), 32);
  assert.equal(subgroupBuildSize("webgpu-fused"), null);
  assert.ok(!isWebGPUTarget("webgpu-fused-sgx"));
});
