// Hearth's EncoderModel in a module Worker (bundled by bench/embed/browser.mjs with esbuild from
// sdk/dist, as an app would bundle it; tvmjs loaded at run time from ../vendor/tvmjs.js).
// Embeds batches of 128-token texts with the SDK's EncoderModel and times them.
import { EncoderModel } from "@hearth/sdk/engine";
import { log, serve, timeBatches } from "./common.js";

let model;

serve({
  async load({ url, pipelines }) {
    const t0 = performance.now();
    model = await EncoderModel.load(new URL(url, self.location.href).href, { cache: "none", target: "webgpu", logger: log, ...(pipelines ? { pipelines } : {}) });
    return { loadMs: performance.now() - t0, adapter: model.adapter, usesF16: model.usesF16, modelId: model.modelId, loadStats: model.stats().load };
  },

  /** Vectors for the parity check against sentence-transformers (one call, padded to the longest). */
  async embed({ texts }) {
    const vectors = await model.embed(texts);
    return { vectors: vectors.map((v) => Array.from(v)) };
  },

  async bench({ texts, batch, runs, warmup }) {
    const tokens = texts.slice(0, batch).map((t) => model.countTokens(t));
    if (!tokens.every((n) => n === 128)) throw new Error(`bench texts are not 128 tokens: ${tokens.join(",")}`);
    model.resetStats();
    const r = await timeBatches((chunk) => model.embed(chunk), texts, { batch, runs, warmup });
    const stats = model.stats();
    return { ...r, calls: stats.embed.bucketCalls, dispatch: stats.dispatch };
  },
});
