/**
 * Service worker of the demo: makes the app work offline after the first visit.
 *
 * What it caches, and how:
 *  - The app shell (every file of the build, listed by tools/pwa-plugin.ts in PRECACHE): precached at
 *    install, served cache-first. Navigations are network-first (so a new build shows up at once when
 *    the server is reachable) and fall back to the cached index.html.
 *  - Model metadata under /models/ (the package list `/models/` and every `.json` of a package:
 *    hearth-manifest.json, mlc-chat-config.json, tokenizer.json, tensor-cache.json): network-first,
 *    stored in MODELS_CACHE, served from there when the network fails.
 *  - Model weights and wasm libraries are NOT copied here: the SDK's loader already keeps every package
 *    file it verified (SHA-256) in its own store (Cache Storage "hearth-artifacts", keyed by the file's
 *    hash) and reads them back from there without any request. A second copy would double the storage
 *    a model takes. Those requests pass straight through to the network.
 *
 * Local only: requests to any other origin are refused (a network error), so neither the page nor its
 * workers can send anything elsewhere while this worker controls them.
 */
/// <reference lib="WebWorker" />
export {};
declare const self: ServiceWorkerGlobalScope;

interface PrecacheManifest {
  version: string;
  files: string[];
}

// Replaced at build time by tools/pwa-plugin.ts with the literal {version, files}.
declare const __HEARTH_PRECACHE__: PrecacheManifest;
const PRECACHE: PrecacheManifest = __HEARTH_PRECACHE__;

const SHELL_PREFIX = "hearth-demo-shell-";
const SHELL_CACHE = `${SHELL_PREFIX}${PRECACHE.version}`;
const MODELS_CACHE = "hearth-demo-model-meta";

const scopeUrl = new URL(self.registration.scope);
const shellUrls = PRECACHE.files.map((f) => new URL(f, scopeUrl).href);
const indexUrl = new URL("./", scopeUrl).href;

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(SHELL_CACHE);
      // cache: "reload" bypasses the HTTP cache, so the shell is what the server has now.
      await cache.addAll(shellUrls.map((url) => new Request(url, { cache: "reload" })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(SHELL_PREFIX) && name !== SHELL_CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("message", (event) => {
  const data = event.data as { type?: string } | null;
  if (data?.type === "version") event.ports[0]?.postMessage({ version: PRECACHE.version, files: PRECACHE.files.length });
});

function isModelMeta(url: URL): boolean {
  return url.pathname.startsWith("/models/") && (url.pathname.endsWith("/models/") || url.pathname.endsWith(".json"));
}

async function networkFirst(request: Request, cacheName: string, fallbackUrl?: string): Promise<Response> {
  const cache = await caches.open(cacheName);
  try {
    const response = await fetch(request);
    if (response.ok && response.status === 200) await cache.put(request, response.clone());
    return response;
  } catch (err) {
    const cached = (await cache.match(request, { ignoreSearch: false })) ?? (await cache.match(request, { ignoreSearch: true }));
    if (cached !== undefined) return cached;
    if (fallbackUrl !== undefined) {
      const shell = await caches.match(fallbackUrl);
      if (shell !== undefined) return shell;
    }
    throw err;
  }
}

async function cacheFirst(request: Request): Promise<Response> {
  const cache = await caches.open(SHELL_CACHE);
  const cached = await cache.match(request, { ignoreSearch: true });
  if (cached !== undefined) return cached;
  return fetch(request);
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  // Local only: the app never talks to another origin, so nothing the page or its workers request
  // may leave for one (a network error instead).
  if (url.origin !== scopeUrl.origin) {
    if (url.protocol === "http:" || url.protocol === "https:") event.respondWith(Response.error());
    return;
  }
  if (request.method !== "GET") return;
  if (url.pathname.startsWith("/models/")) {
    if (isModelMeta(url)) event.respondWith(networkFirst(request, MODELS_CACHE));
    return; // weights and wasm: the SDK's verified store (see the header)
  }
  if (request.mode === "navigate") {
    event.respondWith(networkFirst(request, SHELL_CACHE, indexUrl));
    return;
  }
  if (shellUrls.includes(url.origin + url.pathname)) event.respondWith(cacheFirst(request));
});
