/**
 * The grammar engine of a loaded chat model, made on its first structured request (building xgrammar's
 * tokenizer info walks the whole vocabulary, so models that never see one never pay for it) and kept as
 * long as the model is: compiled grammars are cached per (tokenizer, grammar).
 */
import { GrammarError } from "../errors/text.js";
import { GrammarEngine, type GrammarConstraint, type GrammarSpec, type GrammarStats, type VocabType } from "../grammar/engine.js";
import type { LoadedChatModel } from "./chat-model.js";
import { grammarRequestError } from "./structured.js";

const engines = new WeakMap<LoadedChatModel, GrammarEngine>();

/**
 * How the token strings are encoded: MLC's tokenizer_info (mlc-chat-config.json, written by the compiler),
 * as WebLLM reads it; packages built before the compiler wrote it are recognised by their vocabulary, as
 * MLC's DetectTokenizerInfo does from tokenizer.json: byte tokens "<0x0A>" mean byte fallback (sentencepiece,
 * "▁" for spaces, prepended), "Ġ" / "Ċ" the GPT-2 byte-level alphabet. A wrong guess is not silent: every
 * space-bearing token would look unusable and the first grammar would allow no token (GrammarError).
 */
export function vocabType(raw: Record<string, unknown>, tokens: readonly string[]): { vocabType: VocabType; prependSpace: boolean } {
  const info = raw["tokenizer_info"] as { token_postproc_method?: unknown; prepend_space_in_encode?: unknown } | undefined;
  const method = info?.token_postproc_method ?? raw["token_table_postproc_method"];
  if (method === "byte_level" || method === "byte_fallback" || method === "raw") {
    return { vocabType: method, prependSpace: info?.prepend_space_in_encode === true };
  }
  if (tokens.includes("<0x0A>")) return { vocabType: "byte_fallback", prependSpace: tokens.some((t) => t.startsWith("\u2581")) };
  if (tokens.some((t) => t.startsWith("\u0120") || t.includes("\u010a"))) return { vocabType: "byte_level", prependSpace: false };
  return { vocabType: "raw", prependSpace: false };
}

export function grammarEngineFor(loaded: LoadedChatModel): GrammarEngine {
  let engine = engines.get(loaded);
  if (engine === undefined) {
    const tok = loaded.tokenizer;
    // Special tokens are "" for xgrammar (it never allows a token without text, stop tokens aside): their
    // literal names ("<|im_start|>") would otherwise count as text inside JSON strings, yet decode to nothing.
    const tokens = Array.from({ length: Math.min(tok.vocabSize, loaded.info.vocabSize) }, (_, id) => (tok.specialIds.has(id) ? "" : (tok.idToToken(id) ?? "")));
    engine = new GrammarEngine({ tokens, ...vocabType(loaded.model.config.raw, tokens), vocabSize: loaded.info.vocabSize, stopTokenIds: loaded.eosTokenIds });
    engines.set(loaded, engine);
  }
  return engine;
}

/** The model's grammar counters, or null when no request used a grammar yet. */
export function grammarStats(loaded: LoadedChatModel): GrammarStats | null {
  return engines.get(loaded)?.stats() ?? null;
}

/** A matcher for one request; a grammar the engine refuses is the request's error (InvalidRequestError). */
export async function requestConstraint(loaded: LoadedChatModel, spec: GrammarSpec, param: string): Promise<GrammarConstraint> {
  try {
    return await grammarEngineFor(loaded).constraint(spec);
  } catch (err) {
    if (err instanceof GrammarError) throw grammarRequestError(err, param);
    throw err;
  }
}
