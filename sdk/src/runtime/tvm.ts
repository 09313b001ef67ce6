/**
 * Load tvmjs (`@mlc-ai/web-runtime`), a TVM-compiled WebGPU wasm library, and its tensor cache.
 *
 * tvmjs is published as a UMD bundle only:
 * - Node (ESM): loaded with `createRequire` (reached through `process.getBuiltinModule`, so this file has
 *   no static `node:` import and stays browser-safe).
 * - Browser / module Worker: `npm run build` writes `dist/vendor/tvmjs.js`, an ES-module wrapper around
 *   the same UMD file (scripts/vendor-tvmjs.mjs); it is imported relative to this module.
 */
import type { TvmArtifactCache, TvmInstance, TvmjsModule, TvmVirtualMachine } from "./tvmjs-types.js";
import { nodeProcess } from "../platform/node.js";

export type Logger = (msg: string) => void;

/** A `fetch`-compatible function (the engine only needs GET + signal). */
export type FetchLike = (url: string, init?: { signal?: AbortSignal }) => Promise<Response>;

function asTvmjs(mod: unknown, from: string): TvmjsModule {
  const m = mod as Partial<TvmjsModule> | null | undefined;
  if (typeof m?.instantiate !== "function" || typeof m.createPolyfillWASI !== "function") {
    throw new Error(`tvmjs loaded from ${from} does not export instantiate/createPolyfillWASI`);
  }
  return m as TvmjsModule;
}

async function importTvmjs(): Promise<TvmjsModule> {
  const proc = nodeProcess();
  if (proc !== undefined) {
    if (typeof proc.getBuiltinModule !== "function") {
      throw new Error(`@hearth/sdk needs Node >= 20.16 (process.getBuiltinModule); this is Node ${proc.versions?.node}`);
    }
    const { createRequire } = proc.getBuiltinModule("node:module") as {
      createRequire(url: string): (id: string) => unknown;
    };
    return asTvmjs(createRequire(import.meta.url)("@mlc-ai/web-runtime"), "@mlc-ai/web-runtime (require)");
  }
  const url = new URL("../vendor/tvmjs.js", import.meta.url).href;
  let mod: { default?: unknown };
  try {
    mod = (await import(/* @vite-ignore */ url)) as { default?: unknown };
  } catch (err) {
    throw new Error(`Cannot import the tvmjs ES module wrapper at ${url} (run \`npm run build\` in sdk/, which writes dist/vendor/tvmjs.js)`, { cause: err });
  }
  return asTvmjs(mod.default, url);
}

let tvmjsPromise: Promise<TvmjsModule> | undefined;

/**
 * Use `mod` as this realm's tvmjs instead of importing it. The prebuilt worker bundle
 * (dist/browser/engine-worker.js) calls this with the tvmjs it embeds, so the bundle needs no
 * `../vendor/tvmjs.js` beside it: copied anywhere (a bundler's assets folder), it still runs.
 */
export function provideTvmjs(mod: unknown): void {
  tvmjsPromise = Promise.resolve(asTvmjs(mod, "provideTvmjs()"));
}

/**
 * The tvmjs module, loaded once per realm. (It must be cached: in Node, tvmjs's emscripten glue
 * overwrites its own CommonJS `module.exports` the first time createPolyfillWASI() runs.)
 */
export function loadTvmjs(): Promise<TvmjsModule> {
  tvmjsPromise ??= importTvmjs().catch((err: unknown) => {
    tvmjsPromise = undefined;
    throw err;
  });
  return tvmjsPromise;
}

export interface TVMLibrary {
  tvm: TvmInstance;
  /** Relax VM on the WebGPU device; detached from any scope, owned by this object. */
  vm: TvmVirtualMachine;
  /** Milliseconds spent in instantiate / WebGPU pipeline compilation / VM creation. */
  timings: { instantiateMs: number; pipelinesMs: number; vmMs: number };
  /** Dispose the VM and the runtime. The runtime's dispose also destroys the GPUDevice. */
  dispose(): void;
}

/** Ensure a base URL ends with "/" so relative names resolve inside it. */
export function asDirectoryUrl(url: string): string {
  return url.endsWith("/") ? url : `${url}/`;
}

async function fetchOk(fetchFn: FetchLike, url: string, signal?: AbortSignal): Promise<Response> {
  const res = await fetchFn(url, signal === undefined ? {} : { signal });
  if (!res.ok) throw new Error(`GET ${url} failed: HTTP ${res.status} ${res.statusText}`.trimEnd());
  return res;
}

/**
 * In-memory tvmjs artifact cache: fetches each URL once with the given `fetch` and keeps the bytes.
 * Used where Cache Storage / IndexedDB are absent (Node) or not wanted (tests, one-shot loads).
 */
export class MemoryArtifactCache implements TvmArtifactCache {
  private readonly store = new Map<string, ArrayBuffer>();
  private readonly inflight = new Map<string, Promise<ArrayBuffer>>();
  private readonly fetchFn: FetchLike;

  constructor(fetchFn?: FetchLike) {
    const f = fetchFn ?? (globalThis.fetch?.bind(globalThis) as FetchLike | undefined);
    if (f === undefined) throw new Error("MemoryArtifactCache: no fetch available; pass one");
    this.fetchFn = f;
  }

  private async bytes(url: string, signal?: AbortSignal): Promise<ArrayBuffer> {
    const hit = this.store.get(url);
    if (hit !== undefined) return hit;
    let pending = this.inflight.get(url);
    if (pending === undefined) {
      pending = fetchOk(this.fetchFn, url, signal)
        .then((res) => res.arrayBuffer())
        .then((buf) => {
          this.store.set(url, buf);
          return buf;
        })
        .finally(() => this.inflight.delete(url));
      this.inflight.set(url, pending);
    }
    return pending;
  }

  async fetchWithCache(url: string, storetype?: string, signal?: AbortSignal): Promise<unknown> {
    const buf = await this.bytes(url, signal);
    if (storetype === "json") return JSON.parse(new TextDecoder().decode(buf)) as unknown;
    if (storetype === "arraybuffer") return buf;
    return new Response(buf);
  }

  async addToCache(url: string, _storetype?: string, signal?: AbortSignal): Promise<void> {
    await this.bytes(url, signal);
  }

  async hasAllKeys(keys: string[]): Promise<boolean> {
    return keys.every((k) => this.store.has(k));
  }

  async deleteInCache(url: string): Promise<void> {
    this.store.delete(url);
  }

  /** Total bytes held. */
  get size(): number {
    let n = 0;
    for (const b of this.store.values()) n += b.byteLength;
    return n;
  }
}

/** One record of tensor-cache.json (as written by tvm.contrib.tvmjs.dump_tensor_cache). */
export interface TensorCacheRecord {
  name: string;
  shape: number[];
  dtype: string;
  format: string;
  nbytes: number;
  byteOffset: number;
}

export interface TensorCacheShard {
  dataPath: string;
  format: string;
  nbytes: number;
  records: TensorCacheRecord[];
}

export interface TensorCacheManifest {
  metadata: Record<string, unknown>;
  records: TensorCacheShard[];
}

export interface LoadTensorCacheOptions {
  /** Used when no `artifactCache` is given (default: global fetch). */
  fetch?: FetchLike | undefined;
  /** Where shards are cached; default: a fresh {@link MemoryArtifactCache} dropped after loading. */
  artifactCache?: TvmArtifactCache | undefined;
  signal?: AbortSignal | undefined;
}

export interface LoadedTensorCache {
  manifest: TensorCacheManifest;
  /** Parameter names in file order. */
  names: string[];
  totalBytes: number;
  loadMs: number;
}

/**
 * Load `<baseUrl>/tensor-cache.json` and its shards onto the runtime's WebGPU device (tvmjs's
 * `fetchTensorCache`). Afterwards `tvm.getParamsFromCacheByName(names)` returns the weights.
 */
export async function loadTensorCache(tvm: TvmInstance, baseUrl: string, opts: LoadTensorCacheOptions = {}): Promise<LoadedTensorCache> {
  const base = asDirectoryUrl(baseUrl);
  const cache = opts.artifactCache ?? new MemoryArtifactCache(opts.fetch);
  const t0 = performance.now();
  const manifest = parseTensorCacheManifest(await cache.fetchWithCache(new URL("tensor-cache.json", base).href, "json", opts.signal));
  await tvm.fetchTensorCache(base, tvm.webgpu(), {
    artifactCache: cache,
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
  });
  const names = manifest.records.flatMap((s) => s.records.map((r) => r.name));
  const totalBytes = manifest.records.reduce((n, s) => n + s.nbytes, 0);
  return { manifest, names, totalBytes, loadMs: performance.now() - t0 };
}

function fail(msg: string): never {
  throw new Error(`tensor-cache.json: ${msg}`);
}

/** Validate the shape of a tensor-cache.json document. */
export function parseTensorCacheManifest(json: unknown): TensorCacheManifest {
  if (typeof json !== "object" || json === null) fail("not an object");
  const obj = json as { metadata?: unknown; records?: unknown };
  if (!Array.isArray(obj.records)) fail("missing records[]");
  const shards = obj.records.map((s: unknown, i): TensorCacheShard => {
    const shard = s as Partial<TensorCacheShard> | null;
    if (typeof shard?.dataPath !== "string" || !Array.isArray(shard.records)) {
      fail(`records[${i}] is not a shard with dataPath and records[]`);
    }
    const records = shard.records.map((r: unknown, j): TensorCacheRecord => {
      const rec = r as Partial<TensorCacheRecord> | null;
      if (
        typeof rec?.name !== "string" ||
        !Array.isArray(rec.shape) ||
        typeof rec.dtype !== "string" ||
        typeof rec.nbytes !== "number" ||
        typeof rec.byteOffset !== "number"
      ) {
        fail(`records[${i}].records[${j}] lacks name/shape/dtype/nbytes/byteOffset`);
      }
      return {
        name: rec.name,
        shape: rec.shape.map(Number),
        dtype: rec.dtype,
        format: typeof rec.format === "string" ? rec.format : "raw",
        nbytes: rec.nbytes,
        byteOffset: rec.byteOffset,
      };
    });
    return {
      dataPath: shard.dataPath,
      format: typeof shard.format === "string" ? shard.format : "raw-shard",
      nbytes: typeof shard.nbytes === "number" ? shard.nbytes : 0,
      records,
    };
  });
  const metadata = typeof obj.metadata === "object" && obj.metadata !== null ? (obj.metadata as Record<string, unknown>) : {};
  return { metadata, records: shards };
}
