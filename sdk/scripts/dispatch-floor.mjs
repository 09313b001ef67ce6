// What one compute dispatch costs the GPU in Dawn, apart from the kernel's own work (issue 17).
// Decode is ~170-300 dispatches per token; on the H100 a trivial kernel (the embedding lookup, the fused
// RoPE + KV append) measured ~9 µs per launch. This separates the parts: N dispatches of a tiny kernel in ONE
// compute pass, timed by the pass's timestamp writes, when each dispatch writes the buffer the next one reads
// (a read-after-write hazard: Dawn puts a barrier between them) and when each writes a buffer of its own
// (no hazard), at 1 and at 132 workgroups; and the same with one pass per dispatch.
//
//   node scripts/dispatch-floor.mjs [--n 512] [--reps 5]
// Prints one JSON line: {adapter, n, rows: [{case, usPerDispatch: [..reps]}]}. A benchmark, not a test.
import { create, globals } from "webgpu";

Object.assign(globalThis, globals);
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const N = opt("--n", 512);
const REPS = opt("--reps", 5);
const flags = (process.env.HEARTH_DAWN_FLAGS ?? "").split(/\s+/).filter(Boolean);
const gpu = create(["enable-dawn-features=allow_unsafe_apis,disable_timestamp_query_conversion", ...flags]);
const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
if (adapter === null) throw new Error("no WebGPU adapter");
if (!adapter.features.has("timestamp-query")) throw new Error("the adapter has no timestamp-query");
const device = await adapter.requestDevice({ requiredFeatures: ["timestamp-query"] });

const module = device.createShaderModule({
  code: `
@group(0) @binding(0) var<storage, read> src : array<f32>;
@group(0) @binding(1) var<storage, read_write> dst : array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g : vec3<u32>) {
  let i = g.x % arrayLength(&dst);
  dst[i] = src[i] * 1.0001 + 1.0;
}`,
});
const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
const ELEMS = 132 * 64;
const buf = () => device.createBuffer({ size: ELEMS * 4, usage: GPUBufferUsage.STORAGE });
// chain: dispatch i reads buffer i % 2 and writes (i + 1) % 2 (every dispatch depends on the one before);
// independent: dispatch i reads one shared input and writes a buffer of its own.
const ping = [buf(), buf()];
const input = buf();
const outs = Array.from({ length: N }, buf);
const group = (src, dst) =>
  device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: src } },
      { binding: 1, resource: { buffer: dst } },
    ],
  });
const chainGroups = [group(ping[0], ping[1]), group(ping[1], ping[0])];
const indepGroups = outs.map((o) => group(input, o));

const querySet = device.createQuerySet({ type: "timestamp", count: 2 * N });
const resolve = device.createBuffer({ size: 16 * N, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
const readback = device.createBuffer({ size: 16 * N, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });

/** GPU µs per dispatch: `passes` 1 = all N dispatches in one pass, N = a pass each (each timed). */
async function measure(groups, workgroups, passes) {
  const enc = device.createCommandEncoder();
  const per = N / passes;
  for (let p = 0; p < passes; p++) {
    const pass = enc.beginComputePass({
      timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * p, endOfPassWriteIndex: 2 * p + 1 },
    });
    pass.setPipeline(pipeline);
    for (let i = p * per; i < (p + 1) * per; i++) {
      pass.setBindGroup(0, groups[i % groups.length]);
      pass.dispatchWorkgroups(workgroups);
    }
    pass.end();
  }
  enc.resolveQuerySet(querySet, 0, 2 * passes, resolve, 0);
  enc.copyBufferToBuffer(resolve, 0, readback, 0, 16 * passes);
  device.queue.submit([enc.finish()]);
  await readback.mapAsync(GPUMapMode.READ, 0, 16 * passes);
  const t = new BigInt64Array(readback.getMappedRange(0, 16 * passes).slice(0));
  readback.unmap();
  let ns = 0n;
  for (let p = 0; p < passes; p++) ns += t[2 * p + 1] - t[2 * p];
  return Number(ns) / 1000 / N;
}

const rows = [];
for (const [name, groups] of [
  ["chain", chainGroups],
  ["independent", indepGroups],
]) {
  for (const wg of [1, 132]) {
    for (const passes of [1, N]) {
      await measure(groups, wg, passes); // warm-up
      const us = [];
      for (let r = 0; r < REPS; r++) us.push(await measure(groups, wg, passes));
      rows.push({ case: `${name}, ${wg} workgroup(s), ${passes === 1 ? "one pass" : "a pass each"}`, usPerDispatch: us });
    }
  }
}
const info = adapter.info;
console.log(JSON.stringify({ adapter: `${info.vendor} ${info.architecture} ${info.description}`.trim(), n: N, rows }));
process.exit(0);
