/**
 * The chat model: @hearth/sdk's createEngine() with the model in the SDK's engine Worker
 * (workers/engine.worker.ts: the SDK's worker entry, bundled by Vite). Exposes the streamed completion the RAG worker asks for, and keeps the
 * numbers the diagnostics panel shows (time to first token, prefill/decode tokens per second).
 */
import { createEngine, type CompletionUsage, type Engine, type LoadProgressEvent } from "@hearth/sdk/client";
import type { ChatRunner } from "./rag-client.ts";
import { ANSWER_SAMPLING } from "./sampling.ts";

export interface ChatEngine {
  engine: Engine;
  /** Streams a completion; `onUsage` gets the usage chunk at the end. */
  runner(onUsage: (usage: CompletionUsage, wallMs: number) => void): ChatRunner;
}

export interface ChatLoadOptions {
  /** KV-cache capacity (tokens); at most the package's context_window_size. */
  maxTotalSeqLen: number;
  target: "webgpu" | "wasm-cpu";
  onProgress: (event: LoadProgressEvent) => void;
  signal?: AbortSignal;
}

export async function loadChatEngine(packageUrl: string, opts: ChatLoadOptions): Promise<ChatEngine> {
  const worker = new Worker(new URL("./workers/engine.worker.ts", import.meta.url), { type: "module", name: "hearth-engine" });
  const engine = await createEngine({
    model: packageUrl,
    worker,
    terminateWorker: true,
    maxTotalSeqLen: opts.maxTotalSeqLen,
    // Reuse the KV cache when a prompt starts like the previous one (same instructions).
    kvReuse: true,
    // Always explicit: the SDK's own default would take the CPU build on a software adapter, and the
    // demo has decided already (models.ts; ?webgpu=force).
    target: opts.target,
    // On the CPU, the package's threaded build where the page allows threads (it is cross-origin isolated:
    // vite.config.ts, hearth serve); the SDK falls back to the single-thread build otherwise.
    ...(opts.target === "wasm-cpu" ? { packageOptions: { preferThreads: true } } : {}),
    onProgress: opts.onProgress,
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
  });
  return {
    engine,
    runner: (onUsage) =>
      async function* (messages, maxTokens, signal) {
        const t0 = performance.now();
        const stream = await engine.chat.completions.create(
          { messages, stream: true, max_tokens: maxTokens, ...ANSWER_SAMPLING, stream_options: { include_usage: true } },
          { signal },
        );
        for await (const chunk of stream) {
          if (chunk.usage != null) onUsage(chunk.usage, performance.now() - t0);
          const text = chunk.choices[0]?.delta.content;
          if (text) yield text;
        }
      },
  };
}
