/**
 * The generation loop of one request: reuse the cached prefix, prefill the rest (chunked), then
 * sample -> stream text -> decode until a stop, the token limit, a full context window, or a stop request.
 * Sampling, penalties, stop strings (with hold-back) and streaming detokenization are the sample/ and
 * tokenize/ layers' (Generation); this file owns the model calls, timing and the stop checks.
 *
 * Decode steps sample on the GPU (session.decodeSample, runtime/gpu-sampler.ts: only the token comes back,
 * the same token as the host sampler for the same seed) unless the session's gpuSampling is off or a
 * constraint is given: the grammar's token mask is computed and applied on the host, so those steps read
 * the logits back. The first token (from the prefill's logits) is always sampled on the host.
 *
 * With a constraint (a grammar, grammar/engine.ts GrammarConstraint) every position's logits are masked
 * before sampling, whatever the sampling mode, and the loop ends with "stop" once the grammar is complete
 * (its stop token taken); max_tokens reached before that ends it with "length", as without a grammar.
 */
import type { DecoderSession } from "./session.js";
import { Generation, type GenerationStep } from "../sample/generation.js";
import type { GenerationParams } from "../sample/params.js";
import type { SampledToken, TokenLogprob } from "../sample/sampler.js";
import type { Tokenizer } from "../tokenize/tokenizer.js";

export type StopRequest = "abort" | "interrupt";

export type GenerateFinishReason = "stop" | "length" | "abort";

export interface GeneratedToken {
  token: number;
  logprob?: number;
  topLogprobs?: TokenLogprob[];
}

/** What one step produced: text that became final (may be "") and the token behind it. */
export interface GeneratePiece {
  text: string;
  token: GeneratedToken;
}

/** Restricts which tokens may come next (a grammar matcher). */
export interface LogitsConstraint {
  /** Set the logits of tokens not allowed next to -Infinity (in place). */
  mask(logits: Float32Array): Promise<unknown>;
  /** The sampled token; throws if it was not allowed. */
  accept(token: number): void;
  /** The constraint is complete: nothing more may be generated. */
  readonly terminated: boolean;
}

export interface GenerateInput {
  session: DecoderSession;
  tokenizer: Tokenizer;
  promptIds: readonly number[];
  params: GenerationParams;
  /** Ids that end generation unless ignore_eos (the package's eos_token_id list + the tokenizer's eos). */
  eosTokenIds: readonly number[];
  /** Polled before every model call; a non-null answer ends the loop within one token. */
  stopRequested: () => StopRequest | null;
  onPiece?: (piece: GeneratePiece) => void;
  /** Masks the logits of every step (structured output); their logprobs are then of the masked distribution. */
  constraint?: LogitsConstraint | undefined;
}

export interface GenerateResult {
  tokens: GeneratedToken[];
  text: string;
  finishReason: GenerateFinishReason;
  /** Which stop request ended it (null: it ended by itself). */
  stoppedBy: StopRequest | null;
  promptTokens: number;
  /** Prompt tokens reused from the KV cache. */
  cachedTokens: number;
  prefilledTokens: number;
  prefillMs: number;
  /** Decode calls (each generated token after the first, unless the loop stopped before feeding it). */
  decodeSteps: number;
  decodeMs: number;
  /** From the start of generate() (prefix reuse included) to the first sampled token; null if none. */
  timeToFirstTokenMs: number | null;
  totalMs: number;
}

export async function generate(input: GenerateInput): Promise<GenerateResult> {
  const { session, tokenizer, promptIds, stopRequested } = input;
  const t0 = performance.now();
  const cachedTokens = await session.prepare(promptIds);
  const suffix = promptIds.slice(cachedTokens);
  const prefill = await session.prefill(suffix, () => stopRequested() !== null);
  const result: GenerateResult = {
    tokens: [],
    text: "",
    finishReason: "abort",
    stoppedBy: null,
    promptTokens: promptIds.length,
    cachedTokens,
    prefilledTokens: prefill.tokens,
    prefillMs: prefill.ms,
    decodeSteps: 0,
    decodeMs: 0,
    timeToFirstTokenMs: null,
    totalMs: 0,
  };
  let logits = prefill.logits;
  if (logits === null) {
    result.stoppedBy = stopRequested();
    result.totalMs = performance.now() - t0;
    return result;
  }

  const gen = new Generation(tokenizer, input.params, { promptIds, eosTokenIds: [...input.eosTokenIds] });
  const emit = (text: string, token: GeneratedToken): void => {
    result.text += text;
    input.onPiece?.({ text, token });
  };
  const constraint = input.constraint;
  // Without a grammar (its mask is applied on the host), decode steps sample on the GPU when the session
  // allows it: only the token comes back, and it is the token the host would have sampled.
  const onGpu = constraint === undefined && session.gpuSampling;
  // Record one sampled step and decide whether its token is fed (true) or the generation ends with it.
  // `canFeed`: the context window has room for it.
  const advance = (step: GenerationStep, canFeed: boolean): boolean => {
    constraint?.accept(step.token);
    const token: GeneratedToken = { token: step.token };
    if (step.logprob !== undefined) token.logprob = step.logprob;
    if (step.topLogprobs !== undefined) token.topLogprobs = step.topLogprobs;
    result.tokens.push(token);
    result.timeToFirstTokenMs ??= performance.now() - t0;
    if (step.finishReason !== null) {
      emit(step.text, token);
      result.finishReason = step.finishReason;
      return false;
    }
    if (constraint?.terminated === true) {
      // The grammar took its stop token (a token the sampler did not treat as one, e.g. with ignore_eos).
      emit(step.text + gen.finish("stop"), token);
      result.finishReason = "stop";
      return false;
    }
    const stop = stopRequested();
    if (stop !== null) {
      // Text held back as a possible stop string is released: it was not one.
      emit(step.text + gen.finish("length"), token);
      result.finishReason = "abort";
      result.stoppedBy = stop;
      return false;
    }
    if (!canFeed) {
      // The context window is full: this token cannot be fed.
      emit(step.text + gen.finish("length"), token);
      result.finishReason = gen.finishReason ?? "length";
      return false;
    }
    emit(step.text, token);
    return true;
  };
  const roomFor = (): boolean => session.cachedTokens < session.maxSequenceLength;

  let step = gen.step(await masked(logits));
  if (!advance(step, roomFor())) return done();
  if (onGpu && gen.sampler.argmaxOnly && session.pipelinesGreedy) {
    // Greedy without penalties, bias or logprobs: every token is the argmax, so the steps are pipelined
    // (DecoderSession.decodeGreedy: step k + 1 encoded while the GPU runs step k, the argmax fed to it
    // on the GPU); the same tokens and the same stop checks, per token, as the loop below.
    const t1 = performance.now();
    const got = await session.decodeGreedy(step.token, (t, canFeed) => advance(gen.accept(t), canFeed));
    result.decodeMs += performance.now() - t1;
    result.decodeSteps += got.length;
    return done();
  }
  if (onGpu && gen.sampler.historyFree && session.pipelinesGreedy) {
    // Sampling without penalties: the next position's plan does not need this token, so the steps are
    // pipelined too (DecoderSession.decodeSampled); the same tokens for the same seed as the loop below.
    const t1 = performance.now();
    result.decodeSteps += await session.decodeSampled(step.token, gen.sampler, gen.history, (s, canFeed) => advance(gen.stepSampled(s), canFeed));
    result.decodeMs += performance.now() - t1;
    return done();
  }
  if (!onGpu && session.pipelinesHostFed) {
    // The host picks each token from the logits (a grammar's mask, or sampling on the host): the next step
    // is encoded while the GPU runs this one and submitted with the picked token (DecoderSession.decodePicked);
    // the same tokens and the same stop checks, per token, as the loop below.
    const t1 = performance.now();
    result.decodeSteps += await session.decodePicked(step.token, async (logits, canFeed) => {
      const picked = gen.step(await masked(logits));
      return advance(picked, canFeed) ? picked.token : null;
    });
    result.decodeMs += performance.now() - t1;
    return done();
  }
  for (;;) {
    const t1 = performance.now();
    let sampled: SampledToken | null = null;
    if (onGpu) sampled = await session.decodeSample(step.token, gen.sampler, gen.history);
    else logits = await session.decode(step.token);
    result.decodeMs += performance.now() - t1;
    result.decodeSteps++;
    step = sampled !== null ? gen.stepSampled(sampled) : gen.step(await masked(logits));
    if (!advance(step, roomFor())) return done();
  }

  async function masked(x: Float32Array): Promise<Float32Array> {
    if (constraint !== undefined) await constraint.mask(x);
    return x;
  }

  function done(): GenerateResult {
    result.totalMs = performance.now() - t0;
    return result;
  }
}
