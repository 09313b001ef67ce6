// The browser side of tests/test_serve_http.py's cross-site test: real headless Chromium against a running
// `hearth serve` (port P, native API on). `evil.test` is mapped to 127.0.0.1 (--host-resolver-rules), which is
// what a DNS-rebinding attack achieves. Prints one JSON line {evil: {...}, rebound: {...}, own: {...}}:
// - evil: a page at http://evil.test:Q (this script serves it) tries the requests any site can make without
//   CORS: a text/plain no-cors POST to http://127.0.0.1:P/v1/chat/completions and to http://evil.test:P/...,
//   a text/plain form POST, and a JSON POST (needs a preflight); what the page could see of each;
// - rebound: the page http://evil.test:P/ itself (after rebinding: same host and port as the server);
// - own: the server's own page (http://127.0.0.1:P/) POSTing JSON to /v1/chat/completions as the demo does.
// Run from sdk/ (playwright-core resolves there): node ../tests/support/browser_cross_site.mjs <P>
import { createServer } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BASE_FLAGS, CHROMIUM, SDK } from "../browser/lib/harness.mjs";

const port = Number(process.argv[2]);
const body = JSON.stringify({ model: "no-such-model", messages: [{ role: "user", content: "hi" }] });
const evilPage = `<!doctype html><title>evil</title>
<iframe name="sink"></iframe>
<form id="f" method="POST" enctype="text/plain" target="sink" action="http://127.0.0.1:${port}/v1/chat/completions">
<input name='{"model": "x", "pad": "' value='"}'></form>`;
const evil = createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/html" });
  res.end(evilPage);
});
await new Promise((r) => evil.listen(0, "127.0.0.1", r));
const evilPort = evil.address().port;

const { chromium } = createRequire(join(SDK, "package.json"))("playwright-core");
const profile = mkdtempSync(join(tmpdir(), "hearth-cross-site-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: false, // "--headless=new" in BASE_FLAGS
  args: [...BASE_FLAGS, "--host-resolver-rules=MAP evil.test 127.0.0.1"],
  timeout: 60_000,
});
const out = {};
try {
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`http://evil.test:${evilPort}/`, { timeout: 30_000 });
  out.evil = await page.evaluate(
    async ({ port, body }) => {
      const attempt = async (url, init) => {
        try {
          const r = await fetch(url, init);
          return { type: r.type, status: r.status, text: r.type === "opaque" ? null : await r.text() };
        } catch (e) {
          return { error: String(e) };
        }
      };
      const plain = { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body };
      return {
        noCors: await attempt(`http://127.0.0.1:${port}/v1/chat/completions`, plain),
        noCorsRebound: await attempt(`http://evil.test:${port}/v1/chat/completions`, plain),
        json: await attempt(`http://127.0.0.1:${port}/v1/chat/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, body }),
        read: await attempt(`http://127.0.0.1:${port}/models/`, {}),
      };
    },
    { port, body },
  );
  await Promise.all([page.waitForEvent("framenavigated", { timeout: 15_000 }).catch(() => null), page.evaluate(() => document.getElementById("f").submit())]);
  await page.waitForTimeout(500);

  const rebound = await page.goto(`http://evil.test:${port}/`, { timeout: 30_000 });
  out.rebound = { status: rebound?.status() ?? null, text: (await page.content()).slice(0, 300) };

  await page.goto(`http://127.0.0.1:${port}/`, { timeout: 30_000 });
  out.own = await page.evaluate(async (body) => {
    const r = await fetch("/v1/chat/completions", { method: "POST", headers: { "Content-Type": "application/json" }, body });
    const models = await fetch("/models/");
    return { status: r.status, json: await r.json(), models: models.status };
  }, body);
} finally {
  await context.close();
  evil.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify({ ...out, evilOrigin: `http://evil.test:${evilPort}` }));
