// wllama 2.x (llama.cpp compiled to wasm with SIMD; bench/wllama/node_modules), run from the page (wllama starts
// its own Worker), timed with the same protocol as Hearth's LLM worker (sdk/scripts/bench-llm-protocol.mjs):
// the same token ids (promptIds), prefill of L tokens = one llama_decode of the prompt (logits of the last
// token computed), decode = `decodeNew` steps of greedy sample + llama_decode after a `decodePrompt`-token
// prompt (EOS ignored), TTFT = prefill of `ttftPrompt` tokens + the first sampled token; the KV cache is
// cleared between runs. Wall time around the calls, as for Hearth. llama.cpp runs on the CPU only (no WebGPU
// in 2.x): the no-WebGPU path this compares against. wllama 3.x (3.8.1, 3.13.0) was tried first: its
// createCompletion failed here with "RangeError: Invalid typed array length" on every prompt.
import { Wllama } from "@wllama/wllama";
import { promptIds } from "../../../sdk/scripts/bench-llm-protocol.mjs";

export async function llm({ url, threads, runs, prefillLens, decodeNew, decodePrompt, ttftPrompt, vocab }) {
  const t0 = performance.now();
  const wllama = new Wllama(
    { "single-thread/wllama.wasm": "/wllama/single-thread/wllama.wasm", "multi-thread/wllama.wasm": "/wllama/multi-thread/wllama.wasm" },
    { suppressNativeLog: true },
  );
  const nCtx = Math.max(...prefillLens, decodePrompt + decodeNew, ttftPrompt) + 8;
  await wllama.loadModelFromUrl(new URL(url, self.location.href).href, { n_ctx: nCtx, n_batch: nCtx, n_threads: threads, useCache: false });
  const loadMs = performance.now() - t0;
  const info = { multithread: wllama.isMultithread(), threads: wllama.getNumThreads() };
  console.log(`wllama loaded in ${loadMs.toFixed(0)} ms (${JSON.stringify(info)})`);
  await wllama.samplingInit({ temp: 0 });
  const prefill = async (ids) => {
    await wllama.kvClear();
    await wllama.decode(ids, {});
  };
  const step = async () => {
    const { token } = await wllama.samplingSample();
    await wllama.samplingAccept([token]);
    await wllama.decode([token], {});
  };
  const samples = { load_cold_ms: [loadMs] };
  // Warm-up, as the Hearth protocol does: one short prompt, 3 steps, one prefill per length.
  await prefill(promptIds(decodePrompt, vocab, 9));
  for (let i = 0; i < 3; i++) await step();
  for (const L of prefillLens) await prefill(promptIds(L, vocab, 8));
  for (const L of prefillLens) {
    const xs = [];
    for (let r = 0; r < runs; r++) {
      const ids = promptIds(L, vocab, r + 1);
      await wllama.kvClear();
      const t = performance.now();
      await wllama.decode(ids, {});
      xs.push((1000 * L) / (performance.now() - t));
    }
    samples[`prefill_${L}_tok_s`] = xs;
  }
  const ttft = [];
  const decode = [];
  for (let r = 0; r < runs; r++) {
    await wllama.kvClear();
    let t = performance.now();
    await wllama.decode(promptIds(ttftPrompt, vocab, r + 20), {});
    await wllama.samplingSample();
    ttft.push(performance.now() - t);
    await prefill(promptIds(decodePrompt, vocab, r + 40));
    t = performance.now();
    for (let i = 0; i < decodeNew; i++) await step();
    decode.push((1000 * decodeNew) / (performance.now() - t));
  }
  samples.ttft_ms = ttft;
  samples.decode_tok_s = decode;
  await wllama.exit();
  return { runtime: "wllama", version: "2.3.7", ...info, samples };
}
