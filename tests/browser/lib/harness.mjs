// Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core from sdk/node_modules) +
// the static server + the harness page, with timeouts and guaranteed cleanup.
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startStaticServer } from "./server.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
export const REPO = join(here, "..", "..", "..");
export const SDK = join(REPO, "sdk");
// playwright-core is a devDependency of sdk/ (the repo has no root package.json).
const requireFromSdk = createRequire(join(SDK, "package.json"));

export const CHROMIUM = process.env.HEARTH_CHROMIUM ?? "/usr/bin/chromium";
export const WEBGPU_FLAGS = ["--enable-unsafe-webgpu"];
export const BASE_FLAGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
  "--disable-dev-shm-usage",
];
export const TASK_TIMEOUT_MS = Number(process.env.HEARTH_BROWSER_TIMEOUT_MS ?? 180_000);
const LAUNCH_TIMEOUT_MS = 60_000;
const CLOSE_TIMEOUT_MS = 10_000;

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, fail) => {
      timer = setTimeout(() => fail(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Start the static server and Chromium and open the harness page. Call close() when done (always).
 * run(task) posts {task, ...args} to the module Worker and resolves to {ok, result} | {ok:false, error}.
 *
 * @param {{ mounts?: Record<string,string>, webgpu?: boolean, onLog?: (line: string) => void }} opts
 * @returns {Promise<{origin: string, launchMs: number, run: (task: object, timeoutMs?: number) => Promise<any>, close: () => Promise<void>}>}
 */
export async function openBrowser(opts = {}) {
  const onLog = opts.onLog ?? ((line) => process.stderr.write(`${line}\n`));
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set HEARTH_CHROMIUM)`);
  if (!existsSync(join(SDK, "dist", "index.js")) || !existsSync(join(SDK, "dist", "vendor", "tvmjs.js"))) {
    throw new Error("sdk/dist is missing or incomplete: run `npm run build` in sdk/ first");
  }
  const { chromium } = requireFromSdk("playwright-core");
  const server = await startStaticServer({
    "/sdk/dist/": join(SDK, "dist"),
    "/harness/": join(here, "..", "page"),
    ...(opts.mounts ?? {}),
  });
  const userDataDir = mkdtempSync(join(tmpdir(), "hearth-chromium-"));
  let context;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    if (context !== undefined) {
      await withTimeout(context.close(), CLOSE_TIMEOUT_MS, "closing Chromium").catch((err) => {
        // Playwright kills the browsers it launched when this process exits.
        onLog(`warning: ${err.message}; Chromium will be killed at exit`);
      });
    }
    await server.close();
    rmSync(userDataDir, { recursive: true, force: true });
  };
  try {
    const t0 = performance.now();
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: false, // "--headless=new" in BASE_FLAGS makes it headless; Playwright must not add its own mode flag
      args: [...BASE_FLAGS, ...(opts.webgpu === false ? [] : WEBGPU_FLAGS)],
      timeout: LAUNCH_TIMEOUT_MS,
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? userDataDir },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (m) => onLog(`[chromium ${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => onLog(`[chromium pageerror] ${e.message}`));
    await page.goto(`${server.origin}/harness/index.html`, { timeout: 30_000 });
    await page.waitForFunction(() => window.hearthPageReady === true, undefined, { timeout: 30_000 });
    const launchMs = performance.now() - t0;
    const run = (task, timeoutMs = TASK_TIMEOUT_MS) =>
      withTimeout(page.evaluate((t) => window.hearthRun(t), task), timeoutMs, `browser task ${task.task}`);
    return { origin: server.origin, launchMs, run, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * openBrowser + fn + close (in a finally).
 * @template T
 * @param {Parameters<typeof openBrowser>[0]} opts
 * @param {(h: Awaited<ReturnType<typeof openBrowser>>) => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function withBrowser(opts, fn) {
  const h = await openBrowser(opts);
  try {
    return await fn(h);
  } finally {
    await h.close();
  }
}
