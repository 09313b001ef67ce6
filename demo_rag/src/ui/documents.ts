/**
 * Documents panel: drop zone + file picker, per-file ingest progress and refusals, the indexed
 * documents with delete.
 */
import type { DocumentRecord } from "@hearth/sdk/rag";
import type { Explained } from "../errors.ts";
import { formatBytes, formatMs, h } from "./dom.ts";

const ACCEPT = ".pdf,.md,.markdown,.html,.htm,.txt,.text,application/pdf,text/markdown,text/html,text/plain";

const PHASES: Record<string, string> = {
  queued: "queued",
  extract: "extracting text",
  chunk: "chunking",
  embed: "embedding",
  store: "saving",
  done: "added",
  duplicate: "already indexed",
  failed: "refused",
};

function kindOf(mime: string): string {
  if (mime === "application/pdf") return "PDF";
  if (mime === "text/markdown") return "MD";
  if (mime === "text/html") return "HTML";
  return "TXT";
}

export interface IngestRow {
  progress(phase: string, embedded?: number, chunks?: number): void;
  added(doc: DocumentRecord, ms: number, warnings: string[]): void;
  duplicate(doc: DocumentRecord): void;
  failed(x: Explained): void;
}

export class DocumentsPanel {
  readonly el: HTMLElement;
  private readonly input: HTMLInputElement;
  private readonly drop: HTMLElement;
  private readonly queue: HTMLElement;
  private readonly list: HTMLElement;
  private readonly summary: HTMLElement;
  private enabled = false;

  constructor(
    private readonly onFiles: (files: File[]) => void,
    private readonly onDelete: (doc: DocumentRecord) => void,
  ) {
    this.input = h("input", { type: "file", multiple: true, accept: ACCEPT, class: "visually-hidden", id: "file-input", "aria-label": "Add documents" });
    this.input.addEventListener("change", () => {
      const files = [...(this.input.files ?? [])];
      this.input.value = "";
      if (files.length > 0) this.onFiles(files);
    });
    const pick = h("button", { type: "button", class: "btn", onclick: () => this.input.click() }, "Choose files");
    this.drop = h(
      "div",
      { class: "dropzone", dataset: { enabled: "false" }, tabindex: 0, role: "button", "aria-label": "Drop documents here or choose files" },
      h("div", { class: "drop-title" }, "Drop documents here"),
      h("div", { class: "drop-sub" }, "PDF, Markdown, HTML or text · stays on this device"),
      pick,
      this.input,
    );
    this.drop.addEventListener("keydown", (e) => {
      if ((e.key === "Enter" || e.key === " ") && this.enabled) this.input.click();
    });
    for (const type of ["dragenter", "dragover"] as const) {
      this.drop.addEventListener(type, (e) => {
        e.preventDefault();
        if (this.enabled) this.drop.classList.add("over");
      });
    }
    this.drop.addEventListener("dragleave", () => this.drop.classList.remove("over"));
    this.drop.addEventListener("drop", (e) => {
      e.preventDefault();
      this.drop.classList.remove("over");
      if (!this.enabled) return;
      const files = [...(e.dataTransfer?.files ?? [])];
      if (files.length > 0) this.onFiles(files);
    });
    this.queue = h("ul", { class: "ingest-queue", "aria-live": "polite" });
    this.summary = h("span", { class: "muted" }, "");
    this.list = h("ul", { class: "doc-list", id: "doc-list" });
    this.el = h(
      "section",
      { class: "card documents" },
      h("header", { class: "card-head" }, h("h2", null, "Documents"), this.summary),
      this.drop,
      this.queue,
      this.list,
    );
    this.setEnabled(false);
  }

  setEnabled(on: boolean): void {
    this.enabled = on;
    this.drop.dataset["enabled"] = String(on);
    this.input.disabled = !on;
    for (const b of this.drop.querySelectorAll("button")) b.disabled = !on;
    this.drop.title = on ? "" : "Waiting for the text encoder to load";
  }

  render(docs: DocumentRecord[]): void {
    const sorted = [...docs].sort((a, b) => b.createdAt - a.createdAt);
    this.summary.textContent = docs.length === 0 ? "" : `${docs.length} indexed · ${formatBytes(docs.reduce((n, d) => n + d.bytes, 0))}`;
    if (sorted.length === 0) {
      this.list.replaceChildren(h("li", { class: "empty" }, "No documents yet. Add a few, then ask a question about them."));
      return;
    }
    this.list.replaceChildren(
      ...sorted.map((d) =>
        h(
          "li",
          { class: "doc", dataset: { docId: d.id } },
          h("span", { class: `doc-kind kind-${kindOf(d.mime).toLowerCase()}` }, kindOf(d.mime)),
          h(
            "div",
            { class: "doc-main" },
            h("div", { class: "doc-title", title: d.title }, d.title),
            h(
              "div",
              { class: "doc-meta" },
              [
                d.pages === null ? null : `${d.pages} page${d.pages === 1 ? "" : "s"}`,
                `${d.chunkCount} chunk${d.chunkCount === 1 ? "" : "s"}`,
                formatBytes(d.bytes),
              ]
                .filter(Boolean)
                .join(" · "),
            ),
          ),
          h(
            "button",
            { type: "button", class: "icon-btn", title: `Delete ${d.title}`, "aria-label": `Delete ${d.title}`, onclick: () => this.onDelete(d) },
            "✕",
          ),
        ),
      ),
    );
  }

  /** A row in the ingest queue for one file. */
  startIngest(file: File): IngestRow {
    const bar = h("progress", { max: 1, value: 0 });
    const status = h("span", { class: "ingest-status" }, PHASES["queued"] as string);
    const detail = h("div", { class: "ingest-detail", hidden: true });
    const row = h(
      "li",
      { class: "ingest", dataset: { state: "busy", name: file.name } },
      h("div", { class: "ingest-line" }, h("span", { class: "ingest-name", title: file.name }, file.name), status),
      bar,
      detail,
    );
    this.queue.prepend(row);
    const finish = (state: string, text: string, remove: boolean) => {
      row.dataset["state"] = state;
      status.textContent = text;
      bar.remove();
      if (remove) setTimeout(() => row.remove(), 6000);
    };
    return {
      progress: (phase, embedded, chunks) => {
        const order = ["extract", "chunk", "embed", "store"];
        const i = order.indexOf(phase);
        let f = i < 0 ? 0 : i / order.length;
        if (phase === "embed" && embedded !== undefined && chunks) f = (2 + embedded / chunks) / order.length;
        bar.value = f;
        status.textContent = phase === "embed" && chunks ? `embedding ${embedded ?? 0}/${chunks}` : (PHASES[phase] ?? phase);
      },
      added: (doc, ms, warnings) => {
        finish("ok", `added · ${doc.chunkCount} chunk${doc.chunkCount === 1 ? "" : "s"} · ${formatMs(ms)}`, warnings.length === 0);
        if (warnings.length > 0) {
          detail.hidden = false;
          detail.textContent = warnings.join(" ");
        }
      },
      duplicate: (doc) => finish("dup", `already indexed as “${doc.title}”`, true),
      failed: (x) => {
        finish("bad", x.title, false);
        detail.hidden = false;
        detail.replaceChildren(h("span", null, x.detail), ...(x.hint ? [h("span", { class: "hint" }, ` ${x.hint}`)] : []));
        const close = h("button", { type: "button", class: "icon-btn small", "aria-label": "Dismiss", onclick: () => row.remove() }, "✕");
        row.querySelector(".ingest-line")?.append(close);
      },
    };
  }
}
