/**
 * The text encoder for the RAG index: the SDK's EncoderModel (a compiled sentence-embedding package,
 * e.g. all-MiniLM-L6-v2) on this worker's own WebGPU device, or on the CPU (wasm-cpu build) when
 * WebGPU is unavailable. EncoderModel implements the index's `Embedder` contract directly.
 */
import { EncoderModel } from "@hearth/sdk";
import type { Embedder } from "@hearth/sdk/rag";
import type { EmbedderSpec, LoadCacheSummary, LoadPhases } from "./protocol.ts";

export interface LoadedEmbedder {
  embedder: Embedder;
  model: EncoderModel;
  loadMs: number;
  /** "webgpu" or "cpu". */
  device: string;
  cache: LoadCacheSummary;
  phases: LoadPhases;
}

export async function loadEmbedder(
  spec: EmbedderSpec,
  onProgress: (phase: string, detail: Record<string, unknown>) => void,
  signal: AbortSignal,
): Promise<LoadedEmbedder> {
  const t0 = performance.now();
  const model = await EncoderModel.load(spec.url, {
    signal,
    target: spec.target, // decided by the page (models.ts), software adapter or not
    onProgress: (e) => {
      const { phase, ...detail } = e;
      onProgress(phase, detail as Record<string, unknown>);
    },
    // Chunks are sized below maxTokens by the index, so truncation would be a bug: log it loudly.
    onTruncate: (r) => console.warn(`[hearth-demo] encoder truncated ${r.indices.length} text(s) to ${r.maxTokens} tokens`),
  });
  const c = model.loadInfo.cache;
  const t = model.stats().load;
  return {
    embedder: model,
    model,
    loadMs: performance.now() - t0,
    device: model.loadInfo.deviceKind,
    cache: { filesFromCache: c.cachedFiles, filesDownloaded: c.downloadedFiles, bytesFromCache: c.cachedBytes, bytesDownloaded: c.downloadedBytes },
    phases: { fetchVerifyMs: t.fetchVerifyMs, pipelinesMs: t.pipelinesMs, tensorCacheMs: t.tensorCacheMs, totalMs: t.totalMs },
  };
}
