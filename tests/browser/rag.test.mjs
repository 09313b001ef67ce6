// RAG index in real Chromium: a module Worker runs @hearth/sdk/rag (bundled by esbuild from sdk/dist, as an
// app would bundle it) against Chromium's real IndexedDB. Ingest, search, reload the page, check that the
// documents are still there.
// Run: (cd sdk && npm run test:browser)   or   node --test tests/browser/rag.test.mjs   (after `npm run build` in sdk/)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BASE_FLAGS, CHROMIUM, SDK, TASK_TIMEOUT_MS } from "./lib/harness.mjs";
import { startStaticServer } from "./lib/server.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const requireFromSdk = createRequire(join(SDK, "package.json"));
const RAG_DIST = join(SDK, "dist", "rag", "index.js");

/** A minimal valid PDF (same generator as sdk/test/support/rag-fixtures.ts makePdf, ASCII text only). */
function makePdf(pages) {
  const objects = [];
  const add = (body) => objects.push(body);
  const str = (s) => `(${s.replace(/[\\()]/g, (c) => `\\${c}`)})`;
  add(""); // 1 catalog
  add(""); // 2 pages
  add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"); // 3
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

const MARKDOWN = [
  "# Heat pumps",
  "",
  "A heat pump moves warmth from the outside air into the house. It needs electricity, but delivers three to four times more heat than it consumes.",
  "",
  "In very cold weather the efficiency drops, so a well insulated house matters.",
].join("\n");

const HTML = `<!doctype html><html><head><title>Bicycle maintenance</title><style>p{color:red}</style></head>
<body><h1>Chain care</h1><p>Clean the chain with a rag, then apply a drop of lubricant to every link.</p>
<script>document.write("tracking")</script><p>Check the tyre pressure weekly.</p></body></html>`;

// Page 1 is about 45 words, so it never shares a 64-token chunk with page 2.
const PDF_PAGES = [
  [
    "Minutes of the allotment society, spring meeting.",
    "The society agreed to buy a new water pump for the greenhouses.",
    "The treasurer reported that membership fees covered the insurance,",
    "and the old shed roof will be repaired before the autumn storms.",
    "Plot twelve was given to a family on the waiting list.",
  ],
  [
    "Page two covers the compost rota and the beekeeping course.",
    "The beekeeping course starts in May and is taught by a volunteer from the village.",
    "Members who join the course must bring their own veil and gloves.",
  ],
];

let server;
let context;
let page;
let profileDir;
let bundleDir;

async function ragRun(task) {
  let timer;
  const r = await Promise.race([
    page.evaluate((t) => window.ragRun(t), task),
    new Promise((_, fail) => {
      timer = setTimeout(() => fail(new Error(`task ${task.task} timed out after ${TASK_TIMEOUT_MS} ms`)), TASK_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
  assert.equal(r.ok, true, `task ${task.task}: ${JSON.stringify(r.error)}`);
  return r.result;
}

async function loadPage() {
  await page.goto(`${server.origin}/harness/rag-index.html`, { timeout: 30_000 });
  await page.waitForFunction(() => window.ragPageReady === true, undefined, { timeout: 30_000 });
}

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}`);
  if (!existsSync(RAG_DIST)) throw new Error("sdk/dist/rag is missing: run `npm run build` in sdk/ first");
  // Bundle the worker the way an app would: the SDK's dist plus its npm dependencies, code-split so pdf.js
  // loads only when a PDF is ingested.
  const esbuild = requireFromSdk("esbuild");
  bundleDir = mkdtempSync(join(tmpdir(), "hearth-rag-bundle-"));
  await esbuild.build({
    entryPoints: [join(here, "page", "rag-worker.js")],
    bundle: true,
    format: "esm",
    splitting: true,
    platform: "browser",
    target: "es2022",
    outdir: bundleDir,
    logLevel: "warning",
    plugins: [
      {
        name: "hearth-sdk-rag",
        setup(build) {
          build.onResolve({ filter: /^@hearth\/sdk\/rag$/ }, () => ({ path: RAG_DIST }));
        },
      },
    ],
  });
  server = await startStaticServer({ "/harness/": join(here, "page"), "/rag-bundle/": bundleDir });
  profileDir = mkdtempSync(join(tmpdir(), "hearth-chromium-rag-"));
  const { chromium } = requireFromSdk("playwright-core");
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: false, // "--headless=new" in BASE_FLAGS
    args: BASE_FLAGS,
    timeout: 60_000,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? profileDir },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => process.stderr.write(`[chromium ${m.type()}] ${m.text()}\n`));
  page.on("pageerror", (e) => process.stderr.write(`[chromium pageerror] ${e.message}\n`));
  await loadPage();
});

after(async () => {
  await context?.close().catch(() => undefined);
  await server?.close();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
});

test("module Worker, real IndexedDB: ingest three documents (Markdown, HTML, PDF) and search them", async (t) => {
  const env = await ragRun({ task: "env" });
  assert.deepEqual(env, { isWorker: true, hasDOMParser: false, hasIndexedDB: true });

  const t0 = performance.now();
  const added = await ragRun({
    task: "add",
    docs: [
      { kind: "text", text: MARKDOWN, mime: "text/markdown" },
      { kind: "file", name: "bikes.html", type: "text/html", base64: Buffer.from(HTML).toString("base64") },
      { kind: "file", name: "minutes.pdf", type: "application/pdf", base64: makePdf(PDF_PAGES).toString("base64") },
    ],
  });
  t.diagnostic(`ingest: ${(performance.now() - t0).toFixed(0)} ms`);
  assert.deepEqual(
    added.map((r) => r.status),
    ["added", "added", "added"],
    JSON.stringify(added),
  );
  assert.deepEqual(
    added.map((r) => r.document.title),
    ["Heat pumps", "Bicycle maintenance", "minutes.pdf"],
  );
  assert.equal(added[2].document.pages, 2);

  const chain = await ragRun({ task: "search", query: "lubricant for the chain", k: 2 });
  assert.equal(chain[0].title, "Bicycle maintenance");
  assert.ok(!chain.some((h) => h.text.includes("tracking") || h.text.includes("color")), "script/style text was indexed");
  const heat = await ragRun({ task: "search", query: "heat pump efficiency in cold weather", k: 2 });
  assert.equal(heat[0].title, "Heat pumps");
  const bees = await ragRun({ task: "search", query: "beekeeping course veil gloves", k: 1 });
  assert.equal(bees[0].title, "minutes.pdf");
  assert.equal(bees[0].page, 2);

  // Adding the same file again is a duplicate.
  const again = await ragRun({
    task: "add",
    docs: [{ kind: "file", name: "copy.html", type: "text/html", base64: Buffer.from(HTML).toString("base64") }],
  });
  assert.equal(again[0].status, "duplicate");
  const dbs = await ragRun({ task: "databases" });
  assert.ok(dbs.some((d) => d.name === "hearth-rag:browser-test" && d.version === 4), JSON.stringify(dbs));
});

test("after a page reload (new Worker, new connection) the documents are still there", async () => {
  const before = await ragRun({ task: "list" });
  const statsBefore = await ragRun({ task: "stats" });
  await page.reload({ timeout: 30_000 });
  await page.waitForFunction(() => window.ragPageReady === true, undefined, { timeout: 30_000 });
  const afterList = await ragRun({ task: "list" });
  assert.equal(afterList.length, 3);
  assert.deepEqual(afterList, before);
  assert.deepEqual(await ragRun({ task: "stats" }), statsBefore);
  const hits = await ragRun({ task: "search", query: "tyre pressure", k: 1 });
  assert.equal(hits[0].title, "Bicycle maintenance");
});
