/**
 * The chat completions endpoint: render the conversation with the chat template (dropping the oldest
 * turns under context_overflow "truncate"), generate, and shape the response and its chunk stream.
 * Structured output (structured.ts): response_format or a forced tool call constrains generation with a
 * grammar; with tools, the reply's `<tool_call>` blocks become `tool_calls` (tool-calls.ts).
 */
import type { LoadedChatModel } from "./chat-model.js";
import { checkWindow, type EndpointResult, type Prepared, requestParams, type Running, runGeneration, usageOf } from "./generation.js";
import type { GenerateResult } from "../decoder/generate.js";
import { requestConstraint } from "./grammar-model.js";
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionMessage, ChatCompletionMessageParam, ChatCompletionRequest, FinishReason } from "./openai.js";
import { planStructured, type StructuredPlan } from "./structured.js";
import { parseToolCalls } from "./tool-calls.js";
import { templateInput } from "./tool-prompt.js";
import type { RenderOptions } from "../tokenize/chat-template.js";
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
  const plan = planStructured(req);
  const prepared = prepareChat(loaded, req, plan);
  // Compiled (or taken from the cache) before generation: a grammar the engine refuses fails the request here.
  const constraint = plan.grammar === null ? undefined : await requestConstraint(loaded, plan.grammar, plan.grammarParam ?? "response_format");
  const stream = new ChatStream(id, created, loaded, req, prepared.promptIds, onChunk, plan.toolNames);
  let result: GenerateResult;
  try {
    result = await runGeneration(loaded, prepared, run, (piece) => stream.piece(piece), constraint);
  } finally {
    constraint?.dispose();
  }
  const usage = usageOf(result);
  const message: ChatCompletionMessage = { role: "assistant", content: result.text, refusal: null };
  let finish: FinishReason = result.finishReason;
  if (plan.toolNames.length > 0) {
    const parsed = parseToolCalls(result.text, plan.toolNames);
    const calls = stream.toolCalls ?? parsed.toolCalls; // a stream already named its calls' ids
    if (calls.length > 0) {
      message.content = parsed.content;
      message.tool_calls = calls;
      if (finish === "stop") finish = "tool_calls";
    }
  }
  stream.finish(result, usage, finish);
  const choice: ChatCompletion["choices"][number] = {
    index: 0,
    message,
    logprobs: req.logprobs === true ? { content: result.tokens.map((t) => chatLogprob(loaded.tokenizer, t)), refusal: null } : null,
    finish_reason: finish,
  };
  if (req.return_token_ids === true) choice.token_ids = result.tokens.map((t) => t.token);
  const out: ChatCompletion = { id, object: "chat.completion", created, model: loaded.info.model, choices: [choice], usage };
  if (req.return_token_ids === true) out.prompt_token_ids = [...prepared.promptIds];
  return { response: out, result, prepared };
}

/** The prompt ids of a chat request, within the context window. */
export function prepareChat(loaded: LoadedChatModel, req: ChatCompletionRequest, plan: StructuredPlan = planStructured(req)): Prepared {
  const template = loaded.template;
  if (template === null) {
    throw new InvalidRequestError(
      `this model has no usable chat template (${loaded.templateError?.message ?? "none"}); use completions`,
      "messages",
      "unsupported_parameter",
    );
  }
  const maxTokens = req.max_completion_tokens ?? req.max_tokens ?? null;
  const encode = (messages: readonly ChatCompletionMessageParam[]): number[] => {
    const input = templateInput(messages, plan.tools, template.source, plan.grammar === null);
    const options: RenderOptions = { add_generation_prompt: true };
    if (input.tools !== undefined) options.tools = input.tools;
    if (req.chat_template_kwargs != null) options.extra = req.chat_template_kwargs;
    const text = template.render(input.messages, options);
    return Array.from(loaded.tokenizer.encode(text, { addSpecialTokens: false }));
  };
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
