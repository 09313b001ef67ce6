// Text encoder in Chromium: EncoderModel inside a module Worker (the worker bundled by esbuild from sdk/dist
// + @huggingface/tokenizers, as an app would bundle it; tvmjs loaded at run time from sdk/dist/vendor),
// WebGPU on SwiftShader, the compiled all-MiniLM-L6-v2 package (f32: SwiftShader has no shader-f16).
// The vectors must match the Node/Dawn output of sdk/scripts/embed.mjs for the same texts (cosine >= 0.9999)
// and the Chromium throughput is reported.
// The package must exist (FAILS without it): `make test` builds it (scripts/build_packages.py).
// Run: (cd sdk && npm run build) && node --test tests/browser/encoder.test.mjs
//   HEARTH_ENCODER_PACKAGE=<package dir> picks another package (default dist/all-MiniLM-L6-v2/q0f32).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openBrowser, REPO, SDK } from "./lib/harness.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const requireFromSdk = createRequire(join(SDK, "package.json"));
const PACKAGE = process.env.HEARTH_ENCODER_PACKAGE ?? join(REPO, "dist", "all-MiniLM-L6-v2", "q0f32");
const ENGINE_DIST = join(SDK, "dist", "engine", "index.js");
const EMBED = join(SDK, "scripts", "embed.mjs");
const MIN_COSINE = 0.9999;

// Eight texts of at most 32 tokens, so the whole batch is ONE embed_b8_s32 call (software WebGPU is slow:
// a text longer than 32 tokens would pad all eight rows to its bucket): plain, unicode/emoji, code, an empty
// and a whitespace-only text. Truncation of an over-long text is checked on the tokenizer alone (no GPU).
const TEXTS = [
  "A man is playing a guitar.",
  "Someone plays the guitar on stage.",
  "The stock market fell sharply today.",
  "",
  "  \n\t ",
  "東京は日本の首都です。 naïve café 👍🏽",
  "def add(a, b): return a + b",
  "WebGPU runs a sentence-embedding model on device.",
];
const LONG = "word ".repeat(300); // 302 tokens > max_seq_length 256

function cosine(a, b) {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

/** sdk/scripts/embed.mjs (Node + Dawn) on `texts`: per-text lines + summary. */
function nodeEmbed(texts, dir) {
  const file = join(dir, "texts.json");
  writeFileSync(file, JSON.stringify(texts));
  const out = execFileSync(process.execPath, [EMBED, PACKAGE, "--texts", file], {
    cwd: REPO,
    encoding: "utf8",
    timeout: 1_200_000,
    maxBuffer: 64 << 20,
    stdio: ["ignore", "pipe", "ignore"],
  });
  const lines = out.trim().split("\n").map((l) => JSON.parse(l));
  return { lines: lines.slice(0, -1), summary: lines[lines.length - 1] };
}

let h;
let bundleDir;

before(async () => {
  assert.ok(existsSync(join(PACKAGE, "hearth-manifest.json")), `no encoder package at ${PACKAGE} (make test builds it: scripts/build_packages.py)`);
  assert.ok(existsSync(ENGINE_DIST), "sdk/dist/engine is missing: run `npm run build` in sdk/ first");
  // Bundle the worker the way an app would: the SDK's dist plus its npm dependencies. The bundle goes to
  // <bundleDir>/encoder/worker.js, and sdk/dist/vendor is mounted at <bundle>/vendor/, so the SDK's
  // run-time import of "../vendor/tvmjs.js" (relative to the bundle) finds tvmjs.
  const esbuild = requireFromSdk("esbuild");
  bundleDir = mkdtempSync(join(tmpdir(), "hearth-encoder-bundle-"));
  await esbuild.build({
    entryPoints: [join(here, "page", "encoder-harness", "worker.js")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    outfile: join(bundleDir, "encoder", "worker.js"),
    logLevel: "warning",
    plugins: [
      {
        name: "hearth-sdk-engine",
        setup(build) {
          build.onResolve({ filter: /^@hearth\/sdk\/engine$/ }, () => ({ path: ENGINE_DIST }));
        },
      },
    ],
  });
  h = await openBrowser({
    mounts: {
      "/harness/": join(here, "page", "encoder-harness"),
      "/encoder-bundle/": bundleDir,
      "/encoder-bundle/vendor/": join(SDK, "dist", "vendor"),
      "/pkg/": PACKAGE,
    },
  });
});

after(async () => {
  await h?.close();
  if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
});

test("Chromium module Worker: EncoderModel embeds like Node/Dawn (cosine >= 0.9999); truncation flagged", async (t) => {
  const env = await h.run({ task: "env" });
  assert.deepEqual(env, { ok: true, result: { isWorker: true, hasGPU: true } });

  const r = await h.run({ task: "embed", url: "/pkg/", texts: TEXTS, repeat: 3, long: LONG }, 1_200_000);
  assert.equal(r.ok, true, JSON.stringify(r.error));
  const res = r.result;
  const first = res.runs[0];
  const second = res.runs[res.runs.length - 1];
  t.diagnostic(
    `adapter ${res.adapter?.vendor}/${res.adapter?.architecture}; load ${res.loadMs.toFixed(0)} ms ` +
      `(pipelines ${res.loadStats.pipelinesMs.toFixed(0)} ms); phases ${res.phases.join(",")}`,
  );
  t.diagnostic(
    `Chromium: ${TEXTS.length} texts in ${second.ms.toFixed(0)} ms = ${second.textsPerSec.toFixed(2)} embeddings/s ` +
      `(last of ${res.runs.length} runs; first ${first.ms.toFixed(0)} ms incl. SwiftShader's first-use compilation); calls ${JSON.stringify(second.calls)}`,
  );
  assert.equal(res.usesF16, false);
  assert.equal(res.dim, 384);
  assert.equal(res.maxTokens, 256);
  assert.deepEqual(second.calls, { embed_b8_s32: 1 });
  assert.deepEqual(res.truncated, TEXTS.map(() => false));
  assert.equal(res.truncations.length, 0);
  // The bundled tokenizer in the Worker: the over-long text is cut to 256 ids ([CLS] ... [SEP]) and flagged.
  assert.deepEqual(res.long, { truncated: true, tokens: 302, ids: 256, first: 101, last: 102, countTokens: 302 });
  assert.ok(res.viaEmbedSame, "embed() and embedDetailed() give the same bits");
  assert.ok(res.phases.includes("shader-compile") && res.phases.includes("ready"), res.phases.join(","));
  // Empty and whitespace-only: the same [CLS] [SEP] vector.
  assert.deepEqual(res.vectors[3], res.vectors[4]);

  const dir = mkdtempSync(join(tmpdir(), "hearth-encoder-node-"));
  try {
    const node = nodeEmbed(TEXTS, dir);
    assert.equal(node.summary.modelId, res.modelId);
    assert.deepEqual(node.summary.calls, second.calls, "same bucket calls in Node and Chromium");
    assert.deepEqual(node.lines.map((l) => l.tokens), res.tokenCounts, "same token counts in Node and Chromium");
    const cos = node.lines.map((l, i) => cosine(l.embedding, res.vectors[i]));
    const min = Math.min(...cos);
    const maxAbs = Math.max(...node.lines.flatMap((l, i) => l.embedding.map((x, j) => Math.abs(x - res.vectors[i][j]))));
    t.diagnostic(`Chromium/SwiftShader vs Node/Dawn: min cosine ${min.toFixed(7)}, max |diff| ${maxAbs.toExponential(2)}`);
    assert.ok(min >= MIN_COSINE, `min cosine ${min} (per text: ${cos.map((c) => c.toFixed(6)).join(", ")})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const disposed = await h.run({ task: "dispose" });
  assert.equal(disposed.ok, true);
});
