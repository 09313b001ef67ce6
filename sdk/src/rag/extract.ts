/**
 * Text extraction: bytes + name + declared type → plain text (with page spans for PDFs).
 * Supported: PDF (pdf.js), Markdown, HTML (visible text), plain text. Everything else, empty input and
 * over-large input are refused with typed errors before anything is stored.
 */

import { EmptyDocumentError, ExtractionError, FileTooLargeError, UnsupportedTypeError } from "./errors.js";
import { htmlToText } from "./extract-html.js";
import { markdownToText } from "./extract-markdown.js";
import type { PageSpan, PdfjsLoader } from "./extract-pdf.js";

export type SupportedMime = "application/pdf" | "text/markdown" | "text/html" | "text/plain";

export const SUPPORTED_MIMES: readonly SupportedMime[] = ["application/pdf", "text/markdown", "text/html", "text/plain"];

export interface Extracted {
  mime: SupportedMime;
  /** The extracted text; chunk spans index into it. */
  text: string;
  /** Page spans (PDF only). */
  pages: PageSpan[] | null;
  /** Title found in the content (PDF Info /Title, HTML <title>, first Markdown heading). */
  title: string | null;
  /** Non-fatal notes, e.g. a legacy text encoding. */
  warnings: string[];
}

export interface ExtractOptions {
  /** Largest input accepted, in bytes. */
  maxBytes: number;
  /** pdf.js loader (default: extract-pdf.ts `loadPdfjs`). */
  pdfjs?: PdfjsLoader;
}

/** Default `maxBytes`: 64 MiB. */
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

const BY_TYPE: Record<string, SupportedMime> = {
  "application/pdf": "application/pdf",
  "application/x-pdf": "application/pdf",
  "text/markdown": "text/markdown",
  "text/x-markdown": "text/markdown",
  "text/html": "text/html",
  "application/xhtml+xml": "text/html",
  "text/plain": "text/plain",
};

const BY_EXTENSION: Record<string, SupportedMime> = {
  pdf: "application/pdf",
  md: "text/markdown",
  markdown: "text/markdown",
  mdown: "text/markdown",
  mkd: "text/markdown",
  html: "text/html",
  htm: "text/html",
  xhtml: "text/html",
  txt: "text/plain",
  text: "text/plain",
};

function isPdfMagic(bytes: Uint8Array): boolean {
  // "%PDF-" within the first 1 KiB (the spec tolerates leading junk).
  const head = new TextDecoder("latin1").decode(bytes.subarray(0, 1024));
  return head.includes("%PDF-");
}

/** The supported type of a file, from its bytes (PDF signature), declared type, then extension; else null. */
export function detectMime(name: string, declared: string, bytes: Uint8Array): SupportedMime | null {
  if (isPdfMagic(bytes)) return "application/pdf";
  const type = declared.split(";")[0]?.trim().toLowerCase() ?? "";
  const byType = BY_TYPE[type];
  if (byType !== undefined) return byType;
  if (type !== "" && type !== "application/octet-stream") return null;
  const ext = /\.([A-Za-z0-9]+)$/u.exec(name)?.[1]?.toLowerCase();
  return ext === undefined ? null : (BY_EXTENSION[ext] ?? null);
}

/** UTF-8 (BOM stripped), else the charset an HTML document declares, else windows-1252 with a warning. */
export function decodeText(bytes: Uint8Array, name: string, warnings: string[], htmlCharset = false): string {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    let label = "windows-1252";
    if (htmlCharset) {
      const head = new TextDecoder("latin1").decode(bytes.subarray(0, 2048));
      const m = /<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_:.-]+)/iu.exec(head);
      if (m?.[1] !== undefined) label = m[1];
    }
    let decoder: TextDecoder;
    try {
      decoder = new TextDecoder(label);
    } catch {
      label = "windows-1252";
      decoder = new TextDecoder(label);
    }
    text = decoder.decode(bytes);
    warnings.push(`"${name}" is not valid UTF-8; decoded as ${label}`);
  }
  if (text.includes("\u0000")) {
    throw new ExtractionError("text-decode", `cannot index "${name}": it contains NUL bytes, so it is binary data, not text`);
  }
  return text.replace(/\r\n?/gu, "\n");
}

export async function extract(input: { bytes: Uint8Array; name: string; declaredType: string }, opts: ExtractOptions): Promise<Extracted> {
  const { bytes, name } = input;
  if (bytes.byteLength > opts.maxBytes) throw new FileTooLargeError(name, bytes.byteLength, opts.maxBytes);
  if (bytes.byteLength === 0) throw new EmptyDocumentError(name);
  const mime = detectMime(name, input.declaredType, bytes);
  if (mime === null) throw new UnsupportedTypeError(input.declaredType, name);
  const warnings: string[] = [];
  let out: Extracted;
  switch (mime) {
    case "application/pdf": {
      const { extractPdf, loadPdfjs } = await import("./extract-pdf.js");
      const pdf = await extractPdf(bytes, name, opts.pdfjs ?? loadPdfjs);
      out = { mime, text: pdf.text, pages: pdf.pages, title: pdf.title, warnings };
      break;
    }
    case "text/markdown": {
      const md = markdownToText(decodeText(bytes, name, warnings));
      out = { mime, text: md.text, pages: null, title: md.title, warnings };
      break;
    }
    case "text/html": {
      const html = htmlToText(decodeText(bytes, name, warnings, true));
      out = { mime, text: html.text, pages: null, title: html.title, warnings };
      break;
    }
    case "text/plain":
      out = { mime, text: decodeText(bytes, name, warnings), pages: null, title: null, warnings };
      break;
  }
  if (out.text.trim().length === 0) throw new EmptyDocumentError(name, "no text could be extracted from it");
  return out;
}
