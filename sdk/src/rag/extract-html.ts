/**
 * HTML → the text a reader would see.
 *
 * Why htmlparser2 and not DOMParser: the index runs in a Worker, where DOMParser does not exist, and one code
 * path everywhere (Worker, main thread, Node tests) gives the same text, hence the same chunks, for the same
 * file. htmlparser2's `Parser` is a small, fast, maintained tokenizer (fb55) that already implements the
 * parts a regex stripper gets wrong: raw-text elements (script/style contents are never parsed as tags),
 * comments, CDATA, implied end tags, attributes containing ">", and the full HTML5 named entity table.
 *
 * Dropped (not visible): script, style, noscript, template, head (except <title>, used as the title),
 * svg, canvas, iframe, object, embed, audio, video, select, textarea, and any element with the `hidden`
 * attribute, aria-hidden="true", or an inline style of display:none / visibility:hidden.
 * Block elements become line or paragraph breaks; whitespace collapses as in CSS `white-space: normal`,
 * except inside <pre>.
 */

import { Parser } from "htmlparser2";

export interface HtmlText {
  text: string;
  title: string | null;
}

const SKIP = new Set(["script", "style", "noscript", "template", "head", "svg", "canvas", "iframe", "object", "embed", "audio", "video", "select", "textarea"]);

/** Elements that end a paragraph (blank line). */
const PARAGRAPH = new Set([
  "p",
  "div",
  "section",
  "article",
  "main",
  "header",
  "footer",
  "nav",
  "aside",
  "h1",
  "h2",
  "h3",
  "h4",
  "h5",
  "h6",
  "ul",
  "ol",
  "dl",
  "table",
  "blockquote",
  "pre",
  "figure",
  "figcaption",
  "hr",
  "address",
  "form",
  "fieldset",
  "details",
  "summary",
  "body",
  "html",
  "caption",
  "hgroup",
  "menu",
]);

/** Elements that end a line. */
const LINE = new Set(["br", "li", "tr", "dt", "dd", "option", "legend", "thead", "tbody", "tfoot"]);

/** Table cells are separated by " | " on their row line. */
const CELL = new Set(["td", "th"]);

function hidden(attribs: Record<string, string>): boolean {
  if ("hidden" in attribs) return true;
  if ((attribs["aria-hidden"] ?? "").trim().toLowerCase() === "true") return true;
  const style = (attribs["style"] ?? "").toLowerCase().replace(/\s+/gu, "");
  return style.includes("display:none") || style.includes("visibility:hidden");
}

export function htmlToText(html: string): HtmlText {
  let out = "";
  let pendingBreak = 0; // 0 none, 1 newline, 2 blank line
  let needSpace = false;
  let skipDepth = 0; // > 0 while inside a dropped element
  let preDepth = 0;
  let capturingTitle = false; // inside the document's first <title> (not an SVG <title>)
  let titleSeen = false;
  let title = "";
  let firstH1: string | null = null;
  let h1Depth = 0;
  let h1Text = "";
  let cellOnRow = 0;
  // One entry per open element: what to undo at its close tag. htmlparser2 closes every element it opens
  // (implied end tags and end of input included), so the stack stays balanced.
  const stack: Array<{ skip: boolean; pre: boolean; title: boolean; h1: boolean; name: string }> = [];

  const breakAt = (n: number) => {
    if (out.length > 0) pendingBreak = Math.max(pendingBreak, n);
    needSpace = false;
  };
  const emit = (s: string) => {
    if (s.length === 0) return;
    if (pendingBreak > 0) {
      out += pendingBreak === 2 ? "\n\n" : "\n";
      pendingBreak = 0;
    } else if (needSpace && out.length > 0 && !/\s$/u.test(out)) {
      out += " ";
    }
    needSpace = false;
    out += s;
  };

  const parser = new Parser(
    {
      onopentag(name, attribs) {
        const skip = skipDepth > 0 || SKIP.has(name) || hidden(attribs);
        const isTitle = name === "title" && !titleSeen && !stack.some((e) => e.name === "svg");
        const entry = { skip, pre: name === "pre", title: isTitle, h1: name === "h1", name };
        stack.push(entry);
        if (isTitle) {
          titleSeen = true;
          capturingTitle = true;
        }
        if (skip && !entry.title) {
          skipDepth++;
          return;
        }
        if (skip) return;
        if (entry.pre) preDepth++;
        if (entry.h1) h1Depth++;
        if (PARAGRAPH.has(name)) breakAt(2);
        else if (LINE.has(name)) breakAt(1);
        if (name === "tr") cellOnRow = 0;
        if (CELL.has(name)) {
          if (cellOnRow++ > 0) emit("|");
          needSpace = true;
        }
        if (name === "img" && attribs["alt"]) {
          needSpace = true;
          emit(attribs["alt"].replace(/\s+/gu, " ").trim());
          needSpace = true;
        }
      },
      ontext(data) {
        if (capturingTitle) {
          title += data;
          return;
        }
        if (skipDepth > 0) return;
        if (h1Depth > 0) h1Text += data;
        if (preDepth > 0) {
          emit(data);
          return;
        }
        const collapsed = data.replace(/[ \t\n\f\r]+/gu, " ");
        if (collapsed === " ") {
          needSpace = true;
          return;
        }
        if (collapsed.startsWith(" ")) needSpace = true;
        // Only ASCII spaces collapse (String.trim would also eat &nbsp;).
        emit(collapsed.replace(/^ | $/gu, ""));
        if (collapsed.endsWith(" ")) needSpace = true;
      },
      onclosetag(name) {
        const entry = stack.pop();
        if (entry === undefined) return;
        if (entry.title) capturingTitle = false;
        if (entry.skip && !entry.title) {
          skipDepth--;
          return;
        }
        if (entry.skip) return;
        if (entry.pre) preDepth--;
        if (entry.h1) {
          h1Depth--;
          if (h1Depth === 0 && firstH1 === null && h1Text.trim() !== "") firstH1 = h1Text.replace(/\s+/gu, " ").trim();
        }
        if (PARAGRAPH.has(name)) breakAt(2);
        else if (LINE.has(name)) breakAt(1);
        else if (CELL.has(name)) needSpace = true;
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true, recognizeSelfClosing: false },
  );
  parser.write(html);
  parser.end();

  const text = out
    .split("\n")
    .map((l) => l.replace(/[^\S\n]+$/u, ""))
    .join("\n")
    .replace(/\n{3,}/gu, "\n\n")
    .trim();
  const t = title.replace(/\s+/gu, " ").trim();
  return { text, title: t !== "" ? t : firstH1 };
}
