// Main thread of the harness page: starts the module Worker and exposes window.hearthRun(task) to the
// Node driver (Playwright page.evaluate). Results come back as plain data: {ok, result} or {ok:false, error}.
const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: "hearth-engine" });
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
  if (msg.type === "log") return console.log(`[worker] ${msg.text}`);
  const p = pending.get(msg.id);
  if (p === undefined) return;
  pending.delete(msg.id);
  p.resolve(msg.type === "result" ? { ok: true, result: msg.result } : { ok: false, error: msg.error });
};
// Fires for module load failures (bad import, syntax error) and uncaught errors in the worker.
worker.onerror = (event) => {
  event.preventDefault();
  const where = event.filename ? ` at ${event.filename}:${event.lineno}:${event.colno}` : "";
  failAll(`worker error: ${event.message || "module failed to load (check the import paths and MIME types)"}${where}`);
};
worker.onmessageerror = () => failAll("worker message could not be deserialized");

window.hearthRun = async (task) => {
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
window.hearthPageReady = true;
