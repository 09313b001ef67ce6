// The engine protocol without a GPU: typed errors across the boundary (serialize -> structured clone ->
// rebuild), and malformed protocol messages sent raw to serveEngine over a MessageChannel: each gets an
// error reply naming the problem and none is executed.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AbortError,
  deserializeError,
  InvalidMessageError,
  InvalidRequestError,
  registerErrorClass,
  RemoteError,
  serializeError,
} from "../src/errors/index.js";
import { ContextWindowExceededError } from "../src/decoder/kv-cache.js";
import { IntegrityError } from "../src/load/integrity.js";
import { PackageManifestError } from "../src/load/manifest.js";
import { serveEngine } from "../src/service/serve.js";
import { PROTOCOL, type EngineMessage } from "../src/service/protocol.js";
import { Connection } from "../src/client/connection.js";

/** serialize -> structuredClone (what postMessage does) -> deserialize. */
const roundTrip = (err: unknown): Error => deserializeError(structuredClone(serializeError(err)));

test("errors keep their class, message and fields across the boundary", () => {
  const cw = roundTrip(new ContextWindowExceededError(10, 300, 256));
  assert.ok(cw instanceof ContextWindowExceededError);
  assert.ok(cw instanceof Error);
  assert.equal(cw.name, "ContextWindowExceededError");
  assert.deepEqual([cw.seqLen, cw.appendLen, cw.maxTotalSeqLen], [10, 300, 256]);
  assert.match(cw.message, /context window of 256/);
  assert.match(cw.stack ?? "", /--- remote ---/);

  const bad = roundTrip(new InvalidRequestError("temperature: bad", "temperature", "invalid_type"));
  assert.ok(bad instanceof InvalidRequestError);
  assert.deepEqual([bad.param, bad.code, bad.message], ["temperature", "invalid_type", "temperature: bad"]);

  const integrity = roundTrip(new IntegrityError("params_shard_0.bin", "sha256", "aa", "bb", "tampered", { cause: new TypeError("inner") }));
  assert.ok(integrity instanceof IntegrityError);
  assert.equal(integrity.file, "params_shard_0.bin");
  assert.ok(integrity.cause instanceof TypeError);
  assert.equal((integrity.cause as Error).message, "inner");

  assert.ok(roundTrip(new AbortError("stop")) instanceof AbortError);
  assert.ok(roundTrip(new RangeError("r")) instanceof RangeError);
  // DOMException-like abort reasons and non-errors
  assert.equal(roundTrip({ name: "AbortError", message: "The operation was aborted." }).name, "AbortError");
  assert.equal(roundTrip("plain string").message, "plain string");

  // Unknown classes come back as RemoteError with the original name and fields.
  class PluginLostError extends Error {
    override readonly name = "PluginLostError";
    readonly reason = "unplugged";
  }
  const remote = roundTrip(new PluginLostError("gone"));
  assert.ok(remote instanceof RemoteError);
  assert.equal(remote.name, "PluginLostError");
  assert.deepEqual((remote as RemoteError).fields, { reason: "unplugged" });
  // ... or as the class once registered
  registerErrorClass("PluginLostError", PluginLostError);
  const typed = roundTrip(new PluginLostError("gone"));
  assert.ok(typed instanceof PluginLostError);
  assert.equal((typed as PluginLostError).reason, "unplugged");
  // fields that are not JSON (functions, class instances) are dropped, not thrown
  const odd = Object.assign(new Error("x"), { fn: () => 1, when: new Date(0), n: Number.NaN, nested: { a: [1, "b"] } });
  assert.deepEqual(serializeError(odd).fields, { n: null, nested: { a: [1, "b"] } });
});

/** A served engine (no model loaded) and a raw port to talk to it. */
function rawEngine() {
  const channel = new MessageChannel();
  const server = serveEngine(channel.port1, {});
  const replies: EngineMessage[] = [];
  const waiters: { id: number | null; resolve: (m: EngineMessage) => void }[] = [];
  channel.port2.addEventListener("message", (e: MessageEvent) => {
    const m = e.data as EngineMessage;
    if (m.type === "ready") return;
    const id = "id" in m ? m.id : null;
    const i = waiters.findIndex((w) => w.id === id);
    if (i >= 0) waiters.splice(i, 1)[0]?.resolve(m);
    else replies.push(m);
  });
  channel.port2.start();
  const reply = (id: number | null): Promise<EngineMessage> => {
    const have = replies.find((m) => ("id" in m ? m.id : null) === id);
    if (have !== undefined) {
      replies.splice(replies.indexOf(have), 1);
      return Promise.resolve(have);
    }
    return new Promise((resolve) => waiters.push({ id, resolve }));
  };
  const close = () => {
    server.close();
    channel.port1.close();
    channel.port2.close();
  };
  return { server, port: channel.port2, replies, reply, close };
}

test("malformed protocol messages get an InvalidMessageError reply and are never executed", async () => {
  const e = rawEngine();
  try {
    const cases: [unknown, number | null, RegExp][] = [
      ["just a string", null, /must be an object, got string/],
      [null, null, /must be an object, got null/],
      [[1, 2], null, /must be an object, got an array/],
      [{ id: 1 }, 1, /type/],
      [{ type: "explode", id: 2 }, 2, /type.*"explode"/],
      [{ type: "chat", request: { messages: [] } }, null, /missing required field "id"/],
      [{ type: "chat", id: "3", request: {} }, null, /id/],
      [{ type: "chat", id: 4.5, request: {} }, null, /id/],
      [{ type: "chat", id: 5, request: {}, priority: "high" }, 5, /unknown field "priority"/],
      [{ type: "load", id: 6 }, 6, /missing required field "model"/],
      [{ type: "load", id: 7, model: "file:///x/", options: { maxTotalSeqLen: "big" } }, 7, /options\.maxTotalSeqLen/],
      [{ type: "load", id: 8, model: "file:///x/", options: { evil: true } }, 8, /unknown field "options\.evil"/],
      [{ type: "abort", id: 9 }, 9, /missing required field "target"/],
      [{ type: "stats", id: 0 }, null, /id/],
    ];
    for (const [msg, id, pattern] of cases) {
      e.port.postMessage(msg);
      const r = await e.reply(id);
      assert.equal(r.type, "error", JSON.stringify(msg));
      if (r.type !== "error") continue;
      const err = deserializeError(r.error);
      assert.ok(err instanceof InvalidMessageError, `${JSON.stringify(msg)}: ${err.name}`);
      assert.match(err.message, pattern, JSON.stringify(msg));
    }
    // None of them ran: nothing loaded, no request counted.
    assert.equal(e.server.core.stats().loaded, false);
    assert.equal(e.server.core.stats().requests, 0);

    // A well-formed envelope with a bad request: InvalidRequestError for that id, before "accepted".
    e.port.postMessage({ type: "chat", id: 20, request: { messages: [{ role: "narrator", content: "x" }] } });
    const r = await e.reply(20);
    assert.equal(r.type, "error");
    if (r.type === "error") {
      const err = deserializeError(r.error);
      assert.ok(err instanceof InvalidRequestError);
      assert.equal(err.param, "messages[0].role");
    }
    // A valid request with no model: EngineNotLoadedError after acceptance.
    e.port.postMessage({ type: "chat", id: 21, request: { messages: [{ role: "user", content: "hi" }] } });
    assert.equal((await e.reply(21)).type, "accepted");
    const notLoaded = await e.reply(21);
    assert.equal(notLoaded.type === "error" ? notLoaded.error.name : notLoaded.type, "EngineNotLoadedError");
    // stats answers; abort of an unknown id says so
    e.port.postMessage({ type: "stats", id: 22 });
    const stats = await e.reply(22);
    assert.equal(stats.type === "result" && (stats.result as { loaded: boolean }).loaded, false);
    e.port.postMessage({ type: "abort", id: 23, target: 999 });
    const ab = await e.reply(23);
    assert.deepEqual(ab.type === "result" ? ab.result : ab, { found: false });
  } finally {
    e.close();
  }
});

test("client Connection: ready handshake, protocol mismatch, typed errors, close fails pending calls", async () => {
  const e = rawEngine();
  const conn = new Connection(e.port);
  try {
    await conn.ready;
    await assert.rejects(conn.call("chat", { request: { messages: 5 } }), (err: unknown) => err instanceof InvalidRequestError && err.param === "messages");
    // a load of a missing package fails with a typed loader error and leaves the engine unloaded
    await assert.rejects(conn.call("load", { model: "file:///nonexistent-hearth-package/" }), PackageManifestError);
    const pending = conn.call("stats", {});
    conn.close();
    await pending.then(
      () => {}, // answered before the close took effect
      (err: unknown) => assert.equal((err as Error).name, "WorkerError"),
    );
    await assert.rejects(conn.call("stats", {}), /closed/);
  } finally {
    e.close();
  }

  // A client attaching after the engine's first "ready" went by still connects (it says hello).
  const late = new MessageChannel();
  const lateServer = serveEngine(late.port1, {});
  const missed = await new Promise<unknown>((resolve) => {
    late.port2.addEventListener("message", (ev: MessageEvent) => resolve(ev.data), { once: true });
    late.port2.start();
  });
  assert.deepEqual(missed, { type: "ready", protocol: PROTOCOL });
  const lateConn = new Connection(late.port2);
  await lateConn.ready;
  assert.equal(((await lateConn.call("stats", {})) as { loaded: boolean }).loaded, false);
  lateConn.close();
  lateServer.close();
  late.port1.close();
  late.port2.close();

  // An engine of another protocol version is refused.
  const ch = new MessageChannel();
  const c2 = new Connection(ch.port2);
  ch.port1.postMessage({ type: "ready", protocol: "hearth-engine/999" });
  await assert.rejects(c2.ready, /hearth-engine\/999/);
  assert.notEqual(PROTOCOL, "hearth-engine/999");
  ch.port1.close();
  ch.port2.close();
});
