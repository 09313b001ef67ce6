// Main thread of the RAG harness page: starts the bundled module Worker and exposes window.ragRun(task)
// to the Node driver. Results come back as plain data: {ok, result} or {ok:false, error}.
const worker = new Worker("/rag-bundle/rag-worker.js", { type: "module", name: "hearth-rag" });
const pending = new Map();
let nextId = 1;
let readyResolve;
let readyReject;
const ready = new Promise((ok, fail) => {
  readyResolve = ok;
  readyReject = fail;
});

function failAll(message) {
  readyReject(new Error(message));
  for (const [, p] of pending) p.resolve({ ok: false, error: { name: "WorkerError", message } });
  pending.clear();
}

worker.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === "ready") return readyResolve();
  if (msg.type === "log") return console.log(`[rag-worker] ${msg.text}`);
  const p = pending.get(msg.id);
  if (p === undefined) return;
  pending.delete(msg.id);
  p.resolve(msg.type === "result" ? { ok: true, result: msg.result } : { ok: false, error: msg.error });
};
worker.onerror = (event) => {
  event.preventDefault();
  const where = event.filename ? ` at ${event.filename}:${event.lineno}:${event.colno}` : "";
  failAll(`worker error: ${event.message || "module failed to load"}${where}`);
};

window.ragRun = async (task) => {
  try {
    await ready;
  } catch (err) {
    return { ok: false, error: { name: "WorkerError", message: String(err.message ?? err) } };
  }
  const id = nextId++;
  return new Promise((resolve) => {
    pending.set(id, { resolve });
    worker.postMessage({ ...task, id });
  });
};
window.ragPageReady = true;
