// End to end: the local-RAG demo (demo_rag/) served by `hearth serve`, in headless Chromium (SwiftShader
// WebGPU, so the float32 packages: q4f32_1 LLM, q8f32_1 encoder). Loads both models, ingests a generated PDF whose page 2
// holds a distinctive fact, asks about it, checks the streamed answer and that the cited source is that
// PDF's page 2 (the tiny test LLM's words are not smart; the sources come from retrieval, which is what
// we check), checks refusals, reloads (documents persist), then stops the server and reloads again (the
// service worker serves the app; the models come from the SDK's verified store). Saves a screenshot to
// tests/browser/out/demo.png.
//
// Needs: the packages dist/tiny-llama-trained/q4f32_1 and dist/all-MiniLM-L6-v2/q8f32_1 (make demo builds
// them; HEARTH_DEMO_DIST=<folder> uses another package root), demo_rag/node_modules (npm ci in demo_rag).
// The app is rebuilt first (npm run build, ~10 s) unless HEARTH_DEMO_NO_BUILD=1. HEARTH_DEMO_WEBGPU=0 runs
// Chromium without WebGPU: the app must fall back to the packages' wasm-cpu builds.
// Run: node --test tests/browser/demo.test.mjs          (about 4-6 minutes on 2 CPU cores)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BASE_FLAGS, CHROMIUM, REPO, SDK, WEBGPU_FLAGS } from "./lib/harness.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const requireFromSdk = createRequire(join(SDK, "package.json"));
const DEMO = join(REPO, "demo_rag");
const APP = join(DEMO, "dist");
const DIST = process.env.HEARTH_DEMO_DIST ?? join(REPO, "dist");
const HEARTH = join(REPO, ".venv", "bin", "hearth");
const OUT = join(here, "out");
const NEEDED = [join(DIST, "tiny-llama-trained", "q4f32_1"), join(DIST, "all-MiniLM-L6-v2", "q8f32_1")];
const LOAD_TIMEOUT_MS = Number(process.env.HEARTH_DEMO_LOAD_TIMEOUT_MS ?? 420_000);
const STEP_TIMEOUT_MS = 240_000;
const WEBGPU = process.env.HEARTH_DEMO_WEBGPU !== "0";

/** Why the test cannot run here, or null. */
function missing() {
  if (!existsSync(CHROMIUM)) return `Chromium not found at ${CHROMIUM}`;
  if (!existsSync(HEARTH)) return "no .venv/bin/hearth (make setup)";
  for (const p of NEEDED) if (!existsSync(join(p, "hearth-manifest.json"))) return `no package at ${p} (make demo builds it)`;
  if (!existsSync(join(DEMO, "node_modules"))) return "demo_rag/node_modules is missing (cd demo_rag && npm ci)";
  return null;
}

/** A minimal valid PDF (Helvetica, ASCII lines; one array of lines per page). */
function makePdf(pages) {
  const objects = [];
  const add = (body) => objects.push(body);
  const str = (s) => `(${s.replace(/[\\()]/g, (c) => `\\${c}`)})`;
  add("");
  add("");
  add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>");
  const kids = [];
  for (const lines of pages) {
    const ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"];
    lines.forEach((line, i) => {
      if (i > 0) ops.push("T*");
      ops.push(`${str(line)} Tj`);
    });
    ops.push("ET");
    const content = ops.join("\n");
    const stream = add(`<< /Length ${content.length} >>\nstream\n${content}\nendstream`);
    kids.push(add(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents ${stream} 0 R >>`));
  }
  objects[0] = "<< /Type /Catalog /Pages 2 0 R >>";
  objects[1] = `<< /Type /Pages /Kids [${kids.map((k) => `${k} 0 R`).join(" ")}] /Count ${kids.length} >>`;
  let out = "%PDF-1.4\n";
  const offsets = [];
  objects.forEach((body, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const off of offsets) out += `${String(off).padStart(10, "0")} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, "latin1");
}

// Page 1: general text; page 2: the fact the question asks about.
const PDF_PAGES = [
  [
    "Annual report of the North Sea Coastal Trust.",
    "The trust maintains footpaths, dunes and two small harbours along the coast.",
    "Volunteers planted marram grass on the southern dunes in March and April.",
    "The footpath between the two harbours was resurfaced after the winter storms.",
    "Visitor numbers rose slightly compared with the previous year.",
  ],
  [
    "Lighthouses.",
    "The lighthouse on Skarvik island is kept by Ottoline Brask,",
    "who has tended its lamp every night since 1987.",
    "Its beam can be seen forty kilometres out to sea.",
  ],
];
const FACT = "Ottoline Brask";
const QUESTION = "Who keeps the lighthouse on Skarvik island?";
const MARKDOWN = "# Allotment rules\n\nEvery plot holder waters their own plot. Compost bins are shared, and the gate code changes each spring.\n";

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitHealthy(origin, ms) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(`${origin}/healthz`);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > end) throw new Error(`hearth serve did not answer ${origin}/healthz within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

let server;
let serverLog = "";
let context;
let page;
let profileDir;
let origin;
const skip = missing();
const timings = {};

function startServer(port, dist = DIST) {
  const child = spawn(HEARTH, ["serve", "--app", APP, "--dist", dist, "--port", String(port), "--host", "127.0.0.1"], {
    cwd: REPO,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.on("data", (d) => (serverLog += d));
  child.stderr.on("data", (d) => (serverLog += d));
  return child;
}

async function stopServer() {
  if (server === undefined || server.exitCode !== null) return;
  const exited = new Promise((r) => server.once("exit", r));
  server.kill("SIGTERM");
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (server.exitCode === null) server.kill("SIGKILL");
}

/** Wait until the app says it is ready (both models loaded) or failed; returns ms. */
async function waitReady(what) {
  const t0 = performance.now();
  await page.waitForFunction(() => document.body.dataset.state !== "loading", undefined, { timeout: LOAD_TIMEOUT_MS });
  const state = await page.evaluate(() => ({ phase: document.body.dataset.state, errors: window.hearthDemo?.errors ?? [] }));
  assert.equal(state.phase, "ready", `${what}: the app did not become ready: ${JSON.stringify(state.errors)}`);
  return performance.now() - t0;
}

before(async () => {
  // `make test` builds the packages and installs demo_rag first; missing prerequisites are a failure.
  assert.equal(skip, null, `demo prerequisites missing: ${skip} (run \`make test\`, which builds them)`);
  if (process.env.HEARTH_DEMO_NO_BUILD !== "1") {
    execFileSync("npm", ["run", "--silent", "build"], { cwd: DEMO, stdio: ["ignore", "ignore", "inherit"], timeout: 300_000 });
  }
  assert.ok(existsSync(join(APP, "index.html")), "demo_rag/dist/index.html is missing after the build");
  const port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  server = startServer(port);
  await waitHealthy(origin, 60_000);
  profileDir = mkdtempSync(join(tmpdir(), "hearth-chromium-demo-"));
  const { chromium } = requireFromSdk("playwright-core");
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: false, // "--headless=new" in BASE_FLAGS
    args: [...BASE_FLAGS, ...(WEBGPU ? WEBGPU_FLAGS : [])],
    viewport: { width: 1280, height: 900 },
    timeout: 60_000,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? profileDir },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") process.stderr.write(`[chromium ${m.type()}] ${m.text()}\n`);
  });
  page.on("pageerror", (e) => process.stderr.write(`[chromium pageerror] ${e.message}\n`));
});

after(async () => {
  await context?.close().catch(() => undefined);
  await stopServer();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  if (Object.keys(timings).length > 0) process.stderr.write(`demo timings: ${JSON.stringify(timings)}\n`);
});

test("demo: load, ingest a PDF, ask, cited page 2, refusals", { timeout: 1_200_000 }, async (t) => {
  const t0 = performance.now();
  await page.goto(`${origin}/`, { timeout: 60_000 });
  // Mid-load: the per-phase progress (download / verify / shader compile / GPU upload) is visible.
  await page.waitForSelector(".model-card .step[data-state='active'], .model-card .step[data-state='done']", { state: "attached", timeout: LOAD_TIMEOUT_MS });
  mkdirSync(OUT, { recursive: true });
  await page.screenshot({ path: join(OUT, WEBGPU ? "demo-loading.png" : "demo-cpu-loading.png") });
  timings.firstLoadMs = Math.round(await waitReady("first visit"));
  const state = await page.evaluate(() => window.hearthDemo);
  timings.ttiMs = Math.round(state.ttiMs);
  t.diagnostic(`first visit: ready in ${(performance.now() - t0).toFixed(0)} ms (app TTI ${state.ttiMs.toFixed(0)} ms since navigation)`);
  // SwiftShader has no shader-f16 and the CPU prefers f32: the f32 variants must be picked (4-bit LLM,
  // int8 encoder, even where an older dist/ still holds a q4 encoder package).
  assert.equal(state.plan.llm.entry.quantization, "q4f32_1");
  assert.equal(state.plan.embedder.entry.modelId, "all-MiniLM-L6-v2");
  assert.equal(state.plan.embedder.entry.quantization, "q8f32_1");
  assert.match(await page.textContent("#local-only summary"), /Local only/);
  // "Local only" is on by default; this server has no --native-api, so the switch cannot be turned off.
  await page.waitForFunction(() => !document.querySelector("#local-only .server-note")?.textContent?.startsWith("Checking"), undefined, { timeout: 30_000 });
  assert.equal(await page.isChecked("#local-only-switch"), true);
  assert.equal(await page.isDisabled("#local-only-switch"), true);
  if (WEBGPU) {
    assert.match(await page.textContent('dd[data-key="adapter"]'), /swiftshader/i);
    assert.equal(state.plan.llm.target, "webgpu");
  } else {
    assert.equal(state.plan.llm.target, "wasm-cpu");
    assert.equal(state.plan.embedder.target, "wasm-cpu");
    assert.match(await page.textContent(".alert[data-kind='cpu-fallback']"), /running on the CPU/);
  }

  // Ingest: the PDF, a Markdown distractor, and three files the index must refuse.
  const tIngest = performance.now();
  await page.setInputFiles("#file-input", [
    { name: "coastal-trust.pdf", mimeType: "application/pdf", buffer: makePdf(PDF_PAGES) },
    { name: "allotment.md", mimeType: "text/markdown", buffer: Buffer.from(MARKDOWN) },
    { name: "empty.txt", mimeType: "text/plain", buffer: Buffer.alloc(0) },
    { name: "photo.png", mimeType: "image/png", buffer: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4]) },
    { name: "broken.pdf", mimeType: "application/pdf", buffer: Buffer.from("%PDF-1.7\nthis is not really a PDF\n%%EOF\n") },
  ]);
  await page.waitForFunction(() => document.querySelectorAll(".ingest[data-state='busy']").length === 0 && document.querySelectorAll(".ingest").length >= 5, undefined, {
    timeout: STEP_TIMEOUT_MS,
  });
  timings.ingestMs = Math.round(performance.now() - tIngest);
  const rows = await page.$$eval(".ingest", (els) => els.map((e) => ({ name: e.dataset.name, state: e.dataset.state, text: e.textContent })));
  t.diagnostic(`ingest ${timings.ingestMs} ms: ${JSON.stringify(rows.map((r) => [r.name, r.state]))}`);
  const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
  assert.equal(byName["coastal-trust.pdf"]?.state, "ok", JSON.stringify(byName["coastal-trust.pdf"]));
  assert.equal(byName["allotment.md"]?.state, "ok", JSON.stringify(byName["allotment.md"]));
  assert.equal(byName["empty.txt"]?.state, "bad");
  assert.match(byName["empty.txt"].text, /Empty document/);
  assert.equal(byName["photo.png"]?.state, "bad");
  assert.match(byName["photo.png"].text, /Unsupported file type/);
  assert.equal(byName["broken.pdf"]?.state, "bad");
  assert.match(byName["broken.pdf"].text, /Broken PDF|PDF/);
  const docs = await page.$$eval("#doc-list .doc .doc-title", (els) => els.map((e) => e.textContent));
  assert.deepEqual(docs.sort(), ["Allotment rules", "coastal-trust.pdf"], "only the two good files are indexed (refusals leave the index intact)");
  assert.match(await page.textContent('#doc-list .doc[data-doc-id] .doc-meta'), /chunk/);

  // Drag and drop (the same Markdown again): recognised as a duplicate by its SHA-256, nothing re-indexed.
  await page.evaluate((text) => {
    const dt = new DataTransfer();
    dt.items.add(new File([text], "allotment-copy.md", { type: "text/markdown" }));
    const zone = document.querySelector(".dropzone");
    for (const type of ["dragenter", "dragover", "drop"]) zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, MARKDOWN);
  await page.waitForSelector(".ingest[data-name='allotment-copy.md'][data-state='dup']", { timeout: STEP_TIMEOUT_MS });
  assert.equal(await page.$$eval("#doc-list .doc", (els) => els.length), 2);

  // Ask: the answer streams (several pieces), the sources come from retrieval: [1] is the PDF's page 2.
  const tAsk = performance.now();
  await page.fill("#question", QUESTION);
  await page.click("#ask");
  await page.waitForSelector(".turn[data-state='generating'], .turn[data-state='done'], .turn[data-state='error']", { timeout: STEP_TIMEOUT_MS });
  await page.waitForFunction(() => ["done", "error"].includes(document.querySelector(".turn")?.dataset.state ?? ""), undefined, { timeout: STEP_TIMEOUT_MS });
  timings.firstAnswerMs = Math.round(performance.now() - tAsk);
  const turn = await page.evaluate(() => ({
    state: document.querySelector(".turn")?.dataset.state,
    answer: document.querySelector(".turn .answer")?.textContent ?? "",
    sources: [...document.querySelectorAll(".turn .source")].map((li) => ({ n: li.dataset.n, page: li.dataset.page, title: li.querySelector(".source-title")?.textContent })),
    demo: { firstAnswer: window.hearthDemo.firstAnswer, lastUsage: window.hearthDemo.lastUsage, pieces: window.hearthDemo.lastAnswer?.pieces ?? 0, cited: window.hearthDemo.lastAnswer?.cited },
  }));
  t.diagnostic(`answer in ${timings.firstAnswerMs} ms: ${JSON.stringify(turn.answer.slice(0, 160))}`);
  t.diagnostic(`sources: ${JSON.stringify(turn.sources)}; usage ${JSON.stringify(turn.demo.lastUsage)}; first token ${turn.demo.firstAnswer?.firstTokenMs?.toFixed(0)} ms`);
  timings.firstTokenMs = Math.round(turn.demo.firstAnswer?.firstTokenMs ?? -1);
  assert.equal(turn.state, "done");
  assert.equal(await page.textContent(".turn .route-badge"), `answered on this device (${WEBGPU ? "WebGPU" : "CPU"})`);
  assert.ok(turn.answer.trim().length > 0, "the answer is empty");
  assert.ok(turn.demo.pieces >= 2, `the answer should arrive in several streamed pieces, got ${turn.demo.pieces}`);
  assert.ok(turn.demo.lastUsage.completion_tokens >= 2, "fewer than 2 tokens generated");
  assert.ok(turn.sources.length >= 1, "no sources shown");
  assert.equal(turn.sources[0].n, "1");
  assert.match(turn.sources[0].title, /coastal-trust\.pdf/);
  assert.equal(turn.sources[0].page, "2", `source [1] should be page 2 of the PDF: ${JSON.stringify(turn.sources)}`);

  // The citation opens the passage: page 2, the fact highlighted.
  await page.click(".turn .source[data-n='1'] button.cite");
  await page.waitForSelector("dialog#passage[open] #passage-mark", { timeout: 30_000 });
  const passage = await page.evaluate(() => ({
    page: document.querySelector("dialog#passage .passage-page")?.textContent,
    mark: document.querySelector("dialog#passage #passage-mark")?.textContent,
  }));
  assert.equal(passage.page, "Page 2");
  assert.match(passage.mark, new RegExp(FACT));
  mkdirSync(OUT, { recursive: true });
  const suffix = WEBGPU ? "" : "-cpu";
  await page.screenshot({ path: join(OUT, `demo${suffix}-passage.png`) });
  await page.keyboard.press("Escape");
  await page.waitForFunction(() => !document.querySelector("dialog#passage")?.open);
  await page.screenshot({ path: join(OUT, `demo${suffix}.png`), fullPage: true });
  t.diagnostic(`screenshots: ${join(OUT, `demo${suffix}.png`)}, ${join(OUT, `demo${suffix}-passage.png`)}`);
});

test("demo: reload keeps the documents (IndexedDB) and loads the models from the local store", { timeout: 900_000 }, async (t) => {
  await page.reload({ timeout: 60_000 });
  timings.reloadMs = Math.round(await waitReady("reload"));
  const docs = await page.$$eval("#doc-list .doc .doc-title", (els) => els.map((e) => e.textContent));
  assert.deepEqual(docs.sort(), ["Allotment rules", "coastal-trust.pdf"]);
  const cache = await page.textContent('dd[data-key="cache"]');
  t.diagnostic(`reload: ready in ${timings.reloadMs} ms; ${cache}`);
  assert.match(cache, /chat (\d+)\/\1 files \(0 B downloaded\)/, "the chat model should load from the local store");
  assert.match(cache, /encoder (\d+)\/\1 files \(0 B downloaded\)/, "the encoder should load from the local store");
});

test("demo: with the server stopped, a reload still works (service worker + local model store)", { timeout: 900_000 }, async (t) => {
  await stopServer();
  await assert.rejects(fetch(`${origin}/healthz`), "the server should be down");
  await page.reload({ timeout: 60_000 });
  timings.offlineReloadMs = Math.round(await waitReady("offline reload"));
  const docs = await page.$$eval("#doc-list .doc .doc-title", (els) => els.map((e) => e.textContent));
  assert.deepEqual(docs.sort(), ["Allotment rules", "coastal-trust.pdf"]);
  t.diagnostic(`offline reload: ready in ${timings.offlineReloadMs} ms; service worker: ${await page.textContent('dd[data-key="sw"]')}`);
  // Retrieval and generation work offline too.
  await page.fill("#question", "Since when is the Skarvik lamp tended?");
  await page.click("#ask");
  await page.waitForFunction(() => ["done", "error"].includes(document.querySelector(".turn")?.dataset.state ?? ""), undefined, { timeout: STEP_TIMEOUT_MS });
  const turn = await page.evaluate(() => ({
    state: document.querySelector(".turn")?.dataset.state,
    sources: [...document.querySelectorAll(".turn .source")].map((li) => ({ n: li.dataset.n, page: li.dataset.page })),
  }));
  assert.equal(turn.state, "done");
  assert.equal(turn.sources[0]?.page, "2", JSON.stringify(turn.sources));
  await page.screenshot({ path: join(OUT, WEBGPU ? "demo-offline.png" : "demo-cpu-offline.png"), fullPage: true });

  // Delete a document: gone from the list and from the index.
  await page.click("#doc-list .doc:has-text('Allotment rules') button.icon-btn");
  await page.waitForFunction(() => document.querySelectorAll("#doc-list .doc").length === 1, undefined, { timeout: 30_000 });
  assert.match(await page.textContent('dd[data-key="index"]'), /^1 doc ·/);
});

/**
 * A fresh browser profile against its own server (package root `dist`); `prepare(page, cdp, origin)` runs
 * before the page opens. Returns the chat model card's state and error text once it has failed (or
 * loaded); saves tests/browser/out/demo-<name>.png.
 */
async function chatCardOutcome(name, dist, prepare) {
  const port = await freePort();
  const own = `http://127.0.0.1:${port}`;
  const child = startServer(port, dist);
  const profile = mkdtempSync(join(tmpdir(), "hearth-chromium-demo-err-"));
  let ctx;
  try {
    await waitHealthy(own, 60_000);
    const { chromium } = requireFromSdk("playwright-core");
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: false,
      args: [...BASE_FLAGS, ...(WEBGPU ? WEBGPU_FLAGS : [])],
      viewport: { width: 1280, height: 900 },
      timeout: 60_000,
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? profile },
    });
    const p = ctx.pages()[0] ?? (await ctx.newPage());
    await prepare?.(p, await ctx.newCDPSession(p), own);
    await p.goto(`${own}/`, { timeout: 60_000 });
    await p.waitForSelector(".model-card[data-role='chat'][data-state='error'], .model-card[data-role='chat'][data-state='ready']", { state: "attached", timeout: LOAD_TIMEOUT_MS });
    const out = await p.evaluate(() => {
      const card = document.querySelector(".model-card[data-role='chat']");
      return { state: card?.dataset.state, text: card?.querySelector(".card-error")?.textContent ?? "" };
    });
    await p.screenshot({ path: join(OUT, `demo-${name}.png`) }).catch(() => undefined);
    return out;
  } finally {
    await ctx?.close().catch(() => undefined);
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    rmSync(profile, { recursive: true, force: true });
  }
}

test("demo: a corrupted model file is refused (integrity check) and explained", { timeout: 600_000 }, async (t) => {
  // A package root with the two f32 packages, one byte of the chat model's weights flipped.
  const root = mkdtempSync(join(tmpdir(), "hearth-demo-bad-dist-"));
  try {
    for (const p of NEEDED) cpSync(p, join(root, p.slice(DIST.length + 1)), { recursive: true });
    const shard = join(root, "tiny-llama-trained", "q4f32_1", "params_shard_0.bin");
    const bytes = readFileSync(shard);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(shard, bytes);
    const out = await chatCardOutcome("integrity", root);
    t.diagnostic(`chat card: ${out.state}: ${out.text}`);
    assert.equal(out.state, "error");
    assert.match(out.text, /integrity/i);
    assert.match(out.text, /params_shard_0\.bin/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("demo: not enough storage quota is explained", { timeout: 600_000 }, async (t) => {
  const out = await chatCardOutcome("quota", DIST, async (_page, cdp, own) => {
    // 1 MB for the origin: less than either package needs.
    await cdp.send("Storage.overrideQuotaForOrigin", { origin: own, quotaSize: 1_000_000 });
  });
  t.diagnostic(`chat card: ${out.state}: ${out.text}`);
  assert.equal(out.state, "error");
  assert.match(out.text, /Not enough storage/);
});
