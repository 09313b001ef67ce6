// Writes dist/browser/engine-worker.js: the engine's module Worker entry (dist/service/worker.js) bundled
// with its npm dependencies (@huggingface/tokenizers, @huggingface/jinja, valibot), for pages that load
// the SDK without a bundler. Browsers cannot resolve bare specifiers such as "valibot" (and module
// Workers have no import maps), so raw dist/ can run the engine only through this file.
//
// tvmjs is in the bundle too: the entry below hands the vendored ES wrapper (dist/vendor/tvmjs.js, from
// vendor-tvmjs.mjs) to tvm.ts's provideTvmjs(), so the run-time import of "../vendor/tvmjs.js" relative
// to the module never happens. The file is self-contained: a bundler that copies it as an asset (Vite
// does, for createEngine's default `new URL("../browser/engine-worker.js", import.meta.url)`) moves it
// away from dist/vendor/, and a relative tvmjs URL would then point nowhere.
//
// With a bundler (Vite, webpack, esbuild), import "@hearth/sdk/worker" from your own worker file instead:
// the bundler resolves the same dependencies from node_modules and dedupes them with your app's.
import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const entry = fileURLToPath(new URL("../dist/service/worker.js", import.meta.url));
for (const name of ["tvmjs", "xgrammar"]) {
  const vendor = fileURLToPath(new URL(`../dist/vendor/${name}.js`, import.meta.url));
  if (!existsSync(vendor)) throw new Error(`bundle-worker: ${vendor} is missing (run vendor-${name}.mjs first)`);
}
const out = fileURLToPath(new URL("../dist/browser/engine-worker.js", import.meta.url));
if (!existsSync(entry)) throw new Error(`bundle-worker: ${entry} is missing (run tsc first)`);
mkdirSync(dirname(out), { recursive: true });
const result = await build({
  // worker.js only starts listening; tvmjs is first needed by a load message, after this module ran.
  stdin: {
    contents: [
      'import tvmjs from "../vendor/tvmjs.js";',
      'import { createXgrammar } from "../vendor/xgrammar.js";',
      'import { provideTvmjs } from "../runtime/tvm.js";',
      'import { provideXgrammar } from "../grammar/library.js";',
      'import "../service/worker.js";',
      "provideTvmjs(tvmjs);",
      "provideXgrammar(createXgrammar);",
    ].join("\n"),
    resolveDir: dirname(entry),
    sourcefile: "engine-worker-entry.js",
    loader: "js",
  },
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
  // tvmjs's and xgrammar's Node-only branches require() / import() these; they never run in a browser Worker.
  external: ["fs", "path", "perf_hooks", "ws", "module", "url"],
});
const inputs = Object.keys(result.metafile.inputs);
const deps = [...new Set(inputs.filter((p) => p.includes("node_modules/")).map((p) => p.replace(/.*node_modules\/((@[^/]+\/)?[^/]+).*/, "$1")))];
for (const want of ["@huggingface/tokenizers", "@huggingface/jinja", "valibot"]) {
  if (!deps.includes(want)) throw new Error(`bundle-worker: ${want} did not end up in the bundle (deps: ${deps.join(", ")})`);
}
if (!inputs.some((p) => p.endsWith("vendor/tvmjs.js"))) throw new Error("bundle-worker: tvmjs did not end up in the bundle");
if (!inputs.some((p) => p.endsWith("vendor/xgrammar.js"))) throw new Error("bundle-worker: xgrammar did not end up in the bundle");
const bytes = result.metafile.outputs[Object.keys(result.metafile.outputs).find((k) => k.endsWith("engine-worker.js"))].bytes;
console.log(`bundle-worker: wrote ${out} (${(bytes / 1024).toFixed(0)} KiB; bundled tvmjs, ${deps.join(", ")})`);
