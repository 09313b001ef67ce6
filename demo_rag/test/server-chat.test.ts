// The page's probe for the server's optional native API (src/server-chat.ts probeNativeApi), against the
// real `hearth serve` with and without --native-api: it asks /healthz, and requests /v1/models only when
// /healthz says the API is on, so a server without it never answers the page with a 404 (which the
// browser would log in the console on every load). Needs .venv/bin/hearth (make setup); fails without.
// Run: cd sdk && node --import tsx --test ../demo_rag/test/server-chat.test.ts
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { probeNativeApi } from "../src/server-chat.ts";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const HEARTH = join(REPO, ".venv/bin/hearth");

interface Server {
  origin: string;
  child: ChildProcess;
}

const servers: Server[] = [];
let dist: string;

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

async function startServer(flags: string[]): Promise<Server> {
  const port = await freePort();
  const child = spawn(HEARTH, ["serve", "--dist", dist, "--port", String(port), "--host", "127.0.0.1", ...flags], { stdio: "ignore" });
  const server = { origin: `http://127.0.0.1:${port}`, child };
  servers.push(server);
  const end = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${server.origin}/healthz`)).ok) return server;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`hearth serve exited with ${child.exitCode}`);
    if (Date.now() > end) throw new Error("hearth serve did not answer /healthz within 60 s");
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** probeNativeApi's result and the paths it requested (the real fetch, observed). */
async function probe(origin: string): Promise<{ result: Awaited<ReturnType<typeof probeNativeApi>>; paths: string[] }> {
  const paths: string[] = [];
  const realFetch = globalThis.fetch;
  globalThis.fetch = (input: string | URL | Request, init?: RequestInit) => {
    paths.push(new URL(input instanceof Request ? input.url : input).pathname);
    return realFetch(input, init);
  };
  try {
    return { result: await probeNativeApi(undefined, origin), paths };
  } finally {
    globalThis.fetch = realFetch;
  }
}

let plain: Server;
let native: Server;

before(async () => {
  dist = mkdtempSync(join(tmpdir(), "hearth-demo-probe-"));
  [plain, native] = await Promise.all([startServer([]), startServer(["--native-api"])]);
});

after(() => {
  for (const s of servers) s.child.kill();
  if (dist !== undefined) rmSync(dist, { recursive: true, force: true });
});

test("without --native-api: /healthz only, never /v1 (no 404 for the console); the API is reported off", async () => {
  const { result, paths } = await probe(plain.origin);
  assert.equal(result, null);
  assert.deepEqual(paths, ["/healthz"]);
});

test("with --native-api: /healthz, then /v1/models, whose list comes back", async () => {
  const { result, paths } = await probe(native.origin);
  assert.deepEqual(paths, ["/healthz", "/v1/models"]);
  assert.deepEqual(result, []); // an empty dist: the API is on, with no models
});

test("an unreachable server: null, quietly", async () => {
  const { result } = await probe(`http://127.0.0.1:${await freePort()}`);
  assert.equal(result, null);
});
