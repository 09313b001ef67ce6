/**
 * Package file integrity: every file a package uses is checked against the size and SHA-256 recorded in
 * its hearth-manifest.json before anything (tvmjs, WebGPU, JSON.parse) sees its bytes.
 *
 * SHA-256 comes from SubtleCrypto (`globalThis.crypto.subtle`): browsers (secure contexts), Web Workers
 * and Node >= 20 all have it.
 */
import { IntegrityError } from "../errors/load.js";
export { type IntegrityProblem, IntegrityError } from "../errors/load.js";

/** One `files[]` entry of hearth-manifest.json. */
export interface ManifestFileEntry {
  /** Path relative to the package folder (POSIX separators). */
  path: string;
  bytes: number;
  /** Lower-case hex SHA-256 of the file. */
  sha256: string;
}

function subtle(): SubtleCrypto {
  const s = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  if (s === undefined) {
    throw new Error(
      "SubtleCrypto (globalThis.crypto.subtle) is unavailable: package files cannot be verified. " +
        "In a browser this means the page is not a secure context (serve it over https:// or http://localhost).",
    );
  }
  return s;
}

function toHex(digest: ArrayBuffer): string {
  const b = new Uint8Array(digest);
  let s = "";
  for (let i = 0; i < b.length; i++) s += (b[i] as number).toString(16).padStart(2, "0");
  return s;
}

/** Lower-case hex SHA-256 of `bytes`. */
export async function sha256Hex(bytes: ArrayBuffer | Uint8Array): Promise<string> {
  return toHex(await subtle().digest("SHA-256", bytes as BufferSource));
}

/**
 * Check `bytes` against a manifest entry (size first, then SHA-256).
 * @throws IntegrityError naming `entry.path`, with `expected`/`actual`.
 */
export async function verifyFile(bytes: ArrayBuffer | Uint8Array, entry: ManifestFileEntry): Promise<void> {
  if (bytes.byteLength !== entry.bytes) {
    throw new IntegrityError(
      entry.path,
      "size",
      entry.bytes,
      bytes.byteLength,
      `${entry.path} has ${bytes.byteLength} bytes, the package manifest says ${entry.bytes}: corrupt or truncated download`,
    );
  }
  const actual = await sha256Hex(bytes);
  if (actual !== entry.sha256.toLowerCase()) {
    throw new IntegrityError(
      entry.path,
      "sha256",
      entry.sha256,
      actual,
      `${entry.path} does not match its SHA-256 in hearth-manifest.json (expected ${entry.sha256}, got ${actual}): ` + "corrupt or tampered file",
    );
  }
}
