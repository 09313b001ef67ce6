// Stop strings and the per-request decoding loop (Generation) over a byte-level tokenizer, where token
// id == byte value, so multi-byte characters and stop strings are split across tokens.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Generation, GenerationFinishedError, StopStringMatcher, type GenerationParams } from "../src/sample/index.js";
import { loadTokenizer, type Tokenizer } from "../src/tokenize/index.js";

const EOS = 256;

function byteTokenizer(): Promise<Tokenizer> {
  const table: string[] = new Array<string>(256);
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCharCode(printable(b) ? b : 256 + n++);
  const vocab: Record<string, number> = {};
  table.forEach((c, b) => {
    vocab[c] = b;
  });
  const tokenizerJson = {
    added_tokens: [{ id: EOS, content: "<|end|>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
    post_processor: null,
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", vocab, merges: [], byte_fallback: false, fuse_unk: false, unk_token: null },
  };
  return loadTokenizer({ tokenizerJson, tokenizerConfig: { eos_token: "<|end|>" } });
}

const bytes = (s: string): number[] => Array.from(new TextEncoder().encode(s));

/** Feed tokens with accept() until finished; returns the emitted pieces and the finish reason. */
async function run(params: GenerationParams, tokens: number[]) {
  const g = new Generation(await byteTokenizer(), params);
  const pieces: string[] = [];
  for (const t of tokens) {
    const step = g.accept(t);
    pieces.push(step.text);
    if (step.finishReason !== null) break;
  }
  return { pieces, text: g.text, finish: g.finishReason };
}

test("StopStringMatcher: a stop string split across chunks is found; nothing from it is emitted", () => {
  const m = new StopStringMatcher(["<|end|>"]);
  assert.deepEqual(m.push("Hello <|"), { text: "Hello ", stopped: false }); // "<|" held back
  assert.deepEqual(m.push("en"), { text: "", stopped: false });
  assert.deepEqual(m.push("d|> trailing"), { text: "", stopped: true, stop: "<|end|>" });
  assert.deepEqual(m.push("more"), { text: "", stopped: true });
  assert.equal(m.flush(), "");
});

test("StopStringMatcher: held-back text is released when it stops matching, or on flush", () => {
  const m = new StopStringMatcher(["STOP", "halt"]);
  assert.deepEqual(m.push("a ST"), { text: "a ", stopped: false });
  assert.deepEqual(m.push("Ox"), { text: "STOx", stopped: false });
  assert.deepEqual(m.push(" ha"), { text: " ", stopped: false });
  assert.equal(m.flush(), "ha");
  // of several matches, the one that ends first wins (as if fed byte by byte), then the longer one
  assert.deepEqual(new StopStringMatcher(["abcd", "bc"]).push("xabcd"), { text: "xa", stopped: true, stop: "bc" });
  assert.deepEqual(new StopStringMatcher(["c", "abc"]).push("xabc"), { text: "x", stopped: true, stop: "abc" });
  // a stop string entirely inside one chunk, and an overlapping partial ("aab" for "ab")
  assert.deepEqual(new StopStringMatcher(["ab"]).push("xxaab"), { text: "xxa", stopped: true, stop: "ab" });
  assert.deepEqual(new StopStringMatcher([]).push("anything"), { text: "anything", stopped: false });
  assert.throws(() => new StopStringMatcher([""]), RangeError);
});

test("generation: stop string across token boundaries (one byte per token) ends with finish 'stop'", async () => {
  const out = await run({ stop: ["END"] }, bytes("The answer ENDS here"));
  assert.equal(out.text, "The answer ");
  assert.equal(out.finish, "stop");
  // "E" and "N" were held back, never emitted
  assert.ok(!out.pieces.join("").includes("E"));
  assert.equal(out.pieces.length, bytes("The answer END").length);
});

test("generation: streaming text never contains half a character", async () => {
  const text = "naïve 日本 😀!";
  const out = await run({}, bytes(text));
  assert.equal(out.text, text);
  assert.equal(out.finish, null);
  assert.ok(out.pieces.every((p) => !p.includes("\uFFFD")));
  assert.deepEqual(out.pieces.slice(0, 4), ["n", "a", "", "ï"]); // ï = C3 AF
});

test("generation: EOS stops unless ignore_eos; stop_token_ids stop either way; EOS is not text", async () => {
  assert.deepEqual(await run({}, [...bytes("hi"), EOS, ...bytes("x")]), { pieces: ["h", "i", ""], text: "hi", finish: "stop" });
  const ignored = await run({ ignore_eos: true }, [...bytes("hi"), EOS, ...bytes("x")]);
  assert.equal(ignored.text, "hix"); // EOS skipped as a special token, generation went on
  assert.equal(ignored.finish, null);
  assert.equal((await run({ ignore_eos: true, stop_token_ids: [0x78] }, bytes("abxyz"))).text, "ab");
  // custom eos list (mlc-chat-config's eos_token_id) replaces the tokenizer's
  const g = new Generation(await byteTokenizer(), {}, { eosTokenIds: [0x7a] });
  assert.equal(g.accept(EOS).finishReason, null);
  assert.equal(g.accept(0x7a).finishReason, "stop");
});

test("generation: EOS right after a partial stop string releases the held text", async () => {
  assert.equal((await run({ stop: ["ZZZ"] }, [...bytes("abZZ"), EOS])).text, "abZZ");
  // and a dangling partial character is flushed as U+FFFD rather than lost
  assert.equal((await run({}, [0x61, 0xe6, EOS])).text, "a\uFFFD");
});

test("generation: max_tokens ends with 'length' and flushes held-back text", async () => {
  const out = await run({ max_tokens: 4, stop: ["xyz"] }, bytes("abxyq"));
  assert.equal(out.finish, "length");
  assert.equal(out.pieces.length, 4);
  assert.equal(out.text, "abxy"); // "xy" was held back as a possible "xyz", then flushed at the limit
  const g = new Generation(await byteTokenizer(), { max_tokens: 1 });
  g.accept(0x61);
  assert.throws(() => g.accept(0x62), GenerationFinishedError);
});

test("generation: finish() for an engine-side end (context full) flushes once", async () => {
  const g = new Generation(await byteTokenizer(), { stop: ["!?"] });
  g.accept(0x61);
  g.accept(0x21); // "!" held back
  assert.equal(g.finish(), "!");
  assert.equal(g.finishReason, "length");
  assert.equal(g.finish(), "");
  assert.equal(g.text, "a!");
});

test("generation: step() samples (greedy), applies penalties over the history, returns logprobs", async () => {
  const tok = await byteTokenizer();
  const logits = new Float32Array(257).fill(-10);
  logits[0x61] = 5;
  logits[0x62] = 4.5;
  const greedy = new Generation(tok, { temperature: 0, max_tokens: 3, logprobs: true });
  const steps = [greedy.step(logits), greedy.step(logits), greedy.step(logits)];
  assert.deepEqual(
    steps.map((s) => s.token),
    [0x61, 0x61, 0x61],
  );
  assert.equal(steps[2]?.finishReason, "length");
  assert.ok((steps[0]?.logprob as number) < 0 && (steps[0]?.logprob as number) > -1);
  // a frequency penalty makes greedy alternate once "a" has been produced
  const penalised = new Generation(tok, { temperature: 0, frequency_penalty: 1, max_tokens: 4 });
  const text = [0, 1, 2, 3].map(() => penalised.step(logits).text).join("");
  assert.equal(text, "abab");
  // the repetition penalty covers the prompt
  const withPrompt = new Generation(tok, { temperature: 0, repetition_penalty: 2 }, { promptIds: [0x61] });
  assert.equal(withPrompt.step(logits).token, 0x62);
});

test("generation: seeded sampling is reproducible end to end", async () => {
  const tok = await byteTokenizer();
  const logits = new Float32Array(257);
  for (let i = 0; i < 257; i++) logits[i] = Math.sin(i) * 3;
  const go = (seed: number) => {
    const g = new Generation(tok, { seed, temperature: 1, top_p: 0.9, max_tokens: 40, ignore_eos: true });
    return Array.from({ length: 40 }, () => g.step(logits).token);
  };
  assert.deepEqual(go(77), go(77));
  assert.notDeepEqual(go(77), go(78));
});
