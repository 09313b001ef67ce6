#!/usr/bin/env node
// How often the GPU sampler (src/runtime/gpu-sampler.ts) would disagree with the host Sampler, on a real
// model's logits over a long run. The model generates --tokens tokens once (decode() on Dawn WebGPU, host
// sampling at temperature 0.7, top_p 0.95) and every position's logits are kept; then, for each setting
// below, every position goes through the host Sampler (the reference) and the GPU sampler at each
// --margins value (negative: its float32 answer as is; 0: the kernel's error bound alone; the SDK's
// default GPU_SAMPLER_MARGIN = 1e-7 on top of it: near a boundary it hands the position back to the
// host), all with the same uniform number. The penalties see each
// setting's own reference tokens. --logits-cache FILE keeps the trajectory's logits (vocab x tokens
// float32) so a second run skips the model.
//
// Usage: node scripts/gpu-sampling-check.mjs <packageDir> [--tokens 300] [--prompt "text"]
//          [--margins -1,0,1e-7,1e-6,1e-5] [--logits-cache /tmp/x.f32]
// Prints one JSON line per setting and margin: positions, handed_back (by reason), mismatches (a GPU
// answer that differs from the host's; at a negative margin a hand-back counts as one too).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { register } from "tsx/esm/api";

register();

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    tokens: { type: "string", default: "300" },
    prompt: { type: "string", default: "Write a short story about a lighthouse keeper who finds a message in a bottle." },
    margins: { type: "string", default: "-1,0,1e-7,1e-6,1e-5" },
    "logits-cache": { type: "string" },
  },
});
if (positionals.length !== 1) throw new Error('usage: node scripts/gpu-sampling-check.mjs <packageDir> [--tokens 300] [--prompt "text"]');
const dir = resolve(positionals[0]);
const tokens = Number(values.tokens);
if (!Number.isInteger(tokens) || tokens < 1) throw new Error(`--tokens must be a positive integer, got ${values.tokens}`);

const { installNodeGPU } = await import("../test/support/node-gpu.ts");
const { fileFetch } = await import("../test/support/file-fetch.ts");
const { DecoderModel } = await import("../src/decoder/model.ts");
const { GpuSampler } = await import("../src/runtime/gpu-sampler.ts");
const { Sampler } = await import("../src/sample/sampler.ts");
const { TokenHistory } = await import("../src/sample/history.ts");
const { loadTokenizer } = await import("../src/tokenize/load.ts");

const SETTINGS = [
  { temperature: 1 },
  { temperature: 0.7 },
  { temperature: 1, top_p: 0.9 },
  { temperature: 0.8, top_k: 40 },
  { temperature: 1, top_k: 50, top_p: 0.95 },
  { temperature: 0.9, top_p: 0.95, repetition_penalty: 1.2, presence_penalty: 0.3, frequency_penalty: 0.3 },
  { temperature: 0.7, top_p: 0.95 }, // SmolLM2's mlc-chat-config defaults
  { temperature: 0.2, top_p: 0.9 }, // the demo's RAG answers
  { temperature: 1.2, logit_bias: { 198: 3, 28: -5 }, frequency_penalty: 0.5 },
];

const gpu = await installNodeGPU();
const model = await DecoderModel.load(pathToFileURL(dir).href + "/", { gpu, target: "webgpu", fetch: fileFetch, logger: () => {} });
const tokenizer = await loadTokenizer({ tokenizerJson: readFileSync(join(dir, "tokenizer.json"), "utf8") });
const prompt = Array.from(tokenizer.encode(values.prompt).ids ?? tokenizer.encode(values.prompt));
// A device of its own: the comparison kernels see a copy of each position's logits.
const device = await (await gpu.requestAdapter()).requestDevice();
const margins = values.margins.split(",").map(Number);
const kernels = margins.map((m) => new GpuSampler(device, m));
const cache = values["logits-cache"];
try {
  let positions = [];
  if (cache !== undefined && existsSync(cache)) {
    const all = new Float32Array(readFileSync(cache).buffer.slice(0));
    const vocab = model.config.vocab_size;
    for (let i = 0; i + vocab <= all.length; i += vocab) positions.push(all.subarray(i, i + vocab));
    positions = positions.slice(0, tokens);
  } else {
    await model.reset();
    const sampler = new Sampler({ temperature: 0.7, top_p: 0.95, seed: 1 });
    const history = new TokenHistory(prompt);
    let logits = await model.prefill(prompt);
    const t0 = performance.now();
    for (let n = 0; n < tokens && model.sequenceLength < model.maxSequenceLength; n++) {
      positions.push(logits);
      const token = sampler.sample(logits, history).token;
      history.push(token);
      logits = await model.decode(token);
    }
    console.error(`${positions.length} positions in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    if (cache !== undefined) {
      const all = new Float32Array(positions.length * positions[0].length);
      for (const [i, p] of positions.entries()) all.set(p, i * p.length);
      writeFileSync(cache, all);
    }
  }
  const vocab = positions[0].length;
  const buf = device.createBuffer({ size: vocab * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  for (const [i, setting] of SETTINGS.entries()) {
    const params = { ...setting, seed: 1000 + i };
    const sampler = new Sampler(params);
    const history = new TokenHistory(prompt);
    const stats = margins.map((margin) => ({ margin, positions: 0, handed_back: 0, mismatches: 0, reasons: {} }));
    for (const logits of positions) {
      device.queue.writeBuffer(buf, 0, logits);
      const plan = sampler.gpuPlan(vocab, history);
      const outcomes = [];
      for (const k of kernels) outcomes.push(await k.sample(buf, 0, plan));
      sampler.gpuResult(plan, { status: "host", token: 0, logprob: 0 }); // gives the uniform number back
      const ref = sampler.sample(logits, history).token;
      for (const [j, o] of outcomes.entries()) {
        const st = stats[j];
        st.positions++;
        if (o.status === "host") {
          st.handed_back++;
          st.reasons[o.reason] = (st.reasons[o.reason] ?? 0) + 1;
          if (st.margin < 0) st.mismatches++;
        } else if (o.token !== ref) st.mismatches++;
      }
      history.push(ref);
    }
    for (const st of stats) console.log(JSON.stringify({ params, vocab, ...st }));
  }
  buf.destroy();
} finally {
  for (const k of kernels) k.dispose();
  device.destroy();
  await model.dispose();
}
