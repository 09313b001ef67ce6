/** Errors of package loading and device fit (manifest, integrity, downloads, storage quota, variant choice, memory/limits), with the plain-data types they carry. */

/** The package cannot run on this device or is internally inconsistent. */
export class PackageCompatibilityError extends Error {
  override readonly name = "PackageCompatibilityError";
  /** Missing device features / mismatches, e.g. ["shader-f16"]. */
  readonly missing: string[];
  constructor(message: string, missing: string[]) {
    super(message);
    this.missing = missing;
  }
}

export class ChatConfigError extends Error {
  override readonly name = "ChatConfigError";
}

/** A package file could not be downloaded (HTTP error or network failure, after retries). */
export class DownloadError extends Error {
  override readonly name = "DownloadError";
  readonly file: string;
  readonly url: string;
  /** HTTP status, or null for a network failure. */
  readonly status: number | null;
  constructor(file: string, url: string, status: number | null, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.file = file;
    this.url = url;
    this.status = status;
  }
}

function mib(n: number): string {
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

/** Not enough storage for the files this load has to download. */
export class QuotaError extends Error {
  override readonly name = "QuotaError";
  /** Bytes the load needs to store. */
  readonly needed: number;
  /** Bytes the origin may still store (quota - usage); null when unknown. */
  readonly available: number | null;

  constructor(needed: number, available: number | null, detail = "", options?: { cause?: unknown }) {
    super(
      available === null
        ? `Not enough storage to cache this model: it needs ${mib(needed)} more${detail}. ` + 'Free up disk space or site data, or load with cache: "none".'
        : `Not enough storage to cache this model: it needs ${mib(needed)}, but only ${mib(available)} ` +
            `are available to this site (short by ${mib(needed - available)})${detail}. ` +
            'Free up disk space, clear old models (site data), or load with cache: "none" (downloads every time).',
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.needed = needed;
    this.available = available;
  }
}

/** The manifest is malformed or cannot be fetched: the folder is not a (readable) Hearth package. */
export class PackageManifestError extends Error {
  override readonly name = "PackageManifestError";
  /** "network": the fetch itself failed (offline?); "http": an error status; "invalid": bad content. */
  readonly reason: "network" | "http" | "invalid";
  constructor(message: string, options?: { cause?: unknown; reason?: "network" | "http" | "invalid" }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.reason = options?.reason ?? "invalid";
  }
}

export type IntegrityProblem = "size" | "sha256" | "missing" | "unlisted";

/** A package file is missing, resized, altered, or not listed in the manifest at all. */
export class IntegrityError extends Error {
  override readonly name = "IntegrityError";
  /** The file's path relative to the package (e.g. "params_shard_0.bin"). */
  readonly file: string;
  readonly problem: IntegrityProblem;
  /** What the manifest says (byte count or hex digest); null when the file is not listed. */
  readonly expected: string | number | null;
  /** What was received; null when nothing was (missing file). */
  readonly actual: string | number | null;

  constructor(
    file: string,
    problem: IntegrityProblem,
    expected: string | number | null,
    actual: string | number | null,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.file = file;
    this.problem = problem;
    this.expected = expected;
    this.actual = actual;
  }
}

export interface MemoryEstimate {
  /** Sum of every weight tensor. */
  weightsBytes: number;
  largestParam: { name: string; bytes: number; shape: number[]; dtype: string };
  /** Dtype of the KV cache and activations ("float16" for f16 packages, else "float32"). */
  computeDtype: "float16" | "float32";
  /**
   * The paged KV cache: one buffer per layer of [pages, 2, kv_heads, page_size, head_dim]. null when
   * mlc-chat-config.json's model_config lacks the layer/head sizes.
   */
  kvCache: { bytes: number; perLayerBytes: number; layers: number; kvHeads: number; headDim: number; pages: number } | null;
  /** Rough upper bound of the prefill activations for one chunk (the memory planner reuses buffers). */
  activationBytes: number;
  /** weights + KV cache + activations. */
  totalBytes: number;
  /** The largest single buffer the model allocates (a weight, a KV-cache layer, or an activation). */
  largestBufferBytes: number;
  largestBuffer: string;
  maxTotalSeqLen: number;
  prefillChunkSize: number;
}

/** What {@link checkDeviceFits} compares; "memoryBudget" is the optional caller budget, "wasm32Memory" the CPU build's 4 GiB. */
export type DeviceLimit = "maxStorageBufferBindingSize" | "maxBufferSize" | "memoryBudget" | "wasm32Memory";

export interface DeviceProblem {
  limit: DeviceLimit;
  /** What needs it ("weight model.embed_tokens.q_weight", "KV cache (one layer)", "total"). */
  what: string;
  needed: number;
  available: number;
  /** needed - available. */
  shortBy: number;
}

function fmtBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

/** The model does not fit this device: a buffer exceeds an adapter limit, or the total exceeds a budget. */
export class DeviceError extends Error {
  override readonly name = "DeviceError";
  /** The first (most important) problem. */
  readonly limit: DeviceLimit;
  readonly needed: number;
  readonly available: number;
  readonly shortBy: number;
  readonly problems: DeviceProblem[];
  readonly estimate: MemoryEstimate;

  constructor(problems: DeviceProblem[], estimate: MemoryEstimate, modelName = "the model") {
    const first = problems[0];
    if (first === undefined) throw new Error("DeviceError needs at least one problem");
    const text = problems.map(
      (p) =>
        `${p.what} needs ${fmtBytes(p.needed)} (${p.needed} bytes) but ${p.limit} is ${fmtBytes(p.available)} (${p.available}): short by ${fmtBytes(p.shortBy)}`,
    );
    super(
      `${modelName} does not fit this device: ${text.join("; ")}. ` +
        "Use a smaller model or quantization, a shorter context (maxTotalSeqLen) or prefill chunk (prefillChunkSize), or a device with larger limits.",
    );
    this.limit = first.limit;
    this.needed = first.needed;
    this.available = first.available;
    this.shortBy = first.shortBy;
    this.problems = problems;
    this.estimate = estimate;
  }
}

/** No listed variant can run on this device. */
export class VariantSelectionError extends Error {
  override readonly name = "VariantSelectionError";
  readonly variants: string[];
  constructor(message: string, variants: string[]) {
    super(message);
    this.variants = variants;
  }
}
