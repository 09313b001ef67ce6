/**
 * Runtime validation of what crosses into the engine: OpenAI-shaped requests (chat and text completions)
 * and the Worker protocol's messages. Schemas are valibot (https://valibot.dev: small, tree-shakeable,
 * maintained). Every object schema is strict: an unknown field is an error, not silently dropped (a typo
 * such as "max_token" would otherwise change the result without a word).
 *
 * valibot is imported on first use, not statically, for the reason given in tokenize/tokenizers-js.ts:
 * raw dist/ modules in a browser cannot resolve npm specifiers, and a static import would stop all of
 * `@hearth/sdk` from loading there. The prebuilt worker bundle (dist/browser/engine-worker.js) and any
 * bundler resolve it.
 */
import type * as V from "valibot";
import { InvalidMessageError, InvalidRequestError } from "../errors/index.js";
import type { ChatCompletionRequest, ChatCompletionTool, CompletionRequest, EmbeddingCreateParams, ResponseFormat, ToolChoice } from "./openai.js";
import { checkStructured } from "./structured.js";

const isPlainObject = (x: unknown): boolean => typeof x === "object" && x !== null && !Array.isArray(x);

type Valibot = typeof V;

let loading: Promise<Valibot> | undefined;

/** Import valibot once (a failed import is retried next time). */
export function importValibot(): Promise<Valibot> {
  loading ??= import("valibot").catch((err: unknown) => {
    loading = undefined;
    throw new Error(
      `cannot import valibot (${err instanceof Error ? err.message : String(err)}); in a browser, load the engine ` +
        "through a bundler or use the prebuilt worker bundle dist/browser/engine-worker.js",
      { cause: err },
    );
  });
  return loading;
}

/** Most inputs in one embeddings request (OpenAI's own limit). */
export const MAX_EMBEDDING_INPUTS = 2048;

/** OpenAI request fields this engine knows but does not implement: refused with code "unsupported_parameter". */
const UNSUPPORTED: Record<string, string> = {
  functions: "function calling",
  function_call: "function calling",
  audio: "audio output",
  modalities: "output modalities",
  prediction: "predicted outputs",
  store: "stored completions",
  metadata: "stored completions",
  service_tier: "service tiers",
  reasoning_effort: "reasoning effort",
  web_search_options: "web search",
  suffix: "suffix (insertion)",
  best_of: "best_of",
};

function buildSchemas(v: Valibot) {
  const finite = v.pipe(v.number(), v.finite());
  const int = v.pipe(v.number(), v.safeInteger());
  const range = (lo: number, hi: number) => v.pipe(finite, v.minValue(lo), v.maxValue(hi));
  const tokenId = v.pipe(int, v.minValue(0), v.maxValue(0x7fffffff));
  const nonEmpty = v.pipe(v.string(), v.minLength(1, "must be a non-empty string"));
  const opt = <S extends V.GenericSchema>(s: S) => v.optional(v.nullable(s));

  const toolCall = v.strictObject({
    id: v.string(),
    type: v.literal("function"),
    function: v.strictObject({ name: nonEmpty, arguments: v.string("must be the arguments as JSON text") }),
  });
  const message = v.strictObject({
    role: v.picklist(["system", "user", "assistant", "tool"]),
    // null only beside tool_calls (checked in validateChatRequest).
    content: v.nullable(v.string("must be a string (content parts are not supported)")),
    name: v.exactOptional(v.string()),
    tool_call_id: v.exactOptional(v.string()),
    tool_calls: v.exactOptional(v.array(toolCall)),
  });

  const base = {
    model: opt(v.string()),
    stream: opt(v.boolean()),
    stream_options: opt(v.strictObject({ include_usage: opt(v.boolean()) })),
    max_tokens: opt(v.pipe(int, v.minValue(1))),
    temperature: opt(range(0, 2)),
    top_p: opt(v.pipe(finite, v.gtValue(0), v.maxValue(1))),
    top_k: opt(v.pipe(int, v.minValue(-1))),
    presence_penalty: opt(range(-2, 2)),
    frequency_penalty: opt(range(-2, 2)),
    repetition_penalty: opt(v.pipe(finite, v.gtValue(0))),
    logit_bias: opt(v.record(v.pipe(v.string(), v.regex(/^\d+$/, "keys must be token ids")), range(-100, 100))),
    seed: opt(int),
    stop: opt(v.union([nonEmpty, v.array(nonEmpty)])),
    stop_token_ids: opt(v.array(tokenId)),
    ignore_eos: opt(v.boolean()),
    stop_on_repeat: opt(v.boolean()),
    n: opt(v.literal(1, "only n = 1 is supported")),
    user: opt(v.string()),
    return_token_ids: opt(v.boolean()),
    context_overflow: opt(v.picklist(["error", "truncate"])),
  };

  const chat = v.strictObject({
    ...base,
    messages: v.pipe(v.array(message), v.minLength(1, "must have at least one message")),
    max_completion_tokens: opt(v.pipe(int, v.minValue(1))),
    logprobs: opt(v.boolean()),
    top_logprobs: opt(v.pipe(int, v.minValue(0), v.maxValue(20))),
    // Checked field by field in structured.ts (which names the schema keyword at fault).
    response_format: opt(v.custom<ResponseFormat>(isPlainObject, "must be an object with a type")),
    tools: opt(v.custom<ChatCompletionTool[]>(Array.isArray, "must be an array of tools")),
    tool_choice: opt(
      v.custom<ToolChoice>((x) => typeof x === "string" || isPlainObject(x), 'must be "none", "auto", "required" or {type: "function", function: {name}}'),
    ),
    parallel_tool_calls: opt(v.boolean()),
    chat_template_kwargs: opt(v.custom<Record<string, unknown>>(isPlainObject, "must be an object of template variables")),
  });

  const completion = v.strictObject({
    ...base,
    prompt: v.union([nonEmpty, v.pipe(v.array(tokenId), v.minLength(1))]),
    logprobs: opt(v.pipe(int, v.minValue(0), v.maxValue(5))),
    echo: opt(v.literal(false, "echo is not supported")),
  });

  // OpenAI caps a request at 2048 inputs; the same bound keeps one message from queueing unbounded GPU work.
  const embeddings = v.strictObject({
    input: v.union(
      [
        v.string(),
        v.pipe(
          v.array(v.string("must be a string (token-id inputs are not supported)")),
          v.minLength(1, "must have at least one input"),
          v.maxLength(MAX_EMBEDDING_INPUTS, `at most ${MAX_EMBEDDING_INPUTS} inputs per request`),
        ),
      ],
      "must be a string or an array of strings",
    ),
    model: opt(v.string()),
    encoding_format: opt(v.picklist(["float", "base64"])),
    dimensions: opt(v.pipe(int, v.minValue(1))),
    user: opt(v.string()),
    truncation: opt(v.picklist(["truncate", "error"])),
  });

  // -- Worker protocol (client -> worker) -------------------------------------------------------
  const id = v.pipe(int, v.minValue(1));
  const json = v.unknown(); // structured-clone data; its contents are validated where used
  const loadOptions = v.strictObject({
    variant: v.optional(v.string()),
    target: v.optional(v.string()),
    maxTotalSeqLen: v.optional(v.pipe(int, v.minValue(1))),
    prefillChunkSize: v.optional(v.pipe(int, v.minValue(1))),
    contextOverflow: v.optional(v.picklist(["error", "truncate"])),
    kvReuse: v.optional(v.boolean()),
    modelId: v.optional(v.string()),
    packageOptions: v.optional(v.record(v.string(), json)),
  });
  const embedderOptions = v.strictObject({
    variant: v.optional(v.string()),
    target: v.optional(v.string()),
    truncation: v.optional(v.picklist(["truncate", "error"])),
    modelId: v.optional(v.string()),
    packageOptions: v.optional(v.record(v.string(), json)),
  });
  const clientMessage = v.variant("type", [
    v.strictObject({ type: v.literal("load"), id, model: nonEmpty, options: v.optional(loadOptions) }),
    v.strictObject({ type: v.literal("chat"), id, request: json }),
    v.strictObject({ type: v.literal("completion"), id, request: json }),
    v.strictObject({ type: v.literal("load-embedder"), id, model: nonEmpty, options: v.optional(embedderOptions) }),
    v.strictObject({ type: v.literal("embeddings"), id, request: json }),
    v.strictObject({ type: v.literal("abort"), id, target: id }),
    v.strictObject({ type: v.literal("interrupt"), id }),
    v.strictObject({ type: v.literal("reset"), id }),
    v.strictObject({ type: v.literal("stats"), id }),
    v.strictObject({ type: v.literal("unload"), id }),
    v.strictObject({ type: v.literal("hello"), id }),
  ]);
  return { chat, completion, embeddings, loadOptions, embedderOptions, clientMessage };
}

type Schemas = ReturnType<typeof buildSchemas>;

/** A validated client -> worker message. */
export type ClientMessage = V.InferOutput<Schemas["clientMessage"]>;
/** Embedder load options as they travel over the wire (validated). */
export type WireEmbedderOptions = V.InferOutput<Schemas["embedderOptions"]>;
/** Load options as they travel over the wire (validated). */
export type WireLoadOptions = V.InferOutput<Schemas["loadOptions"]>;

// Compile-time: what the schemas let through is the documented request type (so the casts below hold).
type Assignable<From, To> = [From] extends [To] ? true : false;
const schemaContract: [
  Assignable<V.InferOutput<Schemas["chat"]>, ChatCompletionRequest>,
  Assignable<V.InferOutput<Schemas["completion"]>, CompletionRequest>,
  Assignable<V.InferOutput<Schemas["embeddings"]>, EmbeddingCreateParams>,
] = [true, true, true];
void schemaContract;

let schemas: Schemas | undefined;

async function getSchemas(): Promise<Schemas> {
  schemas ??= buildSchemas(await importValibot());
  return schemas;
}

/** "messages.0.role" style path of an issue, as "messages[0].role". */
function issuePath(issue: V.BaseIssue<unknown>): string | null {
  if (issue.path === undefined) return null;
  let out = "";
  for (const item of issue.path) {
    const key = (item as { key?: unknown }).key;
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out === "" ? null : out;
}

// Without abortEarly, valibot reports a union whose value had the right type (an array of ids with one bad
// id) by the alternative's own issue, with the full path ("prompt[1]"), which is the useful one.
function firstIssue(issues: readonly V.BaseIssue<unknown>[]): V.BaseIssue<unknown> {
  return issues[0] as V.BaseIssue<unknown>;
}

/** A description of an issue: unknown field, missing field, or valibot's message. */
function describeIssue(issue: V.BaseIssue<unknown>, path: string | null): { text: string; code: string } {
  if (issue.type === "strict_object" && issue.expected === "never") {
    return { text: `unknown field ${JSON.stringify(path)}`, code: "unknown_parameter" };
  }
  if (issue.kind === "schema" && issue.received === "undefined") {
    return { text: `missing required field ${JSON.stringify(path)}`, code: "missing_parameter" };
  }
  return { text: `${path ?? "value"}: ${issue.message}`, code: issue.kind === "schema" ? "invalid_type" : "invalid_value" };
}

function requestError(issues: readonly V.BaseIssue<unknown>[]): InvalidRequestError {
  const issue = firstIssue(issues);
  const param = issuePath(issue);
  const { text, code } = describeIssue(issue, param);
  return new InvalidRequestError(text, param, code);
}

function checkObject(request: unknown): Record<string, unknown> {
  if (typeof request !== "object" || request === null || Array.isArray(request)) {
    throw new InvalidRequestError(
      `the request must be an object, got ${request === null ? "null" : Array.isArray(request) ? "an array" : typeof request}`,
      null,
      "invalid_type",
    );
  }
  const rec = request as Record<string, unknown>;
  for (const key of Object.keys(rec)) {
    const what = UNSUPPORTED[key];
    if (what !== undefined && rec[key] !== undefined && rec[key] !== null) {
      throw new InvalidRequestError(`${key}: ${what} is not supported by this engine`, key, "unsupported_parameter");
    }
  }
  return rec;
}

function commonChecks(r: { stream?: boolean | null | undefined; stream_options?: unknown }): void {
  if (r.stream_options !== undefined && r.stream_options !== null && r.stream !== true) {
    throw new InvalidRequestError("stream_options is only allowed when stream is true", "stream_options");
  }
}

/** Validate a chat completions request; throws {@link InvalidRequestError} naming the first bad field. */
// Not chat_template_kwargs: what a request sets through its own fields (ChatTemplate.render), and
// transformers' apply_chat_template parameters, which `hearth serve` could not pass on: both servers refuse the same.
const RESERVED_TEMPLATE_VARIABLES: ReadonlySet<string> = new Set([
  "messages",
  "conversation",
  "tools",
  "documents",
  "chat_template",
  "add_generation_prompt",
  "continue_final_message",
  "tokenize",
  "sanitize_control_tokens",
  "padding",
  "truncation",
  "max_length",
  "return_tensors",
  "return_dict",
  "return_assistant_tokens_mask",
  "tokenizer_kwargs",
]);

export async function validateChatRequest(request: unknown): Promise<ChatCompletionRequest> {
  const v = await importValibot();
  const s = await getSchemas();
  const result = v.safeParse(s.chat, checkObject(request));
  if (!result.success) throw requestError(result.issues);
  const r = result.output as ChatCompletionRequest;
  commonChecks(r);
  if (r.max_tokens != null && r.max_completion_tokens != null) {
    throw new InvalidRequestError("give max_tokens or max_completion_tokens, not both", "max_completion_tokens");
  }
  if (r.top_logprobs != null && r.top_logprobs > 0 && r.logprobs !== true) {
    throw new InvalidRequestError("top_logprobs needs logprobs: true", "top_logprobs");
  }
  for (const key of Object.keys(r.chat_template_kwargs ?? {})) {
    if (RESERVED_TEMPLATE_VARIABLES.has(key)) {
      throw new InvalidRequestError(
        `chat_template_kwargs.${key}: not a template variable a request may set (a request field or an apply_chat_template option); pass it as the request's own field where there is one`,
        `chat_template_kwargs.${key}`,
      );
    }
  }
  r.messages.forEach((m, i) => {
    if (m.tool_calls !== undefined && m.role !== "assistant") {
      throw new InvalidRequestError(`messages[${i}].tool_calls: only assistant messages carry tool calls`, `messages[${i}].tool_calls`);
    }
    if (m.content === null && (m.tool_calls === undefined || m.tool_calls.length === 0)) {
      throw new InvalidRequestError(`messages[${i}].content: must be a string (null only beside tool_calls)`, `messages[${i}].content`, "invalid_type");
    }
  });
  // response_format / tools / tool_choice, and the grammar they make (xgrammar checks it, no tokenizer needed).
  await checkStructured(r);
  return r;
}

/** Validate a (legacy) completions request. */
export async function validateCompletionRequest(request: unknown): Promise<CompletionRequest> {
  const v = await importValibot();
  const s = await getSchemas();
  const result = v.safeParse(s.completion, checkObject(request));
  if (!result.success) throw requestError(result.issues);
  const r = result.output as CompletionRequest;
  commonChecks(r);
  return r;
}

/**
 * Validate an embeddings request; throws {@link InvalidRequestError} naming the first bad field.
 * `dim`, when known, is the loaded encoder's vector length (`dimensions` must equal it).
 */
export async function validateEmbeddingRequest(request: unknown, dim?: number): Promise<EmbeddingCreateParams> {
  const v = await importValibot();
  const s = await getSchemas();
  const rec = checkObject(request);
  // Token-id input (number[] or number[][]) is valid OpenAI; name it rather than report a type mismatch.
  const input = rec["input"];
  if (Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === "number" || Array.isArray(x))) {
    throw new InvalidRequestError(
      "input: token-id arrays are not supported; pass the text (a string or an array of strings)",
      "input",
      "unsupported_parameter",
    );
  }
  const result = v.safeParse(s.embeddings, rec);
  if (!result.success) throw requestError(result.issues);
  const r = result.output as EmbeddingCreateParams;
  if (dim !== undefined && r.dimensions != null && r.dimensions !== dim) {
    throw new InvalidRequestError(
      `dimensions: this encoder makes ${dim}-dimensional vectors and does not shorten them; omit dimensions or pass ${dim}`,
      "dimensions",
      "unsupported_parameter",
    );
  }
  return r;
}

/** Validate a client -> worker protocol message; throws {@link InvalidMessageError}. */
export async function validateClientMessage(data: unknown): Promise<ClientMessage> {
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    const got = data === null ? "null" : Array.isArray(data) ? "an array" : typeof data;
    throw new InvalidMessageError(`malformed engine message (a message must be an object, got ${got})`, null);
  }
  const v = await importValibot();
  const s = await getSchemas();
  const result = v.safeParse(s.clientMessage, data);
  if (!result.success) {
    const issue = firstIssue(result.issues);
    const path = issuePath(issue);
    throw new InvalidMessageError(`malformed engine message (${describeIssue(issue, path).text})`, path);
  }
  return result.output;
}
