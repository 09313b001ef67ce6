/**
 * The "Local only" indicator and switch (header). On by default, persisted in localStorage.
 *
 * The indicator must never claim more than is true: it reads "Local only" unless answers really
 * go to the server, i.e. the switch is off AND the server offers its native API for this chat model.
 * With the switch off but no server API, nothing is sent, so it still says "Local only" and tells
 * why the switch has no effect.
 */
import { h } from "./dom.ts";

const STORAGE_KEY = "hearth-demo:local-only";

export type ServerState = { kind: "checking" } | { kind: "off"; reason: string } | { kind: "available"; model: string };

function readPreference(): boolean {
  try {
    return localStorage.getItem(STORAGE_KEY) !== "off";
  } catch {
    return true; // storage blocked: the safe default
  }
}

export class LocalOnlyIndicator {
  readonly el: HTMLDetailsElement;
  private readonly label: HTMLElement;
  private readonly input: HTMLInputElement;
  private readonly serverNote: HTMLElement;
  private readonly privacy: HTMLElement;
  private localOnlyPref = readPreference();
  private server: ServerState = { kind: "checking" };
  private readonly listeners: (() => void)[] = [];

  constructor() {
    this.label = h("span", { class: "local-label" }, "Local only");
    this.input = h("input", { type: "checkbox", role: "switch", id: "local-only-switch", checked: this.localOnlyPref, disabled: true });
    this.input.addEventListener("change", () => {
      this.localOnlyPref = this.input.checked;
      try {
        localStorage.setItem(STORAGE_KEY, this.localOnlyPref ? "on" : "off");
      } catch {
        // not persisted; the choice still holds for this page
      }
      this.render();
      for (const f of this.listeners) f();
    });
    this.serverNote = h("p", { class: "muted server-note" }, "Checking whether the server offers a fallback…");
    this.privacy = h("div", { class: "local-privacy" });
    this.el = h(
      "details",
      { class: "local-only", id: "local-only" },
      h("summary", null, h("span", { class: "dot", "aria-hidden": "true" }), this.label),
      h(
        "div",
        { class: "local-pop" },
        this.privacy,
        h(
          "label",
          { class: "switch-row" },
          this.input,
          h(
            "span",
            null,
            h("strong", null, "Local only"),
            h("span", { class: "muted" }, " · answers are generated on this device. Turn off to let the server write the answers (retrieval stays here)."),
          ),
        ),
        this.serverNote,
      ),
    );
    this.render();
  }

  /** True when answers go to the server: the switch is off and the server can take them. */
  get serverAnswers(): boolean {
    return !this.localOnlyPref && this.server.kind === "available";
  }

  /** The server model answers go to (when serverAnswers). */
  get serverModel(): string | null {
    return this.server.kind === "available" ? this.server.model : null;
  }

  setServer(state: ServerState): void {
    this.server = state;
    this.render();
    for (const f of this.listeners) f();
  }

  onChange(f: () => void): void {
    this.listeners.push(f);
  }

  private render(): void {
    const remote = this.serverAnswers;
    this.el.dataset["mode"] = remote ? "server" : "local";
    this.label.textContent = remote ? "Local only: off" : "Local only";
    this.el.title = remote ? "Answers are written by the server: each question and its retrieved passages are sent to it" : "Everything runs on this device";
    this.input.checked = this.localOnlyPref;
    this.input.disabled = this.server.kind !== "available";
    if (this.server.kind === "checking") this.serverNote.textContent = "Checking whether the server offers a fallback…";
    else if (this.server.kind === "off") this.serverNote.textContent = `No server fallback: ${this.server.reason}. Everything stays on this device.`;
    else this.serverNote.textContent = `The server offers its native fallback (the same package, ${this.server.model}, run natively with TVM).`;
    this.privacy.replaceChildren(
      ...(remote
        ? [
            h(
              "p",
              null,
              h("strong", null, "Answers are written by the server."),
              " Your documents are still parsed, embedded, stored and searched in this browser, but for each question the question and the passages retrieved from your documents (the whole prompt) are sent to the server that served this page, which generates the answer with its native copy of the chat model.",
            ),
            h(
              "p",
              null,
              "Nothing goes to any other origin: the page's Content-Security-Policy and the service worker still block that. Turn “Local only” back on to keep everything on this device.",
            ),
          ]
        : [
            h(
              "p",
              null,
              h("strong", null, "Everything runs on this device."),
              " The chat model and the text encoder run in your browser on WebGPU; your documents are parsed, embedded and stored in this browser's IndexedDB.",
            ),
            h(
              "p",
              null,
              "The server only hands out the app and the model files. The app never uploads a document, a question or an answer: the page's Content-Security-Policy allows connections to this origin only, the service worker refuses every request the page or its workers make to another origin, and the only server endpoint that accepts data (the optional native fallback) is used only when you turn “Local only” off.",
            ),
            h("p", null, "After the first visit the app and the models work offline."),
          ]),
    );
  }
}
