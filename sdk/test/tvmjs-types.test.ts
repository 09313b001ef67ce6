// Compile-time contract (checked by `npm run typecheck`) plus a runtime check of the loaded module:
// tvmjs's own classes must still satisfy the minimal interfaces in src/runtime/tvmjs-types.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import type * as tvmjsTypes from "@mlc-ai/web-runtime";
import type { TvmInstance, TvmjsModule, TvmTensor, TvmVirtualMachine, TvmArtifactCache } from "../src/runtime/tvmjs-types.js";
import { loadTvmjs } from "../src/runtime/tvm.js";

type Assignable<From, To> = [From] extends [To] ? true : false;
const contract: [
  Assignable<tvmjsTypes.Instance, TvmInstance>,
  Assignable<tvmjsTypes.Tensor, TvmTensor>,
  Assignable<tvmjsTypes.VirtualMachine, TvmVirtualMachine>,
  Assignable<tvmjsTypes.ArtifactCacheTemplate, TvmArtifactCache>,
  Assignable<Pick<typeof tvmjsTypes, "instantiate" | "createPolyfillWASI">, TvmjsModule>,
] = [true, true, true, true, true];

test("tvmjs type contract holds (compile time)", () => {
  assert.deepEqual(contract, [true, true, true, true, true]);
});

test("loadTvmjs loads @mlc-ai/web-runtime in Node once and exposes instantiate/createPolyfillWASI", async () => {
  const a = await loadTvmjs();
  const b = await loadTvmjs();
  assert.equal(a, b);
  assert.equal(typeof a.instantiate, "function");
  const wasi = a.createPolyfillWASI();
  assert.equal(typeof wasi.start, "function");
  assert.equal(typeof wasi.imports, "object");
  // A second polyfill must still come from the same (cached) module object.
  assert.equal(typeof (await loadTvmjs()).createPolyfillWASI().start, "function");
});
