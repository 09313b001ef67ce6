// transformers.js (@huggingface/transformers from bench/embed/node_modules, bundled by
// bench/embed/browser.mjs with esbuild) in a module Worker: the feature-extraction pipeline on the ONNX
// export of the same checkpoint (bench/embed/export_onnx.py), served locally; no hub, no CDN.
import { env, pipeline } from "@huggingface/transformers";
import { serve, timeBatches } from "./common.js";

let extractor;

serve({
  /** device: "webgpu" | "wasm"; modelRoot: URL of env.localModelPath; ortDir: URL of onnxruntime-web/dist/. */
  async load({ device, modelRoot, modelId, ortDir, threads }) {
    env.allowRemoteModels = false;
    env.allowLocalModels = true; // off by default in a Worker
    // A root-relative path, not an absolute URL: transformers.js 4.3 only probes local files (e.g.
    // tokenizer_config.json, which decides whether the pipeline gets a tokenizer) when localPath is not
    // an http(s) URL.
    env.localModelPath = modelRoot;
    env.useBrowserCache = false;
    env.useWasmCache = false;
    const ort = new URL(ortDir, self.location.href).href;
    // The asyncify build is the one transformers.js picks for WebGPU and WASM alike.
    env.backends.onnx.wasm.wasmPaths = { mjs: `${ort}ort-wasm-simd-threaded.asyncify.mjs`, wasm: `${ort}ort-wasm-simd-threaded.asyncify.wasm` };
    env.backends.onnx.wasm.numThreads = threads;
    const t0 = performance.now();
    extractor = await pipeline("feature-extraction", modelId, { device, dtype: "fp32" });
    let adapter = null;
    if (device === "webgpu") {
      const a = await navigator.gpu?.requestAdapter();
      adapter = a ? { vendor: a.info?.vendor, architecture: a.info?.architecture, description: a.info?.description } : null;
    }
    return {
      loadMs: performance.now() - t0,
      device,
      adapter,
      threads: env.backends.onnx.wasm.numThreads,
      crossOriginIsolated: self.crossOriginIsolated,
      ortVersion: env.backends.onnx.versions?.web ?? null,
      transformersVersion: env.version,
    };
  },

  async embed({ texts }) {
    const out = await extractor(texts, { pooling: "mean", normalize: true });
    return { vectors: out.tolist() };
  },

  async bench({ texts, batch, runs, warmup }) {
    const enc = await extractor.tokenizer(texts.slice(0, batch), { padding: true, truncation: true });
    const dims = enc.input_ids.dims;
    if (dims[0] !== batch || dims[1] !== 128) throw new Error(`bench texts are not ${batch} x 128 tokens: ${dims.join("x")}`);
    // The pipeline returns a CPU tensor (outputs are read back from the GPU): split it into one
    // Float32Array view per text, which is what Hearth's embed() returns.
    const embed = async (chunk) => {
      const t = await extractor(chunk, { pooling: "mean", normalize: true });
      const [n, dim] = t.dims;
      return Array.from({ length: n }, (_, i) => t.data.subarray(i * dim, (i + 1) * dim));
    };
    return timeBatches(embed, texts, { batch, runs, warmup });
  },
});
