/**
 * The RAG index's `ChatModel` inside the RAG worker. It counts tokens exactly as the engine will (same
 * tokenizer.json, same chat template, verified against the package manifest), so the prompt builder
 * fits the retrieved sources into the context window; generation itself is delegated to the page,
 * which owns the SDK engine worker (see protocol.ts).
 */
import { type ChatTemplate, fetchManifest, fetchPackageBytes, loadPackageText, readVerifiedText, type Tokenizer } from "@hearth/sdk";
import type { ChatMessage, ChatModel, ChatStreamOptions } from "@hearth/sdk/rag";

/** Asks the page to run a streamed completion; returns the pieces as they arrive. */
export type ChatTransport = (messages: ChatMessage[], maxTokens: number, signal: AbortSignal | undefined) => AsyncIterable<string>;

type Fetch = (url: string, init?: RequestInit) => Promise<Response>;

export class ProxyChat implements ChatModel {
  private constructor(
    readonly contextWindow: number,
    private readonly tokenizer: Tokenizer,
    private readonly template: ChatTemplate | null,
    private readonly transport: ChatTransport,
  ) {}

  /**
   * Read the chat package's tokenizer and template. `maxContext` caps the window (the engine's KV capacity).
   * `fetchFn`: the page's fetch by default (tests pass one that reads file:// URLs).
   */
  static async open(baseUrl: string, maxContext: number, transport: ChatTransport, fetchFn: Fetch = (u, i) => fetch(u, i)): Promise<ProxyChat> {
    const base = baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`;
    const manifest = await fetchManifest(base, (u, i) => fetchFn(u, i));
    // The SDK's own reader (what EngineCore loads with), so the counts here match the engine's.
    const read = fetchPackageBytes(base, (u, i) => fetchFn(u, i));
    const chatConfig = JSON.parse((await readVerifiedText(manifest, "mlc-chat-config.json", true, read)) as string) as Record<string, unknown>;
    // No template: the index estimates per-message overhead instead.
    const { tokenizer, template } = await loadPackageText(manifest, read, chatConfig);
    const window = typeof chatConfig["context_window_size"] === "number" ? chatConfig["context_window_size"] : maxContext;
    return new ProxyChat(Math.min(window, maxContext), tokenizer, template, transport);
  }

  get hasTemplate(): boolean {
    return this.template !== null;
  }

  countTokens(text: string): number {
    return this.tokenizer.encode(text, { addSpecialTokens: false }).length;
  }

  countMessageTokens(messages: ChatMessage[]): number {
    if (this.template === null) return messages.reduce((n, m) => n + this.countTokens(m.content) + 8, 0);
    // What EngineCore does before prefill: render with the generation prompt, encode without extra specials.
    return this.tokenizer.encode(this.template.render(messages, { add_generation_prompt: true }), { addSpecialTokens: false }).length;
  }

  stream(messages: ChatMessage[], opts: ChatStreamOptions): AsyncIterable<string> {
    return this.transport(messages, opts.maxTokens, opts.signal);
  }
}
