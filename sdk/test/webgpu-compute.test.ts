// A real WGSL compute round trip on the Dawn device from requestGPU: proves the device executes work.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { installNodeGPU } from "./support/node-gpu.js";
import { requestGPU, type GPUHandle } from "../src/runtime/gpu.js";

let h: GPUHandle;
before(async () => {
  h = await requestGPU({ gpu: await installNodeGPU() });
});
after(() => h?.device.destroy());

async function runShader(device: GPUDevice, code: string, inputs: Uint8Array[], outBytes: number, workgroups: number): Promise<ArrayBuffer> {
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ code });
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  const buffers = inputs.map((data) => {
    const buf = device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
    new Uint8Array(buf.getMappedRange()).set(data);
    buf.unmap();
    return buf;
  });
  const out = device.createBuffer({ size: outBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const read = device.createBuffer({ size: outBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [...buffers, out].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(workgroups);
  pass.end();
  enc.copyBufferToBuffer(out, 0, read, 0, outBytes);
  device.queue.submit([enc.finish()]);
  const err = await device.popErrorScope();
  assert.equal(err, null, `WebGPU validation error: ${err?.message}`);
  await read.mapAsync(GPUMapMode.READ);
  const result = read.getMappedRange().slice(0);
  read.unmap();
  for (const b of [...buffers, out, read]) b.destroy();
  return result;
}

test("f32 add of two arrays on the GPU matches the CPU", async (t) => {
  const n = 1000; // not a multiple of the workgroup size: exercises the bounds check
  const a = Float32Array.from({ length: n }, (_, i) => i * 0.5 - 100);
  const b = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 3);
  const code = /* wgsl */ `
    @group(0) @binding(0) var<storage, read> a: array<f32>;
    @group(0) @binding(1) var<storage, read> b: array<f32>;
    @group(0) @binding(2) var<storage, read_write> c: array<f32>;
    @compute @workgroup_size(64)
    fn main(@builtin(global_invocation_id) id: vec3<u32>) {
      if (id.x < arrayLength(&c)) { c[id.x] = a[id.x] + b[id.x]; }
    }`;
  const t0 = performance.now();
  const out = new Float32Array(await runShader(h.device, code, [new Uint8Array(a.buffer), new Uint8Array(b.buffer)], n * 4, Math.ceil(n / 64)));
  t.diagnostic(`first round trip (compile + dispatch + readback): ${(performance.now() - t0).toFixed(1)} ms`);
  const t1 = performance.now();
  await runShader(h.device, code, [new Uint8Array(a.buffer), new Uint8Array(b.buffer)], n * 4, Math.ceil(n / 64));
  t.diagnostic(`second round trip: ${(performance.now() - t1).toFixed(1)} ms`);
  for (let i = 0; i < n; i++) {
    assert.equal(out[i], Math.fround((a[i] as number) + (b[i] as number)), `index ${i}`);
  }
});

test("f16 shader (enable f16) runs when the device has shader-f16", async (t) => {
  if (!h.device.features.has("shader-f16")) {
    t.skip("device has no shader-f16");
    return;
  }
  const n = 256;
  const a = Float32Array.from({ length: n }, (_, i) => i / 8);
  const code = /* wgsl */ `
    enable f16;
    @group(0) @binding(0) var<storage, read> a: array<f32>;
    @group(0) @binding(1) var<storage, read_write> c: array<f32>;
    @compute @workgroup_size(64)
    fn main(@builtin(global_invocation_id) id: vec3<u32>) {
      let x = f16(a[id.x]);
      c[id.x] = f32(x * x + f16(1.0));
    }`;
  const out = new Float32Array(await runShader(h.device, code, [new Uint8Array(a.buffer)], n * 4, n / 64));
  // i/8 is exact in f16; x*x+1 rounds to f16 (11-bit significand): relative error <= 2^-11.
  for (let i = 0; i < n; i++) {
    const want = (i / 8) ** 2 + 1;
    assert.ok(Math.abs((out[i] as number) - want) <= want * 2 ** -11, `index ${i}: ${out[i]} vs ${want}`);
  }
  assert.notEqual(out[255], (255 / 8) ** 2 + 1, "result should show f16 rounding, i.e. really ran in f16");
});
