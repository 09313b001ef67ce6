/**
 * WebLLM's own engine (@mlc-ai/web-llm) in Node on Dawn, loading a package from disk.
 *
 * WebLLM is written for browsers; what it needs in Node (found by running it, see docs/webllm.md):
 *   - `navigator.gpu`: Dawn from the `webgpu` package (installNodeGPU).
 *   - An http(s) origin: WebLLM resolves model URLs against `location` and fetches with `fetch`, which in
 *     Node refuses file:// URLs. A 127.0.0.1 server serves the package the way Hugging Face does
 *     (`<model>/resolve/main/<file>`; WebLLM appends `resolve/main/` to a model URL) and the model
 *     library under `/lib/`.
 *   - `caches` (the Cache Storage API WebLLM stores downloads in): an in-memory stand-in.
 *   - The bundled tvmjs (emscripten) takes its Node branch when `process.versions.node` is set, and that
 *     branch needs `__dirname` and overwrites the bundle's module exports. WebLLM is therefore imported and
 *     its engine created while `process.versions.node` is hidden ({@link asBrowser}); Node's own fetch
 *     (undici) is loaded first, because it reads that field when it loads.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { basename, join, normalize, sep } from "node:path";
import type * as WebLLM from "@mlc-ai/web-llm";
import { installNodeGPU } from "./node-gpu.js";

export interface PackageServer {
  origin: string;
  /** The model URL for a WebLLM ModelRecord (`model`). */
  modelUrl: string;
  /** The model library URL (`model_lib`). */
  libUrl: string;
  /** Every path requested, in order (so a test can show what WebLLM read). */
  requests: string[];
  close(): Promise<void>;
}

/** Serve `packageDir` as `/<modelId>/resolve/main/*` and `wasmPath` as `/lib/<its name>` on 127.0.0.1. */
export async function servePackage(packageDir: string, modelId: string, wasmPath: string): Promise<PackageServer> {
  const requests: string[] = [];
  const prefix = `/${modelId}/resolve/main/`;
  const libPath = `/lib/${basename(wasmPath)}`;
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    requests.push(path);
    let file: string | null = null;
    if (path === libPath) file = wasmPath;
    else if (path.startsWith(prefix)) {
      const candidate = normalize(join(packageDir, path.slice(prefix.length)));
      if (candidate.startsWith(normalize(packageDir) + sep)) file = candidate;
    }
    if (file === null || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": file.endsWith(".json") ? "application/json" : "application/octet-stream" });
    res.end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("package server has no TCP address");
  const origin = `http://127.0.0.1:${address.port}`;
  return {
    origin,
    modelUrl: `${origin}/${modelId}`,
    libUrl: origin + libPath,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** An in-memory Cache Storage: enough of `caches` for WebLLM's ArtifactCache. */
function memoryCaches(): CacheStorage {
  const stores = new Map<string, Map<string, Response>>();
  const key = (r: RequestInfo | URL): string => (typeof r === "string" ? r : r instanceof URL ? r.href : r.url);
  const open = async (name: string): Promise<Cache> => {
    let m = stores.get(name);
    if (m === undefined) stores.set(name, (m = new Map()));
    const store = m;
    const cache = {
      match: async (r: RequestInfo | URL) => store.get(key(r))?.clone(),
      add: async (r: RequestInfo | URL) => {
        const resp = await fetch(key(r));
        if (!resp.ok) throw new Error(`GET ${key(r)}: HTTP ${resp.status}`);
        store.set(key(r), resp);
      },
      put: async (r: RequestInfo | URL, resp: Response) => void store.set(key(r), resp),
      keys: async () => [...store.keys()].map((u) => new Request(u)),
      delete: async (r: RequestInfo | URL) => store.delete(key(r)),
    };
    return cache as unknown as Cache;
  };
  return {
    open,
    has: async (name: string) => stores.has(name),
    delete: async (name: string) => stores.delete(name),
    keys: async () => [...stores.keys()],
    match: async () => undefined,
  } as unknown as CacheStorage;
}

/** Run `fn` with `process.versions.node` hidden, so bundled emscripten code takes its browser branch. */
export async function asBrowser<T>(fn: () => Promise<T>): Promise<T> {
  const versions = process.versions;
  Object.defineProperty(process, "versions", { value: { ...versions, node: undefined }, configurable: true, writable: true });
  try {
    return await fn();
  } finally {
    Object.defineProperty(process, "versions", { value: versions, configurable: true, writable: true });
  }
}

/** Install the browser stand-ins for `origin` and import WebLLM. */
export async function importWebLLM(origin: string): Promise<typeof WebLLM> {
  await installNodeGPU();
  const g = globalThis as Record<string, unknown>;
  g["location"] = new URL(origin + "/");
  g["caches"] = memoryCaches();
  await (await fetch(origin + "/")).arrayBuffer(); // loads undici while process.versions.node is visible
  return asBrowser(() => import("@mlc-ai/web-llm"));
}
