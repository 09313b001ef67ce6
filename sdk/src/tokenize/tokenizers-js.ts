/**
 * Typed surface of the parts of `@huggingface/tokenizers` (tokenizers.js) the SDK uses.
 *
 * Why not its own .d.ts: version 0.2.0 ships declarations with extensionless relative imports
 * (`export ... from "./core/Tokenizer"`) in a `"type": "module"` package, which TypeScript's NodeNext
 * resolution cannot follow, so every import from it is silently `any` (skipLibCheck hides the error).
 * These declarations restate the runtime API (checked against dist/tokenizers.mjs 0.2.0), so the rest of
 * the SDK is type-checked against something real. The parity tests exercise every member used here.
 *
 * Why a dynamic import: the SDK's dist/ is loaded as-is by module Workers (tests/browser), which cannot
 * resolve bare specifiers ("@huggingface/tokenizers") without a bundler. A static import would make
 * all of @hearth/sdk fail to load there; a dynamic one fails only when a tokenizer is actually loaded.
 */

export interface TjsEncoding {
  ids: number[];
  tokens: string[];
}

export interface TjsAddedToken {
  content: string;
  id: number;
  special: boolean;
}

export interface TjsDecoder {
  config: object;
  added_tokens: TjsAddedToken[];
  end_of_word_suffix: string | null;
  decode_chain(tokens: string[]): string[];
}

export interface TjsSequenceDecoder extends TjsDecoder {
  decoders: TjsDecoder[];
}

export interface TjsTokenizer {
  /** Replaceable: the SDK swaps in a Rust-exact ByteFallback (byte-fallback.ts). */
  decoder: TjsDecoder | null;
  encode(text: string, options?: { add_special_tokens?: boolean }): TjsEncoding;
  /** Throws on an empty list. */
  decode(ids: number[], options?: { skip_special_tokens?: boolean; clean_up_tokenization_spaces?: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_added_tokens_decoder(): Map<number, TjsAddedToken>;
  get_vocab(withAddedTokens?: boolean): Map<string, number>;
}

/** The classes the SDK takes from tokenizers.js. */
export interface TokenizersJs {
  Tokenizer: new (tokenizerJson: object, tokenizerConfig: object) => TjsTokenizer;
  ByteFallbackDecoder: new (config: object) => TjsDecoder;
  SequenceDecoder: new (config: object) => TjsSequenceDecoder;
}

let loading: Promise<TokenizersJs> | undefined;

/** Import tokenizers.js once (later calls share the promise; a failed import is retried next time). */
export function importTokenizersJs(): Promise<TokenizersJs> {
  loading ??= import("@huggingface/tokenizers").then(
    (mod: Record<string, unknown>) => ({
      Tokenizer: exported(mod, "Tokenizer"),
      ByteFallbackDecoder: exported(mod, "ByteFallbackDecoder"),
      SequenceDecoder: exported(mod, "SequenceDecoder"),
    }),
    (err: unknown) => {
      loading = undefined;
      throw err;
    },
  );
  return loading;
}

// The module's exports type as `any` or not at all (see above): look them up by name, check that they are
// classes, and give them their real types.
function exported<T>(mod: Record<string, unknown>, name: string): T {
  const value = mod[name];
  if (typeof value !== "function") throw new Error(`@huggingface/tokenizers has no export ${name}; was it upgraded?`);
  return value as T;
}
