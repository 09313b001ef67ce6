/**
 * Which model packages the demo loads.
 *
 * Source of truth: the `hearth serve` package list (GET /models/, JSON: model_id, quantization, task,
 * url, bytes, targets). From it we pick one chat model (task "chat") and one text encoder (task
 * "embedding"), and for each the quantization variant this device can run: a float16 variant
 * (q4f16_1, q0f16) needs the WebGPU feature "shader-f16", so without it the float32 one (q4f32_1,
 * q0f32) is taken. Without WebGPU only packages with a `wasm-cpu` library can run (on the CPU).
 *
 * A software WebGPU adapter (SwiftShader, llvmpipe/lavapipe, WARP, `isFallbackAdapter`) is not a GPU: it
 * emulates every shader on the CPU, so a package with a wasm-cpu build runs that instead (the SDK's rule,
 * chooseBackend; SmolLM2-135M's first token came after 16 min on SwiftShader, in seconds on wasm-cpu).
 *
 * Overrides (query parameters): ?llm=<model_id> and ?embedder=<model_id> pick by id; ?llm_url=<package
 * URL> and ?embedder_url=<package URL> bypass the list entirely; ?models=<index URL> reads another list;
 * ?webgpu=force runs on a software WebGPU adapter anyway.
 */
import { chooseBackend, isF16Variant, pickVariant, softwareAdapterName } from "@hearth/sdk/engine";

export interface PackageEntry {
  modelId: string;
  quantization: string;
  task: string;
  /** Absolute package folder URL (ends with "/"). */
  url: string;
  bytes: number | null;
  targets: string[];
}

export interface GpuProbe {
  available: boolean;
  /** Why WebGPU is not usable (null when it is). */
  reason: string | null;
  shaderF16: boolean;
  adapter: { vendor: string; architecture: string; description: string; isFallback: boolean } | null;
  /** The software rasterizer behind the adapter ("SwiftShader", "llvmpipe", ...), or null for a GPU. */
  software: string | null;
}

export interface ModelChoice {
  entry: PackageEntry;
  /** Other variants of the same model, for the diagnostics panel. */
  variants: string[];
  /** "webgpu", or "wasm-cpu" when WebGPU is missing or the adapter is a software one, and the package has a CPU build. */
  target: "webgpu" | "wasm-cpu";
  /** Why not WebGPU, for the diagnostics ("software WebGPU adapter (SwiftShader): using the CPU build"); else null. */
  note: string | null;
}

export interface ModelPlan {
  indexUrl: string;
  catalog: PackageEntry[];
  llm: ModelChoice;
  embedder: ModelChoice;
  /** ?webgpu=force: WebGPU even on a software adapter. */
  forceWebGPU: boolean;
  /** Chat models on the list that this device can run (for the model picker). */
  llmOptions: string[];
  embedderOptions: string[];
}

/** No package of the kind needed is on the list (or none this device can run). */
export class NoPackageError extends Error {
  override readonly name = "NoPackageError";
  constructor(
    readonly kind: "chat" | "embedding",
    message: string,
  ) {
    super(message);
  }
}

/** One or both roles have no package this device can run (each problem says which and why). */
export class PlanError extends Error {
  override readonly name = "PlanError";
  constructor(readonly problems: NoPackageError[]) {
    super(problems.map((p) => p.message).join("; "));
  }
}

/**
 * Chat models preferred when the list has several (the first one present wins); else the largest non-test
 * model. SmolLM2-135M-Instruct first: it is what `make demo` builds, small enough to answer at a usable
 * speed on the CPU build too.
 */
const PREFERRED_LLMS = ["SmolLM2-135M-Instruct", "Qwen2.5-0.5B-Instruct", "SmolLM2-360M-Instruct", "Qwen2.5-1.5B-Instruct", "Llama-3.2-1B-Instruct"];
const PREFERRED_EMBEDDERS = ["all-MiniLM-L6-v2", "bge-small-en-v1.5"];
const TEST_MODEL = /^tiny-/;

/** Probe WebGPU on this thread (the workers request their own devices; the adapter is the same). */
export async function probeGpu(): Promise<GpuProbe> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (gpu === undefined) {
    return {
      available: false,
      reason: window.isSecureContext ? "this browser has no WebGPU (navigator.gpu is missing)" : "WebGPU needs a secure context (https:// or http://localhost)",
      shaderF16: false,
      adapter: null,
      software: null,
    };
  }
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (err) {
    return { available: false, reason: `requestAdapter failed: ${String(err)}`, shaderF16: false, adapter: null, software: null };
  }
  if (adapter === null) {
    return { available: false, reason: "no WebGPU adapter (the GPU is blocklisted or WebGPU is disabled)", shaderF16: false, adapter: null, software: null };
  }
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo & { isFallbackAdapter?: boolean } }).info;
  const described = {
    vendor: info?.vendor ?? "",
    architecture: info?.architecture ?? "",
    description: info?.description ?? "",
    isFallback: info?.isFallbackAdapter ?? false,
  };
  return {
    available: true,
    reason: null,
    shaderF16: adapter.features.has("shader-f16"),
    adapter: described,
    software: softwareAdapterName(described),
  };
}

/** GET the package list. Throws with the HTTP status, or the network error, when it cannot be read. */
export async function fetchCatalog(indexUrl: string, signal?: AbortSignal): Promise<PackageEntry[]> {
  const res = await fetch(indexUrl, { cache: "no-cache", ...(signal ? { signal } : {}) });
  if (!res.ok) throw new Error(`GET ${indexUrl}: HTTP ${res.status}`);
  const raw: unknown = await res.json();
  if (!Array.isArray(raw)) throw new Error(`${indexUrl} is not a package list (expected a JSON array)`);
  return raw.flatMap((e: unknown): PackageEntry[] => {
    const r = e as Record<string, unknown> | null;
    if (typeof r?.["model_id"] !== "string" || typeof r["quantization"] !== "string" || typeof r["url"] !== "string") return [];
    const url = new URL(r["url"], indexUrl).href;
    return [
      {
        modelId: r["model_id"],
        quantization: r["quantization"],
        task: typeof r["task"] === "string" ? r["task"] : "chat",
        url: url.endsWith("/") ? url : `${url}/`,
        bytes: typeof r["bytes"] === "number" ? r["bytes"] : null,
        targets: typeof r["targets"] === "object" && r["targets"] !== null ? Object.keys(r["targets"]) : [],
      },
    ];
  });
}

/**
 * Preference among the variants of one model: quantized before unquantized (a quarter or half of the
 * download and of the memory; what `make demo` builds), then f16 before f32 where the device has
 * shader-f16, then a GGUF's carried-over codes before a re-rounding of them. Encoders take int8 before 4-bit: plain 4-bit costs MiniLM too much (min cosine 0.81 vs
 * 0.9994, docs/eval.md), so a q4 encoder package is used only when no q8 one is served.
 */
function variantRank(quantization: string, f16ok: boolean, task: string): number {
  const quantized = /^q[1-8]/.test(quantization) && !quantization.startsWith("q0");
  const precision = !quantized ? 8 : task === "embedding" && quantization.startsWith("q4") ? 4 : 0;
  const f16 = isF16Variant(quantization) ? (f16ok ? 0 : 2) : f16ok ? 2 : 0;
  // A GGUF checkpoint's own 4-bit codes carried over (q4f32_gguf, q4f16_gguf) before the same checkpoint
  // rounded a second time (q4f32_1: +35.9 % perplexity on SmolLM2, and the wrong CEO; docs/eval.md).
  const reRounded = /_gguf$/.test(quantization) ? 0 : 1;
  return precision + f16 + reRounded;
}

/** WebGPU or the CPU build for a package with these targets (undefined: not known), and why not WebGPU. */
export function backendFor(
  gpu: GpuProbe,
  packageTargets: readonly string[] | undefined,
  forceWebGPU: boolean,
): { target: "webgpu" | "wasm-cpu"; note: string | null } {
  if (!gpu.available) return { target: "wasm-cpu", note: null };
  const choice = chooseBackend(gpu.adapter, { packageTargets, forceWebGPU });
  return { target: choice.target, note: choice.reason };
}

/** The variant of `modelId` this device runs, or null when none can run here. */
function chooseVariant(catalog: readonly PackageEntry[], modelId: string, task: string, gpu: GpuProbe, forceWebGPU: boolean): ModelChoice | null {
  const mine = catalog.filter((e) => e.modelId === modelId && e.task === task);
  const { target, note } = backendFor(gpu, [...new Set(mine.flatMap((e) => e.targets))], forceWebGPU);
  const runnable = mine.filter((e) => e.targets.includes(target));
  if (runnable.length === 0) return null;
  // On the CPU, f32 (wasm has no fast float16); on WebGPU, f16 only with shader-f16 (pickVariant checks).
  const f16ok = target === "webgpu" && gpu.shaderF16;
  const ordered = [...runnable].sort((a, b) => variantRank(a.quantization, f16ok, task) - variantRank(b.quantization, f16ok, task));
  try {
    const q = pickVariant(
      ordered.map((e) => e.quantization),
      target === "webgpu" ? { shaderF16: gpu.shaderF16 } : { shaderF16: false, cpu: true },
    );
    const entry = ordered.find((e) => e.quantization === q) as PackageEntry;
    return { entry, variants: mine.map((e) => e.quantization), target, note };
  } catch {
    return null;
  }
}

function runnableIds(catalog: readonly PackageEntry[], task: string, gpu: GpuProbe, forceWebGPU: boolean): string[] {
  const ids = [...new Set(catalog.filter((e) => e.task === task).map((e) => e.modelId))];
  return ids.filter((id) => chooseVariant(catalog, id, task, gpu, forceWebGPU) !== null);
}

function defaultId(ids: readonly string[], preferred: readonly string[], catalog: readonly PackageEntry[]): string | undefined {
  for (const p of preferred) if (ids.includes(p)) return p;
  const size = (id: string) => Math.max(...catalog.filter((e) => e.modelId === id).map((e) => e.bytes ?? 0));
  const real = ids.filter((id) => !TEST_MODEL.test(id)).sort((a, b) => size(b) - size(a));
  return real[0] ?? ids[0];
}

function entryFromUrl(url: string, task: string): PackageEntry {
  const abs = new URL(url, location.href).href;
  const folder = abs.endsWith("/") ? abs : `${abs}/`;
  const parts = new URL(folder).pathname.split("/").filter(Boolean);
  return {
    modelId: parts[parts.length - 2] ?? folder,
    quantization: parts[parts.length - 1] ?? "",
    task,
    url: folder,
    bytes: null,
    targets: ["webgpu"],
  };
}

/** Decide which packages to load, from the list and the query parameters. */
export async function planModels(gpu: GpuProbe, params: URLSearchParams = new URLSearchParams(location.search)): Promise<ModelPlan> {
  const indexUrl = new URL(params.get("models") ?? "/models/", location.href).href;
  const catalog = await fetchCatalog(indexUrl);
  const forceWebGPU = params.get("webgpu") === "force";
  const llmOptions = runnableIds(catalog, "chat", gpu, forceWebGPU);
  const embedderOptions = runnableIds(catalog, "embedding", gpu, forceWebGPU);

  const pick = (task: "chat" | "embedding", idParam: string, urlParam: string, options: string[], preferred: string[]): ModelChoice => {
    const url = params.get(urlParam);
    if (url !== null) {
      // The package's targets are not known here: the CPU build on a software adapter (its load says so if missing).
      return { entry: entryFromUrl(url, task), variants: [], ...backendFor(gpu, undefined, forceWebGPU) };
    }
    const wanted = params.get(idParam) ?? defaultId(options, preferred, catalog);
    const what = task === "chat" ? "chat model" : "text encoder (embedding model)";
    if (wanted === undefined) {
      const any = catalog.some((e) => e.task === task);
      throw new NoPackageError(
        task,
        any
          ? `no ${what} on ${indexUrl} can run here: ${gpu.available ? "this GPU has no shader-f16, and there is no float32 variant (q4f32_1)" : `WebGPU is unavailable (${gpu.reason}) and no package has a wasm-cpu build`}`
          : `${indexUrl} lists no ${what}: compile one first (see docs/demo.md)`,
      );
    }
    const choice = chooseVariant(catalog, wanted, task, gpu, forceWebGPU);
    if (choice === null) {
      const known = catalog.some((e) => e.modelId === wanted);
      throw new NoPackageError(
        task,
        known
          ? `${wanted} has no variant this device can run (${catalog
              .filter((e) => e.modelId === wanted)
              .map((e) => e.quantization)
              .join(", ")}; shader-f16: ${gpu.shaderF16 ? "yes" : "no"})`
          : `${wanted} is not on ${indexUrl}`,
      );
    }
    return choice;
  };

  const problems: NoPackageError[] = [];
  const attempt = (f: () => ModelChoice): ModelChoice | null => {
    try {
      return f();
    } catch (err) {
      if (!(err instanceof NoPackageError)) throw err;
      problems.push(err);
      return null;
    }
  };
  const llm = attempt(() => pick("chat", "llm", "llm_url", llmOptions, PREFERRED_LLMS));
  const embedder = attempt(() => pick("embedding", "embedder", "embedder_url", embedderOptions, PREFERRED_EMBEDDERS));
  if (llm === null || embedder === null) throw new PlanError(problems);
  return { indexUrl, catalog, llm, embedder, forceWebGPU, llmOptions, embedderOptions };
}

/** context_window_size of a chat package (its mlc-chat-config.json), to size the KV cache before loading. */
export async function readContextWindow(packageUrl: string): Promise<number> {
  const url = new URL("mlc-chat-config.json", packageUrl).href;
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  const n = ((await res.json()) as { context_window_size?: unknown }).context_window_size;
  if (typeof n !== "number" || !Number.isInteger(n) || n <= 0) throw new Error(`${url} has no context_window_size`);
  return n;
}
