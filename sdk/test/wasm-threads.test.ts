// runtime/wasm-threads.ts without a compiled model: the memory-import parser on hand-built modules, and the
// clear errors where threads cannot run (no SharedArrayBuffer, a page that is not cross-origin isolated).
// The pool itself runs in tests/test_wasm_threads.py (a real TVM kernel and a decoder on worker_threads).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  createSharedMemory,
  importedMemoryLimits,
  isThreadedWasm,
  WasmThreadsUnavailableError,
  wasmThreadsUnavailableReason,
} from "../src/runtime/wasm-threads.js";

const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const str = (s: string): number[] => [s.length, ...[...s].map((c) => c.charCodeAt(0))];

/** A module whose import section holds a function import (type 0) and then env.memory with these limits. */
function moduleImportingMemory(flags: number, initial: number, maximum?: number): Uint8Array {
  const types = [0x01, 0x04, 0x01, 0x60, 0x00, 0x00]; // section 1: one type, () -> ()
  const fn = [...str("env"), ...str("f"), 0x00, 0x00];
  const mem = [...str("env"), ...str("memory"), 0x02, flags, initial, ...(maximum === undefined ? [] : [maximum])];
  const body = [0x02, ...fn, ...mem];
  return new Uint8Array([...HEADER, ...types, 0x02, body.length, ...body]);
}

test("importedMemoryLimits reads env.memory's limits and the shared flag", () => {
  const shared = moduleImportingMemory(0x03, 2, 10);
  assert.deepEqual(importedMemoryLimits(shared), { initial: 2, maximum: 10, shared: true });
  assert.equal(isThreadedWasm(shared), true);
  // a WebAssembly engine agrees that this is a valid module importing a shared memory
  const imports = WebAssembly.Module.imports(new WebAssembly.Module(shared as Uint8Array<ArrayBuffer>));
  assert.deepEqual(
    imports.map((i) => `${i.module}.${i.name}:${i.kind}`),
    ["env.f:function", "env.memory:memory"],
  );
  assert.deepEqual(importedMemoryLimits(moduleImportingMemory(0x00, 3)), { initial: 3, maximum: undefined, shared: false });
  assert.equal(isThreadedWasm(moduleImportingMemory(0x01, 3, 4)), false);
  assert.equal(importedMemoryLimits(new Uint8Array(HEADER)), undefined); // no imports: a single-thread build
  assert.throws(() => importedMemoryLimits(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])), /not a wasm module/);
});

test("createSharedMemory sizes the memory from the import", () => {
  const mem = createSharedMemory({ initial: 2, maximum: 10, shared: true });
  assert.ok(mem.buffer instanceof SharedArrayBuffer);
  assert.equal((mem.buffer as ArrayBufferLike).byteLength, 2 * 65536);
  assert.throws(() => createSharedMemory({ initial: 2, maximum: undefined, shared: true }), /not a Hearth wasm-cpu-mt build/);
});

test("without cross-origin isolation threads are refused with what to do", () => {
  const g = globalThis as { crossOriginIsolated?: boolean };
  const before = g.crossOriginIsolated;
  g.crossOriginIsolated = false;
  try {
    assert.match(wasmThreadsUnavailableReason() ?? "", /not cross-origin isolated.*Cross-Origin-Opener-Policy: same-origin.*Cross-Origin-Embedder-Policy/);
    assert.throws(
      () => createSharedMemory({ initial: 2, maximum: 10, shared: true }),
      (err: unknown) => err instanceof WasmThreadsUnavailableError && /single-thread "wasm-cpu" target/.test(err.message),
    );
  } finally {
    if (before === undefined) delete g.crossOriginIsolated;
    else g.crossOriginIsolated = before;
  }
  assert.equal(wasmThreadsUnavailableReason(), undefined); // Node: SharedArrayBuffer, no isolation flag
});
