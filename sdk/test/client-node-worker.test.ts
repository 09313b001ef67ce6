// createEngine() with a Node worker_threads Worker as the engine's thread (test/support/engine-node-worker.ts
// serves it on parentPort): greedy tokens equal the inline engine's, typed errors cross a real thread
// boundary, unload terminates the worker. Needs the compiled package (fails without it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { createEngine, InvalidRequestError, WorkerError } from "../src/client/index.js";
import { installNodeGPU } from "./support/node-gpu.js";
import { fileFetch } from "./support/file-fetch.js";
import { CHAT, PACKAGE_URL, requirePackage } from "./support/engine-fixtures.js";

/** A worker thread running the TypeScript entry through tsx (its loader is registered in the worker first). */
function engineWorker(): Worker {
  const tsx = import.meta.resolve("tsx/esm/api");
  const entry = new URL("./support/engine-node-worker.ts", import.meta.url).href;
  return new Worker(`import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`, { eval: true });
}

test("worker_threads transport: same greedy tokens as inline; typed errors; unload terminates the worker", async () => {
  requirePackage();
  const request = { messages: CHAT, temperature: 0, max_tokens: 16, ignore_eos: true, return_token_ids: true } as const;
  const worker = engineWorker();
  let exited = false;
  worker.on("exit", () => (exited = true));
  const threaded = await createEngine({ model: PACKAGE_URL, target: "webgpu", worker, terminateWorker: true });
  let threadedTokens: number[] | undefined;
  try {
    const r = await threaded.chat.completions.create(request);
    threadedTokens = r.choices[0]?.token_ids;
    const s = await threaded.chat.completions.create({ ...request, stream: true });
    let text = "";
    for await (const c of s) text += c.choices[0]?.delta.content ?? "";
    assert.equal(text, r.choices[0]?.message.content);
    await assert.rejects(
      threaded.chat.completions.create({ messages: [{ role: "user", content: 42 }] } as never),
      (err: unknown) => err instanceof InvalidRequestError && err.param === "messages[0].content",
    );
  } finally {
    await threaded.unload();
  }
  for (let i = 0; i < 100 && !exited; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(exited, "unload() terminated the worker it was told to");
  await assert.rejects(threaded.stats(), WorkerError);

  const gpu = await installNodeGPU();
  const inline = await createEngine({ model: PACKAGE_URL, target: "webgpu", worker: "inline", runtime: { fetch: fileFetch, gpu, logger: () => {} } });
  try {
    const r = await inline.chat.completions.create(request);
    assert.equal(threadedTokens?.length, 16);
    assert.deepEqual(r.choices[0]?.token_ids, threadedTokens);
  } finally {
    await inline.unload();
  }
});

test("worker_threads transport: a worker that fails to start rejects createEngine with WorkerError", async () => {
  const worker = new Worker("throw new Error('engine boot failed')", { eval: true });
  await assert.rejects(createEngine({ model: PACKAGE_URL, worker, terminateWorker: true }), (err: unknown) => {
    assert.ok(err instanceof WorkerError, String(err));
    assert.match(err.message, /engine boot failed/);
    return true;
  });
});
