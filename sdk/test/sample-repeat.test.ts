// The loop guard (stop_on_repeat): generation ends at the first sentence or line that repeats an earlier
// one, the repeat is never emitted, ordinary text streams as it comes, and however the text is chunked
// (token by token, byte by byte, all at once) the output is the same.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Generation, RepeatGuard } from "../src/sample/index.js";
import { loadTokenizer, type Tokenizer } from "../src/tokenize/index.js";

const EOS = 256;

/** Byte-level tokenizer: token id == byte value (as sample-generation.test.ts). */
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

/** Push `chunks` through a guard; the text it lets out (flushed at the end unless stopped) and whether it stopped. */
function guard(chunks: string[], minChars?: number): { out: string; stopped: boolean; pieces: string[] } {
  const g = new RepeatGuard(minChars === undefined ? {} : { minChars });
  const pieces: string[] = [];
  let stopped = false;
  for (const c of chunks) {
    const r = g.push(c);
    pieces.push(r.text);
    if (r.stopped) {
      stopped = true;
      break;
    }
  }
  if (!stopped) pieces.push(g.flush());
  return { out: pieces.join(""), stopped, pieces };
}

const LOOP = "The CEO of Quillmere Robotics is Marisol Thornbury [2]. The CEO of Quillmere Robotics is Marisol Thornbury [2]. The CEO of";
const ONCE = "The CEO of Quillmere Robotics is Marisol Thornbury [2].";

test("RepeatGuard: a repeated sentence ends the text before the repeat, for every chunking", () => {
  const whole = guard([LOOP]);
  assert.deepEqual([whole.out, whole.stopped], [ONCE, true]);
  const chars = guard([...LOOP]);
  assert.deepEqual([chars.out, chars.stopped], [ONCE, true]);
  const words = guard(LOOP.split(/(?<= )/u));
  assert.deepEqual([words.out, words.stopped], [ONCE, true]);
  // A cycle of two sentences stops at the first repeat of the first one.
  const cycle = guard(["Heron 4 runs nine hours. ", "It is 1.8 metres long. ", "Heron 4 runs nine hours. ", "It is"]);
  assert.deepEqual([cycle.out, cycle.stopped], ["Heron 4 runs nine hours. It is 1.8 metres long.", true]);
  // Repeated lines (no full stop) count too.
  const lines = guard([..."- buy more boats\n- buy more boats\n- buy"]);
  assert.deepEqual([lines.out, lines.stopped], ["- buy more boats\n", true]);
});

test("RepeatGuard: text that only starts like an earlier sentence streams once it differs; short sentences never stop", () => {
  const text = "The company sold 3,400 boats in 2023 [3]. The company sold them mostly to universities [1].";
  const r = guard([...text]);
  assert.deepEqual([r.out, r.stopped], [text, false]);
  // While "The company sold " could still repeat the first sentence, it is held; "them" releases it.
  const g = new RepeatGuard();
  assert.equal(g.push("The company sold 3,400 boats in 2023 [3]. ").text, "The company sold 3,400 boats in 2023 [3].");
  assert.equal(g.push("The company sold ").text, "");
  assert.equal(g.push("them").text, " The company sold them");
  assert.equal(g.push(" to universities.").text, " to universities.");
  // Short repeated sentences (under minChars) are not loops: "Yes. Yes." is left alone.
  assert.equal(guard(["Yes. ", "Yes. ", "No."]).out, "Yes. Yes. No.");
  // Decimal points and abbreviations inside a sentence are not sentence ends.
  assert.equal(guard(["It is 1.8 metres long and runs 9.5 hours."]).out, "It is 1.8 metres long and runs 9.5 hours.");
  // Held text comes out on flush when generation ends another way.
  const h = new RepeatGuard();
  h.push("Lisbon has the sales office [4]. ");
  assert.equal(h.push("Lisbon has").text, "");
  assert.equal(h.flush(), " Lisbon has");
  assert.throws(() => new RepeatGuard({ minChars: 0 }), RangeError);
});

test("Generation with stop_on_repeat: finish 'stop' at the repeat, the repeat not in the text; off by default", async () => {
  const tok = await byteTokenizer();
  const run = (params: { stop_on_repeat?: boolean; max_tokens?: number; stop?: string }) => {
    const g = new Generation(tok, params);
    for (const t of bytes(LOOP)) if (g.accept(t).finishReason !== null) break;
    return { text: g.text, finish: g.finishReason, steps: g.history.outputLength, repeat: g.stoppedOnRepeat };
  };
  const guarded = run({ stop_on_repeat: true, max_tokens: 500 });
  assert.equal(guarded.text, ONCE);
  assert.equal(guarded.finish, "stop");
  assert.equal(guarded.repeat, true);
  // It stops as soon as the repeat completes: the repeated sentence's last token, not the text after it.
  assert.equal(guarded.steps, bytes(ONCE + " " + ONCE).length);
  const plain = run({ max_tokens: 500 });
  assert.equal(plain.finish, null, "without the guard the loop goes on");
  assert.equal(plain.text, LOOP);
  // max_tokens inside a held-back sentence: the held text is released (it was not a repeat).
  const cut = run({ stop_on_repeat: true, max_tokens: bytes(ONCE + " The CEO").length });
  assert.equal(cut.text, ONCE + " The CEO");
  assert.equal(cut.finish, "length");
  // Stop strings still apply first.
  assert.equal(run({ stop_on_repeat: true, stop: "Marisol" }).text, "The CEO of Quillmere Robotics is ");
  // EOS after a held-back prefix releases it.
  const g = new Generation(tok, { stop_on_repeat: true });
  for (const t of bytes(ONCE + " The CEO")) g.accept(t);
  assert.equal(g.accept(EOS).finishReason, "stop");
  assert.equal(g.text, ONCE + " The CEO");
  assert.equal(g.stoppedOnRepeat, false);
});
