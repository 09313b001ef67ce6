// Load harness page (tests/browser/load.test.mjs mounts this folder at /harness/). window.hearthRun(task)
// runs the task in a NEW module Worker (a fresh realm: what a page reload or a second tab sees of Cache
// Storage / IndexedDB) and resolves to {ok, result} or {ok: false, error}.
window.hearthRun = (task) =>
  new Promise((resolve) => {
    const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: "hearth-load" });
    const done = (r) => {
      worker.terminate();
      resolve(r);
    };
    worker.onmessage = (e) => {
      if (e.data.type === "log") return console.log(`[worker] ${e.data.text}`);
      done(e.data.type === "result" ? { ok: true, result: e.data.result } : { ok: false, error: e.data.error });
    };
    worker.onerror = (e) => {
      e.preventDefault();
      done({ ok: false, error: { name: "WorkerError", message: e.message || "worker failed to load" } });
    };
    worker.postMessage(task);
  });
window.hearthPageReady = true;
