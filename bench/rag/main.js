// Main thread of the RAG benchmark page: starts the bundled Worker and exposes window.benchRun(task).
const worker = new Worker("/bundle/worker.js", { type: "module", name: "hearth-rag-bench" });
const pending = new Map();
let nextId = 1;
let readyResolve;
let readyReject;
const ready = new Promise((ok, fail) => {
  readyResolve = ok;
  readyReject = fail;
});
worker.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === "ready") return readyResolve();
  const p = pending.get(msg.id);
  if (p === undefined) return;
  pending.delete(msg.id);
  p(msg.type === "result" ? { ok: true, result: msg.result } : { ok: false, error: msg.error });
};
worker.onerror = (event) => {
  event.preventDefault();
  const message = `worker error: ${event.message || "module failed to load"}`;
  readyReject(new Error(message));
  for (const [, p] of pending) p({ ok: false, error: { name: "WorkerError", message } });
  pending.clear();
};
window.benchRun = async (task) => {
  try {
    await ready;
  } catch (err) {
    return { ok: false, error: { name: "WorkerError", message: String(err.message ?? err) } };
  }
  const id = nextId++;
  return new Promise((resolve) => {
    pending.set(id, resolve);
    worker.postMessage({ ...task, id });
  });
};
window.benchPageReady = true;
