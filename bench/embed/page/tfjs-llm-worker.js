// transformers.js (@huggingface/transformers from bench/embed/node_modules, bundled by bench/embed/browser.mjs)
// in a module Worker, as a decoder on onnxruntime-web's wasm backend (device "wasm", CPU only): the ONNX
// export of the same SmolLM2 GGUF (bench/transformersjs/export_onnx.py), served locally; dtype "q8" (model_quantized.onnx, int8 MatMuls: transformers.js's default on wasm) unless the
// task names another. It is timed by the very protocol Hearth's LLM worker runs (sdk/scripts/bench-llm-protocol.mjs
// measureDecoder) through a small adapter with DecoderModel's reset / prefill / decode shape: each call is
// one forward of the model with transformers.js's own KV-cache handling (DynamicCache of the previous
// call's present.* outputs), logits read on the host, argmax on the host, as for Hearth and wllama.
import { AutoModelForCausalLM, DynamicCache, env, Tensor } from "@huggingface/transformers";
import { measureDecoder } from "../../../sdk/scripts/bench-llm-protocol.mjs";
import { log, serve } from "./common.js";

/** DecoderModel's surface that measureDecoder uses, over a transformers.js causal LM. */
class TransformersDecoder {
  constructor(model, maxSequenceLength) {
    this.model = model;
    this.config = { vocab_size: model.config.vocab_size };
    this.maxSequenceLength = maxSequenceLength;
    this.cache = null;
    this.length = 0;
    this.decodeMs = 0;
    this.decodeCalls = 0;
    this.prefillCalls = 0;
  }

  async reset() {
    await this.cache?.dispose();
    this.cache = null;
    this.length = 0;
  }

  async forward(ids) {
    const input_ids = new Tensor("int64", BigInt64Array.from(ids, BigInt), [1, ids.length]);
    const total = this.length + ids.length;
    const attention_mask = new Tensor("int64", new BigInt64Array(total).fill(1n), [1, total]);
    const out = await this.model({ input_ids, attention_mask, past_key_values: this.cache });
    const present = {};
    for (const [name, t] of Object.entries(out)) if (name.startsWith("present.")) present[name.replace("present", "past_key_values")] = t;
    if (this.cache === null) this.cache = new DynamicCache(present);
    else this.cache.update(present);
    this.length = total;
    const { data, dims } = out.logits; // [1, 1, vocab]: the export keeps the last position only
    return data.subarray(data.length - dims.at(-1));
  }

  async prefill(ids) {
    this.prefillCalls++;
    return this.forward(ids);
  }

  async decode(token) {
    const t0 = performance.now();
    const logits = await this.forward([token]);
    this.decodeMs += performance.now() - t0;
    this.decodeCalls++;
    return logits;
  }

  stats() {
    return { decode: { ms: this.decodeMs, calls: this.decodeCalls }, prefill: { calls: this.prefillCalls }, syncMs: 0, submitMs: 0 };
  }
}

serve({
  /** modelRoot: URL of env.localModelPath; ortDir: URL of onnxruntime-web/dist/; threads: onnxruntime-web's wasm threads. */
  async llm({ modelRoot, modelId, ortDir, threads, dtype = "q8", runs, prefillLens, decodeNew, decodePrompt, ttftPrompt }) {
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = modelRoot; // root-relative, as in tfjs-worker.js
    env.useBrowserCache = false;
    env.useWasmCache = false;
    const ort = new URL(ortDir, self.location.href).href;
    env.backends.onnx.wasm.wasmPaths = { mjs: `${ort}ort-wasm-simd-threaded.asyncify.mjs`, wasm: `${ort}ort-wasm-simd-threaded.asyncify.wasm` };
    env.backends.onnx.wasm.numThreads = threads;
    const t0 = performance.now();
    const model = await AutoModelForCausalLM.from_pretrained(modelId, { device: "wasm", dtype });
    const loadMs = performance.now() - t0;
    log(`transformers.js ${env.version} loaded ${modelId} (${dtype}) in ${loadMs.toFixed(0)} ms, ${env.backends.onnx.wasm.numThreads} thread(s), crossOriginIsolated ${self.crossOriginIsolated}`);
    const decoder = new TransformersDecoder(model, 4096);
    try {
      const r = await measureDecoder(decoder, { runs, prefillLens, decodeNew, decodePrompt, ttftPrompt });
      return {
        runtime: "transformers.js",
        version: env.version,
        ortVersion: env.backends.onnx.versions?.web ?? null,
        dtype,
        threads: env.backends.onnx.wasm.numThreads,
        crossOriginIsolated: self.crossOriginIsolated,
        samples: { load_cold_ms: [loadMs], ...r.samples },
        skipped: r.skipped,
      };
    } finally {
      await decoder.reset();
      await model.dispose();
    }
  },
});
