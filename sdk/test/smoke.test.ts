// runCase: schema validation, the f16 skip path on an adapter without shader-f16, error reporting, and
// (when HEARTH_CASE_DIR points at a compiled case folder) a full end-to-end run on Dawn.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseSmokeCase, runCase } from "../src/testing/smoke.js";
import type { FetchLike } from "../src/runtime/tvm.js";
import { installNodeGPU } from "./support/node-gpu.js";
import { fileFetch } from "./support/file-fetch.js";

const CASE = {
  name: "mlp-f16",
  wasm: "mlp-f16.wasm",
  function: "forward",
  requires_f16: true,
  inputs: [{ name: "x", shape: [2, 2], dtype: "float16", data: [1, 2, 3, 4] }],
  params: ["fc1.weight"],
  expected: { shape: [2, 2], dtype: "float16", data: [0, 0, 0, 0] },
  tolerance: 1e-2,
};

test("parseSmokeCase validates case.json", () => {
  const c = parseSmokeCase(CASE);
  assert.equal(c.inputs[0]?.name, "x");
  assert.equal(c.requires_f16, true);
  assert.throws(() => parseSmokeCase({ ...CASE, wasm: "" }), /"wasm" must be a non-empty string/);
  assert.throws(() => parseSmokeCase({ ...CASE, tolerance: -1 }), /tolerance/);
  assert.throws(
    () => parseSmokeCase({ ...CASE, inputs: [{ shape: [2, 2], dtype: "float32", data: [1, 2, 3] }] }),
    /inputs\[0\]\.data has 3 values, shape \[2,2\] needs 4/,
  );
  assert.throws(() => parseSmokeCase({ ...CASE, expected: { shape: [1], dtype: "bfloat16", data: [0] } }), /expected\.dtype "bfloat16" is not supported/);
  assert.throws(() => parseSmokeCase({ ...CASE, params: [1] }), /"params" must be an array of strings/);
});

/** Dawn's GPU, but every adapter pretends it has no shader-f16 (like SwiftShader in Chromium). */
function gpuWithoutF16(gpu: GPU): GPU {
  return {
    requestAdapter: async (opts?: GPURequestAdapterOptions) => {
      const adapter = await gpu.requestAdapter(opts);
      if (adapter === null) return null;
      const features = new Set([...adapter.features].filter((f) => f !== "shader-f16"));
      return new Proxy(adapter, {
        get(target, prop) {
          if (prop === "features") return features;
          const v: unknown = Reflect.get(target, prop, target);
          return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    },
  } as unknown as GPU;
}

test("runCase skips an f16 case on an adapter without shader-f16, before fetching the wasm", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hearth-case-"));
  try {
    writeFileSync(join(dir, "case.json"), JSON.stringify(CASE));
    const fetched: string[] = [];
    const fetchFn: FetchLike = (url, init) => {
      fetched.push(url.slice(url.lastIndexOf("/") + 1));
      return fileFetch(url, init);
    };
    const gpu = gpuWithoutF16(await installNodeGPU());
    const result = await runCase(pathToFileURL(dir).href, { gpu, fetch: fetchFn });
    assert.ok("skipped" in result, JSON.stringify(result));
    assert.equal(result.skipped, "adapter has no shader-f16");
    assert.equal(result.adapter.shaderF16, false);
    assert.deepEqual(fetched, ["case.json"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("runCase reports a missing wasm with its URL", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hearth-case-"));
  try {
    writeFileSync(join(dir, "case.json"), JSON.stringify({ ...CASE, requires_f16: false }));
    const gpu = await installNodeGPU();
    await assert.rejects(runCase(pathToFileURL(dir).href, { gpu, fetch: fileFetch }), /GET file:.*mlp-f16\.wasm failed: HTTP 404/);
    await assert.rejects(runCase(pathToFileURL(join(dir, "nope")).href, { gpu, fetch: fileFetch }), /case\.json failed: HTTP 404/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const caseDir = process.env["HEARTH_CASE_DIR"];
test("end-to-end case on Dawn (HEARTH_CASE_DIR)", { skip: caseDir === undefined ? "set HEARTH_CASE_DIR=<case folder> to run" : false }, async (t) => {
  const gpu = await installNodeGPU();
  const result = await runCase(pathToFileURL(resolve(caseDir as string)).href, {
    gpu,
    fetch: fileFetch,
    logger: (m) => t.diagnostic(`tvmjs: ${m}`),
  });
  t.diagnostic(JSON.stringify(result));
  if ("skipped" in result) {
    t.skip(result.skipped);
    return;
  }
  assert.equal(result.ok, true, result.problems.join("; "));
  assert.ok(result.maxAbsErr <= result.tolerance);
});
