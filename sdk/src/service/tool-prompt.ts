/**
 * Request messages -> what the chat template renders, for conversations with tools.
 *
 * Templates that know tools (Qwen2.5, Qwen3, ... : their source mentions `tools`) get `tools` and the
 * assistant `tool_calls` as transformers passes them (arguments as an object, the HF convention that
 * those templates `tojson`). A template that does not (SmolLM2's, the tiny test models') would drop them
 * silently, so Hearth writes Qwen2.5's Hermes tool prompt into the system message instead, and earlier
 * calls and results into the text as `<tool_call>` / `<tool_response>` blocks, so the model still sees them.
 */
import type { ChatMessage } from "../tokenize/chat-template.js";
import type { ChatCompletionMessageParam, ChatCompletionMessageToolCall, ChatCompletionTool } from "./openai.js";
import { TOOL_CALL_BEGIN, TOOL_CALL_END } from "./structured.js";

export interface TemplateInput {
  messages: ChatMessage[];
  /** For templates that render tools themselves (else undefined). */
  tools?: Record<string, unknown>[];
}

/** Whether a template renders tools / tool calls itself. */
export function templateKnowsTools(source: string): { tools: boolean; toolCalls: boolean } {
  return { tools: /\btools\b/.test(source), toolCalls: /\btool_calls\b/.test(source) };
}

function argumentsObject(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function callBlock(call: ChatCompletionMessageToolCall): string {
  return `${TOOL_CALL_BEGIN}\n${JSON.stringify({ name: call.function.name, arguments: argumentsObject(call.function.arguments) })}\n${TOOL_CALL_END}`;
}

/** Qwen2.5's tool instructions (its chat template's text), for templates without their own. */
export function hermesToolPrompt(tools: readonly ChatCompletionTool[]): string {
  return (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>" +
    tools.map((t) => `\n${JSON.stringify(t)}`).join("") +
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within " +
    `${TOOL_CALL_BEGIN}${TOOL_CALL_END} XML tags:\n${TOOL_CALL_BEGIN}\n{"name": <function-name>, "arguments": <args-json-object>}\n${TOOL_CALL_END}`
  );
}

/**
 * The template's messages (and tools) for a validated request's messages. `freeCall`: the model writes
 * any call itself (tool_choice "auto"); only then does a template without tools get the Hermes prompt.
 * A forced call (required, a named function) is written by its grammar, and the prompt (~400 tokens
 * for two tools) would not fit small models' windows; the native /v1 server does the same.
 */
export function templateInput(
  messages: readonly ChatCompletionMessageParam[],
  tools: readonly ChatCompletionTool[],
  templateSource: string,
  freeCall = true,
): TemplateInput {
  const knows = templateKnowsTools(templateSource);
  const out: ChatMessage[] = messages.map((m) => {
    const { content, tool_calls: rawCalls, ...rest } = m;
    // validate.ts checked their shape.
    const calls = rawCalls as readonly ChatCompletionMessageToolCall[] | undefined;
    const msg: ChatMessage = { ...rest, content: content ?? "" };
    if (calls !== undefined && calls.length > 0) {
      if (knows.toolCalls) {
        msg.tool_calls = calls.map((c) => ({ id: c.id, type: c.type, function: { name: c.function.name, arguments: argumentsObject(c.function.arguments) } }));
      } else {
        msg.content = [msg.content, ...calls.map(callBlock)].filter((s) => s !== "").join("\n");
      }
    }
    if (m.role === "tool" && !knows.toolCalls) msg.content = `<tool_response>\n${msg.content}\n</tool_response>`;
    return msg;
  });
  if (tools.length === 0) return { messages: out };
  if (knows.tools) return { messages: out, tools: tools.map((t) => ({ ...t }) as unknown as Record<string, unknown>) };
  if (!freeCall) return { messages: out };
  const prompt = hermesToolPrompt(tools);
  const first = out[0];
  if (first?.role === "system") out[0] = { ...first, content: `${first.content}\n\n${prompt}` };
  else out.unshift({ role: "system", content: prompt });
  return { messages: out };
}
