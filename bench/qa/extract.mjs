#!/usr/bin/env node
// Extract the QA set's documents with the SDK's own RAG extraction (sdk/src/rag/extract.ts: pdf.js for PDF,
// the Markdown and HTML extractors), so tests check the facts where the index will see them.
//
// Usage (from sdk/, whose node_modules hold tsx, so the SDK's TypeScript sources load as they are):
//   cd sdk && node --import tsx ../bench/qa/extract.mjs <set folder>   (prints one JSON object on stdout:
//   {"<docs/file>": {"mime", "title", "text", "pages": [{page, start, end}] | null}, ...})
import { readFileSync } from "node:fs";
import { join } from "node:path";

const folder = process.argv[2];
if (folder === undefined) {
  console.error("usage: (cd sdk && node --import tsx ../bench/qa/extract.mjs <set folder with questions.json>)");
  process.exit(2);
}
const { extract, DEFAULT_MAX_BYTES } = await import("../../sdk/src/rag/extract.ts");
const labels = JSON.parse(readFileSync(join(folder, "questions.json"), "utf8"));
const out = {};
for (const doc of labels.documents) {
  const bytes = new Uint8Array(readFileSync(join(folder, doc.file)));
  const e = await extract({ bytes, name: doc.file.split("/").pop(), declaredType: doc.mime }, { maxBytes: DEFAULT_MAX_BYTES });
  out[doc.file] = { mime: e.mime, title: e.title, text: e.text, pages: e.pages };
}
process.stdout.write(`${JSON.stringify(out)}\n`);
