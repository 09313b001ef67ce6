/**
 * The (legacy) text completions endpoint: encode the prompt (text or token ids, the end kept under
 * context_overflow "truncate"), generate, and shape the response and its chunk stream.
 */
import type { GeneratedToken, GeneratePiece } from "../decoder/generate.js";
import type { LoadedChatModel } from "./chat-model.js";
import { checkWindow, type EndpointResult, type Prepared, requestParams, type Running, runGeneration, usageOf } from "./generation.js";
import type { Completion, CompletionChunk, CompletionRequest, CompletionUsage } from "./openai.js";
import { completionLogprobs } from "./responses.js";
import { InvalidRequestError } from "../errors/index.js";

/** Run a validated completion request on the loaded model (the caller holds the queue and the stop flag). */
export async function runCompletion(
  loaded: LoadedChatModel,
  req: CompletionRequest,
  id: string,
  created: number,
  run: Running,
  onChunk: ((chunk: CompletionChunk) => void) | undefined,
): Promise<EndpointResult<Completion>> {
  const prepared = prepareCompletion(loaded, req);
  const model = loaded.info.model;
  const wantTokens = req.return_token_ids === true;
  let firstChunk = true;
  const chunk = (choice: Completion["choices"][number], usage?: CompletionUsage | null): CompletionChunk => {
    const c: CompletionChunk = { id, object: "text_completion", created, model, choices: [choice] };
    if (req.stream_options?.include_usage === true) c.usage = usage ?? null;
    if (wantTokens && firstChunk) c.prompt_token_ids = [...prepared.promptIds];
    firstChunk = false;
    return c;
  };
  let pendingTokens: GeneratedToken[] = [];
  const onPiece = (piece: GeneratePiece): void => {
    pendingTokens.push(piece.token);
    if (onChunk === undefined || piece.text === "") return;
    const choice: Completion["choices"][number] = {
      index: 0,
      text: piece.text,
      logprobs: req.logprobs != null ? completionLogprobs(loaded.tokenizer, pendingTokens, 0) : null,
      finish_reason: null,
    };
    if (wantTokens) choice.token_ids = pendingTokens.map((t) => t.token);
    pendingTokens = [];
    onChunk(chunk(choice));
  };
  const result = await runGeneration(loaded, prepared, run, onPiece);
  const usage = usageOf(result);
  if (onChunk !== undefined) {
    const last: Completion["choices"][number] = {
      index: 0,
      text: "",
      logprobs: req.logprobs != null && pendingTokens.length > 0 ? completionLogprobs(loaded.tokenizer, pendingTokens, 0) : null,
      finish_reason: result.finishReason,
    };
    if (wantTokens) last.token_ids = pendingTokens.map((t) => t.token);
    onChunk(chunk(last));
    if (req.stream_options?.include_usage === true) {
      onChunk({ id, object: "text_completion", created, model, choices: [], usage });
    }
  }
  const choice: Completion["choices"][number] = {
    index: 0,
    text: result.text,
    logprobs: req.logprobs != null ? completionLogprobs(loaded.tokenizer, result.tokens, 0) : null,
    finish_reason: result.finishReason,
  };
  if (wantTokens) choice.token_ids = result.tokens.map((t) => t.token);
  const out: Completion = { id, object: "text_completion", created, model, choices: [choice], usage };
  if (wantTokens) out.prompt_token_ids = [...prepared.promptIds];
  return { response: out, result, prepared };
}

/** The prompt ids of a completion request, within the context window. */
export function prepareCompletion(loaded: LoadedChatModel, req: CompletionRequest): Prepared {
  let ids: number[];
  if (typeof req.prompt === "string") {
    ids = Array.from(loaded.tokenizer.encode(req.prompt));
  } else {
    req.prompt.forEach((t, i) => {
      if (t >= loaded.info.vocabSize) {
        throw new InvalidRequestError(`prompt[${i}]: token id ${t} is outside the vocabulary [0, ${loaded.info.vocabSize})`, `prompt[${i}]`);
      }
    });
    ids = [...req.prompt];
  }
  if (ids.length === 0) throw new InvalidRequestError("the prompt encodes to no tokens", "prompt");
  const window = loaded.session.maxSequenceLength;
  if (ids.length > window && (req.context_overflow ?? loaded.contextOverflow) === "truncate") {
    ids = ids.slice(ids.length - window); // keep the end of the text
  }
  checkWindow(ids.length, window, false);
  // OpenAI's legacy default is 16 tokens.
  return { promptIds: ids, params: requestParams(loaded, req, req.max_tokens ?? 16, req.logprobs ?? null), truncated: 0 };
}
