// Module Worker for the encoder browser test. The Node driver bundles this file with esbuild
// ("@hearth/sdk/engine" -> sdk/dist/engine/index.js, plus @huggingface/tokenizers from sdk/node_modules),
// as an app's bundler would. tvmjs is NOT bundled: the SDK imports it at run time from
// ../vendor/tvmjs.js relative to this bundle, which the driver serves from sdk/dist/vendor/.
import { EncoderModel } from "@hearth/sdk/engine";

const log = (text) => self.postMessage({ type: "log", text });
let model;

function plainError(err) {
  return { name: err?.name ?? "Error", message: String(err?.message ?? err), stack: err?.stack ?? null };
}

const tasks = {
  env() {
    return { isWorker: typeof WorkerGlobalScope !== "undefined" && self instanceof WorkerGlobalScope, hasGPU: typeof navigator.gpu === "object" };
  },

  /** Load the package at `url` (phases recorded), embed `texts` `repeat` times, return vectors + timings. */
  async embed({ url, texts, repeat = 1, batch, long }) {
    const phases = [];
    const t0 = performance.now();
    const truncations = [];
    model ??= await EncoderModel.load(new URL(url, self.location.href).href, {
      cache: "none",
      logger: log,
      onProgress: (e) => phases.push(e.phase),
      onTruncate: (r) => truncations.push(r),
    });
    const loadMs = performance.now() - t0;
    const runs = [];
    let last;
    const size = batch ?? Math.max(1, texts.length);
    for (let r = 0; r < repeat; r++) {
      model.resetStats();
      const t1 = performance.now();
      const vectors = [];
      const truncated = [];
      const tokenCounts = [];
      for (let i = 0; i < texts.length; i += size) {
        const res = await model.embedDetailed(texts.slice(i, i + size));
        vectors.push(...res.vectors);
        truncated.push(...res.truncated);
        tokenCounts.push(...res.tokenCounts);
      }
      const ms = performance.now() - t1;
      runs.push({ ms, textsPerSec: texts.length / (ms / 1000), calls: model.stats().embed.bucketCalls });
      last = { vectors, truncated, tokenCounts };
    }
    // embed(): the Embedder entry point, with truncation reported through onTruncate.
    const viaEmbed = await model.embed(texts.slice(0, Math.min(texts.length, size)));
    let longInfo = null;
    if (typeof long === "string") {
      const t = model.tokenize(long);
      longInfo = { truncated: t.truncated, tokens: t.tokens, ids: t.ids.length, first: t.ids[0], last: t.ids[t.ids.length - 1], countTokens: model.countTokens(long) };
    }
    return {
      loadMs,
      phases: [...new Set(phases)],
      modelId: model.modelId,
      dim: model.dim,
      maxTokens: model.maxTokens,
      adapter: model.adapter,
      usesF16: model.usesF16,
      loadStats: model.stats().load,
      runs,
      truncated: last.truncated,
      tokenCounts: last.tokenCounts,
      long: longInfo,
      truncations,
      vectors: last.vectors.map((v) => Array.from(v)),
      viaEmbedSame: viaEmbed.every((v, i) => v.every((x, j) => x === last.vectors[i][j])),
    };
  },

  async dispose() {
    await model?.dispose();
    model = undefined;
    return true;
  },
};

self.onmessage = async (ev) => {
  const { id, task } = ev.data;
  try {
    const fn = tasks[task.task];
    if (fn === undefined) throw new Error(`unknown task ${task.task}`);
    self.postMessage({ id, ok: true, result: await fn(task) });
  } catch (err) {
    self.postMessage({ id, ok: false, error: plainError(err) });
  }
};
