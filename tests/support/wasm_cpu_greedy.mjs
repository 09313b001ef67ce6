// Greedy tokens of a decoder package's wasm-cpu build in Node (the SDK's DecoderModel with
// target "wasm-cpu": tvm.cpu(), no WebGPU); prints one JSON line {tokens, quantization}.
// sdk/scripts/generate.mjs always takes the webgpu build; this is its CPU counterpart for tests.
// Run from sdk/ (tsx resolves there): node --import tsx ../tests/support/wasm_cpu_greedy.mjs <pkg> <ids> <n>
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [pkg, idList, n] = process.argv.slice(2);
const sdk = new URL("../../sdk/", import.meta.url);
const { DecoderModel } = await import(new URL("src/decoder/model.ts", sdk).href);
const { fileFetch } = await import(new URL("test/support/file-fetch.ts", sdk).href);
let model;
try {
  model = await DecoderModel.load(pathToFileURL(resolve(pkg)).href + "/", { target: "wasm-cpu", fetch: fileFetch, cache: "none", logger: () => {} });
  const tokens = await model.greedy(idList.split(",").map(Number), Number(n));
  console.log(JSON.stringify({ tokens, quantization: model.config.quantization }));
} catch (err) {
  console.error(err?.stack ?? String(err));
  console.log(JSON.stringify({ error: String(err?.message ?? err) }));
  process.exitCode = 2;
} finally {
  await model?.dispose();
}
