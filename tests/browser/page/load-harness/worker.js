// Module Worker of the load harness: loadPackage / DecoderModel.load with the browser stores.
import { CacheStorageStore, DecoderModel, IndexedDBStore, artifactKey, packageKeyPrefix } from "/sdk/dist/index.js";

const PROMPT = Array.from({ length: 40 }, (_, i) => (i * 37 + 5) % 1000);
const log = (text) => self.postMessage({ type: "log", text });

function plainError(err) {
  return { name: err?.name ?? "Error", message: String(err?.message ?? err), stack: err?.stack ?? null, limit: err?.limit ?? null };
}

async function conformance(store) {
  const d = (s) => s.repeat(64).slice(0, 64);
  const a = artifactKey("m", "q4f32_1", d("a"));
  const b = artifactKey("m", "q4f32_1", d("b"));
  const out = [];
  const check = (what, ok) => out.push({ what, ok: Boolean(ok) });
  await store.delete(a);
  await store.delete(b);
  check("absent", (await store.get(a)) === undefined && !(await store.has(a)));
  await store.put(a, new TextEncoder().encode("alpha").buffer);
  await store.put(b, new Uint8Array([1, 2, 3]).buffer);
  check("get", new TextDecoder().decode(await store.get(a)) === "alpha");
  check("has", await store.has(b));
  const keys = (await store.keys(packageKeyPrefix("m", "q4f32_1"))).sort();
  check("keys", JSON.stringify(keys) === JSON.stringify([a, b].sort()));
  await store.delete(a);
  check("delete", !(await store.has(a)) && (await store.keys(packageKeyPrefix("m", "q4f32_1"))).length === 1);
  await store.delete(b);
  return out;
}

const tasks = {
  async stores() {
    return {
      cacheStorage: await conformance(new CacheStorageStore("hearth-test")),
      indexedDB: await conformance(new IndexedDBStore("hearth-test")),
      storageEstimate: typeof navigator.storage?.estimate === "function" ? await navigator.storage.estimate() : null,
    };
  },

  async load({ url, cache, target, n = 16 }) {
    const fetched = [];
    const fetchFn = (u, init) => {
      fetched.push(decodeURIComponent(u.slice(u.lastIndexOf("/") + 1)));
      return fetch(u, init);
    };
    const phases = {};
    const t0 = performance.now();
    const model = await DecoderModel.load(new URL(url, self.location.href).href, {
      // SwiftShader is a software adapter, where the SDK takes the wasm-cpu build by itself: the WebGPU
      // tests pass target "webgpu"; the no-WebGPU test passes none and checks the SDK's own fallback.
      ...(target === undefined ? {} : { target }),
      fetch: fetchFn,
      ...(cache === undefined ? {} : { cache }),
      logger: (m) => log(m),
      onProgress: (e) => (phases[e.phase] = (phases[e.phase] ?? 0) + 1),
    });
    const loadMs = performance.now() - t0;
    try {
      const tokens = await model.greedy(PROMPT, n);
      const info = model.loadInfo;
      return {
        fetched,
        loadMs,
        deviceKind: info.deviceKind,
        webgpuUnavailable: info.webgpuUnavailable,
        cache: { store: info.cache.store, downloadedFiles: info.cache.downloadedFiles, cachedFiles: info.cache.cachedFiles, persisted: info.cache.persisted, available: info.cache.available },
        phases,
        timings: model.stats().load,
        tokens,
      };
    } finally {
      await model.dispose();
    }
  },
};

self.onmessage = async (event) => {
  const { task, ...args } = event.data;
  try {
    const fn = tasks[task];
    if (fn === undefined) throw new Error(`unknown task ${task}`);
    self.postMessage({ type: "result", result: await fn(args) });
  } catch (err) {
    self.postMessage({ type: "error", error: plainError(err) });
  }
};
