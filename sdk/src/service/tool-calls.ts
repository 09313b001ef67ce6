/**
 * Tool calls in the generated text: Hermes-style blocks, as Qwen2.5 / Qwen3 templates (and Hearth's
 * fallback tool prompt, tool-prompt.ts) ask for:
 *
 *   <tool_call>
 *   {"name": "get_weather", "arguments": {"city": "Paris"}}
 *   </tool_call>
 *
 * parseToolCalls() turns a finished reply into OpenAI's `tool_calls` (+ the remaining text as content);
 * ToolCallStream does the same incrementally for a stream: content deltas until a block starts, then one
 * call's deltas once its block is complete (the first carries index, id, type, name and arguments "";
 * the next the arguments). A block that does not parse, or names no offered tool, stays text in both.
 */
import type { ChatCompletionChunkToolCall, ChatCompletionMessageToolCall } from "./openai.js";
import { TOOL_CALL_BEGIN, TOOL_CALL_END } from "./structured.js";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** "call_" + 24 random base62 characters. */
export function newToolCallId(): string {
  const bytes = new Uint8Array(24);
  globalThis.crypto.getRandomValues(bytes);
  let s = "call_";
  for (const b of bytes) s += BASE62[b % 62];
  return s;
}

/** A block's inner text as a call to one of `names`, or null. Arguments are re-serialized as compact JSON. */
export function parseCallBody(inner: string, names: readonly string[]): { name: string; arguments: string } | null {
  let value: unknown;
  try {
    value = JSON.parse(inner.trim());
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const { name, arguments: args } = value as { name?: unknown; arguments?: unknown };
  if (typeof name !== "string" || !names.includes(name)) return null;
  let parsed: unknown = args ?? {};
  // Some models write the arguments as a JSON string; OpenAI's field is a JSON string of an object either way.
  if (typeof parsed === "string") {
    try {
      parsed = JSON.parse(parsed);
    } catch {
      return null;
    }
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return null;
  return { name, arguments: JSON.stringify(parsed) };
}

export interface ParsedReply {
  /** Text outside the calls, trimmed; null when the reply is only tool calls. */
  content: string | null;
  toolCalls: ChatCompletionMessageToolCall[];
}

/** Split a finished reply into tool calls (to `names` only) and content. */
export function parseToolCalls(text: string, names: readonly string[]): ParsedReply {
  const calls: ChatCompletionMessageToolCall[] = [];
  let content = "";
  let at = 0;
  for (;;) {
    const begin = text.indexOf(TOOL_CALL_BEGIN, at);
    const end = begin < 0 ? -1 : text.indexOf(TOOL_CALL_END, begin + TOOL_CALL_BEGIN.length);
    if (begin < 0 || end < 0) break;
    const call = parseCallBody(text.slice(begin + TOOL_CALL_BEGIN.length, end), names);
    const blockEnd = end + TOOL_CALL_END.length;
    if (call === null) {
      content += text.slice(at, blockEnd);
    } else {
      content += text.slice(at, begin);
      calls.push({ id: newToolCallId(), type: "function", function: call });
    }
    at = blockEnd;
  }
  content = (content + text.slice(at)).trim();
  return { content: content === "" && calls.length > 0 ? null : content, toolCalls: calls };
}

/** What one push into a {@link ToolCallStream} released. */
export interface ToolCallDeltas {
  content: string;
  toolCalls: ChatCompletionChunkToolCall[];
}

/** Length of the longest suffix of `text` that is a proper prefix of `marker`. */
function partialSuffix(text: string, marker: string): number {
  for (let n = Math.min(marker.length - 1, text.length); n > 0; n--) if (text.endsWith(marker.slice(0, n))) return n;
  return 0;
}

/**
 * Incremental parseToolCalls: the content it releases, joined, equals parseToolCalls' content (or "" for
 * null), and it releases the same calls in the same order.
 */
export class ToolCallStream {
  readonly names: readonly string[];
  readonly calls: ChatCompletionMessageToolCall[] = [];
  #outside = "";
  #inside: string | null = null;
  /** Whitespace held back: it is content only if more content follows (the final content is trimmed). */
  #space = "";
  #started = false;

  constructor(names: readonly string[]) {
    this.names = names;
  }

  push(text: string): ToolCallDeltas {
    const out: ToolCallDeltas = { content: "", toolCalls: [] };
    let rest = text;
    while (rest !== "") {
      if (this.#inside === null) {
        const buf = this.#outside + rest;
        rest = "";
        const begin = buf.indexOf(TOOL_CALL_BEGIN);
        if (begin < 0) {
          const keep = partialSuffix(buf, TOOL_CALL_BEGIN);
          this.#content(buf.slice(0, buf.length - keep), out);
          this.#outside = buf.slice(buf.length - keep);
        } else {
          this.#content(buf.slice(0, begin), out);
          this.#outside = "";
          this.#inside = "";
          rest = buf.slice(begin + TOOL_CALL_BEGIN.length);
        }
      } else {
        const buf = this.#inside + rest;
        rest = "";
        const end = buf.indexOf(TOOL_CALL_END);
        if (end < 0) {
          this.#inside = buf;
        } else {
          this.#inside = null;
          this.#block(buf.slice(0, end), out);
          rest = buf.slice(end + TOOL_CALL_END.length);
        }
      }
    }
    return out;
  }

  /** Generation ended: what is held back is content (an unclosed block stays text, as in parseToolCalls). */
  finish(): ToolCallDeltas {
    const out: ToolCallDeltas = { content: "", toolCalls: [] };
    const tail = this.#inside === null ? this.#outside : TOOL_CALL_BEGIN + this.#inside;
    this.#outside = "";
    this.#inside = null;
    this.#content(tail.trimEnd(), out);
    return out;
  }

  #block(inner: string, out: ToolCallDeltas): void {
    const call = parseCallBody(inner, this.names);
    if (call === null) {
      this.#content(TOOL_CALL_BEGIN + inner + TOOL_CALL_END, out);
      return;
    }
    const index = this.calls.length;
    const id = newToolCallId();
    this.calls.push({ id, type: "function", function: call });
    out.toolCalls.push({ index, id, type: "function", function: { name: call.name, arguments: "" } });
    out.toolCalls.push({ index, function: { arguments: call.arguments } });
  }

  #content(text: string, out: ToolCallDeltas): void {
    if (text === "") return;
    let t = text;
    if (!this.#started) {
      t = t.trimStart();
      if (t === "") return;
      this.#started = true;
    }
    const body = t.trimEnd();
    if (body === "") {
      this.#space += t;
      return;
    }
    out.content += this.#space + body;
    this.#space = t.slice(body.length);
  }
}
