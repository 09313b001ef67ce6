/**
 * The loaded chat model: a DecoderModel with its tokenizer, chat template, KV-cache session and the
 * package's sampling defaults, and the load options that describe it. EngineCore owns when a model is
 * loaded and replaced (its queue); this module only opens one.
 */
import { DecoderModel, type DecoderLoadOptions } from "../decoder/model.js";
import { DecoderSession } from "../decoder/session.js";
import type { AdapterDescription } from "../runtime/gpu.js";
import type { FetchLike, Logger } from "../runtime/tvm.js";
import type { TvmjsModule } from "../runtime/tvmjs-types.js";
import type { ContextOverflow } from "./openai.js";
import type { ChatTemplate } from "../tokenize/chat-template.js";
import type { Tokenizer } from "../tokenize/tokenizer.js";
import type { GenerationParams } from "../sample/params.js";
import { fetchPackageBytes, loadPackageText, TOKENIZER_FILE } from "../load/verified-text.js";
import { chatStopTokenIds } from "../load/chat-config.js";

/** Options that only make sense in the realm that runs the engine (functions, GPU objects). */
export interface EngineRuntimeOptions {
  /** Fetch for package files (default: global fetch). In Node pass one that reads file:// URLs. */
  fetch?: FetchLike | undefined;
  /** WebGPU entry point (default navigator.gpu). */
  gpu?: GPU | undefined;
  logger?: Logger | undefined;
  tvmjs?: TvmjsModule | undefined;
}

/** Load options that can cross a Worker boundary (plain data). */
export interface EngineLoadOptions {
  /** Quantization variant: `model` is then the model folder and the package is `<model>/<variant>/`. */
  variant?: string | undefined;
  /**
   * Which manifest target to load: "webgpu" forces WebGPU (also on a software adapter), "wasm-cpu" the CPU
   * build. Default: WebGPU on a GPU, wasm-cpu without WebGPU or on a software adapter (load/device-fit.ts chooseBackend).
   */
  target?: string | undefined;
  /** KV-cache capacity in tokens (default and maximum: the package's context_window_size). */
  maxTotalSeqLen?: number | undefined;
  /** Tokens per prefill call (default and maximum: the package's prefill_chunk_size). */
  prefillChunkSize?: number | undefined;
  /** Prompt longer than the context window: "error" (default, ContextWindowExceededError) or "truncate". */
  contextOverflow?: ContextOverflow | undefined;
  /** Reuse the KV cache across requests when the new prompt starts with what it holds (default true). */
  kvReuse?: boolean | undefined;
  /** The `model` field of responses (default: the manifest's model_id). */
  modelId?: string | undefined;
  /**
   * Passed to DecoderModel.load / loadPackage as is: loader options this engine does not name
   * (they reach the loader unchanged, so new loader features need no engine change).
   */
  packageOptions?: Record<string, unknown> | undefined;
}

/**
 * A load progress event: the package loader's own events (phase "manifest", "download", "verify",
 * "shader-compile", "gpu-upload", "ready" once the loader reports them), then the engine's
 * "tokenizer" and "engine-ready".
 */
export interface LoadProgressEvent {
  phase: string;
  [key: string]: unknown;
}

export interface EngineLoadHooks {
  /** Called with every progress event; exceptions it throws are ignored. */
  onProgress?: ((event: LoadProgressEvent) => void) | undefined;
  signal?: AbortSignal | undefined;
}

export type EngineCoreLoadOptions = EngineLoadOptions & EngineRuntimeOptions & EngineLoadHooks;

export interface ModelInfo {
  model: string;
  baseUrl: string;
  quantization: string;
  usesF16: boolean;
  vocabSize: number;
  /** Token ids that end generation (mlc-chat-config's eos_token_id list and the tokenizer's eos). */
  eosTokenIds: number[];
  contextWindowSize: number;
  /** KV-cache capacity in use. */
  maxSequenceLength: number;
  prefillChunkSize: number;
  hasChatTemplate: boolean;
  adapter: AdapterDescription | null;
  loadMs: number;
}

/** A loaded chat model and what requests need of it. */
export interface LoadedChatModel {
  model: DecoderModel;
  session: DecoderSession;
  tokenizer: Tokenizer;
  template: ChatTemplate | null;
  templateError: Error | null;
  eosTokenIds: number[];
  info: ModelInfo;
  contextOverflow: ContextOverflow;
  defaults: Pick<GenerationParams, "temperature" | "top_p" | "presence_penalty" | "frequency_penalty" | "repetition_penalty">;
}

function numberOr<T>(value: unknown, fallback: T): number | T {
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
}

/**
 * Open the chat package at `modelUrl`: the decoder (weights on the device), then tokenizer and chat
 * template read through the package's verified files. `runtime` supplies what `opts` leaves out.
 */
export async function openChatModel(modelUrl: string, opts: EngineCoreLoadOptions, runtime: EngineRuntimeOptions): Promise<LoadedChatModel> {
  const t0 = performance.now();
  const progress = (event: LoadProgressEvent): void => {
    try {
      opts.onProgress?.(event);
    } catch {
      // a progress callback never breaks a load
    }
  };
  const fetchFn: FetchLike = opts.fetch ?? runtime.fetch ?? ((url, init) => globalThis.fetch(url, init));
  // The loader's events are interfaces without an index signature: accept any {phase} object.
  const fromLoader = (event: { phase: string }): void => progress(event as LoadProgressEvent);
  const decoderOpts: DecoderLoadOptions & { onProgress?: (event: { phase: string }) => void } = {
    ...(opts.packageOptions ?? {}),
    fetch: fetchFn,
    gpu: opts.gpu ?? runtime.gpu,
    logger: opts.logger ?? runtime.logger,
    tvmjs: opts.tvmjs ?? runtime.tvmjs,
    variant: opts.variant,
    target: opts.target,
    maxTotalSeqLen: opts.maxTotalSeqLen,
    prefillChunkSize: opts.prefillChunkSize,
    signal: opts.signal,
    // The package loader's progress events (when it has them); the engine adds its own after.
    onProgress: fromLoader,
  };
  const model = await DecoderModel.load(modelUrl, decoderOpts);
  try {
    progress({ phase: "tokenizer", file: TOKENIZER_FILE });
    // Package files beyond the weights: through the loader's verified store when this DecoderModel has
    // one (readFile), else fetched here and checked against the manifest's size and SHA-256.
    const modelRead = (model as { readFile?: (path: string, signal?: AbortSignal) => Promise<ArrayBuffer> }).readFile;
    const read =
      typeof modelRead === "function" ? (path: string) => modelRead.call(model, path, opts.signal) : fetchPackageBytes(model.baseUrl, fetchFn, opts.signal);
    const { tokenizer, template, templateError } = await loadPackageText(model.manifest, read, model.config.raw);
    const eos = chatStopTokenIds(model.config, tokenizer.special.eos?.id ?? null);
    const raw = model.config.raw;
    const info: ModelInfo = {
      model: opts.modelId ?? (model.manifest.model_id || model.baseUrl),
      baseUrl: model.baseUrl,
      quantization: model.config.quantization,
      usesF16: model.usesF16,
      vocabSize: model.config.vocab_size,
      eosTokenIds: eos,
      contextWindowSize: model.config.context_window_size,
      maxSequenceLength: model.maxSequenceLength,
      prefillChunkSize: model.prefillChunkSize,
      hasChatTemplate: template !== null,
      adapter: model.adapter,
      loadMs: performance.now() - t0,
    };
    progress({ phase: "engine-ready", totalMs: info.loadMs });
    return {
      model,
      session: new DecoderSession(model, opts.kvReuse ?? true),
      tokenizer,
      template,
      templateError,
      eosTokenIds: [...eos],
      info,
      contextOverflow: opts.contextOverflow ?? "error",
      defaults: {
        temperature: numberOr(model.config.temperature, 1),
        top_p: numberOr(model.config.top_p, 1),
        presence_penalty: numberOr(raw["presence_penalty"], 0),
        frequency_penalty: numberOr(raw["frequency_penalty"], 0),
        repetition_penalty: numberOr(raw["repetition_penalty"], 1),
      },
    };
  } catch (err) {
    await model.dispose();
    throw err;
  }
}
