/**
 * Loading xgrammar (`@mlc-ai/web-xgrammar`), the grammar engine WebLLM uses: JSON Schema, EBNF, regex and
 * structural tags compiled against a tokenizer's vocabulary into per-step token masks.
 *
 * Each call of an {@link XgrammarFactory} makes a fresh, independent instance (its own wasm memory). The
 * grammar layer needs that: xgrammar reports a bad grammar by aborting its wasm instance (emscripten
 * `abort()`), which leaves the instance's stack and heap unreliable, so the instance that aborted is
 * dropped and the next compile starts a new one.
 *
 * - Node: the package file is read and evaluated as a CommonJS factory (source.ts says why), reached
 *   through `process.getBuiltinModule`, so this file has no static `node:` import and stays browser-safe.
 * - Browser / module Worker: `dist/vendor/xgrammar.js` (scripts/vendor-xgrammar.mjs), imported relative to
 *   this module, or handed over with {@link provideXgrammar} (the prebuilt worker bundle does that).
 */
import type * as Xg from "@mlc-ai/web-xgrammar";
import { MODULE_ARG, patchXgrammarSource } from "./source.js";
import { type NodeProcessLike, nodeProcess } from "../platform/node.js";

/** xgrammar's exports, as typed by the package. */
export type XgrammarModule = typeof Xg;

/** Where an instance's emscripten output goes (xgrammar prints its fatal errors there). */
export interface XgrammarHooks {
  printErr(text: string): void;
  print?(text: string): void;
}

export type XgrammarFactory = (hooks: XgrammarHooks) => XgrammarModule;

function checkModule(mod: unknown, from: string): XgrammarModule {
  const m = mod as Partial<XgrammarModule> | null | undefined;
  if (typeof m?.GrammarCompiler?.createGrammarCompiler !== "function" || typeof m.TokenizerInfo?.createTokenizerInfo !== "function") {
    throw new Error(`xgrammar loaded from ${from} does not export GrammarCompiler / TokenizerInfo`);
  }
  return m as XgrammarModule;
}

type Require = ((id: string) => unknown) & { resolve(id: string): string };

function nodeFactory(proc: NodeProcessLike): XgrammarFactory {
  if (typeof proc.getBuiltinModule !== "function") {
    throw new Error(`@hearth/sdk needs Node >= 20.16 (process.getBuiltinModule); this is Node ${proc.versions?.node}`);
  }
  const { createRequire } = proc.getBuiltinModule("node:module") as { createRequire(url: string): Require };
  const { readFileSync } = proc.getBuiltinModule("node:fs") as { readFileSync(path: string, enc: "utf8"): string };
  const file = createRequire(import.meta.url).resolve("@mlc-ai/web-xgrammar");
  const source = patchXgrammarSource(readFileSync(file, "utf8"));
  const requireFromPackage = createRequire(file);
  // Node only (tests, scripts): browsers take the vendored ES module, never this eval.
  const run = new Function("exports", "module", "require", "__filename", "define", MODULE_ARG, source) as (...args: unknown[]) => void;
  return (hooks) => {
    const exports: Record<string, unknown> = {};
    run.call(undefined, exports, { exports }, requireFromPackage, file, undefined, hooks);
    return checkModule(exports, file);
  };
}

async function browserFactory(): Promise<XgrammarFactory> {
  const url = new URL("../vendor/xgrammar.js", import.meta.url).href;
  let mod: { createXgrammar?: unknown };
  try {
    mod = (await import(/* @vite-ignore */ url)) as { createXgrammar?: unknown };
  } catch (err) {
    throw new Error(`Cannot import the xgrammar ES module wrapper at ${url} (run \`npm run build\` in sdk/, which writes dist/vendor/xgrammar.js)`, {
      cause: err,
    });
  }
  if (typeof mod.createXgrammar !== "function") throw new Error(`${url} does not export createXgrammar`);
  const create = mod.createXgrammar as (hooks: XgrammarHooks) => unknown;
  return (hooks) => checkModule(create(hooks), url);
}

let factoryPromise: Promise<XgrammarFactory> | undefined;

/**
 * Use `create` (the vendored module's `createXgrammar`) instead of importing `../vendor/xgrammar.js`; the
 * prebuilt worker bundle calls this so it runs wherever a bundler copies it.
 */
export function provideXgrammar(create: (hooks: XgrammarHooks) => unknown): void {
  factoryPromise = Promise.resolve((hooks: XgrammarHooks) => checkModule(create(hooks), "provideXgrammar()"));
}

/** The factory of xgrammar instances, loaded once per realm. */
export function loadXgrammar(): Promise<XgrammarFactory> {
  factoryPromise ??= (async () => {
    const proc = nodeProcess();
    return proc !== undefined ? nodeFactory(proc) : browserFactory();
  })().catch((err: unknown) => {
    factoryPromise = undefined;
    throw err;
  });
  return factoryPromise;
}
