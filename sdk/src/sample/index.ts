/** CPU-side sampling over host logits, token history, stop strings and the per-request decoding loop. */
export {
  resolveSamplingParams,
  resolveStopParams,
  SamplingParamsError,
  type GenerationParams,
  type ResolvedSamplingParams,
  type ResolvedStopParams,
  type SamplingParams,
} from "./params.js";
export { randomSeed, Xoshiro128 } from "./prng.js";
export { TokenHistory } from "./history.js";
export { InvalidLogitsError, processLogits } from "./logits.js";
export { Sampler, type SampledToken, type TokenLogprob } from "./sampler.js";
export { StopStringMatcher, type StopPush } from "./stop.js";
export { RepeatGuard, type RepeatGuardOptions, type RepeatPush } from "./repeat.js";
export {
  Generation,
  GenerationFinishedError,
  type FinishReason,
  type GenerationOptions,
  type GenerationStep,
} from "./generation.js";
