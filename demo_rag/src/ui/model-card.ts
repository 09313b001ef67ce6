/**
 * Load progress of one model package, phase by phase, from the SDK loader's events:
 * manifest -> download* / verify* (interleaved) -> shader-compile* -> gpu-upload* -> ready
 * (then, for the chat engine, tokenizer -> engine-ready).
 */
import type { Explained } from "../errors.ts";
import { formatBytes, formatMs, h } from "./dom.ts";

type Step = "download" | "verify" | "shader-compile" | "gpu-upload";
const STEPS: { id: Step; label: string }[] = [
  { id: "download", label: "Download" },
  { id: "verify", label: "Verify (SHA-256)" },
  { id: "shader-compile", label: "Shader compile" },
  { id: "gpu-upload", label: "GPU upload" },
];

export interface CacheTally {
  filesFromCache: number;
  filesDownloaded: number;
  bytesFromCache: number;
  bytesDownloaded: number;
}

export class ModelCard {
  readonly el: HTMLElement;
  private readonly nameEl: HTMLElement;
  private readonly stateEl: HTMLElement;
  private readonly rows = new Map<Step, { row: HTMLElement; bar: HTMLProgressElement; text: HTMLElement }>();
  private readonly errorEl: HTMLElement;
  readonly tally: CacheTally = { filesFromCache: 0, filesDownloaded: 0, bytesFromCache: 0, bytesDownloaded: 0 };
  private readonly t0 = performance.now();

  constructor(
    readonly role: "chat" | "embedder",
    title: string,
  ) {
    this.nameEl = h("span", { class: "model-name" }, "…");
    this.stateEl = h("span", { class: "pill pill-busy" }, "waiting");
    const list = h("ol", { class: "steps" });
    for (const s of STEPS) {
      const bar = h("progress", { max: 1, value: 0 });
      const text = h("span", { class: "step-text" }, "");
      const row = h("li", { class: "step", dataset: { state: "pending", step: s.id } }, h("span", { class: "step-label" }, s.label), bar, text);
      this.rows.set(s.id, { row, bar, text });
      list.append(row);
    }
    this.errorEl = h("div", { class: "card-error", hidden: true });
    this.el = h(
      "section",
      { class: "model-card", dataset: { role, state: "loading" } },
      h("header", null, h("span", { class: "model-role" }, title), this.stateEl),
      this.nameEl,
      list,
      this.errorEl,
    );
  }

  setPackage(modelId: string, quantization: string, target: string): void {
    this.nameEl.textContent = `${modelId} · ${quantization}${target === "wasm-cpu" ? " · CPU (wasm)" : ""}`;
    this.setState("loading", "loading");
  }

  private setState(state: string, label: string): void {
    this.el.dataset["state"] = state;
    this.stateEl.textContent = label;
    this.stateEl.className = `pill ${state === "ready" ? "pill-ok" : state === "error" ? "pill-bad" : "pill-busy"}`;
  }

  private step(id: Step, fraction: number, text: string, done = false): void {
    const r = this.rows.get(id);
    if (r === undefined) return;
    // Earlier steps are finished once a later one starts.
    const order = STEPS.findIndex((s) => s.id === id);
    STEPS.forEach((s, i) => {
      const other = this.rows.get(s.id);
      if (other !== undefined && i < order && other.row.dataset["state"] !== "done" && s.id !== "download" && s.id !== "verify") {
        other.row.dataset["state"] = "done";
        other.bar.value = 1;
      }
    });
    r.bar.value = Math.max(0, Math.min(1, fraction));
    r.text.textContent = text;
    r.row.dataset["state"] = done || fraction >= 1 ? "done" : "active";
  }

  /** One SDK load progress event (LoadProgress, or the engine's extra phases). */
  onProgress(e: { phase: string; [k: string]: unknown }): void {
    const n = (k: string): number => (typeof e[k] === "number" ? (e[k] as number) : 0);
    switch (e.phase) {
      case "manifest":
        this.stateEl.textContent = e["offline"] === true ? "offline: stored package" : "checking package";
        break;
      case "download":
        this.step(
          "download",
          n("totalBytes") > 0 ? n("loadedBytes") / n("totalBytes") : 1,
          `${formatBytes(n("loadedBytes"))} / ${formatBytes(n("totalBytes"))}`,
        );
        this.stateEl.textContent = "downloading";
        break;
      case "verify":
        if (e["source"] === "cache") {
          this.tally.filesFromCache++;
        } else {
          this.tally.filesDownloaded++;
        }
        this.step("verify", n("fileCount") > 0 ? n("filesDone") / n("fileCount") : 1, `${n("filesDone")} / ${n("fileCount")} files`);
        if (this.tally.filesDownloaded === 0) this.step("download", 1, "all files in the local store", true);
        this.stateEl.textContent = "verifying";
        break;
      case "shader-compile": {
        const done = e["done"];
        const total = e["total"];
        this.step("download", 1, this.rows.get("download")?.text.textContent || "done", true);
        this.step("verify", 1, this.rows.get("verify")?.text.textContent || "done", true);
        this.step(
          "shader-compile",
          n("progress"),
          typeof done === "number" && typeof total === "number" ? `${done} / ${total} pipelines` : `${Math.round(n("progress") * 100)}%`,
        );
        this.stateEl.textContent = "compiling shaders";
        break;
      }
      case "gpu-upload":
        this.step(
          "gpu-upload",
          n("shardCount") > 0 ? n("shardsDone") / n("shardCount") : 1,
          `${n("shardsDone")} / ${n("shardCount")} shards${e["device"] === "cpu" ? " (CPU)" : ""}`,
        );
        this.stateEl.textContent = e["device"] === "cpu" ? "loading weights (CPU)" : "uploading to GPU";
        break;
      case "ready":
        this.tally.bytesDownloaded = n("downloadedBytes");
        this.tally.bytesFromCache = n("cachedBytes");
        for (const s of STEPS) {
          const r = this.rows.get(s.id);
          if (r !== undefined && r.row.dataset["state"] !== "done") this.step(s.id, 1, r.text.textContent || "done", true);
        }
        break;
      case "tokenizer":
        this.stateEl.textContent = "tokenizer";
        break;
      case "reembed":
        this.stateEl.textContent = `re-embedding ${n("documents")} / ${n("total")}`;
        break;
      default:
        break;
    }
  }

  ready(loadMs?: number): void {
    for (const s of STEPS) {
      const r = this.rows.get(s.id);
      if (r !== undefined && r.row.dataset["state"] !== "done") {
        r.bar.value = 1;
        r.row.dataset["state"] = "done";
        if (r.text.textContent === "") r.text.textContent = "done";
      }
    }
    this.setState("ready", `ready in ${formatMs(loadMs ?? performance.now() - this.t0)}`);
  }

  /** Not loaded at all (the other model is missing, so there is no point). */
  skip(reason: string): void {
    this.setState("error", "not loaded");
    this.el.dataset["state"] = "skipped";
    this.nameEl.textContent = reason;
  }

  fail(x: Explained): void {
    if (this.nameEl.textContent === "…") this.nameEl.textContent = "";
    this.setState("error", "failed");
    this.errorEl.hidden = false;
    this.errorEl.replaceChildren(h("strong", null, x.title), h("p", null, x.detail), ...(x.hint ? [h("p", { class: "hint" }, x.hint)] : []));
  }
}
