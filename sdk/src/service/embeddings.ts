/**
 * OpenAI-shaped embeddings over a text encoder (EncoderModel): load options that can cross a Worker
 * boundary, the loaded encoder's description, and the request -> response mapping
 * ({object: "list", data: [{object: "embedding", index, embedding}], model, usage}).
 *
 * EngineCore owns the lifecycle (it queues loads and requests with the chat model's work, so the GPU
 * never runs two jobs at once); this module only turns a validated request into EncoderModel calls and
 * the result into the response. Length bucketing is EncoderModel's (encoder/plan.ts). Truncation is
 * never silent: inputs cut to the encoder's limit are listed in the response's `truncated`, and
 * `truncation: "error"` rejects them with InputTooLongError instead.
 */
import type { AdapterDescription } from "../runtime/gpu.js";
import { EncoderModel, type EncoderLoadOptions, type EncoderStats, type TruncationPolicy } from "../encoder/model.js";
import type { CreateEmbeddingResponse, EmbeddingCreateParams, EmbeddingTruncation } from "./openai.js";
import { InvalidRequestError } from "../errors/index.js";

/** Embedder load options that can cross a Worker boundary (plain data). */
export interface EmbedderLoadOptions {
  /** Quantization variant: the URL is then the model folder and the package `<url>/<variant>/`. */
  variant?: string | undefined;
  /** "webgpu" or "wasm-cpu"; default: WebGPU on a GPU, wasm-cpu without WebGPU or on a software adapter (chooseBackend). */
  target?: string | undefined;
  /** Inputs longer than the encoder's limit: "truncate" (default; reported in the response) or "error". */
  truncation?: TruncationPolicy | undefined;
  /** The `model` of responses and the id requests may name (default `<manifest model_id>/<quantization>`). */
  modelId?: string | undefined;
  /** Passed to EncoderModel.load as is (cache, concurrency, retries, deviceCheck, ...). */
  packageOptions?: Record<string, unknown> | undefined;
}

export interface EmbedderInfo {
  /** The id responses carry (EncoderModel.modelId). */
  model: string;
  /** The manifest's model_id. */
  modelName: string;
  baseUrl: string;
  quantization: string;
  /** Vector length. */
  dim: number;
  /** Longest input embedded whole, in tokens (special tokens included); longer ones are truncated. */
  maxTokens: number;
  normalized: boolean;
  /** The static shape buckets (function names) this device runs. */
  buckets: string[];
  deviceKind: "webgpu" | "cpu";
  adapter: AdapterDescription | null;
  loadMs: number;
}

export function describeEmbedder(model: EncoderModel, loadMs: number): EmbedderInfo {
  return {
    model: model.modelId,
    modelName: model.manifest.model_id,
    baseUrl: model.baseUrl,
    quantization: model.config.quantization || model.manifest.quantization || "",
    dim: model.dim,
    maxTokens: model.maxTokens,
    normalized: model.normalized,
    buckets: model.buckets.map((b) => b.fn),
    deviceKind: model.loadInfo.deviceKind,
    adapter: model.adapter,
    loadMs,
  };
}

/** Load the encoder package at `url` (realm-local options such as fetch and gpu come in `runtime`). */
export function loadEmbedder(
  url: string,
  opts: EmbedderLoadOptions,
  runtime: Pick<EncoderLoadOptions, "fetch" | "gpu" | "logger" | "tvmjs" | "signal" | "onProgress">,
): Promise<EncoderModel> {
  return EncoderModel.load(url, {
    ...(opts.packageOptions ?? {}),
    ...runtime,
    variant: opts.variant,
    target: opts.target,
    truncation: opts.truncation,
    modelId: opts.modelId,
    // Truncation is reported in each response; no console warning besides.
    onTruncate: () => {},
  });
}

/** `model` of a request must name the loaded encoder (a chat model's id there is a mistake worth naming). */
function checkModel(req: EmbeddingCreateParams, model: EncoderModel): void {
  if (req.model == null || req.model === "") return;
  const known = [model.modelId, model.manifest.model_id, model.baseUrl];
  if (!known.includes(req.model)) {
    throw new InvalidRequestError(
      `model: ${JSON.stringify(req.model)} is not the loaded text encoder (${JSON.stringify(model.modelId)}); omit model or pass that id`,
      "model",
      "model_not_found",
    );
  }
}

/** Little-endian float32 bytes as base64 (OpenAI's encoding_format "base64"). */
export function float32ToBase64(v: Float32Array): string {
  const bytes = new Uint8Array(v.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < v.length; i++) view.setFloat32(i * 4, v[i] as number, true);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** Run a validated request on `model` (the caller holds the GPU queue). */
export async function createEmbeddings(model: EncoderModel, req: EmbeddingCreateParams, signal?: AbortSignal): Promise<CreateEmbeddingResponse> {
  checkModel(req, model);
  const texts = typeof req.input === "string" ? [req.input] : req.input;
  const r = await model.embedDetailed(texts, req.truncation == null ? { signal } : { signal, truncation: req.truncation });
  const base64 = req.encoding_format === "base64";
  const truncated: EmbeddingTruncation[] = [];
  let tokens = 0;
  r.truncated.forEach((cut, i) => {
    const n = r.tokenCounts[i] as number;
    tokens += cut ? model.maxTokens : n;
    if (cut) truncated.push({ index: i, tokens: n, max_tokens: model.maxTokens });
  });
  return {
    object: "list",
    data: r.vectors.map((v, index) => ({ object: "embedding", index, embedding: base64 ? float32ToBase64(v) : Array.from(v) })),
    model: model.modelId,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
    truncated,
  };
}

export type { EncoderStats };
