// The SDK's DecoderModel on a whole-model-window package (every layer slides, mlc-chat-config
// sliding_window_size > 0) in Node on Dawn WebGPU: the KV cache slides, so prefix reuse (truncate ->
// kv_state_popn) must be refused once the window has slid and still work before it. Prints one JSON
// line {tokens, truncateError, tokensAfterReset, shortTokens}:
//   tokens            greedy continuation of <ids> (longer than the window)
//   truncateError     the error truncate(4) gives after it (null if it wrongly succeeded)
//   tokensAfterReset  the same greedy run after reset()
//   shortTokens       prefill ids[0:10], truncate(4), then greedy(ids[4:8]): the cache then holds ids[0:8]
// Run from sdk/ (tsx resolves there): node --import tsx ../tests/support/sliding_window_session.mjs <pkg> <ids> <n>
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [pkg, idList, n] = process.argv.slice(2);
const sdk = new URL("../../sdk/", import.meta.url);
const { DecoderModel } = await import(new URL("src/decoder/model.ts", sdk).href);
const { fileFetch } = await import(new URL("test/support/file-fetch.ts", sdk).href);
const { installNodeGPU } = await import(new URL("test/support/node-gpu.ts", sdk).href);
let model;
try {
  const gpu = await installNodeGPU();
  model = await DecoderModel.load(pathToFileURL(resolve(pkg)).href + "/", {
    gpu,
    target: "webgpu",
    fetch: fileFetch,
    cache: "none",
    logger: () => {},
  });
  const ids = idList.split(",").map(Number);
  const tokens = await model.greedy(ids, Number(n));
  let truncateError = null;
  try {
    await model.truncate(4);
  } catch (err) {
    truncateError = String(err?.message ?? err);
  }
  await model.reset();
  const tokensAfterReset = await model.greedy(ids, Number(n));
  await model.reset();
  await model.prefill(ids.slice(0, 10));
  await model.truncate(4);
  const shortTokens = await model.greedy(ids.slice(4, 8), Number(n));
  console.log(JSON.stringify({ tokens, truncateError, tokensAfterReset, shortTokens, slidingWindow: model.config.sliding_window_size }));
} catch (err) {
  console.error(err?.stack ?? String(err));
  console.log(JSON.stringify({ error: String(err?.message ?? err) }));
  process.exitCode = 2;
} finally {
  await model?.dispose();
}
