// Browser benchmark page (embeddings; and the LLM protocol in the hearth-llm worker) (bench/embed/browser.mjs mounts this folder at /page/). Each runtime runs in
// its own module Worker, started on first use and terminated by the `terminate` task, so one runtime's
// threads and GPU memory are gone before the next one is timed.
// window.benchRun({worker, task, ...args}) resolves to {ok, result} | {ok: false, error}.
const WORKERS = {
  hearth: "/bundle/hearth/worker.js",
  "hearth-llm": "/bundle/hearth-llm/worker.js",
  tfjs: "/bundle/tfjs/worker.js",
  "tfjs-llm": "/bundle/tfjs-llm/worker.js",
};
const live = new Map(); // name -> {worker, pending}
let nextId = 1;

function start(name) {
  const url = WORKERS[name];
  if (url === undefined) throw new Error(`unknown worker ${name} (one of ${Object.keys(WORKERS).join(", ")})`);
  const worker = new Worker(url, { type: "module", name });
  const pending = new Map();
  worker.onmessage = (ev) => {
    const msg = ev.data;
    if (msg.type === "log") {
      console.log(`[${name}] ${msg.text}`);
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
  const entry = { worker, pending };
  live.set(name, entry);
  return entry;
}

window.benchRun = async (task) => {
  if (task.task === "terminate") {
    live.get(task.worker)?.worker.terminate();
    live.delete(task.worker);
    return { ok: true, result: true };
  }
  if (task.worker === "wllama") {
    // wllama runs its own Worker; see wllama-worker.js.
    try {
      const { llm } = await import("/bundle/wllama/worker.js");
      return { ok: true, result: await llm(task) };
    } catch (err) {
      return { ok: false, error: { name: err?.name ?? "Error", message: String(err?.message ?? err) } };
    }
  }
  let entry;
  try {
    entry = live.get(task.worker) ?? start(task.worker);
  } catch (err) {
    return { ok: false, error: { name: "Error", message: String(err.message) } };
  }
  return new Promise((resolve) => {
    const id = nextId++;
    entry.pending.set(id, resolve);
    entry.worker.postMessage({ id, task });
  });
};
window.benchPageReady = true;
