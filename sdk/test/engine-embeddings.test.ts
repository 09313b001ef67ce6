// engine.embeddings.create end to end: createEngine({ model, embedder }) with the "inline" transport
// (an in-process MessageChannel: the same messages and validation as a Worker) on Dawn WebGPU, the
// tiny chat model and the f32 all-MiniLM-L6-v2 encoder in one engine. Checks the OpenAI response shape,
// vectors against the Python reference (sentence-transformers on the checkpoint, through the repo's
// .venv: cosine >= 0.9999), reported truncation, typed errors, malformed requests, abort, and an
// embeddings-only engine. Needs both compiled packages and the .venv (fails without them).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import {
  AbortError,
  createEngine,
  EngineNotLoadedError,
  InputTooLongError,
  InvalidMessageError,
  InvalidRequestError,
  type CreateEmbeddingResponse,
  type Engine,
} from "../src/client/index.js";
import { installNodeGPU } from "./support/node-gpu.js";
import { fileFetch } from "./support/file-fetch.js";
import { CHAT, PACKAGE_URL, PYTHON, REPO, requirePackage } from "./support/engine-fixtures.js";

const ENCODER = resolve(process.env["HEARTH_ENCODER_PACKAGE"] ?? join(REPO, "dist/all-MiniLM-L6-v2/q0f32"));
const ENCODER_URL = pathToFileURL(ENCODER).href + "/";
const LONG = "The engine reports every input it had to cut. ".repeat(40); // ~400 tokens > 256
// Five short texts: one b8_s32 call. The long one is embedded on its own (b1_s256): in the same request
// it would put all six in b8_s256, 8x the padded tokens (~1 min on lavapipe).
const TEXTS = ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply today.", "", "naïve café, 東京 🚀"];

/** sentence-transformers embeddings and token ids of `texts` (the checkpoint the package was compiled from). */
function referenceEmbeddings(texts: string[]): { emb: number[][]; ids: number[][] } {
  assert.ok(existsSync(PYTHON), `no ${PYTHON}: the Python reference needs the repo's venv (make setup)`);
  const code = [
    "import json, sys",
    "sys.path.insert(0, 'scripts')",
    "from build_packages import minilm_folder",
    "from hearth.eval.embedding_parity import reference_embeddings",
    "from hearth.models.encoder import read_pooling_config",
    "folder = minilm_folder()",
    "emb, ids = reference_embeddings(folder, json.loads(sys.stdin.read()), 256, read_pooling_config(folder))",
    "print(json.dumps({'emb': emb.tolist(), 'ids': ids}))",
  ].join("\n");
  const out = execFileSync(PYTHON, ["-c", code], { cwd: REPO, input: JSON.stringify(texts), encoding: "utf8", timeout: 300_000, maxBuffer: 64 << 20 });
  return JSON.parse(out.trim().split("\n").pop() as string) as { emb: number[][]; ids: number[][] };
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += (a[i] as number) * (b[i] as number);
    aa += (a[i] as number) ** 2;
    bb += (b[i] as number) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

function vectors(r: CreateEmbeddingResponse): number[][] {
  return r.data.map((d) => d.embedding as number[]);
}

let engine: Engine;
let gpu: GPU;
const phases: string[] = [];

before(async () => {
  requirePackage();
  assert.ok(existsSync(join(ENCODER, "hearth-manifest.json")), `no encoder package at ${ENCODER}: \`.venv/bin/python scripts/build_packages.py\` builds it`);
  gpu = await installNodeGPU();
  engine = await createEngine({
    model: PACKAGE_URL,
    // Dawn's lavapipe is a software adapter: force WebGPU for both models (the SDK would take wasm-cpu).
    target: "webgpu",
    embedder: { model: ENCODER_URL, target: "webgpu", packageOptions: { cache: "none" } },
    worker: "inline",
    runtime: { fetch: fileFetch, gpu, logger: () => {} },
    onProgress: (e) => phases.push(`${String(e["model"] ?? "chat")}:${e.phase}`),
    onUnroutedError: () => {}, // the raw malformed messages below are answered to ids the client never used
  });
});

after(async () => {
  await engine?.unload();
});

test("load -> chat -> embed in one engine; progress names the embedder's phases", async (t) => {
  assert.ok(phases.includes("chat:engine-ready") && phases.at(-1) === "embedder:engine-ready", phases.join(","));
  assert.equal(engine.embedder?.dim, 384);
  assert.equal(engine.embedder?.maxTokens, 256);
  const chat = await engine.chat.completions.create({ messages: CHAT, temperature: 0, max_tokens: 4, ignore_eos: true });
  assert.equal(chat.usage.completion_tokens, 4);
  const r = await engine.embeddings.create({ input: "hello world" });
  assert.equal(r.object, "list");
  assert.equal(r.model, engine.embedder?.model);
  assert.deepEqual(
    r.data.map((d) => [d.object, d.index, (d.embedding as number[]).length]),
    [["embedding", 0, 384]],
  );
  assert.deepEqual(r.usage, { prompt_tokens: 4, total_tokens: 4 }); // [CLS] hello world [SEP]
  assert.deepEqual(r.truncated, []);
  const stats = await engine.stats();
  t.diagnostic(`embedder load ${engine.embedder?.loadMs.toFixed(0)} ms; chat model load ${engine.model.loadMs.toFixed(0)} ms`);
  assert.equal(stats.embedder?.model, r.model);
  assert.ok((stats.encoder?.embed.texts ?? 0) >= 1);
});

test("vectors match sentence-transformers (cosine >= 0.9999, f32), in input order; truncation reported", async (t) => {
  const t0 = performance.now();
  const [r, long] = await Promise.all([engine.embeddings.create({ input: TEXTS }), engine.embeddings.create({ input: LONG })]);
  const ms = performance.now() - t0;
  const ref = referenceEmbeddings([...TEXTS, LONG]);
  assert.deepEqual(
    r.data.map((d) => d.index),
    TEXTS.map((_, i) => i),
  );
  const cos = [...vectors(r), ...vectors(long)].map((v, i) => cosine(v, ref.emb[i] as number[]));
  t.diagnostic(`${TEXTS.length} + 1 texts in ${ms.toFixed(0)} ms; min cosine vs sentence-transformers ${Math.min(...cos).toFixed(7)}`);
  cos.forEach((c, i) => {
    assert.ok(c >= 0.9999, `text ${i}: cosine ${c}`);
  });
  // usage counts the tokens embedded: the reference tokenizer's ids (truncated at 256 there too).
  assert.equal(
    r.usage.prompt_tokens,
    ref.ids.slice(0, TEXTS.length).reduce((n, ids) => n + ids.length, 0),
  );
  assert.deepEqual(r.truncated, []);
  // The long text was cut to 256 tokens, and the response says so.
  assert.equal(ref.ids[TEXTS.length]?.length, 256);
  assert.deepEqual(long.usage, { prompt_tokens: 256, total_tokens: 256 });
  assert.equal(long.truncated.length, 1);
  assert.deepEqual([long.truncated[0]?.index, long.truncated[0]?.max_tokens], [0, 256]);
  assert.ok((long.truncated[0]?.tokens ?? 0) > 256);
});

test("encoding_format base64: little-endian float32 bytes of the same vector", async () => {
  const [f, b] = await Promise.all([
    engine.embeddings.create({ input: ["base64 check"], encoding_format: "float" }),
    engine.embeddings.create({ input: ["base64 check"], encoding_format: "base64", model: engine.embedder?.model ?? "" }),
  ]);
  const bytes = Buffer.from(b.data[0]?.embedding as string, "base64");
  const decoded = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  assert.deepEqual(Array.from(decoded), f.data[0]?.embedding);
});

test("truncation: 'error' rejects with a typed InputTooLongError (fields intact across the boundary)", async () => {
  await assert.rejects(
    engine.embeddings.create({ input: ["short", LONG], truncation: "error" }),
    (e: unknown) => e instanceof InputTooLongError && e.indices[0] === 1 && e.maxTokens === 256 && (e.tokens[0] ?? 0) > 256,
  );
});

test("malformed embeddings requests are rejected, naming the field; nothing runs", async () => {
  const before = (await engine.stats()).encoder?.embed.requests;
  const bad: [unknown, string | null, RegExp][] = [
    [{}, "input", /missing required field "input"/],
    [{ input: [] }, "input", /at least one input/],
    [{ input: [1, 2, 3] }, "input", /token-id arrays are not supported/],
    [{ input: ["ok", 3] }, "input", /string/],
    [{ input: "x", encoding_format: "int8" }, "encoding_format", /encoding_format/],
    [{ input: "x", dimensions: 128 }, "dimensions", /384-dimensional/],
    [{ input: "x", model: "tiny-llama-trained" }, "model", /not the loaded text encoder/],
    [{ input: "x", max_tokens: 5 }, "max_tokens", /unknown field/],
    [{ input: Array.from({ length: 2049 }, () => "x") }, "input", /at most 2048/],
    ["just a string", null, /must be an object/],
  ];
  for (const [body, param, message] of bad) {
    await assert.rejects(
      engine.embeddings.create(body as never),
      (e: unknown) => e instanceof InvalidRequestError && e.param === param && message.test(e.message),
      JSON.stringify(body).slice(0, 80),
    );
  }
  assert.equal((await engine.stats()).encoder?.embed.requests, before);
  // Raw protocol messages that are malformed are answered with InvalidMessageError, never executed.
  const raw = async (msg: Record<string, unknown>): Promise<{ name: string }> =>
    new Promise((resolveReply) => {
      const ep = engine.endpoint;
      const onMessage = (e: MessageEvent): void => {
        const data = e.data as { id?: unknown; type?: string; error?: { name: string } };
        if (data.id !== msg["id"] || data.type !== "error") return;
        ep.removeEventListener("message", onMessage);
        resolveReply(data.error as { name: string });
      };
      ep.addEventListener("message", onMessage);
      ep.postMessage(msg);
    });
  assert.equal((await raw({ type: "embeddings", id: 900001, request: { input: "x" }, extra: 1 })).name, InvalidMessageError.name);
  assert.equal((await raw({ type: "load-embedder", id: 900002, model: "" })).name, InvalidMessageError.name);
  assert.equal((await raw({ type: "load-embedder", id: 900003, model: ENCODER_URL, options: { truncation: "drop" } })).name, InvalidMessageError.name);
});

test("AbortSignal: an aborted request rejects with AbortError and is never run", async () => {
  await assert.rejects(engine.embeddings.create({ input: "x" }, { signal: AbortSignal.abort() }), AbortError);
  const before = (await engine.stats()).encoder?.embed.texts ?? 0;
  // Queue a request behind a running one and abort it while it waits: the engine drops it.
  const ac = new AbortController();
  const first = engine.embeddings.create({ input: ["one"] });
  const second = engine.embeddings.create({ input: ["never", "embedded"] }, { signal: ac.signal });
  setTimeout(() => ac.abort(), 5);
  await assert.rejects(second, AbortError);
  await first;
  await engine.stats(); // ordered after the abort message
  assert.equal((await engine.stats()).encoder?.embed.texts, before + 1);
});

test("an embeddings-only engine: model is null, chat is refused, same vectors; createEngine needs model or embedder", async () => {
  const only = await createEngine({
    embedder: { model: ENCODER_URL, target: "webgpu" },
    worker: "inline",
    runtime: { fetch: fileFetch, gpu, logger: () => {} },
  });
  try {
    assert.equal(only.model, null);
    const r = await only.embeddings.create({ input: ["A man is playing a guitar."] });
    const main = await engine.embeddings.create({ input: ["A man is playing a guitar."] });
    assert.ok(cosine(vectors(r)[0] as number[], vectors(main)[0] as number[]) > 0.99999);
    await assert.rejects(only.chat.completions.create({ messages: CHAT }), EngineNotLoadedError);
  } finally {
    await only.unload();
  }
  await assert.rejects(createEngine({ worker: "inline" } as never), /give `model`.*`embedder`/);
});
