// Writes dist/browser/engine-worker.js: the engine's module Worker entry (dist/engine/worker.js) bundled
// with its npm dependencies (@huggingface/tokenizers, @huggingface/jinja, valibot), for pages that load
// the SDK without a bundler. Browsers cannot resolve bare specifiers such as "valibot" (and module
// Workers have no import maps), so raw dist/ can run the engine only through this file.
//
// What stays outside the bundle: tvmjs, which tvm.ts imports at run time from "../vendor/tvmjs.js"
// relative to the importing module. This bundle sits one folder below dist/, like dist/engine/, so the
// same relative URL reaches dist/vendor/tvmjs.js (written by vendor-tvmjs.mjs).
//
// With a bundler (Vite, webpack, esbuild), import "@hearth/sdk/worker" from your own worker file instead:
// the bundler resolves the same dependencies from node_modules and dedupes them with your app's.
import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const entry = fileURLToPath(new URL("../dist/engine/worker.js", import.meta.url));
const out = fileURLToPath(new URL("../dist/browser/engine-worker.js", import.meta.url));
if (!existsSync(entry)) throw new Error(`bundle-worker: ${entry} is missing (run tsc first)`);
mkdirSync(dirname(out), { recursive: true });
const result = await build({
  entryPoints: [entry],
  outfile: out,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  sourcemap: true,
  minify: true,
  legalComments: "eof",
  logLevel: "warning",
  metafile: true,
});
const inputs = Object.keys(result.metafile.inputs);
const deps = [...new Set(inputs.filter((p) => p.includes("node_modules/")).map((p) => p.replace(/.*node_modules\/((@[^/]+\/)?[^/]+).*/, "$1")))];
for (const want of ["@huggingface/tokenizers", "@huggingface/jinja", "valibot"]) {
  if (!deps.includes(want)) throw new Error(`bundle-worker: ${want} did not end up in the bundle (deps: ${deps.join(", ")})`);
}
const bytes = result.metafile.outputs[Object.keys(result.metafile.outputs).find((k) => k.endsWith("engine-worker.js"))].bytes;
console.log(`bundle-worker: wrote ${out} (${(bytes / 1024).toFixed(0)} KiB; bundled ${deps.join(", ")})`);
