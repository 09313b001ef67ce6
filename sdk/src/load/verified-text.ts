/**
 * One reader for a package's text files outside the weights (tokenizer.json, tokenizer_config.json,
 * mlc-chat-config.json): the manifest must list the file, and the bytes must match its size and SHA-256
 * before they are decoded. Where the bytes come from (a verified store, a plain fetch) is the caller's.
 * On top of it, the one place that turns a chat package's texts into its tokenizer and chat template
 * (EngineCore and the demo's chat proxy both count tokens with what this returns, so they agree).
 */
import { IntegrityError, verifyFile, type ManifestFileEntry } from "./integrity.js";
import { manifestEntry, type PackageManifest } from "./manifest.js";
import type { FetchLike } from "../runtime/tvm.js";
import { ChatTemplate } from "../tokenize/chat-template.js";
import { loadTokenizer } from "../tokenize/load.js";
import type { Tokenizer } from "../tokenize/tokenizer.js";

/** Fetch one listed file's bytes (the entry says what they must be). */
export type ReadPackageBytes = (file: string, entry: ManifestFileEntry) => Promise<ArrayBuffer | Uint8Array>;

export const TOKENIZER_FILE = "tokenizer.json";
export const TOKENIZER_CONFIG_FILE = "tokenizer_config.json";

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

/**
 * A {@link ReadPackageBytes} over plain fetch, relative to the package's `baseUrl`; an HTTP error is an
 * {@link IntegrityError} ("missing") naming the file.
 */
export function fetchPackageBytes(baseUrl: string, fetchFn: FetchLike, signal?: AbortSignal): ReadPackageBytes {
  return async (path, entry) => {
    const res = await fetchFn(new URL(path, baseUrl).href, signal === undefined ? undefined : { signal });
    if (!res.ok) {
      throw new IntegrityError(path, "missing", entry.bytes, null, `${path}: HTTP ${res.status} ${res.statusText}`);
    }
    return res.arrayBuffer();
  };
}

/** A chat package's text side: tokenizer, its config, and the chat template (or why there is none). */
export interface PackageText {
  tokenizer: Tokenizer;
  /** tokenizer_config.json, parsed; undefined when the package has none. */
  tokenizerConfig: Record<string, unknown> | undefined;
  template: ChatTemplate | null;
  /** Why `template` is null (no template in any source, or one that does not parse). */
  templateError: Error | null;
}

/**
 * Read tokenizer.json (required) and tokenizer_config.json (optional) through {@link readVerifiedText} and
 * build the tokenizer and chat template; `chatConfig` (mlc-chat-config.json, parsed) is the template's
 * last source. A missing template is not an error here (completions need none): see `templateError`.
 */
export async function loadPackageText(manifest: PackageManifest, readBytes: ReadPackageBytes, chatConfig: Record<string, unknown>): Promise<PackageText> {
  const [tokenizerJson, tokenizerConfigText] = await Promise.all([
    readVerifiedText(manifest, TOKENIZER_FILE, true, readBytes),
    readVerifiedText(manifest, TOKENIZER_CONFIG_FILE, false, readBytes),
  ]);
  const tokenizerConfig = tokenizerConfigText === undefined ? undefined : (JSON.parse(tokenizerConfigText) as Record<string, unknown>);
  const tokenizer = await loadTokenizer(
    tokenizerConfig === undefined ? { tokenizerJson: tokenizerJson as string } : { tokenizerJson: tokenizerJson as string, tokenizerConfig },
  );
  let template: ChatTemplate | null = null;
  let templateError: Error | null = null;
  try {
    template = await ChatTemplate.fromSources(tokenizerConfig === undefined ? { chatConfig } : { tokenizerConfig, chatConfig });
  } catch (err) {
    templateError = err instanceof Error ? err : new Error(String(err));
  }
  return { tokenizer, tokenizerConfig, template, templateError };
}
