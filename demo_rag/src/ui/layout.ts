/** Page frame: header with the "local only" indicator and network state, alert area, two columns. */
import { h } from "./dom.ts";
import { LocalOnlyIndicator } from "./local-only.ts";

export interface Layout {
  root: HTMLElement;
  alerts: HTMLElement;
  models: HTMLElement;
  side: HTMLElement;
  main: HTMLElement;
  net: HTMLElement;
  localOnly: LocalOnlyIndicator;
}

export function buildLayout(): Layout {
  const net = h("span", { class: "net", id: "net-state" }, navigator.onLine ? "online" : "offline");
  const localOnly = new LocalOnlyIndicator();
  const local = localOnly.el;
  const header = h(
    "header",
    { class: "top" },
    h(
      "div",
      { class: "brand" },
      h("img", { src: "icons/icon.svg", alt: "", width: 28, height: 28 }),
      h("span", null, "Hearth"),
      h("span", { class: "brand-sub" }, "Ask your documents"),
    ),
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
  return { root, alerts, models, side, main, net, localOnly };
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
