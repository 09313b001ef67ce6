/** The passage viewer: a modal <dialog> with the cited span highlighted inside its surrounding text. */
import type { PassageView, SourceView } from "../workers/protocol.ts";
import { h } from "./dom.ts";

export class PassageDialog {
  readonly el: HTMLDialogElement;
  private readonly titleEl: HTMLElement;
  private readonly metaEl: HTMLElement;
  private readonly bodyEl: HTMLElement;

  constructor() {
    this.titleEl = h("h2", { id: "passage-title" });
    this.metaEl = h("div", { class: "passage-meta" });
    this.bodyEl = h("div", { class: "passage-body", tabindex: 0 });
    const close = h("button", { type: "button", class: "icon-btn", "aria-label": "Close", onclick: () => this.el.close() }, "✕");
    this.el = h(
      "dialog",
      { class: "passage", id: "passage", "aria-labelledby": "passage-title" },
      h("header", null, this.titleEl, close),
      this.metaEl,
      this.bodyEl,
    );
    // A click on the backdrop (outside the dialog box) closes it.
    this.el.addEventListener("click", (e) => {
      if (e.target === this.el) this.el.close();
    });
  }

  /** Open with the source right away, then fill in the surrounding text when it arrives. */
  open(source: SourceView, load: Promise<PassageView>): void {
    this.titleEl.textContent = `[${source.n}] ${source.title}`;
    const page =
      source.page === null
        ? null
        : source.pageEnd !== null && source.pageEnd !== source.page
          ? `Pages ${source.page}–${source.pageEnd}`
          : `Page ${source.page}`;
    this.metaEl.replaceChildren(
      page === null ? "" : h("span", { class: "passage-page", dataset: { page: String(source.page) } }, page),
      h("span", { class: "muted" }, `characters ${source.start}–${source.end} of the extracted text`),
    );
    this.bodyEl.replaceChildren(h("mark", null, source.text));
    if (!this.el.open) this.el.showModal();
    load.then(
      (p) => {
        if (!this.el.open || !this.titleEl.textContent?.startsWith(`[${source.n}] `)) return;
        const mark = h("mark", { id: "passage-mark" }, p.passage);
        this.bodyEl.replaceChildren(p.before.length > 0 ? `…${p.before}` : "", mark, p.after.length > 0 ? `${p.after}…` : "");
        mark.scrollIntoView({ block: "center" });
      },
      (err: unknown) => {
        this.bodyEl.append(h("p", { class: "inline-error" }, `Could not load the surrounding text: ${err instanceof Error ? err.message : String(err)}`));
      },
    );
  }
}
