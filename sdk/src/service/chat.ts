/**
 * The chat completions endpoint: render the conversation with the chat template (dropping the oldest
 * turns under context_overflow "truncate"), generate, and shape the response and its chunk stream.
 */
import type { LoadedChatModel } from "./chat-model.js";
import { checkWindow, type EndpointResult, type Prepared, requestParams, type Running, runGeneration, usageOf } from "./generation.js";
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatMessage } from "./openai.js";
import { ChatStream, chatLogprob } from "./responses.js";
import { InvalidRequestError } from "../errors/index.js";

/** Run a validated chat request on the loaded model (the caller holds the queue and the stop flag). */
export async function runChat(
  loaded: LoadedChatModel,
  req: ChatCompletionRequest,
  id: string,
  created: number,
  run: Running,
  onChunk: ((chunk: ChatCompletionChunk) => void) | undefined,
): Promise<EndpointResult<ChatCompletion>> {
  const prepared = prepareChat(loaded, req);
  const stream = new ChatStream(id, created, loaded, req, prepared.promptIds, onChunk);
  const result = await runGeneration(loaded, prepared, run, (piece) => stream.piece(piece));
  const usage = usageOf(result);
  stream.finish(result, usage);
  const choice: ChatCompletion["choices"][number] = {
    index: 0,
    message: { role: "assistant", content: result.text, refusal: null },
    logprobs: req.logprobs === true ? { content: result.tokens.map((t) => chatLogprob(loaded.tokenizer, t)), refusal: null } : null,
    finish_reason: result.finishReason,
  };
  if (req.return_token_ids === true) choice.token_ids = result.tokens.map((t) => t.token);
  const out: ChatCompletion = { id, object: "chat.completion", created, model: loaded.info.model, choices: [choice], usage };
  if (req.return_token_ids === true) out.prompt_token_ids = [...prepared.promptIds];
  return { response: out, result, prepared };
}

/** The prompt ids of a chat request, within the context window. */
export function prepareChat(loaded: LoadedChatModel, req: ChatCompletionRequest): Prepared {
  const template = loaded.template;
  if (template === null) {
    throw new InvalidRequestError(
      `this model has no usable chat template (${loaded.templateError?.message ?? "none"}); use completions`,
      "messages",
      "unsupported_parameter",
    );
  }
  const maxTokens = req.max_completion_tokens ?? req.max_tokens ?? null;
  const encode = (messages: readonly ChatMessage[]): number[] =>
    Array.from(loaded.tokenizer.encode(template.render(messages, { add_generation_prompt: true }), { addSpecialTokens: false }));
  let messages = [...req.messages];
  let ids = encode(messages);
  const window = loaded.session.maxSequenceLength;
  let truncated = 0;
  if ((req.context_overflow ?? loaded.contextOverflow) === "truncate") {
    // Drop the oldest non-system turns (a user message with the assistant reply after it) until the
    // prompt leaves room for max_tokens (or one token); the last message always stays.
    const reserve = maxTokens ?? 1;
    while (ids.length + reserve > window) {
      const i = messages.findIndex((m, j) => m.role !== "system" && j < messages.length - 1);
      if (i < 0) break;
      let n = 1;
      if (i + 1 < messages.length - 1 && messages[i + 1]?.role === "assistant" && messages[i]?.role !== "assistant") n = 2;
      messages = [...messages.slice(0, i), ...messages.slice(i + n)];
      truncated += n;
      ids = encode(messages);
    }
  }
  checkWindow(ids.length, window, truncated > 0);
  return { promptIds: ids, params: requestParams(loaded, req, maxTokens, req.logprobs === true ? (req.top_logprobs ?? 0) : null), truncated };
}
