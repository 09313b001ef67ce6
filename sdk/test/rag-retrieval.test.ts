import { test } from "node:test";
import assert from "node:assert/strict";
import { idf, scoreBm25, termFrequencies, tokenize, type Posting } from "../src/rag/bm25.js";
import { collapseNearDuplicates, documentFilter, convexFusion, jaccard, reciprocalRankFusion, shingles, type SearchHit } from "../src/rag/search.js";
import { candidateCount, cosine, dot, dotI8, normalize, prescan, quantize, rerank } from "../src/rag/vectors.js";
import {
  compactText,
  decodeTerms,
  docIndexOf,
  encodeTerms,
  expandText,
  SEGMENT_MAX_CHUNKS,
  type DocumentRecord,
  type PreparedDocument,
} from "../src/rag/store.js";
import { Catalog } from "../src/rag/catalog.js";

test("tokenize: lowercase, NFKC, unicode words, stopwords, CJK bigrams", () => {
  assert.deepEqual(tokenize("The Quick brown FOX and the lazy dog"), ["quick", "brown", "fox", "lazy", "dog"]);
  assert.deepEqual(tokenize("Café naïve Über ｆｕｌｌｗｉｄｔｈ"), ["café", "naïve", "über", "fullwidth"]);
  assert.deepEqual(tokenize("Привет, мир! 42 x2"), ["привет", "мир", "42", "x2"]);
  assert.deepEqual(tokenize("東京都に住む"), ["東京", "京都", "都に", "に住", "住む"]);
  assert.deepEqual(tokenize("version3東京"), ["version3", "東京"]);
  assert.deepEqual(tokenize("हिन्दी भाषा"), ["हिन्दी", "भाषा"]); // combining marks stay in the word
  assert.deepEqual(tokenize("...!!! --- "), []);
});

test("termFrequencies counts terms and length", () => {
  const { tf, length } = termFrequencies("apple banana apple the cherry apple");
  assert.equal(length, 5);
  assert.equal(tf.get("apple"), 3);
  assert.equal(tf.get("the"), undefined);
});

function corpusOf(chunks: Record<string, string>) {
  const postings = new Map<string, Posting[]>();
  const lengths = new Map<string, number>();
  let total = 0;
  for (const [id, text] of Object.entries(chunks)) {
    const { tf, length } = termFrequencies(text);
    lengths.set(id, length);
    total += length;
    for (const [t, n] of tf) {
      if (!postings.has(t)) postings.set(t, []);
      postings.get(t)!.push([id, n]);
    }
  }
  return {
    postings,
    corpus: { chunkCount: lengths.size, totalLength: total, lengthOf: (id: string) => lengths.get(id) },
  };
}

test("BM25 ranking sanity: tf, idf and length normalisation", () => {
  const { postings, corpus } = corpusOf({
    a: "solar panels convert sunlight into electricity on the roof",
    b: "solar solar solar energy is solar power from the sun",
    c: "wind turbines generate electricity from moving air",
    d: "the cat sat on the mat and looked at the garden for a long long long long time while solar",
    e: "a recipe for bread with flour water salt and yeast",
  });
  const rank = (q: string) => scoreBm25(tokenize(q), postings, corpus).map((h) => h.chunkId);
  assert.equal(rank("solar")[0], "b", "highest tf wins");
  assert.deepEqual(rank("solar").slice(-1), ["d"], "a long chunk with one mention ranks last");
  assert.equal(rank("bread yeast")[0], "e");
  assert.deepEqual(rank("electricity wind"), ["c", "a"], "the rarer term (wind) lifts c above a");
  assert.deepEqual(rank("quantum"), []);
  assert.ok(idf(1, 100) > idf(50, 100));
  // Filter applies before scoring.
  assert.deepEqual(scoreBm25(tokenize("solar"), postings, corpus, (id) => id !== "b").map((h) => h.chunkId)[0], "a");
});

test("RRF: k=60 scores, agreement beats a single first place, ties by first appearance", () => {
  const fused = reciprocalRankFusion([
    ["x", "y", "z"],
    ["y", "w", "x"],
  ]);
  const score = Object.fromEntries(fused.map((f) => [f.id, f.score]));
  assert.ok(Math.abs(score["y"]! - (1 / 62 + 1 / 61)) < 1e-12);
  assert.ok(Math.abs(score["x"]! - (1 / 61 + 1 / 63)) < 1e-12);
  assert.ok(Math.abs(score["w"]! - 1 / 62) < 1e-12);
  assert.deepEqual(
    fused.map((f) => f.id),
    ["y", "x", "w", "z"],
  );
  // Equal scores: the id seen first wins.
  assert.deepEqual(
    reciprocalRankFusion([["p"], ["q"]]).map((f) => f.id),
    ["p", "q"],
  );
});

test("int8 quantisation stays close to f32 and the pre-scan + re-rank equals brute force", async () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const dim = 64;
  const vecs = new Map<string, Float32Array>();
  for (let i = 0; i < 800; i++) vecs.set(`c${i}`, normalize(Float32Array.from({ length: dim }, rand)));
  const entries = [...vecs].map(([chunkId, v]) => ({ chunkId, ...quantize(v) }));
  for (const e of entries.slice(0, 50)) {
    const v = vecs.get(e.chunkId)!;
    assert.ok(Math.abs(dotI8(v, e) - 1) < 0.02, "int8 self-similarity within 2%");
  }
  for (let q = 0; q < 10; q++) {
    const query = normalize(Float32Array.from({ length: dim }, rand));
    const k = 10;
    const brute = [...vecs]
      .map(([chunkId, v]) => ({ chunkId, score: dot(query, v) }))
      .sort((a, b) => b.score - a.score)
      .slice(0, k);
    const candidates = prescan(query, entries, candidateCount(k));
    assert.equal(candidates.length, candidateCount(k));
    const reranked = (await rerank(query, candidates, async (ids) => new Map(ids.map((id) => [id, vecs.get(id)!])))).slice(0, k);
    assert.deepEqual(
      reranked.map((h) => h.chunkId),
      brute.map((h) => h.chunkId),
    );
    for (let i = 0; i < k; i++) assert.equal(reranked[i]!.score, brute[i]!.score, "re-rank uses exact f32 scores");
  }
  assert.ok(Math.abs(cosine(Float32Array.of(1, 0), Float32Array.of(2, 0)) - 1) < 1e-9);
  assert.throws(() => normalize(new Float32Array(4)), /all zeros/u);
  assert.throws(() => normalize(Float32Array.of(1, Number.NaN)), /not finite/u);
});

function doc(id: string, mime: DocumentRecord["mime"], createdAt: number): DocumentRecord {
  return { id, title: id, mime, contentHash: id, bytes: 1, createdAt, pages: null, meta: {}, chunkCount: 1, textLength: 1 };
}

test("documentFilter: docId, mime, date range", () => {
  const docs = [doc("a", "text/plain", 1000), doc("b", "application/pdf", 2000), doc("c", "text/html", 3000)];
  const ids = (f: Parameters<typeof documentFilter>[0]) => docs.filter(documentFilter(f)).map((d) => d.id);
  assert.deepEqual(ids(undefined), ["a", "b", "c"]);
  assert.deepEqual(ids({ docId: "b" }), ["b"]);
  assert.deepEqual(ids({ docId: ["a", "c"] }), ["a", "c"]);
  assert.deepEqual(ids({ mime: ["application/pdf", "text/html"] }), ["b", "c"]);
  assert.deepEqual(ids({ from: 2000 }), ["b", "c"]);
  assert.deepEqual(ids({ to: new Date(2000) }), ["a", "b"]);
  assert.deepEqual(ids({ from: 1500, to: 2500, mime: "application/pdf" }), ["b"]);
  assert.deepEqual(ids({ from: 1500, to: 2500, mime: "text/plain" }), []);
});

function hit(id: string, docId: string, text: string): SearchHit {
  return {
    score: 1,
    chunk: { id, docId, ordinal: 0, text, page: null, pageEnd: null, start: 0, end: text.length, tokenCount: 1 },
    document: doc(docId, "text/plain", 0),
    page: null,
    pageEnd: null,
    start: 0,
    end: text.length,
    ranks: { bm25: null, vector: null },
    scores: { bm25: null, vector: null },
    duplicates: [],
  };
}

test("near-duplicate collapse keeps the best-ranked copy and records the others", () => {
  const base = "the quarterly report shows revenue grew by twelve percent in the northern region this year";
  const hits = [
    hit("1", "d1", base),
    hit("2", "d2", "a completely different chunk about gardening and tomatoes in early spring"),
    hit("3", "d3", `${base}.`), // same words
    hit("4", "d4", base.replace("twelve", "eleven")), // one word changed: still near-duplicate at 0.6
    hit("5", "d5", "the quarterly report"),
  ];
  assert.ok(jaccard(shingles(base), shingles(base.replace("twelve", "eleven"))) > 0.6);
  const out = collapseNearDuplicates(hits, 0.6);
  assert.deepEqual(
    out.map((h) => h.chunk.id),
    ["1", "2", "5"],
  );
  assert.deepEqual(
    out[0]!.duplicates.map((d) => d.chunkId),
    ["3", "4"],
  );
  // A strict threshold keeps the edited copy.
  const strict = collapseNearDuplicates(
    hits.map((h) => ({ ...h, duplicates: [] })),
    0.95,
  );
  assert.deepEqual(
    strict.map((h) => h.chunk.id),
    ["1", "2", "4", "5"],
  );
});

/** A PreparedDocument of `texts` (one chunk each) with the given unit vectors, for Catalog tests. */
function preparedDoc(id: string, texts: string[], vecs: Float32Array[]): PreparedDocument {
  const chunks = texts.map((text, i) => ({
    id: `${id}:${i}`,
    docId: id,
    ordinal: i,
    text,
    page: null,
    pageEnd: null,
    start: 0,
    end: text.length,
    tokenCount: 1,
  }));
  return {
    document: { ...doc(id, "text/plain", 1), chunkCount: texts.length },
    text: { docId: id, text: texts.join("\n\n"), pages: null },
    chunks,
    vectors: chunks.map((c, i) => ({ chunkId: c.id, docId: id, modelId: "m", f32: vecs[i]!, ...quantize(vecs[i]!) })),
    terms: chunks.map((c) => ({ chunkId: c.id, ...termFrequencies(c.text) })),
  };
}

test("Catalog (in-memory typed arrays, WebAssembly SIMD scan) equals the reference BM25 and pre-scan, across removes and slot reuse", () => {
  let seed = 11;
  const rand = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const words = ["solar", "panel", "wind", "turbine", "bread", "flour", "garden", "tomato", "river", "bridge", "stone", "winter"];
  const dim = 48; // a multiple of 16: the SIMD path
  const docs: PreparedDocument[] = [];
  for (let d = 0; d < 12; d++) {
    const texts = Array.from({ length: 9 }, () =>
      Array.from({ length: 6 + Math.floor((rand() + 1) * 6) }, () => words[Math.floor((rand() + 1) * 6) % 12]).join(" "),
    );
    docs.push(
      preparedDoc(
        `d${d}`,
        texts,
        texts.map(() => normalize(Float32Array.from({ length: dim }, rand))),
      ),
    );
  }
  const simd = new Catalog("m");
  const plain = new Catalog("m", { simd: false });
  for (const p of docs) {
    simd.add(p);
    plain.add(p);
  }
  assert.equal(simd.simd, true, "WebAssembly SIMD is available in Node; the SIMD scan must be the one in use");
  assert.equal(plain.simd, false);
  // Remove three documents, then add one back (its slots are reused) and one new.
  for (const id of ["d1", "d5", "d6"]) {
    simd.remove(id);
    plain.remove(id);
  }
  const extra = preparedDoc(
    "dx",
    ["winter river bridge stone", "solar solar solar panel"],
    [normalize(Float32Array.from({ length: dim }, rand)), normalize(Float32Array.from({ length: dim }, rand))],
  );
  for (const p of [docs[5]!, extra]) {
    simd.add(p);
    plain.add(p);
  }
  const live = [...docs.filter((p) => !["d1", "d6"].includes(p.document.id)), extra];
  const allChunks = live.flatMap((p) => p.chunks.map((c, i) => ({ id: c.id, docId: p.document.id, text: c.text, v: p.vectors[i]! })));
  assert.equal(simd.chunkCount, allChunks.length);

  const { postings, corpus } = corpusOf(Object.fromEntries(allChunks.map((c) => [c.id, c.text])));
  const entries = allChunks.map((c) => ({ chunkId: c.id, i8: c.v.i8, scale: c.v.scale }));
  for (const [q, filter] of [
    ["solar panel", null],
    ["winter bridge tomato", null],
    ["river", new Set(["d0", "dx"])],
  ] as const) {
    const mask = filter === null ? null : simd.mask(filter);
    const accept = (id: string) => filter === null || filter.has(id.split(":")[0]!);
    // Every scored chunk (n = all), ordered by (score rounded to 1e-9, id): the small vocabulary makes exact
    // ties common, and the two break them differently (slot vs id order).
    const canon = (hits: Array<{ chunkId: string; score: number }>) =>
      hits.map((h) => [Math.round(h.score * 1e9) / 1e9, h.chunkId] as const).sort((a, b) => b[0] - a[0] || (a[1] < b[1] ? -1 : 1));
    const want = scoreBm25(tokenize(q), postings, corpus, accept);
    assert.ok(want.length > 5);
    for (const cat of [simd, plain]) {
      const got = cat.bm25(tokenize(q), 1000, mask).map((h) => ({ chunkId: cat.chunkId(h.slot), score: h.score }));
      assert.deepEqual(canon(got), canon(want), q);
      assert.deepEqual(
        got.slice(0, 5).map((h) => h.score),
        want.slice(0, 5).map((h) => h.score),
      );
    }
    const query = normalize(Float32Array.from({ length: dim }, rand));
    const ref = prescan(query, entries, 15, accept);
    for (const cat of [simd, plain]) {
      const got = cat.prescan(query, 15, mask).map((h) => ({ chunkId: cat.chunkId(h.slot), score: h.score }));
      assert.deepEqual(
        got.map((h) => h.chunkId),
        ref.map((h) => h.chunkId),
        `prescan ${q}`,
      );
      // SIMD quantises the query to int16: scores agree to ~1e-4.
      got.forEach((h, i) => {
        assert.ok(Math.abs(h.score - ref[i]!.score) < 1e-3, `${h.score} vs ${ref[i]!.score}`);
      });
      assert.ok(got.every((h) => accept(h.chunkId)));
    }
  }
});

test("docindex segments: a large document is split below 64 KiB per record and 255 chunks, and loads back whole", () => {
  let seed = 5;
  const rand = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const dim = 384;
  const texts = Array.from({ length: 300 }, (_, i) => Array.from({ length: 40 }, (_, j) => `w${(i * 7 + j * 13) % 997}`).join(" "));
  const p = preparedDoc(
    "big",
    texts,
    texts.map(() => normalize(Float32Array.from({ length: dim }, rand))),
  );
  const segments = docIndexOf(p);
  assert.ok(segments.length >= 3, `${segments.length} segments`);
  assert.deepEqual(
    segments.map((s) => s.first),
    segments.map((_, i) => segments.slice(0, i).reduce((n, x) => n + x.count, 0)),
  );
  assert.equal(
    segments.reduce((n, s) => n + s.count, 0),
    p.chunks.length,
  );
  for (const s of segments) {
    assert.ok(s.count <= SEGMENT_MAX_CHUNKS);
    const bytes = s.codes.byteLength + s.scales.byteLength + s.terms.byteLength;
    assert.ok(bytes < 64 * 1024, `segment ${s.key}: ${bytes} bytes`);
  }
  const cat = new Catalog("m");
  cat.add(p);
  assert.equal(cat.chunkCount, 300);
  const { postings, corpus } = corpusOf(Object.fromEntries(p.chunks.map((c) => [c.id, c.text])));
  // Many chunks tie here: compare the top-10 scores, and each hit's score with the reference's for that chunk.
  const want = scoreBm25(["w5", "w500"], postings, corpus);
  const wantScore = new Map(want.map((h) => [h.chunkId, h.score]));
  const got = cat.bm25(["w5", "w500"], 10, null);
  assert.deepEqual(
    got.map((h) => h.score),
    want.slice(0, 10).map((h) => h.score),
  );
  for (const h of got) assert.equal(h.score, wantScore.get(cat.chunkId(h.slot)));
  const q = p.vectors[250]!.f32;
  assert.equal(cat.chunkId(cat.prescan(q, 1, null)[0]!.slot), "big:250");
  cat.remove("big");
  assert.equal(cat.chunkCount, 0);
  assert.deepEqual(cat.bm25(["w5"], 10, null), []);
});

test("stored text: only what no chunk holds is kept, and the full text is rebuilt exactly (gaps, overlaps, edges)", () => {
  const text = "  Alpha beta gamma. Delta epsilon.\n\nZeta eta theta iota.  \n";
  const span = (start: number, end: number, ordinal: number) => ({
    id: `d:${ordinal}`,
    docId: "d",
    ordinal,
    text: text.slice(start, end),
    page: null,
    pageEnd: null,
    start,
    end,
    tokenCount: 1,
  });
  const a = text.indexOf("Alpha");
  const d = text.indexOf("Delta");
  const z = text.indexOf("Zeta");
  // Chunk 1 overlaps chunk 0 ("Delta epsilon." repeated), chunk 2 follows a paragraph gap.
  const chunks = [span(a, text.indexOf("Delta") + 14, 0), span(d, text.indexOf("\n\n"), 1), span(z, text.indexOf("iota.") + 5, 2)];
  const stored = compactText({ docId: "d", text, pages: null }, chunks);
  assert.deepEqual(stored.gaps, ["  ", "", "\n\n", "  \n"]);
  assert.equal(expandText(stored, [...chunks].reverse()).text, text);
  assert.equal(expandText(compactText({ docId: "d", text: "", pages: null }, []), []).text, "");
  assert.throws(() => compactText({ docId: "d", text: text.replace("beta", "BETA"), pages: null }, chunks), /differs from its span/u);
});

test("BM25 forward index (docindex v4): varint encoding round-trips large ids and clamps tf at 255", () => {
  const ids = new Map([
    ["a", 0],
    ["b", 1],
    ["c", 2 ** 31 + 5],
    ["d", 300],
  ]);
  const chunks = [
    {
      tf: new Map([
        ["c", 1],
        ["a", 3],
        ["d", 1000],
      ]),
      length: 1004,
    },
    { tf: new Map<string, number>(), length: 0 },
    { tf: new Map([["b", 2]]), length: 2 },
  ];
  const bytes = encodeTerms(chunks, (t) => ids.get(t)!);
  const d = decodeTerms(bytes, chunks.length);
  assert.deepEqual(Array.from(d.lengths), [1004, 0, 2]);
  assert.deepEqual(Array.from(d.termStart), [0, 3, 3, 4]);
  assert.deepEqual(Array.from(d.ids), [0, 300, 2 ** 31 + 5, 1]);
  assert.deepEqual(Array.from(d.tfs), [3, 255, 1, 2]);
  assert.throws(() => decodeTerms(bytes.subarray(0, bytes.length - 1), chunks.length), /truncated/u);
});

test("convex fusion: min-max normalised scores, weighted; a confident hit of one list is not overtaken by rank alone", () => {
  // BM25 is sure of "a" (far ahead), dense is flat: RRF with equal weights ranks "x" (2nd in both) first.
  const bm25 = [
    { id: "a", score: 20 },
    { id: "x", score: 5 },
    { id: "c", score: 4 },
  ];
  const dense = [
    { id: "b", score: 0.52 },
    { id: "x", score: 0.51 },
    { id: "d", score: 0.4 },
  ];
  assert.equal(reciprocalRankFusion([bm25.map((h) => h.id), dense.map((h) => h.id)])[0]?.id, "x");
  const fused = convexFusion([bm25, dense], [0.55, 0.45]);
  assert.deepEqual(
    fused.map((h) => h.id),
    ["a", "b", "x", "c", "d"],
  );
  assert.ok(Math.abs(fused[0]!.score - 0.55) < 1e-12);
  // A list of equal scores (or one hit) counts as all-best; an empty list adds nothing.
  assert.deepEqual(convexFusion([[{ id: "q", score: 3 }], []], [0.5, 0.5]), [{ id: "q", score: 0.5 }]);
});
