// "@hearth/sdk/client" bundled alone (esbuild, minified): what a page loads when it imports the client must
// be the client, the error classes and the protocol constant, not the engine (KV cache, GPU dispatch, package
// loader, valibot, tokenizers). Before the SDK's layering (issue 18) that static part was 109,136 bytes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CLIENT_STATIC_ALLOWED, measureClientBundle } from "../scripts/client-bundle.mjs";

test("the client's static bundle holds only client/, errors/ and service/protocol.ts, and stays small", async () => {
  const m = await measureClientBundle();
  const extra = m.staticModules.filter((p) => !CLIENT_STATIC_ALLOWED.test(p));
  assert.deepEqual(extra, [], "modules the client loads besides client/, errors/, service/protocol.ts");
  for (const engineModule of ["src/decoder/kv-cache.ts", "src/runtime/webgpu-dispatch.ts", "src/load/package.ts"]) {
    assert.ok(!m.staticModules.includes(engineModule), engineModule);
  }
  assert.ok(m.staticBytes < 32_000, `client static bundle is ${m.staticBytes} bytes`);
  // The inline transport's engine is still reachable (lazily): the split bundle holds much more.
  assert.ok(m.totalBytes > 10 * m.staticBytes, `split total ${m.totalBytes} bytes`);
});
