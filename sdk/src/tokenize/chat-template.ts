/**
 * Chat templates: the model's own Jinja `chat_template`, rendered with `@huggingface/jinja` (the
 * interpreter transformers.js uses) and given the same variables transformers' `apply_chat_template`
 * gives it, so the prompt text matches the Python side byte for byte.
 *
 * The interpreter is imported on first use, not statically, for the reason given in tokenizers-js.ts (raw
 * dist/ in a module Worker cannot resolve npm packages); that is why templates are created asynchronously.
 */
import type { Template } from "@huggingface/jinja";
import { tokenContent } from "./hf-tokenizer.js";
import { usePythonStrings } from "./jinja-python.js";
import { ChatMessageError, ChatTemplateError } from "../errors/text.js";
export { ChatMessageError, ChatTemplateError } from "../errors/text.js";

export type ChatRole = "system" | "user" | "assistant" | "tool";

export interface ChatMessage {
  role: ChatRole;
  content: string;
  /** Optional speaker name (OpenAI `name`); passed to the template as is. */
  name?: string;
  /** For role "tool": the call this message answers (OpenAI `tool_call_id`). */
  tool_call_id?: string;
  /** For role "assistant": tool calls, passed through to templates that render them. */
  tool_calls?: readonly Record<string, unknown>[];
}

export interface RenderOptions {
  /** Append the assistant header so the model writes a reply. Default false, as in transformers. */
  add_generation_prompt?: boolean;
  /** Tool schemas (JSON schema objects); `tools` is null in the template when absent, as in transformers. */
  tools?: readonly Record<string, unknown>[];
  /** Documents for RAG templates; null when absent. */
  documents?: readonly Record<string, unknown>[];
  /** More template variables (e.g. `enable_thinking`); they override the special-token names. */
  extra?: Record<string, unknown>;
}

const ROLES: ReadonlySet<string> = new Set<ChatRole>(["system", "user", "assistant", "tool"]);
const OPTIONAL_STRINGS = ["name", "tool_call_id"] as const;
const KNOWN_KEYS: ReadonlySet<string> = new Set(["role", "content", ...OPTIONAL_STRINGS, "tool_calls"]);

/** Check a message list's shape; returns it typed, or throws {@link ChatMessageError} naming the first fault. */
export function validateMessages(messages: unknown): ChatMessage[] {
  if (!Array.isArray(messages)) throw new ChatMessageError("messages must be an array");
  if (messages.length === 0) throw new ChatMessageError("messages is empty");
  messages.forEach((m: unknown, i) => {
    const at = `messages[${i}]`;
    if (typeof m !== "object" || m === null || Array.isArray(m)) throw new ChatMessageError(`${at} must be an object`);
    const msg = m as Record<string, unknown>;
    const role = msg["role"];
    if (typeof role !== "string" || !ROLES.has(role)) {
      throw new ChatMessageError(`${at}.role must be one of system, user, assistant, tool; got ${JSON.stringify(role)}`);
    }
    if (typeof msg["content"] !== "string") {
      throw new ChatMessageError(`${at}.content must be a string; got ${describe(msg["content"])}`);
    }
    for (const key of OPTIONAL_STRINGS) {
      if (key in msg && typeof msg[key] !== "string") throw new ChatMessageError(`${at}.${key} must be a string`);
    }
    const calls = msg["tool_calls"];
    if (calls !== undefined) {
      if (role !== "assistant") throw new ChatMessageError(`${at}.tool_calls is only allowed on assistant messages`);
      if (!Array.isArray(calls) || !calls.every((c) => typeof c === "object" && c !== null && !Array.isArray(c))) {
        throw new ChatMessageError(`${at}.tool_calls must be an array of objects`);
      }
    }
    // Unknown keys are refused rather than silently dropped: a typo ("contents") would change the prompt.
    for (const key of Object.keys(msg)) {
      if (!KNOWN_KEYS.has(key)) throw new ChatMessageError(`${at} has an unknown key ${JSON.stringify(key)}`);
    }
  });
  return messages as ChatMessage[];
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array (content parts are not supported; pass a string)";
  return typeof v;
}

/** Where a template may come from, in the order transformers prefers them. */
export interface ChatTemplateSources {
  /** chat_template.jinja (transformers >= 4.43 may save the template as its own file; it wins). */
  chatTemplateJinja?: string;
  /** tokenizer_config.json, parsed: `chat_template` and the special-token names. */
  tokenizerConfig?: Record<string, unknown>;
  /** mlc-chat-config.json, parsed: its `chat_template` (the compiler copies tokenizer_config's). */
  chatConfig?: Record<string, unknown>;
  /** For configs with several named templates (a list of {name, template}); default "default". */
  name?: string;
}

// The special-token names transformers passes to every template (its `special_tokens_map`).
const SPECIAL_TOKEN_KEYS = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

export class ChatTemplate {
  readonly source: string;
  readonly #template: Template;
  readonly #specialTokens: Record<string, string>;

  private constructor(source: string, template: Template, specialTokens: Record<string, string>) {
    this.source = source;
    this.#template = template;
    this.#specialTokens = { ...specialTokens };
  }

  /**
   * Parse a template. `specialTokens`: template variables such as `{bos_token: "<s>", eos_token: "</s>"}`.
   * Throws {@link ChatTemplateError} when it does not parse.
   */
  static async compile(source: string, specialTokens: Record<string, string> = {}): Promise<ChatTemplate> {
    const jinja = await import("@huggingface/jinja");
    usePythonStrings(jinja); // str.strip(chars) and | trim as transformers' Jinja2 has them
    const { Template } = jinja;
    try {
      return new ChatTemplate(source, new Template(source), specialTokens);
    } catch (err) {
      throw new ChatTemplateError(`chat_template does not parse: ${messageOf(err)}`, { cause: err });
    }
  }

  /**
   * The template from a package's files, with special-token names from tokenizer_config.json.
   * Throws {@link ChatTemplateError} when none of the sources has one.
   */
  static async fromSources(sources: ChatTemplateSources): Promise<ChatTemplate> {
    const specialTokens: Record<string, string> = {};
    for (const key of SPECIAL_TOKEN_KEYS) {
      const content = tokenContent(sources.tokenizerConfig?.[key]);
      if (content !== null) specialTokens[key] = content;
    }
    const name = sources.name ?? "default";
    const source =
      sources.chatTemplateJinja ?? pickTemplate(sources.tokenizerConfig?.["chat_template"], name) ?? pickTemplate(sources.chatConfig?.["chat_template"], name);
    if (source === null) {
      throw new ChatTemplateError(
        name === "default"
          ? "no chat_template in chat_template.jinja, tokenizer_config.json or mlc-chat-config.json"
          : `no chat template named ${JSON.stringify(name)}`,
      );
    }
    return ChatTemplate.compile(source, specialTokens);
  }

  /** Render a conversation. Messages are validated first ({@link ChatMessageError}). */
  render(messages: readonly ChatMessage[], options: RenderOptions = {}): string {
    const checked = validateMessages(messages);
    const context: Record<string, unknown> = {
      ...this.#specialTokens,
      ...options.extra,
      // The interpreter converts these into its own values (copies), so templates cannot touch the caller's.
      messages: checked,
      tools: options.tools ?? null,
      documents: options.documents ?? null,
      add_generation_prompt: options.add_generation_prompt ?? false,
    };
    // `raise_exception(msg)` and `strftime_now(fmt)` are globals of @huggingface/jinja (it refuses to have
    // them redefined). Its raise_exception throws a plain Error carrying the template's message, which
    // cannot be told apart from interpreter errors, so both become ChatTemplateError with that message.
    try {
      return this.#template.render(context);
    } catch (err) {
      throw new ChatTemplateError(`chat_template: ${messageOf(err)}`, { cause: err });
    }
  }
}

function pickTemplate(value: unknown, name: string): string | null {
  if (typeof value === "string") return name === "default" ? value : null;
  // transformers saves several templates as [{name, template}, ...]
  if (Array.isArray(value)) {
    for (const entry of value) {
      const e = entry as { name?: unknown; template?: unknown } | null;
      if (e?.name === name && typeof e.template === "string") return e.template;
    }
  }
  return null;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
