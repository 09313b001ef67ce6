/**
 * mlc-chat-config.json of a text-encoder package (`model_task: "embedding"`, written by
 * `hearth.tasks.embedding.embedding_config` / `hearth.models.encoder.encoder_metadata`):
 *
 *   embedding_metadata.buckets   [{function: "embed_b{B}_s{S}", batch_size: B, seq_len: S}, ...]
 *   embedding_metadata.max_seq_length, hidden_size, pooling, normalize, output_dtype, ...
 *   params                       the packed weights (the one trailing argument of every function)
 *
 * Every bucket function is `embed_b{B}_s{S}(input_ids int32[B,S], attention_mask int32[B,S], params)
 * -> float32[B, hidden]`; pooling and normalisation happen inside.
 */
import { type ChatConfigParam, parseParams } from "../load/chat-config.js";
import { EncoderConfigError } from "../errors/model.js";
export { EncoderConfigError } from "../errors/model.js";

export interface EncoderBucket {
  /** The VM function, e.g. "embed_b8_s128". */
  fn: string;
  batch: number;
  seq: number;
}

export interface EncoderConfig {
  modelType: string;
  quantization: string;
  vocabSize: number;
  /** Output vector length. */
  hiddenSize: number;
  /** Longest input the model takes, in tokens ([CLS]/[SEP] included); callers truncate to it. */
  maxSeqLength: number;
  pooling: string;
  normalize: boolean;
  /** Sorted by (seq, batch). */
  buckets: EncoderBucket[];
  /** Weights in packed order. */
  params: ChatConfigParam[];
  padTokenId: number | null;
  tokenizerFiles: string[];
  /** model_config (the checkpoint's config.json), for limit estimates: heads, intermediate size. */
  numAttentionHeads: number | null;
  intermediateSize: number | null;
  /** The whole document. */
  raw: Record<string, unknown>;
}

function bad(msg: string): never {
  throw new EncoderConfigError(`mlc-chat-config.json: ${msg}`);
}

function posInt(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) bad(`${what} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function optPosInt(v: unknown): number | null {
  return typeof v === "number" && Number.isSafeInteger(v) && v > 0 ? v : null;
}

const BUCKET_NAME = /^embed_b(\d+)_s(\d+)$/;

/** Validate a parsed mlc-chat-config.json of an embedding package. */
export function parseEncoderConfig(json: unknown): EncoderConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) bad("not a JSON object");
  const doc = json as Record<string, unknown>;
  const task = doc["model_task"];
  if (task !== "embedding") {
    bad(
      `model_task is ${JSON.stringify(task ?? null)}, not "embedding": this is not a text-encoder package` +
        (task === undefined || task === "chat" ? " (decoder packages load with DecoderModel)" : ""),
    );
  }
  const metaRaw = doc["embedding_metadata"];
  if (typeof metaRaw !== "object" || metaRaw === null || Array.isArray(metaRaw)) bad(`"embedding_metadata" is missing`);
  const meta = metaRaw as Record<string, unknown>;

  const params = parseParams(doc["params"], bad);

  const bucketsRaw = meta["buckets"];
  if (!Array.isArray(bucketsRaw) || bucketsRaw.length === 0) bad("embedding_metadata.buckets must be a non-empty array");
  const seen = new Set<string>();
  const buckets = bucketsRaw.map((b: unknown, i): EncoderBucket => {
    const k = b as { function?: unknown; batch_size?: unknown; seq_len?: unknown } | null;
    const fn = k?.function;
    if (typeof fn !== "string") bad(`embedding_metadata.buckets[${i}].function must be a string`);
    const batch = posInt(k?.batch_size, `embedding_metadata.buckets[${i}].batch_size`);
    const seq = posInt(k?.seq_len, `embedding_metadata.buckets[${i}].seq_len`);
    const m = BUCKET_NAME.exec(fn);
    if (m === null || Number(m[1]) !== batch || Number(m[2]) !== seq) {
      bad(`embedding_metadata.buckets[${i}]: function ${JSON.stringify(fn)} does not match batch_size ${batch} / seq_len ${seq}`);
    }
    if (seen.has(fn)) bad(`embedding_metadata.buckets lists ${fn} twice`);
    seen.add(fn);
    return { fn, batch, seq };
  });
  buckets.sort((a, b) => a.seq - b.seq || a.batch - b.batch);

  const maxSeqLength = posInt(meta["max_seq_length"], "embedding_metadata.max_seq_length");
  const hiddenSize = posInt(meta["hidden_size"], "embedding_metadata.hidden_size");
  const outDtype = meta["output_dtype"] ?? "float32";
  if (outDtype !== "float32") bad(`embedding_metadata.output_dtype ${JSON.stringify(outDtype)} is not supported (float32 only)`);
  if (meta["padding_side"] !== undefined && meta["padding_side"] !== "right") {
    bad(`embedding_metadata.padding_side ${JSON.stringify(meta["padding_side"])} is not supported (right only)`);
  }
  const mc = (typeof doc["model_config"] === "object" && doc["model_config"] !== null ? doc["model_config"] : {}) as Record<string, unknown>;
  const tok = doc["tokenizer_files"];
  return {
    modelType: typeof doc["model_type"] === "string" ? doc["model_type"] : "",
    quantization: typeof doc["quantization"] === "string" ? doc["quantization"] : "",
    vocabSize: posInt(doc["vocab_size"], "vocab_size"),
    hiddenSize,
    maxSeqLength,
    pooling: typeof meta["pooling"] === "string" ? meta["pooling"] : "unknown",
    normalize: meta["normalize"] === true,
    buckets,
    params,
    padTokenId: typeof doc["pad_token_id"] === "number" ? doc["pad_token_id"] : null,
    tokenizerFiles: Array.isArray(tok) ? tok.filter((f): f is string => typeof f === "string") : [],
    numAttentionHeads: optPosInt(mc["num_attention_heads"]),
    intermediateSize: optPosInt(mc["intermediate_size"]),
    raw: doc,
  };
}

/** Whether the package computes in float16 (needs the WebGPU `shader-f16` feature). */
export function encoderUsesF16(config: EncoderConfig): boolean {
  return config.params.some((p) => p.dtype === "float16") || /f16/.test(config.quantization);
}

/**
 * Bytes of the largest intermediate buffer of one bucket call: the float32 attention scores
 * [B, heads, S, S] or the MLP activation [B, S, intermediate] (the estimate
 * `hearth.models.encoder.make_buckets` sizes buckets with). null when model_config lacks the sizes.
 */
export function bucketLargestBuffer(config: EncoderConfig, bucket: EncoderBucket): number | null {
  if (config.numAttentionHeads === null || config.intermediateSize === null) return null;
  const { batch: b, seq: s } = bucket;
  return Math.max(b * config.numAttentionHeads * s * s * 4, b * s * config.intermediateSize * 4);
}
