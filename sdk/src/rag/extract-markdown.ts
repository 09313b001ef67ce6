/**
 * Markdown → plain text for indexing: the words stay, the syntax goes.
 *
 * A line-based stripper, not a CommonMark renderer: it handles what real notes and READMEs use (front
 * matter, ATX/setext headings, fenced and indented code, lists, task lists, block quotes, tables, links,
 * images, emphasis, inline code, HTML tags and comments, footnote references, reference definitions,
 * backslash escapes). Code keeps its content (it is searchable text), only the fences go. Block structure
 * is kept as blank lines so the chunker can still see paragraphs.
 */

export interface MarkdownText {
  text: string;
  /** First level-1 heading (else the first heading), for the document title. */
  title: string | null;
}

const FENCE = /^ {0,3}(`{3,}|~{3,})/u;

function stripInline(s: string): string {
  // Code spans keep their content verbatim; everything else gets the inline rules.
  const parts = s.split(/(`+)(.+?)\1(?!`)/u);
  let out = "";
  // split with 2 capture groups: [text, ticks, code, text, ticks, code, text, ...]
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] ?? "";
    if (i % 3 === 2) out += p.trim();
    else if (i % 3 === 0) out += stripInlineText(p);
  }
  return out;
}

// Backslash-escaped punctuation is parked in the Private Use Area while the other rules run, so `\*` never
// opens emphasis, then put back as the literal character.
const ESCAPE_BASE = 0xe000;

function stripInlineText(s: string): string {
  return (
    s
      .replace(/\\([\\`*_{}[\]()#+\-.!|>~<])/gu, (_m, c: string) => String.fromCharCode(ESCAPE_BASE + c.charCodeAt(0)))
      // images before links: ![alt](src "title") → alt
      .replace(/!\[([^\]]*)\]\([^)]*\)/gu, "$1")
      .replace(/!\[([^\]]*)\]\[[^\]]*\]/gu, "$1")
      // footnote references [^1]
      .replace(/\[\^[^\]]+\]/gu, "")
      // links [text](url "title"), [text][ref], [text][]
      .replace(/\[([^\]]*)\]\([^)]*\)/gu, "$1")
      .replace(/\[([^\]]+)\]\[[^\]]*\]/gu, "$1")
      // autolinks <https://…> and <mail@x.y>
      .replace(/<((?:https?|ftp|mailto):[^>\s]+|[^>\s@]+@[^>\s@]+)>/gu, "$1")
      // inline HTML tags
      .replace(/<\/?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?\/?>/gu, "")
      // emphasis / strong / strikethrough (asterisks anywhere, underscores only at word edges)
      .replace(/(\*{1,3})(?=\S)([^*]*?\S)\1/gu, "$2")
      .replace(/(^|[^\p{L}\p{N}_])(_{1,3})(?=\S)(.*?\S)\2(?![\p{L}\p{N}_])/gu, "$1$3")
      .replace(/~~(?=\S)(.*?\S)~~/gu, "$1")
      .replace(/[\ue000-\ue07f]/gu, (c) => String.fromCharCode(c.charCodeAt(0) - ESCAPE_BASE))
  );
}

export function markdownToText(source: string): MarkdownText {
  let md = source.replace(/\r\n?/gu, "\n");
  // YAML / TOML front matter at the very start.
  md = md.replace(/^(?:---\n[\s\S]*?\n(?:---|\.\.\.)|\+\+\+\n[\s\S]*?\n\+\+\+)[^\S\n]*(?:\n|$)/u, "");
  // HTML comments (may span lines).
  md = md.replace(/<!--[\s\S]*?-->/gu, "");

  const lines = md.split("\n");
  const out: string[] = [];
  let title: string | null = null;
  let anyHeading: string | null = null;
  let fence: string | null = null;

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (fence !== null) {
      if (line.trimStart().startsWith(fence) && line.trim().replace(/[`~]/gu, "") === "") {
        fence = null;
        out.push("");
      } else {
        out.push(line);
      }
      continue;
    }
    const f = FENCE.exec(line);
    if (f !== null) {
      fence = (f[1] as string)[0]?.repeat((f[1] as string).length) ?? "```";
      out.push("");
      continue;
    }
    // Setext underline (=== or ---) right after a text line: the previous line was a heading.
    if (/^ {0,3}(=+|-+)[^\S\n]*$/u.test(line) && out.length > 0 && (out[out.length - 1] as string).trim() !== "") {
      const heading = (out[out.length - 1] as string).trim();
      anyHeading ??= heading;
      if (line.trim().startsWith("=")) title ??= heading;
      out.push("");
      continue;
    }
    // Horizontal rule.
    if (/^ {0,3}([-*_])(?:[^\S\n]*\1){2,}[^\S\n]*$/u.test(line)) {
      out.push("");
      continue;
    }
    // Reference definitions [id]: url "title".
    if (/^ {0,3}\[[^\]]+\]:\s*\S+/u.test(line)) continue;
    // Table delimiter row.
    if (/^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)+\|?\s*$/u.test(line)) continue;

    let l = line;
    const heading = /^ {0,3}(#{1,6})(?:[^\S\n]+(.*?))?(?:[^\S\n]+#+)?[^\S\n]*$/u.exec(l);
    if (heading !== null) {
      const text = stripInline(heading[2] ?? "").trim();
      if (text !== "") {
        anyHeading ??= text;
        if (heading[1] === "#") title ??= text;
      }
      // Headings are their own paragraph.
      out.push("", text, "");
      continue;
    }
    l = l.replace(/^ {0,3}(?:>[^\S\n]?)+/u, ""); // block quotes
    l = l.replace(/^(\s*)(?:[-*+]|\d{1,9}[.)])[^\S\n]+(?:\[[ xX]\][^\S\n]+)?/u, "$1"); // list items, task boxes
    if (/\|/u.test(l) && /^\s*\|.*\|\s*$/u.test(l)) {
      // Table row: cells separated by " | ", outer pipes dropped.
      l = l
        .trim()
        .replace(/^\||\|$/gu, "")
        .split(/(?<!\\)\|/u)
        .map((c) => c.trim())
        .join(" | ");
    }
    out.push(stripInline(l).replace(/[^\S\n]+$/u, ""));
  }
  const text = out
    .join("\n")
    .replace(/\n{3,}/gu, "\n\n")
    .trim();
  return { text, title: title ?? anyHeading };
}
