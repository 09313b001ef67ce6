#!/usr/bin/env node
// What one position's sampling costs, host vs GPU, on logits already on the device: real ones (a logits
// cache written by scripts/gpu-sampling-check.mjs --logits-cache) or, with "synthetic" for the file,
// LM-like ones (a Zipf-like ranked profile, p ~ rank^-1.1, over a shuffled vocabulary, different per
// position). host = copy the logits to a mappable buffer, map, Sampler.sample; GPU = GpuSampler.sample
// (16 bytes back; a handed-back position adds the host sample). The model is not run, so this isolates
// the sampler from the decode step's noise. Both paths must pick the same tokens (mismatches: must be 0).
//
// Usage: node scripts/gpu-sampling-cost.mjs <logits-cache.f32 | synthetic> <vocab> [--positions 40] [--rounds 2]
// Prints one JSON line per mode: host_ms and gpu_ms per position (median of the rounds), handed_back, mismatches.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

// In the repo the SDK's .ts sources load through tsx; the GPU bundle (bench/gpu/prepare.py) has them inlined.
if (!globalThis.__HEARTH_BUNDLED__) {
  const { register } = await import("tsx/esm/api");
  register();
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { positions: { type: "string", default: "40" }, rounds: { type: "string", default: "2" } },
});
if (positionals.length !== 2) throw new Error("usage: node scripts/gpu-sampling-cost.mjs <logits-cache.f32> <vocab> [--positions 40] [--rounds 2]");
const vocab = Number(positionals[1]);
const count = Number(values.positions);
const rounds = Number(values.rounds);
const positions = [];
if (positionals[0] === "synthetic") {
  let seed = 12345;
  const rand = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  for (let i = 0; i < count; i++) {
    const x = new Float32Array(vocab);
    const order = Array.from({ length: vocab }, (_, j) => j);
    for (let j = vocab - 1; j > 0; j--) {
      const k = Math.floor(rand() * (j + 1));
      [order[j], order[k]] = [order[k], order[j]];
    }
    const top = 2 + rand() * 3; // how peaked this position is
    for (let r = 0; r < vocab; r++) x[order[r]] = top * 3 - 1.1 * Math.log(r + 1) + (rand() - 0.5) * 0.2;
    positions.push(x);
  }
} else {
  const all = new Float32Array(readFileSync(positionals[0]).buffer.slice(0));
  for (let i = 0; i < count && (i + 1) * vocab <= all.length; i++) positions.push(all.subarray(i * vocab, (i + 1) * vocab));
}
if (positions.length === 0) throw new Error(`${positionals[0]} holds no ${vocab}-logit position`);

const { installNodeGPU } = await import("../test/support/node-gpu.ts");
const { GpuSampler } = await import("../src/runtime/gpu-sampler.ts");
const { Sampler } = await import("../src/sample/sampler.ts");
const { TokenHistory } = await import("../src/sample/history.ts");
const MODES = {
  greedy: { temperature: 0 },
  temperature: { temperature: 0.7 },
  "top-k": { temperature: 0.7, top_k: 40 },
  "top-p": { temperature: 0.7, top_p: 0.95 },
  penalties: { temperature: 0.7, top_p: 0.95, repetition_penalty: 1.1, presence_penalty: 0.5, frequency_penalty: 0.5 },
  logprobs: { temperature: 0.7, top_p: 0.95, top_logprobs: 5 },
};

const gpu = await installNodeGPU();
const device = await (await gpu.requestAdapter()).requestDevice();
const kernel = new GpuSampler(device);
const logits = device.createBuffer({ size: vocab * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
const readback = device.createBuffer({ size: vocab * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
try {
  for (const [mode, params] of Object.entries(MODES)) {
    const ms = { host: [], gpu: [] };
    const tokens = { host: [], gpu: [] };
    let handedBack = 0;
    for (let r = 0; r < rounds; r++) {
      for (const where of ["host", "gpu"]) {
        const sampler = new Sampler({ ...params, seed: 1 });
        const history = new TokenHistory([1, 2, 3, 4, 5]);
        let total = 0;
        for (const x of positions) {
          device.queue.writeBuffer(logits, 0, x);
          await device.queue.onSubmittedWorkDone();
          const t0 = performance.now();
          let token;
          if (where === "host") {
            const enc = device.createCommandEncoder();
            enc.copyBufferToBuffer(logits, 0, readback, 0, vocab * 4);
            device.queue.submit([enc.finish()]);
            await readback.mapAsync(GPUMapMode.READ);
            const host = new Float32Array(readback.getMappedRange().slice(0));
            readback.unmap();
            token = sampler.sample(host, history).token;
          } else {
            const plan = sampler.gpuPlan(vocab, history);
            const picked = sampler.gpuResult(plan, await kernel.sample(logits, 0, plan));
            if (picked === null && r === 0) handedBack++;
            token = picked === null ? sampler.sample(x, history).token : picked.token;
          }
          total += performance.now() - t0;
          history.push(token);
          if (r === 0) tokens[where].push(token);
        }
        ms[where].push(total / positions.length);
      }
    }
    const mismatches = tokens.host.filter((t, i) => t !== tokens.gpu[i]).length;
    const out = { mode, params, vocab, positions: positions.length, host_ms: median(ms.host), gpu_ms: median(ms.gpu), handed_back: handedBack, mismatches };
    console.log(JSON.stringify(out));
  }
} finally {
  kernel.dispose();
  logits.destroy();
  readback.destroy();
  device.destroy();
}
