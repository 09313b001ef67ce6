/**
 * Where verified package files are kept between loads: an {@link ArtifactStore}.
 *
 * Keys are content-addressed and versioned: `hearth/v1/<model_id>/<quantization>/<sha256>` (see
 * {@link artifactKey}), the SHA-256 being the one hearth-manifest.json lists for the file. An updated
 * package therefore never reads stale bytes (its changed files have new keys), and the keys of older
 * versions of the same `<model_id>/<quantization>` can be listed and purged after a successful load.
 * Every stored file is still re-hashed when a load reads it (see loadPackage), so a store is a cache,
 * never a source of trust.
 *
 * Backends:
 * - {@link CacheStorageStore}: the browser Cache Storage API (`caches.open`), the default in browsers.
 * - {@link IndexedDBStore}: IndexedDB, one object store of ArrayBuffers.
 * - {@link MemoryArtifactStore}: a Map (tests, or a process that loads the same package twice).
 * - `FileSystemArtifactStore` (./fs-store.ts): files on disk, for Node.
 * - Your own: anything implementing {@link ArtifactStore}.
 */

import { InvalidRequestError } from "../errors/engine.js";

/** Persistent storage for verified package files, keyed by {@link artifactKey}. */
export interface ArtifactStore {
  /** A short name for logs and reports ("cache-storage", "indexeddb", "memory", "fs", ...). */
  readonly kind: string;
  /** The bytes stored under `key`, or undefined. A returned buffer must not be modified by the caller. */
  get(key: string): Promise<ArrayBuffer | undefined>;
  /** Whether `key` is present (without reading it, where the backend allows). */
  has(key: string): Promise<boolean>;
  /** Store `bytes` under `key` (replacing). May throw a quota error (DOMException "QuotaExceededError"). */
  put(key: string, bytes: ArrayBuffer): Promise<void>;
  /** Remove `key` (no error when absent). */
  delete(key: string): Promise<void>;
  /** Every key starting with `prefix`. */
  keys(prefix: string): Promise<string[]>;
}

/** Key namespace and format version. Bump the version when the key layout changes. */
export const STORE_NAMESPACE = "hearth/v1";

/** One key segment: URI-encoded, never empty, never "." or "..", never containing "/". */
function segment(s: string): string {
  if (s === "") return "_";
  const enc = encodeURIComponent(s);
  return /^\.+$/.test(enc) ? enc.replace(/\./g, "%2E") : enc;
}

/** `hearth/v1/<model_id>/<quantization>/`: every file of every version of one package variant. */
export function packageKeyPrefix(modelId: string, quantization: string): string {
  return `${STORE_NAMESPACE}/${segment(modelId)}/${segment(quantization)}/`;
}

/** `hearth/v1/<model_id>/<quantization>/<sha256>`: the key of one verified file. */
export function artifactKey(modelId: string, quantization: string, sha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`artifactKey: ${JSON.stringify(sha256)} is not a lower-case hex SHA-256`);
  return packageKeyPrefix(modelId, quantization) + sha256;
}

/** Key under which the last good manifest of a package URL is kept (offline fallback). */
export function manifestKey(packageUrl: string): string {
  return `${STORE_NAMESPACE}/manifest/${segment(packageUrl)}`;
}

/** The digest part of an artifact key, or undefined for other keys (e.g. manifests). */
export function keyDigest(key: string): string | undefined {
  const m = /\/([0-9a-f]{64})$/.exec(key);
  return m?.[1];
}

// -- memory -------------------------------------------------------------------------------------

/** An in-memory store (a Map). Lives as long as the object. */
export class MemoryArtifactStore implements ArtifactStore {
  readonly kind = "memory";
  private readonly map = new Map<string, ArrayBuffer>();

  async get(key: string): Promise<ArrayBuffer | undefined> {
    return this.map.get(key);
  }
  async has(key: string): Promise<boolean> {
    return this.map.has(key);
  }
  async put(key: string, bytes: ArrayBuffer): Promise<void> {
    this.map.set(key, bytes);
  }
  async delete(key: string): Promise<void> {
    this.map.delete(key);
  }
  async keys(prefix: string): Promise<string[]> {
    return [...this.map.keys()].filter((k) => k.startsWith(prefix));
  }
  /** Total bytes held. */
  get size(): number {
    let n = 0;
    for (const b of this.map.values()) n += b.byteLength;
    return n;
  }
}

// -- Cache Storage ------------------------------------------------------------------------------

/**
 * Cache Storage names requests by URL, and `Cache.put` accepts only http(s) URLs; keys become
 * `https://hearth.invalid/<key>` (the reserved .invalid TLD: never fetched, only a name).
 */
const CACHE_URL_BASE = "https://hearth.invalid/";

export class CacheStorageStore implements ArtifactStore {
  readonly kind = "cache-storage";
  private cachePromise: Promise<Cache> | undefined;

  /**
   * @param cacheName the Cache Storage cache to use (default "hearth-artifacts").
   * @param storage `caches` (default: globalThis.caches).
   */
  constructor(
    readonly cacheName = "hearth-artifacts",
    private readonly storage: CacheStorage | undefined = (globalThis as { caches?: CacheStorage }).caches,
  ) {}

  /** Whether Cache Storage exists here (absent in Node and in insecure contexts). */
  static available(): boolean {
    return typeof (globalThis as { caches?: unknown }).caches === "object";
  }

  private cache(): Promise<Cache> {
    if (this.storage === undefined) {
      return Promise.reject(new Error("Cache Storage (globalThis.caches) is unavailable here (Node, or an insecure http:// page): use another store"));
    }
    this.cachePromise ??= this.storage.open(this.cacheName);
    return this.cachePromise;
  }

  async get(key: string): Promise<ArrayBuffer | undefined> {
    const res = await (await this.cache()).match(CACHE_URL_BASE + key);
    return res === undefined ? undefined : res.arrayBuffer();
  }
  async has(key: string): Promise<boolean> {
    return (await (await this.cache()).match(CACHE_URL_BASE + key)) !== undefined;
  }
  async put(key: string, bytes: ArrayBuffer): Promise<void> {
    const res = new Response(bytes, {
      headers: { "content-type": "application/octet-stream", "content-length": String(bytes.byteLength) },
    });
    await (await this.cache()).put(CACHE_URL_BASE + key, res);
  }
  async delete(key: string): Promise<void> {
    await (await this.cache()).delete(CACHE_URL_BASE + key);
  }
  async keys(prefix: string): Promise<string[]> {
    const reqs = await (await this.cache()).keys();
    return reqs
      .map((r) => r.url)
      .filter((u) => u.startsWith(CACHE_URL_BASE + prefix))
      .map((u) => u.slice(CACHE_URL_BASE.length));
  }
}

// -- IndexedDB ----------------------------------------------------------------------------------

function idbRequest<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB request failed"));
  });
}

function idbDone(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error("IndexedDB transaction failed"));
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
  });
}

/** IndexedDB: database `dbName`, object store "files", key -> ArrayBuffer. */
export class IndexedDBStore implements ArtifactStore {
  readonly kind = "indexeddb";
  static readonly OBJECT_STORE = "files";
  private dbPromise: Promise<IDBDatabase> | undefined;

  /**
   * @param dbName database name (default "hearth-artifacts").
   * @param factory `indexedDB` (default: globalThis.indexedDB); tests can pass fake-indexeddb's.
   * @param keyRange `IDBKeyRange` (default: globalThis.IDBKeyRange).
   */
  constructor(
    readonly dbName = "hearth-artifacts",
    private readonly factory: IDBFactory | undefined = (globalThis as { indexedDB?: IDBFactory }).indexedDB,
    private readonly keyRange: typeof IDBKeyRange | undefined = (globalThis as { IDBKeyRange?: typeof IDBKeyRange }).IDBKeyRange,
  ) {}

  static available(): boolean {
    return typeof (globalThis as { indexedDB?: unknown }).indexedDB === "object";
  }

  private db(): Promise<IDBDatabase> {
    const factory = this.factory;
    if (factory === undefined) return Promise.reject(new Error("IndexedDB (globalThis.indexedDB) is unavailable here: use another store"));
    this.dbPromise ??= new Promise<IDBDatabase>((resolve, reject) => {
      const req = factory.open(this.dbName, 1);
      req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(IndexedDBStore.OBJECT_STORE)) {
          req.result.createObjectStore(IndexedDBStore.OBJECT_STORE);
        }
      };
      req.onsuccess = () => {
        const db = req.result;
        // Another tab upgrading the schema: let it (we reopen on next use).
        db.onversionchange = () => {
          db.close();
          this.dbPromise = undefined;
        };
        resolve(db);
      };
      req.onerror = () => reject(req.error ?? new Error(`cannot open IndexedDB database ${this.dbName}`));
      req.onblocked = () => reject(new Error(`IndexedDB database ${this.dbName} is blocked by another connection`));
    }).catch((err: unknown) => {
      this.dbPromise = undefined;
      throw err;
    });
    return this.dbPromise;
  }

  private async objectStore(mode: IDBTransactionMode): Promise<{ os: IDBObjectStore; done: Promise<void> }> {
    const tx = (await this.db()).transaction(IndexedDBStore.OBJECT_STORE, mode);
    const done = idbDone(tx);
    done.catch(() => {}); // awaited by writers; readers rely on the request
    return { os: tx.objectStore(IndexedDBStore.OBJECT_STORE), done };
  }

  async get(key: string): Promise<ArrayBuffer | undefined> {
    const { os } = await this.objectStore("readonly");
    const v: unknown = await idbRequest(os.get(key));
    if (v === undefined) return undefined;
    if (v instanceof ArrayBuffer) return v;
    if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice().buffer;
    return undefined; // not ours: treat as absent (the load re-downloads and overwrites it)
  }
  async has(key: string): Promise<boolean> {
    const { os } = await this.objectStore("readonly");
    return (await idbRequest(os.count(key))) > 0;
  }
  async put(key: string, bytes: ArrayBuffer): Promise<void> {
    const { os, done } = await this.objectStore("readwrite");
    os.put(bytes, key);
    await done;
  }
  async delete(key: string): Promise<void> {
    const { os, done } = await this.objectStore("readwrite");
    os.delete(key);
    await done;
  }
  async keys(prefix: string): Promise<string[]> {
    const { os } = await this.objectStore("readonly");
    const range = this.keyRange?.bound(prefix, `${prefix}\uffff`);
    const keys = await idbRequest(range === undefined ? os.getAllKeys() : os.getAllKeys(range));
    return keys.filter((k): k is string => typeof k === "string" && k.startsWith(prefix));
  }

  /** Close the connection (tests; a page normally keeps it). */
  async close(): Promise<void> {
    const p = this.dbPromise;
    this.dbPromise = undefined;
    if (p !== undefined) (await p).close();
  }
}

// -- selection ----------------------------------------------------------------------------------

/** The `cache` option of loadPackage. */
export type CacheOption = "cache-storage" | "indexeddb" | "none" | ArtifactStore;

const CACHE_NAMES = ["cache-storage", "indexeddb", "none"] as const;
const STORE_METHODS = ["get", "has", "put", "delete", "keys"] as const;

/**
 * Refuse a `cache` option that is neither a known name nor an {@link ArtifactStore}, naming the field
 * (`param`, e.g. "packageOptions.cache" when it came through the engine) and the values allowed. Options
 * can arrive as plain data from another realm (a Worker message), so the type alone proves nothing.
 */
export function checkCacheOption(cache: unknown, param = "cache"): asserts cache is CacheOption | undefined {
  if (cache === undefined) return;
  const allowed = `${CACHE_NAMES.map((n) => JSON.stringify(n)).join(", ")}, or an ArtifactStore object (with ${STORE_METHODS.join(", ")} methods)`;
  if (typeof cache === "string") {
    if ((CACHE_NAMES as readonly string[]).includes(cache)) return;
    throw new InvalidRequestError(`${param}: ${JSON.stringify(cache.slice(0, 64))} is not a cache kind; use ${allowed}`, param);
  }
  if (typeof cache === "object" && cache !== null) {
    const missing = STORE_METHODS.filter((m) => typeof (cache as Record<string, unknown>)[m] !== "function");
    if (missing.length === 0) return;
    throw new InvalidRequestError(`${param}: the object given is not an ArtifactStore (no ${missing.join(", ")} method); use ${allowed}`, param);
  }
  throw new InvalidRequestError(`${param}: expected ${allowed}, got ${cache === null ? "null" : typeof cache}`, param, "invalid_type");
}

/**
 * The store for a `cache` option. Default ("cache-storage" when omitted): Cache Storage where it exists,
 * else none (Node has no Cache Storage: pass a MemoryArtifactStore or FileSystemArtifactStore there).
 * Returns null for "none".
 */
export function resolveStore(cache: CacheOption | undefined): ArtifactStore | null {
  checkCacheOption(cache);
  if (cache === undefined) return CacheStorageStore.available() ? new CacheStorageStore() : null;
  if (cache === "none") return null;
  if (cache === "cache-storage") {
    if (!CacheStorageStore.available()) {
      throw new Error('cache: "cache-storage" was asked for, but Cache Storage (globalThis.caches) is unavailable here');
    }
    return new CacheStorageStore();
  }
  if (cache === "indexeddb") {
    if (!IndexedDBStore.available()) throw new Error('cache: "indexeddb" was asked for, but IndexedDB is unavailable here');
    return new IndexedDBStore();
  }
  return cache;
}

/** A DOMException / error meaning "storage quota exceeded". */
export function isQuotaExceeded(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  return name === "QuotaExceededError" || name === "NS_ERROR_DOM_QUOTA_REACHED";
}
