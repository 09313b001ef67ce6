/**
 * OpenAI response pieces built from generated tokens: the chat chunk stream (role first, content deltas,
 * finish, usage) and logprobs in the chat and legacy-completion shapes. EngineCore's chat and completion
 * endpoints use them.
 */
import type { GeneratedToken, GeneratePiece, GenerateResult } from "../decoder/generate.js";
import type { Tokenizer } from "../tokenize/tokenizer.js";
import { type ToolCallDeltas, ToolCallStream } from "./tool-calls.js";
import type {
  ChatCompletionChunk,
  ChatCompletionChunkChoice,
  ChatCompletionMessageToolCall,
  ChatCompletionRequest,
  ChatCompletionTokenLogprob,
  CompletionLogprobs,
  CompletionUsage,
  FinishReason,
} from "./openai.js";

/** What a chat stream needs of the loaded model: its name and tokenizer. */
export interface StreamModel {
  info: { model: string };
  tokenizer: Tokenizer;
}

/**
 * Turns generation pieces into OpenAI chat chunks (role first, content deltas, finish, usage). With a
 * {@link ToolCallStream} (a request with tools), text becomes content deltas until a `<tool_call>` block
 * starts, and each complete call becomes tool_calls deltas.
 */
export class ChatStream {
  #pending: GeneratedToken[] = [];
  #first = true;
  readonly #tools: ToolCallStream | null;

  constructor(
    readonly id: string,
    readonly created: number,
    readonly loaded: StreamModel,
    readonly req: ChatCompletionRequest,
    readonly promptIds: readonly number[],
    readonly onChunk: ((chunk: ChatCompletionChunk) => void) | undefined,
    toolNames: readonly string[] = [],
  ) {
    this.#tools = toolNames.length > 0 && onChunk !== undefined ? new ToolCallStream(toolNames) : null;
    if (onChunk === undefined) return;
    this.#emit({ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null });
  }

  #emit(choice: ChatCompletionChunkChoice | null, usage?: CompletionUsage): void {
    const chunk: ChatCompletionChunk = {
      id: this.id,
      object: "chat.completion.chunk",
      created: this.created,
      model: this.loaded.info.model,
      choices: choice === null ? [] : [choice],
    };
    if (this.req.stream_options?.include_usage === true) chunk.usage = usage ?? null;
    if (this.req.return_token_ids === true && this.#first) chunk.prompt_token_ids = [...this.promptIds];
    this.#first = false;
    this.onChunk?.(chunk);
  }

  #choice(delta: ChatCompletionChunkChoice["delta"], finish: FinishReason | null): ChatCompletionChunkChoice {
    const tokens = this.#pending;
    this.#pending = [];
    const choice: ChatCompletionChunkChoice = {
      index: 0,
      delta,
      logprobs: this.req.logprobs === true && tokens.length > 0 ? { content: tokens.map((t) => chatLogprob(this.loaded.tokenizer, t)), refusal: null } : null,
      finish_reason: finish,
    };
    if (this.req.return_token_ids === true) choice.token_ids = tokens.map((t) => t.token);
    return choice;
  }

  piece(piece: GeneratePiece): void {
    if (this.onChunk === undefined) return;
    this.#pending.push(piece.token);
    if (piece.text === "") return;
    if (this.#tools === null) this.#emit(this.#choice({ content: piece.text }, null));
    else this.#deltas(this.#tools.push(piece.text));
  }

  /** The calls streamed so far (null without tools or without a stream). */
  get toolCalls(): ChatCompletionMessageToolCall[] | null {
    return this.#tools?.calls ?? null;
  }

  #deltas(d: ToolCallDeltas): void {
    if (d.content !== "") this.#emit(this.#choice({ content: d.content }, null));
    for (const call of d.toolCalls) this.#emit(this.#choice({ tool_calls: [call] }, null));
  }

  /** `finishReason`: the response's (a reply with tool calls ends with "tool_calls"). */
  finish(result: GenerateResult, usage: CompletionUsage, finishReason: FinishReason = result.finishReason): void {
    if (this.onChunk === undefined) return;
    if (this.#tools !== null) this.#deltas(this.#tools.finish());
    this.#emit(this.#choice({}, finishReason));
    if (this.req.stream_options?.include_usage === true) this.#emit(null, usage);
  }
}

function tokenText(tokenizer: Tokenizer, id: number): { token: string; bytes: number[] | null } {
  const token = tokenizer.decode([id], { skipSpecialTokens: false });
  // A token holding part of a multi-byte character decodes to U+FFFD: its bytes are not known here.
  return { token, bytes: token.includes("\uFFFD") ? null : Array.from(new TextEncoder().encode(token)) };
}

export function chatLogprob(tokenizer: Tokenizer, t: GeneratedToken): ChatCompletionTokenLogprob {
  return {
    ...tokenText(tokenizer, t.token),
    logprob: t.logprob ?? 0,
    top_logprobs: (t.topLogprobs ?? []).map((alt) => ({ ...tokenText(tokenizer, alt.token), logprob: alt.logprob })),
  };
}

export function completionLogprobs(tokenizer: Tokenizer, tokens: readonly GeneratedToken[], offset: number): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let at = offset;
  for (const t of tokens) {
    const text = tokenText(tokenizer, t.token).token;
    out.tokens.push(text);
    out.token_logprobs.push(t.logprob ?? 0);
    const top: Record<string, number> = {};
    for (const alt of t.topLogprobs ?? []) top[tokenText(tokenizer, alt.token).token] = alt.logprob;
    out.top_logprobs?.push(top);
    out.text_offset.push(at);
    at += text.length;
  }
  return out;
}
