/**
 * One xgrammar wasm instance and the error protocol around it. xgrammar reports a bad grammar by printing
 * "[FATAL] <file>:<line>: <message>" and aborting the instance; {@link XgInstance.run} turns that into a
 * {@link GrammarError} carrying the message and marks the instance broken, so its owner replaces it
 * (an aborted emscripten instance's stack and heap are no longer trustworthy).
 */
import { GrammarError } from "../errors/text.js";
import { loadXgrammar, type XgrammarFactory, type XgrammarModule } from "./library.js";

const FATAL = /^\[FATAL\][^:]*:\d+:\s*/;

/** JSON Schema keywords to look for in xgrammar's message, to name the one at fault. */
const KEYWORDS = [
  "minProperties",
  "maxProperties",
  "minItems",
  "maxItems",
  "minLength",
  "maxLength",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "minimum",
  "maximum",
  "multipleOf",
  "patternProperties",
  "propertyNames",
  "additionalProperties",
  "prefixItems",
  "items",
  "required",
  "properties",
  "pattern",
  "format",
  "enum",
  "const",
  "anyOf",
  "oneOf",
  "allOf",
  "$ref",
  "type",
];

export class XgInstance {
  broken = false;
  readonly lib: XgrammarModule;
  #errors: string[] = [];

  private constructor(factory: XgrammarFactory) {
    this.lib = factory({ printErr: (text) => this.#errors.push(text), print: () => {} });
  }

  static async create(): Promise<XgInstance> {
    const xg = new XgInstance(await loadXgrammar());
    // xgrammar starts its wasm on the first call and does not guard against two first calls at once (each
    // would start one, the second failing): start it here, before anyone else can call.
    (await xg.lib.Grammar.fromEBNF('root ::= "a"')).dispose();
    return xg;
  }

  /**
   * Run an xgrammar call. A failure becomes a GrammarError with xgrammar's message (`keyword`: the JSON
   * Schema keyword the message names, else `fallbackKeyword`); an abort marks this instance broken.
   */
  async run<T>(what: string, fallbackKeyword: string | null, op: (lib: XgrammarModule) => Promise<T> | T): Promise<T> {
    if (this.broken) throw new Error("xgrammar instance used after it aborted");
    this.#errors = [];
    try {
      return await op(this.lib);
    } catch (err) {
      const aborted = err instanceof Error && /Aborted\(/.test(err.message);
      if (aborted) this.broken = true;
      const fatal = this.#errors.find((line) => FATAL.test(line));
      const detail = (
        fatal ??
        this.#errors.find((line) => line.trim() !== "" && !/^Aborted\(/.test(line)) ??
        (err instanceof Error ? err.message : String(err))
      )
        .replace(FATAL, "")
        .trim();
      const keyword = KEYWORDS.find((k) => new RegExp(`(^|[^\\w$])${k.replace("$", "\\$")}([^\\w]|$)`).test(detail)) ?? fallbackKeyword;
      throw new GrammarError(`${what}: ${detail}`, keyword, detail);
    } finally {
      this.#errors = [];
    }
  }
}
