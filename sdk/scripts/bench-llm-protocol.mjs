// The LLM speed protocol shared by the Node benchmark (scripts/bench-llm.mjs) and the Chromium one
// (bench/embed/page/hearth-llm-worker.js): the same token ids, the same warm-up, the same timings around
// the public DecoderModel calls (logits readback included). Plain JavaScript, no Node or DOM imports.
//
//   prefill_<L>_tok_s  L-token prompt, one prefill() (chunked by the package's prefill_chunk_size)
//   decode_tok_s       decodeNew decode() calls after a decodePrompt-token prompt, greedy on the host, EOS ignored
//   ttft_ms            prefill of ttftPrompt tokens + argmax of the logits
// Every metric lists all `runs` samples; the caller takes medians. Lengths that do not fit the model's
// context window are reported under `skipped` with the reason.

// Deterministic token ids spread over the vocabulary (values do not change the speed).
export function promptIds(n, vocab, salt = 0) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7919 + 104729 * salt + 13) % vocab;
  return out;
}

export function argmax(a) {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/** Launches per decode token between two `launchesByKernel` snapshots taken `steps` decode steps apart. */
export function perToken(before, after, steps) {
  const byKernel = {};
  let total = 0;
  for (const [name, n] of Object.entries(after)) {
    const d = n - (before?.[name] ?? 0);
    if (d > 0) {
      byKernel[name] = d / steps;
      total += d;
    }
  }
  return { total: total / steps, byKernel };
}

/**
 * Run the protocol on a loaded DecoderModel. Returns {samples, skipped, breakdown}: breakdown says where a
 * decode step's time goes (the last decode run's stats: host-side submission vs waiting for the GPU +
 * logits readback, and the launch cache's counters).
 */
export async function measureDecoder(model, { runs, prefillLens, decodeNew, decodePrompt, ttftPrompt, gpuArgmax = false, sampling = null }) {
  // gpuArgmax: decode steps use model.decodeArgmax (argmax on the GPU, only the token id read back)
  // instead of decode() + a host argmax over the logits; "ahead": the decode run is one
  // model.decodeGreedy call (the same tokens, its steps pipelined: step k + 1 encoded while the GPU runs
  // step k); "picked": the decode run is one model.decodePicked call (the logits read back each step and
  // the argmax taken on the host, step k + 1 encoded ahead of its token). Same tokens; the native and
  // torch references always read the logits back.
  // sampling ({ params, gpu, newSampler(params) -> { sampler, history } }): decode steps sample with these
  // SamplingParams instead of greedy: on the GPU (model.decodeSample, only the token read back) when
  // `gpu`, else decode() + the host Sampler ("ahead": the decode run is one pipelined model.decodeSampled
  // call; "picked": one model.decodePicked call, the host sampling each step's logits read back). Same tokens
  // either way; each run starts a fresh sampler.
  let sampler = null;
  let history = null;
  const step =
    sampling !== null
      ? sampling.gpu
        ? async (t) => {
            history.push(t);
            return (await model.decodeSample(t, sampler, history)).token;
          }
        : async (t) => {
            history.push(t);
            return sampler.sample(await model.decode(t), history).token;
          }
      : gpuArgmax
        ? (t) => model.decodeArgmax(t)
        : async (t) => argmax(await model.decode(t));
  const vocab = model.config.vocab_size;
  const maxSeq = model.maxSequenceLength;
  const skipped = {};
  let breakdown = null;
  const samples = {};

  // Warm-up: first calls of each function pay for lazy pipeline creation and buffer allocation.
  await model.reset();
  let tok = argmax(await model.prefill(promptIds(Math.min(decodePrompt, maxSeq - 4), vocab, 9)));
  for (let i = 0; i < 3; i++) tok = argmax(await model.decode(tok));
  for (const L of prefillLens) {
    if (L + 1 > maxSeq) continue;
    await model.reset();
    await model.prefill(promptIds(L, vocab, 8));
  }

  for (const L of prefillLens) {
    if (L > maxSeq) {
      skipped[`prefill_${L}`] = `prompt of ${L} tokens exceeds the context window (${maxSeq})`;
      continue;
    }
    const xs = [];
    for (let r = 0; r < runs; r++) {
      await model.reset();
      const ids = promptIds(L, vocab, r + 1);
      const t0 = performance.now();
      await model.prefill(ids);
      xs.push((L * 1000) / (performance.now() - t0));
    }
    samples[`prefill_${L}_tok_s`] = xs;
  }

  if (ttftPrompt <= maxSeq) {
    const xs = [];
    for (let r = 0; r < runs; r++) {
      await model.reset();
      const ids = promptIds(ttftPrompt, vocab, r + 11);
      const t0 = performance.now();
      argmax(await model.prefill(ids));
      xs.push(performance.now() - t0);
    }
    samples.ttft_ms = xs;
  } else skipped.ttft_ms = `prompt of ${ttftPrompt} tokens exceeds the context window (${maxSeq})`;

  if (decodePrompt + decodeNew <= maxSeq) {
    const xs = [];
    let launchesBefore = null;
    for (let r = 0; r < runs; r++) {
      await model.reset();
      const prompt = promptIds(decodePrompt, vocab, r + 21);
      if (sampling !== null) ({ sampler, history } = sampling.newSampler(sampling.params, prompt));
      let t = argmax(await model.prefill(prompt));
      launchesBefore = model.stats().dispatch?.launchesByKernel ?? null;
      const t0 = performance.now();
      if (sampling !== null && sampling.gpu === "ahead") {
        let got = 0;
        history.push(t);
        await model.decodeSampled(t, sampler, history, (s) => {
          history.push(s.token);
          return ++got < decodeNew;
        });
        if (got !== decodeNew) throw new Error(`decodeSampled returned ${got} of ${decodeNew} tokens`);
      } else if (sampling !== null ? sampling.gpu === "picked" : gpuArgmax === "picked") {
        let got = 0;
        history?.push(t);
        await model.decodePicked(t, (logits) => {
          const next = sampling !== null ? sampler.sample(logits, history).token : argmax(logits);
          history?.push(next);
          return ++got < decodeNew ? next : null;
        });
        if (got !== decodeNew) throw new Error(`decodePicked picked ${got} of ${decodeNew} tokens`);
      } else if (gpuArgmax === "ahead") {
        const got = await model.decodeGreedy(t, decodeNew);
        if (got.length !== decodeNew) throw new Error(`decodeGreedy returned ${got.length} of ${decodeNew} tokens`);
      } else for (let i = 0; i < decodeNew; i++) t = await step(t);
      xs.push((decodeNew * 1000) / (performance.now() - t0));
    }
    const launchesAfter = model.stats().dispatch?.launchesByKernel ?? null;
    samples.decode_tok_s = xs;
    // Where a decode step's time goes (last run; stats cover its 1 prefill + decodeNew decodes):
    // host-side encoding and submission of the dispatches vs waiting for the GPU + logits readback.
    const st = model.stats();
    breakdown = {
      decodeMsPerToken: st.decode.ms / st.decode.calls,
      syncMsPerCall: st.syncMs / (st.decode.calls + st.prefill.calls),
      submitMsPerCall: st.submitMs / (st.decode.calls + st.prefill.calls),
      dispatch: st.dispatch ?? null,
      calls: st.decode.calls + st.prefill.calls,
      // Kernel launches per decode token (last run; Hearth's launch path only): the number fusion lowers.
      launchesPerToken: launchesAfter === null ? null : perToken(launchesBefore, launchesAfter, decodeNew).total,
      // Decode steps sampled on the GPU, and of those handed back to the host sampler (all runs).
      gpuSampling: st.gpuSampling ?? null,
    };
  } else skipped.decode_tok_s = `${decodePrompt} + ${decodeNew} tokens exceed the context window (${maxSeq})`;

  return { samples, skipped, breakdown };
}
