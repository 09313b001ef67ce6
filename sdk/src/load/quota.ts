/**
 * Storage quota: before downloading what the store lacks, ask for persistent storage (best effort) and
 * check `navigator.storage.estimate()` so that a too-large download fails at once, with a clear
 * message, instead of half-way with a browser QuotaExceededError.
 */
import { QuotaError } from "../errors/load.js";
export { QuotaError } from "../errors/load.js";

/** The part of `navigator.storage` (StorageManager) the loader uses. Injectable for tests. */
export interface StorageManagerLike {
  estimate?(): Promise<{ quota?: number; usage?: number }>;
  persist?(): Promise<boolean>;
  persisted?(): Promise<boolean>;
}

export interface QuotaCheck {
  /** Whether persistent storage was granted (null: not asked / unknown). */
  persisted: boolean | null;
  /** quota - usage before downloading (null: unknown). */
  available: number | null;
  quota: number | null;
  usage: number | null;
}

/** navigator.storage where it exists (browsers, workers), else undefined (Node). */
export function defaultStorageManager(): StorageManagerLike | undefined {
  const nav = (globalThis as { navigator?: { storage?: StorageManagerLike } }).navigator;
  return typeof nav?.storage === "object" && nav.storage !== null ? nav.storage : undefined;
}

/**
 * Best-effort persist(), then estimate(); throws {@link QuotaError} when `needed` bytes exceed what is
 * left. Failures of the StorageManager itself are ignored (the check is skipped, the download goes on).
 */
export async function checkQuota(storage: StorageManagerLike | undefined, needed: number): Promise<QuotaCheck> {
  const out: QuotaCheck = { persisted: null, available: null, quota: null, usage: null };
  if (storage === undefined || needed <= 0) return out;
  try {
    out.persisted = (await storage.persisted?.()) ?? null;
    if (out.persisted !== true && typeof storage.persist === "function") out.persisted = await storage.persist();
  } catch {
    // persist() may be refused or unimplemented; eviction protection is only a nicety
  }
  let est: { quota?: number; usage?: number } | undefined;
  try {
    est = await storage.estimate?.();
  } catch {
    est = undefined;
  }
  if (typeof est?.quota === "number" && Number.isFinite(est.quota)) {
    out.quota = est.quota;
    out.usage = typeof est.usage === "number" ? est.usage : 0;
    out.available = Math.max(0, out.quota - out.usage);
    if (needed > out.available) throw new QuotaError(needed, out.available);
  }
  return out;
}
