#!/usr/bin/env node
// RAG index at scale, in headless Chromium: `node bench/rag/run.mjs [--chunks 100000] [--per-doc 100]
// [--queries 200] [--out bench/results/rag.json]`.
//
// Bundles bench/rag/worker.js with esbuild ("@hearth/sdk/rag" -> sdk/src/rag/index.ts, so no SDK build is
// needed), serves it with the test harness's static server, and drives Chromium (Debian /usr/bin/chromium
// through playwright-core, flags from tests/browser/lib/harness.mjs). Measures, in the Worker: ingest
// throughput and its split, open (cold load) time, top-10 hybrid query latency; and index size three ways:
// navigator.storage.estimate() before/after, the IndexedDB folder on disk (du), and the raw float32 vectors
// + text it is compared with. Synthetic data; see worker.js.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { BASE_FLAGS, CHROMIUM, REPO, SDK } from "../../tests/browser/lib/harness.mjs";
import { startStaticServer } from "../../tests/browser/lib/server.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const requireFromSdk = createRequire(join(SDK, "package.json"));
const { values: args } = parseArgs({
  options: {
    chunks: { type: "string", default: "100000" },
    "per-doc": { type: "string", default: "100" },
    queries: { type: "string", default: "200" },
    batch: { type: "string", default: "20" },
    out: { type: "string", default: join(REPO, "bench", "results", "rag.json") },
    "keep-profile": { type: "boolean", default: false },
  },
});
const CHUNKS = Number(args.chunks);
const PER_DOC = Number(args["per-doc"]);
const DOCS = Math.ceil(CHUNKS / PER_DOC);
const BATCH = Number(args.batch);
const QUERIES = Number(args.queries);
const DIM = 384;

function du(dir) {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += du(p);
    else if (e.isFile()) total += statSync(p).size;
  }
  return total;
}

const log = (s) => process.stderr.write(`${s}\n`);
const bundleDir = mkdtempSync(join(tmpdir(), "hearth-rag-bench-bundle-"));
const profileDir = mkdtempSync(join(tmpdir(), "hearth-rag-bench-profile-"));
const esbuild = requireFromSdk("esbuild");
await esbuild.build({
  entryPoints: [join(here, "worker.js")],
  bundle: true,
  format: "esm",
  splitting: true,
  platform: "browser",
  target: "es2022",
  outdir: bundleDir,
  logLevel: "warning",
  plugins: [{ name: "rag-src", setup: (b) => b.onResolve({ filter: /^@hearth\/sdk\/rag$/ }, () => ({ path: join(SDK, "src", "rag", "index.ts") })) }],
});
const server = await startStaticServer({ "/page/": here, "/bundle/": bundleDir });
const { chromium } = requireFromSdk("playwright-core");
const launch = () =>
  chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: false,
    args: BASE_FLAGS,
    timeout: 60_000,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? profileDir },
  });
let context = await launch();
let page;
const openPage = async () => {
  page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => log(`[pageerror] ${e.message}`));
  page.on("console", (m) => log(`[chromium] ${m.text()}`));
  await page.goto(`${server.origin}/page/page.html`);
  await page.waitForFunction(() => window.benchPageReady === true);
};
try {
  await openPage();
  const browserVersion = (await context.browser()?.version()) ?? "chromium";
  const run = async (task) => {
    const r = await page.evaluate((t) => window.benchRun(t), task);
    if (!r.ok) throw new Error(`${task.task}: ${r.error.message}\n${r.error.stack ?? ""}`);
    return r.result;
  };
  const idbDir = join(profileDir, "Default", "IndexedDB");
  const before = await run({ task: "reset" });
  const ingest = { docs: 0, chunks: 0, totalMs: 0, embedMs: 0, prepareMs: 0, storeMs: 0, genMs: 0, batches: [], timings: {} };
  for (let from = 0; from < DOCS; from += BATCH) {
    const r = await run({ task: "ingest", from, to: Math.min(DOCS, from + BATCH), chunksPerDoc: PER_DOC });
    if (r.failed > 0) throw new Error(`ingest: ${r.failed} documents not added`);
    for (const key of ["docs", "chunks", "totalMs", "embedMs", "prepareMs", "storeMs", "genMs"]) ingest[key] += r[key];
    for (const [key, v] of Object.entries(r.timings)) ingest.timings[key] = (ingest.timings[key] ?? 0) + v;
    ingest.batches.push({ chunksAfter: ingest.chunks, chunksPerSec: r.chunks / (r.totalMs / 1000), storeMsPerChunk: r.storeMs / r.chunks });
    log(`ingest ${ingest.chunks}/${DOCS * PER_DOC} chunks: ${(r.chunks / (r.totalMs / 1000)).toFixed(0)} chunks/s (store ${(r.storeMs / r.chunks).toFixed(2)} ms/chunk)`);
  }
  const afterIngest = await run({ task: "estimate" });
  const reopen = await run({ task: "reopen" });
  log(`reopen ${reopen.openMs.toFixed(0)} ms`);
  const query = await run({ task: "query", n: QUERIES, k: 10, warmup: 10, seed: 12345 });
  log(`query p50 ${query.p50.toFixed(1)} ms p95 ${query.p95.toFixed(1)} ms ${JSON.stringify(query.parts)}`);
  const stats = await run({ task: "stats" });
  // Reload the page: the Worker and its connection go away, LevelDB flushes; then measure the folder.
  // Restart the browser on the same profile (and origin): LevelDB deletes the files that finished compactions
  // superseded when it opens, so the folder holds live data only (before that, a reading could include one
  // compaction's inputs and outputs together: 48.8 or 71.9 MB for the same 20k index).
  await context.close();
  context = await launch();
  await openPage();
  await run({ task: "stats" });
  const afterReload = await run({ task: "estimate" });
  // LevelDB compacts in the background: files superseded by a compaction linger until it finishes, so the
  // folder is measured until two readings 3 s apart agree (at most ~60 s); the first reading is kept too.
  const onDiskFirst = du(idbDir);
  let onDisk = onDiskFirst;
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 3000));
    const now = du(idbDir);
    if (now === onDisk) break;
    onDisk = now;
  }
  const files = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else files.push([p.slice(idbDir.length + 1).replace(/^http_127\.0\.0\.1_\d+/u, "origin"), statSync(p).size]);
    }
  };
  walk(idbDir);
  const logBytes = files.filter(([f]) => f.endsWith(".log")).reduce((n, [, b]) => n + b, 0);
  log(`IndexedDB folder ${onDiskFirst} -> ${onDisk} bytes (.log ${logBytes})`);
  // Chromium keeps values over its wrapping threshold as blob files next to LevelDB: report both parts.
  const folders = Object.fromEntries(readdirSync(idbDir).map((f) => [f.replace(/^http_127\.0\.0\.1_\d+/u, "origin"), du(join(idbDir, f))]));
  const rawVectors = stats.chunks * DIM * 4;
  // Raw text = the UTF-8 bytes of the documents' text (the synthetic text is ASCII, so characters = bytes).
  const rawText = (await run({ task: "textBytes" })).bytes;
  const result = {
    date: new Date().toISOString(),
    command: `node bench/rag/run.mjs --chunks ${CHUNKS} --per-doc ${PER_DOC} --queries ${QUERIES}`,
    browser: browserVersion,
    data: "synthetic: Zipf pseudo-word text (80 words, ~500 chars per chunk), pseudo-random 384-d unit vectors (stand-in embedder, not a model)",
    chunks: stats.chunks,
    documents: stats.documents,
    dim: DIM,
    ingest: {
      chunksPerSec: ingest.chunks / (ingest.totalMs / 1000),
      totalMs: ingest.totalMs,
      splitMs: ingest.timings,
      stubEmbedderMs: ingest.embedMs,
      first: ingest.batches[0],
      last: ingest.batches[ingest.batches.length - 1],
    },
    openMs: reopen.openMs,
    openSplitMs: reopen.load,
    query,
    size: {
      rawFloat32VectorsBytes: rawVectors,
      rawTextBytes: rawText,
      estimateDeltaBytes: afterIngest.usage - before.usage,
      estimateDeltaAfterReloadBytes: afterReload.usage - before.usage,
      indexedDbFolderBytes: onDisk,
      indexedDbFolderFirstReadingBytes: onDiskFirst,
      leveldbLogBytes: logBytes,
      indexedDbFiles: files.length,
      indexedDbFolders: folders,
    },
  };
  if (rawText !== null) {
    const raw = rawVectors + rawText;
    result.size.rawBytes = raw;
    result.size.ratioFolder = onDisk / raw;
    result.size.ratioEstimate = result.size.estimateDeltaAfterReloadBytes / raw;
  }
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);
  log(JSON.stringify({ ...result, ingest: { ...result.ingest, first: undefined } }, null, 2));
} finally {
  await context.close().catch(() => undefined);
  await server.close();
  if (args["keep-profile"]) log(`profile kept: ${profileDir}`);
  else rmSync(profileDir, { recursive: true, force: true });
  rmSync(bundleDir, { recursive: true, force: true });
}
