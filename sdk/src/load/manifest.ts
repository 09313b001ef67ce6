/** hearth-manifest.json: the package's file list (size + SHA-256 of every other file) and provenance. */
import { asDirectoryUrl, type FetchLike } from "../runtime/tvm.js";
import type { ManifestFileEntry } from "./integrity.js";
import { PackageManifestError } from "../errors/load.js";
export { PackageManifestError } from "../errors/load.js";

export const MANIFEST_FILE = "hearth-manifest.json";

export interface PackageManifest {
  /** "hearth-package/1". */
  format: string;
  model_id: string;
  model_type: string | null;
  quantization: string | null;
  /** Target name ("webgpu", "llvm", ...) -> library file in the package. */
  targets: Record<string, string>;
  build_key: string | null;
  files: ManifestFileEntry[];
  /** The whole document, for fields this type does not name. */
  raw: Record<string, unknown>;
}

function bad(msg: string): never {
  throw new PackageManifestError(`${MANIFEST_FILE}: ${msg}`);
}

function optString(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

/** Validate a parsed hearth-manifest.json. */
export function parsePackageManifest(json: unknown): PackageManifest {
  if (typeof json !== "object" || json === null || Array.isArray(json)) bad("not a JSON object");
  const doc = json as Record<string, unknown>;
  const format = doc["format"];
  if (typeof format !== "string" || !format.startsWith("hearth-package/")) {
    bad(`"format" is ${JSON.stringify(format)}, expected "hearth-package/<n>"`);
  }
  if (!Array.isArray(doc["files"])) bad(`"files" must be an array`);
  const seen = new Set<string>();
  const files = doc["files"].map((f: unknown, i): ManifestFileEntry => {
    const e = f as Partial<ManifestFileEntry> | null;
    if (
      typeof e?.path !== "string" ||
      e.path === "" ||
      typeof e.bytes !== "number" ||
      !Number.isSafeInteger(e.bytes) ||
      e.bytes < 0 ||
      typeof e.sha256 !== "string" ||
      !/^[0-9a-fA-F]{64}$/.test(e.sha256)
    ) {
      bad(`files[${i}] must be {path, bytes, sha256 (64 hex digits)}`);
    }
    // Paths stay inside the package: no absolute paths, no "..", no URL schemes.
    if (e.path.startsWith("/") || e.path.split("/").includes("..") || /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(e.path)) {
      bad(`files[${i}].path ${JSON.stringify(e.path)} is not a relative path inside the package`);
    }
    if (seen.has(e.path)) bad(`files[${i}].path ${JSON.stringify(e.path)} is listed twice`);
    seen.add(e.path);
    return { path: e.path, bytes: e.bytes, sha256: e.sha256.toLowerCase() };
  });
  const targetsRaw = doc["targets"];
  const targets: Record<string, string> = {};
  if (typeof targetsRaw === "object" && targetsRaw !== null) {
    for (const [k, v] of Object.entries(targetsRaw)) if (typeof v === "string") targets[k] = v;
  }
  return {
    format,
    model_id: optString(doc["model_id"]) ?? "",
    model_type: optString(doc["model_type"]),
    quantization: optString(doc["quantization"]),
    targets,
    build_key: optString(doc["build_key"]),
    files,
    raw: doc,
  };
}

/**
 * Fetch and validate `<baseUrl>/hearth-manifest.json`. The manifest is the root of trust: it is not
 * itself hashed (serve packages over HTTPS). It is always revalidated with the server
 * (`cache: "no-cache"`: a conditional request; `hearth serve` answers 304 by ETag), so an updated
 * package is seen at once. An abort rejects with the signal's reason.
 */
export async function fetchManifest(baseUrl: string, fetchFn: FetchLike, signal?: AbortSignal): Promise<PackageManifest> {
  const url = new URL(MANIFEST_FILE, asDirectoryUrl(baseUrl)).href;
  // Not an object literal, so a FetchLike typed with only {signal} accepts the extra field.
  const init: { signal?: AbortSignal; cache: RequestCache } = { cache: "no-cache" };
  if (signal !== undefined) init.signal = signal;
  let res: Response;
  try {
    res = await fetchFn(url, init);
  } catch (err) {
    if (signal?.aborted === true) throw signal.reason;
    throw new PackageManifestError(`cannot fetch ${url}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      reason: "network",
    });
  }
  if (!res.ok) {
    throw new PackageManifestError(
      `GET ${url} failed: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}` +
        (res.status === 404 ? " (not a Hearth package folder? run `hearth compile`)" : ""),
      { reason: "http" },
    );
  }
  return parseManifestText(await res.text(), url);
}

/** Parse the text of a hearth-manifest.json (`url` names it in errors). */
export function parseManifestText(text: string, url: string): PackageManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new PackageManifestError(`${url} is not valid JSON`, { cause: err });
  }
  return parsePackageManifest(json);
}

/** The manifest entry for `path`, or undefined. */
export function manifestEntry(manifest: PackageManifest, path: string): ManifestFileEntry | undefined {
  return manifest.files.find((f) => f.path === path);
}
