/** Build a {@link Tokenizer} from a package's tokenizer files. */
import { HFTokenizer, type TokenizerConfigJson } from "./hf-tokenizer.js";
import type { Tokenizer } from "./tokenizer.js";
import { importTokenizersJs, type TokenizersJs } from "./tokenizers-js.js";
import { TokenizerLoadError } from "../errors/text.js";
export { TokenizerLoadError } from "../errors/text.js";

/** File contents: JSON files as text or already parsed, binary files as bytes. */
export interface TokenizerFiles {
  /** tokenizer.json (the Hugging Face "fast" tokenizer format). */
  tokenizerJson?: string | object;
  /** tokenizer_config.json: special-token names, clean-up and truncation-side settings. Optional. */
  tokenizerConfig?: string | object;
  /** tokenizer.model (a sentencepiece protobuf). Only used to say what to do when tokenizer.json is missing. */
  tokenizerModel?: Uint8Array | ArrayBuffer;
}

// Shown when only a sentencepiece tokenizer.model is present. No maintained JS library reads that format:
// the npm ports (sentencepiece-js and its forks) are emscripten builds from single maintainers with few
// releases, and neither tokenizers.js nor transformers.js parses it. transformers converts it exactly.
const CONVERT_HINT =
  "convert it to tokenizer.json with Hugging Face transformers, then rebuild the package: " +
  "python -c \"from transformers import AutoTokenizer; AutoTokenizer.from_pretrained('MODEL_DIR').save_pretrained('MODEL_DIR')\" " +
  "(this writes tokenizer.json next to tokenizer.model)";

/**
 * Async because the tokenizer library is imported on first use (see tokenizers-js.ts); after that it only
 * parses. Throws {@link TokenizerLoadError} for missing, malformed or unsupported files.
 */
export async function loadTokenizer(files: TokenizerFiles): Promise<Tokenizer> {
  if (files.tokenizerJson === undefined) {
    if (files.tokenizerModel !== undefined) {
      throw new TokenizerLoadError(`tokenizer.model (sentencepiece) without tokenizer.json is not supported in the SDK; ${CONVERT_HINT}`);
    }
    throw new TokenizerLoadError("no tokenizer.json given (the SDK reads the Hugging Face tokenizer.json format)");
  }
  const json = parseJsonObject(files.tokenizerJson, "tokenizer.json");
  const model = json["model"];
  if (typeof model !== "object" || model === null) throw new TokenizerLoadError(`tokenizer.json has no "model" object`);
  // tokenizers.js iterates this list unconditionally; files written by old tokenizers versions may lack it.
  if (!Array.isArray(json["added_tokens"])) json["added_tokens"] = [];
  const config: TokenizerConfigJson = files.tokenizerConfig === undefined ? {} : parseJsonObject(files.tokenizerConfig, "tokenizer_config.json");
  let lib: TokenizersJs;
  try {
    lib = await importTokenizersJs();
  } catch (err) {
    throw new TokenizerLoadError(
      `cannot import @huggingface/tokenizers (${err instanceof Error ? err.message : String(err)}); ` +
        "in a browser, load the SDK through a bundler (or an import map) that resolves its npm dependencies",
      { cause: err },
    );
  }
  try {
    return new HFTokenizer(lib, json, config);
  } catch (err) {
    // Unknown component types ("Unknown PreTokenizer type: ...") and untranslatable regexes land here.
    const reason = err instanceof Error ? err.message : String(err);
    throw new TokenizerLoadError(`tokenizer.json is not supported by @huggingface/tokenizers: ${reason}`, { cause: err });
  }
}

function parseJsonObject(value: string | object, file: string): Record<string, unknown> {
  let parsed: unknown = value;
  if (typeof value === "string") {
    try {
      parsed = JSON.parse(value);
    } catch (err) {
      throw new TokenizerLoadError(`${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new TokenizerLoadError(`${file} must be a JSON object`);
  }
  // A shallow copy: loadTokenizer's added_tokens fix-up must not write into the caller's object.
  return { ...(parsed as Record<string, unknown>) };
}
