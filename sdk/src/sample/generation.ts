/**
 * One request's decoding loop state, between the model's logits and the text a caller sees: sample a
 * token, record it for the penalties, turn it into complete text (StreamDecoder), hold back possible stop
 * strings (StopStringMatcher), optionally end a loop (RepeatGuard, `stop_on_repeat`), and decide when to
 * finish (EOS, stop token, stop string, repeated sentence, max_tokens).
 * The engine owns the model calls; it feeds each position's logits to step() until finishReason is set.
 */
import type { StreamDecoder } from "../tokenize/stream.js";
import type { Tokenizer } from "../tokenize/tokenizer.js";
import { TokenHistory } from "./history.js";
import { resolveStopParams, type GenerationParams, type ResolvedStopParams } from "./params.js";
import { Sampler, type SampledToken, type TokenLogprob } from "./sampler.js";
import { RepeatGuard } from "./repeat.js";
import { StopStringMatcher } from "./stop.js";
import { GenerationFinishedError } from "../errors/text.js";
export { GenerationFinishedError } from "../errors/text.js";

export type FinishReason = "stop" | "length";

export interface GenerationStep {
  token: number;
  logprob?: number;
  topLogprobs?: TokenLogprob[];
  /** New text to show (may be "" while a character or a possible stop string is incomplete). */
  text: string;
  /** Set on the last step: "stop" (EOS, stop token or stop string) or "length" (max_tokens). */
  finishReason: FinishReason | null;
}

export interface GenerationOptions {
  /** The prompt's ids: the repetition penalty covers them, and their tail gives the decoder context. */
  promptIds?: ArrayLike<number>;
  /**
   * Ids that end generation unless `ignore_eos` (from mlc-chat-config's eos_token_id list or the
   * tokenizer's eos). Default: the tokenizer's eos, if it has one.
   */
  eosTokenIds?: readonly number[];
}

// Prompt tokens handed to the stream decoder as context: enough for a leading space or a split character.
const DECODE_CONTEXT = 4;

export class Generation {
  readonly sampler: Sampler;
  readonly history: TokenHistory;
  readonly stopParams: ResolvedStopParams;
  readonly #eos: ReadonlySet<number>;
  readonly #stopIds: ReadonlySet<number>;
  readonly #decoder: StreamDecoder;
  readonly #stops: StopStringMatcher;
  readonly #repeat: RepeatGuard | null;
  #finish: FinishReason | null = null;
  #text = "";

  constructor(tokenizer: Tokenizer, params: GenerationParams = {}, options: GenerationOptions = {}) {
    this.stopParams = resolveStopParams(params);
    this.sampler = new Sampler(params);
    const prompt = options.promptIds ?? [];
    this.history = new TokenHistory(prompt);
    const eos = options.eosTokenIds ?? (tokenizer.special.eos === null ? [] : [tokenizer.special.eos.id]);
    this.#eos = new Set(eos);
    this.#stopIds = new Set(this.stopParams.stop_token_ids);
    const context = Array.from(prompt).slice(-DECODE_CONTEXT);
    this.#decoder = tokenizer.streamDecoder({ skipSpecialTokens: true, context });
    this.#stops = new StopStringMatcher(this.stopParams.stop);
    this.#repeat = this.stopParams.stop_on_repeat ? new RepeatGuard() : null;
  }

  /** Generation ended because a sentence repeated (`stop_on_repeat`). */
  get stoppedOnRepeat(): boolean {
    return this.#repeat?.stopped ?? false;
  }

  /** Stop strings first (they cut the text), then the repeat guard; `end`: nothing more comes. */
  #filter(text: string, end: boolean): { text: string; stopped: boolean } {
    const pushed = this.#stops.push(text);
    let out = pushed.text + (end || pushed.stopped ? this.#stops.flush() : "");
    let stopped = pushed.stopped;
    if (this.#repeat !== null) {
      const r = this.#repeat.push(out);
      out = r.text + (end || stopped || r.stopped ? this.#repeat.flush() : "");
      stopped ||= r.stopped;
    }
    return { text: out, stopped };
  }

  get finishReason(): FinishReason | null {
    return this.#finish;
  }

  /** All text emitted so far. */
  get text(): string {
    return this.#text;
  }

  /** Sample from one position's logits and advance. Throws {@link GenerationFinishedError} once finished. */
  step(logits: Float32Array): GenerationStep {
    if (this.#finish !== null) throw new GenerationFinishedError(`generation already finished (${this.#finish})`);
    return this.stepSampled(this.sampler.sample(logits, this.history));
  }

  /**
   * Advance with a token this generation's sampler picked elsewhere (on the GPU: sampler.gpuPlan with
   * this.history), keeping its logprobs.
   */
  stepSampled(sampled: SampledToken): GenerationStep {
    const step = this.accept(sampled.token);
    if (sampled.logprob !== undefined) step.logprob = sampled.logprob;
    if (sampled.topLogprobs !== undefined) step.topLogprobs = sampled.topLogprobs;
    return step;
  }

  /** Advance with a token chosen elsewhere (e.g. forced or speculative); step() calls this. */
  accept(token: number): GenerationStep {
    if (this.#finish !== null) throw new GenerationFinishedError(`generation already finished (${this.#finish})`);
    this.history.push(token);
    const { ignore_eos, max_tokens } = this.stopParams;
    let text: string;
    if (this.#stopIds.has(token) || (!ignore_eos && this.#eos.has(token))) {
      // The stop token itself is not text; what was held back is.
      this.#finish = "stop";
      text = this.#filter(this.#decoder.flush(), true).text;
    } else {
      const pushed = this.#filter(this.#decoder.push(token), false);
      text = pushed.text;
      if (pushed.stopped) {
        this.#finish = "stop";
      } else if (max_tokens !== null && this.history.outputLength >= max_tokens) {
        text += this.#end("length");
      }
    }
    this.#text += text;
    return { token, text, finishReason: this.#finish };
  }

  /**
   * End early for a reason the engine knows (the context window is full: "length"); returns the text that
   * was still held back. A no-op returning "" once finished.
   */
  finish(reason: FinishReason = "length"): string {
    if (this.#finish !== null) return "";
    const text = this.#end(reason);
    this.#text += text;
    return text;
  }

  #end(reason: FinishReason): string {
    const tail = this.#filter(this.#decoder.flush(), true);
    // A stop string (or a repeat) completed by the flushed text still counts as a stop.
    this.#finish = tail.stopped ? "stop" : reason;
    return tail.text;
  }
}
