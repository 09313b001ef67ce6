// The main-thread client bundled alone (esbuild, minified, ESM, browser), as an app's bundler would do it.
// createEngine's worker: "inline" transport loads the engine with a dynamic import, so the bundle is split:
// `static` is what importing "@hearth/sdk/client" loads (the entry chunk and the chunks it imports
// statically); `total` adds the lazily loaded engine. Used by check-client-bundle.mjs and test/client-bundle.test.ts.
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const SDK = fileURLToPath(new URL("..", import.meta.url));

/** Source modules the client may load at run time: itself, the error classes, the protocol constant. */
export const CLIENT_STATIC_ALLOWED = /^src\/(client\/|errors\/|service\/protocol\.ts$)/;

/**
 * @returns {Promise<{ staticBytes: number, staticModules: string[], totalBytes: number, unsplitBytes: number }>}
 */
export async function measureClientBundle() {
  const common = {
    absWorkingDir: SDK,
    entryPoints: ["src/client/index.ts"],
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    write: false,
    metafile: true,
    logLevel: "silent",
  };
  const split = await build({ ...common, splitting: true, outdir: "client-bundle" });
  const outputs = split.metafile.outputs;
  const entry = Object.keys(outputs).find((k) => outputs[k].entryPoint === "src/client/index.ts");
  if (entry === undefined) throw new Error("client-bundle: esbuild produced no entry chunk for src/client/index.ts");
  const seen = new Set();
  const stack = [entry];
  while (stack.length > 0) {
    const out = stack.pop();
    if (seen.has(out)) continue;
    seen.add(out);
    for (const imp of outputs[out].imports) if (imp.kind === "import-statement") stack.push(imp.path);
  }
  let staticBytes = 0;
  const staticModules = [];
  for (const out of seen) {
    staticBytes += outputs[out].bytes;
    staticModules.push(...Object.keys(outputs[out].inputs));
  }
  const totalBytes = Object.entries(outputs)
    .filter(([k]) => k.endsWith(".js"))
    .reduce((n, [, o]) => n + o.bytes, 0);
  // The brief's one-file form (no splitting): esbuild inlines the dynamically imported engine.
  const whole = await build({ ...common, outfile: "client-bundle/client.js" });
  const unsplitBytes = whole.outputFiles.find((f) => f.path.endsWith(".js"))?.contents.byteLength ?? 0;
  return { staticBytes, staticModules: staticModules.sort(), totalBytes, unsplitBytes };
}
