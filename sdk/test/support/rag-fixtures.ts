// Test support for the RAG index: a deterministic test embedder, a scripted chat model and a hand-written
// PDF generator. None of this is in src/: the real embedder and chat model come from the engine.
import type { ChatMessage, ChatModel, ChatStreamOptions, Embedder } from "../../src/rag/types.js";

/** FNV-1a 32-bit. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * HashingTestEmbedder: a deterministic stand-in for a real embedding model (NOT a model; tests only).
 * Each lowercase word is hashed into one of `dim` buckets with a hashed sign, and the vector is
 * L2-normalised, so texts sharing words have a high cosine. Tokens are whitespace-separated words plus
 * 2 "special" tokens (like BERT's CLS/SEP), so countTokens("") is 2.
 */
export class HashingTestEmbedder implements Embedder {
  readonly modelId: string;
  readonly dim: number;
  readonly maxTokens: number;
  /** Every embed() call's inputs, for assertions. */
  readonly calls: string[][] = [];
  /** Throw on the n-th embed call (1-based), to test failures. */
  failOnCall: number | null = null;

  constructor(opts: { modelId?: string; dim?: number; maxTokens?: number } = {}) {
    this.modelId = opts.modelId ?? "test/hashing-bow-64";
    this.dim = opts.dim ?? 64;
    this.maxTokens = opts.maxTokens ?? 64;
  }

  countTokens(text: string): number {
    const words = text.split(/\s+/u).filter((w) => w.length > 0);
    // A word of more than 12 characters counts as ceil(len/12) tokens, like a subword tokenizer would.
    let n = 2;
    for (const w of words) n += Math.max(1, Math.ceil(Array.from(w).length / 12));
    return n;
  }

  embedOne(text: string): Float32Array {
    const v = new Float32Array(this.dim);
    for (const w of text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) {
      const h = fnv1a(w);
      const i = h % this.dim;
      v[i] = (v[i] as number) + (h & 0x80000000 ? -1 : 1);
    }
    // Never the zero vector: a fixed small component.
    v[0] = (v[0] as number) + 0.01;
    let ss = 0;
    for (const x of v) ss += x * x;
    const inv = 1 / Math.sqrt(ss);
    for (let i = 0; i < v.length; i++) v[i] = (v[i] as number) * inv;
    return v;
  }

  async embed(texts: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    signal?.throwIfAborted();
    this.calls.push([...texts]);
    if (this.failOnCall !== null && this.calls.length === this.failOnCall) throw new Error("test embedder failure");
    await Promise.resolve();
    for (const t of texts) {
      if (this.countTokens(t) > this.maxTokens) throw new Error(`test embedder: input over maxTokens (${this.countTokens(t)})`);
    }
    return texts.map((t) => this.embedOne(t));
  }
}

/** A chat model that replays a scripted answer in pieces and records the prompts it got. */
export class ScriptedChatModel implements ChatModel {
  readonly contextWindow: number;
  readonly prompts: ChatMessage[][] = [];
  readonly options: ChatStreamOptions[] = [];
  answer: string;

  constructor(answer: string, contextWindow = 4096) {
    this.answer = answer;
    this.contextWindow = contextWindow;
  }

  countTokens(text: string): number {
    return text.split(/\s+/u).filter((w) => w.length > 0).length;
  }

  async *stream(messages: ChatMessage[], opts: ChatStreamOptions): AsyncIterable<string> {
    this.prompts.push(messages);
    this.options.push(opts);
    const pieces = this.answer.match(/\S+\s*/gu) ?? [];
    for (const p of pieces) {
      opts.signal?.throwIfAborted();
      await Promise.resolve();
      yield p;
    }
  }
}

function pdfString(s: string): string {
  return `(${s.replace(/[\\()]/g, (c) => `\\${c}`)})`;
}

/**
 * A minimal valid PDF (1.4, uncompressed, Helvetica) with one page per entry of `pages`; each page is a list
 * of text lines. A page given as `null` has no text at all (a filled rectangle, like a scanned image).
 * xref offsets are computed, so pdf.js opens it without repairs.
 */
export function makePdf(pages: Array<string[] | null>, opts: { title?: string } = {}): Uint8Array {
  const objects: string[] = [];
  const add = (body: string) => {
    objects.push(body);
    return objects.length;
  };
  const catalog = add("");
  const pagesObj = add("");
  const font = add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>");
  const kids: number[] = [];
  for (const lines of pages) {
    let content: string;
    if (lines === null) {
      content = "0.5 0.5 0.5 rg 72 72 400 600 re f";
    } else {
      const ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"];
      lines.forEach((line, i) => {
        if (i > 0) ops.push("T*");
        ops.push(`${pdfString(line)} Tj`);
      });
      ops.push("ET");
      content = ops.join("\n");
    }
    const stream = add(`<< /Length ${content.length} >>\nstream\n${content}\nendstream`);
    kids.push(add(`<< /Type /Page /Parent ${pagesObj} 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 ${font} 0 R >> >> /Contents ${stream} 0 R >>`));
  }
  objects[catalog - 1] = `<< /Type /Catalog /Pages ${pagesObj} 0 R >>`;
  objects[pagesObj - 1] = `<< /Type /Pages /Kids [${kids.map((k) => `${k} 0 R`).join(" ")}] /Count ${kids.length} >>`;
  const info = opts.title === undefined ? null : add(`<< /Title ${pdfString(opts.title)} >>`);

  let out = "%PDF-1.4\n";
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const off of offsets) out += `${String(off).padStart(10, "0")} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root ${catalog} 0 R${info === null ? "" : ` /Info ${info} 0 R`} >>\nstartxref\n${xref}\n%%EOF\n`;
  // ASCII only (the generator is for tests), so one byte per char.
  return new TextEncoder().encode(out);
}
