// The engine in Chromium: createEngine() on the page (the SDK's client, unbundled from sdk/dist/client/),
// the model in a module Worker (sdk/dist/browser/engine-worker.js, the bundled worker entry), WebGPU on
// SwiftShader, the f32 package (SwiftShader has no shader-f16). Checks the streamed greedy chat against the
// non-stream result, typed errors across the Worker boundary, abort, and, when the Python venv exists,
// the generated tokens against hearth.native's greedy on the same prompt ids.
// Run: (cd sdk && npm run build) && node --test tests/browser/engine.test.mjs
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openBrowser, REPO } from "./lib/harness.mjs";

const PACKAGE = process.env.HEARTH_ENGINE_PACKAGE ?? join(REPO, "dist", "tiny-llama-trained", "q4f32_1");
const PYTHON = join(REPO, ".venv", "bin", "python");
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

let h;
before(async () => {
  assert.ok(existsSync(join(PACKAGE, "hearth-manifest.json")), `no package at ${PACKAGE} (make test builds it)`);
  h = await openBrowser({ mounts: { "/harness/": HARNESS, "/pkg/": PACKAGE } });
});
after(async () => {
  await h?.close();
});

test("Chromium: load -> streamed greedy chat in a module Worker (SwiftShader, q4f32_1)", async (t) => {
  const r = await h.run({ task: "chat", modelUrl: "/pkg/", messages: MESSAGES, maxTokens: MAX_TOKENS });
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

  // Typed errors rebuilt on the page.
  assert.deepEqual([res.errors.badRole.name, res.errors.badRole.typed, res.errors.badRole.param], ["InvalidRequestError", true, "messages[0].role"]);
  assert.deepEqual([res.errors.oversized.name, res.errors.oversized.typed, res.errors.oversized.maxTotalSeqLen], ["ContextWindowExceededError", true, res.model.maxSequenceLength]);
  assert.equal(res.errors.malformed.type, "error");
  assert.equal(res.errors.malformed.error.name, "InvalidMessageError");
  assert.equal(res.errors.abort.name, "AbortError");
  assert.equal(res.errors.abort.typed, true);
  assert.ok(res.abortStop !== null, "the engine recorded the abort");
  assert.ok(res.abortStop.endedAtToken - res.abortStop.atToken <= 1, `stopped ${JSON.stringify(res.abortStop)}`);

  // The same tokens as the native build (hearth.native greedy on the prompt ids the engine used).
  const native = nativeGreedy(res.promptIds, MAX_TOKENS);
  if (native === null) {
    t.diagnostic(`no ${PYTHON}: native comparison skipped`);
  } else {
    assert.deepEqual(res.streamTokenIds, native, "Chromium/SwiftShader greedy tokens differ from hearth.native");
  }
});
