/** Constrained decoding: grammars compiled with xgrammar, per-step token masks (see engine.ts). */
export { GrammarEngine, GrammarConstraint, canonicalJson, specKey, type GrammarSpec, type GrammarStats, type GrammarVocab, type VocabType } from "./engine.js";
export { checkGrammarSpec } from "./check.js";
export { checkJsonSchema } from "./json-schema.js";
export { applyTokenBitmask } from "./mask.js";
export { loadXgrammar, provideXgrammar, type XgrammarFactory, type XgrammarHooks, type XgrammarModule } from "./library.js";
export { GrammarError } from "../errors/text.js";
