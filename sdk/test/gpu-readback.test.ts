// GpuReadback on the real Dawn adapter: the values come back exactly (NaN, infinities and -0 bit for bit),
// from an offset, through one staging buffer that grows when a longer range comes and is reused after,
// and each result is the caller's own copy. Bad ranges are refused with a RangeError naming them.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { installNodeGPU } from "./support/node-gpu.js";
import { GpuReadback } from "../src/runtime/gpu-readback.js";

let device: GPUDevice;
let readback: GpuReadback;

before(async () => {
  const gpu = await installNodeGPU();
  const adapter = await gpu.requestAdapter();
  assert.ok(adapter);
  device = await adapter.requestDevice();
  readback = new GpuReadback(device);
});

after(() => {
  readback?.dispose();
  device?.destroy();
});

function upload(values: Float32Array): GPUBuffer {
  const buf = device.createBuffer({ size: values.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(buf, 0, values);
  return buf;
}

const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

test("reads back exact values from an offset, growing the staging buffer and reusing it", async () => {
  let seed = 11;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 40 - 20;
  const all = Float32Array.from({ length: 151936 + 64 }, rand);
  all.set([Number.NaN, Infinity, -Infinity, -0], 70);
  const buf = upload(all);
  try {
    const results: Float32Array[] = [];
    // short first (a small staging buffer), then the full Qwen2.5-sized vocabulary (it grows), then short again
    for (const [offset, n] of [
      [0, 3],
      [64, 151936],
      [70, 4],
      [5, 1000],
    ] as const) {
      const got = await readback.read(buf, offset, n);
      assert.equal(got.length, n);
      assert.deepEqual(bits(got), bits(all.subarray(offset, offset + n)), `offset ${offset}, n ${n}`);
      results.push(got);
    }
    // each result is its own copy: later reads through the same staging buffer leave it as it was
    assert.deepEqual(bits(results[1] as Float32Array), bits(all.subarray(64, 64 + 151936)));
  } finally {
    buf.destroy();
  }
});

test("refuses ranges outside the buffer and empty reads, naming them", async () => {
  const buf = upload(new Float32Array(16));
  try {
    await assert.rejects(readback.read(buf, 10, 7), (e: unknown) => e instanceof RangeError && /\[10, 17\) exceed a 64-byte buffer/.test(e.message));
    await assert.rejects(readback.read(buf, -1, 2), RangeError);
    await assert.rejects(readback.read(buf, 0, 0), /read back 0 values/);
    // still usable after refusals
    assert.equal((await readback.read(buf, 0, 16)).length, 16);
  } finally {
    buf.destroy();
  }
});
