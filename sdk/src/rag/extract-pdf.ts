/**
 * PDF → text with page numbers, through pdf.js (pdfjs-dist).
 *
 * Loading pdf.js (default loader):
 * - Node: the legacy build (`pdfjs-dist/legacy/build/pdf.mjs`, what pdf.js documents for Node); pdf.js
 *   runs its worker code in-process there on its own. The specifier is a variable so that bundlers do not
 *   pull the legacy build into browser bundles.
 * - Browsers: the modern build. The index normally runs inside a Worker already, where pdf.js cannot find
 *   `window` and would fall back to importing `GlobalWorkerOptions.workerSrc`. Instead the loader imports
 *   `pdfjs-dist/build/pdf.worker.mjs` too and publishes it as `globalThis.pdfjsWorker`, the hook pdf.js
 *   checks for an in-thread worker, so no worker URL has to be configured. If the app has set
 *   `GlobalWorkerOptions.workerSrc` (main-thread use), that is left alone and pdf.js starts its own worker.
 * Pass `pdfjs` (a loader) to `openIndex` to take control of all of this.
 */

import { ExtractionError } from "./errors.js";

export interface PageSpan {
  /** 1-based page number. */
  page: number;
  /** Char span of this page in the extracted text (end exclusive; start === end for a page without text). */
  start: number;
  end: number;
}

export interface PdfText {
  text: string;
  pages: PageSpan[];
  title: string | null;
}

/** The part of pdf.js this module uses (checked against pdfjs-dist 5.4). */
export interface PdfjsLike {
  getDocument(src: { data: Uint8Array; isEvalSupported?: boolean; disableFontFace?: boolean; useSystemFonts?: boolean; verbosity?: number }): {
    promise: Promise<PdfDocumentLike>;
    destroy(): Promise<void>;
  };
  GlobalWorkerOptions?: { workerSrc: string };
}

export interface PdfDocumentLike {
  numPages: number;
  getPage(n: number): Promise<{ getTextContent(): Promise<{ items: Array<{ str?: string; hasEOL?: boolean }> }>; cleanup(): unknown }>;
  getMetadata(): Promise<{ info: unknown }>;
  destroy(): Promise<void>;
}

export type PdfjsLoader = () => Promise<PdfjsLike>;

function isNode(): boolean {
  const g = globalThis as { process?: { versions?: { node?: string } } };
  return typeof g.process?.versions?.node === "string";
}

let defaultLoad: Promise<PdfjsLike> | undefined;

export const loadPdfjs: PdfjsLoader = () => {
  defaultLoad ??= (async (): Promise<PdfjsLike> => {
    if (isNode()) {
      const legacy = "pdfjs-dist/legacy/build/pdf.mjs";
      return (await import(legacy)) as PdfjsLike;
    }
    const lib = (await import("pdfjs-dist")) as unknown as PdfjsLike;
    const g = globalThis as { pdfjsWorker?: unknown };
    if (g.pdfjsWorker === undefined && !lib.GlobalWorkerOptions?.workerSrc) {
      g.pdfjsWorker = await import("pdfjs-dist/build/pdf.worker.mjs");
    }
    return lib;
  })().catch((err: unknown) => {
    defaultLoad = undefined;
    throw new ExtractionError("pdf-load", `could not load pdf.js (pdfjs-dist): ${String(err)}`, { cause: err });
  });
  return defaultLoad;
};

function errorName(err: unknown): string {
  return typeof err === "object" && err !== null && "name" in err ? String((err as { name: unknown }).name) : "";
}

/** Extract per-page text. Pages are joined with a blank line; `pages` gives each page's span. */
export async function extractPdf(bytes: Uint8Array, name: string, load: PdfjsLoader = loadPdfjs): Promise<PdfText> {
  const pdfjs = await load();
  // pdf.js may transfer (detach) the buffer it is given: hand it a copy.
  const task = pdfjs.getDocument({ data: bytes.slice(), isEvalSupported: false, disableFontFace: true, useSystemFonts: false, verbosity: 0 });
  let doc: PdfDocumentLike;
  try {
    doc = await task.promise;
  } catch (err) {
    await task.destroy().catch(() => undefined);
    const kind = errorName(err);
    if (kind === "PasswordException") {
      throw new ExtractionError("pdf-encrypted", `cannot index "${name}": the PDF is password-protected`, { cause: err });
    }
    const detail = err instanceof Error ? err.message : String(err);
    throw new ExtractionError("pdf-invalid", `cannot index "${name}": not a readable PDF (broken or truncated file: ${detail})`, { cause: err });
  }
  try {
    let text = "";
    const pages: PageSpan[] = [];
    for (let p = 1; p <= doc.numPages; p++) {
      const page = await doc.getPage(p);
      const content = await page.getTextContent();
      let raw = "";
      for (const item of content.items) {
        if (typeof item.str !== "string") continue; // marked-content markers
        raw += item.str;
        if (item.hasEOL === true) raw += "\n";
      }
      page.cleanup();
      const pageText = raw
        .replace(/\r\n?/gu, "\n")
        .split("\n")
        .map((l) => l.replace(/[^\S\n]+/gu, " ").trim())
        .join("\n")
        .replace(/\n{3,}/gu, "\n\n")
        .trim();
      if (text.length > 0 && pageText.length > 0) text += "\n\n";
      const start = text.length;
      text += pageText;
      pages.push({ page: p, start, end: text.length });
    }
    if (text.trim().length === 0) {
      throw new ExtractionError(
        "pdf-no-text-layer",
        `cannot index "${name}": scanned PDF, no text layer: OCR it first (${doc.numPages} page${doc.numPages === 1 ? "" : "s"}, no extractable text)`,
      );
    }
    const meta = await doc.getMetadata().catch(() => ({ info: {} }));
    const info = meta.info as { Title?: unknown } | null;
    const title = typeof info?.Title === "string" && info.Title.trim() !== "" ? info.Title.trim() : null;
    return { text, pages, title };
  } catch (err) {
    if (err instanceof ExtractionError) throw err;
    throw new ExtractionError("pdf-invalid", `cannot index "${name}": the PDF is damaged (${err instanceof Error ? err.message : String(err)})`, {
      cause: err,
    });
  } finally {
    await doc.destroy().catch(() => undefined);
  }
}

/** The page holding char offset `at` (the last page starting at or before it); null without pages. */
export function pageAt(pages: readonly PageSpan[] | null, at: number): number | null {
  if (pages === null || pages.length === 0) return null;
  let found = (pages[0] as PageSpan).page;
  for (const p of pages) {
    if (p.start <= at && p.end > p.start) found = p.page;
    if (p.start > at) break;
  }
  return found;
}
