// Module Worker for the RAG browser test. The Node driver bundles this file with esbuild
// ("@hearth/sdk/rag" → sdk/dist/rag/index.js, plus idb, htmlparser2 and pdf.js from sdk/node_modules), as
// an app's bundler would. IndexedDB here is Chromium's real one.
import { openIndex } from "@hearth/sdk/rag";

const log = (text) => self.postMessage({ type: "log", text });

/** FNV-1a 32-bit. */
function fnv1a(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * HashingTestEmbedder: a deterministic stand-in for an embedding model, for tests only (same algorithm as
 * sdk/test/support/rag-fixtures.ts): hashed bag of words into `dim` buckets, normalised.
 */
class HashingTestEmbedder {
  modelId = "test/hashing-bow-64";
  dim = 64;
  maxTokens = 64;
  countTokens(text) {
    let n = 2;
    for (const w of text.split(/\s+/u)) if (w.length > 0) n += Math.max(1, Math.ceil(Array.from(w).length / 12));
    return n;
  }
  async embed(texts, signal) {
    signal?.throwIfAborted();
    return texts.map((text) => {
      const v = new Float32Array(this.dim);
      for (const w of text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) {
        const h = fnv1a(w);
        v[h % this.dim] += h & 0x80000000 ? -1 : 1;
      }
      v[0] += 0.01;
      let ss = 0;
      for (const x of v) ss += x * x;
      const inv = 1 / Math.sqrt(ss);
      for (let i = 0; i < v.length; i++) v[i] *= inv;
      return v;
    });
  }
}

let indexPromise;
const index = () => (indexPromise ??= openIndex("browser-test", { embedder: new HashingTestEmbedder() }));

function fromBase64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function serializeError(err) {
  if (err instanceof Error) return { name: err.name, message: err.message, code: err.code ?? null, stack: err.stack ?? null };
  return { name: "Error", message: String(err), code: null, stack: null };
}

const docSummary = (d) => ({ id: d.id, title: d.title, mime: d.mime, chunkCount: d.chunkCount, pages: d.pages, bytes: d.bytes });

const tasks = {
  async env() {
    return {
      isWorker: typeof WorkerGlobalScope !== "undefined" && self instanceof WorkerGlobalScope,
      hasDOMParser: typeof DOMParser !== "undefined",
      hasIndexedDB: typeof indexedDB !== "undefined",
    };
  },
  async add({ docs }) {
    const inputs = docs.map((d) =>
      d.kind === "file" ? new File([fromBase64(d.base64)], d.name, { type: d.type }) : { text: d.text, title: d.title, mime: d.mime },
    );
    const results = await (await index()).add(inputs, { continueOnError: true });
    return results.map((r) =>
      r.status === "failed" ? { status: r.status, error: serializeError(r.error) } : { status: r.status, document: docSummary(r.document) },
    );
  },
  async search({ query, k = 5, filter }) {
    const hits = await (await index()).search(query, { k, ...(filter ? { filter } : {}) });
    return hits.map((h) => ({ docId: h.document.id, title: h.document.title, page: h.page, start: h.start, end: h.end, score: h.score, text: h.chunk.text }));
  },
  async list() {
    return (await (await index()).list()).map(docSummary);
  },
  async stats() {
    return (await index()).stats();
  },
  async databases() {
    return (await indexedDB.databases()).map((d) => ({ name: d.name, version: d.version }));
  },
};

self.onmessage = async (event) => {
  const { id, task, ...args } = event.data;
  try {
    const fn = tasks[task];
    if (fn === undefined) throw new Error(`unknown task ${task}`);
    self.postMessage({ type: "result", id, result: await fn(args) });
  } catch (err) {
    log(`task ${task} failed: ${err?.stack ?? err}`);
    self.postMessage({ type: "error", id, error: serializeError(err) });
  }
};
self.postMessage({ type: "ready" });
