// The engine in Chromium: createEngine() on the page (the SDK's client, unbundled from sdk/dist/client/),
// the model in a module Worker (sdk/dist/browser/engine-worker.js, the bundled worker entry), WebGPU on
// SwiftShader, the f32 package (SwiftShader has no shader-f16). Checks the streamed greedy chat against the
// non-stream result, typed errors across the Worker boundary, abort, and, when the Python venv exists,
// the generated tokens against hearth.native's greedy on the same prompt ids. One structured-output request
// (a JSON Schema through xgrammar, bundled into the worker) and a refused schema.
// The same engine also loads the f32 all-MiniLM-L6-v2 encoder (load -> chat -> embed in one Worker): the
// vectors are checked against sentence-transformers (cosine >= 0.9999) and typed embedding errors cross
// the boundary. A second load of the chat model on the same page measures the warm (Cache Storage) load.
// Run: (cd sdk && npm run build) && node --test tests/browser/engine.test.mjs
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openBrowser, REPO } from "./lib/harness.mjs";

const PACKAGE = process.env.HEARTH_ENGINE_PACKAGE ?? join(REPO, "dist", "tiny-llama-trained", "q4f32_1");
const PYTHON = join(REPO, ".venv", "bin", "python");
const ENCODER = process.env.HEARTH_ENCODER_PACKAGE ?? join(REPO, "dist", "all-MiniLM-L6-v2", "q0f32");
// Three texts: three b1_s32 calls (SwiftShader runs the bigger buckets slowly).
const EMBED_TEXTS = ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply today."];
const HARNESS = fileURLToPath(new URL("./page/engine-harness/", import.meta.url));
const MAX_TOKENS = 32;
const MESSAGES = [
  { role: "system", content: "You answer questions about the Python standard library." },
  { role: "user", content: "How do I read a file line by line?" },
];

/** hearth.native greedy continuation of `ids` (the llvm build of the same package), or null without the venv. */
function nativeGreedy(ids, n) {
  if (!existsSync(PYTHON)) return null;
  const code = [
    "import json, sys",
    "from pathlib import Path",
    "from hearth.native import load_decoder",
    "pkg, ids, n = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])",
    "dec, _ = load_decoder(Path(pkg))",
    "print(json.dumps(dec.greedy(ids, n)))",
  ].join("\n");
  const out = execFileSync(PYTHON, ["-c", code, PACKAGE, JSON.stringify(ids), String(n)], { cwd: REPO, encoding: "utf8", timeout: 300_000 });
  return JSON.parse(out.trim().split("\n").pop());
}

/** sentence-transformers embeddings of `texts` (the checkpoint the encoder package was compiled from). */
function referenceEmbeddings(texts) {
  assert.ok(existsSync(PYTHON), `no ${PYTHON}: the embedding reference needs the repo's venv (make setup)`);
  const code = [
    "import json, sys",
    "sys.path.insert(0, 'scripts')",
    "from build_packages import minilm_folder",
    "from hearth.eval.embedding_parity import reference_embeddings",
    "from hearth.models.encoder import read_pooling_config",
    "folder = minilm_folder()",
    "emb, _ = reference_embeddings(folder, json.loads(sys.argv[1]), 256, read_pooling_config(folder))",
    "print(json.dumps(emb.tolist()))",
  ].join("\n");
  const out = execFileSync(PYTHON, ["-c", code, JSON.stringify(texts)], { cwd: REPO, encoding: "utf8", timeout: 300_000 });
  return JSON.parse(out.trim().split("\n").pop());
}

function cosine(a, b) {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

let h;
before(async () => {
  assert.ok(existsSync(join(PACKAGE, "hearth-manifest.json")), `no package at ${PACKAGE} (make test builds it)`);
  assert.ok(existsSync(join(ENCODER, "hearth-manifest.json")), `no encoder package at ${ENCODER} (make test builds it)`);
  h = await openBrowser({ mounts: { "/harness/": HARNESS, "/pkg/": PACKAGE, "/enc/": ENCODER } });
});
after(async () => {
  await h?.close();
});

test("Chromium: load -> streamed greedy chat -> embed in a module Worker (SwiftShader, q4f32_1 + MiniLM q0f32)", async (t) => {
  const r = await h.run({ task: "chat", modelUrl: "/pkg/", embedderUrl: "/enc/", embedTexts: EMBED_TEXTS, messages: MESSAGES, maxTokens: MAX_TOKENS }, 600_000);
  assert.equal(r.ok, true, JSON.stringify(r.error));
  const res = r.result;
  t.diagnostic(`adapter ${res.adapter?.vendor}/${res.adapter?.architecture}; load ${res.loadMs.toFixed(0)} ms; phases ${[...new Set(res.phases)].join(",")}`);
  const usage = res.streamFinal.usage;
  t.diagnostic(
    `stream: ttft ${usage.time_to_first_token_ms.toFixed(1)} ms, prefill ${usage.prefill_tokens_per_s.toFixed(1)} tok/s ` +
      `(${usage.prompt_tokens} prompt tokens), decode ${usage.decode_tokens_per_s.toFixed(1)} tok/s (${usage.completion_tokens} tokens)`,
  );
  const d = res.decoder;
  t.diagnostic(
    `decoder totals: prefill ${d.prefill.calls} calls / ${d.prefill.ms.toFixed(0)} ms, decode ${d.decode.calls} calls / ${d.decode.ms.toFixed(0)} ms ` +
      `(${(d.decode.ms / Math.max(1, d.decode.calls)).toFixed(0)} ms per token), GPU wait + readback ${d.syncMs.toFixed(0)} ms`,
  );
  const nsUsage = res.nonStream.usage;
  t.diagnostic(`repeat (KV reuse, ${nsUsage.prompt_tokens_details.cached_tokens} cached): ttft ${nsUsage.time_to_first_token_ms.toFixed(1)} ms, decode ${nsUsage.decode_tokens_per_s.toFixed(1)} tok/s`);

  // Chunk shape: role first, content deltas, a finish chunk, then the usage chunk (include_usage).
  const chunks = res.chunks;
  assert.ok(chunks.every((c) => c.object === "chat.completion.chunk"));
  assert.deepEqual(chunks[0].choices[0].delta, { role: "assistant", content: "" });
  assert.equal(chunks[0].hasPromptIds, true);
  const finish = chunks[chunks.length - 2];
  assert.equal(finish.choices[0].finish_reason, "length");
  assert.deepEqual(finish.choices[0].delta, {});
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.completion_tokens, MAX_TOKENS);
  assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));

  // Stream == non-stream (same greedy request; the second one reuses the KV prefix).
  assert.equal(res.streamTokenIds.length, MAX_TOKENS);
  assert.deepEqual(res.nonStream.choices[0].token_ids, res.streamTokenIds);
  assert.equal(res.nonStream.choices[0].message.content, res.streamText);
  assert.equal(res.streamFinal.choices[0].message.content, res.streamText);
  assert.equal(res.nonStream.choices[0].finish_reason, "length");
  assert.ok(nsUsage.prompt_tokens_details.cached_tokens > 0, "the repeat should reuse the cached prompt prefix");
  assert.ok(usage.time_to_first_token_ms > 0 && usage.decode_tokens_per_s > 0);

  // Structured output in the module Worker: the reply is the schema's JSON and ends with the grammar.
  const structured = res.structured.choices[0];
  assert.equal(structured.finish_reason, "stop", structured.message.content);
  const value = JSON.parse(structured.message.content);
  assert.ok(["yes", "no"].includes(value.answer) && Number.isInteger(value.n) && value.n >= 0 && value.n <= 9, structured.message.content);
  assert.deepEqual(Object.keys(value), ["answer", "n"]);
  assert.deepEqual([res.errors.badSchema.name, res.errors.badSchema.typed, res.errors.badSchema.param], ["InvalidRequestError", true, "response_format.json_schema.schema"]);
  assert.match(res.errors.badSchema.message, /uniqueItems/);

  // Typed errors rebuilt on the page.
  assert.deepEqual([res.errors.badRole.name, res.errors.badRole.typed, res.errors.badRole.param], ["InvalidRequestError", true, "messages[0].role"]);
  assert.deepEqual([res.errors.oversized.name, res.errors.oversized.typed, res.errors.oversized.maxTotalSeqLen], ["ContextWindowExceededError", true, res.model.maxSequenceLength]);
  assert.equal(res.errors.malformed.type, "error");
  assert.equal(res.errors.malformed.error.name, "InvalidMessageError");
  assert.equal(res.errors.abort.name, "AbortError");
  assert.equal(res.errors.abort.typed, true);
  assert.ok(res.abortStop !== null, "the engine recorded the abort");
  assert.ok(res.abortStop.endedAtToken - res.abortStop.atToken <= 1, `stopped ${JSON.stringify(res.abortStop)}`);

  // Embeddings, after the chat, from the same Worker: OpenAI shape, sentence-transformers parity.
  const embed = res.embed;
  assert.ok(res.phases.includes("embedder:engine-ready"), res.phases.join(","));
  assert.equal(embed.response.object, "list");
  assert.deepEqual(embed.response.data.map((d) => [d.object, d.index, d.embedding.length]), EMBED_TEXTS.map((_, i) => ["embedding", i, 384]));
  assert.deepEqual(embed.response.truncated, []);
  assert.ok(embed.response.usage.prompt_tokens > EMBED_TEXTS.length * 2);
  const ref = referenceEmbeddings(EMBED_TEXTS);
  const cos = embed.response.data.map((d, i) => cosine(d.embedding, ref[i]));
  t.diagnostic(
    `embed: encoder load ${embed.info.loadMs.toFixed(0)} ms; ${EMBED_TEXTS.length} texts in ${embed.ms.toFixed(0)} ms ` +
      `(${res.encoder.embed.calls} bucket calls); min cosine vs sentence-transformers ${Math.min(...cos).toFixed(7)}`,
  );
  cos.forEach((c, i) => assert.ok(c >= 0.9999, `text ${i}: cosine ${c}`));
  assert.deepEqual([res.errors.tooLong.name, res.errors.tooLong.typed, res.errors.tooLong.indices, res.errors.tooLong.maxTokens], ["InputTooLongError", true, [1], 256]);
  assert.deepEqual([res.errors.badInput.name, res.errors.badInput.typed, res.errors.badInput.param], ["InvalidRequestError", true, "input"]);

  // Warm load: the chat package again on this page, now from Cache Storage (the encoder is left out:
  // its reload is mostly SwiftShader pipeline compilation again, minutes under load, and says nothing new).
  const warm = await h.run({ task: "load", modelUrl: "/pkg/" }, 300_000);
  assert.equal(warm.ok, true, JSON.stringify(warm.error));
  t.diagnostic(
    `chat model load: cold (empty Cache Storage) ${res.model.loadMs.toFixed(0)} ms, warm ${warm.result.modelLoadMs.toFixed(0)} ms ` +
      `(warm: fetch+verify ${warm.result.decoderLoad.fetchVerifyMs.toFixed(0)} ms, pipelines ${warm.result.decoderLoad.pipelinesMs.toFixed(0)} ms, ` +
      `weights ${warm.result.decoderLoad.tensorCacheMs.toFixed(0)} ms)`,
  );

  // The same tokens as the native build (hearth.native greedy on the prompt ids the engine used).
  const native = nativeGreedy(res.promptIds, MAX_TOKENS);
  if (native === null) {
    t.diagnostic(`no ${PYTHON}: native comparison skipped`);
  } else {
    assert.deepEqual(res.streamTokenIds, native, "Chromium/SwiftShader greedy tokens differ from hearth.native");
  }
});

test("Vite: a page built by Vite with createEngine's default worker loads a model (the worker file is self-contained)", async (t) => {
  // The harness page, importing "@hearth/sdk/client" instead of /sdk/dist/: Vite copies the default
  // worker (new URL("../browser/engine-worker.js", import.meta.url)) into its assets folder, away from
  // sdk/dist/vendor/, so this fails if the worker bundle needs anything beside it.
  const vite = join(REPO, "demo_rag", "node_modules", ".bin", "vite");
  assert.ok(existsSync(vite), `no ${vite}: \`cd demo_rag && npm ci\` (make test builds the demo)`);
  const dir = mkdtempSync(join(tmpdir(), "hearth-vite-"));
  let vh;
  try {
    mkdirSync(join(dir, "node_modules", "@hearth"), { recursive: true });
    symlinkSync(join(REPO, "sdk"), join(dir, "node_modules", "@hearth", "sdk"), "dir");
    cpSync(join(HARNESS, "index.html"), join(dir, "index.html"));
    const main = readFileSync(join(HARNESS, "main.js"), "utf8").replace('"/sdk/dist/client/index.js"', '"@hearth/sdk/client"');
    assert.match(main, /from "@hearth\/sdk\/client"/);
    writeFileSync(join(dir, "main.js"), main);
    execFileSync(vite, ["build", "--base", "./", "--outDir", "dist", "--logLevel", "warn"], { cwd: dir, encoding: "utf8", timeout: 300_000 });
    vh = await openBrowser({ mounts: { "/harness/": join(dir, "dist"), "/pkg/": PACKAGE } });
    const r = await vh.run({ task: "load", modelUrl: "/pkg/" }, 300_000);
    assert.equal(r.ok, true, JSON.stringify(r.error));
    t.diagnostic(`Vite-built page, default worker: load ${r.result.modelLoadMs.toFixed(0)} ms`);
  } finally {
    await vh?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
