#!/usr/bin/env node
// Print the Node (Dawn) WebGPU adapter as one JSON line; exit 1 with a message on stderr if there is none.
// Usage: node scripts/probe-adapter.mjs      (env: see test/support/node-gpu.ts; VK_ICD_FILENAMES optional)
import { register } from "tsx/esm/api";

register();
const { installNodeGPU, configureVulkanEnv } = await import("../test/support/node-gpu.ts");
const { requestGPU, WebGPUUnavailableError } = await import("../src/runtime/gpu.ts");

const t0 = performance.now();
const vk = configureVulkanEnv();
try {
  const gpu = await installNodeGPU();
  const handle = await requestGPU({ gpu });
  const probeMs = performance.now() - t0;
  handle.device.destroy();
  console.log(JSON.stringify({ runtime: "node-dawn", ...handle.info, deviceFeatures: handle.deviceFeatures, icd: vk.icd, probeMs }));
} catch (err) {
  const hint =
    vk.icd === null
      ? "No Vulkan ICD selected: install mesa-vulkan-drivers >= 25 (bookworm-backports) or set VK_ICD_FILENAMES."
      : `Vulkan ICD in use: ${vk.icd} (Dawn rejects mesa < 25 lavapipe; set VK_ICD_FILENAMES to another driver's json to change it).`;
  console.error(`probe-adapter: ${err instanceof WebGPUUnavailableError ? err.message : (err?.stack ?? err)}\n${hint}`);
  process.exitCode = 1;
}
