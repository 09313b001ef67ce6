// GpuArgmax on the real Dawn adapter: the same answer as the host argmax (sample/argmax.ts) on the cases where
// a reduction can go wrong: ties (first index), +Infinity, all -Infinity, NaN, an offset into the buffer,
// lengths that do not fill the workgroup, and a full Qwen2.5-sized vocabulary.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { installNodeGPU } from "./support/node-gpu.js";
import { GpuArgmax } from "../src/runtime/gpu-argmax.js";
import { argmax, NonFiniteLogitsError } from "../src/sample/argmax.js";

let device: GPUDevice;
let kernel: GpuArgmax;

before(async () => {
  const gpu = await installNodeGPU();
  const adapter = await gpu.requestAdapter();
  assert.ok(adapter);
  device = await adapter.requestDevice();
  kernel = new GpuArgmax(device);
});

after(() => {
  kernel?.dispose();
  device?.destroy();
});

function upload(values: Float32Array, pad = 0): GPUBuffer {
  const buf = device.createBuffer({ size: (values.length + pad) * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const all = new Float32Array(values.length + pad).fill(1e30); // padding holds a larger value: it must be ignored
  all.set(values, pad);
  device.queue.writeBuffer(buf, 0, all);
  return buf;
}

async function gpuArgmax(values: Float32Array, pad = 0): Promise<number> {
  const buf = upload(values, pad);
  try {
    return await kernel.argmax(buf, pad, values.length);
  } finally {
    buf.destroy();
  }
}

test("matches the host argmax on random logits of several lengths, with and without an offset", async () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 20 - 10;
  // 151936: 75 workgroups of partials; 600000: all 256 of them, ~9 values per invocation
  for (const n of [1, 3, 255, 256, 257, 1000, 2049, 151936, 600000]) {
    const v = Float32Array.from({ length: n }, rand);
    assert.equal(await gpuArgmax(v), argmax(v), `n=${n}`);
    assert.equal(await gpuArgmax(v, 64), argmax(v), `n=${n}, offset 64`);
  }
});

test("ties go to the first index; +Infinity wins; all -Infinity gives 0", async () => {
  const tie = new Float32Array(5000).fill(-1);
  tie[4321] = 3;
  tie[777] = 3;
  tie[2048] = 3;
  assert.equal(await gpuArgmax(tie), 777);
  const inf = Float32Array.from({ length: 600 }, (_, i) => i);
  inf[450] = Infinity;
  assert.equal(await gpuArgmax(inf), 450);
  assert.equal(await gpuArgmax(new Float32Array(300).fill(-Infinity)), 0);
});

test("NaN anywhere is an error, as on the host", async () => {
  const v = new Float32Array(1000).fill(0.5);
  v[999] = NaN;
  assert.throws(() => argmax(v), NonFiniteLogitsError);
  await assert.rejects(gpuArgmax(v), NonFiniteLogitsError);
  assert.equal(await gpuArgmax(new Float32Array([1, 2, 3])), 2, "the kernel stays usable after a NaN");
});
