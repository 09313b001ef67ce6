/**
 * Checks a JSON Schema before xgrammar sees it: a schema that is not valid JSON Schema, or uses a keyword
 * xgrammar's converter ignores (so the output could break the schema while looking constrained) is
 * refused with a {@link GrammarError} naming the keyword and where it is ("properties.tags.uniqueItems").
 *
 * The keyword lists are what web-xgrammar 0.1.27 was checked to honour: each keyword below changes the
 * grammar it makes (probed by comparing the EBNF with and without it); `uniqueItems`, `dependentRequired`,
 * `if`/`then`/`else` do not, `allOf` with several schemas only warns, and `not` is left out. Probing which
 * strings its grammars accept found more it does not enforce, refused here too: `multipleOf` (36 passes
 * multipleOf 5), `format` together with a length or pattern (the format alone is used), and ranges on
 * non-integer numbers except non-negative bounds with a non-integer maximum (1.1 passes maximum 1, -10.6
 * passes minimum -10.5, exclusive bounds are ignored); integer ranges are exact.
 */
import { GrammarError } from "../errors/text.js";

const TYPES: ReadonlySet<string> = new Set(["string", "number", "integer", "boolean", "object", "array", "null"]);

/** Keywords that only annotate (ignored by validation too). */
const ANNOTATIONS: ReadonlySet<string> = new Set([
  "$schema",
  "$id",
  "$comment",
  "$anchor",
  "title",
  "description",
  "default",
  "examples",
  "deprecated",
  "readOnly",
  "writeOnly",
  "contentEncoding",
  "contentMediaType",
]);

/** Keywords xgrammar turns into grammar. */
const SUPPORTED: ReadonlySet<string> = new Set([
  "type",
  "enum",
  "const",
  "properties",
  "required",
  "additionalProperties",
  "unevaluatedProperties",
  "patternProperties",
  "propertyNames",
  "minProperties",
  "maxProperties",
  "items",
  "prefixItems",
  "unevaluatedItems",
  "minItems",
  "maxItems",
  "contains",
  "minLength",
  "maxLength",
  "pattern",
  "format",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "anyOf",
  "oneOf",
  "allOf",
  "$ref",
  "$defs",
  "definitions",
]);

/** JSON Schema keywords xgrammar accepts but does not enforce: refused rather than silently dropped. */
const UNENFORCED: ReadonlyMap<string, string> = new Map([
  ["uniqueItems", "unique array items"],
  ["multipleOf", "multiples (xgrammar 0.1.27 lets 36 pass multipleOf 5)"],
  ["dependentRequired", "dependent required properties"],
  ["dependentSchemas", "dependent schemas"],
  ["dependencies", "dependencies"],
  ["if", "conditional schemas"],
  ["then", "conditional schemas"],
  ["else", "conditional schemas"],
  ["not", "negated schemas"],
  ["contentSchema", "content schemas"],
  ["minContains", "minContains"],
  ["maxContains", "maxContains"],
  ["$dynamicRef", "dynamic references"],
  ["$dynamicAnchor", "dynamic references"],
  ["$recursiveRef", "recursive references"],
]);

function fail(path: string, keyword: string, why: string): never {
  throw new GrammarError(`${path === "" ? "" : `${path}: `}${why}`, keyword);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0;
const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function at(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

/**
 * Throw {@link GrammarError} (`keyword` set) unless `schema` is a JSON Schema this engine can enforce.
 * `root` is the whole schema ($ref targets are looked up in it).
 */
export function checkJsonSchema(schema: unknown): void {
  if (!isObject(schema) && typeof schema !== "boolean") fail("", "schema", "a JSON Schema must be an object (or a boolean)");
  walk(schema, "", schema);
}

function walk(schema: unknown, path: string, root: unknown): void {
  if (typeof schema === "boolean") return;
  if (!isObject(schema)) fail(path, "schema", `must be a schema object, got ${Array.isArray(schema) ? "an array" : typeof schema}`);
  for (const [key, value] of Object.entries(schema)) {
    const here = at(path, key);
    if (ANNOTATIONS.has(key)) continue;
    const unenforced = UNENFORCED.get(key);
    if (unenforced !== undefined) fail(here, key, `keyword "${key}" (${unenforced}) is not supported by the grammar engine; remove it`);
    if (!SUPPORTED.has(key)) fail(here, key, `unknown or unsupported JSON Schema keyword "${key}"`);
    checkKeyword(schema, key, value, here, root);
  }
  const pairs: [string, string][] = [
    ["minLength", "maxLength"],
    ["minItems", "maxItems"],
    ["minProperties", "maxProperties"],
    ["minimum", "maximum"],
  ];
  for (const [lo, hi] of pairs) {
    const a = schema[lo];
    const b = schema[hi];
    if (typeof a === "number" && typeof b === "number" && a > b) fail(at(path, lo), lo, `${lo} (${a}) is greater than ${hi} (${b}): nothing can match`);
  }
}

function checkKeyword(schema: Record<string, unknown>, key: string, value: unknown, here: string, root: unknown): void {
  switch (key) {
    case "type": {
      const list = Array.isArray(value) ? value : [value];
      if (list.length === 0) fail(here, key, "type must name at least one type");
      for (const t of list) {
        if (typeof t !== "string" || !TYPES.has(t)) fail(here, key, `type ${JSON.stringify(t)} is not a JSON Schema type (${[...TYPES].join(", ")})`);
      }
      return;
    }
    case "enum":
      if (!Array.isArray(value) || value.length === 0) fail(here, key, "enum must be a non-empty array");
      return;
    case "const":
      return;
    case "properties":
    case "patternProperties":
    case "$defs":
    case "definitions":
      if (!isObject(value)) fail(here, key, `${key} must be an object of schemas`);
      for (const [name, sub] of Object.entries(value)) {
        if (key === "patternProperties") checkPattern(name, here, key);
        walk(sub, at(here, name), root);
      }
      return;
    case "required":
      if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) fail(here, key, "required must be an array of property names");
      if (new Set(value).size !== value.length) fail(here, key, "required lists a property twice");
      return;
    case "additionalProperties":
    case "unevaluatedProperties":
    case "unevaluatedItems":
    case "propertyNames":
    case "contains":
      walk(value, here, root);
      return;
    case "items":
      if (Array.isArray(value)) fail(here, key, "items must be one schema (use prefixItems for a tuple)");
      walk(value, here, root);
      return;
    case "prefixItems":
    case "anyOf":
    case "oneOf":
    case "allOf":
      if (!Array.isArray(value) || value.length === 0) fail(here, key, `${key} must be a non-empty array of schemas`);
      if (key === "allOf" && value.length > 1) fail(here, key, "allOf with more than one schema is not supported by the grammar engine; merge them");
      for (const [i, sub] of value.entries()) walk(sub, `${here}[${i}]`, root);
      return;
    case "minLength":
    case "maxLength":
    case "minItems":
    case "maxItems":
    case "minProperties":
    case "maxProperties":
      if (!isCount(value)) fail(here, key, `${key} must be a non-negative integer`);
      return;
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum":
      if (!isNumber(value)) fail(here, key, `${key} must be a number`);
      checkNumberBound(schema, key, value, here);
      return;
    case "pattern":
      if (typeof value !== "string") fail(here, key, "pattern must be a string");
      checkPattern(value, here, key);
      return;
    case "format":
      if (typeof value !== "string") fail(here, key, "format must be a string");
      for (const other of ["minLength", "maxLength", "pattern"]) {
        if (other in schema)
          fail(
            at(here.slice(0, -key.length - 1), other),
            other,
            `"${other}" beside "format" is not enforced by the grammar engine (it uses the format alone); drop one`,
          );
      }
      return;
    case "$ref":
      if (typeof value !== "string") fail(here, key, "$ref must be a string");
      if (value !== "#" && resolvePointer(root, value) === undefined)
        fail(here, key, `$ref ${JSON.stringify(value)} does not point into this schema (only local "#/..." references are supported)`);
      return;
  }
}

/** Ranges on non-integer numbers: xgrammar 0.1.27's range grammar for them is wrong (see the header). */
function checkNumberBound(schema: Record<string, unknown>, key: string, value: number, here: string): void {
  const types = Array.isArray(schema["type"]) ? schema["type"] : [schema["type"]];
  if (!types.includes("number")) return;
  fail(
    here,
    key,
    `"${key}": ${value} on type number is not enforced by the grammar engine (xgrammar 0.1.27 lets 1.1 pass maximum 1 and writes numbers like 0275); ` +
      "use type integer (integer ranges are exact, e.g. a percentage instead of a fraction), or drop the range",
  );
}

/**
 * The characters a generated JSON string may hold: printable ASCII but the quote and the backslash.
 * xgrammar 0.1.27 matches non-ASCII classes byte-wise without checking continuation bytes, so with a
 * byte-level vocabulary a stray lead byte swallows the next bytes, the closing quote among them: a random
 * model produced `"\u0142()" *"` (invalid JSON) under `[^\u0000-\u001f"\\]` and F6 88 AF B6 (not UTF-8)
 * under the built-in string grammar. ASCII cannot go wrong that way.
 */
const STRING_CHAR = String.raw`[ !#-\[\]-~]`;

/**
 * The schema as handed to xgrammar: a plain string schema (no pattern, format, enum or const) becomes the
 * equivalent `pattern` over {@link STRING_CHAR}, keeping minLength / maxLength exact. (xgrammar's own
 * string grammars also let raw control characters into length-bounded strings.) So schema strings are
 * printable ASCII without escapes: a documented limit of JSON Schema output, not of json_object.
 */
export function xgrammarSchema(schemaText: string): string {
  return JSON.stringify(rewrite(JSON.parse(schemaText)));
}

function rewrite(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewrite);
  if (!isObject(node)) return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) out[k] = k === "enum" || k === "const" || k === "default" || k === "examples" ? v : rewrite(v);
  if ("pattern" in out || "format" in out || "enum" in out || "const" in out) return out;
  const types = Array.isArray(out["type"]) ? (out["type"] as unknown[]) : [out["type"]];
  if (!types.includes("string")) return out;
  const { minLength, maxLength, type: _type, ...rest } = out;
  const lo = typeof minLength === "number" ? minLength : 0;
  const count = typeof maxLength === "number" ? `{${lo},${maxLength}}` : lo === 0 ? "*" : lo === 1 ? "+" : `{${lo},}`;
  const stringSchema = { ...rest, type: "string", pattern: `^${STRING_CHAR}${count}$` };
  if (types.length === 1) return stringSchema;
  return { anyOf: types.map((t) => (t === "string" ? stringSchema : { ...rest, type: t })) };
}

function checkPattern(pattern: string, here: string, keyword: string): void {
  try {
    new RegExp(pattern, "u");
  } catch (err) {
    fail(here, keyword, `${JSON.stringify(pattern)} is not a valid regular expression (${err instanceof Error ? err.message : String(err)})`);
  }
}

function resolvePointer(root: unknown, ref: string): unknown {
  if (!ref.startsWith("#/")) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(2).split("/")) {
    const key = decodeURIComponent(raw).replaceAll("~1", "/").replaceAll("~0", "~");
    if (!isObject(node) || !(key in node)) return undefined;
    node = node[key];
  }
  return node;
}
