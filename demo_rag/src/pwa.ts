/**
 * Service worker registration (production builds only: `vite dev` serves modules that a precache list
 * cannot know). Resolves to a short status for the diagnostics panel.
 */
export async function registerServiceWorker(): Promise<string> {
  if (!import.meta.env.PROD) return "off in development";
  if (!("serviceWorker" in navigator)) return "not supported by this browser";
  try {
    const reg = await navigator.serviceWorker.register(new URL("sw.js", document.baseURI), { scope: "./" });
    await navigator.serviceWorker.ready;
    const version = await swVersion(reg.active);
    return version === null ? "active" : `ready · ${version.files} files cached · ${version.version}`;
  } catch (err) {
    return `failed: ${err instanceof Error ? err.message : String(err)}`;
  }
}

function swVersion(worker: ServiceWorker | null): Promise<{ version: string; files: number } | null> {
  if (worker === null) return Promise.resolve(null);
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => resolve(null), 2000);
    channel.port1.onmessage = (e: MessageEvent<{ version: string; files: number }>) => {
      clearTimeout(timer);
      resolve(e.data);
    };
    worker.postMessage({ type: "version" }, [channel.port2]);
  });
}

/**
 * Put the model metadata this page uses into the service worker's cache: the package list and every
 * .json file of the packages (manifest, config, tokenizer). On a first visit the page loads before the
 * service worker controls it, so those requests bypassed it; fetching them again once it does makes
 * the next visit work offline. Weights are not fetched again (the SDK's store already has them).
 */
export async function warmOfflineCache(indexUrl: string, packageUrls: string[]): Promise<number> {
  if (!import.meta.env.PROD || !("serviceWorker" in navigator)) return 0;
  await navigator.serviceWorker.ready;
  if (navigator.serviceWorker.controller === null) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 10_000);
      navigator.serviceWorker.addEventListener(
        "controllerchange",
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    });
  }
  if (navigator.serviceWorker.controller === null) return 0;
  const urls = new Set<string>([indexUrl]);
  for (const base of packageUrls) {
    const manifestUrl = new URL("hearth-manifest.json", base).href;
    urls.add(manifestUrl);
    try {
      const manifest = (await (await fetch(manifestUrl, { cache: "no-cache" })).json()) as { files?: { path: string }[] };
      for (const f of manifest.files ?? []) if (f.path.endsWith(".json")) urls.add(new URL(f.path, base).href);
    } catch {
      // offline already: nothing to refresh
    }
  }
  let ok = 0;
  await Promise.all(
    [...urls].map(async (u) => {
      try {
        if ((await fetch(u, { cache: "no-cache" })).ok) ok++;
      } catch {
        // offline: the cached copy stays
      }
    }),
  );
  return ok;
}
