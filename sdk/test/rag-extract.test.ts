import { test } from "node:test";
import assert from "node:assert/strict";
import { EmptyDocumentError, ExtractionError, FileTooLargeError, UnsupportedTypeError } from "../src/rag/errors.js";
import { decodeText, detectMime, extract } from "../src/rag/extract.js";
import { htmlToText } from "../src/rag/extract-html.js";
import { markdownToText } from "../src/rag/extract-markdown.js";
import { pageAt } from "../src/rag/extract-pdf.js";
import { makePdf } from "./support/rag-fixtures.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
const opts = { maxBytes: 1 << 20 };

test("PDF: text per page with page numbers (pdf.js on a PDF written by the test)", async () => {
  const bytes = makePdf(
    [
      ["Quarterly report for the northern region.", "Revenue grew by twelve percent."],
      null, // a page with only a drawing
      ["Appendix: methodology (sampling) and sources."],
    ],
    { title: "Q3 Report" },
  );
  const ex = await extract({ bytes, name: "q3.pdf", declaredType: "" }, opts);
  assert.equal(ex.mime, "application/pdf");
  assert.equal(ex.title, "Q3 Report");
  assert.deepEqual(
    ex.pages?.map((p) => p.page),
    [1, 2, 3],
  );
  const [p1, p2, p3] = ex.pages!;
  assert.equal(ex.text.slice(p1!.start, p1!.end), "Quarterly report for the northern region.\nRevenue grew by twelve percent.");
  assert.equal(p2!.start, p2!.end, "page 2 has no text");
  assert.equal(ex.text.slice(p3!.start, p3!.end), "Appendix: methodology (sampling) and sources.");
  assert.equal(pageAt(ex.pages, ex.text.indexOf("Revenue")), 1);
  assert.equal(pageAt(ex.pages, ex.text.indexOf("Appendix")), 3);
});

test("PDF without a text layer → ExtractionError telling to OCR it", async () => {
  const bytes = makePdf([null, null]);
  await assert.rejects(extract({ bytes, name: "scan.pdf", declaredType: "application/pdf" }, opts), (err: unknown) => {
    assert.ok(err instanceof ExtractionError);
    assert.equal(err.code, "pdf-no-text-layer");
    assert.match(err.message, /scanned PDF, no text layer: OCR it first/u);
    return true;
  });
});

test("broken PDFs → ExtractionError pdf-invalid with a clear message", async () => {
  const good = makePdf([["Hello there."]]);
  const cases: Array<[string, Uint8Array]> = [
    ["not a pdf, declared as one", utf8("this is not a PDF")],
    ["header then garbage", utf8("%PDF-1.4\n1 0 obj << /Type /Catalog garbage")],
    ["truncated", good.slice(0, 60)],
  ];
  for (const [what, bytes] of cases) {
    await assert.rejects(
      extract({ bytes, name: "bad.pdf", declaredType: "application/pdf" }, opts),
      (err: unknown) => {
        assert.ok(err instanceof ExtractionError, `${what}: ${String(err)}`);
        assert.equal(err.code, "pdf-invalid", what);
        assert.match(err.message, /bad\.pdf/u);
        return true;
      },
      what,
    );
  }
});

test("Markdown: syntax stripped, words and structure kept", () => {
  const md = [
    "---",
    "title: front matter is dropped",
    "---",
    "# Project *Hearth*",
    "",
    'Some **bold**, _italic_, ~~struck~~ and `code()` text with a [link](https://x.y "t") and ![alt text](img.png).',
    "Snake_case_word stays. Escaped \\*star\\*.",
    "",
    "Setext heading",
    "==============",
    "",
    "> quoted line",
    "- item one",
    "* [x] done task",
    "1. numbered",
    "",
    "```js",
    "const a = 1; // code kept",
    "```",
    "",
    "| Name | Value |",
    "|------|------:|",
    "| a    | 1     |",
    "",
    "<!-- hidden comment -->",
    "Footnote ref[^1] and <span>inline html</span>.",
    "[^1]: the footnote text",
    "[ref]: https://example.com",
    "***",
  ].join("\n");
  const { text, title } = markdownToText(md);
  assert.equal(title, "Project Hearth");
  const expected = [
    "Project Hearth",
    "",
    "Some bold, italic, struck and code() text with a link and alt text.",
    "Snake_case_word stays. Escaped *star*.",
    "",
    "Setext heading",
    "",
    "quoted line",
    "item one",
    "done task",
    "numbered",
    "",
    "const a = 1; // code kept",
    "",
    "Name | Value",
    "a | 1",
    "",
    "Footnote ref and inline html.",
  ].join("\n");
  assert.equal(text, expected);
});

test("HTML: visible text only, entities decoded, blocks become lines", () => {
  const html = `<!doctype html><html><head><title>The &amp; Title</title>
    <style>body { color: red }</style><script>var x = "<p>not text</p>";</script></head>
    <body><h1>Heading</h1><p>First&nbsp;para with <b>bold</b> and&#x20;&eacute;t&eacute; &lt;tag&gt;.</p>
    <noscript>enable JS</noscript><template><p>template text</p></template>
    <div hidden>hidden div</div><p aria-hidden="true">aria hidden</p><span style="display: none">css hidden</span>
    <ul><li>one</li><li>two</li></ul><table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>
    <pre>  keep
   spacing</pre><svg><title>svg title</title><text>svg text</text></svg>
    <p>Line<br>break <img src="x.png" alt="a picture"> end</p></body></html>`;
  const { text, title } = htmlToText(html);
  assert.equal(title, "The & Title");
  assert.equal(
    text,
    [
      "Heading",
      "",
      "First\u00a0para with bold and été <tag>.",
      "",
      "one",
      "two",
      "",
      "a | b",
      "c | d",
      "",
      "  keep",
      "   spacing",
      "",
      "Line",
      "break a picture end",
    ].join("\n"),
  );
  for (const hidden of ["not text", "enable JS", "template text", "hidden div", "aria hidden", "css hidden", "svg", "color"]) {
    assert.ok(!text.includes(hidden), `"${hidden}" leaked`);
  }
  // Without <title>, the first h1 is the title.
  assert.equal(htmlToText("<h1> Only   h1 </h1><p>x</p>").title, "Only h1");
});

test("type detection: magic bytes, declared type, extension; unsupported → UnsupportedTypeError", async () => {
  const pdf = makePdf([["x"]]);
  assert.equal(detectMime("a.txt", "text/plain", pdf), "application/pdf");
  assert.equal(detectMime("a", "text/markdown; charset=utf-8", utf8("# x")), "text/markdown");
  assert.equal(detectMime("page.HTM", "", utf8("<p>x")), "text/html");
  assert.equal(detectMime("notes.md", "application/octet-stream", utf8("x")), "text/markdown");
  assert.equal(detectMime("photo.png", "image/png", utf8("x")), null);
  assert.equal(detectMime("archive.zip", "", utf8("PK")), null);
  await assert.rejects(extract({ bytes: utf8("PNG"), name: "photo.png", declaredType: "image/png" }, opts), (err: unknown) => {
    assert.ok(err instanceof UnsupportedTypeError);
    assert.equal(err.code, "unsupported-type");
    assert.match(err.message, /photo\.png.*image\/png/u);
    return true;
  });
});

test("empty, whitespace-only, too-large, binary inputs → typed errors", async () => {
  await assert.rejects(extract({ bytes: new Uint8Array(0), name: "e.txt", declaredType: "text/plain" }, opts), EmptyDocumentError);
  await assert.rejects(extract({ bytes: utf8(" \n\t "), name: "w.txt", declaredType: "text/plain" }, opts), EmptyDocumentError);
  await assert.rejects(extract({ bytes: utf8("<script>x</script>"), name: "s.html", declaredType: "text/html" }, opts), EmptyDocumentError);
  await assert.rejects(extract({ bytes: new Uint8Array(11), name: "big.txt", declaredType: "text/plain" }, { maxBytes: 10 }), (err: unknown) => {
    assert.ok(err instanceof FileTooLargeError);
    assert.equal(err.bytes, 11);
    assert.equal(err.limit, 10);
    return true;
  });
  await assert.rejects(extract({ bytes: Uint8Array.of(104, 0, 105), name: "bin.txt", declaredType: "text/plain" }, opts), (err: unknown) => {
    assert.ok(err instanceof ExtractionError);
    assert.equal(err.code, "text-decode");
    return true;
  });
});

test("text decoding: UTF-8 with BOM, CRLF normalised, windows-1252 fallback is reported", () => {
  const warnings: string[] = [];
  assert.equal(decodeText(Uint8Array.of(0xef, 0xbb, 0xbf, 0x61, 0x0d, 0x0a, 0x62), "a.txt", warnings), "a\nb");
  assert.deepEqual(warnings, []);
  assert.equal(decodeText(Uint8Array.of(0x63, 0x61, 0x66, 0xe9), "latin.txt", warnings), "café");
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /not valid UTF-8; decoded as windows-1252/u);
});
