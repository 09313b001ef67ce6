#!/usr/bin/env node
// Stage 1 of the document-QA benchmark: the SDK's own RAG path in Node. Ingests the QA set (sdk/src/rag:
// extraction, token-aware chunking, embedding, IndexedDB store via fake-indexeddb), retrieves the top k
// hybrid hits per question, builds each answer prompt with the SDK's buildPrompt for the chat model's
// context window, and writes prompts.json (messages + numbered sources with document and page) for the
// generation stage (compile/hearth/eval/qa.py, `hearth eval --qa`).
//
// Usage (from sdk/, whose node_modules hold tsx and the SDK's dependencies):
//   cd sdk && node --import tsx ../bench/qa/retrieve.mjs --chat <chat package dir> --out <prompts.json>
//       [--set ../bench/qa/data] [--embedder <encoder package dir> | --embedder test] [--k 6]
//       [--context 2048] [--chunk-tokens 200]
//   --chat      a chat package (tokenizer.json, tokenizer_config.json, mlc-chat-config.json): its tokenizer and
//               chat template count the prompt's tokens exactly as the engine will (like the demo's ProxyChat)
//   --embedder  an encoder package (all-MiniLM-L6-v2 q8f32_1 / q0f32), run on WebGPU (Node + Dawn); "test" for a
//               character-trigram stand-in (not a model: recorded as such in the output)
//   defaults mirror the demo (demo_rag/src/main.ts TOP_K = 6; rag.worker.ts: chunks of min(encoder max, 200,
//   context / 6) tokens, buildPrompt's default options for a context of 1024 or more)
// The recall@k of a question: whether one of the k hits holds its fact sentence (whitespace-insensitive).
import { createRequire } from "node:module";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const log = (s) => process.stderr.write(`[qa-retrieve] ${s}\n`);
const here = dirname(new URL(import.meta.url).pathname);
const sdk = resolve(here, "../../sdk");
const { values: args } = parseArgs({
  options: {
    set: { type: "string", default: resolve(here, "data") },
    chat: { type: "string" },
    embedder: { type: "string" },
    out: { type: "string" },
    k: { type: "string", default: "6" },
    context: { type: "string", default: "2048" },
    "chunk-tokens": { type: "string" },
  },
});
if (args.chat === undefined || args.out === undefined || args.embedder === undefined) {
  console.error("usage: cd sdk && node --import tsx ../bench/qa/retrieve.mjs --chat <chat package> --embedder <encoder package | test> --out <prompts.json> [--set DIR] [--k 6] [--context 2048]");
  process.exit(2);
}
const K = Number(args.k);
const CONTEXT = Number(args.context);

// fake-indexeddb's globals (IndexedDB in Node), from the SDK's own dev dependencies.
createRequire(join(sdk, "package.json"))("fake-indexeddb/auto");
const { openIndex, buildPrompt } = await import(pathToFileURL(join(sdk, "src/rag/index.ts")).href);
const { loadTokenizer, ChatTemplate } = await import(pathToFileURL(join(sdk, "src/index.ts")).href);

const squash = (s) => s.split(/\s+/u).filter((w) => w.length > 0).join(" ");
const holds = (text, sentence) => squash(text).includes(squash(sentence));
const readJson = (p) => JSON.parse(readFileSync(p, "utf8"));

/** The chat model's token counting, as the demo's ProxyChat does it (same files, same template). */
async function chatCounter(dir) {
  const chatConfig = readJson(join(dir, "mlc-chat-config.json"));
  const tokenizerConfigPath = join(dir, "tokenizer_config.json");
  const tokenizerConfig = existsSync(tokenizerConfigPath) ? readJson(tokenizerConfigPath) : undefined;
  const tokenizerJson = readFileSync(join(dir, "tokenizer.json"), "utf8");
  const tokenizer = await loadTokenizer(tokenizerConfig === undefined ? { tokenizerJson } : { tokenizerJson, tokenizerConfig });
  const jinja = join(dir, "chat_template.jinja");
  const template = await ChatTemplate.fromSources({
    ...(tokenizerConfig === undefined ? {} : { tokenizerConfig }),
    chatConfig,
    ...(existsSync(jinja) && !tokenizerConfig?.chat_template ? { chatTemplateJinja: readFileSync(jinja, "utf8") } : {}),
  });
  const countTokens = (text) => tokenizer.encode(text, { addSpecialTokens: false }).length;
  return {
    contextWindow: Math.min(CONTEXT, chatConfig.context_window_size ?? CONTEXT),
    countTokens,
    countMessageTokens: (messages) => countTokens(template.render(messages, { add_generation_prompt: true })),
    stream: () => {
      throw new Error("retrieve.mjs builds prompts only; generation is stage 2");
    },
    modelId: chatConfig.model_id ?? (existsSync(join(dir, "hearth-manifest.json")) ? readJson(join(dir, "hearth-manifest.json")).model_id : null) ?? basename(dir),
  };
}

/** Character-trigram hashing: a deterministic stand-in, NOT a model (the SDK's recall test uses the same idea). */
class TrigramTestEmbedder {
  modelId = "test/char-trigram-256";
  dim = 256;
  maxTokens = 256;
  countTokens(text) {
    let n = 2;
    for (const w of text.split(/\s+/u)) if (w.length > 0) n += Math.max(1, Math.ceil(w.length / 4));
    return n;
  }
  async embed(texts) {
    return texts.map((text) => {
      const v = new Float32Array(this.dim);
      for (const w of text.toLowerCase().match(/[a-z0-9_]+/gu) ?? []) {
        const padded = `^${w}$`;
        for (let i = 0; i + 3 <= padded.length; i++) {
          let h = 0x811c9dc5;
          for (let j = i; j < i + 3; j++) h = Math.imul(h ^ padded.charCodeAt(j), 0x01000193) >>> 0;
          v[h % this.dim] += h & 0x80000000 ? -1 : 1;
        }
      }
      v[0] += 0.01;
      return v;
    });
  }
}

async function loadEmbedder(spec) {
  if (spec === "test") return { embedder: new TrigramTestEmbedder(), info: { kind: "test", note: "character-trigram hashing stand-in, not a model" } };
  const { installNodeGPU } = await import(pathToFileURL(join(sdk, "test/support/node-gpu.ts")).href);
  const { fileFetch } = await import(pathToFileURL(join(sdk, "test/support/file-fetch.ts")).href);
  const { EncoderModel } = await import(pathToFileURL(join(sdk, "src/encoder/model.ts")).href);
  const gpu = await installNodeGPU();
  const t0 = performance.now();
  const model = await EncoderModel.load(pathToFileURL(resolve(spec) + "/").href, { gpu, fetch: fileFetch, cache: "none", target: "webgpu" });
  return {
    embedder: model,
    info: { kind: "package", package: resolve(spec), modelId: model.modelId, adapter: model.adapter ?? null, loadMs: performance.now() - t0 },
  };
}

const labels = readJson(join(args.set, "questions.json"));
const chat = await chatCounter(resolve(args.chat));
const { embedder, info: embedderInfo } = await loadEmbedder(args.embedder);
const chunkTokens = Number(args["chunk-tokens"] ?? Math.max(32, Math.min(embedder.maxTokens, 200, Math.floor(chat.contextWindow / 6))));
log(`embedder ${embedder.modelId} (${embedderInfo.kind}), chat ${chat.modelId} context ${chat.contextWindow}, chunks <= ${chunkTokens} tokens, k ${K}`);

const index = await openIndex(`qa-${Date.now()}`, { embedder, chunking: { maxTokens: chunkTokens } });
const t0 = performance.now();
const inputs = labels.documents.map((d) => ({ file: new File([readFileSync(join(args.set, d.file))], basename(d.file), { type: d.mime }) }));
const added = await index.add(inputs);
const ingestMs = performance.now() - t0;
const fileOf = new Map();
const documents = added.map((r, i) => {
  if (r.status !== "added") throw new Error(`${labels.documents[i].file}: ${r.status}${r.error ? ` (${r.error.message})` : ""}`);
  fileOf.set(r.document.id, labels.documents[i].file);
  return { file: labels.documents[i].file, docId: r.document.id, title: r.document.title, chunks: r.document.chunkCount ?? null };
});
const stats = await index.stats();
log(`ingested ${stats.documents} documents, ${stats.chunks} chunks in ${(ingestMs / 1000).toFixed(1)} s`);

const source = (n, hit) => ({ n, document: fileOf.get(hit.document.id), title: hit.document.title, page: hit.page, pageEnd: hit.pageEnd, text: hit.chunk.text });
const prompts = [];
let searchMs = 0;
for (const q of labels.questions) {
  const s0 = performance.now();
  const hits = await index.search(q.question, { k: K });
  searchMs += performance.now() - s0;
  const built = buildPrompt(q.question, hits, chat);
  const rank = hits.findIndex((h) => holds(h.chunk.text, q.sentence));
  const inPrompt = built.sources.some((s) => holds(s.hit.chunk.text, q.sentence));
  prompts.push({
    id: q.id,
    question: q.question,
    accepted: q.accepted,
    sentence: q.sentence,
    document: q.document,
    page: q.page,
    section: q.section,
    messages: built.messages,
    sources: built.sources.map((s) => source(s.n, s.hit)),
    promptTokens: built.promptTokens,
    maxAnswerTokens: built.maxAnswerTokens,
    dropped: built.dropped.length,
    retrieved: hits.map((h, i) => ({ rank: i + 1, document: fileOf.get(h.document.id), page: h.page, holdsFact: holds(h.chunk.text, q.sentence) })),
    recall: rank >= 0,
    recallRank: rank >= 0 ? rank + 1 : null,
    inPrompt,
  });
}
index.close();
embedder.dispose?.();
const n = prompts.length;
const summary = {
  questions: n,
  recallAtK: prompts.filter((p) => p.recall).length / n,
  recallAt1: prompts.filter((p) => p.recallRank === 1).length / n,
  factInPrompt: prompts.filter((p) => p.inPrompt).length / n,
  meanSources: prompts.reduce((a, p) => a + p.sources.length, 0) / n,
  meanPromptTokens: prompts.reduce((a, p) => a + p.promptTokens, 0) / n,
  ingestMs,
  searchMsMean: searchMs / n,
};
const doc = {
  format: "hearth-qa-prompts/1",
  date: new Date().toISOString(),
  set: { folder: args.set, seed: labels.seed, documents: labels.documents.length },
  embedder: { modelId: embedder.modelId, dim: embedder.dim, maxTokens: embedder.maxTokens, ...embedderInfo },
  chat: { modelId: chat.modelId, package: resolve(args.chat), contextWindow: chat.contextWindow },
  k: K,
  chunkTokens,
  promptOptions: "buildPrompt defaults (DEFAULT_SYSTEM_PROMPT, maxAnswerTokens min(512, context / 4))",
  index: { documents: stats.documents, chunks: stats.chunks },
  documents,
  summary,
  prompts,
};
mkdirSync(dirname(resolve(args.out)), { recursive: true });
writeFileSync(args.out, `${JSON.stringify(doc, null, 1)}\n`);
log(`recall@${K} ${(100 * summary.recallAtK).toFixed(1)} %, fact in prompt ${(100 * summary.factInPrompt).toFixed(1)} %, mean ${summary.meanSources.toFixed(1)} sources / ${summary.meanPromptTokens.toFixed(0)} tokens; wrote ${args.out}`);
process.stdout.write(`${JSON.stringify(summary)}\n`);
// Dawn's device can keep the event loop alive.
process.exit(0);
