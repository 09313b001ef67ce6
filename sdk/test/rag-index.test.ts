// RAG index end to end in Node: fake-indexeddb stands in for IndexedDB (the browser test uses the real one).
import "fake-indexeddb/auto";
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { IDBFactory, IDBObjectStore } from "fake-indexeddb";
import {
  EmbeddingModelMismatchError,
  EmptyDocumentError,
  ExtractionError,
  FileTooLargeError,
  InvalidSnapshotError,
  MIGRATIONS,
  NOT_FOUND_ANSWER,
  openIndex,
  RagError,
  UnsupportedTypeError,
  type AddProgress,
  type OpenIndexOptions,
  type RagIndex,
} from "../src/rag/index.js";
import { buildRecords } from "../src/rag/ingest.js";
import {
  CHUNK_GROUP,
  decodeTerms,
  openDatabase,
  readDocChunks,
  readDocVectors,
  segmentRange,
  type ChunkRecord,
  type PreparedDocument,
  type RagDB,
} from "../src/rag/store.js";
import { HashingTestEmbedder, makePdf, ScriptedChatModel } from "./support/rag-fixtures.js";
import { loadTokenizer } from "../src/tokenize/load.js";
import { REPO } from "./support/engine-fixtures.js";

const SOLAR = [
  "# Solar power at home",
  "",
  "Rooftop photovoltaic panels turn sunlight into electricity. A typical panel converts about twenty percent of the light.",
  "",
  "Inverters change the direct current from the panels into alternating current for the house.",
  "",
  "Batteries store surplus energy for the evening, when the panels produce nothing.",
].join("\n");

const BREAD =
  "Sourdough bread needs flour, water, salt and a lively starter. Knead the dough, let it rise overnight, and bake it hot.\n\nA dutch oven keeps the steam in so the crust blisters.";

const GARDEN_HTML = `<html><head><title>Tomato garden</title><script>track()</script></head><body>
<h1>Growing tomatoes</h1><p>Tomatoes love sun and deep watering. Stake the vines early.</p>
<p>Pinch the suckers so the plant puts its energy into fruit.</p></body></html>`;

function pdfFile(): File {
  // Each page is a paragraph of about 45 words, so two pages never share a 64-token chunk.
  const bytes = makePdf([
    [
      "Annual report of the wind farm cooperative for the members.",
      "Turbines produced record output this year thanks to steady winds.",
      "The grid operator paid a higher feed-in price than expected,",
      "and the cooperative repaid a large part of its bank loan.",
      "Members received a dividend for the third year in a row.",
    ],
    [
      "Maintenance of the gearbox was scheduled for the spring.",
      "The blades were inspected by drone and found in good shape.",
      "At the general meeting the cooperative elected a new treasurer,",
      "approved the budget, and discussed a second site near the coast.",
      "Questions from members were answered by the board.",
    ],
  ]);
  return new File([bytes as Uint8Array<ArrayBuffer>], "windfarm.pdf", { type: "application/pdf" });
}

interface Setup {
  factory: IDBFactory;
  embedder: HashingTestEmbedder;
  open: (extra?: Partial<OpenIndexOptions>) => Promise<RagIndex>;
}

let dbCounter = 0;
function setup(embedder = new HashingTestEmbedder()): Setup & { name: string } {
  const factory = new IDBFactory();
  const name = `test-${++dbCounter}`;
  let clock = 1_700_000_000_000;
  return {
    factory,
    embedder,
    name,
    open: (extra = {}) => openIndex(name, { embedder, dbFactory: factory, now: () => (clock += 1000), ...extra }),
  };
}

/** Direct look at the stores (records; chunks and vectors: the chunks their grouped records hold), through a second connection. */
async function storeCounts(factory: IDBFactory, name: string): Promise<Record<string, number>> {
  const db = await openDatabase(name, { dbFactory: factory });
  try {
    const out: Record<string, number> = {};
    for (const s of ["documents", "texts", "docindex", "terms"] as const) out[s] = await db.count(s);
    out["chunks"] = (await db.getAll("chunks")).reduce((n, g) => n + g.texts.length, 0);
    out["vectors"] = (await db.getAll("vectors")).reduce((n, g) => n + g.f32.length / g.dim, 0);
    return out;
  } finally {
    db.close();
  }
}

test("ingest, dedupe, list, stats, remove, and persistence across reopen", async () => {
  const s = setup();
  const index = await s.open();
  const progress: AddProgress[] = [];
  const results = await index.add([{ text: SOLAR, mime: "text/markdown", meta: { source: "notes" } }, { text: BREAD, title: "Bread" }, pdfFile()], {
    onProgress: (p) => progress.push(p),
  });
  assert.deepEqual(
    results.map((r) => r.status),
    ["added", "added", "added"],
  );
  const [solar, bread, pdf] = results.map((r) => (r.status === "added" ? r.document : assert.fail("not added")));
  assert.equal(solar!.title, "Solar power at home");
  assert.equal(solar!.mime, "text/markdown");
  assert.deepEqual(solar!.meta, { source: "notes" });
  assert.equal(bread!.title, "Bread");
  assert.equal(pdf!.title, "windfarm.pdf");
  assert.equal(pdf!.pages, 2);
  assert.match(solar!.contentHash, /^[0-9a-f]{64}$/u);
  // Progress: phases in order for each input.
  assert.deepEqual([...new Set(progress.filter((p) => p.index === 0).map((p) => p.phase))], ["extract", "chunk", "embed", "store", "done"]);
  assert.ok(progress.some((p) => p.phase === "embed" && p.embedded === p.chunks && p.chunks! > 0));

  const listed = await index.list();
  assert.deepEqual(
    listed.map((d) => d.id),
    [solar!.id, bread!.id, pdf!.id],
  );
  let stats = await index.stats();
  assert.equal(stats.documents, 3);
  assert.equal(stats.chunks, solar!.chunkCount + bread!.chunkCount + pdf!.chunkCount);
  assert.equal(stats.bytes, solar!.bytes + bread!.bytes + pdf!.bytes);
  assert.equal(stats.schemaVersion, 4);
  assert.deepEqual(stats.embedding, { modelId: s.embedder.modelId, dim: 64 });

  // Same content again (even with another title) → duplicate, nothing embedded.
  const callsBefore = s.embedder.calls.length;
  const again = await index.add([{ text: BREAD, title: "Other title" }, pdfFile()]);
  assert.deepEqual(
    again.map((r) => [r.status, r.status === "duplicate" ? r.document.id : null]),
    [
      ["duplicate", bread!.id],
      ["duplicate", pdf!.id],
    ],
  );
  assert.equal(s.embedder.calls.length, callsBefore);
  assert.equal((await index.stats()).documents, 3);

  // Remove: gone from list, stats, search and every store.
  assert.ok((await index.search("sourdough starter", { mode: "bm25" })).length > 0);
  assert.equal(await index.remove(bread!.id), true);
  assert.equal(await index.remove(bread!.id), false);
  assert.deepEqual(
    (await index.list()).map((d) => d.id),
    [solar!.id, pdf!.id],
  );
  stats = await index.stats();
  assert.equal(stats.documents, 2);
  assert.equal(stats.chunks, solar!.chunkCount + pdf!.chunkCount);
  assert.deepEqual(await index.search("sourdough starter", { mode: "bm25" }), []);
  assert.ok((await index.search("sourdough starter")).every((h) => h.document.id !== bread!.id));
  index.close();
  await assert.rejects(index.list(), RagError);

  const counts = await storeCounts(s.factory, s.name);
  assert.equal(counts["documents"], 2);
  assert.equal(counts["texts"], 2);
  assert.equal(counts["chunks"], stats.chunks);
  assert.equal(counts["vectors"], stats.chunks);
  assert.equal(counts["docindex"], 2);

  // Reopen: everything is still there and searchable.
  const reopened = await s.open();
  assert.deepEqual(
    (await reopened.list()).map((d) => d.id),
    [solar!.id, pdf!.id],
  );
  assert.deepEqual(await reopened.stats(), stats);
  const hits = await reopened.search("gearbox maintenance", { k: 3 });
  assert.equal(hits[0]!.document.id, pdf!.id);
  assert.equal(hits[0]!.page, 2);
  reopened.close();
});

test("a failure in the middle of the write transaction leaves no partial document", async () => {
  const s = setup();
  const index = await s.open();
  await index.add({ text: SOLAR, mime: "text/markdown" });
  const before = await storeCounts(s.factory, s.name);
  const statsBefore = await index.stats();

  // Fault injection: the write to "docindex" throws, after documents, texts, chunks and vectors were
  // already written in the same transaction.
  const realPut = IDBObjectStore.prototype.put;
  let armed = true;
  IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore["put"]>) {
    if (armed && this.name === "docindex") {
      armed = false;
      throw new DOMException("simulated write failure", "UnknownError");
    }
    return realPut.apply(this, args);
  } as IDBObjectStore["put"];
  try {
    await assert.rejects(index.add({ text: BREAD, title: "Bread" }), /simulated write failure/u);
  } finally {
    IDBObjectStore.prototype.put = realPut;
  }
  assert.equal(armed, false, "the fault was not reached");
  assert.deepEqual(await storeCounts(s.factory, s.name), before);
  assert.deepEqual(await index.stats(), statsBefore);
  assert.equal((await index.list()).length, 1);

  // The same document can be added afterwards (no stale hash entry blocks it).
  const ok = await index.add({ text: BREAD, title: "Bread" });
  assert.equal(ok[0]!.status, "added");
  assert.equal((await index.stats()).documents, 2);
  index.close();
});

test("abort signal during embedding, and failed extractions, leave the index intact", async () => {
  const s = setup();
  const index = await s.open({ embedBatchSize: 1 });
  await index.add({ text: SOLAR, mime: "text/markdown" });
  const before = await storeCounts(s.factory, s.name);

  const ac = new AbortController();
  await assert.rejects(index.add({ text: BREAD }, { signal: ac.signal, onProgress: (p) => p.phase === "embed" && p.embedded === 1 && ac.abort() }), {
    name: "AbortError",
  });
  const broken = new File([new TextEncoder().encode("%PDF-1.7\ngarbage")], "broken.pdf", { type: "application/pdf" });
  await assert.rejects(index.add(broken), (e: unknown) => e instanceof ExtractionError && e.code === "pdf-invalid");
  const scanned = new File([makePdf([null]) as Uint8Array<ArrayBuffer>], "scan.pdf");
  await assert.rejects(index.add(scanned), /scanned PDF, no text layer: OCR it first/u);
  await assert.rejects(index.add(new File([], "empty.txt", { type: "text/plain" })), EmptyDocumentError);
  await assert.rejects(index.add(new File(["x"], "img.png", { type: "image/png" })), UnsupportedTypeError);
  assert.deepEqual(await storeCounts(s.factory, s.name), before);
  assert.equal((await index.stats()).documents, 1);
  index.close();
});

test("abort 300 ms into chunking a 20 MB single-line text (real MiniLM tokenizer): honoured within 1 s, nothing written", async (t) => {
  const dir = join(REPO, "dist/all-MiniLM-L6-v2/q0f32");
  const tokenizer = await loadTokenizer({
    tokenizerJson: readFileSync(join(dir, "tokenizer.json"), "utf8"),
    tokenizerConfig: JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")) as Record<string, unknown>,
  });
  /** The test embedder's vectors, counted in the real encoder's tokens (chunking is what is under test). */
  class MiniLMCounting extends HashingTestEmbedder {
    override countTokens(text: string): number {
      return tokenizer.encode(text).length;
    }
  }
  const s = setup(new MiniLMCounting({ maxTokens: 256 }));
  const index = await s.open();
  await index.add({ text: SOLAR, mime: "text/markdown" });
  const before = await storeCounts(s.factory, s.name);
  const embedCalls = s.embedder.calls.length;

  const vocab = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "the", "quick", "brown", "fox"];
  const words: string[] = [];
  for (let i = 0, len = 0; len < 20_000_000; i++) {
    const w = vocab[(i * 7) % vocab.length] as string;
    words.push(w);
    len += w.length + 1;
  }
  const ac = new AbortController();
  let phase = "";
  let phaseAtAbort = "";
  let sentAt = 0;
  const pending = index.add(
    { text: words.join(" "), title: "one line" },
    {
      signal: ac.signal,
      onProgress: (p) => {
        if (p.phase === "chunk" && phase !== "chunk") {
          setTimeout(() => {
            phaseAtAbort = phase;
            sentAt = performance.now();
            ac.abort();
          }, 300);
        }
        phase = p.phase;
      },
    },
  );
  await assert.rejects(pending, { name: "AbortError" });
  const latencyMs = performance.now() - sentAt;
  t.diagnostic(`abort honoured ${latencyMs.toFixed(0)} ms after it was sent`);
  // The abort's timer ran while chunking was still going on (a chunker that never yields runs it after).
  assert.equal(phaseAtAbort, "chunk");
  assert.ok(latencyMs < 1000, `abort honoured only after ${latencyMs.toFixed(0)} ms`);
  assert.equal(s.embedder.calls.length, embedCalls, "nothing of the aborted text was embedded");
  assert.deepEqual(await storeCounts(s.factory, s.name), before);
  assert.equal((await index.stats()).documents, 1);
  index.close();
});

test("too-large files are refused before they are read; continueOnError collects failures", async () => {
  const s = setup();
  const index = await s.open({ maxBytes: 1000 });
  let read = false;
  const big = new File(["x".repeat(1001)], "big.txt", { type: "text/plain" });
  const spy = Object.assign(big, {
    arrayBuffer: () => {
      read = true;
      return Blob.prototype.arrayBuffer.call(big);
    },
  });
  await assert.rejects(index.add(spy), (e: unknown) => e instanceof FileTooLargeError && e.limit === 1000 && e.bytes === 1001);
  assert.equal(read, false);

  const results = await index.add([{ text: BREAD }, { text: "   " }, new File(["a"], "a.zip", { type: "application/zip" }), { text: SOLAR }], {
    continueOnError: true,
  });
  assert.deepEqual(
    results.map((r) => r.status),
    ["added", "failed", "failed", "added"],
  );
  assert.ok(results[1]!.status === "failed" && results[1]!.error instanceof EmptyDocumentError);
  assert.ok(results[2]!.status === "failed" && results[2]!.error instanceof UnsupportedTypeError);

  // Without continueOnError the first failure rejects; earlier inputs stay added (each is atomic).
  await assert.rejects(index.add([{ text: "fresh document about kites and wind" }, { text: "" }]), EmptyDocumentError);
  assert.equal((await index.stats()).documents, 3);
  index.close();
});

/** Every stored chunk (all documents), read back from the grouped v4 records. */
async function allChunks(db: RagDB): Promise<ChunkRecord[]> {
  const out: ChunkRecord[] = [];
  for (const id of await db.getAllKeys("documents")) out.push(...(await readDocChunks(db.transaction("chunks").store, id)));
  return out;
}

/**
 * Write `prepared` in the v1/v2 on-disk format (what SDK builds before schema v3 wrote): per-chunk vectors
 * with their int8 code, global per-term postings lists "t:<term>", per-document "d:<docId>" chunk lengths
 * and terms, and the "bm25" totals in meta.
 */
async function writeLegacyDocument(db: RagDB, prepared: PreparedDocument): Promise<void> {
  const tx = (
    db as unknown as {
      transaction(s: string[], m: "readwrite"): { objectStore(n: string): { put(v: unknown, k?: string): Promise<unknown> }; done: Promise<void> };
    }
  ).transaction(["documents", "texts", "chunks", "vectors", "postings", "meta"], "readwrite");
  const puts: Array<Promise<unknown>> = [tx.objectStore("documents").put(prepared.document), tx.objectStore("texts").put(prepared.text)];
  for (const c of prepared.chunks) puts.push(tx.objectStore("chunks").put(c));
  for (const v of prepared.vectors)
    puts.push(tx.objectStore("vectors").put({ chunkId: v.chunkId, docId: v.docId, modelId: v.modelId, f32: v.f32, i8: v.i8, scale: v.scale }));
  const byTerm = new Map<string, Array<[string, number]>>();
  let total = 0;
  for (const t of prepared.terms) {
    total += t.length;
    for (const [term, tf] of t.tf) byTerm.set(term, [...(byTerm.get(term) ?? []), [t.chunkId, tf]]);
  }
  for (const [term, entries] of byTerm) puts.push(tx.objectStore("postings").put({ kind: "term", entries }, `t:${term}`));
  puts.push(
    tx
      .objectStore("postings")
      .put({ kind: "doc", lengths: prepared.terms.map((t) => [t.chunkId, t.length]), terms: [...byTerm.keys()] }, `d:${prepared.document.id}`),
    tx.objectStore("meta").put({ chunkCount: prepared.chunks.length, totalLength: total }, "bm25"),
  );
  await Promise.all(puts);
  await tx.done;
}

/** Three documents written in the v1 format: two short texts and a long paged one (several chunk and vector groups). */
async function legacyFixture(s: ReturnType<typeof setup>) {
  const v1 = await openDatabase(s.name, { dbFactory: s.factory, migrations: MIGRATIONS.slice(0, 1) });
  assert.equal(v1.version, 1);
  assert.deepEqual([...v1.transaction("documents").store.indexNames], ["by-hash"]);
  const opts = {
    embedder: s.embedder,
    chunkMaxTokens: s.embedder.maxTokens,
    overlapTokens: undefined,
    batchSize: 16,
    signal: undefined,
    onPhase: () => undefined,
  };
  const doc = (id: string, title: string, mime: "text/plain" | "text/markdown", text: string, createdAt: number) =>
    ({ id, title, mime, contentHash: id.padEnd(64, "0"), bytes: text.length, createdAt, pages: null, meta: {} }) as const;
  const legacy = await buildRecords(doc("doc-legacy", "Legacy", "text/plain", BREAD, 5), BREAD, null, opts);
  const solar = await buildRecords(doc("doc-solar", "Solar", "text/markdown", SOLAR, 6), SOLAR, null, opts);
  const longText = Array.from(
    { length: 45 },
    (_, i) => `Section ${i} covers turbine${i % 7} blades, gearbox${i % 5} oil and tower${i} bolts. Inspect item ${i} yearly.`,
  ).join("\n\n");
  const half = longText.indexOf("Section 20");
  const pages = [
    { page: 1, start: 0, end: half },
    { page: 2, start: half, end: longText.length },
  ];
  const long = await buildRecords({ ...doc("doc-long", "Manual", "text/plain", longText, 7), pages: 2 }, longText, pages, { ...opts, chunkMaxTokens: 24 });
  assert.ok(long.prepared.chunks.length > 2 * CHUNK_GROUP, `${long.prepared.chunks.length} chunks`);
  for (const p of [legacy, solar, long]) await writeLegacyDocument(v1, p.prepared);
  await v1.put("meta", { modelId: s.embedder.modelId, dim: s.embedder.dim }, "model");
  assert.deepEqual(await v1.get("meta", "schema"), { version: 1, analyzer: 1 });
  v1.close();
  return [legacy.prepared, solar.prepared, long.prepared];
}

/** After migrating to v4: the stored chunks, vectors and BM25 terms equal what was written in v1. */
async function assertMigrated(s: ReturnType<typeof setup>, prepared: PreparedDocument[]): Promise<void> {
  const index = await s.open();
  const stats = await index.stats();
  assert.equal(stats.schemaVersion, 4);
  assert.equal(stats.documents, prepared.length);
  assert.equal(
    stats.chunks,
    prepared.reduce((n, p) => n + p.chunks.length, 0),
  );
  assert.equal((await index.search("sourdough", { mode: "bm25" }))[0]?.document.id, "doc-legacy");
  const notLong = { docId: ["doc-legacy", "doc-solar"] };
  assert.equal((await index.search("inverters alternating current", { mode: "vector", filter: notLong }))[0]?.document.id, "doc-solar");
  const hit = (await index.search("tower33 bolts", { k: 1 }))[0];
  assert.equal(hit?.chunk.id, prepared[2]!.chunks.find((c) => c.text.includes("tower33"))!.id);
  assert.equal(hit?.page, 2);
  for (const p of prepared) assert.equal(await index.getText(p.document.id), p.text.text);
  index.close();

  const db: RagDB = await openDatabase(s.name, { dbFactory: s.factory });
  assert.equal(db.version, 4);
  assert.deepEqual([...db.objectStoreNames].sort(), ["chunks", "docindex", "documents", "meta", "terms", "texts", "vectors"]);
  assert.deepEqual([...db.transaction("chunks").store.indexNames], []);
  assert.deepEqual([...db.transaction("vectors").store.indexNames], []);
  assert.deepEqual([...db.transaction("documents").store.indexNames].sort(), ["by-createdAt", "by-hash", "by-mime"]);
  // The v2 indexes cover the documents written before they existed.
  assert.deepEqual(
    (await db.getAllFromIndex("documents", "by-mime", "text/markdown")).map((d) => d.id),
    ["doc-solar"],
  );
  assert.equal(await db.countFromIndex("documents", "by-createdAt", IDBKeyRange.upperBound(5)), 1);
  const dictionary = (await db.getAll("terms")).flatMap((r) => r.terms);
  for (const p of prepared) {
    const id = p.document.id;
    assert.deepEqual(await readDocChunks(db.transaction("chunks").store, id), p.chunks);
    assert.deepEqual(
      (await readDocVectors(db.transaction("vectors").store, id)).map((v) => [v.chunkId, v.modelId, Array.from(v.f32)]),
      p.vectors.map((v) => [v.chunkId, v.modelId, Array.from(v.f32)]),
    );
    // docindex: int8 codes and the BM25 forward index (term ids → the terms) of every chunk.
    const segments = await db.getAll("docindex", segmentRange(id));
    assert.deepEqual(
      segments.map((g) => [g.first, g.count]),
      segments.map((g, i) => [segments.slice(0, i).reduce((n, x) => n + x.count, 0), g.count]),
    );
    const codes = segments.flatMap((g) => Array.from(g.codes));
    assert.deepEqual(
      codes,
      p.vectors.flatMap((v) => Array.from(v.i8)),
    );
    const terms = segments.flatMap((g) => {
      const d = decodeTerms(g.terms, g.count);
      return Array.from(d.lengths, (length, i) => ({
        length,
        tf: new Map(Array.from(d.ids.subarray(d.termStart[i], d.termStart[i + 1]), (t, k) => [dictionary[t]!, d.tfs[d.termStart[i]! + k]!])),
      }));
    });
    assert.deepEqual(
      terms,
      p.terms.map((t) => ({ length: t.length, tf: new Map([...t.tf].sort((a, b) => dictionary.indexOf(a[0]) - dictionary.indexOf(b[0]))) })),
    );
  }
  assert.equal(new Set(dictionary).size, dictionary.length, "each term once in the dictionary");
  for (const t of await db.getAll("texts")) {
    assert.deepEqual(Object.keys(t).sort(), ["docId", "gaps", "length", "pages"]);
    assert.ok(t.gaps.join("").trim() === "", "texts keep only the whitespace between chunks");
  }
  assert.equal(await db.get("meta", "bm25" as never), undefined);
  assert.deepEqual(await db.get("meta", "schema"), { version: 4, analyzer: 1 });
  db.close();
}

test("schema migrations v1 → v2 → v3 → v4, one version at a time, keep data", async () => {
  const s = setup();
  const prepared = await legacyFixture(s);
  // v2, then v3 (the steps an older SDK would have made), then the current schema.
  const v2 = await openDatabase(s.name, { dbFactory: s.factory, migrations: MIGRATIONS.slice(0, 2) });
  assert.equal(v2.version, 2);
  v2.close();
  const v3 = await openDatabase(s.name, { dbFactory: s.factory, migrations: MIGRATIONS.slice(0, 3) });
  assert.equal(v3.version, 3);
  const raw = v3 as unknown as { getAll(store: string): Promise<Array<Record<string, unknown>>>; objectStoreNames: DOMStringList };
  assert.deepEqual([...raw.objectStoreNames].sort(), ["chunks", "docindex", "documents", "meta", "texts", "vectors"]);
  // v3 format: one chunk and one vector record per chunk; docindex segments with chunk ids and term hashes.
  const nChunks = prepared.reduce((n, p) => n + p.chunks.length, 0);
  assert.equal((await raw.getAll("chunks")).length, nChunks);
  for (const v of await raw.getAll("vectors")) assert.deepEqual(Object.keys(v).sort(), ["chunkId", "docId", "f32", "modelId"]);
  const v3Segments = await raw.getAll("docindex");
  assert.equal(
    v3Segments.reduce((n, g) => n + (g["chunkIds"] as string[]).length, 0),
    nChunks,
  );
  assert.ok(v3Segments.every((g) => g["termHash"] instanceof Uint32Array));
  v3.close();
  await assertMigrated(s, prepared);
});

test("schema migration v1 → v4 in one upgrade (all steps in one versionchange transaction) keeps data", async () => {
  const s = setup();
  const prepared = await legacyFixture(s);
  await assertMigrated(s, prepared);
});

test("a failing migration step aborts the upgrade: the database stays at its old version with its data", async () => {
  const s = setup();
  const prepared = await legacyFixture(s);
  const broken = [...MIGRATIONS.slice(0, 3), { version: 4, description: "fails", up: async () => Promise.reject(new Error("step failed")) }];
  await assert.rejects(openDatabase(s.name, { dbFactory: s.factory, migrations: broken }), /step failed/u);
  const v3 = await openDatabase(s.name, { dbFactory: s.factory, migrations: MIGRATIONS.slice(0, 1) }).catch((e: Error) => e);
  // Still version 1 (the upgrade to 4 rolled back entirely, including steps 2 and 3).
  assert.ok(v3 instanceof Error || (v3 as RagDB).version === 1);
  if (!(v3 instanceof Error)) v3.close();
  await assertMigrated(s, prepared);
});

test("another embedding model: EmbeddingModelMismatchError, or {reembed: true} re-embeds every chunk", async () => {
  const s = setup();
  const a = await s.open();
  await a.add([{ text: SOLAR, mime: "text/markdown" }, { text: BREAD }, pdfFile()]);
  const chunksA = (await a.stats()).chunks;
  a.close();

  const other = new HashingTestEmbedder({ modelId: "test/other-model", dim: 32 });
  await assert.rejects(openIndex(s.name, { embedder: other, dbFactory: s.factory }), (e: unknown) => {
    assert.ok(e instanceof EmbeddingModelMismatchError);
    assert.deepEqual(e.stored, { modelId: s.embedder.modelId, dim: 64 });
    assert.deepEqual(e.current, { modelId: "test/other-model", dim: 32 });
    assert.match(e.message, /reembed: true/u);
    return true;
  });
  // Same id, other dimension: also a mismatch.
  await assert.rejects(openIndex(s.name, { embedder: new HashingTestEmbedder({ dim: 16 }), dbFactory: s.factory }), EmbeddingModelMismatchError);

  const progress: number[] = [];
  const b = await openIndex(s.name, { embedder: other, dbFactory: s.factory, reembed: true, onReembedProgress: (p) => progress.push(p.documents) });
  assert.deepEqual(progress, [1, 2, 3]);
  assert.equal(other.calls.flat().length, chunksA, "every chunk re-embedded once");
  const st = await b.stats();
  assert.deepEqual(st.embedding, { modelId: "test/other-model", dim: 32 });
  assert.equal(st.chunks, chunksA);
  assert.equal((await b.search("gearbox maintenance", { mode: "vector", k: 1 }))[0]?.document.title, "windfarm.pdf");
  b.close();
  const raw = await openDatabase(s.name, { dbFactory: s.factory });
  for (const v of await raw.getAll("vectors")) {
    assert.equal(v.modelId, "test/other-model");
    assert.equal(v.dim, 32);
    assert.ok(v.f32.length > 0 && v.f32.length % 32 === 0);
  }
  for (const d of await raw.getAll("docindex")) {
    assert.equal(d.modelId, "test/other-model");
    assert.equal(d.codes.length, 32 * d.count);
  }
  raw.close();
  // Now the old model is the mismatch.
  await assert.rejects(s.open(), EmbeddingModelMismatchError);
});

test("re-embedding is resumable and re-chunks documents whose chunks exceed the new model's limit", async () => {
  const s = setup();
  const a = await s.open();
  await a.add([{ text: SOLAR, mime: "text/markdown" }, { text: BREAD }, pdfFile()]);
  a.close();

  // A smaller context: SOLAR's 30+ token paragraphs no longer fit → that document is re-chunked.
  const small = new HashingTestEmbedder({ modelId: "test/small", maxTokens: 20 });
  small.failOnCall = 2;
  await assert.rejects(openIndex(s.name, { embedder: small, dbFactory: s.factory, reembed: true }), /test embedder failure/u);
  // Interrupted: still the old model, still a mismatch without reembed.
  await assert.rejects(openIndex(s.name, { embedder: small, dbFactory: s.factory }), EmbeddingModelMismatchError);
  const firstRunCalls = small.calls.length;
  small.failOnCall = null;
  const b = await openIndex(s.name, { embedder: small, dbFactory: s.factory, reembed: true, embedBatchSize: 100 });
  // The first document was finished in the first run and is skipped: 2 documents → 2 embed calls.
  assert.equal(small.calls.length - firstRunCalls, 2);
  const raw = await openDatabase(s.name, { dbFactory: s.factory });
  const chunks = await allChunks(raw);
  raw.close();
  for (const c of chunks) assert.ok(small.countTokens(c.text) <= 20, `chunk of ${small.countTokens(c.text)} tokens`);
  const solar = (await b.list()).find((d) => d.mime === "text/markdown")!;
  assert.equal(solar.chunkCount, chunks.filter((c) => c.docId === solar.id).length);
  const hits = await b.search("inverters alternating current", { k: 2 });
  assert.equal(hits[0]!.document.id, solar.id);
  const text = await b.getText(solar.id);
  assert.equal(text!.slice(hits[0]!.start, hits[0]!.end), hits[0]!.chunk.text);
  const st = await b.stats();
  assert.equal(st.chunks, chunks.length);
  b.close();
});

test("hybrid search: hit shape, page numbers, filters, near-duplicate collapse", async () => {
  const s = setup();
  const index = await s.open();
  // Two documents share a long paragraph; each chunk also holds its own one-line heading (so the chunks
  // are near-duplicates, not exact ones).
  const shared =
    "Safety notice: always switch off the main breaker before touching any wiring in the house. Test the " +
    "circuit with a voltage tester, wear insulated gloves, and never work alone on live installations or wet floors.";
  const [solar, bread, garden, pdf, dupA, dupB] = (
    await index.add([
      { text: SOLAR, mime: "text/markdown" },
      { text: BREAD, title: "Bread" },
      { text: GARDEN_HTML, mime: "text/html" },
      pdfFile(),
      { text: `Electrician handbook.\n\n${shared}`, title: "Handbook A" },
      { text: `Renovation guide.\n\n${shared}`, title: "Handbook B" },
    ])
  ).map((r) => (r.status === "added" ? r.document : assert.fail()));
  assert.equal(garden!.title, "Tomato garden");

  const hits = await index.search("tomato vines sun", { k: 3 });
  assert.equal(hits[0]!.document.id, garden!.id);
  const top = hits[0]!;
  assert.equal(typeof top.score, "number");
  assert.equal(top.start, top.chunk.start);
  assert.equal(top.end, top.chunk.end);
  assert.equal(top.page, null);
  assert.ok(top.ranks.bm25 !== null && top.ranks.vector !== null);
  assert.equal((await index.getText(garden!.id))!.slice(top.start, top.end), top.chunk.text);
  // Scores are descending RRF scores.
  for (let i = 1; i < hits.length; i++) assert.ok(hits[i - 1]!.score >= hits[i]!.score);

  const pdfHit = (await index.search("treasurer elected", { k: 1 }))[0]!;
  assert.equal(pdfHit.document.id, pdf!.id);
  assert.equal(pdfHit.page, 2);

  // Filters.
  const all = (q: string, filter: Parameters<RagIndex["search"]>[1]) => index.search(q, { k: 20, ...filter }).then((h) => new Set(h.map((x) => x.document.id)));
  assert.deepEqual(await all("energy sun panels bread", { filter: { docId: bread!.id } }), new Set([bread!.id]));
  assert.deepEqual(await all("energy sun panels report", { filter: { mime: "application/pdf" } }), new Set([pdf!.id]));
  const byDate = await all("energy sun panels bread tomatoes", { filter: { from: solar!.createdAt + 1, to: garden!.createdAt } });
  assert.deepEqual(byDate, new Set([bread!.id, garden!.id]));
  assert.deepEqual(await index.search("energy", { filter: { docId: "doc-none" } }), []);

  // The shared paragraph exists in two documents: collapsed into one hit unless disabled.
  const q = "switch off the main breaker before touching wiring";
  const collapsed = await index.search(q, { k: 5 });
  const sharedHits = collapsed.filter((h) => h.chunk.text.includes("main breaker"));
  assert.equal(sharedHits.length, 1);
  assert.equal(sharedHits[0]!.duplicates.length, 1);
  const twin = sharedHits[0]!.duplicates[0]!.docId;
  assert.deepEqual(new Set([sharedHits[0]!.document.id, twin]), new Set([dupA!.id, dupB!.id]));
  const plain = await index.search(q, { k: 5, collapseDuplicates: false });
  assert.equal(plain.filter((h) => h.chunk.text.includes("main breaker")).length, 2);
  assert.deepEqual(await index.search("   "), []);
  index.close();
});

test("ask(): numbered sources in the prompt, streamed answer, validated citations", async () => {
  const s = setup();
  const chat = new ScriptedChatModel("Panels convert about twenty percent of the light [1]. Inverters help [1, 2]. See also [7].");
  const index = await s.open({ chat });
  await index.add([{ text: SOLAR, mime: "text/markdown" }, { text: BREAD, title: "Bread" }, pdfFile()]);

  const r = await index.ask("How much light do solar panels convert?", { k: 3, maxAnswerTokens: 100 });
  assert.equal(r.answer, chat.answer);
  const prompt = chat.prompts[0]!;
  assert.equal(prompt[0]!.role, "system");
  // The question's turn comes last (after the prompt builder's worked examples).
  assert.match(prompt.at(-1)!.content, /^Sources:\n\n\[1\] Solar power at home\n/u);
  assert.match(prompt.at(-1)!.content, /Question: How much light do solar panels convert\?\n[^\n]+$/u);
  assert.equal(chat.options[0]!.maxTokens, 100);
  assert.ok(r.sources.length >= 2);
  assert.deepEqual(r.citations.cited, [1, 2]);
  assert.deepEqual(
    r.citations.invalid.map((i) => [i.n, i.marker]),
    [[7, "[7]"]],
  );
  const c1 = r.citations.citations[0]!;
  assert.equal(c1.n, 1);
  assert.equal(c1.docId, r.sources[0]!.hit.document.id);
  assert.equal(c1.start, r.sources[0]!.hit.start);
  assert.equal(r.answer.slice(c1.at, c1.at + 3), "[1]");

  // Streaming: pieces arrive in order and add up to the answer; result has the citations.
  const stream = index.ask("Which PDF page mentions the gearbox?", { stream: true, k: 2 });
  const pieces: string[] = [];
  for await (const p of stream) pieces.push(p);
  assert.ok(pieces.length > 3);
  const result = await stream.result;
  assert.equal(pieces.join(""), result.answer);
  assert.equal(result.citations.citations.length, 3);

  // Abort while streaming.
  const ac = new AbortController();
  const aborted = index.ask("solar panels and light", { stream: true, signal: ac.signal });
  await assert.rejects(
    (async () => {
      for await (const _ of aborted) ac.abort();
    })(),
    { name: "AbortError" },
  );
  await assert.rejects(aborted.result, { name: "AbortError" });
  index.close();

  const noChat = await s.open();
  await assert.rejects(noChat.ask("x"), (e: unknown) => e instanceof RagError && e.code === "no-chat-model");
  noChat.close();
});

test("export → import round trip into a fresh index gives the same documents and search results", async () => {
  const src = setup();
  const a = await src.open();
  await a.add([{ text: SOLAR, mime: "text/markdown", meta: { tags: ["energy"] } }, { text: BREAD, title: "Bread" }, pdfFile()]);
  const snapshot = await a.export();
  assert.equal(snapshot.format, "hearth-rag-snapshot");
  assert.equal(snapshot.documents.length, 3);
  assert.match(snapshot.documents[0]!.vectors[0]!, /^[A-Za-z0-9+/]+=*$/u);
  const json = JSON.stringify(snapshot);

  const dst = setup();
  const b = await dst.open();
  const imported = await b.import(json);
  assert.equal(imported.added.length, 3);
  assert.equal(dst.embedder.calls.length, 0, "vectors come from the snapshot, nothing re-embedded");
  assert.deepEqual(await b.list(), await a.list());
  assert.deepEqual(await b.stats(), await a.stats());
  for (const q of ["solar inverters", "sourdough crust", "gearbox treasurer", "energy"]) {
    const ha = await a.search(q, { k: 5 });
    const hb = await b.search(q, { k: 5 });
    assert.deepEqual(
      hb.map((h) => [h.chunk.id, h.score, h.page, h.start, h.end]),
      ha.map((h) => [h.chunk.id, h.score, h.page, h.start, h.end]),
      q,
    );
  }
  for (const d of await a.list()) assert.equal(await b.getText(d.id), await a.getText(d.id));
  // Byte-identical vectors.
  const rawA = await openDatabase(src.name, { dbFactory: src.factory });
  const rawB = await openDatabase(dst.name, { dbFactory: dst.factory });
  const va = await rawA.getAll("vectors");
  const vb = await rawB.getAll("vectors");
  assert.deepEqual(
    vb.map((v) => [v.modelId, Array.from(v.f32)]),
    va.map((v) => [v.modelId, Array.from(v.f32)]),
  );
  assert.deepEqual(await rawB.getAllKeys("vectors"), await rawA.getAllKeys("vectors"));
  const da = await rawA.getAll("docindex");
  const db = await rawB.getAll("docindex");
  assert.deepEqual(
    db.map((d) => [d.docId, d.first, d.count, Array.from(d.codes), Array.from(d.scales)]),
    da.map((d) => [d.docId, d.first, d.count, Array.from(d.codes), Array.from(d.scales)]),
  );
  rawA.close();
  rawB.close();

  // Importing again (here from a Blob) only finds duplicates.
  const again = await b.import(await a.exportBlob());
  assert.deepEqual(again.added, []);
  assert.equal(again.duplicates.length, 3);

  // Broken snapshots are refused without changing anything.
  await assert.rejects(b.import("{not json"), InvalidSnapshotError);
  await assert.rejects(b.import({ ...snapshot, format: "other" } as never), InvalidSnapshotError);
  const tampered = structuredClone(snapshot);
  tampered.documents[0]!.document.contentHash = "f".repeat(64);
  tampered.documents[0]!.document.id = "doc-tampered";
  tampered.documents[0]!.chunks[0]!.text = "not the span";
  await assert.rejects(b.import(tampered), InvalidSnapshotError);
  assert.equal((await b.stats()).documents, 3);

  // A snapshot from another model: mismatch, or re-embed on import.
  const c = await openIndex("other-model-idx", { embedder: new HashingTestEmbedder({ modelId: "test/m2", dim: 48 }), dbFactory: new IDBFactory() });
  await assert.rejects(c.import(snapshot), EmbeddingModelMismatchError);
  const re = await c.import(snapshot, { reembed: true });
  assert.equal(re.added.length, 3);
  assert.equal((await c.search("gearbox", { k: 1 }))[0]?.document.title, "windfarm.pdf");
  c.close();

  await b.clear();
  assert.deepEqual(await b.stats(), { ...(await a.stats()), documents: 0, chunks: 0, bytes: 0 });
  assert.deepEqual(await b.search("solar"), []);
  a.close();
  b.close();
  const counts = await storeCounts(dst.factory, dst.name);
  assert.deepEqual(counts, { documents: 0, texts: 0, chunks: 0, vectors: 0, docindex: 0, terms: 0 });
});

test("two connections to one index: a change in one is seen by the other", async () => {
  const s = setup();
  const one = await s.open();
  const two = await s.open();
  await one.add({ text: BREAD, title: "Bread" });
  // BroadcastChannel delivery is asynchronous.
  for (let i = 0; i < 50 && (await two.list()).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal((await two.list()).length, 1);
  assert.equal((await two.search("sourdough", { mode: "bm25" })).length, 1);
  one.close();
  two.close();
});

test("two connections adding documents: the term dictionary stays consistent (ids of the other's new terms are read in the write)", async () => {
  const s = setup();
  const one = await s.open();
  const two = await s.open();
  // No waiting for the other connection's change notice between the writes.
  await one.add({ text: BREAD, title: "Bread" });
  await two.add({ text: SOLAR, mime: "text/markdown" });
  await one.add({ text: "Kites need steady wind and a long line. Sourdough is not involved." });
  const fresh = await s.open();
  for (const index of [fresh, one, two]) {
    for (let i = 0; i < 50 && (await index.list()).length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal((await index.search("sourdough", { mode: "bm25" })).length, 2);
    assert.equal((await index.search("inverters", { mode: "bm25" }))[0]?.document.mime, "text/markdown");
    assert.equal((await index.search("kites", { mode: "bm25" })).length, 1);
  }
  for (const index of [fresh, one, two]) index.close();
  const db = await openDatabase(s.name, { dbFactory: s.factory });
  const records = await db.getAll("terms");
  let next = 0;
  for (const r of records) {
    assert.equal(r.first, next);
    next += r.terms.length;
  }
  const all = records.flatMap((r) => r.terms);
  assert.equal(new Set(all).size, all.length, "no term twice");
  db.close();
});

test("clear() in one connection while another still holds the old term dictionary: the other's next write reloads, terms stay searchable", async () => {
  const s = setup();
  const one = await s.open();
  const two = await s.open();
  await one.add({ text: BREAD, title: "Bread" });
  for (let i = 0; i < 50 && (await two.list()).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal((await two.list()).length, 1); // two has loaded the dictionary with BREAD's terms
  await one.clear();
  // At once (before the change notice): "sourdough" is a term two's dictionary knows, the store no longer.
  await two.add({ text: "Sourdough pancakes use the discard of the starter." });
  one.close();
  two.close();
  const fresh = await s.open();
  assert.equal((await fresh.list()).length, 1);
  assert.equal((await fresh.search("sourdough", { mode: "bm25" })).length, 1);
  fresh.close();
});

test("an embedder that breaks its contract is reported (EmbedderOutputError) and nothing is stored", async () => {
  const s = setup();
  const index = await s.open();
  await index.add({ text: BREAD });
  const before = await storeCounts(s.factory, s.name);
  const realEmbed = s.embedder.embed.bind(s.embedder);
  s.embedder.embed = async (texts) => (await realEmbed(texts)).map((v) => v.subarray(0, 10));
  await assert.rejects(index.add({ text: SOLAR }), (e: unknown) => e instanceof RagError && e.code === "embedder-output");
  s.embedder.embed = async (texts) => (await realEmbed(texts)).slice(1);
  await assert.rejects(index.add({ text: SOLAR }), (e: unknown) => e instanceof RagError && e.code === "embedder-output");
  s.embedder.embed = async (texts) => texts.map(() => new Float32Array(64));
  await assert.rejects(index.add({ text: SOLAR }), /all zeros/u);
  assert.deepEqual(await storeCounts(s.factory, s.name), before);
  index.close();
});

test("ask(): nothing relevant retrieved → the not-found answer, without calling the chat model", async () => {
  const s = setup();
  const chat = new ScriptedChatModel("must not be used [1]");
  const index = await s.open({ chat });
  await index.add([
    { text: SOLAR, mime: "text/markdown" },
    { text: BREAD, title: "Bread" },
  ]);
  // No query word occurs in the documents (no BM25 match); the vector hits are below the cosine bar.
  const q = "zebra migration across savannah grasslands";
  const hits = await index.search(q, { k: 3 });
  assert.ok(hits.length > 0 && hits.every((h) => h.scores.bm25 === null && h.scores.vector !== null && h.scores.vector < 0.9));
  const r = await index.ask(q, { minVectorScore: 0.9 });
  assert.equal(r.notFound, true);
  assert.equal(r.answer, NOT_FOUND_ANSWER);
  assert.deepEqual(r.sources, []);
  assert.deepEqual(r.citations.cited, []);
  assert.equal(chat.prompts.length, 0, "the chat model was not called");
  const pieces: string[] = [];
  const stream = index.ask(q, { stream: true, minVectorScore: 0.9, notFoundAnswer: "Not in your files." });
  for await (const p of stream) pieces.push(p);
  assert.deepEqual(pieces, ["Not in your files."]);
  assert.equal((await stream.result).notFound, true);
  // A question that matches a document goes to the model as before.
  const ok = await index.ask("sourdough starter", { minVectorScore: 0.9 });
  assert.equal(ok.notFound, false);
  assert.equal(chat.prompts.length, 1);
  index.close();
});

test("ask() sizes the prompt to a small context window: lowest-ranked sources dropped", async () => {
  const s = setup();
  const chat = new ScriptedChatModel("It depends [1].", 260);
  const index = await s.open({ chat });
  await index.add([{ text: SOLAR, mime: "text/markdown" }, { text: BREAD, title: "Bread" }, pdfFile(), { text: GARDEN_HTML, mime: "text/html" }]);
  const r = await index.ask("What do the panels and the turbines produce?", { k: 6, maxAnswerTokens: 40 });
  assert.ok(r.dropped.length > 0, "nothing was dropped");
  assert.ok(r.sources.length > 0, "no source fit");
  assert.ok(r.promptTokens <= 220, `prompt ${r.promptTokens} > 220`);
  const all = await index.search("What do the panels and the turbines produce?", { k: 6 });
  assert.deepEqual(
    [...r.sources.map((x) => x.hit.chunk.id), ...r.dropped.map((h) => h.chunk.id)],
    all.map((h) => h.chunk.id),
  );
  assert.deepEqual(r.citations.cited, [1]);
  index.close();
});
