/**
 * WebGPU for Node tests: Dawn (`webgpu` package) exposed as `navigator.gpu`.
 *
 * Environment: Dawn's Vulkan loader reads VK_ICD_FILENAMES / VK_DRIVER_FILES when the Vulkan instance is
 * created (first `create()` / requestAdapter), not when dawn.node is dlopen'ed (verified: changing
 * VK_ICD_FILENAMES after `import "webgpu"` but before `create()` takes effect). This module nevertheless
 * sets them before it imports `webgpu` at all, so no launcher script or npm-script env is needed:
 *   - VK_ICD_FILENAMES: unless VK_ICD_FILENAMES or VK_DRIVER_FILES is already set, the lavapipe ICD
 *     (HEARTH_VK_ICD, else the first of LAVAPIPE_ICDS that exists). Dawn rejects mesa < 25 lavapipe.
 *   - XDG_RUNTIME_DIR: unless set, a private 0700 temp dir (removed at exit) to silence mesa's warning.
 * To use a real GPU, set VK_ICD_FILENAMES (or VK_DRIVER_FILES) to its ICD json yourself.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const LAVAPIPE_ICDS = [
  "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json",
  "/usr/share/vulkan/icd.d/lvp_icd.json",
  "/usr/share/vulkan/icd.d/lvp_icd.aarch64.json",
];

export interface VulkanEnv {
  /** The ICD json in effect (what we set, or what the caller had set), null if none. */
  icd: string | null;
  /** Whether this module chose the ICD (false: the environment already selected one). */
  icdFromHarness: boolean;
  xdgRuntimeDir: string;
}

let vulkanEnv: VulkanEnv | undefined;

/** Set VK_ICD_FILENAMES / XDG_RUNTIME_DIR as documented above (idempotent). */
export function configureVulkanEnv(): VulkanEnv {
  if (vulkanEnv !== undefined) return vulkanEnv;
  const env = process.env;
  let icd: string | null = env["VK_ICD_FILENAMES"] ?? env["VK_DRIVER_FILES"] ?? null;
  let icdFromHarness = false;
  if (icd === null) {
    const wanted = env["HEARTH_VK_ICD"];
    const found = wanted !== undefined ? wanted : LAVAPIPE_ICDS.find((p) => existsSync(p));
    if (found !== undefined) {
      env["VK_ICD_FILENAMES"] = found;
      icd = found;
      icdFromHarness = true;
    }
  }
  if (env["XDG_RUNTIME_DIR"] === undefined) {
    const dir = mkdtempSync(join(tmpdir(), "hearth-xdg-")); // mkdtemp creates it 0700
    env["XDG_RUNTIME_DIR"] = dir;
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  }
  vulkanEnv = { icd, icdFromHarness, xdgRuntimeDir: env["XDG_RUNTIME_DIR"] as string };
  return vulkanEnv;
}

let gpuPromise: Promise<GPU> | undefined;

/**
 * Configure Vulkan, load Dawn, install WebGPU globals (GPUBufferUsage, ...) and `navigator.gpu`.
 * Returns the GPU object. Safe to call many times.
 *
 * HEARTH_DAWN_FLAGS: Dawn options for create(), space-separated, e.g.
 * "enable-dawn-features=vulkan_enable_f16_on_nvidia" (Dawn hides shader-f16 on NVIDIA's Vulkan driver
 * unless that toggle is on; Chrome has the same flag). Used by the GPU benchmarks (bench/gpu/).
 */
export function installNodeGPU(): Promise<GPU> {
  gpuPromise ??= (async () => {
    configureVulkanEnv();
    const { create, globals } = await import("webgpu");
    Object.assign(globalThis, globals);
    const gpu = create((process.env["HEARTH_DAWN_FLAGS"] ?? "").split(" ").filter(Boolean));
    const g = globalThis as { navigator?: object };
    if (g.navigator === undefined) {
      Object.defineProperty(globalThis, "navigator", { value: { gpu }, configurable: true, writable: true });
    } else {
      Object.defineProperty(g.navigator, "gpu", { value: gpu, configurable: true, writable: true });
    }
    return gpu;
  })();
  return gpuPromise;
}
