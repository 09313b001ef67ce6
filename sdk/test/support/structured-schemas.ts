/**
 * JSON Schemas of varied shape for the structured-output tests (issue 16): nested objects, arrays with
 * min/maxItems, enums, numbers with ranges (integers: xgrammar 0.1.27's ranges on other numbers are refused,
 * grammar/json-schema.ts says why), required and optional fields, anyOf/oneOf, string patterns and
 * formats, $ref, tuples. Strings carry a maxLength (or a pattern / enum / format): a random model writes
 * string characters nearly uniformly and would rarely close an unbounded string within the token budget
 * (the trained model does: structured-output.test.ts checks unbounded strings with it).
 */
export interface NamedSchema {
  name: string;
  schema: Record<string, unknown>;
}

const str = (maxLength = 8): Record<string, unknown> => ({ type: "string", maxLength });
const obj = (properties: Record<string, unknown>, required: string[] = Object.keys(properties)): Record<string, unknown> => ({
  type: "object",
  properties,
  required,
});

export const SCHEMAS: NamedSchema[] = [
  { name: "one-string", schema: obj({ name: str(12) }) },
  { name: "int-range", schema: obj({ age: { type: "integer", minimum: 0, maximum: 120 } }) },
  { name: "score", schema: obj({ p: { type: "integer", minimum: 0, maximum: 100 } }) },
  { name: "boolean", schema: obj({ ok: { type: "boolean" } }) },
  { name: "enum-color", schema: obj({ color: { enum: ["red", "green", "blue"] } }) },
  { name: "nested-address", schema: obj({ name: str(10), address: obj({ street: str(12), zip: { type: "string", pattern: "^[0-9]{5}$" } }) }) },
  { name: "int-array-1-4", schema: obj({ xs: { type: "array", items: { type: "integer", minimum: 0, maximum: 99 }, minItems: 1, maxItems: 4 } }) },
  { name: "enum-pair", schema: obj({ pair: { type: "array", items: { enum: ["a", "b", "c"] }, minItems: 2, maxItems: 2 } }) },
  { name: "optional-fields", schema: obj({ title: str(10), subtitle: str(10), note: str(6) }, ["title"]) },
  { name: "anyof-scalar", schema: obj({ v: { anyOf: [{ type: "integer", minimum: 0, maximum: 9 }, str(5)] } }) },
  {
    name: "anyof-objects",
    schema: obj({
      shape: {
        anyOf: [
          obj({ kind: { const: "circle" }, r: { type: "integer", minimum: 1, maximum: 9 } }),
          obj({ kind: { const: "square" }, side: { type: "integer", minimum: 1, maximum: 9 } }),
        ],
      },
    }),
  },
  { name: "pattern-phone", schema: obj({ phone: { type: "string", pattern: "^[0-9]{3}-[0-9]{4}$" } }) },
  { name: "format-date", schema: obj({ day: { type: "string", format: "date" } }) },
  { name: "email-pattern", schema: obj({ email: { type: "string", pattern: "^[a-z]{1,6}@[a-z]{1,6}\\.(com|org)$" } }) },
  { name: "const", schema: obj({ version: { const: 2 }, kind: { const: "invoice" } }) },
  { name: "nullable", schema: obj({ middle: { type: ["string", "null"], maxLength: 6 } }) },
  {
    name: "array-of-objects",
    schema: obj({ people: { type: "array", items: obj({ name: str(6), age: { type: "integer", minimum: 0, maximum: 99 } }), maxItems: 3 } }),
  },
  { name: "deep-3", schema: obj({ a: obj({ b: obj({ c: { type: "integer", minimum: -5, maximum: 5 } }) }) }) },
  {
    name: "defs-ref",
    schema: {
      $defs: { money: obj({ amount: { type: "integer", minimum: 0, maximum: 1000 }, currency: { enum: ["EUR", "USD"] } }) },
      type: "object",
      properties: { total: { $ref: "#/$defs/money" }, tax: { $ref: "#/$defs/money" } },
      required: ["total", "tax"],
    },
  },
  { name: "tuple", schema: obj({ t: { type: "array", prefixItems: [{ type: "integer", minimum: 0, maximum: 9 }, { enum: ["x", "y"] }], items: false } }) },
  { name: "enum-float", schema: obj({ x: { enum: [0.5, 1.5, 2.25] } }) },
  { name: "percent", schema: obj({ n: { type: "integer", minimum: 0, maximum: 100 } }) },
  { name: "length-range", schema: obj({ code: { type: "string", minLength: 3, maxLength: 5 } }) },
  { name: "no-additional", schema: { ...obj({ id: { type: "integer", minimum: 1, maximum: 999 } }), additionalProperties: false } },
  { name: "top-level-array", schema: { type: "array", items: { type: "integer", minimum: 0, maximum: 9 }, minItems: 1, maxItems: 5 } },
  {
    name: "oneof",
    schema: obj({
      id: {
        oneOf: [
          { type: "integer", minimum: 100, maximum: 199 },
          { type: "string", pattern: "^id-[a-z]{2}$" },
        ],
      },
    }),
  },
  { name: "bool-null", schema: obj({ flag: { type: ["boolean", "null"] } }) },
  { name: "negative-range", schema: obj({ t: { type: "integer", minimum: -50, maximum: -10 } }) },
  { name: "enum-mixed", schema: obj({ v: { enum: [1, "two", null, true] } }) },
  { name: "format-uuid", schema: obj({ id: { type: "string", format: "uuid" } }) },
  { name: "time-pattern", schema: obj({ at: { type: "string", pattern: "^[0-2][0-9]:[0-5][0-9]$" } }) },
  {
    name: "six-fields",
    schema: obj({
      title: str(10),
      year: { type: "integer", minimum: 1900, maximum: 2100 },
      rating: { type: "integer", minimum: 0, maximum: 5 },
      genre: { enum: ["drama", "comedy", "documentary"] },
      seen: { type: "boolean" },
      tags: { type: "array", items: str(5), maxItems: 2 },
    }),
  },
  {
    name: "matrix",
    schema: obj({
      m: { type: "array", items: { type: "array", items: { type: "integer", minimum: 0, maximum: 9 }, minItems: 2, maxItems: 2 }, minItems: 2, maxItems: 2 },
    }),
  },
  {
    name: "invoice",
    schema: obj({
      number: { type: "string", pattern: "^INV-[0-9]{4}$" },
      date: { type: "string", format: "date" },
      lines: { type: "array", items: obj({ item: str(8), qty: { type: "integer", minimum: 1, maximum: 9 } }), minItems: 1, maxItems: 2 },
    }),
  },
  { name: "person-optional-nested", schema: obj({ name: str(8), contact: obj({ email: str(10), phone: str(10) }, []) }, ["name"]) },
  { name: "classification", schema: obj({ label: { enum: ["spam", "ham"] }, confidence: { type: "integer", minimum: 0, maximum: 100 } }) },
  { name: "string-array-bounded", schema: obj({ words: { type: "array", items: str(6), minItems: 2, maxItems: 3 } }) },
  { name: "empty-object-allowed", schema: obj({ meta: { type: "object", properties: {} } }) },
  { name: "int-4-digits", schema: obj({ n: { type: "integer", minimum: 1000, maximum: 9999 } }) },
  { name: "string-long", schema: obj({ s: { type: "string", maxLength: 40 } }) },
  { name: "rgb", schema: obj({ rgb: { type: "array", items: { type: "integer", minimum: 0, maximum: 255 }, minItems: 3, maxItems: 3 } }) },
  { name: "hex-color", schema: obj({ hex: { type: "string", pattern: "^#[0-9a-f]{6}$" } }) },
  {
    name: "event",
    schema: obj({
      title: str(10),
      start: { type: "string", format: "date" },
      attendees: { type: "array", items: str(6), maxItems: 2 },
      online: { type: "boolean" },
    }),
  },
  { name: "anyof-null-object", schema: obj({ owner: { anyOf: [{ type: "null" }, obj({ id: { type: "integer", minimum: 0, maximum: 9 } })] } }) },
  { name: "enum-int", schema: obj({ level: { enum: [1, 2, 3, 5, 8] } }) },
  { name: "min-items-3", schema: obj({ ids: { type: "array", items: { type: "integer", minimum: 0, maximum: 9 }, minItems: 3, maxItems: 4 } }) },
  {
    name: "two-level-arrays-of-objects",
    schema: obj({ groups: { type: "array", items: obj({ members: { type: "array", items: str(4), maxItems: 2 } }), maxItems: 2 } }),
  },
  { name: "slug-pattern", schema: obj({ slug: { type: "string", pattern: "^[a-z]{2,6}(-[a-z]{2,6})?$" } }) },
  { name: "signed-steps", schema: obj({ steps: { type: "integer", minimum: -3, maximum: 3 }, dir: { enum: ["up", "down"] } }) },
  {
    name: "title-description-annotations",
    schema: { title: "Book", description: "a book", ...obj({ isbn: { type: "string", pattern: "^[0-9]{10}$", description: "ISBN-10" } }) },
  },
  { name: "optional-only", schema: obj({ a: { type: "integer", minimum: 0, maximum: 9 }, b: { type: "boolean" } }, []) },
  {
    name: "definitions-ref",
    schema: {
      definitions: { pt: obj({ x: { type: "integer", minimum: 0, maximum: 9 }, y: { type: "integer", minimum: 0, maximum: 9 } }) },
      ...obj({ from: { $ref: "#/definitions/pt" }, to: { $ref: "#/definitions/pt" } }),
    },
  },
  { name: "top-level-enum", schema: { enum: ["yes", "no", "maybe"] } },
];

/** Schemas the engine must refuse, with the keyword the error must name. */
export const BAD_SCHEMAS: { name: string; schema: unknown; keyword: string }[] = [
  { name: "unknown type", schema: obj({ a: { type: "strin" } }), keyword: "type" },
  { name: "uniqueItems", schema: obj({ a: { type: "array", items: { type: "integer" }, uniqueItems: true } }), keyword: "uniqueItems" },
  // Parsed from text: a literal `then` key would make the object a thenable (biome noThenProperty).
  { name: "if/then", schema: JSON.parse('{"type": "object", "if": {"properties": {"a": {"const": 1}}}, "then": {"required": ["b"]}}'), keyword: "if" },
  { name: "not", schema: { not: { type: "string" } }, keyword: "not" },
  { name: "unknown keyword", schema: obj({ a: { type: "string", maxLenght: 3 } }), keyword: "maxLenght" },
  { name: "min > max", schema: obj({ a: { type: "integer", minimum: 5, maximum: 1 } }), keyword: "minimum" },
  { name: "bad pattern", schema: obj({ a: { type: "string", pattern: "([a-z" } }), keyword: "pattern" },
  { name: "dangling $ref", schema: obj({ a: { $ref: "#/$defs/missing" } }), keyword: "$ref" },
  { name: "required not a list", schema: { type: "object", properties: {}, required: "a" }, keyword: "required" },
  { name: "multipleOf (not enforced)", schema: obj({ n: { type: "integer", multipleOf: 5 } }), keyword: "multipleOf" },
  { name: "number minimum 0.5 (xgrammar writes 0275)", schema: obj({ p: { type: "number", minimum: 0.5 } }), keyword: "minimum" },
  { name: "number maximum 1 (not enforced exactly)", schema: obj({ p: { type: "number", maximum: 1 } }), keyword: "maximum" },
  { name: "number exclusiveMinimum", schema: obj({ p: { type: "number", exclusiveMinimum: 0 } }), keyword: "exclusiveMinimum" },
  { name: "format with maxLength", schema: obj({ e: { type: "string", format: "email", maxLength: 9 } }), keyword: "maxLength" },
  {
    name: "minProperties unreachable (xgrammar's own check)",
    schema: { type: "object", properties: {}, additionalProperties: false, minProperties: 1 },
    keyword: "minProperties",
  },
];
