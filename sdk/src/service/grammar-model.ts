/**
 * The grammar engine of a loaded chat model, made on its first structured request (building xgrammar's
 * tokenizer info walks the whole vocabulary, so models that never see one never pay for it) and kept as
 * long as the model is: compiled grammars are cached per (tokenizer, grammar).
 */
import { GrammarError } from "../errors/text.js";
import { GrammarEngine, type GrammarConstraint, type GrammarSpec, type VocabType } from "../grammar/engine.js";
import type { LoadedChatModel } from "./chat-model.js";
import { grammarRequestError } from "./structured.js";

const engines = new WeakMap<LoadedChatModel, GrammarEngine>();

/** MLC's tokenizer_info (mlc-chat-config.json, written by the compiler), as WebLLM reads it. */
function vocabType(raw: Record<string, unknown>): { vocabType: VocabType; prependSpace: boolean } {
  const info = raw["tokenizer_info"] as { token_postproc_method?: unknown; prepend_space_in_encode?: unknown } | undefined;
  const method = info?.token_postproc_method ?? raw["token_table_postproc_method"];
  const type: VocabType = method === "byte_level" || method === "byte_fallback" ? method : "raw";
  return { vocabType: type, prependSpace: info?.prepend_space_in_encode === true };
}

export function grammarEngineFor(loaded: LoadedChatModel): GrammarEngine {
  let engine = engines.get(loaded);
  if (engine === undefined) {
    const tok = loaded.tokenizer;
    // Special tokens are "" for xgrammar (it never allows a token without text, stop tokens aside): their
    // literal names ("<|im_start|>") would otherwise count as text inside JSON strings, yet decode to nothing.
    const tokens = Array.from({ length: Math.min(tok.vocabSize, loaded.info.vocabSize) }, (_, id) => (tok.specialIds.has(id) ? "" : (tok.idToToken(id) ?? "")));
    engine = new GrammarEngine({ tokens, ...vocabType(loaded.model.config.raw), vocabSize: loaded.info.vocabSize, stopTokenIds: loaded.eosTokenIds });
    engines.set(loaded, engine);
  }
  return engine;
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
