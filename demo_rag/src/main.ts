/**
 * Wiring of the demo. Order of events:
 *
 *  1. service worker registration (offline shell), WebGPU probe (adapter, shader-f16)
 *  2. planModels(): GET /models/, pick a chat model and a text encoder, f16 or f32 variant
 *  3. in parallel: the chat engine (SDK engine worker) and the RAG worker (encoder + IndexedDB index),
 *     each with per-phase load progress; documents can be added as soon as the encoder is ready
 *  4. ask: the RAG worker retrieves and builds the prompt, the page streams the completion from the
 *     engine back to it (or, only with "local only" switched off and `hearth serve --native-api`,
 *     from the server: server-chat.ts), and the answer appears with clickable [n] citations
 *
 * State for tests and curious people: window.hearthDemo.
 */
import "./ui/styles.css";
import type { CompletionUsage, Engine } from "@hearth/sdk/client";
import type { DocumentRecord } from "@hearth/sdk/rag";
import { loadChatEngine, type ChatEngine } from "./chat-engine.ts";
import { buildExtractRequest, citeRecord, extractRetrieveSpec, parseExtractReply, type ExtractRecord } from "./extract.ts";
import { errorMessage, explainIngestError, explainLoadError } from "./errors.ts";
import { PlanError, planModels, probeGpu, readContextWindow, type ModelPlan } from "./models.ts";
import { registerServiceWorker, warmOfflineCache } from "./pwa.ts";
import { RagClient, type CallHandle, type ChatRunner } from "./rag-client.ts";
import { probeNativeApi, serverModelFor, serverRunner, type ServerUsage } from "./server-chat.ts";
import { AskPanel, type AnswerRoute } from "./ui/ask.ts";
import { DiagnosticsPanel } from "./ui/diagnostics.ts";
import { formatBytes, formatMs, formatRate, h } from "./ui/dom.ts";
import { DocumentsPanel } from "./ui/documents.ts";
import { ExtractCard } from "./ui/extract-view.ts";
import { buildLayout, showAlert } from "./ui/layout.ts";
import { ModelCard } from "./ui/model-card.ts";
import { PassageDialog } from "./ui/passage.ts";
import type { AskOutcome, IndexStatsView, LoadPhases, SourceView } from "./workers/protocol.ts";

/** IndexedDB index name (database "hearth-rag:hearth-demo"). */
const INDEX_NAME = "hearth-demo";
/** KV-cache cap: RAG prompts are a few thousand tokens at most; a 32k cache would waste GPU memory. */
const MAX_CONTEXT = 4096;
/** Passages retrieved per question (the prompt keeps those that fit the context). */
const TOP_K = 6;

interface DemoState {
  phase: "loading" | "ready" | "error";
  plan: ModelPlan | null;
  gpu: Awaited<ReturnType<typeof probeGpu>> | null;
  ttiMs: number | null;
  embedderReadyMs: number | null;
  llmReadyMs: number | null;
  firstAnswer: { firstTokenMs: number; engineTtftMs: number; totalMs: number } | null;
  lastUsage: CompletionUsage | null;
  lastServerUsage: ServerUsage | null;
  /** Where the last answer was generated. */
  lastRoute: AnswerRoute | null;
  lastAnswer: (AskOutcome & { sources: SourceView[]; pieces: number }) | null;
  /** The last Extract: its record, or why there is none. */
  lastExtract: { record: ExtractRecord | null; error: string | null; sources: number; finishReason: string | null } | null;
  documents: DocumentRecord[];
  errors: string[];
  sw: string;
}

const state: DemoState = {
  phase: "loading",
  plan: null,
  gpu: null,
  ttiMs: null,
  embedderReadyMs: null,
  llmReadyMs: null,
  firstAnswer: null,
  lastUsage: null,
  lastServerUsage: null,
  lastRoute: null,
  lastAnswer: null,
  lastExtract: null,
  documents: [],
  errors: [],
  sw: "pending",
};
(window as unknown as { hearthDemo: DemoState }).hearthDemo = state;

// -- UI ------------------------------------------------------------------------------------------

const layout = buildLayout();
document.body.append(layout.root);
document.body.dataset["state"] = "loading";

const llmCard = new ModelCard("chat", "Chat model");
const embedCard = new ModelCard("embedder", "Text encoder");
layout.models.append(h("section", { class: "card" }, h("header", { class: "card-head" }, h("h2", null, "Models")), llmCard.el, embedCard.el));

const rag = new RagClient();
const passage = new PassageDialog();
document.body.append(passage.el);
const openSource = (s: SourceView) => passage.open(s, rag.passage(s.docId, s.start, s.end));

let current: CallHandle<AskOutcome> | null = null;
/** Stops a running Extract (its retrieval, then its generation). */
let stopExtract: (() => void) | null = null;
const askPanel = new AskPanel(
  (q) => void ask(q),
  () => {
    current?.cancel();
    stopExtract?.();
  },
  () => void extract(),
);
const docsPanel = new DocumentsPanel(
  (files) => void ingest(files),
  (doc) => void removeDoc(doc),
);
const diag = new DiagnosticsPanel();
layout.main.append(askPanel.el, diag.el);
layout.side.append(docsPanel.el);

/** The in-browser chat model's runner (set once it is loaded); the server's is made per question. */
let localRunner: ChatRunner | null = null;
/** The in-browser engine itself: Extract calls it with a response_format, which the runner does not carry. */
let localEngine: Engine | null = null;

function describeRoute(): void {
  const remote = layout.localOnly.serverAnswers;
  askPanel.setLocalOnly(!remote);
  diag.set(
    "route",
    remote
      ? `by the server (native TVM, ${layout.localOnly.serverModel}): questions and retrieved passages are sent to it`
      : `on this device${state.plan === null ? "" : state.plan.llm.target === "wasm-cpu" ? " (CPU)" : " (WebGPU)"} · local only`,
  );
}
layout.localOnly.onChange(describeRoute);
describeRoute();

function fail(kind: string, title: string, detail: string, hint?: string): void {
  state.errors.push(`${title}: ${detail}`);
  showAlert(layout.alerts, kind, title, detail, hint);
}

async function refreshStorage(): Promise<void> {
  try {
    const est = await navigator.storage.estimate();
    const persisted = await navigator.storage.persisted?.().catch(() => false);
    diag.set("storage", `${formatBytes(est.usage ?? null)} / ${formatBytes(est.quota ?? null)}${persisted ? " · persistent" : ""}`);
  } catch {
    diag.set("storage", "unavailable");
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function indexSummary(s: IndexStatsView): string {
  return `${plural(s.documents, "doc")} · ${plural(s.chunks, "chunk")} · ${formatBytes(s.bytes)} · ${s.embeddingModel}`;
}

async function refreshIndex(): Promise<void> {
  const [docs, stats] = await Promise.all([rag.list(), rag.stats()]);
  state.documents = docs;
  docsPanel.render(docs);
  diag.set("index", indexSummary(stats));
}

function checkInteractive(): void {
  if (state.embedderReadyMs === null || state.llmReadyMs === null || state.ttiMs !== null) return;
  state.ttiMs = performance.now();
  state.phase = "ready";
  document.body.dataset["state"] = "ready";
  diag.set("tti", formatMs(state.ttiMs), "from navigation start until both models were loaded and the question box was enabled");
  askPanel.setReady(true, state.documents.length === 0 ? "Ready. Add documents, then ask about them." : "Ready. Ask about your documents.");
  void refreshStorage();
  const plan = state.plan;
  if (plan !== null) {
    void warmOfflineCache(plan.indexUrl, [plan.llm.entry.url, plan.embedder.entry.url]).then((n) => {
      if (n > 0) diag.set("sw", `${state.sw} · model metadata cached (${n} files)`);
    });
  }
}

// -- startup -------------------------------------------------------------------------------------

async function start(): Promise<void> {
  void registerServiceWorker().then((s) => {
    state.sw = s;
    diag.set("sw", s);
  });
  const gpu = await probeGpu();
  state.gpu = gpu;
  diag.set(
    "adapter",
    gpu.adapter === null
      ? `none (${gpu.reason})`
      : [gpu.adapter.vendor, gpu.adapter.architecture, gpu.adapter.description].filter(Boolean).join(" · ") +
          (gpu.software !== null ? ` (software: ${gpu.software})` : ""),
  );
  diag.set("f16", gpu.available ? (gpu.shaderF16 ? "yes (f16 packages)" : "no (f32 packages)") : "–");
  void refreshStorage();

  let plan: ModelPlan;
  try {
    plan = await planModels(gpu);
  } catch (err) {
    planFailed(err, gpu);
    return;
  }
  state.plan = plan;
  if (!gpu.available) {
    showAlert(
      layout.alerts,
      "cpu-fallback",
      "No WebGPU: running on the CPU",
      `${gpu.reason}. The packages have a wasm-cpu build, so the models run on the CPU instead (much slower).`,
    );
  }
  const { llm, embedder } = plan;
  diag.set("backend", describeBackend(plan));
  const softwareNote = llm.note ?? embedder.note;
  if (softwareNote !== null) {
    showAlert(
      layout.alerts,
      "software-gpu",
      "Software WebGPU: running on the CPU build",
      `${softwareNote}: this WebGPU adapter emulates the GPU on the CPU, which is far slower than the models' WebAssembly CPU build.`,
      "Add ?webgpu=force to the address to use the software adapter anyway.",
    );
  }
  llmCard.setPackage(llm.entry.modelId, llm.entry.quantization, llm.target);
  embedCard.setPackage(embedder.entry.modelId, embedder.entry.quantization, embedder.target);
  diag.set(
    "llm",
    `${llm.entry.modelId} · ${llm.entry.quantization}${llm.variants.length > 1 ? ` (of ${llm.variants.join(", ")})` : ""} · ${formatBytes(llm.entry.bytes)}`,
  );
  diag.set(
    "embedder",
    `${embedder.entry.modelId} · ${embedder.entry.quantization}${embedder.variants.length > 1 ? ` (of ${embedder.variants.join(", ")})` : ""} · ${formatBytes(embedder.entry.bytes)}`,
  );
  addModelPicker(plan);
  describeRoute();
  // The optional server fallback (off unless `hearth serve --native-api`); only used when the user
  // turns "local only" off.
  void probeNativeApi().then((models) => {
    const model = models === null ? null : serverModelFor(models, llm.entry.url);
    layout.localOnly.setServer(
      model !== null
        ? { kind: "available", model }
        : {
            kind: "off",
            reason:
              models === null
                ? "the server's native API is off (start it with `hearth serve --native-api`)"
                : `the server has no native build of ${llm.entry.modelId}`,
          },
    );
  });

  let maxContext: number;
  try {
    maxContext = Math.min(MAX_CONTEXT, await readContextWindow(llm.entry.url));
  } catch (err) {
    const x = explainLoadError(err);
    llmCard.fail(x);
    fail("network", "Cannot read the chat model's configuration", errorMessage(err));
    return;
  }

  const chatLoad = loadChatEngine(llm.entry.url, { maxTotalSeqLen: maxContext, target: llm.target, onProgress: (e) => llmCard.onProgress(e) }).then(
    (chat: ChatEngine) => {
      state.llmReadyMs = performance.now();
      const info = chat.engine.model;
      llmCard.ready(info.loadMs);
      diag.set("llmLoad", `${formatMs(info.loadMs)} · context ${info.maxSequenceLength} tokens${info.adapter === null ? " · CPU" : ""}`);
      void chat.engine.stats().then((s) => {
        if (s.decoder !== null)
          diag.set(
            "llmLoad",
            `${formatMs(info.loadMs)} (${phases(s.decoder.load)}) · context ${info.maxSequenceLength} tokens${info.adapter === null ? " · CPU" : ""}`,
          );
      });
      localEngine = chat.engine;
      localRunner = chat.runner((usage) => {
        state.lastUsage = usage;
      });
      updateCacheDiag();
      checkInteractive();
    },
    (err: unknown) => {
      const x = explainLoadError(err);
      llmCard.fail(x);
      fail(x.kind, `Chat model: ${x.title}`, x.detail, x.hint);
      state.phase = "error";
      document.body.dataset["state"] = "error";
      askPanel.setReady(false, "The chat model could not be loaded; documents can still be added and searched once the encoder is ready.");
    },
  );

  const ragLoad = rag
    .init(INDEX_NAME, { url: embedder.entry.url, target: embedder.target }, { url: llm.entry.url, maxContext }, (e) => {
      if (e.type === "load") embedCard.onProgress({ phase: e.phase, ...e.detail });
    })
    .then(
      (r) => {
        state.embedderReadyMs = performance.now();
        embedCard.ready(r.embedder.loadMs);
        diag.set(
          "embedderLoad",
          `${formatMs(r.embedder.loadMs)} (${phases(r.embedder.phases)}) · dim ${r.embedder.dim} · ${r.chunkTokens}-token chunks · ${r.embedder.device}`,
        );
        embedderCache = r.embedder.cache;
        state.documents = r.documents;
        docsPanel.render(r.documents);
        docsPanel.setEnabled(true);
        diag.set("index", indexSummary(r.stats));
        if (state.llmReadyMs === null) askPanel.setReady(false, "Text encoder ready: you can add documents while the chat model loads.");
        updateCacheDiag();
        checkInteractive();
      },
      (err: unknown) => {
        const x = explainLoadError(err);
        embedCard.fail(x);
        fail(x.kind, `Text encoder: ${x.title}`, x.detail, x.hint);
        state.phase = "error";
        document.body.dataset["state"] = "error";
      },
    );
  await Promise.allSettled([chatLoad, ragLoad]);
}

/** Where each model runs and why: "chat: CPU (software WebGPU adapter (SwiftShader): using the CPU build; ?webgpu=force to override)". */
function describeBackend(plan: ModelPlan): string {
  const one = (c: ModelPlan["llm"]) => (c.target === "wasm-cpu" ? "CPU (wasm)" : "WebGPU") + (c.note === null ? "" : ` (${c.note}; ?webgpu=force to override)`);
  const [a, b] = [one(plan.llm), one(plan.embedder)];
  const forced = plan.forceWebGPU && state.gpu?.software != null ? ` · forced onto the software adapter (${state.gpu.software}) by ?webgpu=force` : "";
  return (a === b ? a : `chat: ${a} · encoder: ${b}`) + forced;
}

/** "files 1.2 s · shaders 20 s · upload 0.3 s" from the SDK's load timings. */
function phases(t: LoadPhases): string {
  return `files ${formatMs(t.fetchVerifyMs)} · shaders ${formatMs(t.pipelinesMs)} · upload ${formatMs(t.tensorCacheMs)}`;
}

/** No plan: say why, per model where we know which one is missing. */
function planFailed(err: unknown, gpu: NonNullable<DemoState["gpu"]>): void {
  state.phase = "error";
  document.body.dataset["state"] = "error";
  askPanel.setReady(false, "The models could not be loaded (see above).");
  if (!gpu.available) {
    fail(
      "webgpu",
      "WebGPU is not available",
      gpu.reason ?? "",
      "This demo runs its models on the GPU through WebGPU: use a current Chrome or Edge (or Safari 26, Firefox 141 on Windows) with hardware acceleration on. " +
        "Without WebGPU a model can only run on the CPU if its package has a wasm-cpu build (hearth compile --target wasm-cpu).",
    );
  }
  if (err instanceof PlanError) {
    const hint = gpu.available
      ? "Compile the demo packages with `make demo` (see docs/demo.md)."
      : "Compile it with `--target wasm-cpu` to run it without WebGPU.";
    const missing = new Set(err.problems.map((p) => p.kind));
    for (const p of err.problems)
      (p.kind === "chat" ? llmCard : embedCard).fail({ kind: "no-package", title: "No package this device can run", detail: p.message, hint });
    if (!missing.has("chat")) llmCard.skip("not loaded: the text encoder is missing");
    if (!missing.has("embedding")) embedCard.skip("not loaded: the chat model is missing");
    if (gpu.available) fail("no-package", "No model package to load", err.message, hint);
    return;
  }
  const x = explainLoadError(err);
  const unreachable = x.kind === "error";
  fail(
    unreachable ? "network" : x.kind,
    unreachable ? "Cannot read the model list" : x.title,
    x.detail,
    unreachable ? "Is `hearth serve` running? The first visit needs the server; after that the app works offline." : x.hint,
  );
  llmCard.fail(x);
  embedCard.fail(x);
}

let embedderCache: { filesFromCache: number; filesDownloaded: number; bytesFromCache: number; bytesDownloaded: number } | null = null;

function updateCacheDiag(): void {
  const parts: string[] = [];
  const t = llmCard.tally;
  if (state.llmReadyMs !== null)
    parts.push(`chat ${t.filesFromCache}/${t.filesFromCache + t.filesDownloaded} files (${formatBytes(t.bytesDownloaded)} downloaded)`);
  if (embedderCache !== null) {
    const e = embedderCache;
    parts.push(`encoder ${e.filesFromCache}/${e.filesFromCache + e.filesDownloaded} files (${formatBytes(e.bytesDownloaded)} downloaded)`);
  }
  diag.set("cache", parts.join(" · ") || "–");
}

function addModelPicker(plan: ModelPlan): void {
  if (plan.llmOptions.length < 2) return;
  const select = h(
    "select",
    { class: "model-picker", "aria-label": "Chat model" },
    ...plan.llmOptions.map((id) => h("option", { value: id, selected: id === plan.llm.entry.modelId }, id)),
  );
  select.addEventListener("change", () => {
    const url = new URL(location.href);
    url.searchParams.set("llm", select.value);
    location.href = url.href;
  });
  llmCard.el.querySelector("header")?.append(select);
}

// -- documents -----------------------------------------------------------------------------------

async function ingest(files: File[]): Promise<void> {
  const rows = files.map((f) => docsPanel.startIngest(f));
  const t0 = performance.now();
  const handle = rag.add(files, (e) => {
    if (e.type === "ingest") rows[e.index]?.progress(e.phase, e.embedded, e.chunks);
  });
  try {
    const results = await handle.result;
    let chunks = 0;
    results.forEach((r, i) => {
      const row = rows[i];
      if (row === undefined) return;
      if (r.status === "added" && r.document) {
        chunks += r.document.chunkCount;
        row.added(r.document, r.ms, r.warnings ?? []);
      } else if (r.status === "duplicate" && r.document) {
        row.duplicate(r.document);
      } else {
        row.failed(explainIngestError(r.error));
      }
    });
    const ms = performance.now() - t0;
    diag.set(
      "ingest",
      `${files.length} file${files.length === 1 ? "" : "s"} · ${chunks} chunks embedded · ${formatMs(ms)}${chunks > 0 ? ` · ${formatRate((chunks * 1000) / ms, "chunks/s")}` : ""}`,
    );
  } catch (err) {
    for (const row of rows) row.failed(explainIngestError(err));
  }
  await refreshIndex();
  void refreshStorage();
  if (state.ttiMs !== null) askPanel.setReady(true, "Ready. Ask about your documents.");
}

async function removeDoc(doc: DocumentRecord): Promise<void> {
  try {
    await rag.remove(doc.id);
  } catch (err) {
    fail("error", `Could not delete “${doc.title}”`, errorMessage(err));
  }
  await refreshIndex();
  void refreshStorage();
}

// -- asking --------------------------------------------------------------------------------------

/** This question's chat runner: the server's only when "local only" is off and the server offers it. */
function chooseRoute(): { route: AnswerRoute; runner: ChatRunner | null } {
  const model = layout.localOnly.serverModel;
  if (layout.localOnly.serverAnswers && model !== null) {
    return { route: { kind: "server", model }, runner: serverRunner(model, (u) => (state.lastServerUsage = u)) };
  }
  return { route: { kind: "device", backend: state.plan?.llm.target === "wasm-cpu" ? "CPU" : "WebGPU" }, runner: localRunner };
}

async function ask(question: string): Promise<void> {
  const { route, runner } = chooseRoute();
  rag.chat = runner;
  state.lastRoute = route;
  const turn = askPanel.newTurn(question, openSource, route);
  askPanel.setBusy(true);
  state.lastUsage = null;
  state.lastServerUsage = null;
  let sources: SourceView[] = [];
  let pieces = 0;
  const handle = rag.ask(question, TOP_K, (e) => {
    if (e.type === "sources") {
      sources = e.sources;
      turn.setSources(e.sources, e.dropped, e.retrievalMs);
      diag.set("retrieval", `${formatMs(e.retrievalMs)} · ${plural(e.sources.length, "source")} in the prompt (${e.promptTokens} tokens)`);
    } else if (e.type === "piece") {
      pieces++;
      turn.addPiece(e.text);
    }
  });
  current = handle;
  try {
    const out = await handle.result;
    const usage = state.lastUsage as CompletionUsage | null;
    const firstTokenMs = turn.firstPieceAt === null ? null : turn.firstPieceAt - turn.started;
    const totalMs = performance.now() - turn.started;
    state.lastAnswer = { ...out, sources, pieces };
    const metrics = [`first token ${formatMs(firstTokenMs)}`, `total ${formatMs(totalMs)}`];
    const server = state.lastServerUsage as ServerUsage | null;
    if (route.kind === "server" && server !== null) {
      // The server's timings include the network; they are not the device's, so the prefill/decode rows stay as they were.
      metrics.push(`${server.completionTokens} tokens`, `server ${server.model}`);
    }
    if (usage !== null) {
      metrics.push(`${usage.completion_tokens} tokens`, `prefill ${formatRate(usage.prefill_tokens_per_s)}`, `decode ${formatRate(usage.decode_tokens_per_s)}`);
      diag.set("ttft", `${formatMs(usage.time_to_first_token_ms)} in the engine · ${formatMs(firstTokenMs)} from the question`);
      diag.set(
        "prefill",
        `${formatRate(usage.prefill_tokens_per_s)} · ${usage.prompt_tokens} prompt tokens (${usage.prompt_tokens_details.cached_tokens} reused from the KV cache)`,
      );
      diag.set("decode", `${formatRate(usage.decode_tokens_per_s)} · ${usage.completion_tokens} tokens`);
      if (state.firstAnswer === null && firstTokenMs !== null) {
        state.firstAnswer = { firstTokenMs, engineTtftMs: usage.time_to_first_token_ms, totalMs };
        diag.set(
          "firstInference",
          `${formatMs(firstTokenMs)} from the question (${formatMs(usage.time_to_first_token_ms)} in the engine) · answer done in ${formatMs(totalMs)}`,
        );
      }
    }
    turn.finish(out.cited, metrics, out.citedBy, out.unsupported);
  } catch (err) {
    const name = (err as { name?: string }).name;
    const explained = explainLoadError(err);
    if (name === "AbortError") turn.fail("Stopped.", "");
    // Its message is the whole sentence ("Your question is too long (31,032 characters); ...").
    else if (explained.kind === "question-too-long") turn.fail("", explained.detail);
    else turn.fail(explained.title + ":", errorMessage(err));
  } finally {
    current = null;
    askPanel.setBusy(false);
  }
}

// -- extract -------------------------------------------------------------------------------------

/**
 * The Extract action: the RAG worker retrieves passages for a fixed query and builds the prompt; the
 * engine fills the record under a JSON Schema (extract.ts); the card shows it as a table with citations.
 * Always on this device: the server route has no response_format.
 */
async function extract(): Promise<void> {
  const card = new ExtractCard(openSource);
  askPanel.prependCard(card.el);
  const failed = (title: string, detail: string) => {
    state.lastExtract = { record: null, error: `${title} ${detail}`.trim(), sources: 0, finishReason: null };
    card.fail(title, detail);
  };
  if (state.documents.length === 0) {
    failed("No document loaded.", "Add a PDF, Markdown, HTML or text document first; Extract reads the passages retrieved from it.");
    return;
  }
  const engine = localEngine;
  if (engine === null) {
    failed("The chat model is not loaded.", "Wait until it is ready, then press Extract again.");
    return;
  }
  askPanel.setBusy(true);
  const controller = new AbortController();
  const spec = extractRetrieveSpec(engine.model.maxSequenceLength);
  const retrieval = rag.retrieve(spec);
  stopExtract = () => {
    retrieval.cancel();
    controller.abort(new DOMException("cancelled by the user", "AbortError"));
  };
  try {
    const found = await retrieval.result;
    card.setSources(found.sources, found.dropped, found.retrievalMs);
    if (found.sources.length === 0) {
      failed("No passage found.", "The search found nothing to read in your documents.");
      return;
    }
    const reply = await engine.chat.completions.create(buildExtractRequest(found.messages, spec.maxAnswerTokens), { signal: controller.signal });
    const choice = reply.choices[0];
    if (choice === undefined) {
      failed("No reply.", "The model returned no choice.");
      return;
    }
    const parsed = parseExtractReply(choice, spec.maxAnswerTokens);
    const totalMs = performance.now() - card.started;
    if (!parsed.ok) {
      state.lastExtract = { record: null, error: parsed.message, sources: found.sources.length, finishReason: choice.finish_reason };
      card.fail(parsed.reason === "stopped" ? "" : "No record:", parsed.message);
      return;
    }
    state.lastExtract = { record: parsed.record, error: null, sources: found.sources.length, finishReason: choice.finish_reason };
    const u = reply.usage;
    card.show(citeRecord(parsed.record, found.sources), [
      `total ${formatMs(totalMs)}`,
      `${found.promptTokens} prompt tokens`,
      ...(u == null ? [] : [`${u.completion_tokens} tokens`, `decode ${formatRate(u.decode_tokens_per_s)}`]),
    ]);
  } catch (err) {
    const name = (err as { name?: string }).name;
    if (name === "AbortError") failed("", "Stopped.");
    else if (name === "PromptTooLongError") failed("The chat model's context is too small for Extract:", errorMessage(err));
    else {
      const x = explainLoadError(err);
      failed(`${x.title}:`, errorMessage(err));
    }
  } finally {
    stopExtract = null;
    askPanel.setBusy(false);
  }
}

void start().catch((err: unknown) => {
  const x = explainLoadError(err);
  fail(x.kind, x.title, x.detail, x.hint);
  state.phase = "error";
  document.body.dataset["state"] = "error";
});
