/**
 * How the SDK runs `@mlc-ai/web-xgrammar`'s file. The package ships one rollup UMD bundle (emscripten glue
 * + the wasm as base64) under `"type": "module"`, so neither Node's ESM loader (the file uses `require`)
 * nor a browser module Worker (no `importScripts`) can load it as published. Both paths therefore evaluate
 * its text as a CommonJS factory: Node here (library.ts), browsers through dist/vendor/xgrammar.js, which
 * scripts/vendor-xgrammar.mjs writes from the same patched text.
 *
 * The one patch: the bundle calls its emscripten factory as `Module()`, so xgrammar's fatal messages
 * ("[FATAL] json_schema_converter.cc:902: Unsupported type ...") go to console.error and the thrown error
 * only says "Aborted()". Passing a module argument with `printErr` lets the grammar layer report the
 * real reason (and name the keyword) instead.
 */

/** The call the patch rewrites (rollup's output of web-xgrammar 0.1.27's `asyncInitBinding`). */
const MODULE_CALL = "binding = await Module();";

/** Name of the factory parameter that carries the emscripten module argument ({printErr, print}). */
export const MODULE_ARG = "__hearthXgrammarModuleArg";

/** The package text with `Module()` given {@link MODULE_ARG}; throws when the bundle is not the expected one. */
export function patchXgrammarSource(source: string): string {
  const count = source.split(MODULE_CALL).length - 1;
  if (!source.startsWith("(function (global, factory) {") || count !== 1) {
    throw new Error(
      `@mlc-ai/web-xgrammar: lib/index.js is not the expected rollup UMD bundle (found ${count} × "${MODULE_CALL}"); ` +
        "the SDK pins 0.1.27, check sdk/package.json",
    );
  }
  return source.replace(MODULE_CALL, `binding = await Module(${MODULE_ARG});`);
}
