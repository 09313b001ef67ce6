/**
 * A tvmjs artifact cache that only ever hands out verified bytes.
 *
 * tvmjs's `fetchTensorCache` reads tensor-cache.json and every shard through an artifact cache
 * (`fetchWithCache` / `addToCache` / `hasAllKeys` / `deleteInCache`). This one maps each URL back to its
 * path in the package, fetches it once, checks size + SHA-256 against hearth-manifest.json, and keeps the
 * verified bytes in memory. A URL outside the package or a path the manifest does not list is refused,
 * so a tampered tensor-cache.json cannot point tvmjs at unverified data either.
 */
import { asDirectoryUrl, type FetchLike } from "../engine/tvm.js";
import type { TvmArtifactCache } from "../engine/tvmjs-types.js";
import { IntegrityError, verifyFile, type ManifestFileEntry } from "./integrity.js";
import { MANIFEST_FILE, type PackageManifest } from "./manifest.js";

export interface VerifiedCacheStats {
  /** Files fetched and verified so far. */
  files: number;
  bytes: number;
  /** Summed time in fetch + body read, and in hashing (ms; concurrent fetches overlap). */
  fetchMs: number;
  verifyMs: number;
}

export class VerifiedArtifactCache implements TvmArtifactCache {
  readonly baseUrl: string;
  private readonly entries: Map<string, ManifestFileEntry>;
  private readonly store = new Map<string, ArrayBuffer>();
  private readonly inflight = new Map<string, Promise<ArrayBuffer>>();
  private readonly stats_: VerifiedCacheStats = { files: 0, bytes: 0, fetchMs: 0, verifyMs: 0 };

  constructor(
    baseUrl: string,
    manifest: PackageManifest,
    private readonly fetchFn: FetchLike,
  ) {
    this.baseUrl = new URL(asDirectoryUrl(baseUrl)).href; // normalised ("a/../b" -> "b"), as tvmjs's URLs are
    this.entries = new Map(manifest.files.map((f) => [f.path, f]));
  }

  get stats(): Readonly<VerifiedCacheStats> {
    return this.stats_;
  }

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

  /** Verified bytes of the package file at `path` (fetched once, then served from memory). */
  async file(path: string, signal?: AbortSignal): Promise<ArrayBuffer> {
    const hit = this.store.get(path);
    if (hit !== undefined) return hit;
    let pending = this.inflight.get(path);
    if (pending === undefined) {
      pending = this.fetchAndVerify(path, signal).finally(() => this.inflight.delete(path));
      this.inflight.set(path, pending);
    }
    return pending;
  }

  /** Fetch and verify several files (at most `concurrency` at a time). */
  async prefetch(paths: readonly string[], signal?: AbortSignal, concurrency = 4): Promise<void> {
    const queue = [...new Set(paths)];
    const worker = async (): Promise<void> => {
      for (let p = queue.shift(); p !== undefined; p = queue.shift()) await this.file(p, signal);
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, queue.length)) }, worker));
  }

  private async fetchAndVerify(path: string, signal?: AbortSignal): Promise<ArrayBuffer> {
    const entry = this.entries.get(path);
    if (entry === undefined) {
      throw new IntegrityError(
        path,
        "unlisted",
        null,
        null,
        `${path} is not listed in ${MANIFEST_FILE}; refusing to load an unverifiable file`,
      );
    }
    const url = new URL(path, this.baseUrl).href;
    const t0 = performance.now();
    const res = await this.fetchFn(url, signal === undefined ? {} : { signal });
    if (res.status === 404) {
      throw new IntegrityError(path, "missing", entry.bytes, null, `${path} is missing from the package (GET ${url}: 404)`);
    }
    if (!res.ok) throw new Error(`GET ${url} failed: HTTP ${res.status} ${res.statusText}`.trimEnd());
    const buf = await res.arrayBuffer();
    const t1 = performance.now();
    await verifyFile(buf, entry);
    const t2 = performance.now();
    this.stats_.files += 1;
    this.stats_.bytes += buf.byteLength;
    this.stats_.fetchMs += t1 - t0;
    this.stats_.verifyMs += t2 - t1;
    this.store.set(path, buf);
    return buf;
  }

  private pathOrThrow(url: string): string {
    const path = this.pathOf(url);
    if (path === undefined) {
      throw new IntegrityError(url, "unlisted", null, null, `${url} is outside the package ${this.baseUrl}; refusing to load it`);
    }
    return path;
  }

  // -- tvmjs ArtifactCacheTemplate -------------------------------------------------------------

  async fetchWithCache(url: string, storetype?: string, signal?: AbortSignal): Promise<unknown> {
    const buf = await this.file(this.pathOrThrow(url), signal);
    if (storetype === "json") return JSON.parse(new TextDecoder().decode(buf)) as unknown;
    if (storetype === "arraybuffer") return buf;
    return new Response(buf);
  }

  async addToCache(url: string, _storetype?: string, signal?: AbortSignal): Promise<void> {
    await this.file(this.pathOrThrow(url), signal);
  }

  async hasAllKeys(keys: string[]): Promise<boolean> {
    return keys.every((k) => {
      const p = this.pathOf(k);
      return p !== undefined && this.store.has(p);
    });
  }

  async deleteInCache(url: string): Promise<void> {
    const p = this.pathOf(url);
    if (p !== undefined) this.store.delete(p);
  }

  /** Drop every held file (e.g. once the weights are on the GPU). */
  clear(): void {
    this.store.clear();
  }

  /** Bytes currently held. */
  get size(): number {
    let n = 0;
    for (const b of this.store.values()) n += b.byteLength;
    return n;
  }
}
