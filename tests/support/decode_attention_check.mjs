// Run decode attention kernels (tests/test_decode_attention.py) on Dawn WebGPU (lavapipe in CI) and write their
// outputs. Run from sdk/ (tsx resolves there):
//   node --import tsx ../tests/support/decode_attention_check.mjs <kernels.wasm> <cases.json> <outDir> [--time N]
// cases.json: [{name, functions: [symbol...], dtype, B, Hqo, Hkv, D, maxPages, nnz, lengthInfoShape,
// rotaryMode, ropeScale, ropeTheta, smScale, dir}] with the inputs as raw little-endian files in `dir`
// (q, pages, indptr, values, length_info, k_rope, q_rope). Every function of a case is called on the same
// inputs; its output and lse are written to <outDir>/<name>.<symbol>.{output,lse}.bin. With --time N each
// function is also launched N more times and its GPU time per launch (timestamp queries) is printed.
// Prints one JSON line: {ok: true, gpuUsPerLaunch: {symbol: us}} or {error}.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [wasmPath, casesPath, outDir, ...rest] = process.argv.slice(2);
const timeRuns = rest[0] === "--time" ? Number(rest[1]) : 0;
const sdk = new URL("../../sdk/", import.meta.url);
const { installNodeGPU } = await import(new URL("test/support/node-gpu.ts", sdk).href);
const { requestGPU } = await import(new URL("src/runtime/gpu.ts", sdk).href);
const { instantiateRuntime } = await import(new URL("src/runtime/instantiate.ts", sdk).href);

let lib;
try {
  const gpu = await installNodeGPU();
  const { device } = await requestGPU({ gpu, timestampQuery: timeRuns > 0 });
  lib = await instantiateRuntime({ wasm: readFileSync(wasmPath), device, logger: () => {}, kernelTiming: timeRuns > 0 });
  const tvm = lib.tvm;
  const dev = tvm.webgpu();
  tvm.beginScope();
  const sys = tvm.systemLib();
  const cases = JSON.parse(readFileSync(casesPath, "utf8"));
  for (const c of cases) {
    tvm.beginScope();
    const load = (file, shape, dtype) => {
      const bytes = new Uint8Array(readFileSync(join(c.dir, file)));
      return tvm.empty(shape, dtype, dev).copyFromRawBytes(bytes);
    };
    const q = load("q", [c.B, c.Hqo, c.D], c.dtype);
    const pages = load("pages", [c.maxPages, 2, c.Hkv, 16, c.D], c.dtype);
    const indptr = load("indptr", [c.B + 1], "int32");
    const values = load("values", [c.nnz], "int32");
    const lengthInfo = load("length_info", c.lengthInfoShape, "int32");
    const kRope = load("k_rope", [c.B], "int32");
    const qRope = load("q_rope", [c.B], "int32");
    for (const symbol of c.functions) {
      const f = sys.getFunction(symbol);
      const output = tvm.empty([c.B, c.Hqo, c.D], c.dtype, dev);
      const lse = tvm.empty([c.B, c.Hqo], "float32", dev);
      const call = () =>
        f(
          q,
          pages,
          indptr,
          values,
          lengthInfo,
          kRope,
          qRope,
          output,
          lse,
          tvm.scalar(c.rotaryMode, "int32"),
          tvm.scalar(c.ropeScale, "float32"),
          tvm.scalar(c.ropeTheta, "float32"),
          tvm.scalar(c.smScale, "float32"),
        );
      call();
      for (const [name, t] of [
        ["output", output],
        ["lse", lse],
      ]) {
        const host = tvm.empty(t.shape, t.dtype, tvm.cpu()).copyFrom(t);
        await dev.sync();
        writeFileSync(join(outDir, `${c.name}.${symbol}.${name}.bin`), host.toRawBytes());
      }
      for (let i = 0; i < timeRuns; i++) call();
      if (timeRuns > 0) await dev.sync();
    }
    tvm.endScope();
  }
  tvm.endScope();
  const gpuUsPerLaunch = {};
  const gpuTime = lib.dispatchStats?.gpuTime;
  if (gpuTime !== undefined) {
    while (gpuTime.pendingReads > 0) await new Promise((r) => setTimeout(r, 10));
    for (const [name, t] of Object.entries(gpuTime.byKernel)) gpuUsPerLaunch[name] = { launches: t.launches, us: (1000 * t.totalMs) / t.launches };
  }
  console.log(JSON.stringify({ ok: true, gpuUsPerLaunch }));
} catch (err) {
  console.error(err?.stack ?? String(err));
  console.log(JSON.stringify({ error: String(err?.message ?? err) }));
  process.exitCode = 2;
} finally {
  lib?.dispose();
}
