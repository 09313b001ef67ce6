/** Page frame: header with the "local only" indicator and network state, alert area, two columns. */
import { h } from "./dom.ts";

export interface Layout {
  root: HTMLElement;
  alerts: HTMLElement;
  models: HTMLElement;
  side: HTMLElement;
  main: HTMLElement;
  net: HTMLElement;
}

export function buildLayout(): Layout {
  const net = h("span", { class: "net", id: "net-state" }, navigator.onLine ? "online" : "offline");
  const local = h(
    "details",
    { class: "local-only", id: "local-only" },
    h("summary", null, h("span", { class: "dot", "aria-hidden": "true" }), "Local only"),
    h(
      "div",
      { class: "local-pop" },
      h("p", null, h("strong", null, "Everything runs on this device."), " The chat model and the text encoder run in your browser on WebGPU; your documents are parsed, embedded and stored in this browser's IndexedDB."),
      h("p", null, "The server only hands out the app and the model files. The app never uploads a document, a question or an answer: the server has no endpoint that accepts one, the page's Content-Security-Policy allows connections to this origin only, and once installed the service worker refuses every request the page or its workers make to another origin."),
      h("p", null, "After the first visit the app and the models work offline."),
    ),
  );
  const header = h(
    "header",
    { class: "top" },
    h("div", { class: "brand" }, h("img", { src: "icons/icon.svg", alt: "", width: 28, height: 28 }), h("span", null, "Hearth"), h("span", { class: "brand-sub" }, "Ask your documents")),
    h("div", { class: "top-right" }, local, net),
  );
  const alerts = h("div", { class: "alerts", id: "alerts", "aria-live": "assertive" });
  const models = h("div", { class: "models" });
  const side = h("div", { class: "side" }, models);
  const main = h("div", { class: "main" });
  const root = h("div", { class: "app" }, header, alerts, h("div", { class: "columns" }, main, side));
  const updateNet = () => {
    net.textContent = navigator.onLine ? "online" : "offline";
    net.dataset["state"] = navigator.onLine ? "online" : "offline";
  };
  addEventListener("online", updateNet);
  addEventListener("offline", updateNet);
  updateNet();
  return { root, alerts, models, side, main, net };
}

export function showAlert(alerts: HTMLElement, kind: string, title: string, detail: string, hint?: string): HTMLElement {
  const el = h(
    "div",
    { class: "alert", role: "alert", dataset: { kind } },
    h("strong", null, title),
    h("p", null, detail),
    hint ? h("p", { class: "hint" }, hint) : null,
  );
  alerts.append(el);
  return el;
}
