#!/usr/bin/env node
// Embeddings benchmark in ONE headless Chromium (Debian's /usr/bin/chromium, WebGPU on SwiftShader, driven
// by playwright-core from sdk/node_modules): Hearth's EncoderModel, transformers.js on WebGPU and
// transformers.js on WASM, one after the other, each in its own module Worker that is terminated before
// the next runtime starts.
//
// Usage: node bench/embed/browser.mjs <config.json>     (bench/embeddings.py writes the config)
//   config: {package, onnxRoot, modelId, runtimes: ["hearth-chromium","tfjs-webgpu","tfjs-wasm"],
//            batches: {runtime: [1,8,32]},
//            runs, warmup, benchTexts: [32 texts of 128 tokens], verifyTexts: [...], wasmThreads,
//            hearthPipelines?: "lazy" | "eager" (EncoderModel's pipelines option; default lazy),
//            llmPackage?, llm?: {runs, prefillLens, decodeNew, decodePrompt, ttftPrompt}}
//   runtime "hearth-llm-chromium": a decoder package (llmPackage) through sdk/scripts/bench-llm-protocol.mjs
//   instead of the embeddings protocol; its result is that protocol's {samples, skipped, breakdown, load}.
//   "hearth-llm-wasm-cpu-chromium": the same on the package's wasm-cpu build (the no-WebGPU path);
//   "hearth-llm-wasm-cpu-mt-chromium": its wasm-cpu-mt build with cfg.hearthWorkers worker threads.
//   "wllama-chromium" / "wllama-1t-chromium": llama.cpp's wasm (bench/wllama) on a GGUF (cfg.gguf, cfg.vocab,
//   cfg.wllamaThreads), CPU only, multi-threaded / one thread, same token ids and protocol.
//   "tfjs-llm-wasm-chromium" / "tfjs-llm-wasm-1t-chromium": transformers.js on onnxruntime-web's wasm backend,
//   the decoder export under cfg.onnxRoot/cfg.modelId (bench/transformersjs/export_onnx.py), with
//   cfg.wllamaThreads / one thread, through the same protocol as Hearth (page/tfjs-llm-worker.js).
// stdout: one JSON line {chromium, runtimes: {name: {load, verify: {vectors}, batches: [...]} | {error}}}
// stderr: progress and the browser console.
//
// The page is served with COOP/COEP headers (cross-origin isolated) so onnxruntime-web may use
// multi-threaded WASM (SharedArrayBuffer), as a production deployment of transformers.js would.
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const REPO = resolve(HERE, "..", "..");
const SDK = join(REPO, "sdk");
const requireFromSdk = createRequire(join(SDK, "package.json"));
// wllama (llama.cpp's wasm) lives in its own folder: bench/wllama (npm ci there).
const WLLAMA = join(REPO, "bench", "wllama", "node_modules", "@wllama", "wllama");
const CHROMIUM = process.env.HEARTH_CHROMIUM ?? "/usr/bin/chromium";
// The project's launch flags (tests/browser/lib/harness.mjs): new headless mode, WebGPU on SwiftShader.
const FLAGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
  "--disable-dev-shm-usage",
  "--enable-unsafe-webgpu",
];
const TASK_TIMEOUT_MS = Number(process.env.HEARTH_BENCH_TASK_TIMEOUT_MS ?? 1_800_000);
const MIME = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8", ".json": "application/json", ".wasm": "application/wasm" };

const err = (line) => process.stderr.write(`${line}\n`);

/** Static server: explicit mounts only, no caching, cross-origin isolated (COOP/COEP). */
async function serve(mounts) {
  const table = Object.entries(mounts).map(([p, d]) => [p, resolve(d)]).sort((a, b) => b[0].length - a[0].length);
  const server = createServer(async (req, res) => {
    const headers = { "cache-control": "no-store", "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" };
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const hit = table.find(([prefix]) => path.startsWith(prefix));
    const file = hit && resolve(join(hit[1], path.slice(hit[0].length)));
    const st = file && (file === hit[1] || file.startsWith(hit[1] + sep)) ? await stat(file).catch(() => undefined) : undefined;
    if (st === undefined || !st.isFile()) {
      res.writeHead(404, { ...headers, "content-type": "text/plain" });
      res.end(`not found: ${path}`);
      return;
    }
    res.writeHead(200, { ...headers, "content-type": MIME[extname(file)] ?? "application/octet-stream", "content-length": String(st.size) });
    if (req.method === "HEAD") return res.end();
    createReadStream(file).on("error", () => res.destroy()).pipe(res);
  });
  await new Promise((ok, fail) => server.once("error", fail).listen(0, "127.0.0.1", ok));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((ok) => { server.closeAllConnections(); server.close(() => ok()); }),
  };
}

/** Bundle the workers as an app would: Hearth from sdk/dist (+ its npm deps), transformers.js from bench/embed/node_modules. */
async function bundle(outDir) {
  const esbuild = requireFromSdk("esbuild");
  const engine = join(SDK, "dist", "engine.js");
  if (!existsSync(engine)) throw new Error("sdk/dist/engine.js is missing: run `npm run build` in sdk/ (make setup does)");
  if (!existsSync(join(HERE, "node_modules", "@huggingface", "transformers"))) {
    throw new Error("bench/embed/node_modules is missing: run `npm ci --ignore-scripts` in bench/embed/");
  }
  const common = { bundle: true, format: "esm", platform: "browser", target: "es2022", logLevel: "warning" };
  // Both Hearth workers (embeddings, LLM) in one build: out/hearth/worker.js and out/hearth-llm/worker.js.
  await esbuild.build({
    ...common,
    entryPoints: { "hearth/worker": join(HERE, "page", "hearth-worker.js"), "hearth-llm/worker": join(HERE, "page", "hearth-llm-worker.js") },
    outdir: outDir,
    plugins: [{ name: "hearth-sdk-engine", setup: (b) => b.onResolve({ filter: /^@hearth\/sdk\/engine$/ }, () => ({ path: engine })) }],
  });
  await esbuild.build({ ...common, entryPoints: { "tfjs/worker": join(HERE, "page", "tfjs-worker.js"), "tfjs-llm/worker": join(HERE, "page", "tfjs-llm-worker.js") }, outdir: outDir });
  if (existsSync(WLLAMA)) {
    await esbuild.build({ ...common, entryPoints: [join(HERE, "page", "wllama-runner.js")], outfile: join(outDir, "wllama", "worker.js"), nodePaths: [join(WLLAMA, "..", "..")] });
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([promise, new Promise((_, fail) => { timer = setTimeout(() => fail(new Error(`${what} timed out after ${ms} ms`)), ms); })]).finally(() => clearTimeout(timer));
}

async function main() {
  if (process.argv.length !== 3) throw new Error("usage: node bench/embed/browser.mjs <config.json>");
  const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set HEARTH_CHROMIUM)`);
  const work = mkdtempSync(join(tmpdir(), "hearth-bench-embed-"));
  let server;
  let context;
  try {
    await bundle(join(work, "bundle"));
    server = await serve({
      "/page/": join(HERE, "page"),
      "/bundle/": join(work, "bundle"),
      "/bundle/vendor/": join(SDK, "dist", "vendor"), // the SDK imports ../vendor/tvmjs.js relative to its bundle
      "/pkg/": cfg.package,
      ...(cfg.llmPackage ? { "/llm/": cfg.llmPackage } : {}),
      ...(cfg.gguf ? { "/gguf/": dirname(cfg.gguf), "/wllama/": join(WLLAMA, "esm") } : {}),
      "/models/": cfg.onnxRoot,
      "/ort/": join(HERE, "node_modules", "onnxruntime-web", "dist"),
    });
    const { chromium } = requireFromSdk("playwright-core");
    context = await chromium.launchPersistentContext(join(work, "profile"), {
      executablePath: CHROMIUM,
      headless: false, // --headless=new is in FLAGS; Playwright must not add its own mode flag
      args: FLAGS,
      timeout: 60_000,
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? work },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (m) => { if (process.env.HEARTH_BENCH_VERBOSE === "1" || m.type() === "error") err(`[chromium ${m.type()}] ${m.text()}`); });
    page.on("pageerror", (e) => err(`[chromium pageerror] ${e.message}`));
    await page.goto(`${server.origin}/page/index.html`, { timeout: 30_000 });
    await page.waitForFunction(() => window.benchPageReady === true, undefined, { timeout: 30_000 });
    const version = context.browser()?.version() ?? (await page.evaluate(() => navigator.userAgent));
    const run = async (task) => {
      const r = await withTimeout(page.evaluate((t) => window.benchRun(t), task), TASK_TIMEOUT_MS, `${task.worker} ${task.task}`);
      if (!r.ok) throw new Error(`${task.worker} ${task.task}: ${r.error.message}`);
      return r.result;
    };

    const out = { chromium: version, runtimes: {} };
    for (const name of cfg.runtimes) {
      const LLM = {
        "hearth-llm-chromium": "webgpu",
        "hearth-llm-wasm-cpu-chromium": "wasm-cpu",
        "hearth-llm-wasm-cpu-mt-chromium": "wasm-cpu-mt",
        "wllama-chromium": "wllama",
        "wllama-1t-chromium": "wllama",
        "tfjs-llm-wasm-chromium": "tfjs-llm",
        "tfjs-llm-wasm-1t-chromium": "tfjs-llm",
      };
      if (!["hearth-chromium", "tfjs-webgpu", "tfjs-wasm", ...Object.keys(LLM)].includes(name)) throw new Error(`unknown runtime ${name}`);
      const worker = name === "hearth-chromium" ? "hearth" : ["wllama", "tfjs-llm"].includes(LLM[name]) ? LLM[name] : name in LLM ? "hearth-llm" : "tfjs";
      const t0 = performance.now();
      if (name in LLM) {
        try {
          const multi = name.endsWith("-1t-chromium") ? 1 : cfg.wllamaThreads;
          const task = LLM[name] === "wllama"
            ? { worker, task: "llm", url: `/gguf/${basename(cfg.gguf)}`, threads: multi, vocab: cfg.vocab, ...cfg.llm }
            : LLM[name] === "tfjs-llm"
              ? { worker, task: "llm", modelRoot: "/models/", modelId: cfg.modelId, ortDir: "/ort/", threads: multi, dtype: cfg.tfjsDtype ?? "q8", ...cfg.llm }
              : { worker, task: "llm", url: "/llm/", target: LLM[name], threads: cfg.hearthWorkers, spin: cfg.hearthSpin, ...cfg.llm };
          err(`chromium: ${name}: ${task.url === "/llm/" ? cfg.llmPackage : task.modelRoot ? `${cfg.onnxRoot}/${cfg.modelId}` : cfg.gguf}`);
          out.runtimes[name] = { ...(await run(task)), wallMs: performance.now() - t0 };
        } catch (e) {
          err(`chromium: ${name}: FAILED: ${e.message}`);
          out.runtimes[name] = { error: String(e.message), wallMs: performance.now() - t0 };
        } finally {
          await run({ worker, task: "terminate" }).catch(() => {});
        }
        continue;
      }
      try {
        err(`chromium: ${name}: loading`);
        const load = name === "hearth-chromium"
          ? await run({ worker, task: "load", url: "/pkg/", pipelines: cfg.hearthPipelines })
          : await run({ worker, task: "load", device: name === "tfjs-webgpu" ? "webgpu" : "wasm", modelRoot: "/models/", modelId: cfg.modelId, ortDir: "/ort/", threads: cfg.wasmThreads });
        err(`chromium: ${name}: loaded in ${load.loadMs.toFixed(0)} ms`);
        const verify = await run({ worker, task: "embed", texts: cfg.verifyTexts });
        const batches = [];
        for (const batch of cfg.batches[name] ?? []) {
          const r = await run({ worker, task: "bench", texts: cfg.benchTexts, batch, runs: cfg.runs, warmup: cfg.warmup });
          const med = [...r.sentencesPerSec].sort((a, b) => a - b)[Math.floor(r.sentencesPerSec.length / 2)];
          err(`chromium: ${name}: batch ${batch}: ${med.toFixed(2)} sentences/s (median of ${r.ms.length}; warm-up ${r.warmupMs.map((m) => m.toFixed(0)).join(",")} ms)`);
          batches.push(r);
        }
        out.runtimes[name] = { load, verify, batches, wallMs: performance.now() - t0 };
      } catch (e) {
        err(`chromium: ${name}: FAILED: ${e.message}`);
        out.runtimes[name] = { error: String(e.message), wallMs: performance.now() - t0 };
      } finally {
        await run({ worker, task: "terminate" }).catch(() => {});
      }
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    await context?.close().catch((e) => err(`warning: closing Chromium: ${e.message}`));
    await server?.close();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  err(e?.stack ?? String(e));
  process.stdout.write(`${JSON.stringify({ error: String(e?.message ?? e) })}\n`);
  process.exitCode = 2;
});
