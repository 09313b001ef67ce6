/**
 * The optional server path: `hearth serve --native-api` runs the same chat package natively (TVM,
 * llvm build) behind an OpenAI-compatible /v1/chat/completions. Used only when the user turns
 * "local only" off (ui/local-only.ts); retrieval and the documents stay in the browser, but the
 * prompt, i.e. the question and the retrieved passages, goes to the server.
 *
 * Same origin only (the page's CSP allows nothing else), so this is the server that served the app.
 */
import type { ChatRunner } from "./rag-client.ts";
import { ANSWER_SAMPLING } from "./sampling.ts";

export interface NativeApiModel {
  id: string; // "<model_id>/<quantization>"
  model_id: string;
  quantization: string;
  task: "chat" | "embedding";
}

export interface ServerUsage {
  model: string;
  promptTokens: number;
  completionTokens: number;
  wallMs: number;
}

/**
 * The server's native models, or null when the API is off / unreachable (it is off by default). Asks
 * /healthz first, whose `native_api` flag says whether /v1 exists: probing /v1/models on a server without
 * it would log a 404 in the console on every page load. `origin`: the page's own by default (tests pass one).
 */
export async function probeNativeApi(signal?: AbortSignal, origin = ""): Promise<NativeApiModel[] | null> {
  const init: RequestInit = { cache: "no-store", ...(signal === undefined ? {} : { signal }) };
  try {
    const health = await fetch(`${origin}/healthz`, init);
    if (!health.ok) return null;
    if (((await health.json()) as { native_api?: unknown }).native_api !== true) return null;
    const res = await fetch(`${origin}/v1/models`, init);
    if (!res.ok) return null;
    const doc = (await res.json()) as { data?: NativeApiModel[] };
    return Array.isArray(doc.data) ? doc.data : null;
  } catch {
    return null; // offline, or an old server: local only
  }
}

/**
 * The server model to ask for the package the browser chose (`packageUrl` = /models/<id>/<quant>/):
 * that very package when the server has its native build, else another variant of the same model
 * (the server picks its best CPU variant for a bare model id), else null.
 */
export function serverModelFor(models: NativeApiModel[], packageUrl: string): string | null {
  const m = /\/models\/([^/]+)\/([^/]+)\/?$/u.exec(new URL(packageUrl, location.href).pathname);
  if (m === null) return null;
  const [, modelId, quant] = m as unknown as [string, string, string];
  const chat = models.filter((x) => x.task === "chat");
  if (chat.some((x) => x.id === `${modelId}/${quant}`)) return `${modelId}/${quant}`;
  return chat.some((x) => x.model_id === modelId) ? modelId : null;
}

class ServerError extends Error {
  override name = "ServerError";
}

/** A ChatRunner that streams from the server's /v1/chat/completions (OpenAI SSE chunks). */
export function serverRunner(model: string, onUsage: (usage: ServerUsage) => void): ChatRunner {
  return async function* (messages, maxTokens, signal) {
    const t0 = performance.now();
    const res = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      // The server's OpenAI API has no loop guard: the sampling settings alone.
      body: JSON.stringify({
        model,
        messages,
        max_tokens: maxTokens,
        temperature: ANSWER_SAMPLING.temperature,
        top_p: ANSWER_SAMPLING.top_p,
        seed: ANSWER_SAMPLING.seed,
        stream: true,
        stream_options: { include_usage: true },
      }),
      signal,
    });
    if (!res.ok || res.body === null) {
      let detail = `HTTP ${res.status}`;
      try {
        detail = ((await res.json()) as { error?: { message?: string } }).error?.message ?? detail;
      } catch {
        // not JSON: keep the status
      }
      throw new ServerError(`the server's native API refused the request: ${detail}`);
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let answeredBy = model;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new ServerError("the server closed the stream before it finished (no [DONE])");
        buffer += value;
        let cut: number;
        while ((cut = buffer.indexOf("\n\n")) !== -1) {
          const event = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          if (!event.startsWith("data: ")) continue;
          const data = event.slice(6);
          if (data === "[DONE]") return;
          const chunk = JSON.parse(data) as {
            model?: string;
            error?: { message?: string };
            choices?: { delta?: { content?: string } }[];
            usage?: { prompt_tokens: number; completion_tokens: number };
          };
          if (chunk.error !== undefined) throw new ServerError(`the server failed: ${chunk.error.message ?? "unknown error"}`);
          if (chunk.model) answeredBy = chunk.model;
          if (chunk.usage)
            onUsage({
              model: answeredBy,
              promptTokens: chunk.usage.prompt_tokens,
              completionTokens: chunk.usage.completion_tokens,
              wallMs: performance.now() - t0,
            });
          const text = chunk.choices?.[0]?.delta?.content;
          if (text) yield text;
        }
      }
    } finally {
      void reader.cancel().catch(() => undefined); // stop the server's generation when we stop early
    }
  };
}
