/**
 * One process, one load: `node --import tsx test/support/load-child.ts <packageDir> <storeDir>` loads the
 * package on Dawn through a FileSystemArtifactStore, runs 8 greedy tokens and prints one JSON line:
 * {fetched: [file names], totalMs, fetchVerifyMs, cachedFiles, downloadedFiles, tokens}.
 * Used by load-package.test.ts for the "second process load is warm" check.
 */
import { pathToFileURL } from "node:url";
import { DecoderModel } from "../../src/decoder/model.js";
import { FileSystemArtifactStore } from "../../src/load/fs-store.js";
import { fileFetch } from "./file-fetch.js";
import { CountingFetch, PROMPT } from "./load-fixtures.js";
import { installNodeGPU } from "./node-gpu.js";

const [pkgDir, storeDir] = process.argv.slice(2);
if (pkgDir === undefined || storeDir === undefined) {
  console.error("usage: load-child.ts <packageDir> <storeDir>");
  process.exit(2);
}
const gpu = await installNodeGPU();
const f = new CountingFetch(fileFetch);
const t0 = performance.now();
const model = await DecoderModel.load(pathToFileURL(pkgDir).href + "/", {
  gpu,
  target: "webgpu", // lavapipe is a software adapter: force WebGPU
  fetch: f.fetch,
  cache: new FileSystemArtifactStore(storeDir),
  logger: () => {},
});
const loadMs = performance.now() - t0;
const tokens = await model.greedy(PROMPT, 8);
const s = model.stats().load;
console.log(
  JSON.stringify({
    fetched: f.files(),
    loadMs,
    totalMs: s.totalMs,
    fetchVerifyMs: s.fetchVerifyMs,
    cachedFiles: model.loadInfo.cache.cachedFiles,
    downloadedFiles: model.loadInfo.cache.downloadedFiles,
    tokens,
  }),
);
await model.dispose();
