/**
 * Checking a grammar without a tokenizer, before a request is accepted: JSON Schemas first pass
 * checkJsonSchema (keywords), then xgrammar converts the spec to a grammar (no vocabulary needed), so an
 * invalid schema, EBNF or regex is refused before anything is queued or generated.
 */
import type { Grammar } from "@mlc-ai/web-xgrammar";
import { XgInstance } from "./instance.js";
import { TAGGED_ROOT, taggedJsonEbnf, type GrammarSpec } from "./engine.js";
import { checkJsonSchema, xgrammarSchema } from "./json-schema.js";

let instance: Promise<XgInstance> | null = null;
let queue: Promise<unknown> = Promise.resolve();

async function live(): Promise<XgInstance> {
  const current = instance === null ? null : await instance.catch(() => null);
  if (current !== null && !current.broken) return current;
  instance = XgInstance.create();
  return instance;
}

async function convert(spec: GrammarSpec): Promise<void> {
  const xg = await live();
  const keyword =
    spec.type === "json_schema" || spec.type === "tagged_json_schema"
      ? "schema"
      : spec.type === "ebnf"
        ? "grammar"
        : spec.type === "regex"
          ? "regex"
          : spec.type;
  const grammar: Grammar | null = await xg.run(`the ${spec.type.replace("_", " ")} grammar was refused`, keyword, (lib) => {
    switch (spec.type) {
      case "json":
        return null;
      case "json_schema":
        return lib.Grammar.fromJSONSchema(xgrammarSchema(spec.schema), false, -1, undefined, true);
      case "ebnf":
        return lib.Grammar.fromEBNF(spec.grammar, spec.root ?? "root");
      case "regex":
        return lib.Grammar.fromStructuralTag({ type: "structural_tag", format: { type: "regex", pattern: spec.pattern } });
      case "structural_tag":
        return lib.Grammar.fromStructuralTag(spec.tag);
      case "tagged_json_schema":
        return taggedJsonEbnf(lib, spec).then((ebnf) => lib.Grammar.fromEBNF(ebnf, TAGGED_ROOT));
    }
  });
  grammar?.dispose();
}

/** Throw {@link GrammarError} (keyword set where known) unless `spec` compiles. */
export function checkGrammarSpec(spec: GrammarSpec): Promise<void> {
  if (spec.type === "json_schema" || spec.type === "tagged_json_schema") checkJsonSchema(JSON.parse(spec.schema));
  const run = queue.then(() => convert(spec));
  queue = run.catch(() => {});
  return run;
}
