/**
 * {@link Tokenizer} over `@huggingface/tokenizers` (tokenizers.js): Hugging Face's own pure-JS runtime
 * for tokenizer.json (BPE incl. byte-level and byte fallback, WordPiece, Unigram; every normalizer,
 * pre-tokenizer, post-processor and decoder in common use). What this file adds is what the library
 * leaves to transformers: special-token names from tokenizer_config.json, truncation, transformers 5's
 * decode defaults, and typed-array ids.
 */
import { withRustByteFallback } from "./byte-fallback.js";
import { StreamDecoder, type StreamDecoderOptions } from "./stream.js";
import type { DecodeOptions, EncodeOptions, SpecialToken, SpecialTokens, Tokenizer, TruncationOptions } from "./tokenizer.js";
import type { TjsTokenizer, TokenizersJs } from "./tokenizers-js.js";

/** The parts of tokenizer_config.json this file reads (the file has many more keys). */
export interface TokenizerConfigJson {
  bos_token?: unknown;
  eos_token?: unknown;
  pad_token?: unknown;
  unk_token?: unknown;
  additional_special_tokens?: unknown;
  extra_special_tokens?: unknown;
  clean_up_tokenization_spaces?: unknown;
  truncation_side?: unknown;
  [key: string]: unknown;
}

/** tokenizer_config.json names a token as a string or as a serialised AddedToken `{content, ...}`. */
export function tokenContent(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (typeof value === "object" && value !== null && typeof (value as { content?: unknown }).content === "string") {
    return (value as { content: string }).content;
  }
  return null;
}

/** The special tokens a single-sequence encode puts around the text (from the post-processor). */
interface Framing {
  prefix: number[];
  suffix: number[];
}

export class HFTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly special: SpecialTokens;
  readonly specialIds: ReadonlySet<number>;
  readonly #impl: TjsTokenizer;
  readonly #cleanUp: boolean;
  readonly #truncationSide: "left" | "right";
  #framing: Framing | undefined;

  /**
   * `lib`: the imported tokenizers.js ({@link importTokenizersJs}). `tokenizerJson` and `config` must be
   * parsed JSON; {@link loadTokenizer} does all of that and validates them first.
   */
  constructor(lib: TokenizersJs, tokenizerJson: object, config: TokenizerConfigJson) {
    // tokenizers.js defaults clean-up to true when the key is absent; transformers 5 defaults it to false,
    // so pass the resolved value down instead of the raw config.
    const isBPE = (tokenizerJson as { model?: { type?: unknown } }).model?.type === "BPE";
    this.#cleanUp = config.clean_up_tokenization_spaces === true && !isBPE;
    this.#truncationSide = config.truncation_side === "left" ? "left" : "right";
    this.#impl = new lib.Tokenizer(tokenizerJson, { ...config, clean_up_tokenization_spaces: false });
    this.#impl.decoder = withRustByteFallback(lib, this.#impl.decoder);

    let maxId = -1;
    for (const id of this.#impl.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;

    const named = (key: "bos_token" | "eos_token" | "pad_token" | "unk_token"): SpecialToken | null => {
      const content = tokenContent(config[key]);
      if (content === null) return null;
      const id = this.#impl.token_to_id(content);
      return id === undefined ? null : { id, content };
    };
    this.special = { bos: named("bos_token"), eos: named("eos_token"), pad: named("pad_token"), unk: named("unk_token") };

    const ids = new Set<number>();
    for (const [id, token] of this.#impl.get_added_tokens_decoder()) if (token.special) ids.add(id);
    for (const s of Object.values(this.special)) if (s !== null) ids.add(s.id);
    // transformers 4 lists extra specials as `additional_special_tokens`, transformers 5 as `extra_special_tokens`.
    for (const key of ["additional_special_tokens", "extra_special_tokens"] as const) {
      const list = config[key];
      if (!Array.isArray(list)) continue;
      for (const entry of list) {
        const content = tokenContent(entry);
        const id = content === null ? undefined : this.#impl.token_to_id(content);
        if (id !== undefined) ids.add(id);
      }
    }
    this.specialIds = ids;
  }

  encode(text: string, options: EncodeOptions = {}): Int32Array {
    const addSpecialTokens = options.addSpecialTokens ?? true;
    if (options.truncation === undefined) {
      return Int32Array.from(this.#impl.encode(text, { add_special_tokens: addSpecialTokens }).ids);
    }
    const { prefix, suffix } = addSpecialTokens ? this.#specialFraming() : { prefix: [], suffix: [] };
    const body = this.#impl.encode(text, { add_special_tokens: false }).ids;
    const room = truncationRoom(options.truncation, prefix.length + suffix.length);
    const side = options.truncation.side ?? this.#truncationSide;
    const kept = body.length <= room ? body : side === "right" ? body.slice(0, room) : body.slice(body.length - room);
    return Int32Array.from([...prefix, ...kept, ...suffix]);
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const skip = options.skipSpecialTokens ?? false;
    const kept: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      if (!Number.isInteger(id)) throw new TypeError(`decode: ids[${i}] is not an integer (${id})`);
      // Ids with no token (padded logits) are skipped, like the Rust tokenizers' decode does.
      if (this.#impl.id_to_token(id) === undefined) continue;
      if (skip && this.specialIds.has(id)) continue;
      kept.push(id);
    }
    if (kept.length === 0) return ""; // tokenizers.js throws on an empty list
    return this.#impl.decode(kept, {
      skip_special_tokens: false, // already filtered, with the full special set
      clean_up_tokenization_spaces: options.cleanUpTokenizationSpaces ?? this.#cleanUp,
    });
  }

  streamDecoder(options: StreamDecoderOptions = {}): StreamDecoder {
    return new StreamDecoder(this, options);
  }

  tokenToId(token: string): number | undefined {
    return this.#impl.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.#impl.id_to_token(id);
  }

  /**
   * Truncation must cut the text, not the special tokens, so it needs to know which ids the post-processor
   * puts before and after a single sequence. Every post-processor tokenizers.js implements (template, BERT,
   * RoBERTa, byte-level) frames the sequence with fixed tokens, so encoding with and without specials once
   * and diffing gives the framing.
   */
  #specialFraming(): Framing {
    if (this.#framing !== undefined) return this.#framing;
    const probe = "a";
    const bare = this.#impl.encode(probe, { add_special_tokens: false }).ids;
    const framed = this.#impl.encode(probe, { add_special_tokens: true }).ids;
    const at = indexOfRun(framed, bare);
    if (bare.length === 0 || at < 0) {
      throw new Error("tokenizer: cannot tell where the post-processor puts its special tokens, so cannot truncate");
    }
    this.#framing = { prefix: framed.slice(0, at), suffix: framed.slice(at + bare.length) };
    return this.#framing;
  }
}

function truncationRoom(t: TruncationOptions, specials: number): number {
  if (!Number.isSafeInteger(t.maxLength) || t.maxLength < 1) {
    throw new RangeError(`truncation.maxLength must be a positive integer, got ${t.maxLength}`);
  }
  if (t.maxLength < specials) {
    throw new RangeError(`truncation.maxLength ${t.maxLength} leaves no room: the special tokens alone take ${specials}`);
  }
  return t.maxLength - specials;
}

function indexOfRun(haystack: readonly number[], needle: readonly number[]): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
