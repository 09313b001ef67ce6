/**
 * One reader for a package's text files outside the weights (tokenizer.json, tokenizer_config.json,
 * mlc-chat-config.json): the manifest must list the file, and the bytes must match its size and SHA-256
 * before they are decoded. Where the bytes come from (a verified store, a plain fetch) is the caller's.
 */
import { IntegrityError, verifyFile, type ManifestFileEntry } from "./integrity.js";
import { manifestEntry, type PackageManifest } from "./manifest.js";

/** Fetch one listed file's bytes (the entry says what they must be). */
export type ReadPackageBytes = (file: string, entry: ManifestFileEntry) => Promise<ArrayBuffer | Uint8Array>;

/**
 * The text of `file`, verified against `manifest`. A file the manifest does not list is an
 * {@link IntegrityError} ("unlisted") when `required`, else undefined.
 */
export async function readVerifiedText(manifest: PackageManifest, file: string, required: boolean, readBytes: ReadPackageBytes): Promise<string | undefined> {
  const entry = manifestEntry(manifest, file);
  if (entry === undefined) {
    if (!required) return undefined;
    throw new IntegrityError(file, "unlisted", null, null, `${file} is not listed in the package manifest`);
  }
  const bytes = new Uint8Array(await readBytes(file, entry));
  await verifyFile(bytes, entry);
  return new TextDecoder().decode(bytes);
}
