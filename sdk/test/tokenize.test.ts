// Tokenizer unit tests on tiny tokenizer.json files built here (parity with Hugging Face on real
// tokenizers is tests/test_sdk_tokenizers.py).
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadTokenizer, TokenizerLoadError, type Tokenizer } from "../src/tokenize/index.js";

/** GPT-2's byte -> printable-char table (byte-level BPE vocabularies are spelled in it). */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const table: string[] = new Array<string>(256);
  for (const b of bs) table[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (table[b] === undefined) table[b] = String.fromCharCode(256 + n++);
  return table;
}

const added = (id: number, content: string) => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
});

/** Byte-level BPE without merges: token id == byte value, so every multi-byte character spans tokens. */
function byteLevelJson(): object {
  const vocab: Record<string, number> = {};
  bytesToUnicode().forEach((c, b) => {
    vocab[c] = b;
  });
  return {
    version: "1.0",
    added_tokens: [added(256, "<|end|>"), added(257, "<|start|>")],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<|start|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "<|end|>", type_id: 0 } }],
      pair: [{ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: {
        "<|start|>": { id: "<|start|>", ids: [257], tokens: ["<|start|>"] },
        "<|end|>": { id: "<|end|>", ids: [256], tokens: ["<|end|>"] },
      },
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

/** Llama-style sentencepiece BPE as tokenizer.json: Metaspace, <0xNN> byte fallback, <s> prepended. */
function metaspaceJson(): object {
  const vocab: Record<string, number> = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = 3 + b;
  for (const piece of ["▁", "a", "b", "▁a", "▁b"]) vocab[piece] = Object.keys(vocab).length;
  return {
    version: "1.0",
    added_tokens: [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
    normalizer: null,
    pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: [
        ["▁", "a"],
        ["▁", "b"],
      ],
    },
  };
}

const byteLevel = (): Promise<Tokenizer> =>
  loadTokenizer({
    tokenizerJson: JSON.stringify(byteLevelJson()),
    tokenizerConfig: { bos_token: "<|start|>", eos_token: { content: "<|end|>", __type: "AddedToken" }, pad_token: null },
  });
const metaspace = (): Promise<Tokenizer> =>
  loadTokenizer({ tokenizerJson: metaspaceJson(), tokenizerConfig: { bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>" } });

const ids = (a: Int32Array): number[] => Array.from(a);
const utf8 = (s: string): number[] => Array.from(new TextEncoder().encode(s));

test("encode returns Int32Array ids; special tokens from the post-processor unless addSpecialTokens is false", async () => {
  const tok = await byteLevel();
  const out = tok.encode("hé");
  assert.ok(out instanceof Int32Array);
  assert.deepEqual(ids(out), [257, ...utf8("hé"), 256]);
  assert.deepEqual(ids(tok.encode("hé", { addSpecialTokens: false })), utf8("hé"));
  assert.deepEqual(ids(tok.encode("", { addSpecialTokens: false })), []);
  // special-token text inside the input is matched as the token
  assert.deepEqual(ids(tok.encode("a<|end|>", { addSpecialTokens: false })), [...utf8("a"), 256]);
});

test("special tokens, vocab size and token lookups", async () => {
  const tok = await byteLevel();
  assert.equal(tok.vocabSize, 258);
  assert.deepEqual(tok.special.bos, { id: 257, content: "<|start|>" });
  assert.deepEqual(tok.special.eos, { id: 256, content: "<|end|>" }); // AddedToken-object form of the config
  assert.equal(tok.special.pad, null);
  assert.equal(tok.special.unk, null);
  assert.deepEqual([...tok.specialIds].sort(), [256, 257]);
  assert.equal(tok.tokenToId("<|end|>"), 256);
  assert.equal(tok.idToToken(0x41), "A");
  assert.equal(tok.idToToken(9999), undefined);
});

test("decode: skipSpecialTokens, ids without a token are skipped, empty input", async () => {
  const tok = await byteLevel();
  const e = tok.encode("héllo 😀");
  assert.equal(tok.decode(e), "<|start|>héllo 😀<|end|>");
  assert.equal(tok.decode(e, { skipSpecialTokens: true }), "héllo 😀");
  assert.equal(tok.decode([...utf8("ab"), 5000, -1]), "ab"); // padded-vocab ids have no text
  assert.equal(tok.decode([]), "");
  assert.equal(tok.decode(new Int32Array([0x68, 0x69])), "hi");
  assert.throws(() => tok.decode([1.5]), TypeError);
});

test("truncation keeps the special tokens and cuts the text (right by default, left on request)", async () => {
  const tok = await byteLevel();
  assert.deepEqual(ids(tok.encode("abcdef", { truncation: { maxLength: 4 } })), [257, 0x61, 0x62, 256]);
  assert.deepEqual(ids(tok.encode("abcdef", { truncation: { maxLength: 4, side: "left" } })), [257, 0x65, 0x66, 256]);
  assert.deepEqual(ids(tok.encode("abcdef", { addSpecialTokens: false, truncation: { maxLength: 3 } })), [0x61, 0x62, 0x63]);
  assert.deepEqual(ids(tok.encode("ab", { truncation: { maxLength: 10 } })), [257, 0x61, 0x62, 256]); // short: untouched
  assert.throws(() => tok.encode("abc", { truncation: { maxLength: 1 } }), RangeError); // specials alone take 2
  assert.throws(() => tok.encode("abc", { truncation: { maxLength: 0 } }), RangeError);
  const left = await loadTokenizer({ tokenizerJson: byteLevelJson(), tokenizerConfig: { truncation_side: "left" } });
  assert.deepEqual(ids(left.encode("abcdef", { addSpecialTokens: false, truncation: { maxLength: 2 } })), [0x65, 0x66]);
});

test("stream decoder emits only complete characters when multi-byte UTF-8 is split across tokens", async () => {
  const tok = await byteLevel();
  const text = "aé😀日\n";
  const stream = tok.streamDecoder();
  const pieces = utf8(text).map((id) => stream.push(id));
  // "a" | é = C3 A9 | 😀 = F0 9F 98 80 | 日 = E6 97 A5 | "\n"
  assert.deepEqual(pieces, ["a", "", "é", "", "", "", "😀", "", "", "日", "\n"]);
  assert.ok(pieces.every((p) => !p.includes("\uFFFD")));
  assert.equal(stream.flush(), "");
});

test("stream decoder: specials skipped by default, flush returns a dangling partial character", async () => {
  const tok = await byteLevel();
  const stream = tok.streamDecoder();
  assert.equal(stream.push(257), "");
  assert.equal(stream.push(0x61), "a");
  assert.equal(stream.push(0xe6), ""); // first byte of a 3-byte character
  assert.equal(stream.push(256), ""); // <|end|> is skipped, and the character is still incomplete
  assert.equal(stream.flush(), "\uFFFD");
  const keep = tok.streamDecoder({ skipSpecialTokens: false });
  assert.equal([257, 0x61, 256].map((id) => keep.push(id)).join(""), "<|start|>a<|end|>");
});

test("Metaspace + byte fallback: encode/decode, BOM kept, stream keeps the leading space with context", async () => {
  const tok = await metaspace();
  const a = tok.encode("a b");
  assert.deepEqual(ids(a), [1, tok.tokenToId("▁a"), tok.tokenToId("▁b")]);
  assert.equal(tok.decode(a, { skipSpecialTokens: true }), "a b");
  // "é" is not in the vocabulary: byte fallback <0xC3><0xA9>
  const e = tok.encode("é", { addSpecialTokens: false });
  assert.deepEqual(ids(e), [tok.tokenToId("▁"), 3 + 0xc3, 3 + 0xa9]);
  assert.equal(tok.decode(e), "é");
  // tokenizers.js alone drops a leading U+FEFF here (default TextDecoder); the SDK decodes like Rust.
  assert.equal(tok.decode(tok.encode("a\uFEFFb", { addSpecialTokens: false })), "a\uFEFFb");
  // Invalid UTF-8 in a byte run: one U+FFFD per byte, as the Rust ByteFallback decoder does.
  assert.equal(tok.decode([3 + 0xc3, 3 + 0x41]), "\uFFFD\uFFFD");
  // Decoding "▁b" alone strips its space (Strip decoder); with the prompt as context it is kept.
  const b = tok.tokenToId("▁b") as number;
  assert.equal(tok.decode([b]), "b");
  const stream = tok.streamDecoder({ context: ids(tok.encode("a")) });
  assert.equal(stream.push(b), " b");
  assert.equal(stream.push(tok.tokenToId("▁a") as number), " a");
});

test("streamed text equals decode for many random byte sequences", async () => {
  const tok = await byteLevel();
  let seed = 12345;
  const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
  const pool = ["a", " ", "é", "😀", "日本", "\n", "Ω", "👍🏽", "<|end|>"];
  for (let trial = 0; trial < 200; trial++) {
    let text = "";
    for (let i = rand(12); i >= 0; i--) text += pool[rand(pool.length)];
    const e = tok.encode(text, { addSpecialTokens: false });
    const stream = tok.streamDecoder({ skipSpecialTokens: false });
    let out = "";
    for (const id of e) out += stream.push(id);
    out += stream.flush();
    assert.equal(out, tok.decode(e), JSON.stringify(text));
    assert.equal(out, text);
  }
});

test("loadTokenizer: tokenizer.model alone is refused with a conversion hint; bad inputs are typed errors", async () => {
  const model = new Uint8Array([0x0a, 0x01, 0x00]);
  await assert.rejects(
    loadTokenizer({ tokenizerModel: model }),
    (err: unknown) => err instanceof TokenizerLoadError && /tokenizer\.model/.test(err.message) && /save_pretrained/.test(err.message),
  );
  await assert.rejects(loadTokenizer({}), TokenizerLoadError);
  await assert.rejects(loadTokenizer({ tokenizerJson: "{not json" }), TokenizerLoadError);
  await assert.rejects(loadTokenizer({ tokenizerJson: "[]" }), TokenizerLoadError);
  await assert.rejects(loadTokenizer({ tokenizerJson: { added_tokens: [] } }), /no "model"/);
  const weird = { ...byteLevelJson(), pre_tokenizer: { type: "NoSuchPreTokenizer" } };
  await assert.rejects(loadTokenizer({ tokenizerJson: weird }), TokenizerLoadError);
  // tokenizer.model next to a tokenizer.json is fine: tokenizer.json is used
  assert.equal((await loadTokenizer({ tokenizerJson: byteLevelJson(), tokenizerModel: model })).vocabSize, 258);
});

test("the caller's tokenizer.json object is not modified", async () => {
  const json = byteLevelJson() as Record<string, unknown>;
  delete json["added_tokens"];
  const before = JSON.stringify(json);
  await loadTokenizer({ tokenizerJson: json });
  assert.equal(JSON.stringify(json), before);
});
