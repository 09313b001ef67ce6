/**
 * Turning one input (a File/Blob or a text) into a `PreparedDocument`: read, hash, extract, chunk, embed,
 * quantise, analyse for BM25. Nothing here touches IndexedDB; the result is written in one transaction by
 * the caller.
 */

import { termFrequencies } from "./bm25.js";
import { chunkTextAsync, type ChunkWarning } from "./chunk.js";
import { embedAll } from "./embed.js";
import { FileTooLargeError } from "./errors.js";
import { extract, type Extracted, type SupportedMime } from "./extract.js";
import { pageAt, type PdfjsLoader } from "./extract-pdf.js";
import { chunkIdFor, type ChunkRecord, type DocumentRecord, type JsonValue, type PreparedDocument, type PreparedVector } from "./store.js";
import type { Embedder } from "./types.js";
import { quantize } from "./vectors.js";

/** Text to index directly. */
export interface TextInput {
  text: string;
  title?: string;
  /** How to read `text` (default "text/plain"). */
  mime?: "text/plain" | "text/markdown" | "text/html";
  meta?: Record<string, JsonValue>;
}

/** A file with a title or metadata of its own. */
export interface FileInput {
  file: Blob;
  title?: string;
  meta?: Record<string, JsonValue>;
}

export type AddInput = Blob | TextInput | FileInput;

export interface RawInput {
  bytes: Uint8Array;
  name: string;
  declaredType: string;
  title: string | null;
  meta: Record<string, JsonValue>;
}

function isBlob(v: unknown): v is Blob {
  return typeof Blob !== "undefined" && v instanceof Blob;
}

/** Display name of an input before reading it. */
export function inputName(input: AddInput): string {
  if (isBlob(input)) return (input as Partial<File>).name ?? "untitled";
  if ("file" in input) return input.title ?? (input.file as Partial<File>).name ?? "untitled";
  return input.title ?? "untitled";
}

/** Read an input's bytes, refusing over-large blobs before reading them. */
export async function readInput(input: AddInput, maxBytes: number): Promise<RawInput> {
  const name = inputName(input);
  if (isBlob(input) || "file" in input) {
    const blob = isBlob(input) ? input : input.file;
    if (blob.size > maxBytes) throw new FileTooLargeError(name, blob.size, maxBytes);
    const fileName = (blob as Partial<File>).name;
    const meta: Record<string, JsonValue> = isBlob(input) ? {} : { ...(input.meta ?? {}) };
    if (typeof fileName === "string" && meta["fileName"] === undefined) meta["fileName"] = fileName;
    return {
      bytes: new Uint8Array(await blob.arrayBuffer()),
      name: fileName ?? name,
      declaredType: blob.type,
      title: isBlob(input) ? null : (input.title ?? null),
      meta,
    };
  }
  if (typeof input.text !== "string") throw new TypeError("add(): expected a Blob/File, {file}, or {text}");
  return {
    bytes: new TextEncoder().encode(input.text),
    name,
    declaredType: input.mime ?? "text/plain",
    title: input.title ?? null,
    meta: { ...(input.meta ?? {}) },
  };
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function documentIdFor(contentHash: string): string {
  return `doc-${contentHash.slice(0, 32)}`;
}

export { chunkIdFor } from "./store.js";

export type IngestPhase = "extract" | "chunk" | "embed" | "store";

/** Time spent per ingest stage (ms), summed over documents. */
export interface IngestTimings {
  extractMs: number;
  chunkMs: number;
  embedMs: number;
  /** BM25 term analysis + int8 quantisation. */
  analyzeMs: number;
  /** The IndexedDB write transaction, until committed. */
  writeMs: number;
  /** Updating the in-memory search state (codes, postings). */
  memoryIndexMs: number;
}

export function newIngestTimings(): IngestTimings {
  return { extractMs: 0, chunkMs: 0, embedMs: 0, analyzeMs: 0, writeMs: 0, memoryIndexMs: 0 };
}

export interface PrepareOptions {
  embedder: Embedder;
  maxBytes: number;
  chunkMaxTokens: number;
  overlapTokens: number | undefined;
  batchSize: number;
  pdfjs: PdfjsLoader | undefined;
  now: () => number;
  signal: AbortSignal | undefined;
  onPhase: (phase: IngestPhase, detail?: { embedded: number; chunks: number }) => void;
  timings?: IngestTimings | undefined;
}

export interface Prepared {
  prepared: PreparedDocument;
  warnings: string[];
  chunkWarnings: ChunkWarning[];
}

function pickTitle(raw: RawInput, ex: Extracted): string {
  if (raw.title !== null && raw.title.trim() !== "") return raw.title.trim();
  // PDF /Title metadata is often junk ("Microsoft Word - x.docx"): prefer the file name for PDFs.
  const candidates = ex.mime === "application/pdf" ? [raw.name, ex.title] : [ex.title, raw.name];
  for (const c of candidates) if (c !== null && c.trim() !== "" && c !== "untitled") return c.trim();
  return "Untitled";
}

/** Chunk + embed + analyse extracted text into records for document `document`. */
export async function buildRecords(
  document: Omit<DocumentRecord, "chunkCount" | "textLength">,
  text: string,
  pages: Extracted["pages"],
  opts: Pick<PrepareOptions, "embedder" | "chunkMaxTokens" | "overlapTokens" | "batchSize" | "signal" | "onPhase" | "timings">,
): Promise<{ prepared: PreparedDocument; chunkWarnings: ChunkWarning[] }> {
  opts.onPhase("chunk");
  let t = performance.now();
  const lap = (key: keyof IngestTimings) => {
    const now = performance.now();
    if (opts.timings !== undefined) opts.timings[key] += now - t;
    t = now;
  };
  // In slices with event-loop turns between them: a long text takes seconds to chunk, and an abort sent
  // meanwhile (a message to the worker) must be able to arrive and stop it.
  const { chunks, warnings } = await chunkTextAsync(text, {
    countTokens: (t) => opts.embedder.countTokens(t),
    maxTokens: opts.chunkMaxTokens,
    signal: opts.signal,
    ...(opts.overlapTokens === undefined ? {} : { overlapTokens: opts.overlapTokens }),
  });
  opts.signal?.throwIfAborted();
  const chunkRecords: ChunkRecord[] = chunks.map((c) => ({
    id: chunkIdFor(document.id, c.ordinal),
    docId: document.id,
    ordinal: c.ordinal,
    text: c.text,
    page: pageAt(pages, c.start),
    pageEnd: pageAt(pages, c.end - 1),
    start: c.start,
    end: c.end,
    tokenCount: c.tokenCount,
  }));
  lap("chunkMs");
  opts.onPhase("embed", { embedded: 0, chunks: chunkRecords.length });
  const vecs = await embedAll(
    opts.embedder,
    chunkRecords.map((c) => c.text),
    { batchSize: opts.batchSize, signal: opts.signal, onBatch: (done) => opts.onPhase("embed", { embedded: done, chunks: chunkRecords.length }) },
  );
  lap("embedMs");
  const vectors: PreparedVector[] = chunkRecords.map((c, i) => {
    const f32 = vecs[i] as Float32Array;
    const q = quantize(f32);
    return { chunkId: c.id, docId: document.id, modelId: opts.embedder.modelId, f32, i8: q.i8, scale: q.scale };
  });
  const terms = chunkRecords.map((c) => ({ chunkId: c.id, ...termFrequencies(c.text) }));
  lap("analyzeMs");
  return {
    prepared: {
      document: { ...document, chunkCount: chunkRecords.length, textLength: text.length },
      text: { docId: document.id, text, pages },
      chunks: chunkRecords,
      vectors,
      terms,
    },
    chunkWarnings: warnings,
  };
}

/** Extract, chunk and embed one read input whose hash is `contentHash`. */
export async function prepareDocument(raw: RawInput, contentHash: string, opts: PrepareOptions): Promise<Prepared> {
  opts.onPhase("extract");
  const t0 = performance.now();
  const ex = await extract(
    { bytes: raw.bytes, name: raw.name, declaredType: raw.declaredType },
    {
      maxBytes: opts.maxBytes,
      ...(opts.pdfjs === undefined ? {} : { pdfjs: opts.pdfjs }),
    },
  );
  if (opts.timings !== undefined) opts.timings.extractMs += performance.now() - t0;
  opts.signal?.throwIfAborted();
  const id = documentIdFor(contentHash);
  const base = {
    id,
    title: pickTitle(raw, ex),
    mime: ex.mime as SupportedMime,
    contentHash,
    bytes: raw.bytes.byteLength,
    createdAt: opts.now(),
    pages: ex.pages === null ? null : ex.pages.length,
    meta: raw.meta,
  };
  const { prepared, chunkWarnings } = await buildRecords(base, ex.text, ex.pages, opts);
  return { prepared, warnings: [...ex.warnings, ...chunkWarnings.map((w) => w.message)], chunkWarnings };
}
