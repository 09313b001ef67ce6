// load/device-fit.ts (and runtime/device-lost.ts) on Dawn with real packages: memory estimate vs the package, DeviceError on small
// limits, variant choice (options and a /models/ index), device loss -> DeviceLostError -> reload(), and
// the wasm-cpu build (tvm.cpu(), no WebGPU) giving the same greedy tokens as the webgpu build.
// Needs dist/tiny-llama-trained/q4f32_1 and the wasm-cpu test package; FAILS (does not skip) without them.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  checkDeviceFits,
  DeviceError,
  dtypeByteSize,
  estimateMemory,
  fetchModelIndex,
  pickVariant,
  VariantSelectionError,
  variantsFromModelIndex,
  type ModelIndexEntry,
} from "../src/load/device-fit.js";
import { DeviceLostError } from "../src/runtime/device-lost.js";
import { DecoderModel } from "../src/decoder/model.js";
import { requestGPU } from "../src/runtime/gpu.js";
import { parseChatConfig, type LoadProgress } from "../src/load/index.js";
import { fileFetch } from "./support/file-fetch.js";
import { CountingFetch, CPU_PACKAGE, CPU_PACKAGE_BUILD, PROMPT, REPO, WEBGPU_PACKAGE } from "./support/load-fixtures.js";
import { installNodeGPU } from "./support/node-gpu.js";

const URL_ = pathToFileURL(WEBGPU_PACKAGE).href + "/";
const CPU_URL = pathToFileURL(CPU_PACKAGE).href + "/";
let gpu: GPU;

before(async () => {
  assert.ok(existsSync(join(WEBGPU_PACKAGE, "hearth-manifest.json")), `no compiled package at ${WEBGPU_PACKAGE}: run \`make test\``);
  gpu = await installNodeGPU();
});

test("dtypeByteSize", () => {
  assert.equal(dtypeByteSize("float16"), 2);
  assert.equal(dtypeByteSize("uint32"), 4);
  assert.equal(dtypeByteSize("bfloat16"), 2);
  assert.equal(dtypeByteSize("int8"), 1);
  assert.equal(dtypeByteSize("bool"), 1);
  assert.equal(dtypeByteSize("float32x4"), 16);
});

test("estimateMemory agrees with the package: weights = tensor-cache bytes, KV cache = 2·layers·kv_heads·head_dim·4 per token", () => {
  const config = parseChatConfig(JSON.parse(readFileSync(join(WEBGPU_PACKAGE, "mlc-chat-config.json"), "utf8")));
  const tc = JSON.parse(readFileSync(join(WEBGPU_PACKAGE, "tensor-cache.json"), "utf8")) as { records: { records: { name: string; nbytes: number }[] }[] };
  const nbytes = new Map(tc.records.flatMap((s) => s.records.map((r) => [r.name, r.nbytes] as const)));
  const want = config.params.reduce((n, p) => n + (nbytes.get(p.name) ?? NaN), 0);
  const est = estimateMemory(config);
  assert.equal(est.weightsBytes, want);
  assert.equal(est.computeDtype, "float32");
  const mc = config.raw["model_config"] as Record<string, number>;
  const perToken = 2 * mc["num_hidden_layers"]! * mc["num_key_value_heads"]! * mc["head_dim"]! * 4; // hearth.models.kv_cache_bytes_per_token
  assert.ok(est.kvCache !== null);
  assert.equal(est.kvCache.pages, Math.ceil(config.context_window_size / 16) + 1);
  assert.equal(est.kvCache.bytes, perToken * est.kvCache.pages * 16);
  assert.equal(est.maxTotalSeqLen, config.context_window_size);
  assert.ok(est.totalBytes > est.weightsBytes + est.kvCache.bytes);
  const biggest = config.params.reduce((a, p) => Math.max(a, p.shape.reduce((x, y) => x * y, 1) * dtypeByteSize(p.dtype)), 0);
  assert.equal(est.largestParam.bytes, biggest);
  // A shorter context shrinks the KV cache.
  assert.ok((estimateMemory(config, { maxTotalSeqLen: 64 }).kvCache?.bytes ?? 0) < est.kvCache.bytes);
  // And fits generous limits.
  checkDeviceFits(est, { maxStorageBufferBindingSize: 128 << 20, maxBufferSize: 256 << 20 });
});

test("DeviceError names the limit and the shortfall (fake adapter limits), before the weights download; a caller's device stays usable", async () => {
  const config = parseChatConfig(JSON.parse(readFileSync(join(WEBGPU_PACKAGE, "mlc-chat-config.json"), "utf8")));
  const est = estimateMemory(config);
  const limits = { maxStorageBufferBindingSize: est.largestParam.bytes - 1000, maxBufferSize: 1 << 30 };
  const f = new CountingFetch();
  const h = await requestGPU({ gpu });
  await assert.rejects(
    DecoderModel.load(URL_, { device: h.device, fetch: f.fetch, logger: () => {}, cache: "none", deviceCheck: { limits } }),
    (err: unknown) => {
      assert.ok(err instanceof DeviceError, String(err));
      assert.equal(err.limit, "maxStorageBufferBindingSize");
      assert.equal(err.needed, est.largestParam.bytes);
      assert.equal(err.available, est.largestParam.bytes - 1000);
      assert.equal(err.shortBy, 1000);
      assert.match(
        err.message,
        new RegExp(`weight ${est.largestParam.name.replace(/\./g, "\\.")} needs .* but maxStorageBufferBindingSize is .*short by 1000 B`),
      );
      return true;
    },
  );
  assert.deepEqual(f.files(), ["hearth-manifest.json", "mlc-chat-config.json"]);
  const state = await Promise.race([h.device.lost.then(() => "lost"), new Promise((r) => setTimeout(() => r("alive"), 50))]);
  assert.equal(state, "alive");
  h.device.destroy();
  // The KV cache layer vs maxBufferSize: a long context on a small limit.
  const kvLayer = est.kvCache?.perLayerBytes ?? 0;
  await assert.rejects(
    DecoderModel.load(URL_, {
      gpu,
      target: "webgpu",
      fetch: fileFetch,
      logger: () => {},
      cache: "none",
      deviceCheck: { limits: { maxBufferSize: kvLayer - 1 } },
    }),
    (err: unknown) =>
      err instanceof DeviceError && err.problems.some((p) => p.limit === "maxBufferSize" && p.what === "KV cache (one layer)" && p.shortBy === 1),
  );
  // A budget on the total.
  await assert.rejects(
    DecoderModel.load(URL_, { gpu, target: "webgpu", fetch: fileFetch, logger: () => {}, cache: "none", deviceCheck: { memoryBudgetBytes: 1 << 20 } }),
    { name: "DeviceError", limit: "memoryBudget" },
  );
  // maxTotalSeqLen reaches the check: a context that fits nothing less than its KV layer.
  const short = estimateMemory(config, { maxTotalSeqLen: 32 });
  const m = await DecoderModel.load(URL_, {
    gpu,
    target: "webgpu",
    fetch: fileFetch,
    logger: () => {},
    cache: "none",
    maxTotalSeqLen: 32,
    deviceCheck: { limits: { maxBufferSize: Math.max(short.largestParam.bytes, short.kvCache?.perLayerBytes ?? 0, short.largestBufferBytes) } },
  });
  assert.equal(m.loadInfo.memory.maxTotalSeqLen, 32);
  await m.dispose();
});

test("pickVariant / model index: f16 needs shader-f16; CPU prefers f32", async () => {
  assert.equal(pickVariant(["q4f16_1", "q4f32_1"], { shaderF16: true }), "q4f16_1");
  assert.equal(pickVariant(["q4f16_1", "q4f32_1"], { shaderF16: false }), "q4f32_1");
  assert.equal(pickVariant(["q4f16_1", "q4f32_1"], { shaderF16: true, cpu: true }), "q4f32_1");
  assert.throws(() => pickVariant(["q4f16_1", "q0f16"], { shaderF16: false }), VariantSelectionError);
  const index: ModelIndexEntry[] = [
    {
      model_id: "tiny-llama-trained",
      quantization: "q4f32_1",
      url: "https://x.test/models/tiny-llama-trained/q4f32_1/",
      bytes: 1,
      targets: { webgpu: "a", "wasm-cpu": "b" },
    },
    { model_id: "tiny-llama-trained", quantization: "q4f16_1", url: "https://x.test/models/tiny-llama-trained/q4f16_1/", bytes: 1, targets: { webgpu: "c" } },
    { model_id: "other", quantization: "q4f16_1", url: "https://x.test/models/other/q4f16_1/", bytes: 1, targets: { webgpu: "d" } },
  ];
  assert.deepEqual(variantsFromModelIndex(index, "tiny-llama-trained"), {
    modelUrl: "https://x.test/models/tiny-llama-trained/",
    variants: ["q4f16_1", "q4f32_1"],
  });
  assert.deepEqual(variantsFromModelIndex(index, "tiny-llama-trained", { target: "wasm-cpu" }).variants, ["q4f32_1"]);
  assert.throws(() => variantsFromModelIndex(index, "absent"), VariantSelectionError);
  // fetchModelIndex resolves relative URLs (hearth serve answers "/models/<model>/<quant>/").
  const served = index.map((e) => ({ ...e, url: new URL(e.url).pathname }));
  const fakeFetch: typeof fileFetch = async () => new Response(JSON.stringify(served));
  const fetched = await fetchModelIndex("https://x.test/models/", fakeFetch);
  assert.equal(fetched[0]?.url, "https://x.test/models/tiny-llama-trained/q4f32_1/");
});

test("variants option on dist/tiny-llama-trained: picks q4f16_1 with shader-f16, else q4f32_1", async () => {
  const dist = pathToFileURL(join(REPO, "dist/tiny-llama-trained")).href;
  const haveF16 = existsSync(join(REPO, "dist/tiny-llama-trained/q4f16_1/hearth-manifest.json"));
  const h = await requestGPU({ gpu });
  const expected = h.info.shaderF16 && haveF16 ? "q4f16_1" : "q4f32_1";
  const variants = haveF16 ? ["q4f16_1", "q4f32_1"] : ["q4f32_1"];
  const m = await DecoderModel.load(dist, { device: h.device, fetch: fileFetch, logger: () => {}, cache: "none", variants });
  assert.equal(m.loadInfo.variant, expected);
  assert.equal(m.config.quantization, expected);
  assert.equal((await m.greedy(PROMPT, 4)).length, 4);
  await m.dispose();
});

test("device.lost (device.destroy() on Dawn) -> DeviceLostError callback, calls reject, reload() works", async (t) => {
  const reference = await (async () => {
    const m = await DecoderModel.load(URL_, { gpu, target: "webgpu", fetch: fileFetch, logger: () => {}, cache: "none" });
    try {
      return await m.greedy(PROMPT, 12);
    } finally {
      await m.dispose();
    }
  })();
  const h = await requestGPU({ gpu });
  let lost: DeviceLostError | undefined;
  let seen: () => void = () => {};
  const lostSeen = new Promise<void>((resolve) => (seen = resolve));
  const errors: unknown[] = [];
  const origError = console.error;
  console.error = (...args: unknown[]) => errors.push(args); // tvmjs logs "Device lost, calling Instance.dispose()"
  try {
    const m = await DecoderModel.load(URL_, {
      device: h.device,
      gpu,
      fetch: fileFetch,
      logger: () => {},
      cache: "none",
      onDeviceLost: (err) => {
        lost = err;
        seen();
      },
    });
    assert.deepEqual(await m.greedy(PROMPT, 12), reference);
    h.device.destroy(); // what a driver reset / GPU process crash looks like to the page
    await lostSeen;
    assert.ok(lost instanceof DeviceLostError);
    assert.equal(lost.reason, "destroyed");
    assert.equal(m.deviceLost, lost);
    await assert.rejects(m.greedy(PROMPT, 2), (err: unknown) => err === lost);
    await assert.rejects(m.reset(), DeviceLostError);
    const t0 = performance.now();
    const again = await m.reload();
    t.diagnostic(`reload after device loss: ${(performance.now() - t0).toFixed(0)} ms`);
    assert.notEqual(again, m);
    assert.deepEqual(await again.greedy(PROMPT, 12), reference);
    await m.dispose(); // idempotent, no crash on the lost runtime
    await again.dispose();
    // Our own dispose is not reported as a loss.
    const calm = await DecoderModel.load(URL_, {
      gpu,
      target: "webgpu",
      fetch: fileFetch,
      logger: () => {},
      cache: "none",
      onDeviceLost: () => assert.fail("dispose is not a loss"),
    });
    await calm.dispose();
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    console.error = origError;
  }
});

test("wasm-cpu build: tvm.cpu() (no WebGPU) gives the same greedy tokens as the webgpu build", async (t) => {
  assert.ok(
    existsSync(join(CPU_PACKAGE, "hearth-manifest.json")),
    `no wasm-cpu test package at ${CPU_PACKAGE}; build it (from the repo root) with:\n  ${CPU_PACKAGE_BUILD}`,
  );
  const manifest = JSON.parse(readFileSync(join(CPU_PACKAGE, "hearth-manifest.json"), "utf8")) as { targets: Record<string, string> };
  assert.ok("wasm-cpu" in manifest.targets && "webgpu" in manifest.targets, JSON.stringify(manifest.targets));
  const gpuModel = await DecoderModel.load(CPU_URL, { gpu, target: "webgpu", fetch: fileFetch, logger: () => {}, cache: "none" });
  const events: LoadProgress[] = [];
  const t0 = performance.now();
  const cpuModel = await DecoderModel.load(CPU_URL, {
    target: "wasm-cpu",
    fetch: fileFetch,
    logger: () => {},
    cache: "none",
    onProgress: (e) => events.push(e),
  });
  const cpuLoadMs = performance.now() - t0;
  try {
    assert.equal(gpuModel.loadInfo.deviceKind, "webgpu");
    assert.equal(cpuModel.loadInfo.deviceKind, "cpu");
    assert.equal(cpuModel.adapter, null);
    assert.equal(events.filter((e) => e.phase === "shader-compile").length, 0);
    const up = events.filter((e) => e.phase === "gpu-upload");
    assert.ok(up.length > 0 && up.every((e) => e.phase === "gpu-upload" && e.device === "cpu"));
    const fromGpu = await gpuModel.greedy(PROMPT, 32);
    const fromCpu = await cpuModel.greedy(PROMPT, 32);
    assert.deepEqual(fromCpu, fromGpu);
    const s = cpuModel.stats();
    const g = gpuModel.stats();
    // And logits agree closely (same kernels, different backends).
    await gpuModel.reset();
    await cpuModel.reset();
    const a = await gpuModel.prefill(PROMPT);
    const b = await cpuModel.prefill(PROMPT);
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs((a[i] as number) - (b[i] as number)));
    assert.ok(maxDiff < 1e-3, `max |logit diff| ${maxDiff}`);
    t.diagnostic(
      `wasm-cpu: load ${cpuLoadMs.toFixed(0)} ms; prefill ${s.prefill.tokensPerSec.toFixed(0)} tok/s, decode ${s.decode.tokensPerSec.toFixed(1)} tok/s; ` +
        `webgpu (lavapipe) prefill ${g.prefill.tokensPerSec.toFixed(0)} tok/s, decode ${g.decode.tokensPerSec.toFixed(1)} tok/s; max |logit diff| ${maxDiff.toExponential(2)}`,
    );
  } finally {
    await gpuModel.dispose();
    await cpuModel.dispose();
  }
});
