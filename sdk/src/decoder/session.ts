/**
 * One chat session over a {@link DecoderModel}: it mirrors which tokens the KV cache holds, so a new
 * prompt that starts with them (the next turn of a conversation: previous prompt + reply + new message)
 * only prefills its suffix. When the new prompt diverges inside the cached tokens (a re-tokenized reply,
 * an edited message), the cache is rolled back to the longest common prefix with `kv_state_popn`
 * instead of being cleared.
 *
 * Invariant: `model.sequenceLength === cached.length` whenever no call is running. Any failed call
 * (or an unexpected length) marks the mirror stale, and the next prepare() starts from an empty cache.
 */
import type { DecoderModel } from "./model.js";
import { softwareAdapterName } from "../runtime/gpu.js";
import type { TokenHistory } from "../sample/history.js";
import type { SampledToken, Sampler } from "../sample/sampler.js";

export interface PrefillOutcome {
  /** Logits after the last prompt token, or null when `shouldStop` ended the prefill early. */
  logits: Float32Array | null;
  /** Tokens prefilled (the suffix, or part of it when stopped). */
  tokens: number;
  ms: number;
}

export class DecoderSession {
  /** Tokens whose keys/values are in the cache, in order. */
  #cached: number[] = [];
  #stale = false;
  /**
   * Decode steps sample on the GPU (decodeSample; same tokens as on the host, see runtime/gpu-sampler.ts).
   * false: every step reads the logits back and samples them on the host (A/B benchmarks).
   */
  gpuSampling = true;
  /**
   * Steps whose token the host picks from the logits (a grammar's mask, sampling on the host)
   * are encoded ahead where the model can (decodePicked). Default: on a hardware adapter, off on a software
   * one. On an H100 (Qwen2.5-0.5B shape, docs/benchmarks.md "seventh run") it was faster than the plain
   * per-step loop in 4 of 6 same-call pairs, 0.85-1.82x its tok/s (geometric mean 1.16; f32 1.25-1.82x,
   * f16 0.85-1.09x, with the hosts' own speed swinging 2-3x between rows); on lavapipe, where the "GPU" is
   * the same two CPU cores, it gains nothing (tiny test model: 28-33 vs 30-31 tok/s).
   */
  hostFedAhead: boolean;

  constructor(
    readonly model: DecoderModel,
    /** Reuse a cached prefix across requests (default true). */
    readonly reuse = true,
  ) {
    this.hostFedAhead = model.adapter !== null && softwareAdapterName(model.adapter) === null;
  }

  /** Tokens the KV cache holds. */
  get cachedTokens(): number {
    return this.#cached.length;
  }

  get maxSequenceLength(): number {
    return this.model.maxSequenceLength;
  }

  /**
   * Make the cache hold the longest prefix of `ids` it can reuse, leaving at least one token to prefill
   * (its logits start the generation). Returns how many tokens of `ids` are already cached.
   */
  async prepare(ids: readonly number[]): Promise<number> {
    if (ids.length === 0) throw new RangeError("empty prompt");
    if (this.#stale || !this.reuse || this.model.sequenceLength !== this.#cached.length) {
      await this.reset();
      return 0;
    }
    const cached = this.#cached;
    let common = 0;
    const limit = Math.min(cached.length, ids.length - 1);
    while (common < limit && cached[common] === ids[common]) common++;
    const pop = cached.length - common;
    if (pop === 0) return common;
    if (common === 0) {
      await this.reset();
      return 0;
    }
    try {
      await this.model.truncate(common);
    } catch {
      await this.reset(); // rollback unavailable (e.g. an old runtime): start afresh
      return 0;
    }
    cached.length = common;
    return common;
  }

  /**
   * Append `ids` in prefill chunks of the model's size, checking `shouldStop` before each chunk.
   * Each chunk is one model call, so a stop request waits at most one chunk.
   */
  async prefill(ids: readonly number[], shouldStop: () => boolean = () => false): Promise<PrefillOutcome> {
    const chunk = this.model.prefillChunkSize;
    const t0 = performance.now();
    let logits: Float32Array | null = null;
    let done = 0;
    while (done < ids.length) {
      if (shouldStop()) return { logits: null, tokens: done, ms: performance.now() - t0 };
      const part = ids.slice(done, done + chunk);
      logits = await this.#guard(this.model.prefill(part));
      this.#cached.push(...part);
      done += part.length;
    }
    return { logits, tokens: done, ms: performance.now() - t0 };
  }

  /** Append one token; the logits for the next. */
  async decode(token: number): Promise<Float32Array> {
    const logits = await this.#guard(this.model.decode(token));
    this.#cached.push(token);
    return logits;
  }

  /** Append one token; the next token as `sampler` picks it (on the GPU where it can be). */
  async decodeSample(token: number, sampler: Sampler, history: TokenHistory): Promise<SampledToken> {
    const sampled = await this.#guard(this.model.decodeSample(token, sampler, history));
    this.#cached.push(token);
    return sampled;
  }

  /** Whether decodeGreedy pipelines its steps here (see DecoderModel.decodeGreedy). */
  get pipelinesGreedy(): boolean {
    return this.model.pipelinesGreedy;
  }

  /**
   * Greedy continuation from `token` (appended first): each new token goes to `onToken` with whether it can
   * still be fed (false when the context window is full); it returns false to end after that token. Returns
   * the new tokens; the last one is not in the cache.
   */
  async decodeGreedy(token: number, onToken: (token: number, canFeed: boolean) => boolean): Promise<number[]> {
    const limit = this.model.maxSequenceLength; // the window ends it first
    let got: number[];
    try {
      got = await this.model.decodeGreedy(token, limit, { onToken });
    } catch (err) {
      // fed so far is not known here: the next prepare() starts afresh (a callback error left the model
      // consistent, but the mirror cannot tell how far it got)
      this.#stale = true;
      throw err;
    }
    this.#cached.push(token, ...got.slice(0, -1));
    return got;
  }

  /**
   * Sampled continuation from `token` (appended first), pipelined where the model can (see
   * DecoderModel.decodeSampled; the sampler must have no penalties): each new token goes to `onToken`
   * with whether it can still be fed; it returns false to end after that token.
   */
  async decodeSampled(token: number, sampler: Sampler, history: TokenHistory, onToken: (sampled: SampledToken, canFeed: boolean) => boolean): Promise<number> {
    const tokens: number[] = [token];
    let fed: number;
    try {
      fed = await this.model.decodeSampled(token, sampler, history, (sampled, canFeed) => {
        tokens.push(sampled.token);
        return onToken(sampled, canFeed);
      });
    } catch (err) {
      this.#stale = true; // how far it got is not known here: the next prepare() starts afresh
      throw err;
    }
    this.#cached.push(...tokens.slice(0, fed));
    return fed;
  }

  /** Whether decodePicked encodes its steps ahead here (see DecoderModel.decodePicked). */
  get pipelinesHostFed(): boolean {
    return this.hostFedAhead && this.model.pipelinesHostFed;
  }

  /**
   * Continuation from `token` (appended first) where `pick` chooses each next token from the logits, or
   * null to end (DecoderModel.decodePicked: on WebGPU the next step is encoded while the GPU runs this one).
   * Returns how many tokens were fed.
   */
  async decodePicked(token: number, pick: (logits: Float32Array, canFeed: boolean) => Promise<number | null>): Promise<number> {
    const tokens: number[] = [token];
    let fed: number;
    try {
      fed = await this.model.decodePicked(token, async (logits, canFeed) => {
        const next = await pick(logits, canFeed);
        if (next !== null) tokens.push(next);
        return next;
      });
    } catch (err) {
      this.#stale = true; // how far it got is not known here: the next prepare() starts afresh
      throw err;
    }
    this.#cached.push(...tokens.slice(0, fed));
    return fed;
  }

  /** Clear the cache (the model's stats are kept). */
  async reset(): Promise<void> {
    await this.model.reset({ keepStats: true });
    this.#cached = [];
    this.#stale = false;
  }

  /** The next prepare() clears the cache (after an error the mirror cannot be trusted). */
  invalidate(): void {
    this.#stale = true;
  }

  async #guard<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      this.#stale = true;
      throw err;
    }
  }
}
