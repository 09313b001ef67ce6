#!/usr/bin/env node
// Choose the hybrid fusion setting on one half of the labelled questions and report it on the other half.
//   cd sdk && HEARTH_RAG_RECALL_GRID=/tmp/grid-trigram.json node --import tsx --test test/rag-recall.test.ts
//   cd sdk && HEARTH_RAG_RECALL_EMBEDDER=minilm HEARTH_RAG_RECALL_GRID=/tmp/grid-minilm.json node --import tsx --test test/rag-recall.test.ts
//   node bench/rag/fusion-split.mjs /tmp/grid-trigram.json /tmp/grid-minilm.json
// Halves are by topic (all questions of a topic on one side: the parity of the SHA-1 of the topic name as a
// number), so questions drawn from the same text do not leak across halves. Per
// fusion family the setting is the one with the largest worst-case margin (over the embedders given) of
// hybrid recall@5 over max(BM25, dense) on the tuning half, then the largest summed margin.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

const runs = process.argv.slice(2).map((p) => JSON.parse(readFileSync(p, "utf8")));
if (runs.length === 0) throw new Error("usage: fusion-split.mjs GRID.json [GRID.json ...]");
const half = (topic) => Number(BigInt(`0x${createHash("sha1").update(topic).digest("hex")}`) % 2n);
const indices = (run, h) => run.questions.flatMap((q, i) => (h === "all" || half(q.topic) === h ? [i] : []));
const recall = (found, idx) => idx.reduce((n, i) => n + found[i], 0) / idx.length;
const rows = (run) => Object.fromEntries(run.rows.map((r) => [r.name, r.found]));
const margins = (name, h) =>
  runs.map((run) => {
    const r = rows(run);
    const idx = indices(run, h);
    return recall(r[name], idx) - Math.max(recall(r.bm25, idx), recall(r.dense, idx));
  });
const f3 = (x) => x.toFixed(3);
for (const run of runs) {
  const r = rows(run);
  const line = [0, 1, "all"].map((h) => `${h === "all" ? "all" : `half ${h}`} (n=${indices(run, h).length}): BM25 ${f3(recall(r.bm25, indices(run, h)))}, dense ${f3(recall(r.dense, indices(run, h)))}`);
  console.log(`${run.embedder}: ${line.join("; ")}`);
}
const names = runs[0].rows.map((r) => r.name).filter((n) => n !== "bm25" && n !== "dense");
for (const family of ["rrf", "convex"]) {
  for (const tune of [0, 1]) {
    const score = (n) => {
      const m = margins(n, tune);
      return [Math.min(...m), m.reduce((a, b) => a + b, 0)];
    };
    const best = names.filter((n) => n.startsWith(family)).reduce((a, b) => {
      const [sa, sb] = [score(a), score(b)];
      return sb[0] > sa[0] || (sb[0] === sa[0] && sb[1] > sa[1]) ? b : a;
    });
    const parts = runs.map((run) => {
      const r = rows(run);
      const test = indices(run, 1 - tune);
      return `${run.embedder.split("/").pop()}: held-out ${f3(recall(r[best], test))} (BM25 ${f3(recall(r.bm25, test))}, dense ${f3(recall(r.dense, test))}), all ${f3(recall(r[best], indices(run, "all")))}`;
    });
    console.log(`${family} chosen on half ${tune}: ${best} | ${parts.join(" | ")}`);
  }
}
