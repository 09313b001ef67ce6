// Greedy tokens of a decoder package's wasm-cpu or wasm-cpu-mt build in Node (the SDK's DecoderModel on
// tvm.cpu(); -mt with `threads` worker_threads), and the decode speed of those tokens; prints one JSON line
// {tokens, quantization, target, workers, decode_tok_s}. Run from sdk/ (tsx resolves there):
//   node --import tsx ../tests/support/wasm_cpu_mt_greedy.mjs <pkg> <wasm-cpu|wasm-cpu-mt|auto> <threads> <ids> <n>
// "auto": no target, as an app loads; Node has no WebGPU here, so the loader picks the CPU build itself.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [pkg, target, threads, idList, n] = process.argv.slice(2);
const sdk = new URL("../../sdk/", import.meta.url);
const { DecoderModel } = await import(new URL("src/decoder/model.ts", sdk).href);
const { fileFetch } = await import(new URL("test/support/file-fetch.ts", sdk).href);
// HEARTH_NO_SAB=1: a realm without SharedArrayBuffer, as on a page that is not cross-origin isolated.
if (process.env.HEARTH_NO_SAB === "1") delete globalThis.SharedArrayBuffer;
let model;
try {
  model = await DecoderModel.load(pathToFileURL(resolve(pkg)).href + "/", {
    target: target === "auto" ? undefined : target,
    threads: Number(threads),
    fetch: fileFetch,
    cache: "none",
    logger: () => {},
  });
  const ids = idList.split(",").map(Number);
  const pool = model["pkg"].lib.wasmThreads; // diagnostics: the worker pool, if any
  if (pool !== undefined && process.env.HEARTH_WASM_SPIN !== undefined) pool.setSpin(Number(process.env.HEARTH_WASM_SPIN));
  const launches0 = pool?.launches() ?? 0;
  const workerTasks0 = pool?.workerTasks() ?? 0;
  await model.greedy(ids, 2); // warm-up
  const t0 = performance.now();
  const tokens = await model.greedy(ids, Number(n));
  const ms = performance.now() - t0;
  const launches = (pool?.launches() ?? 0) - launches0;
  const workerTasks = (pool?.workerTasks() ?? 0) - workerTasks0;
  console.log(JSON.stringify({ tokens, quantization: model.config.quantization, target, threads: Number(threads), greedy_ms: ms, launches, workerTasks, loadedTarget: model["pkg"].target }));
} catch (err) {
  console.error(err?.stack ?? String(err));
  console.log(JSON.stringify({ error: String(err?.message ?? err) }));
  process.exitCode = 2;
} finally {
  await model?.dispose();
}
