/**
 * Sampling and stopping parameters. Field names are OpenAI's (snake_case), so a chat-completions request
 * body maps onto them one to one; `top_k`, `repetition_penalty`, `ignore_eos` and `stop_token_ids` are the
 * usual extensions (vLLM, WebLLM spell them the same way).
 *
 * Which penalty follows whose semantics:
 *  - `presence_penalty`, `frequency_penalty`: OpenAI. Additive, over the tokens generated so far
 *    (not the prompt): logit -= frequency_penalty * count + presence_penalty * (count > 0).
 *  - `repetition_penalty`: Hugging Face (CTRL paper). Multiplicative, over prompt and generated tokens:
 *    a positive logit is divided by it, a negative one multiplied. 1 = off.
 *  - `logit_bias`: OpenAI. Added to the model's logits before the penalties (vLLM's order).
 */
import { SamplingParamsError } from "../errors/text.js";
export { SamplingParamsError } from "../errors/text.js";

export interface SamplingParams {
  /** 0 = greedy (argmax). Default 1. */
  temperature?: number;
  /** Nucleus sampling: keep the most likely tokens whose probabilities add up to top_p. (0, 1]; default 1 (off). */
  top_p?: number;
  /** Keep the k most likely tokens (ties go to the lower id). 0 or -1 = off (default). */
  top_k?: number;
  /** OpenAI, -2..2, default 0. */
  presence_penalty?: number;
  /** OpenAI, -2..2, default 0. */
  frequency_penalty?: number;
  /** Hugging Face, > 0, default 1 (off). */
  repetition_penalty?: number;
  /** Token id (a number, or a string as in JSON bodies) -> bias in -100..100, added to its logit. */
  logit_bias?: Readonly<Record<string, number>>;
  /** Same seed, same logits -> same tokens. Default: a random seed per request. */
  seed?: number;
  /** Return each token's log-probability (under the model's raw distribution; see SampledToken). */
  logprobs?: boolean;
  /** Also return this many most likely alternatives per position, 0..20 (implies logprobs). */
  top_logprobs?: number;
}

export interface GenerationParams extends SamplingParams {
  /** Most tokens to generate. Default: no limit here (the engine caps it at the context window). */
  max_tokens?: number;
  /** Up to any number of strings; generation stops before the first one, which is not returned. */
  stop?: string | readonly string[];
  /** Extra token ids that end generation (as EOS does, but also under ignore_eos). */
  stop_token_ids?: readonly number[];
  /** Keep generating past EOS tokens (benchmarks). Default false. */
  ignore_eos?: boolean;
  /**
   * End generation at the first sentence or line that repeats an earlier one of the same output (which is
   * not returned): a guard against small models looping (repeat.ts). Default false.
   */
  stop_on_repeat?: boolean;
}

/** Every field present and checked; logit_bias parsed into parallel arrays. */
export interface ResolvedSamplingParams {
  temperature: number;
  top_p: number;
  /** 0 = off. */
  top_k: number;
  presence_penalty: number;
  frequency_penalty: number;
  repetition_penalty: number;
  logitBiasIds: Int32Array;
  logitBiasValues: Float32Array;
  seed: number;
  logprobs: boolean;
  top_logprobs: number;
}

/** The stopping half of {@link GenerationParams}, checked and filled. */
export interface ResolvedStopParams {
  max_tokens: number | null;
  stop: readonly string[];
  stop_token_ids: readonly number[];
  ignore_eos: boolean;
  stop_on_repeat: boolean;
}

function bad(msg: string): never {
  throw new SamplingParamsError(msg);
}

function num(value: number | undefined, name: string, fallback: number, ok: (v: number) => boolean, range: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || !ok(value)) bad(`${name} must be ${range}, got ${String(value)}`);
  return value;
}

function int(value: number | undefined, name: string, fallback: number, ok: (v: number) => boolean, range: string): number {
  return num(value, name, fallback, (v) => Number.isSafeInteger(v) && ok(v), `an integer ${range}`);
}

/** Validate and fill defaults. `defaultSeed` is used when `params.seed` is absent (pass a random one). */
export function resolveSamplingParams(params: SamplingParams, defaultSeed: number): ResolvedSamplingParams {
  const topK = int(params.top_k, "top_k", 0, (v) => v >= -1, ">= -1 (0 or -1 = off)");
  const bias = Object.entries(params.logit_bias ?? {});
  const logitBiasIds = new Int32Array(bias.length);
  const logitBiasValues = new Float32Array(bias.length);
  bias.forEach(([key, value], i) => {
    const id = Number(key);
    if (!/^\d+$/.test(key) || !Number.isSafeInteger(id) || id > 0x7fffffff) bad(`logit_bias key ${JSON.stringify(key)} is not a token id`);
    logitBiasIds[i] = id;
    logitBiasValues[i] = num(value, `logit_bias[${key}]`, 0, (v) => v >= -100 && v <= 100, "in -100..100");
  });
  const topLogprobs = int(params.top_logprobs, "top_logprobs", 0, (v) => v >= 0 && v <= 20, "in 0..20");
  return {
    temperature: num(params.temperature, "temperature", 1, (v) => v >= 0, ">= 0"),
    top_p: num(params.top_p, "top_p", 1, (v) => v > 0 && v <= 1, "in (0, 1]"),
    top_k: topK === -1 ? 0 : topK,
    presence_penalty: num(params.presence_penalty, "presence_penalty", 0, (v) => v >= -2 && v <= 2, "in -2..2"),
    frequency_penalty: num(params.frequency_penalty, "frequency_penalty", 0, (v) => v >= -2 && v <= 2, "in -2..2"),
    repetition_penalty: num(params.repetition_penalty, "repetition_penalty", 1, (v) => v > 0, "> 0"),
    logitBiasIds,
    logitBiasValues,
    seed: int(params.seed, "seed", defaultSeed, () => true, ""),
    logprobs: params.logprobs === true || topLogprobs > 0,
    top_logprobs: topLogprobs,
  };
}

/** Validate and fill the stopping fields of {@link GenerationParams} (the sampling ones: resolveSamplingParams). */
export function resolveStopParams(params: GenerationParams): ResolvedStopParams {
  const stop = params.stop === undefined ? [] : typeof params.stop === "string" ? [params.stop] : [...params.stop];
  stop.forEach((s, i) => {
    if (typeof s !== "string" || s.length === 0) bad(`stop[${i}] must be a non-empty string`);
  });
  const stopIds = [...(params.stop_token_ids ?? [])];
  stopIds.forEach((id, i) => {
    if (!Number.isSafeInteger(id) || id < 0) bad(`stop_token_ids[${i}] must be a token id, got ${String(id)}`);
  });
  return {
    max_tokens: params.max_tokens === undefined ? null : int(params.max_tokens, "max_tokens", 0, (v) => v >= 1, ">= 1"),
    stop,
    stop_token_ids: stopIds,
    ignore_eos: params.ignore_eos ?? false,
    stop_on_repeat: params.stop_on_repeat ?? false,
  };
}
