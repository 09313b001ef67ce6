/**
 * Token sampling on the GPU for every mode of sample/sampler.ts (greedy, temperature, top-k, top-p,
 * penalties, logit_bias, logprobs), so a decode step reads back 16 bytes (+ 8 per top_logprobs entry)
 * instead of the vocabulary's logits.
 *
 * It picks the token the host Sampler would pick from the same logits and the same uniform number (the
 * host's seeded RNG draws it; sample/gpu-plan.ts): the same edits as float32 operations (bit-identical
 * processed logits), the same selection order (largest logit first, ties to the lower id), the same
 * cumulative sums in the same order. What it cannot match bit for bit is the arithmetic of the
 * probabilities: WGSL has no float64 and its exp() is not correctly rounded (3 + 2|x| ulp allowed), so a
 * sum differs from the host's float64 sum. The GPU's sums are compensated (Kahan), and alongside each
 * total it sums a bound on its terms' errors (probErr); every decision that compares such a sum (the top-p
 * cut, the draw) must clear that bound plus 8 ulp of the total plus `margin` x total (default 1e-7):
 * when the sum lies closer to the boundary, the kernel answers "host" and the caller samples the
 * read-back logits on the host with the same uniform number. So the token is the host's token whenever the
 * adapter's exp() meets WGSL's accuracy; the price is a readback on the few steps whose draw lands near a
 * boundary (docs/benchmarks.md).
 * One workgroup of 256 invocations, one dispatch: copy + edits, max (NaN / infinity checks), then
 *  - full (no truncation): per-invocation sums of contiguous id ranges, a scan, and one invocation walks
 *    the range the draw falls in (the host's id order);
 *  - sorted (top-k and/or top-p): a 4-pass radix select of the `select` largest logits, a gather into
 *    workgroup memory, a bitonic sort (logit desc, id asc), then one invocation runs the host's top-p cut
 *    and draw over at most GPU_CANDIDATES candidates. A nucleus larger than that is decided here when
 *    the draw lands inside the candidates whatever the nucleus's exact mass (kept in [cutoff, cutoff + the
 *    last candidate's probability]); otherwise the host decides.
 * Also, when asked, the log-probability of the chosen token under the raw logits and the top_logprobs
 * (one argmax-like pass per alternative: at most 20).
 */
import { GPU_CANDIDATES, type GpuSamplingPlan } from "../sample/gpu-plan.js";
import type { GpuSamplingOutcome } from "../sample/sampler.js";

const WG = 256;
const MODES = { greedy: 0, full: 1, sorted: 2 } as const;
const STATUS = ["drew", "picked", "host"] as const;
const MAX_TOP_LOGPROBS = 20;
const RESULT_WORDS = 4 + 2 * MAX_TOP_LOGPROBS;
/** Readback buffers in GpuSampler's ring: a pipelined decode has two launches waiting, a third is spare. */
const READBACKS = 3;
const REASONS = [undefined, "non-finite", "ties", "nucleus", "top-p-margin", "draw-margin", "rounding"] as const;

const SHADER = /* wgsl */ `
struct Params {
  offset: u32, n: u32, nOps: u32, mode: u32,
  select: u32, topK: u32, logprob: u32, topN: u32,
  invT: f32, topP: f32, u: f32, margin: f32,
}
struct Op { id: u32, kind: u32, a: f32, b: f32 }
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> work: array<f32>;
@group(0) @binding(2) var<storage, read> ops: array<Op>;
@group(0) @binding(3) var<uniform> P: Params;
// status, token, logprob, reason, then topN (id, logprob) pairs.
@group(0) @binding(4) var<storage, read_write> result: array<u32, ${RESULT_WORDS}>;

const WG = ${WG}u;
const CAP = ${GPU_CANDIDATES}u;
const NONE = 0xffffffffu;
const EPS = 5.9604645e-8; // 2^-24: one float32 ulp, relative
const DREW = 0u;
const PICKED = 1u;
const HOST = 2u;

var<workgroup> redF: array<f32, WG>;
var<workgroup> redU: array<u32, WG>;
var<workgroup> redE: array<f32, WG>;
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> candKey: array<u32, CAP>;
var<workgroup> candId: array<u32, CAP>;
var<workgroup> counter: atomic<u32>;
var<workgroup> nanSeen: atomic<u32>;
var<workgroup> rawMaxKey: atomic<u32>;
var<workgroup> boxU: array<u32, 4>;
var<workgroup> boxF: array<f32, 4>;

// NaN by its bits: WGSL lets implementations assume floats are not NaN, so v != v is not reliable.
fn isNaN(v: f32) -> bool {
  let b = bitcast<u32>(v);
  return (b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu) != 0u;
}
fn isInf(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) == 0x7f800000u; }

// A u32 whose order is the float order (NaN excluded): the radix select and the sort compare these.
fn keyOf(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  if ((b & 0x80000000u) != 0u) { return ~b; }
  return b | 0x80000000u;
}
fn valueOf(k: u32) -> f32 {
  if ((k & 0x80000000u) != 0u) { return bitcast<f32>(k & 0x7fffffffu); }
  return bitcast<f32>(~k);
}
const NEG_INF_KEY = 0x007fffffu;

fn beats(v: f32, i: u32, w: f32, j: u32) -> bool {
  if (i == NONE) { return false; }
  if (j == NONE) { return true; }
  return v > w || (v == w && i < j);
}

// The host's unnormalised probability exp((x - max) / T); cut: the no-top-k shortcut (below e^-40: 0).
fn prob(x: f32, mx: f32, cut: bool) -> f32 {
  if (keyOf(x) <= NEG_INF_KEY) { return 0.0; }
  let d = (x - mx) * P.invT;
  if (cut && d < -40.0) { return 0.0; }
  return exp(d);
}

// A bound on |float32 p - exact p| for p = prob(x, mx, cut): WGSL allows exp() an error of 3 + 2|d| ulp,
// and d = (x - mx) * invT is rounded twice (|d| ulp); 4 + 4|d| ulp covers both.
fn probErr(x: f32, mx: f32, cut: bool) -> f32 {
  let p = prob(x, mx, cut);
  return p * (4.0 + 4.0 * abs((x - mx) * P.invT)) * EPS;
}

// Compensated (Kahan) sums: a running sum as (sum, lost low part), so a long float32 sum stays within a
// few ulp of the exact one and the decision margin can stay small. Only adds and subtracts: nothing for a
// compiler to contract into an FMA.
fn kadd(a: vec2<f32>, x: f32) -> vec2<f32> {
  let y = x - a.y;
  let s = a.x + y;
  return vec2<f32>(s, (s - a.x) - y);
}
fn kval(a: vec2<f32>) -> f32 { return a.x - a.y; }

// Candidate a comes before b: larger logit, then lower id (the host's top-k and nucleus order).
fn before(ka: u32, ia: u32, kb: u32, ib: u32) -> bool { return ka > kb || (ka == kb && ia < ib); }

// why: for HOST, which check handed the position back (GpuSamplingOutcome.reason).
fn finish(t: u32, status: u32, token: u32, why: u32) {
  if (t != 0u) { return; }
  var lp = 0.0;
  if (P.logprob != 0u && status != HOST) {
    let rawMax = valueOf(atomicLoad(&rawMaxKey));
    lp = logits[P.offset + token] - (rawMax + log(boxF[3]));
  }
  result[0] = status;
  result[1] = token;
  result[2] = bitcast<u32>(lp);
  result[3] = why;
}

// Sum of the probabilities over this invocation's contiguous id range, then an inclusive scan of the
// WG sums into redF; returns the total. boxF[2]: the bound on the total's error from the terms (probErr).
fn rangeSums(t: u32, mx: f32, lo: u32, hi: u32) -> f32 {
  var s = vec2<f32>(0.0, 0.0);
  var e = 0.0;
  for (var i = lo; i < hi; i++) {
    s = kadd(s, prob(work[i], mx, true));
    e += probErr(work[i], mx, true);
  }
  redF[t] = kval(s);
  redE[t] = e;
  workgroupBarrier();
  if (t == 0u) {
    var acc = vec2<f32>(0.0, 0.0);
    for (var j = 0u; j < WG; j++) {
      acc = kadd(acc, redF[j]);
      redF[j] = kval(acc);
    }
    boxF[0] = kval(acc);
    var err = 0.0;
    for (var j = 0u; j < WG; j++) { err += redE[j]; }
    boxF[2] = err;
  }
  return workgroupUniformLoad(&boxF[0]);
}

// How close a float32 sum may come to a boundary before the host must decide: the terms' error bound, the
// rounding of the compensated sums, u and the cutoff (8 ulp of the total), plus P.margin of the total.
// P.margin < 0: no margin at all (the raw float32 answer; measurements only).
fn margin(total: f32, termErr: f32) -> f32 {
  if (P.margin < 0.0) { return 0.0; }
  return termErr + (8.0 * EPS + P.margin) * total;
}

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) t: u32) {
  let n = P.n;
  // 1. The processed logits: a copy, then the edits in the host's order (one invocation: an id may repeat).
  for (var i = t; i < n; i += WG) { work[i] = logits[P.offset + i]; }
  storageBarrier(); // (workgroup variables start at zero: nanSeen, rawMaxKey, counter)
  if (t == 0u) {
    for (var j = 0u; j < P.nOps; j++) {
      let op = ops[j];
      let v = work[op.id];
      if (op.kind == 0u) { work[op.id] = v + op.a; }
      else if (op.kind == 1u) { work[op.id] = select(v * op.b, v * op.a, v > 0.0); }
      else { work[op.id] = v - op.a; }
    }
  }
  storageBarrier();

  // 2. Max of the processed logits (first index), NaN, and the raw max for the log-probability.
  var bv = 0.0;
  var bi = NONE;
  var rk = 0u;
  for (var i = t; i < n; i += WG) {
    let v = work[i];
    if (isNaN(v)) { atomicOr(&nanSeen, 1u); } else if (beats(v, i, bv, bi)) { bv = v; bi = i; }
    if (P.logprob != 0u) {
      let r = logits[P.offset + i];
      if (!isNaN(r)) { rk = max(rk, keyOf(r)); }
    }
  }
  redF[t] = bv;
  redU[t] = bi;
  if (P.logprob != 0u) { atomicMax(&rawMaxKey, rk); }
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (t < s && beats(redF[t + s], redU[t + s], redF[t], redU[t])) {
      redF[t] = redF[t + s];
      redU[t] = redU[t + s];
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    let mx = redF[0];
    var verdict = 0u; // 0: sample, 1: pick the max, 2: host
    if (atomicLoad(&nanSeen) != 0u || redU[0] == NONE || keyOf(mx) <= NEG_INF_KEY) { verdict = 2u; }
    else if (P.logprob != 0u && isInf(valueOf(atomicLoad(&rawMaxKey)))) { verdict = 2u; }
    else if (P.mode == 0u || isInf(mx)) { verdict = 1u; }
    boxU[0] = verdict;
    boxU[1] = redU[0];
    boxF[1] = mx;
  }
  let verdict = workgroupUniformLoad(&boxU[0]);
  let maxIndex = boxU[1];
  let mx = boxF[1];

  // The raw log-sum-exp's sum (finish() needs it), strided: only its precision depends on the order.
  if (P.logprob != 0u && verdict != 2u) {
    let rawMax = valueOf(atomicLoad(&rawMaxKey));
    var s = 0.0;
    for (var i = t; i < n; i += WG) { s += exp(logits[P.offset + i] - rawMax); }
    workgroupBarrier();
    redF[t] = s;
    workgroupBarrier();
    for (var h = WG / 2u; h > 0u; h = h >> 1u) {
      if (t < h) { redF[t] += redF[t + h]; }
      workgroupBarrier();
    }
    if (t == 0u) { boxF[3] = redF[0]; }
    workgroupBarrier();
  }
  // The top_logprobs: topN rounds of "the best raw logit after the previous pick" (value desc, id asc).
  if (P.topN > 0u && verdict != 2u) {
    let lse = valueOf(atomicLoad(&rawMaxKey)) + log(boxF[3]);
    var pv = 0.0;
    var pi = NONE;
    for (var r = 0u; r < P.topN; r++) {
      var v2 = 0.0;
      var i2 = NONE;
      for (var i = t; i < n; i += WG) {
        let v = logits[P.offset + i];
        if ((pi == NONE || v < pv || (v == pv && i > pi)) && beats(v, i, v2, i2)) { v2 = v; i2 = i; }
      }
      redF[t] = v2;
      redU[t] = i2;
      workgroupBarrier();
      for (var h = WG / 2u; h > 0u; h = h >> 1u) {
        if (t < h && beats(redF[t + h], redU[t + h], redF[t], redU[t])) {
          redF[t] = redF[t + h];
          redU[t] = redU[t + h];
        }
        workgroupBarrier();
      }
      pv = redF[0];
      pi = redU[0];
      if (t == 0u) {
        result[4u + 2u * r] = pi;
        result[5u + 2u * r] = bitcast<u32>(pv - lse);
      }
      workgroupBarrier();
    }
  }
  if (verdict == 2u) { finish(t, HOST, 0u, 1u); return; }
  if (verdict == 1u) { finish(t, PICKED, maxIndex, 0u); return; }

  let chunk = (n + WG - 1u) / WG;
  let lo = min(t * chunk, n);
  let hi = min(lo + chunk, n);

  if (P.mode == 1u) {
    // 3a. No truncation: the host draws over all ids in id order, with cumulative sums from id 0.
    let total = rangeSums(t, mx, lo, hi);
    let goal = P.u * total;
    let delta = margin(total, boxF[2]);
    if (t == 0u) { boxU[2] = NONE; boxU[3] = 1u; }
    workgroupBarrier();
    let start = select(0.0, redF[max(t, 1u) - 1u], t > 0u);
    if (start <= goal && goal < redF[t]) {
      let want = goal - start;
      var acc = vec2<f32>(0.0, 0.0);
      for (var i = lo; i < hi; i++) {
        let prev = kval(acc);
        acc = kadd(acc, prob(work[i], mx, true));
        let cum = kval(acc);
        if (want < cum) {
          boxU[2] = i;
          boxU[3] = select(0u, 1u, want - prev < delta || cum - want < delta);
          break;
        }
      }
    }
    workgroupBarrier();
    if (t == 0u) {
      if (boxU[2] == NONE) { finish(t, HOST, 0u, 6u); } else if (boxU[3] != 0u) { finish(t, HOST, 0u, 5u); } else { finish(t, DREW, boxU[2], 0u); }
    }
    return;
  }

  // 3b. top-k / top-p. The host's total: the k candidates' (top_k), else all ids' (with the e^-40 cut).
  var fullTotal = 0.0;
  var fullErr = 0.0;
  if (P.topK == 0u) {
    fullTotal = rangeSums(t, mx, lo, hi);
    fullErr = boxF[2];
  }

  // Radix select, 8 bits a pass: the key of the select-th largest logit, and how many ties of it count.
  var prefix = 0u;
  var mask = 0u;
  var need = P.select;
  for (var d = 0u; d < 4u; d++) {
    let shift = 24u - 8u * d;
    atomicStore(&hist[t], 0u);
    workgroupBarrier();
    for (var i = t; i < n; i += WG) {
      let k = keyOf(work[i]);
      if ((k & mask) == prefix) { atomicAdd(&hist[(k >> shift) & 255u], 1u); }
    }
    workgroupBarrier();
    if (t == 0u) {
      var acc = 0u;
      var b = 255u;
      loop {
        let c = atomicLoad(&hist[b]);
        if (acc + c >= need || b == 0u) {
          boxU[0] = b;
          boxU[1] = need - acc;
          boxU[2] = c;
          break;
        }
        acc += c;
        b -= 1u;
      }
    }
    let b = workgroupUniformLoad(&boxU[0]);
    need = boxU[1];
    prefix = prefix | (b << shift);
    mask = mask | (255u << shift);
  }
  // Everything >= the boundary key: those above it plus all its ties (sorted by id below, so the lowest win).
  if (t == 0u) { boxU[3] = P.select - need + boxU[2]; }
  let gathered = workgroupUniformLoad(&boxU[3]);
  if (gathered > CAP) { finish(t, HOST, 0u, 2u); return; }
  var size = 1u;
  loop { if (size >= gathered) { break; } size = size << 1u; }
  for (var i = t; i < n; i += WG) {
    let k = keyOf(work[i]);
    if (k >= prefix) {
      let slot = atomicAdd(&counter, 1u);
      candKey[slot] = k;
      candId[slot] = i;
    }
  }
  workgroupBarrier();
  for (var s = gathered + t; s < size; s += WG) {
    candKey[s] = 0u;
    candId[s] = NONE;
  }
  workgroupBarrier();
  // Bitonic sort of size (a power of two) entries: logit descending, id ascending.
  for (var k = 2u; k <= size; k = k << 1u) {
    for (var j = k >> 1u; j > 0u; j = j >> 1u) {
      for (var q = t; q < size / 2u; q += WG) {
        let a = 2u * q - (q & (j - 1u));
        let c = a + j;
        let inOrder = before(candKey[a], candId[a], candKey[c], candId[c]);
        if (inOrder != ((a & k) == 0u)) {
          let tk = candKey[a];
          let ti = candId[a];
          candKey[a] = candKey[c];
          candId[a] = candId[c];
          candKey[c] = tk;
          candId[c] = ti;
        }
      }
      workgroupBarrier();
    }
  }
  if (t != 0u) { return; }
  // The host's top-p cut and draw, in its order, over the select best candidates.
  let m = P.select;
  let cut = P.topK == 0u;
  var total = fullTotal;
  var err = fullErr;
  if (!cut) {
    var acc = vec2<f32>(0.0, 0.0);
    err = 0.0;
    for (var j = 0u; j < m; j++) {
      acc = kadd(acc, prob(valueOf(candKey[j]), mx, false));
      err += probErr(valueOf(candKey[j]), mx, false);
    }
    total = kval(acc);
  }
  let delta = margin(total, err);
  var keep = m;
  var kept = total;
  // The host's kept mass is only known to lie in [kept, kept + slack] (a nucleus past the candidates).
  var slack = 0.0;
  if (P.topP < 1.0) {
    let cutoff = P.topP * total;
    var acc = vec2<f32>(0.0, 0.0);
    var cum = 0.0;
    keep = NONE;
    for (var j = 0u; j < m; j++) {
      let prev = cum;
      acc = kadd(acc, prob(valueOf(candKey[j]), mx, cut));
      cum = kval(acc);
      if (cum >= cutoff) {
        keep = j + 1u;
        if (cum - cutoff < delta || cutoff - prev < delta) { finish(t, HOST, 0u, 4u); return; }
        break;
      }
    }
    if (keep == NONE) {
      // The nucleus reaches past the candidates. The host stops at the first later token whose sum reaches
      // the cutoff, so its kept mass is in [cutoff, cutoff + p] where p, the last candidate's probability,
      // bounds every later one; a draw that lands inside the candidates for every such mass is decided here.
      if (m >= n || cutoff - cum < delta) { finish(t, HOST, 0u, 3u); return; }
      keep = m;
      kept = cutoff;
      slack = prob(valueOf(candKey[m - 1u]), mx, cut);
    } else {
      kept = cum;
    }
  }
  let goal = P.u * kept;
  let goalSlack = P.u * slack;
  var acc = vec2<f32>(0.0, 0.0);
  for (var j = 0u; j < keep; j++) {
    let prev = kval(acc);
    acc = kadd(acc, prob(valueOf(candKey[j]), mx, cut));
    let cum = kval(acc);
    if (goal < cum) {
      if (goal - prev < delta || cum - goal < delta + goalSlack) { finish(t, HOST, 0u, 5u); return; }
      finish(t, DREW, candId[j], 0u);
      return;
    }
  }
  finish(t, HOST, 0u, select(6u, 3u, slack > 0.0));
}
`;

/**
 * Extra decision margin, as a fraction of the total probability mass, on top of the error bound the
 * kernel computes (see the file comment). A negative margin drops every margin (measurements only).
 */
export const GPU_SAMPLER_MARGIN = 1e-7;

export class GpuSampler {
  private readonly pipeline: GPUComputePipeline;
  private readonly result: GPUBuffer;
  /** Readback buffers, one per launch whose outcome has not been read yet (a pipelined decode has two). */
  private readonly readbacks: GPUBuffer[] = [];
  private readonly busy: boolean[] = [];
  private next = 0;
  private readonly params: GPUBuffer;
  private work: GPUBuffer | undefined;
  private ops: GPUBuffer | undefined;
  private bindGroups = new WeakMap<GPUBuffer, GPUBindGroup>();
  private readonly paramWords = new ArrayBuffer(48);

  constructor(
    private readonly device: GPUDevice,
    /** Extra decision margin (fraction of the total mass); negative: the GPU's float32 answer as is (measurements only). */
    readonly margin = GPU_SAMPLER_MARGIN,
  ) {
    const module = device.createShaderModule({ code: SHADER, label: "hearth-sampler" });
    this.pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" }, label: "hearth-sampler" });
    const bytes = RESULT_WORDS * 4;
    this.result = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, label: "hearth-sampler-result" });
    for (let i = 0; i < READBACKS; i++) {
      this.readbacks.push(
        device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: `hearth-sampler-readback-${i}` }),
      );
      this.busy.push(false);
    }
    this.params = device.createBuffer({ size: 48, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: "hearth-sampler-params" });
  }

  /**
   * Sample `plan.vocab` float32 logits starting at element `offset` of `logits` (not modified). Queued
   * after everything already submitted to the device's queue, so the caller submits the producing work first.
   */
  sample(logits: GPUBuffer, offset: number, plan: GpuSamplingPlan): Promise<GpuSamplingOutcome> {
    return this.launch(logits, offset, plan);
  }

  /**
   * sample(), submitted before this returns; with `feed`, the kernel's token is also copied to
   * `feed.buffer` at `feed.byteOffset` on the GPU (the next decode step's input; meaningless when the
   * outcome is "host"). Up to READBACKS launches may wait to be read back at once.
   */
  launch(logits: GPUBuffer, offset: number, plan: GpuSamplingPlan, feed?: { buffer: GPUBuffer; byteOffset: number }): Promise<GpuSamplingOutcome> {
    const n = plan.vocab;
    if (!Number.isSafeInteger(n) || n <= 0) return Promise.reject(new RangeError(`sampling ${n} logits`));
    if ((offset + n) * 4 > logits.size) return Promise.reject(new RangeError(`logits [${offset}, ${offset + n}) exceed a ${logits.size}-byte buffer`));
    const topN = Math.min(plan.topLogprobs, n);
    if (topN > MAX_TOP_LOGPROBS) return Promise.reject(new RangeError(`top_logprobs ${topN} > ${MAX_TOP_LOGPROBS}`));
    if (feed !== undefined && (feed.byteOffset % 4 !== 0 || feed.byteOffset + 4 > feed.buffer.size)) {
      return Promise.reject(new RangeError(`sampler feed at byte ${feed.byteOffset} of a ${feed.buffer.size}-byte buffer`));
    }
    const slot = this.next;
    if (this.busy[slot] === true) return Promise.reject(new Error(`more than ${READBACKS} sampler launches waiting to be read back`));
    this.next = (slot + 1) % READBACKS;
    const readback = this.readbacks[slot] as GPUBuffer;
    this.ensure(n * 4, plan.opCount * 16);
    const device = this.device;
    if (plan.opCount > 0) device.queue.writeBuffer(this.ops as GPUBuffer, 0, plan.ops, 0, plan.opCount * 4);
    const u32 = new Uint32Array(this.paramWords);
    const f32 = new Float32Array(this.paramWords);
    u32.set([offset, n, plan.opCount, MODES[plan.mode], plan.select, plan.topK ? 1 : 0, plan.logprob ? 1 : 0, topN]);
    f32.set([plan.invTemperature, plan.topP, plan.u, this.margin], 8);
    device.queue.writeBuffer(this.params, 0, this.paramWords);
    let bindGroup = this.bindGroups.get(logits);
    if (bindGroup === undefined) {
      bindGroup = device.createBindGroup({
        layout: this.pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: logits } },
          { binding: 1, resource: { buffer: this.work as GPUBuffer } },
          { binding: 2, resource: { buffer: this.ops as GPUBuffer } },
          { binding: 3, resource: { buffer: this.params } },
          { binding: 4, resource: { buffer: this.result } },
        ],
      });
      this.bindGroups.set(logits, bindGroup);
    }
    const encoder = device.createCommandEncoder({ label: "hearth-sampler" });
    const pass = encoder.beginComputePass();
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(1);
    pass.end();
    if (feed !== undefined) encoder.copyBufferToBuffer(this.result, 4, feed.buffer, feed.byteOffset, 4); // word 1: the token
    const bytes = (4 + 2 * topN) * 4; // only what this plan fills
    encoder.copyBufferToBuffer(this.result, 0, readback, 0, bytes);
    device.queue.submit([encoder.finish()]);
    this.busy[slot] = true;
    return readback.mapAsync(GPUMapMode.READ, 0, bytes).then(
      () => {
        const words = new Uint32Array(readback.getMappedRange(0, bytes).slice(0));
        readback.unmap();
        this.busy[slot] = false;
        const status = STATUS[words[0] as number];
        if (status === undefined) throw new Error(`GPU sampler returned status ${words[0]}`);
        const reason = REASONS[words[3] as number];
        const floats = new Float32Array(words.buffer);
        const outcome: GpuSamplingOutcome = { status, token: words[1] as number, logprob: floats[2] as number };
        if (status === "host" && reason !== undefined) outcome.reason = reason;
        if (topN > 0 && status !== "host") {
          outcome.topLogprobs = Array.from({ length: topN }, (_, r) => ({ token: words[4 + 2 * r] as number, logprob: floats[5 + 2 * r] as number }));
        }
        return outcome;
      },
      (err: unknown) => {
        this.busy[slot] = false;
        throw err;
      },
    );
  }

  /** Grow the scratch buffers (a new buffer invalidates the cached bind groups). */
  private ensure(workBytes: number, opBytes: number): void {
    let grown = false;
    if (this.work === undefined || this.work.size < workBytes) {
      this.work?.destroy();
      this.work = this.device.createBuffer({ size: workBytes, usage: GPUBufferUsage.STORAGE, label: "hearth-sampler-work" });
      grown = true;
    }
    const want = Math.max(16, opBytes);
    if (this.ops === undefined || this.ops.size < want) {
      this.ops?.destroy();
      this.ops = this.device.createBuffer({ size: Math.max(want, 4096), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, label: "hearth-sampler-ops" });
      grown = true;
    }
    if (grown) this.bindGroups = new WeakMap();
  }

  dispose(): void {
    this.result.destroy();
    for (const r of this.readbacks) r.destroy();
    this.params.destroy();
    this.work?.destroy();
    this.ops?.destroy();
  }
}
