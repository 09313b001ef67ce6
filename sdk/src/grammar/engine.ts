/**
 * Grammars for constrained decoding: a {@link GrammarEngine} compiles grammar specs (JSON, JSON Schema,
 * EBNF, regex, structural tags) against one tokenizer's vocabulary with xgrammar and caches them by the
 * spec's canonical text, so a schema is compiled once per loaded model. A {@link GrammarConstraint} is one
 * request's matcher: mask() before each sampling step, accept() after it, `terminated` once the grammar
 * is complete and a stop token was taken.
 *
 * JSON is generated compact on one line (`{"a": 1, "b": [true]}`: no free whitespace): a small model
 * given free whitespace can loop on newlines until max_tokens, and the text means the same.
 */
import type { CompiledGrammar, GrammarCompiler, GrammarMatcher, TokenizerInfo } from "@mlc-ai/web-xgrammar";
import { GrammarError } from "../errors/text.js";
import { XgInstance } from "./instance.js";
import type { XgrammarModule } from "./library.js";
import { xgrammarSchema } from "./json-schema.js";
import { applyTokenBitmask } from "./mask.js";

/** How the token strings of {@link GrammarVocab.tokens} are encoded (MLC's `token_postproc_method`). */
export type VocabType = "byte_level" | "byte_fallback" | "raw";

/** A tokenizer's vocabulary as xgrammar needs it. */
export interface GrammarVocab {
  /** The raw token strings by id (tokenizer.json's, e.g. "Ġthe" for byte-level BPE); "" for ids without one. */
  tokens: readonly string[];
  vocabType: VocabType;
  /** The tokenizer prepends a space when encoding (sentencepiece's add_dummy_prefix). */
  prependSpace: boolean;
  /** The model's logits length (may exceed tokens.length: padded vocabularies). */
  vocabSize: number;
  /** Ids that end generation: the grammar allows them only where it may end. */
  stopTokenIds: readonly number[];
}

export type GrammarSpec =
  | { type: "json" }
  /** `schema`: JSON text of the schema (canonical form: see canonicalJson). */
  | { type: "json_schema"; schema: string }
  | { type: "ebnf"; grammar: string; root?: string | undefined }
  | { type: "regex"; pattern: string }
  /** `tag`: JSON text of an xgrammar structural tag ({type: "structural_tag", format}). */
  | { type: "structural_tag"; tag: string }
  /** `begin`, then JSON matching `schema` (JSON text, compact like json_schema), then `end` (tool calls). */
  | { type: "tagged_json_schema"; begin: string; schema: string; end: string };

/** Options of xgrammar's JSON Schema converter (kept in one place so every JSON grammar agrees). */
const JSON_ANY_WHITESPACE = false;
const JSON_INDENT = -1; // one line, separators ", " and ": "

/** JSON text with object keys sorted (a cache key that does not depend on key order). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

/** Cache key of a spec. Schemas keep their key order (it is the order properties are generated in). */
export function specKey(spec: GrammarSpec): string {
  switch (spec.type) {
    case "json":
      return "json";
    case "json_schema":
      return `json_schema\0${spec.schema}`;
    case "ebnf":
      return `ebnf\0${spec.root ?? "root"}\0${spec.grammar}`;
    case "regex":
      return `regex\0${spec.pattern}`;
    case "structural_tag":
      return `structural_tag\0${spec.tag}`;
    case "tagged_json_schema":
      return `tagged_json_schema\0${spec.begin}\0${spec.end}\0${spec.schema}`;
  }
}

/** The root rule of a tagged grammar (an EBNF name that xgrammar's JSON converter never makes). */
const TAGGED_ROOT = "hearth_tagged_root";

/**
 * EBNF for `begin` JSON(schema) `end`: the schema's grammar as xgrammar's converter writes it (the same
 * compact form as json_schema; xgrammar's structural tags would allow free whitespace inside the JSON)
 * plus a root rule around it.
 */
export async function taggedJsonEbnf(lib: XgrammarModule, spec: { begin: string; schema: string; end: string }): Promise<string> {
  const json = await lib.Testings._jsonSchemaToEBNF(xgrammarSchema(spec.schema), JSON_ANY_WHITESPACE, JSON_INDENT, undefined, true);
  return `${json}\n${TAGGED_ROOT} ::= ${JSON.stringify(spec.begin)} root ${JSON.stringify(spec.end)}\n`;
}

export { TAGGED_ROOT };

/** What the keyword of a failure is when xgrammar's message names none. */
function fallbackKeyword(spec: GrammarSpec): string {
  return spec.type === "json_schema" || spec.type === "tagged_json_schema"
    ? "schema"
    : spec.type === "ebnf"
      ? "grammar"
      : spec.type === "regex"
        ? "regex"
        : spec.type;
}

export interface GrammarStats {
  /** Grammars compiled (cache misses) and cache hits since the engine was made. */
  compiles: number;
  cacheHits: number;
  /** Time of the last compile and of all compiles, ms. */
  lastCompileMs: number;
  totalCompileMs: number;
  /** Building the tokenizer info (once per xgrammar instance), ms. */
  tokenizerInfoMs: number;
  /** xgrammar instances made (a new one after each grammar that aborted its instance). */
  instances: number;
  cached: number;
}

interface Live {
  xg: XgInstance;
  info: TokenizerInfo;
  compiler: GrammarCompiler;
}

async function compileWith(live: Live, spec: GrammarSpec): Promise<CompiledGrammar> {
  const c = live.compiler;
  switch (spec.type) {
    case "json":
      // strictMode false: any object (strict mode would allow only {}).
      return c.compileJSONSchema('{"type": "object"}', JSON_ANY_WHITESPACE, JSON_INDENT, undefined, false);
    case "json_schema":
      return c.compileJSONSchema(xgrammarSchema(spec.schema), JSON_ANY_WHITESPACE, JSON_INDENT, undefined, true);
    case "ebnf":
      return c.compileGrammar(spec.grammar, spec.root ?? "root");
    case "regex":
      return c.compileStructuralTag({ type: "structural_tag", format: { type: "regex", pattern: spec.pattern } });
    case "structural_tag":
      return c.compileStructuralTag(spec.tag);
    case "tagged_json_schema":
      return c.compileGrammar(await taggedJsonEbnf(live.xg.lib, spec), TAGGED_ROOT);
  }
}

export class GrammarEngine {
  readonly vocab: GrammarVocab;
  readonly #cacheSize: number;
  #live: Live | null = null;
  /** Insertion order = recency (a hit moves the entry to the end). */
  readonly #cache = new Map<string, CompiledGrammar>();
  readonly #stats: GrammarStats = { compiles: 0, cacheHits: 0, lastCompileMs: 0, totalCompileMs: 0, tokenizerInfoMs: 0, instances: 0, cached: 0 };
  #queue: Promise<unknown> = Promise.resolve();

  constructor(vocab: GrammarVocab, options: { cacheSize?: number } = {}) {
    if (vocab.tokens.length > vocab.vocabSize) {
      throw new RangeError(`the tokenizer has ${vocab.tokens.length} tokens, more than the model's ${vocab.vocabSize} logits`);
    }
    this.vocab = vocab;
    this.#cacheSize = Math.max(1, options.cacheSize ?? 32);
  }

  stats(): GrammarStats {
    return { ...this.#stats, cached: this.#cache.size };
  }

  async #ensure(): Promise<Live> {
    if (this.#live !== null && !this.#live.xg.broken) return this.#live;
    // A broken instance's objects cannot be freed (its heap is suspect): drop them with it.
    this.#cache.clear();
    this.#live = null;
    const xg = await XgInstance.create();
    const t0 = performance.now();
    const v = this.vocab;
    const info = await xg.run("xgrammar tokenizer info", null, (lib) =>
      lib.TokenizerInfo.createTokenizerInfo([...v.tokens], v.vocabType, v.prependSpace, v.vocabSize, [...v.stopTokenIds]),
    );
    const compiler = await xg.run("xgrammar compiler", null, (lib) => lib.GrammarCompiler.createGrammarCompiler(info, false));
    this.#stats.tokenizerInfoMs = performance.now() - t0;
    this.#stats.instances++;
    this.#live = { xg, info, compiler };
    return this.#live;
  }

  /** Compile `spec` (or take it from the cache). Throws {@link GrammarError} for a grammar xgrammar refuses. */
  compile(spec: GrammarSpec): Promise<CompiledGrammar> {
    // One compile at a time: an abort must not strike while another call uses the same instance.
    const run = this.#queue.then(() => this.#compile(spec));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #compile(spec: GrammarSpec): Promise<CompiledGrammar> {
    const key = specKey(spec);
    const live = await this.#ensure();
    const hit = this.#cache.get(key);
    if (hit !== undefined) {
      this.#cache.delete(key);
      this.#cache.set(key, hit);
      this.#stats.cacheHits++;
      return hit;
    }
    const t0 = performance.now();
    const compiled = await live.xg.run(`the ${spec.type.replace("_", " ")} grammar was refused`, fallbackKeyword(spec), () => compileWith(live, spec));
    const ms = performance.now() - t0;
    this.#stats.compiles++;
    this.#stats.lastCompileMs = ms;
    this.#stats.totalCompileMs += ms;
    this.#cache.set(key, compiled);
    while (this.#cache.size > this.#cacheSize) {
      const [oldKey, old] = this.#cache.entries().next().value as [string, CompiledGrammar];
      this.#cache.delete(oldKey);
      old.dispose();
    }
    return compiled;
  }

  /** A fresh matcher for one request. */
  async constraint(spec: GrammarSpec): Promise<GrammarConstraint> {
    const compiled = await this.compile(spec);
    const live = this.#live as Live;
    const matcher = await live.xg.run("xgrammar matcher", null, (lib) => lib.GrammarMatcher.createGrammarMatcher(compiled));
    return new GrammarConstraint(matcher);
  }

  dispose(): void {
    const live = this.#live;
    this.#live = null;
    if (live === null || live.xg.broken) {
      this.#cache.clear();
      return;
    }
    for (const c of this.#cache.values()) c.dispose();
    this.#cache.clear();
    live.compiler.dispose();
    live.info.dispose();
  }
}

/** One request's grammar state. */
export class GrammarConstraint {
  #matcher: GrammarMatcher | null;
  /** Tokens accepted so far. */
  accepted = 0;
  /** Time spent computing and applying masks, ms. */
  maskMs = 0;

  constructor(matcher: GrammarMatcher) {
    this.#matcher = matcher;
  }

  get terminated(): boolean {
    return this.#matcher?.isTerminated() ?? true;
  }

  #live(): GrammarMatcher {
    if (this.#matcher === null) throw new GrammarError("the grammar matcher was released");
    return this.#matcher;
  }

  /** Set every token the grammar does not allow next to -Infinity in `logits`; returns how many remain. */
  async mask(logits: Float32Array): Promise<number> {
    const t0 = performance.now();
    const bitmask = await this.#live().getNextTokenBitmask();
    const allowed = applyTokenBitmask(logits, bitmask);
    this.maskMs += performance.now() - t0;
    if (allowed === 0) throw new GrammarError("the grammar allows no token here (the vocabulary cannot spell what it requires)");
    return allowed;
  }

  /** Advance with the sampled token; throws {@link GrammarError} if the grammar rejects it. */
  accept(token: number): void {
    if (!this.#live().acceptToken(token)) throw new GrammarError(`the grammar rejected token ${token} (sampled outside the mask)`);
    this.accepted++;
  }

  dispose(): void {
    this.#matcher?.dispose();
    this.#matcher = null;
  }
}
