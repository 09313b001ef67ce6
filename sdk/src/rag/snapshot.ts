/**
 * Export/import format: one JSON document with every document, its extracted text, its chunks and their
 * f32 vectors (little-endian float32, base64). Int8 codes and BM25 postings are derived data and are
 * rebuilt on import, so a snapshot cannot carry inconsistent copies of them.
 */

import { InvalidSnapshotError } from "./errors.js";
import type { PageSpan } from "./extract-pdf.js";
import { SUPPORTED_MIMES } from "./extract.js";
import type { ChunkRecord, DocumentRecord } from "./store.js";

export const SNAPSHOT_FORMAT = "hearth-rag-snapshot";
export const SNAPSHOT_VERSION = 1;

export interface SnapshotDocument {
  document: DocumentRecord;
  text: string;
  pages: PageSpan[] | null;
  chunks: ChunkRecord[];
  /** base64 of the chunk's normalised f32 vector, parallel to `chunks`. */
  vectors: string[];
}

export interface IndexSnapshot {
  format: typeof SNAPSHOT_FORMAT;
  version: typeof SNAPSHOT_VERSION;
  exportedAt: number;
  embedding: { modelId: string; dim: number };
  documents: SnapshotDocument[];
}

export function f32ToBase64(v: Float32Array): string {
  const bytes = new Uint8Array(v.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < v.length; i++) view.setFloat32(i * 4, v[i] as number, true);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

export function base64ToF32(s: string, dim: number): Float32Array {
  let bin: string;
  try {
    bin = atob(s);
  } catch {
    throw new InvalidSnapshotError("a vector is not valid base64");
  }
  if (bin.length !== dim * 4) throw new InvalidSnapshotError(`a vector has ${bin.length} bytes, expected ${dim * 4} (dim ${dim})`);
  const view = new DataView(new ArrayBuffer(bin.length));
  for (let i = 0; i < bin.length; i++) view.setUint8(i, bin.charCodeAt(i));
  const out = new Float32Array(dim);
  for (let i = 0; i < dim; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function fail(where: string, what: string): never {
  throw new InvalidSnapshotError(`invalid snapshot: ${where}: ${what}`);
}

/** Parse (from JSON text or a Blob) and validate the shape of a snapshot. */
export async function readSnapshot(input: IndexSnapshot | string | Blob): Promise<IndexSnapshot> {
  let value: unknown = input;
  if (typeof input === "string" || (typeof Blob !== "undefined" && input instanceof Blob)) {
    const text = typeof input === "string" ? input : await input.text();
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new InvalidSnapshotError(`invalid snapshot: not JSON (${String(err)})`);
    }
  }
  if (!isObject(value)) fail("root", "not an object");
  if (value["format"] !== SNAPSHOT_FORMAT) fail("format", `expected "${SNAPSHOT_FORMAT}"`);
  if (value["version"] !== SNAPSHOT_VERSION) fail("version", `unsupported version ${String(value["version"])}`);
  const emb = value["embedding"];
  if (!isObject(emb) || typeof emb["modelId"] !== "string" || !Number.isInteger(emb["dim"])) fail("embedding", "needs modelId and dim");
  const docs = value["documents"];
  if (!Array.isArray(docs)) fail("documents", "not an array");
  docs.forEach((d: unknown, i) => {
    const at = `documents[${i}]`;
    if (!isObject(d) || !isObject(d["document"])) fail(at, "missing document");
    const doc = d["document"];
    for (const key of ["id", "title", "contentHash"]) if (typeof doc[key] !== "string") fail(at, `document.${key} is not a string`);
    if (!SUPPORTED_MIMES.includes(doc["mime"] as never)) fail(at, `unsupported mime ${String(doc["mime"])}`);
    if (typeof doc["createdAt"] !== "number" || typeof doc["bytes"] !== "number") fail(at, "createdAt/bytes are not numbers");
    if (typeof d["text"] !== "string") fail(at, "text is not a string");
    const chunks = d["chunks"];
    const vectors = d["vectors"];
    if (!Array.isArray(chunks) || !Array.isArray(vectors) || chunks.length !== vectors.length) fail(at, "chunks and vectors must be arrays of the same length");
    chunks.forEach((c: unknown, j) => {
      if (!isObject(c) || typeof c["text"] !== "string" || typeof c["start"] !== "number" || typeof c["end"] !== "number") {
        fail(`${at}.chunks[${j}]`, "needs text, start, end");
      }
    });
    if (vectors.some((v: unknown) => typeof v !== "string")) fail(at, "vectors must be base64 strings");
  });
  return value as unknown as IndexSnapshot;
}
