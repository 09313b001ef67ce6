// Run the tiny parallel kernel of tests/test_wasm_threads.py in Node through the SDK's instantiateRuntime
// (the worker pool of sdk/src/runtime/wasm-threads.ts on worker_threads) and print one JSON line:
// {y: [...], launches, workers, ms} or {error}. Run from sdk/ (tsx resolves there):
//   node --import tsx ../tests/support/wasm_threads_check.mjs <kernel.wasm> <threads> <rows> <cols> <repeats>
import { readFileSync } from "node:fs";

const [wasmPath, threadsArg, rowsArg, colsArg, repeatsArg] = process.argv.slice(2);
const sdk = new URL("../../sdk/", import.meta.url);
const { instantiateRuntime } = await import(new URL("src/runtime/instantiate.ts", sdk).href);
const rows = Number(rowsArg);
const cols = Number(colsArg);
let lib;
try {
  lib = await instantiateRuntime({ wasm: readFileSync(wasmPath), threads: Number(threadsArg), logger: () => {} });
  const tvm = lib.tvm;
  tvm.beginScope();
  const f = lib.vm.getFunction("main");
  const x = new Float32Array(rows * cols);
  for (let i = 0; i < x.length; i++) x[i] = ((i * 7919) % 1000) / 1000 - 0.5;
  const a = tvm.empty([rows, cols], "float32", tvm.cpu()).copyFrom(x);
  let b = f(a); // warm-up
  const t0 = performance.now();
  for (let r = 0; r < Number(repeatsArg); r++) b = f(a);
  const ms = (performance.now() - t0) / Number(repeatsArg);
  const raw = b.toRawBytes();
  const y = Array.from(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)));
  tvm.endScope();
  console.log(JSON.stringify({ y, ms, workers: lib.wasmThreads?.workers ?? 0, launches: lib.wasmThreads?.launches() ?? 0, workerTasks: lib.wasmThreads?.workerTasks() ?? 0 }));
} catch (err) {
  console.error(err?.stack ?? String(err));
  console.log(JSON.stringify({ error: String(err?.message ?? err) }));
  process.exitCode = 2;
} finally {
  lib?.dispose();
}
