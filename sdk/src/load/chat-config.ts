/** mlc-chat-config.json: what the engine needs to drive a compiled decoder (MLC-LLM conventions). */
import { ChatConfigError } from "../errors/load.js";
export { ChatConfigError } from "../errors/load.js";

export interface ChatConfigParam {
  name: string;
  shape: number[];
  dtype: string;
}

export interface ChatConfig {
  model_type: string;
  quantization: string;
  vocab_size: number;
  /** Longest sequence the KV cache is sized for (tokens). */
  context_window_size: number;
  /** Most tokens one prefill call may take; longer prompts are fed in chunks. */
  prefill_chunk_size: number;
  sliding_window_size: number;
  max_batch_size: number;
  bos_token_id: number | null;
  /** Normalised to a list (the file may hold one id, a list, or null). */
  eos_token_ids: number[];
  pad_token_id: number | null;
  temperature: number | null;
  top_p: number | null;
  /** Weights in packed order: the one trailing `params` argument of every model function. */
  params: ChatConfigParam[];
  /** Target -> library file. */
  model_lib: Record<string, string>;
  tokenizer_files: string[];
  chat_template: string | null;
  /** The whole document. */
  raw: Record<string, unknown>;
}

function bad(msg: string): never {
  throw new ChatConfigError(`mlc-chat-config.json: ${msg}`);
}

function positiveInt(doc: Record<string, unknown>, key: string): number {
  const v = doc[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) bad(`"${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function optInt(v: unknown): number | null {
  return typeof v === "number" && Number.isSafeInteger(v) ? v : null;
}

function optNumber(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function tokenIds(v: unknown): number[] {
  if (typeof v === "number" && Number.isSafeInteger(v)) return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === "number" && Number.isSafeInteger(x));
  return [];
}

/**
 * The packed weight list ("params") of a package config, chat or encoder: `bad` throws the caller's
 * error class.
 */
export function parseParams(paramsRaw: unknown, bad: (msg: string) => never): ChatConfigParam[] {
  if (!Array.isArray(paramsRaw) || paramsRaw.length === 0) bad(`"params" must be a non-empty array (the packed weights)`);
  return paramsRaw.map((p: unknown, i): ChatConfigParam => {
    const q = p as Partial<ChatConfigParam> | null;
    if (typeof q?.name !== "string" || !Array.isArray(q.shape) || !q.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || typeof q.dtype !== "string") {
      bad(`params[${i}] must be {name, shape, dtype}`);
    }
    return { name: q.name, shape: [...q.shape], dtype: q.dtype };
  });
}

/** Validate a parsed mlc-chat-config.json. */
export function parseChatConfig(json: unknown): ChatConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) bad("not a JSON object");
  const doc = json as Record<string, unknown>;
  const params = parseParams(doc["params"], bad);
  const libRaw = doc["model_lib"];
  const model_lib: Record<string, string> = {};
  if (typeof libRaw === "object" && libRaw !== null) {
    for (const [k, v] of Object.entries(libRaw)) if (typeof v === "string") model_lib[k] = v;
  }
  const context = positiveInt(doc, "context_window_size");
  const chunk = positiveInt(doc, "prefill_chunk_size");
  const tokFiles = doc["tokenizer_files"];
  return {
    model_type: typeof doc["model_type"] === "string" ? doc["model_type"] : "",
    quantization: typeof doc["quantization"] === "string" ? doc["quantization"] : "",
    vocab_size: positiveInt(doc, "vocab_size"),
    context_window_size: context,
    prefill_chunk_size: chunk,
    sliding_window_size: optInt(doc["sliding_window_size"]) ?? -1,
    max_batch_size: optInt(doc["max_batch_size"]) ?? 1,
    bos_token_id: optInt(doc["bos_token_id"]),
    eos_token_ids: tokenIds(doc["eos_token_id"]),
    pad_token_id: optInt(doc["pad_token_id"]),
    temperature: optNumber(doc["temperature"]),
    top_p: optNumber(doc["top_p"]),
    params,
    model_lib,
    tokenizer_files: Array.isArray(tokFiles) ? tokFiles.filter((f): f is string => typeof f === "string") : [],
    chat_template: typeof doc["chat_template"] === "string" ? doc["chat_template"] : null,
    raw: doc,
  };
}

/**
 * The ids that end generation: the package's `eos_token_id` list (the compiler writes the checkpoint's eos
 * ids and the token its chat template closes an assistant turn with: `<|im_end|>`, `<end_of_turn>`, ...)
 * and the tokenizer's eos. Nothing family-specific: whatever the package says.
 */
export function chatStopTokenIds(config: ChatConfig, tokenizerEos: number | null): number[] {
  const ids = new Set(config.eos_token_ids);
  if (tokenizerEos !== null) ids.add(tokenizerEos);
  return [...ids];
}

/** Whether the compiled model computes in float16 (needs the WebGPU `shader-f16` feature). */
export function configUsesF16(config: ChatConfig): boolean {
  return config.params.some((p) => p.dtype === "float16") || /f16/.test(config.quantization);
}
