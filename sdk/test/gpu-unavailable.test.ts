// requestGPU without WebGPU. This file never installs Dawn, so navigator.gpu is absent here
// (node --test runs each test file in its own process).
import { test } from "node:test";
import assert from "node:assert/strict";
import { requestGPU, WebGPUUnavailableError } from "../src/runtime/gpu.js";

test("requestGPU throws WebGPUUnavailableError(no-navigator-gpu) when navigator.gpu is absent", async () => {
  assert.equal((globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu, undefined);
  await assert.rejects(requestGPU(), (err: unknown) => {
    assert.ok(err instanceof WebGPUUnavailableError, `got ${String(err)}`);
    assert.equal(err.name, "WebGPUUnavailableError");
    assert.equal(err.reason, "no-navigator-gpu");
    assert.match(err.message, /^WebGPU is not available in this browser: navigator\.gpu is undefined/);
    assert.match(err.message, /--enable-unsafe-webgpu/);
    assert.match(err.message, /wasm-cpu build/);
    return true;
  });
});

test("requestGPU throws WebGPUUnavailableError(no-adapter) when requestAdapter returns null", async () => {
  const gpu = { requestAdapter: async () => null } as unknown as GPU;
  await assert.rejects(requestGPU({ gpu }), (err: unknown) => {
    assert.ok(err instanceof WebGPUUnavailableError);
    assert.equal(err.reason, "no-adapter");
    assert.match(err.message, /no GPU adapter was found/);
    return true;
  });
});

test("requestGPU wraps a throwing requestAdapter", async () => {
  const boom = new Error("driver exploded");
  const gpu = {
    requestAdapter: async () => {
      throw boom;
    },
  } as unknown as GPU;
  await assert.rejects(requestGPU({ gpu }), (err: unknown) => {
    assert.ok(err instanceof WebGPUUnavailableError);
    assert.equal(err.reason, "no-adapter");
    assert.equal(err.cause, boom);
    assert.match(err.message, /driver exploded/);
    return true;
  });
});
