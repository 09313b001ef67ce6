/**
 * The RAG index's `ChatModel` inside the RAG worker. It counts tokens exactly as the engine will (same
 * tokenizer.json, same chat template, verified against the package manifest), so the prompt builder
 * fits the retrieved sources into the context window; generation itself is delegated to the page,
 * which owns the SDK engine worker (see protocol.ts).
 */
import { ChatTemplate, fetchManifest, IntegrityError, loadTokenizer, manifestEntry, verifyFile, type Tokenizer } from "@hearth/sdk";
import type { ChatMessage, ChatModel, ChatStreamOptions } from "@hearth/sdk/rag";

/** Asks the page to run a streamed completion; returns the pieces as they arrive. */
export type ChatTransport = (messages: ChatMessage[], maxTokens: number, signal: AbortSignal | undefined) => AsyncIterable<string>;

type Fetch = (url: string, init?: RequestInit) => Promise<Response>;

async function readVerified(
  baseUrl: string,
  file: string,
  manifest: Awaited<ReturnType<typeof fetchManifest>>,
  required: boolean,
  fetchFn: Fetch,
): Promise<string | undefined> {
  const entry = manifestEntry(manifest, file);
  if (entry === undefined) {
    if (!required) return undefined;
    throw new IntegrityError(file, "unlisted", null, null, `${file} is not listed in ${baseUrl}hearth-manifest.json`);
  }
  const res = await fetchFn(new URL(file, baseUrl).href);
  if (!res.ok) throw new Error(`GET ${baseUrl}${file}: HTTP ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  await verifyFile(bytes, entry);
  return new TextDecoder().decode(bytes);
}

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
    const [tokenizerJson, tokenizerConfigText, chatConfigText] = await Promise.all([
      readVerified(base, "tokenizer.json", manifest, true, fetchFn),
      readVerified(base, "tokenizer_config.json", manifest, false, fetchFn),
      readVerified(base, "mlc-chat-config.json", manifest, true, fetchFn),
    ]);
    const chatConfig = JSON.parse(chatConfigText as string) as Record<string, unknown>;
    const tokenizerConfig = tokenizerConfigText === undefined ? undefined : (JSON.parse(tokenizerConfigText) as Record<string, unknown>);
    const tokenizer = await loadTokenizer(
      tokenizerConfig === undefined ? { tokenizerJson: tokenizerJson as string } : { tokenizerJson: tokenizerJson as string, tokenizerConfig },
    );
    let template: ChatTemplate | null = null;
    try {
      template = await ChatTemplate.fromSources(tokenizerConfig === undefined ? { chatConfig } : { tokenizerConfig, chatConfig });
    } catch {
      template = null; // no template: the index estimates per-message overhead instead
    }
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
