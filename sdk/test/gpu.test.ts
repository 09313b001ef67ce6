// describeAdapter / requestGPU on the real Dawn adapter (lavapipe on CPU-only machines).
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { configureVulkanEnv, installNodeGPU } from "./support/node-gpu.js";
import { describeAdapter, requestGPU, WebGPUCapabilityError } from "../src/runtime/gpu.js";

const MiB = 1 << 20;
let gpu: GPU;

before(async () => {
  gpu = await installNodeGPU();
});

test("describeAdapter reports the Dawn adapter with sane limits", async (t) => {
  const t0 = performance.now();
  const adapter = await gpu.requestAdapter();
  t.diagnostic(`requestAdapter: ${(performance.now() - t0).toFixed(1)} ms`);
  assert.ok(adapter, "Dawn returned no adapter (see test/support/node-gpu.ts for the Vulkan driver it needs)");
  const info = describeAdapter(adapter);
  t.diagnostic(`adapter: ${info.description} (vendor ${info.vendor}, arch ${info.architecture}, fallback ${info.isFallback})`);

  assert.ok(info.vendor.length > 0, "vendor is empty");
  assert.ok(info.description.length > 0, "description is empty");
  assert.deepEqual(info.features, [...info.features].sort(), "features are sorted");
  assert.ok(info.features.every((f) => typeof f === "string"));
  assert.equal(info.shaderF16, info.features.includes("shader-f16"));
  assert.equal(info.subgroups, info.features.includes("subgroups"));
  // WebGPU guarantees at least the default limits.
  assert.ok(info.limits.maxStorageBufferBindingSize >= 128 * MiB, `maxStorageBufferBindingSize ${info.limits.maxStorageBufferBindingSize}`);
  assert.ok(info.limits.maxBufferSize >= 256 * MiB, `maxBufferSize ${info.limits.maxBufferSize}`);
  assert.ok(info.limits.maxComputeWorkgroupStorageSize >= 16384);
  assert.ok(info.limits.maxComputeInvocationsPerWorkgroup >= 256);
  assert.ok(info.limits.maxStorageBuffersPerShaderStage >= 8);
  assert.ok(info.limits.minStorageBufferOffsetAlignment > 0 && info.limits.minStorageBufferOffsetAlignment <= 256);
  for (const [k, v] of Object.entries(info.limits)) assert.ok(Number.isFinite(v) && v > 0, `${k}=${v}`);
  // Plain data: survives JSON (it is posted from workers and printed by CLIs).
  assert.deepEqual(JSON.parse(JSON.stringify(info)), info);

  if (configureVulkanEnv().icdFromHarness) {
    // The harness picked lavapipe: it must be mesa >= 25 (older is rejected by Dawn) and have shader-f16.
    assert.match(info.description, /llvmpipe/i);
    assert.equal(info.vendor, "mesa");
    assert.equal(info.shaderF16, true, "lavapipe 25 exposes shader-f16");
    assert.equal(info.limits.maxStorageBufferBindingSize, 128 * MiB);
    assert.equal(info.limits.maxComputeWorkgroupStorageSize, 32 * 1024);
  }
});

test("requestGPU creates a device with shader-f16 and the adapter's maximum buffer limits", async (t) => {
  const t0 = performance.now();
  const h = await requestGPU({ gpu });
  t.diagnostic(`requestGPU: ${(performance.now() - t0).toFixed(1)} ms`);
  try {
    const a = h.info.limits;
    assert.equal(h.device.limits.maxStorageBufferBindingSize, a.maxStorageBufferBindingSize);
    assert.equal(h.device.limits.maxBufferSize, a.maxBufferSize);
    assert.equal(h.device.limits.maxComputeWorkgroupStorageSize, a.maxComputeWorkgroupStorageSize);
    assert.equal(h.device.limits.maxStorageBuffersPerShaderStage, a.maxStorageBuffersPerShaderStage);
    assert.equal(h.device.features.has("shader-f16"), h.info.shaderF16);
    assert.equal(h.deviceFeatures.includes("shader-f16"), h.info.shaderF16);
  } finally {
    h.device.destroy();
  }
});

test("requestGPU({shaderF16: false}) leaves shader-f16 off", async () => {
  const h = await requestGPU({ gpu, shaderF16: false });
  try {
    assert.equal(h.device.features.has("shader-f16"), false);
  } finally {
    h.device.destroy();
  }
});

test("requestGPU refuses an adapter below minLimits with WebGPUCapabilityError", async () => {
  const adapter = await gpu.requestAdapter();
  assert.ok(adapter);
  const have = describeAdapter(adapter).limits.maxStorageBufferBindingSize;
  await assert.rejects(requestGPU({ gpu, minLimits: { maxStorageBufferBindingSize: have + 1 } }), (err: unknown) => {
    assert.ok(err instanceof WebGPUCapabilityError);
    assert.deepEqual(err.missing, [`maxStorageBufferBindingSize: need ${have + 1}, have ${have}`]);
    assert.match(err.message, /cannot run this model/);
    return true;
  });
});
