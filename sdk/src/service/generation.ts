/**
 * What the chat and text-completion endpoints share once a request is validated: its sampling params
 * (the request's, else the package's defaults), the one context-window check, the generate call wired to
 * the request's stop flag, and the usage block. The token loop itself is decoder/generate.ts.
 */
import { ContextWindowExceededError } from "../decoder/kv-cache.js";
import { generate, type GeneratePiece, type GenerateResult, type LogitsConstraint, type StopRequest } from "../decoder/generate.js";
import { InvalidRequestError } from "../errors/index.js";
import type { GenerationParams } from "../sample/params.js";
import type { LoadedChatModel } from "./chat-model.js";
import type { ChatCompletionRequest, CompletionRequest, CompletionUsage } from "./openai.js";

/** A stop request's record: tokens generated when it arrived, and when generation ended. */
export interface StopInfo {
  by: StopRequest;
  atToken: number;
  endedAtToken: number;
}

/** The running request's stop flag (set by interrupt() or its AbortSignal) and progress. */
export interface Running {
  stop: StopRequest | null;
  generated: number;
  stopInfo: StopInfo | null;
}

/** What a chat or completion request needs after validation: ids, params, response flavour. */
export interface Prepared {
  promptIds: number[];
  params: GenerationParams;
  truncated: number;
}

export function rate(tokens: number, ms: number): number {
  return ms > 0 ? (tokens * 1000) / ms : 0;
}

/** Run the decoder's generate loop for a prepared request; every piece counts toward `run.generated`. */
export function runGeneration(
  loaded: LoadedChatModel,
  prepared: Prepared,
  run: Running,
  onPiece: (piece: GeneratePiece) => void,
  constraint?: LogitsConstraint,
): Promise<GenerateResult> {
  return generate({
    constraint,
    session: loaded.session,
    tokenizer: loaded.tokenizer,
    promptIds: prepared.promptIds,
    params: prepared.params,
    eosTokenIds: loaded.eosTokenIds,
    stopRequested: () => run.stop,
    onPiece: (piece) => {
      run.generated++;
      onPiece(piece);
    },
  });
}

export function usageOf(r: GenerateResult): CompletionUsage {
  return {
    prompt_tokens: r.promptTokens,
    completion_tokens: r.tokens.length,
    total_tokens: r.promptTokens + r.tokens.length,
    prompt_tokens_details: { cached_tokens: r.cachedTokens },
    prefill_tokens_per_s: rate(r.prefilledTokens, r.prefillMs),
    decode_tokens_per_s: rate(r.decodeSteps, r.decodeMs),
    time_to_first_token_ms: r.timeToFirstTokenMs ?? 0,
  };
}

/** Sampling/stopping params: the request's, else the package's defaults (mlc-chat-config.json). */
export function requestParams(
  loaded: LoadedChatModel,
  req: ChatCompletionRequest | CompletionRequest,
  maxTokens: number | null,
  logprobs: number | null,
): GenerationParams {
  const d = loaded.defaults;
  const p: GenerationParams = {
    temperature: req.temperature ?? d.temperature ?? 1,
    top_p: req.top_p ?? d.top_p ?? 1,
    presence_penalty: req.presence_penalty ?? d.presence_penalty ?? 0,
    frequency_penalty: req.frequency_penalty ?? d.frequency_penalty ?? 0,
    repetition_penalty: req.repetition_penalty ?? d.repetition_penalty ?? 1,
  };
  if (req.top_k != null) p.top_k = req.top_k;
  if (req.seed != null) p.seed = req.seed;
  if (req.stop != null) p.stop = req.stop;
  if (req.stop_token_ids != null) p.stop_token_ids = req.stop_token_ids;
  if (req.ignore_eos != null) p.ignore_eos = req.ignore_eos;
  if (req.stop_on_repeat != null) p.stop_on_repeat = req.stop_on_repeat;
  if (maxTokens !== null) p.max_tokens = maxTokens;
  if (logprobs !== null) {
    p.logprobs = true;
    p.top_logprobs = logprobs;
  }
  if (req.logit_bias != null) {
    for (const key of Object.keys(req.logit_bias)) {
      if (Number(key) >= loaded.info.vocabSize) {
        throw new InvalidRequestError(`logit_bias: token id ${key} is outside the vocabulary [0, ${loaded.info.vocabSize})`, `logit_bias.${key}`);
      }
    }
    p.logit_bias = req.logit_bias;
  }
  return p;
}

/** The one context-window check of a prompt (after any truncation). */
export function checkWindow(promptTokens: number, window: number, afterTruncation: boolean): void {
  if (promptTokens <= window) return;
  const err = new ContextWindowExceededError(0, promptTokens, window);
  err.message =
    `the prompt is ${promptTokens} tokens, more than the context window of ${window} tokens` +
    (afterTruncation ? " even after dropping every older message" : "") +
    `; shorten it${afterTruncation ? "" : ', or pass context_overflow: "truncate" to drop the oldest messages'}`;
  throw err;
}

/** What an endpoint hands back to EngineCore's request wrapper: its response, and for the stats the run behind it. */
export interface EndpointResult<R> {
  response: R;
  result: GenerateResult;
  prepared: Prepared;
}
