// Module Worker of the RAG benchmark (bench/rag/run.mjs bundles it with esbuild; "@hearth/sdk/rag" is
// sdk/src/rag). Everything timed here runs in the Worker against Chromium's real IndexedDB.
//
// Data is SYNTHETIC: chunk text is pseudo-words drawn from a Zipf-like distribution, and the embedder
// returns a pseudo-random unit vector per text (seeded by a hash of the text). So embed time here is the
// cost of the stand-in, not of a model; the index's own costs (BM25 analysis, quantisation, IndexedDB,
// search) are real.
import { newIngestTimings, openIndex } from "@hearth/sdk/rag";

const DIM = 384;
const WORDS_PER_CHUNK = 80; // ~500 characters; one paragraph = one chunk (maxTokens 128 > 82, 2 paragraphs do not fit)
const VOCAB = 30_000;

function fnv1a(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** mulberry32 PRNG. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SYL = ["ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "zi", "pa", "do", "fe", "gu", "hi", "ja", "be"];
const vocab = Array.from({ length: VOCAB }, (_, i) => {
  let w = "";
  let x = i + 17;
  do {
    w += SYL[x % 16];
    x = Math.floor(x / 16);
  } while (x > 0);
  return w;
});
// Zipf(s=1) sampling by inverse CDF over a precomputed table.
const cdf = new Float64Array(VOCAB);
{
  let s = 0;
  for (let i = 0; i < VOCAB; i++) cdf[i] = s += 1 / (i + 1);
  for (let i = 0; i < VOCAB; i++) cdf[i] /= s;
}
function zipfWord(r) {
  const u = r();
  let lo = 0;
  let hi = VOCAB - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid] < u) lo = mid + 1;
    else hi = mid;
  }
  return vocab[lo];
}

function paragraph(r) {
  const words = [];
  for (let i = 0; i < WORDS_PER_CHUNK; i++) words.push(zipfWord(r));
  // Sentences of 16 words.
  const out = [];
  for (let i = 0; i < words.length; i += 16) out.push(words.slice(i, i + 16).join(" ") + ".");
  return out.join(" ");
}

function documentText(docNo, chunks) {
  const r = rng(docNo * 7919 + 1);
  const paras = [];
  for (let i = 0; i < chunks; i++) paras.push(paragraph(r));
  return paras.join("\n\n");
}

/** Random unit vectors seeded by the text: a stand-in embedder (NOT a model). */
class RandomUnitEmbedder {
  modelId = "bench/random-unit-384";
  dim = DIM;
  maxTokens = 128;
  embedMs = 0;
  countTokens(text) {
    let n = 2;
    for (const w of text.split(/\s+/u)) if (w.length > 0) n++;
    return n;
  }
  async embed(texts) {
    const t0 = performance.now();
    const out = texts.map((t) => {
      const r = rng(fnv1a(t));
      const v = new Float32Array(DIM);
      // Box-Muller: Gaussian components give a uniformly distributed direction.
      for (let i = 0; i < DIM; i += 2) {
        const u = Math.max(r(), 1e-12);
        const m = Math.sqrt(-2 * Math.log(u));
        v[i] = m * Math.cos(2 * Math.PI * r());
        v[i + 1] = m * Math.sin(2 * Math.PI * r());
      }
      return v;
    });
    this.embedMs += performance.now() - t0;
    return out;
  }
}

const embedder = new RandomUnitEmbedder();
let index = null;
const NAME = "bench";
let lastLoad = null;
const open = async () => (index ??= await openIndex(NAME, { embedder, embedBatchSize: 64, onLoad: (t) => (lastLoad = t) }));

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const tasks = {
  async reset() {
    index?.close();
    index = null;
    await new Promise((ok, fail) => {
      const r = indexedDB.deleteDatabase(`hearth-rag:${NAME}`);
      r.onsuccess = ok;
      r.onerror = () => fail(r.error);
    });
    return navigator.storage.estimate();
  },
  async estimate() {
    return navigator.storage.estimate();
  },
  /** Ingest documents [from, to) of `chunksPerDoc` chunks each; returns timings. */
  async ingest({ from, to, chunksPerDoc }) {
    const idx = await open();
    let genMs = 0;
    const phase = { prepare: 0, store: 0 };
    let lastAt = 0;
    let storeAt = 0;
    const inputs = [];
    const g0 = performance.now();
    for (let d = from; d < to; d++) inputs.push({ text: documentText(d, chunksPerDoc), title: `doc ${d}`, mime: "text/plain" });
    genMs = performance.now() - g0;
    const embed0 = embedder.embedMs;
    const t0 = performance.now();
    lastAt = t0;
    const timings = newIngestTimings();
    const results = await idx.add(inputs, {
      timings,
      onProgress: (p) => {
        const now = performance.now();
        if (p.phase === "extract") lastAt = now;
        if (p.phase === "store") {
          phase.prepare += now - lastAt;
          storeAt = now;
        }
        if (p.phase === "done") phase.store += now - storeAt;
      },
    });
    const totalMs = performance.now() - t0;
    const chunks = results.reduce((s, r) => s + (r.status === "added" ? r.document.chunkCount : 0), 0);
    const failed = results.filter((r) => r.status !== "added").length;
    return { docs: to - from, chunks, failed, genMs, totalMs, embedMs: embedder.embedMs - embed0, prepareMs: phase.prepare, storeMs: phase.store, timings };
  },
  /** Close and reopen (cold load of the in-memory state), timed. */
  async reopen() {
    index?.close();
    index = null;
    const t0 = performance.now();
    await open();
    return { openMs: performance.now() - t0, load: lastLoad, stats: await index.stats() };
  },
  async query({ n, k, warmup, seed }) {
    const idx = await open();
    const r = rng(seed);
    const queries = [];
    for (let i = 0; i < n + warmup; i++) {
      const len = 2 + Math.floor(r() * 4);
      const words = [];
      // Mostly mid-frequency words (ranks 50..5000), like content words of a real question, plus one common one.
      for (let j = 0; j < len; j++) words.push(vocab[50 + Math.floor(r() * r() * 5000)]);
      words.push(vocab[Math.floor(r() * 50)]);
      queries.push(words.join(" "));
    }
    const times = [];
    const parts = [];
    let hits = 0;
    for (let i = 0; i < queries.length; i++) {
      const t0 = performance.now();
      const t = {};
      const res = await idx.search(queries[i], { k, timings: t });
      const ms = performance.now() - t0;
      if (i >= warmup) {
        times.push(ms);
        hits += res.length;
        parts.push(t);
      }
    }
    const sorted = [...times].sort((a, b) => a - b);
    const meanParts = {};
    for (const p of parts) for (const [key, v] of Object.entries(p)) meanParts[key] = (meanParts[key] ?? 0) + v / parts.length;
    return { n, k, p50: pct(sorted, 50), p95: pct(sorted, 95), max: sorted[sorted.length - 1], mean: times.reduce((a, b) => a + b, 0) / n, meanHits: hits / n, parts: meanParts, example: queries[warmup] };
  },
  async stats() {
    return (await open()).stats();
  },
  /** UTF-8 bytes of all stored document texts. */
  async textBytes() {
    const idx = await open();
    let bytes = 0;
    const enc = new TextEncoder();
    for (const d of await idx.list()) bytes += enc.encode((await idx.getText(d.id)) ?? "").length;
    return { bytes };
  },
};

self.onmessage = async (event) => {
  const { id, task, ...args } = event.data;
  try {
    const fn = tasks[task];
    if (fn === undefined) throw new Error(`unknown task ${task}`);
    self.postMessage({ type: "result", id, result: await fn(args) });
  } catch (err) {
    self.postMessage({ type: "error", id, error: { name: err?.name ?? "Error", message: String(err?.message ?? err), stack: err?.stack ?? null } });
  }
};
self.postMessage({ type: "ready" });
