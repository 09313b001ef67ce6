/**
 * Token selection on host logits (a Float32Array of one position's logits): logit processors
 * (logits.ts), then temperature, top-k, top-p, then a draw from a seeded PRNG. The order is HF's and
 * vLLM's (temperature -> top_k -> top_p, each renormalising what the previous one kept).
 *
 * Cost per token is a few linear passes over the vocabulary (max, exp) plus sorting only the tokens that
 * can be in the nucleus, never the whole vocabulary unless the distribution is nearly flat.
 */
import type { TokenHistory } from "./history.js";
import { InvalidLogitsError, isIdentity, processLogits } from "./logits.js";
import { resolveSamplingParams, type ResolvedSamplingParams, type SamplingParams } from "./params.js";
import { randomSeed, Xoshiro128 } from "./prng.js";
import { scanMax as argmaxScan } from "./argmax.js";
import { planOf, type GpuSamplingPlan } from "./gpu-plan.js";

export interface TokenLogprob {
  token: number;
  logprob: number;
}

export interface SampledToken {
  token: number;
  /**
   * With `logprobs`: log-probability of `token` under the model's raw distribution, i.e. log-softmax of
   * the logits as given, before bias, penalties, temperature and truncation (vLLM's default), so it
   * measures the model, not the sampling settings.
   */
  logprob?: number;
  /** With `top_logprobs`: the most likely tokens of that same distribution, best first. */
  topLogprobs?: TokenLogprob[];
}

/** What the GPU sampler reports: its token, or that the host must decide (NaN, ties at a rounding boundary...). */
export interface GpuSamplingOutcome {
  /** drew: used the plan's uniform number; picked: chose without it (greedy, an infinite logit); host: no answer. */
  status: "drew" | "picked" | "host";
  token: number;
  /** float32 log-probability of `token` (plan.logprob). */
  logprob: number;
  /**
   * Why the host must decide: non-finite logits (NaN, all -Infinity, an infinite raw logit with logprobs),
   * ties (more tokens tie at the top-k boundary than the GPU sorts), nucleus (top-p's nucleus reaches
   * past the GPU_CANDIDATES largest tokens and the draw may land past them too), top-p-margin / draw-margin (a sum within the margin of its boundary), rounding.
   */
  reason?: "non-finite" | "ties" | "nucleus" | "top-p-margin" | "draw-margin" | "rounding";
  /** plan.topLogprobs alternatives (float32 logprobs), best first. */
  topLogprobs?: TokenLogprob[];
}

export class Sampler {
  readonly params: ResolvedSamplingParams;
  readonly #rng: Xoshiro128;
  /** A draw the GPU did not use: the next draw returns it, so both paths consume the same stream. */
  #pendingU: number | undefined;
  /** The next uniform number, drawn early for a plan made ahead (gpuPlanAhead) and not taken yet. */
  #aheadU: number | undefined;
  /** The last plan made ahead used #aheadU. */
  #aheadUsed = false;
  // Scratch buffers, grown to the vocabulary once and reused for every token.
  #work = new Float32Array(0);
  #probs = new Float64Array(0);
  #ids = new Int32Array(0);

  constructor(params: SamplingParams = {}) {
    this.params = resolveSamplingParams(params, randomSeed());
    this.#rng = new Xoshiro128(this.params.seed);
  }

  /**
   * Pick the next token. `history` feeds the penalties; without it they do nothing. `logits` is not
   * modified. Throws {@link InvalidLogitsError} on NaN logits or when every logit is -Infinity.
   */
  sample(logits: Float32Array, history?: TokenHistory): SampledToken {
    if (logits.length === 0) throw new InvalidLogitsError("empty logits");
    const p = this.params;
    let x = logits;
    if (!isIdentity(p, history)) {
      if (this.#work.length !== logits.length) this.#work = new Float32Array(logits.length);
      this.#work.set(logits);
      processLogits(this.#work, p, history);
      x = this.#work;
    }
    const token = p.temperature === 0 || p.top_k === 1 ? greedy(x) : this.#draw(x);
    if (!p.logprobs) return { token };
    const lse = logSumExp(logits);
    const out: SampledToken = { token, logprob: (logits[token] as number) - lse };
    if (p.top_logprobs > 0) {
      const n = this.#topK(logits, Math.min(p.top_logprobs, logits.length));
      out.topLogprobs = Array.from(this.#ids.subarray(0, n), (id) => ({ token: id, logprob: (logits[id] as number) - lse }));
    }
    return out;
  }

  /**
   * Every position's token is the argmax of the raw logits, whatever came before (greedy, no logit_bias,
   * no penalties) and nothing else is asked for (no logprobs): the engine may then pipeline its decode
   * steps, feeding each argmax to the next step on the GPU.
   */
  get argmaxOnly(): boolean {
    const p = this.params;
    const penalties = p.repetition_penalty !== 1 || p.presence_penalty !== 0 || p.frequency_penalty !== 0;
    return (p.temperature === 0 || p.top_k === 1) && p.logitBiasIds.length === 0 && !penalties && !p.logprobs;
  }

  /**
   * The GPU version of sample(): the plan for runtime/gpu-sampler.ts (null: sample this position on the
   * host). Draws the uniform number the host would draw; hand the GPU's answer to gpuResult.
   */
  gpuPlan(vocab: number, history?: TokenHistory): GpuSamplingPlan | null {
    return planOf(this.params, history, vocab, () => this.#uniform());
  }

  /**
   * The token of a GPU plan's outcome, or null when the host must decide: then call sample() on the same
   * position's logits, which uses the same uniform number (it is given back here unless the GPU drew).
   */
  gpuResult(plan: GpuSamplingPlan, outcome: GpuSamplingOutcome): SampledToken | null {
    if (outcome.status !== "drew" && plan.mode !== "greedy") this.#pendingU = plan.u;
    if (outcome.status === "host") return null;
    if (!this.params.logprobs) return { token: outcome.token };
    const out: SampledToken = { token: outcome.token, logprob: outcome.logprob };
    if (this.params.top_logprobs > 0) out.topLogprobs = outcome.topLogprobs ?? [];
    return out;
  }

  /**
   * No penalties: a position's plan does not depend on the tokens before it, so the engine may plan
   * position k + 1 (gpuPlanAhead) before position k's token is known, and pipeline its decode steps.
   */
  get historyFree(): boolean {
    const p = this.params;
    return p.repetition_penalty === 1 && p.presence_penalty === 0 && p.frequency_penalty === 0;
  }

  /**
   * gpuPlan for the position after the one whose gpuResult is still to come, made as if that one takes its
   * own uniform number (a draw). Its number is only reserved: after that gpuResult, commitAhead() when
   * aheadHolds, else dropAhead() and plan the position again with gpuPlan. The numbers drawn are then the
   * step-by-step loop's, in its order. Only for a historyFree sampler (its plan ignores the tokens before).
   */
  gpuPlanAhead(vocab: number): GpuSamplingPlan | null {
    let used = false;
    const plan = planOf(this.params, undefined, vocab, () => {
      used = true;
      this.#aheadU ??= this.#rng.nextFloat();
      return this.#aheadU;
    });
    this.#aheadUsed = used;
    return plan;
  }

  /** The plan made ahead is the one the step-by-step loop would make: the position before it took its number. */
  get aheadHolds(): boolean {
    return this.#pendingU === undefined;
  }

  /** The plan made ahead was used: its uniform number is taken. */
  commitAhead(): void {
    if (this.#aheadUsed) this.#aheadU = undefined;
    this.#aheadUsed = false;
  }

  /** The plan made ahead was not used: its uniform number stays next in line. */
  dropAhead(): void {
    this.#aheadUsed = false;
  }

  #uniform(): number {
    const u = this.#pendingU;
    this.#pendingU = undefined;
    if (u !== undefined) return u;
    const ahead = this.#aheadU;
    this.#aheadU = undefined;
    return ahead ?? this.#rng.nextFloat();
  }

  #draw(x: Float32Array): number {
    const p = this.params;
    const V = x.length;
    const max = scanMax(x);
    if (max.value === Infinity) return max.index; // exp would give NaN; an infinite logit wins outright
    if (this.#probs.length < V) {
      this.#probs = new Float64Array(V);
      this.#ids = new Int32Array(V);
    }
    const probs = this.#probs;
    const ids = this.#ids;
    const invT = 1 / p.temperature;
    // Unnormalised probabilities exp((x - max) / T) of the candidates; the largest is exactly 1.
    let n: number;
    let sorted: boolean;
    if (p.top_k > 0 && p.top_k < V) {
      n = this.#topK(x, p.top_k); // fills ids, best first
      for (let j = 0; j < n; j++) probs[j] = Math.exp(((x[ids[j] as number] as number) - max.value) * invT);
      sorted = true;
    } else {
      n = V;
      for (let i = 0; i < V; i++) {
        ids[i] = i;
        // exp is most of the cost; below e^-40 of the top token (all 150k such tokens together < 1e-12 of
        // the mass) a token could never be drawn anyway, and a real LM's tail is mostly down there.
        const d = ((x[i] as number) - max.value) * invT;
        probs[i] = d < -40 ? 0 : Math.exp(d);
      }
      sorted = false;
    }
    let total = 0;
    for (let j = 0; j < n; j++) total += probs[j] as number;

    if (p.top_p < 1) {
      if (!sorted) n = this.#nucleusSuperset(n, total);
      // Keep tokens while the mass before them is below top_p (HF's TopPLogitsWarper, at least one token).
      const cutoff = p.top_p * total;
      let cum = 0;
      for (let j = 0; j < n; j++) {
        cum += probs[j] as number;
        if (cum >= cutoff) {
          n = j + 1;
          break;
        }
      }
      total = cum;
    }

    const u = this.#uniform() * total;
    let cum = 0;
    for (let j = 0; j < n; j++) {
      cum += probs[j] as number;
      if (u < cum) return ids[j] as number;
    }
    // Rounding left u at the very top: the last candidate with any mass.
    for (let j = n - 1; j > 0; j--) if ((probs[j] as number) > 0) return ids[j] as number;
    return ids[0] as number;
  }

  /**
   * Compact (ids, probs)[0, n) to a set that surely holds the nucleus, sorted by probability (desc, then id).
   * The nucleus is a prefix of the sorted order, so any set {p >= t} whose mass reaches top_p contains it.
   * t = 1e-4 (of the top token's probability) keeps a few hundred tokens for a real LM; if that set is too
   * light, t = total * (1 - top_p) / n is always enough (the tokens below it weigh < total * (1 - top_p)).
   */
  #nucleusSuperset(n: number, total: number): number {
    const probs = this.#probs;
    const ids = this.#ids;
    let t = 1e-4;
    let mass = 0;
    for (let j = 0; j < n; j++) if ((probs[j] as number) >= t) mass += probs[j] as number;
    if (mass < this.params.top_p * total) t = (total * (1 - this.params.top_p)) / n;
    let m = 0;
    for (let j = 0; j < n; j++) {
      if ((probs[j] as number) >= t) {
        ids[m] = ids[j] as number;
        probs[m] = probs[j] as number;
        m++;
      }
    }
    const order = Array.from({ length: m }, (_, j) => j);
    order.sort((a, b) => (probs[b] as number) - (probs[a] as number) || (ids[a] as number) - (ids[b] as number));
    const sortedIds = order.map((j) => ids[j] as number);
    const sortedProbs = order.map((j) => probs[j] as number);
    ids.set(sortedIds);
    probs.set(sortedProbs);
    return m;
  }

  /**
   * The k largest of `x` into ids[0, k), best first; ties go to the lower id, so top_k = 1 is greedy.
   * A size-k min-heap over one pass: O(V) when most values lose to the heap's root, O(V log k) at worst.
   */
  #topK(x: Float32Array, k: number): number {
    if (this.#ids.length < x.length) {
      this.#probs = new Float64Array(x.length);
      this.#ids = new Int32Array(x.length);
    }
    const heapV = new Float64Array(k);
    const heapI = new Int32Array(k);
    // worse(a, b): a ranks below b (lower value, or same value and higher id).
    const worse = (va: number, ia: number, vb: number, ib: number): boolean => va < vb || (va === vb && ia > ib);
    const siftDown = (size: number, v: number, id: number): void => {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= size) break;
        const r = l + 1;
        let c = l;
        if (r < size && worse(heapV[r] as number, heapI[r] as number, heapV[l] as number, heapI[l] as number)) c = r;
        if (!worse(heapV[c] as number, heapI[c] as number, v, id)) break;
        heapV[i] = heapV[c] as number;
        heapI[i] = heapI[c] as number;
        i = c;
      }
      heapV[i] = v;
      heapI[i] = id;
    };
    let size = 0;
    for (let id = 0; id < x.length; id++) {
      const v = x[id] as number;
      if (size < k) {
        // sift up
        let i = size++;
        while (i > 0) {
          const parent = (i - 1) >> 1;
          if (!worse(v, id, heapV[parent] as number, heapI[parent] as number)) break;
          heapV[i] = heapV[parent] as number;
          heapI[i] = heapI[parent] as number;
          i = parent;
        }
        heapV[i] = v;
        heapI[i] = id;
      } else if (worse(heapV[0] as number, heapI[0] as number, v, id)) {
        siftDown(size, v, id);
      }
    }
    // Pop worst-first into the back of ids.
    for (let end = size - 1; end >= 0; end--) {
      this.#ids[end] = heapI[0] as number;
      const lastV = heapV[end] as number;
      const lastI = heapI[end] as number;
      siftDown(end, lastV, lastI);
    }
    return size;
  }
}

/** First index of the largest value (numpy.argmax); NaN (NonFiniteLogitsError, an InvalidLogitsError) and all -Infinity throw. */
function greedy(x: Float32Array): number {
  return scanMax(x).index;
}

function scanMax(x: Float32Array): { index: number; value: number } {
  const max = argmaxScan(x);
  if (max.value === -Infinity) throw new InvalidLogitsError("every logit is -Infinity: no token can be sampled");
  return max;
}

function logSumExp(x: Float32Array): number {
  const { value: max } = scanMax(x);
  if (max === Infinity) return Infinity;
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.exp((x[i] as number) - max);
  return max + Math.log(sum);
}
