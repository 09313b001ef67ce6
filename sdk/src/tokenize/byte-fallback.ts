/**
 * A ByteFallback decoder that decodes like the Rust tokenizers, swapped into tokenizers.js's decoder tree.
 *
 * tokenizers.js 0.2.0's ByteFallback turns a run of `<0xNN>` tokens into text with `new TextDecoder()`,
 * which differs from Rust (`decoders/byte_fallback.rs`) twice:
 *  - the default TextDecoder drops a leading U+FEFF (BOM), so a "\uFEFF" in sentencepiece byte-fallback
 *    text vanishes on decode (the parity test caught this);
 *  - for bytes that are not valid UTF-8, Rust emits one U+FFFD per byte, TextDecoder one per maximal
 *    invalid subsequence (visible when decoding a truncated sequence or a partial stream).
 * Drop this file once tokenizers.js decodes like Rust (the parity test says when).
 */
import type { TjsDecoder, TokenizersJs } from "./tokenizers-js.js";

const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

// The base class only exists once tokenizers.js is imported, so the subclass is made then (once per module).
type RustByteFallback = TjsDecoder & { readonly rustExact: true };
const rustClasses = new WeakMap<TokenizersJs, new (config: object) => RustByteFallback>();

function rustByteFallbackClass(lib: TokenizersJs): new (config: object) => RustByteFallback {
  const known = rustClasses.get(lib);
  if (known !== undefined) return known;
  class RustByteFallbackDecoder extends lib.ByteFallbackDecoder {
    readonly rustExact = true as const;
    // `fatal` so invalid runs can be told apart; `ignoreBOM` so U+FEFF is kept like any other character.
    readonly #strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

    override decode_chain(tokens: string[]): string[] {
      const out: string[] = [];
      let bytes: number[] = [];
      const flush = (): void => {
        if (bytes.length === 0) return;
        try {
          out.push(this.#strict.decode(Uint8Array.from(bytes)));
        } catch {
          for (let i = 0; i < bytes.length; i++) out.push("\uFFFD");
        }
        bytes = [];
      };
      for (const token of tokens) {
        const m = BYTE_TOKEN.exec(token);
        if (m !== null) {
          bytes.push(parseInt(m[1] as string, 16));
        } else {
          flush();
          out.push(token);
        }
      }
      flush();
      return out;
    }
  }
  rustClasses.set(lib, RustByteFallbackDecoder);
  return RustByteFallbackDecoder;
}

/** `decoder` with every ByteFallback in it (at the top or inside Sequences) replaced by the Rust-exact one. */
export function withRustByteFallback(lib: TokenizersJs, decoder: TjsDecoder | null): TjsDecoder | null {
  const Rust = rustByteFallbackClass(lib);
  if (decoder instanceof lib.ByteFallbackDecoder && !(decoder instanceof Rust)) {
    const replacement = new Rust(decoder.config);
    // Tokenizer's constructor sets these on its top-level decoder after building it; carry them over.
    replacement.added_tokens = decoder.added_tokens;
    replacement.end_of_word_suffix = decoder.end_of_word_suffix;
    return replacement;
  }
  if (decoder instanceof lib.SequenceDecoder) {
    decoder.decoders = decoder.decoders.map((d) => withRustByteFallback(lib, d) ?? d);
  }
  return decoder;
}
