/**
 * Module Worker entry: serves an {@link EngineCore} on the worker's global scope (see protocol.ts for
 * the protocol). Start it from the main thread with
 *
 *   new Worker(new URL("@hearth/sdk/worker", import.meta.url), { type: "module" })   // with a bundler
 *   new Worker("/path/to/sdk/dist/browser/engine-worker.js", { type: "module" })      // without one
 *
 * and hand the Worker to createEngine({ model, worker }). dist/browser/engine-worker.js is this file
 * bundled with its npm dependencies (scripts/bundle-worker.mjs), for pages that load the SDK unbundled.
 */
import { serveEngine } from "./serve.js";
import type { MessageEndpoint } from "./protocol.js";

const scope = globalThis as unknown as Partial<MessageEndpoint> & { document?: unknown };
if (typeof scope.postMessage !== "function" || typeof scope.addEventListener !== "function" || scope.document !== undefined) {
  throw new Error('@hearth/sdk/worker must run as a (module) Web Worker; in Node use createEngine({ worker: "inline" })');
}
serveEngine(scope as MessageEndpoint);
