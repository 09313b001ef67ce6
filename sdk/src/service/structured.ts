/**
 * What a chat request's `response_format`, `tools` and `tool_choice` ask of generation (the contract is
 * /work/notes/structured-spec.md, shared with the native /v1 server): which grammar constrains the reply,
 * which tools the template renders, and whether the reply is parsed for tool calls.
 *
 * planStructured() is synchronous and pure (validation names the field: "response_format.json_schema.name",
 * "tools[1].function.parameters.properties.x.uniqueItems"); checkStructured() also has xgrammar convert the
 * grammar (no tokenizer needed), so a schema the grammar engine refuses fails the request before it is
 * accepted, with InvalidRequestError naming the keyword.
 */
import { InvalidRequestError } from "../errors/index.js";
import { GrammarError } from "../errors/text.js";
import { checkGrammarSpec } from "../grammar/check.js";
import type { GrammarSpec } from "../grammar/engine.js";
import { checkJsonSchema } from "../grammar/json-schema.js";
import type { ChatCompletionTool, ResponseFormat, ToolChoice } from "./openai.js";

/** The Hermes tool-call block (Qwen2.5 / Qwen3 templates and the fallback prompt in tool-prompt.ts). */
export const TOOL_CALL_BEGIN = "<tool_call>";
export const TOOL_CALL_END = "</tool_call>";

export interface StructuredRequest {
  response_format?: ResponseFormat | null | undefined;
  tools?: ChatCompletionTool[] | null | undefined;
  tool_choice?: ToolChoice | null | undefined;
}

export interface StructuredPlan {
  /** The grammar that constrains the reply, or null for free text. */
  grammar: GrammarSpec | null;
  /** Which request field the grammar came from (errors name it). */
  grammarParam: string | null;
  /** Tools the template renders (none with tool_choice "none"). */
  tools: ChatCompletionTool[];
  /** Names a tool call may use; the reply is parsed for `<tool_call>` blocks when non-empty. */
  toolNames: string[];
}

const NAME = /^[a-zA-Z0-9_-]{1,64}$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function bad(param: string, message: string, code = "invalid_value"): never {
  throw new InvalidRequestError(`${param}: ${message}`, param, code);
}

/** A GrammarError from the grammar layer as the request error it is: the field, and the keyword. */
export function grammarRequestError(err: GrammarError, param: string): InvalidRequestError {
  const keyword = err.keyword;
  const where = keyword !== null && !["schema", "grammar", "regex"].includes(keyword) && !err.message.includes(`"${keyword}"`) ? ` (keyword "${keyword}")` : "";
  const e = new InvalidRequestError(`${param}: ${err.message}${where}`, param, "invalid_value");
  e.cause = err;
  return e;
}

function schemaText(param: string, schema: unknown): string {
  let value = schema;
  if (typeof schema === "string") {
    try {
      value = JSON.parse(schema);
    } catch (err) {
      bad(param, `the schema is not valid JSON (${err instanceof Error ? err.message : String(err)})`);
    }
  }
  if (!isObject(value) && typeof value !== "boolean") bad(param, "the schema must be a JSON Schema object");
  try {
    checkJsonSchema(value);
  } catch (err) {
    if (err instanceof GrammarError) throw grammarRequestError(err, param);
    throw err;
  }
  // Key order is kept: it is the order the grammar generates properties in.
  return JSON.stringify(value);
}

function responseFormatGrammar(rf: unknown): { grammar: GrammarSpec | null; param: string } {
  const P = "response_format";
  if (!isObject(rf)) bad(P, "must be an object with a type", "invalid_type");
  const type = rf["type"];
  const only = (keys: string[]): void => {
    for (const key of Object.keys(rf)) if (!keys.includes(key)) bad(`${P}.${key}`, `unknown field for type ${JSON.stringify(type)}`, "unknown_parameter");
  };
  switch (type) {
    case "text":
      only(["type"]);
      return { grammar: null, param: P };
    case "json_object": {
      only(["type", "schema"]);
      // WebLLM's form: a schema under json_object.
      if (rf["schema"] === undefined || rf["schema"] === null) return { grammar: { type: "json" }, param: P };
      return { grammar: { type: "json_schema", schema: schemaText(`${P}.schema`, rf["schema"]) }, param: `${P}.schema` };
    }
    case "json_schema": {
      only(["type", "json_schema"]);
      const js = rf["json_schema"];
      if (!isObject(js))
        bad(`${P}.json_schema`, "must be an object {name, schema?, strict?, description?}", js === undefined ? "missing_parameter" : "invalid_type");
      for (const key of Object.keys(js)) {
        if (!["name", "schema", "strict", "description"].includes(key)) bad(`${P}.json_schema.${key}`, "unknown field", "unknown_parameter");
      }
      const name = js["name"];
      if (typeof name !== "string" || !NAME.test(name))
        bad(`${P}.json_schema.name`, "must be 1-64 characters of a-z, A-Z, 0-9, _ and -", name === undefined ? "missing_parameter" : "invalid_value");
      if (js["strict"] !== undefined && js["strict"] !== null && typeof js["strict"] !== "boolean")
        bad(`${P}.json_schema.strict`, "must be a boolean", "invalid_type");
      if (js["description"] !== undefined && typeof js["description"] !== "string") bad(`${P}.json_schema.description`, "must be a string", "invalid_type");
      if (js["schema"] === undefined) return { grammar: { type: "json" }, param: P };
      if (!isObject(js["schema"]) && typeof js["schema"] !== "boolean") bad(`${P}.json_schema.schema`, "must be a JSON Schema object", "invalid_type");
      return { grammar: { type: "json_schema", schema: schemaText(`${P}.json_schema.schema`, js["schema"]) }, param: `${P}.json_schema.schema` };
    }
    case "grammar": {
      only(["type", "grammar"]);
      const g = rf["grammar"];
      if (typeof g !== "string" || g.trim() === "") bad(`${P}.grammar`, "must be a non-empty EBNF grammar string (xgrammar syntax, root rule `root`)");
      return { grammar: { type: "ebnf", grammar: g }, param: `${P}.grammar` };
    }
    case "regex": {
      only(["type", "regex"]);
      const r = rf["regex"];
      if (typeof r !== "string" || r === "") bad(`${P}.regex`, "must be a non-empty regular expression");
      return { grammar: { type: "regex", pattern: r }, param: `${P}.regex` };
    }
    default:
      return bad(
        `${P}.type`,
        `${JSON.stringify(type)} is not a response format; use "text", "json_object", "json_schema", "grammar" (EBNF) or "regex"`,
        type === undefined ? "missing_parameter" : "invalid_value",
      );
  }
}

function checkTools(tools: unknown): { tools: ChatCompletionTool[]; parameters: string[] } {
  if (!Array.isArray(tools)) bad("tools", 'must be an array of {type: "function", function: {name, description?, parameters?}}', "invalid_type");
  if (tools.length === 0) bad("tools", "must list at least one tool (omit tools for none)");
  const names = new Set<string>();
  const parameters: string[] = [];
  tools.forEach((tool: unknown, i) => {
    const at = `tools[${i}]`;
    if (!isObject(tool)) bad(at, "must be an object", "invalid_type");
    for (const key of Object.keys(tool)) if (key !== "type" && key !== "function") bad(`${at}.${key}`, "unknown field", "unknown_parameter");
    if (tool["type"] !== "function") bad(`${at}.type`, 'only "function" tools are supported');
    const fn = tool["function"];
    if (!isObject(fn))
      bad(`${at}.function`, "must be an object {name, description?, parameters?, strict?}", fn === undefined ? "missing_parameter" : "invalid_type");
    for (const key of Object.keys(fn)) {
      if (!["name", "description", "parameters", "strict"].includes(key)) bad(`${at}.function.${key}`, "unknown field", "unknown_parameter");
    }
    const name = fn["name"];
    if (typeof name !== "string" || !NAME.test(name))
      bad(`${at}.function.name`, "must be 1-64 characters of a-z, A-Z, 0-9, _ and -", name === undefined ? "missing_parameter" : "invalid_value");
    if (names.has(name)) bad(`${at}.function.name`, `${JSON.stringify(name)} names two tools`);
    names.add(name);
    if (fn["description"] !== undefined && typeof fn["description"] !== "string") bad(`${at}.function.description`, "must be a string", "invalid_type");
    const params = fn["parameters"];
    if (params === undefined) {
      parameters.push('{"type": "object", "properties": {}}');
    } else {
      if (!isObject(params)) bad(`${at}.function.parameters`, "must be a JSON Schema object", "invalid_type");
      if (params["type"] !== undefined && params["type"] !== "object")
        bad(`${at}.function.parameters.type`, 'the arguments are an object: type must be "object"');
      parameters.push(schemaText(`${at}.function.parameters`, params));
    }
  });
  return { tools: tools as ChatCompletionTool[], parameters };
}

/** The grammar of one Hermes tool call to any of `names` (parallel arrays `names`/`parameters`). */
function toolCallGrammar(names: string[], parameters: string[]): GrammarSpec {
  const call = (name: string, params: string): string =>
    `{"type": "object", "properties": {"name": {"const": ${JSON.stringify(name)}}, "arguments": ${params}}, "required": ["name", "arguments"]}`;
  const schema =
    names.length === 1 ? call(names[0] as string, parameters[0] as string) : `{"anyOf": [${names.map((n, i) => call(n, parameters[i] as string)).join(", ")}]}`;
  return { type: "tagged_json_schema", begin: `${TOOL_CALL_BEGIN}\n`, schema, end: `\n${TOOL_CALL_END}` };
}

/** Validate and plan; throws {@link InvalidRequestError} naming the field (and the schema keyword). */
export function planStructured(req: StructuredRequest): StructuredPlan {
  const plan: StructuredPlan = { grammar: null, grammarParam: null, tools: [], toolNames: [] };
  if (req.response_format !== undefined && req.response_format !== null) {
    const rf = responseFormatGrammar(req.response_format);
    plan.grammar = rf.grammar;
    plan.grammarParam = rf.grammar === null ? null : rf.param;
  }
  const choice = req.tool_choice ?? null;
  const hasTools = req.tools !== undefined && req.tools !== null;
  if (!hasTools) {
    if (choice !== null && choice !== "none" && choice !== "auto") bad("tool_choice", "needs tools");
    return plan;
  }
  const { tools, parameters } = checkTools(req.tools);
  const names = tools.map((t) => t.function.name);
  if (choice === "none") return plan;
  plan.tools = tools;
  plan.toolNames = names;
  if (choice === null || choice === "auto") return plan;
  let pick: number[];
  if (choice === "required") {
    pick = names.map((_, i) => i);
  } else if (isObject(choice) && choice.type === "function" && isObject(choice.function) && typeof choice.function.name === "string") {
    const i = names.indexOf(choice.function.name);
    if (i < 0) bad("tool_choice.function.name", `${JSON.stringify(choice.function.name)} is not one of the tools (${names.join(", ")})`);
    pick = [i];
  } else {
    return bad("tool_choice", 'must be "none", "auto", "required" or {type: "function", function: {name}}');
  }
  if (plan.grammar !== null) bad("tool_choice", "a forced tool call and a response_format cannot both constrain the reply; drop one");
  plan.grammar = toolCallGrammar(
    pick.map((i) => names[i] as string),
    pick.map((i) => parameters[i] as string),
  );
  plan.grammarParam = "tools";
  plan.toolNames = pick.map((i) => names[i] as string);
  return plan;
}

/** planStructured, then xgrammar's own check of the grammar (before the request is accepted). */
export async function checkStructured(req: StructuredRequest): Promise<StructuredPlan> {
  const plan = planStructured(req);
  if (plan.grammar !== null) {
    try {
      await checkGrammarSpec(plan.grammar);
    } catch (err) {
      if (err instanceof GrammarError) throw grammarRequestError(err, plan.grammarParam ?? "response_format");
      throw err;
    }
  }
  return plan;
}
