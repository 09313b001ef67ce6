/**
 * Question box and answers. Each question becomes a "turn": the retrieved sources (shown as soon as
 * retrieval is done), then the answer streaming in, with every [n] marker turned into a button that
 * opens source n's passage. Model output is only ever inserted as text (never as HTML).
 */
import type { SourceView } from "../workers/protocol.ts";
import { formatMs, h } from "./dom.ts";

const MARKER = /\[(\s*\d{1,4}\s*(?:[-\u2013]\s*\d{1,4}\s*)?(?:[,;]\s*\d{1,4}\s*(?:[-\u2013]\s*\d{1,4}\s*)?)*)\](?!\()/gu;

function numbersOf(inner: string): number[] {
  const out: number[] = [];
  for (const part of inner.split(/[,;]/u)) {
    const range = /^\s*(\d+)\s*[-\u2013]\s*(\d+)\s*$/u.exec(part);
    if (range !== null && Number(range[2]) >= Number(range[1]) && Number(range[2]) - Number(range[1]) <= 50) {
      for (let i = Number(range[1]); i <= Number(range[2]); i++) out.push(i);
    } else {
      out.push(Number(part.trim()));
    }
  }
  return out;
}

function pagesLabel(s: { page: number | null; pageEnd: number | null }): string {
  if (s.page === null) return "";
  return s.pageEnd !== null && s.pageEnd !== s.page ? `pages ${s.page}–${s.pageEnd}` : `page ${s.page}`;
}

export class Turn {
  readonly el: HTMLElement;
  private readonly answerEl: HTMLElement;
  private readonly sourcesEl: HTMLElement;
  private readonly statusEl: HTMLElement;
  private readonly metricsEl: HTMLElement;
  private sources: SourceView[] = [];
  private text = "";
  readonly started = performance.now();
  firstPieceAt: number | null = null;

  constructor(
    question: string,
    private readonly openSource: (s: SourceView) => void,
  ) {
    this.statusEl = h("span", { class: "turn-status" }, "searching your documents…");
    this.answerEl = h("div", { class: "answer", dataset: { state: "waiting" }, "aria-live": "polite" });
    this.sourcesEl = h("ol", { class: "sources" });
    this.metricsEl = h("div", { class: "turn-metrics" });
    this.el = h(
      "article",
      { class: "turn", dataset: { state: "retrieving" } },
      h("div", { class: "question" }, h("span", { class: "q-mark" }, "Q"), h("span", null, question)),
      this.statusEl,
      this.answerEl,
      h("div", { class: "sources-head" }, "Sources"),
      this.sourcesEl,
      this.metricsEl,
    );
  }

  setSources(sources: SourceView[], dropped: number, retrievalMs: number): void {
    this.sources = sources;
    this.el.dataset["state"] = "generating";
    this.statusEl.textContent = `found ${sources.length} source${sources.length === 1 ? "" : "s"} in ${formatMs(retrievalMs)}${dropped > 0 ? ` (${dropped} more did not fit the model's context)` : ""} · generating on this device…`;
    if (sources.length === 0) {
      this.sourcesEl.replaceChildren(h("li", { class: "empty" }, "No passage in your documents matched. Add documents, or rephrase the question."));
      return;
    }
    this.sourcesEl.replaceChildren(
      ...sources.map((s) => {
        const snippet = s.text.replace(/\s+/gu, " ").trim();
        return h(
          "li",
          { class: "source", dataset: { n: String(s.n), docId: s.docId, page: s.page === null ? "" : String(s.page) } },
          h("button", { type: "button", class: "cite", dataset: { n: String(s.n) }, title: `Open source ${s.n}`, onclick: () => this.openSource(s) }, `[${s.n}]`),
          h(
            "div",
            { class: "source-main" },
            h(
              "button",
              { type: "button", class: "source-title linklike", onclick: () => this.openSource(s) },
              s.title,
              s.page === null ? null : h("span", { class: "source-page" }, ` · ${pagesLabel(s)}`),
            ),
            h("div", { class: "source-snippet" }, snippet.length > 220 ? `${snippet.slice(0, 220)}…` : snippet),
          ),
        );
      }),
    );
  }

  addPiece(piece: string): void {
    if (this.firstPieceAt === null) this.firstPieceAt = performance.now();
    this.text += piece;
    this.answerEl.dataset["state"] = "streaming";
    this.renderAnswer();
  }

  private renderAnswer(final = false): void {
    const nodes: (Node | string)[] = [];
    const text = final ? this.text.trim() : this.text.trimStart();
    let last = 0;
    for (const m of text.matchAll(MARKER)) {
      const at = m.index ?? 0;
      nodes.push(text.slice(last, at));
      for (const n of numbersOf(m[1] as string)) {
        const source = this.sources.find((s) => s.n === n);
        nodes.push(
          source === undefined
            ? h("span", { class: "cite invalid", title: "the model cited a source it was not given" }, `[${n}]`)
            : h("button", { type: "button", class: "cite", dataset: { n: String(n) }, title: `${source.title}${source.page === null ? "" : `, ${pagesLabel(source)}`}`, onclick: () => this.openSource(source) }, `[${n}]`),
        );
      }
      last = at + m[0].length;
    }
    nodes.push(text.slice(last));
    this.answerEl.replaceChildren(...nodes);
  }

  finish(cited: number[], metrics: string[]): void {
    this.el.dataset["state"] = "done";
    this.answerEl.dataset["state"] = "done";
    this.renderAnswer(true);
    if (this.text.trim() === "") this.answerEl.replaceChildren(h("span", { class: "muted" }, "(the model returned no text)"));
    for (const li of this.sourcesEl.querySelectorAll<HTMLElement>("li.source")) {
      if (cited.includes(Number(li.dataset["n"]))) {
        li.classList.add("cited");
        li.querySelector(".source-main")?.append(h("span", { class: "badge" }, "cited"));
      }
    }
    this.statusEl.textContent = cited.length > 0 ? `answer cites ${cited.map((n) => `[${n}]`).join(" ")}` : "answered · the model cited no source by number; the sources below are what it was given";
    this.metricsEl.textContent = metrics.join(" · ");
  }

  fail(title: string, detail: string): void {
    this.el.dataset["state"] = "error";
    this.statusEl.textContent = "";
    this.answerEl.dataset["state"] = "error";
    this.answerEl.append(h("div", { class: "inline-error" }, h("strong", null, title), ` ${detail}`));
  }
}

export class AskPanel {
  readonly el: HTMLElement;
  private readonly input: HTMLTextAreaElement;
  private readonly askBtn: HTMLButtonElement;
  private readonly stopBtn: HTMLButtonElement;
  private readonly turns: HTMLElement;
  private readonly hint: HTMLElement;
  private readonly intro: HTMLElement;
  private ready = false;
  private busy = false;

  constructor(
    private readonly onAsk: (question: string) => void,
    private readonly onStop: () => void,
  ) {
    this.input = h("textarea", { id: "question", rows: 2, placeholder: "Ask a question about your documents…", "aria-label": "Question" });
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener("input", () => this.update());
    this.askBtn = h("button", { type: "submit", class: "btn btn-primary", id: "ask" }, "Ask");
    this.stopBtn = h("button", { type: "button", class: "btn", id: "stop", hidden: true, onclick: () => this.onStop() }, "Stop");
    this.hint = h("div", { class: "ask-hint muted" }, "Loading models…");
    const form = h("form", { class: "ask-form", onsubmit: (e: Event) => (e.preventDefault(), this.submit()) }, this.input, h("div", { class: "ask-actions" }, this.stopBtn, this.askBtn));
    this.turns = h("div", { class: "turns", id: "turns" });
    this.intro = h(
      "div",
      { class: "intro" },
      h("h2", null, "Private answers from your own documents"),
      h(
        "ol",
        null,
        h("li", null, h("strong", null, "Add documents."), " PDF, Markdown, HTML or text. They are read, split into passages and embedded by a text encoder running in this tab, then stored in this browser."),
        h("li", null, h("strong", null, "Ask a question."), " The passages closest to it are found locally (keyword + vector search) and handed to a small language model running on this device."),
        h("li", null, h("strong", null, "Check the sources."), " Each [n] in the answer opens the passage it came from, with its page."),
      ),
      h("p", { class: "muted" }, "No document, question or answer is sent to a server. After the first visit this works offline."),
    );
    this.el = h("section", { class: "card ask" }, form, this.hint, this.intro, this.turns);
    this.update();
  }

  private submit(): void {
    const q = this.input.value.trim();
    if (!this.ready || this.busy || q === "") return;
    this.onAsk(q);
  }

  private update(): void {
    this.askBtn.disabled = !this.ready || this.busy || this.input.value.trim() === "";
    this.stopBtn.hidden = !this.busy;
  }

  setReady(ready: boolean, hint: string): void {
    this.ready = ready;
    this.hint.textContent = hint;
    this.update();
  }

  setBusy(busy: boolean): void {
    this.busy = busy;
    this.input.readOnly = busy;
    if (!busy) this.input.focus();
    this.update();
  }

  newTurn(question: string, openSource: (s: SourceView) => void): Turn {
    const turn = new Turn(question, openSource);
    this.intro.remove();
    this.turns.prepend(turn.el);
    this.input.value = "";
    this.update();
    return turn;
  }
}
