/** Diagnostics: a list of named values the rest of the app fills in as it learns them. */
import { h } from "./dom.ts";

export const DIAG_ROWS = [
  ["adapter", "GPU adapter"],
  ["f16", "shader-f16"],
  ["backend", "Models run on"],
  ["llm", "Chat model"],
  ["embedder", "Text encoder"],
  ["route", "Answers generated"],
  ["tti", "Time to interactive"],
  ["llmLoad", "Chat model load"],
  ["embedderLoad", "Encoder load"],
  ["cache", "Model files from local store"],
  ["firstInference", "First answer: first token"],
  ["ttft", "Last answer: time to first token"],
  ["prefill", "Prefill"],
  ["decode", "Decode"],
  ["retrieval", "Retrieval"],
  ["ingest", "Last ingest"],
  ["index", "Index"],
  ["storage", "Storage used / quota"],
  ["sw", "Offline (service worker)"],
] as const;

export type DiagKey = (typeof DIAG_ROWS)[number][0];

export class DiagnosticsPanel {
  readonly el: HTMLElement;
  private readonly values = new Map<DiagKey, HTMLElement>();

  constructor() {
    const dl = h("dl", { class: "diag" });
    for (const [key, label] of DIAG_ROWS) {
      const dd = h("dd", { dataset: { key } }, "–");
      this.values.set(key, dd);
      dl.append(h("dt", null, label), dd);
    }
    this.el = h("details", { class: "card diagnostics", id: "diagnostics", open: true }, h("summary", null, h("h2", null, "Diagnostics")), dl);
  }

  set(key: DiagKey, value: string, title?: string): void {
    const dd = this.values.get(key);
    if (dd === undefined) return;
    dd.textContent = value;
    if (title !== undefined) dd.title = title;
  }
}
