// Encoder harness page (tests/browser/encoder.test.mjs mounts this folder at /harness/). It starts the
// bundled encoder worker (/encoder-bundle/encoder/worker.js) as a module Worker and relays tasks to it.
// window.hearthRun(task) is the harness contract (lib/harness.mjs): it resolves to {ok, result} or
// {ok: false, error}.
let worker;
let nextId = 1;
const pending = new Map();

function startWorker() {
  worker = new Worker("/encoder-bundle/encoder/worker.js", { type: "module", name: "hearth-encoder" });
  worker.onmessage = (ev) => {
    const msg = ev.data;
    if (msg.type === "log") {
      console.log(`[worker] ${msg.text}`);
      return;
    }
    const p = pending.get(msg.id);
    if (p === undefined) return;
    pending.delete(msg.id);
    p(msg.ok ? { ok: true, result: msg.result } : { ok: false, error: msg.error });
  };
  worker.onerror = (ev) => {
    const error = { name: "WorkerError", message: ev.message ?? "worker error" };
    for (const p of pending.values()) p({ ok: false, error });
    pending.clear();
  };
}

window.hearthRun = (task) =>
  new Promise((resolve) => {
    if (worker === undefined) startWorker();
    const id = nextId++;
    pending.set(id, resolve);
    worker.postMessage({ id, task });
  });
window.hearthPageReady = true;
