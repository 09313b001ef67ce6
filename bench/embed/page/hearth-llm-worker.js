// Hearth's DecoderModel in a module Worker (bundled by bench/embed/browser.mjs from sdk/dist, as an app
// would bundle it): the LLM speed protocol of sdk/scripts/bench-llm-protocol.mjs, the same one the Node
// benchmark runs, so the Chromium and Node figures compare directly.
import { DecoderModel } from "@hearth/sdk/engine";
import { measureDecoder } from "../../../sdk/scripts/bench-llm-protocol.mjs";
import { log, serve } from "./common.js";

serve({
  /**
   * load_cold_ms: first load into this (fresh) profile's Cache Storage (download + SHA-256 + store, shader
   * compilation, weights upload); load_warm_ms: a second load from Cache Storage. Then the protocol.
   */
  async llm({ url, target = "webgpu", threads, spin, runs, prefillLens, decodeNew, decodePrompt, ttftPrompt }) {
    const href = new URL(url, self.location.href).href;
    const load = async () => {
      const t0 = performance.now();
      const model = await DecoderModel.load(href, { cache: "cache-storage", target, threads, logger: log });
      return { model, ms: performance.now() - t0 };
    };
    const cold = await load();
    const coldStats = cold.model.stats().load;
    await cold.model.dispose();
    const warm = await load();
    const model = warm.model;
    try {
      const warmStats = model.stats().load;
      const pool = model["pkg"]?.lib?.wasmThreads; // diagnostics: did the wasm worker threads take tasks?
      if (pool !== undefined && spin !== undefined && spin !== null) pool.setSpin(spin);
      const before = { launches: pool?.launches() ?? 0, workerTasks: pool?.workerTasks() ?? 0 };
      const r = await measureDecoder(model, { runs, prefillLens, decodeNew, decodePrompt, ttftPrompt });
      const wasmThreads = pool === undefined ? null : { workers: pool.workers, launches: pool.launches() - before.launches, workerTasks: pool.workerTasks() - before.workerTasks };
      return {
        runtime: "chromium",
        adapter: model.adapter,
        usesF16: model.usesF16,
        contextWindow: model.maxSequenceLength,
        crossOriginIsolated: self.crossOriginIsolated,
        wasmThreads,
        threads: target === "wasm-cpu-mt" ? 1 + (threads ?? 0) : 1,
        samples: { load_cold_ms: [cold.ms], load_warm_ms: [warm.ms], ...r.samples },
        skipped: r.skipped,
        breakdown: r.breakdown,
        load: { cold: coldStats, warm: warmStats },
      };
    } finally {
      await model.dispose();
    }
  },
});
