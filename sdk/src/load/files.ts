/**
 * The files of one package during one load: download what the store lacks (bounded parallelism,
 * streamed with progress, retried on transient failures), verify every file's size + SHA-256 against
 * hearth-manifest.json, keep verified bytes in an {@link ArtifactStore}, and hand them to tvmjs (this class
 * is also tvmjs's artifact cache, so tvmjs only ever reads verified bytes).
 *
 * Resume: each file is stored as soon as it is verified, so a load that fails or is aborted half-way
 * leaves the completed files in the store and the next load downloads only the rest. A network failure
 * of one file lets the downloads already running finish (they are useful next time), starts no new
 * ones, then throws; an abort stops everything at once.
 */
import type { FetchLike } from "../runtime/tvm.js";
import { asDirectoryUrl } from "../runtime/tvm.js";
import type { TvmArtifactCache } from "../runtime/tvmjs-types.js";
import { IntegrityError, verifyFile, type ManifestFileEntry } from "./integrity.js";
import { MANIFEST_FILE, type PackageManifest } from "./manifest.js";
import type { ProgressCallback } from "./progress.js";
import { QuotaError } from "./quota.js";
import { artifactKey, isQuotaExceeded, keyDigest, packageKeyPrefix, type ArtifactStore } from "./store.js";
import { DownloadError } from "../errors/load.js";
export { DownloadError } from "../errors/load.js";

export interface PackageFilesStats {
  /** Files / bytes downloaded by this load. */
  downloadedFiles: number;
  downloadedBytes: number;
  /** Files / bytes read back from the store (and verified). */
  cachedFiles: number;
  cachedBytes: number;
  /** fetch() calls made for package files (retries included; the manifest not). */
  fetches: number;
  /** Summed time in hashing (ms). */
  verifyMs: number;
  /** Store entries removed because their bytes failed verification. */
  evicted: string[];
}

export interface PackageFilesOptions {
  baseUrl: string;
  manifest: PackageManifest;
  fetch: FetchLike;
  /** null: keep verified bytes in memory for this load only. */
  store: ArtifactStore | null;
  /** Retries per file for network failures and HTTP 408/429/5xx (default 2). */
  retries?: number | undefined;
  logger?: ((msg: string) => void) | undefined;
}

export interface EnsureOptions {
  signal?: AbortSignal | undefined;
  /** Parallel downloads / verifications (default 4). */
  concurrency?: number | undefined;
  onProgress?: ProgressCallback | undefined;
  /**
   * Files of `paths` to make ready before the others, and what to run once they are (e.g. check the
   * config before the big downloads start). Progress counts both groups as one download.
   */
  first?: readonly string[] | undefined;
  afterFirst?: (() => Promise<void> | void) | undefined;
}

/** Files up to this size stay in memory after verification (JSON, tokenizer): read again soon. */
const HOLD_SMALL_BYTES = 1 << 20;
const PROGRESS_INTERVAL_MS = 50;

/** 32-bit FNV-1a of a string, hex (a stable, short name for a URL). */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

function isAbort(err: unknown, signal?: AbortSignal): boolean {
  return (signal?.aborted === true && err === signal.reason) || (err as { name?: unknown } | null)?.name === "AbortError";
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason);
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export class PackageFiles implements TvmArtifactCache {
  readonly baseUrl: string;
  readonly manifest: PackageManifest;
  readonly store: ArtifactStore | null;
  readonly keyPrefix: string;
  private readonly fetchFn: FetchLike;
  private readonly retries: number;
  private readonly log: (msg: string) => void;
  private readonly entries: Map<string, ManifestFileEntry>;
  /** Paths verified during this load (their stored bytes are trusted for the rest of it). */
  private readonly verified = new Set<string>();
  /** Verified bytes kept in memory: every file when there is no store, else small ones. */
  private readonly held = new Map<string, ArrayBuffer>();
  private readonly stats_: PackageFilesStats = {
    downloadedFiles: 0,
    downloadedBytes: 0,
    cachedFiles: 0,
    cachedBytes: 0,
    fetches: 0,
    verifyMs: 0,
    evicted: [],
  };

  constructor(opts: PackageFilesOptions) {
    this.baseUrl = new URL(asDirectoryUrl(opts.baseUrl)).href;
    this.manifest = opts.manifest;
    this.fetchFn = opts.fetch;
    this.store = opts.store;
    this.retries = opts.retries ?? 2;
    this.log = opts.logger ?? (() => {});
    this.entries = new Map(opts.manifest.files.map((f) => [f.path, f]));
    this.modelKey = opts.manifest.model_id !== "" ? opts.manifest.model_id : `url-${fnv1a(this.baseUrl)}`;
    this.keyPrefix = packageKeyPrefix(this.modelKey, opts.manifest.quantization ?? "");
  }

  /** The model segment of this package's keys: the manifest's model_id (else one derived from the URL). */
  readonly modelKey: string;

  get stats(): Readonly<PackageFilesStats> {
    return this.stats_;
  }

  entry(path: string): ManifestFileEntry {
    const e = this.entries.get(path);
    if (e === undefined) {
      throw new IntegrityError(path, "unlisted", null, null, `${path} is not listed in ${MANIFEST_FILE}; refusing to load an unverifiable file`);
    }
    return e;
  }

  /** Store key of a package file. */
  key(path: string): string {
    const e = this.entry(path);
    return artifactKey(this.modelKey, this.manifest.quantization ?? "", e.sha256);
  }

  /** Which of `paths` the store already has (not yet verified) and which must be downloaded. */
  async plan(paths: readonly string[]): Promise<{ cached: ManifestFileEntry[]; missing: ManifestFileEntry[] }> {
    const cached: ManifestFileEntry[] = [];
    const missing: ManifestFileEntry[] = [];
    for (const p of [...new Set(paths)]) {
      const e = this.entry(p);
      if (this.verified.has(p)) continue;
      if (this.held.has(p) || (this.store !== null && (await this.store.has(this.key(p))))) cached.push(e);
      else missing.push(e);
    }
    return { cached, missing };
  }

  /**
   * Make every file of `paths` present and verified: download the missing ones, re-hash the stored
   * ones. Throws the first failure (IntegrityError, DownloadError, QuotaError, the abort reason).
   */
  async ensure(paths: readonly string[], opts: EnsureOptions = {}): Promise<void> {
    const signal = opts.signal;
    signal?.throwIfAborted();
    const emit = opts.onProgress ?? (() => {});
    const { cached, missing } = await this.plan(paths);
    const dlTotal = missing.reduce((n, e) => n + e.bytes, 0);
    const cachedBytes = cached.reduce((n, e) => n + e.bytes, 0);
    const allCount = cached.length + missing.length;
    const allBytes = dlTotal + cachedBytes;
    const dl = { loaded: 0, done: 0, last: 0 };
    const ver = { done: 0, bytes: 0 };
    const reported = new Map<string, number>();

    const onBytes = (e: ManifestFileEntry, index: number, fileLoaded: number, force: boolean): void => {
      const prev = reported.get(e.path) ?? 0;
      if (fileLoaded > prev) {
        dl.loaded += fileLoaded - prev; // retries never make the counter go back
        reported.set(e.path, fileLoaded);
      }
      const now = performance.now();
      if (!force && now - dl.last < PROGRESS_INTERVAL_MS) return;
      dl.last = now;
      emit({
        phase: "download",
        file: e.path,
        fileIndex: index,
        fileCount: missing.length,
        filesDone: dl.done,
        loadedBytes: dl.loaded,
        totalBytes: dlTotal,
        fileLoadedBytes: reported.get(e.path) ?? 0,
        fileTotalBytes: e.bytes,
        cachedFiles: cached.length,
        cachedBytes,
      });
    };
    const onVerified = (e: ManifestFileEntry, source: "network" | "cache"): void => {
      ver.done += 1;
      ver.bytes += e.bytes;
      emit({ phase: "verify", file: e.path, source, filesDone: ver.done, fileCount: allCount, verifiedBytes: ver.bytes, totalBytes: allBytes });
    };

    const tasks: { path: string; run: () => Promise<void> }[] = [
      ...missing.map((e, i) => ({
        path: e.path,
        run: async () => {
          onBytes(e, i, 0, true);
          await this.download(
            e,
            signal,
            (n) => onBytes(e, i, n, false),
            () => {
              dl.done += 1;
              onBytes(e, i, e.bytes, true);
            },
          );
          onVerified(e, "network");
        },
      })),
      ...cached.map((e) => ({
        path: e.path,
        run: async () => {
          const source = await this.verifyStored(e, signal);
          onVerified(e, source);
        },
      })),
    ];
    const concurrency = opts.concurrency ?? 4;
    const first = new Set(opts.first ?? []);
    await runPool(
      tasks.filter((t) => first.has(t.path)).map((t) => t.run),
      concurrency,
      signal,
    );
    await opts.afterFirst?.();
    await runPool(
      tasks.filter((t) => !first.has(t.path)).map((t) => t.run),
      concurrency,
      signal,
    );
  }

  /** Verified bytes of `path` (memory, else store, else network). */
  async bytes(path: string, signal?: AbortSignal): Promise<ArrayBuffer> {
    const e = this.entry(path);
    const hit = this.held.get(path);
    if (hit !== undefined) return hit;
    if (this.store !== null) {
      const stored = await this.store.get(this.key(path));
      if (stored !== undefined) {
        if (this.verified.has(path) && stored.byteLength === e.bytes) return stored;
        await this.checkStored(e, stored);
        return stored;
      }
    }
    return this.download(e, signal);
  }

  /** Read a stored file, verify it; evicts and throws IntegrityError when it does not match. */
  private async verifyStored(e: ManifestFileEntry, signal?: AbortSignal): Promise<"cache" | "network"> {
    const held = this.held.get(e.path);
    if (held !== undefined) {
      this.verified.add(e.path);
      return "cache";
    }
    const stored = this.store === null ? undefined : await this.store.get(this.key(e.path));
    signal?.throwIfAborted();
    if (stored === undefined) {
      await this.download(e, signal); // evicted since plan(): fetch it after all
      return "network";
    }
    await this.checkStored(e, stored);
    if (stored.byteLength <= HOLD_SMALL_BYTES) this.held.set(e.path, stored);
    return "cache";
  }

  private async checkStored(e: ManifestFileEntry, bytes: ArrayBuffer): Promise<void> {
    const t0 = performance.now();
    try {
      await verifyFile(bytes, e);
    } catch (err) {
      if (err instanceof IntegrityError && this.store !== null) {
        const key = this.key(e.path);
        await this.store.delete(key).catch(() => {});
        this.stats_.evicted.push(key);
        this.log(`evicted ${key} (${e.path}): cached bytes failed verification`);
        throw new IntegrityError(
          err.file,
          err.problem,
          err.expected,
          err.actual,
          `${err.message} (read from the ${this.store.kind} cache; the entry was evicted, so the next load downloads it again)`,
          { cause: err },
        );
      }
      throw err;
    } finally {
      this.stats_.verifyMs += performance.now() - t0;
    }
    this.verified.add(e.path);
    this.stats_.cachedFiles += 1;
    this.stats_.cachedBytes += e.bytes;
  }

  /** Fetch (with retries), verify, store. */
  private async download(e: ManifestFileEntry, signal?: AbortSignal, onBytes?: (fileLoaded: number) => void, onDone?: () => void): Promise<ArrayBuffer> {
    const url = new URL(e.path, this.baseUrl).href;
    let attempt = 0;
    for (;;) {
      signal?.throwIfAborted();
      try {
        const buf = await this.fetchOnce(e, url, signal, onBytes);
        const t0 = performance.now();
        try {
          await verifyFile(buf, e);
        } finally {
          this.stats_.verifyMs += performance.now() - t0;
        }
        this.verified.add(e.path);
        this.stats_.downloadedFiles += 1;
        this.stats_.downloadedBytes += e.bytes;
        await this.keep(e, buf);
        onDone?.();
        return buf;
      } catch (err) {
        if (isAbort(err, signal) || err instanceof IntegrityError || err instanceof QuotaError) throw err;
        const transient = !(err instanceof DownloadError) || err.status === null || err.status === 408 || err.status === 429 || err.status >= 500;
        if (!transient || attempt >= this.retries) {
          if (err instanceof DownloadError) throw err;
          throw new DownloadError(e.path, url, null, `downloading ${e.path} failed: ${err instanceof Error ? err.message : String(err)}`, {
            cause: err,
          });
        }
        attempt += 1;
        this.log(`retrying ${e.path} (attempt ${attempt + 1}/${this.retries + 1}): ${err instanceof Error ? err.message : String(err)}`);
        await sleep(250 * 2 ** (attempt - 1), signal);
      }
    }
  }

  private async fetchOnce(e: ManifestFileEntry, url: string, signal?: AbortSignal, onBytes?: (n: number) => void): Promise<ArrayBuffer> {
    this.stats_.fetches += 1;
    const res = await this.fetchFn(url, signal === undefined ? {} : { signal });
    if (res.status === 404) {
      throw new IntegrityError(e.path, "missing", e.bytes, null, `${e.path} is missing from the package (GET ${url}: 404)`);
    }
    if (!res.ok) {
      throw new DownloadError(e.path, url, res.status, `GET ${url} failed: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`);
    }
    if (res.body === null) {
      const buf = await res.arrayBuffer();
      onBytes?.(buf.byteLength);
      return buf;
    }
    // Stream into a buffer of the manifest's size: progress, and an early stop on oversize bodies.
    const out = new Uint8Array(e.bytes);
    let n = 0;
    const reader = res.body.getReader();
    try {
      for (;;) {
        signal?.throwIfAborted();
        const { done, value } = await reader.read();
        if (done) break;
        if (n + value.byteLength > e.bytes) {
          throw new IntegrityError(
            e.path,
            "size",
            e.bytes,
            n + value.byteLength,
            `${e.path} is larger than the ${e.bytes} bytes the package manifest says (received at least ${n + value.byteLength}): corrupt or tampered file`,
          );
        }
        out.set(value, n);
        n += value.byteLength;
        onBytes?.(n);
      }
    } catch (err) {
      await reader.cancel(err).catch(() => {});
      throw err;
    }
    return n === e.bytes ? out.buffer : out.slice(0, n).buffer; // a short body fails verifyFile (size)
  }

  /** Put verified bytes in the store (or memory). */
  private async keep(e: ManifestFileEntry, buf: ArrayBuffer): Promise<void> {
    if (this.store === null || buf.byteLength <= HOLD_SMALL_BYTES) this.held.set(e.path, buf);
    if (this.store === null) return;
    try {
      await this.store.put(this.key(e.path), buf);
    } catch (err) {
      if (isQuotaExceeded(err)) {
        throw new QuotaError(e.bytes, null, ` (the browser refused to store ${e.path})`, { cause: err });
      }
      // Any other store failure: keep the bytes in memory for this load and carry on uncached.
      this.log(`cannot store ${e.path} in the ${this.store.kind} cache (${err instanceof Error ? err.message : String(err)}); keeping it in memory`);
      this.held.set(e.path, buf);
    }
  }

  /**
   * Remove store entries of other versions of this package (same model id + quantization, a digest the
   * current manifest does not list). Returns the removed keys.
   */
  async purgeOldVersions(): Promise<string[]> {
    if (this.store === null) return [];
    const current = new Set(this.manifest.files.map((f) => f.sha256));
    const stale = (await this.store.keys(this.keyPrefix)).filter((k) => {
      const d = keyDigest(k);
      return d !== undefined && k === this.keyPrefix + d && !current.has(d);
    });
    for (const k of stale) await this.store.delete(k);
    return stale;
  }

  /** Drop the in-memory copies. */
  clear(): void {
    this.held.clear();
  }

  /** End of the load: drop memory copies and forget what was verified (later reads verify again). */
  endLoad(): void {
    this.held.clear();
    this.verified.clear();
  }

  // -- tvmjs ArtifactCacheTemplate -------------------------------------------------------------

  /** Package-relative path of a URL inside the package, else undefined. */
  pathOf(url: string): string | undefined {
    const href = new URL(url, this.baseUrl).href;
    if (!href.startsWith(this.baseUrl)) return undefined;
    const rest = href.slice(this.baseUrl.length).split(/[?#]/)[0] ?? "";
    try {
      return decodeURIComponent(rest);
    } catch {
      return rest;
    }
  }

  private pathOrThrow(url: string): string {
    const path = this.pathOf(url);
    if (path === undefined) {
      throw new IntegrityError(url, "unlisted", null, null, `${url} is outside the package ${this.baseUrl}; refusing to load it`);
    }
    return path;
  }

  /** Called by tvmjs for every tensor-cache read; `onRead` (if set) sees each path first. */
  onRead: ((path: string) => void) | undefined;

  async fetchWithCache(url: string, storetype?: string, signal?: AbortSignal): Promise<unknown> {
    const path = this.pathOrThrow(url);
    this.onRead?.(path);
    const buf = await this.bytes(path, signal);
    if (storetype === "json") return JSON.parse(new TextDecoder().decode(buf)) as unknown;
    if (storetype === "arraybuffer") return buf;
    return new Response(buf);
  }

  async addToCache(url: string, _storetype?: string, signal?: AbortSignal): Promise<void> {
    await this.bytes(this.pathOrThrow(url), signal);
  }

  async hasAllKeys(keys: string[]): Promise<boolean> {
    return keys.every((k) => {
      const p = this.pathOf(k);
      return p !== undefined && this.verified.has(p);
    });
  }

  async deleteInCache(url: string): Promise<void> {
    const p = this.pathOf(url);
    if (p === undefined || !this.entries.has(p)) return;
    this.held.delete(p);
    this.verified.delete(p);
    await this.store?.delete(this.key(p));
  }
}

/**
 * Run `tasks` with at most `concurrency` at a time. After the first failure no new task starts; the
 * running ones finish (an abort makes them fail fast); then the first failure is thrown.
 */
export async function runPool(tasks: readonly (() => Promise<void>)[], concurrency: number, signal?: AbortSignal): Promise<void> {
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  if (tasks.length === 0) return;
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < tasks.length) {
      if (signal?.aborted === true) {
        failure ??= { error: signal.reason };
        return;
      }
      const task = tasks[next++] as () => Promise<void>;
      try {
        await task();
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, worker));
  if (failure !== undefined) throw failure.error;
  signal?.throwIfAborted();
}
