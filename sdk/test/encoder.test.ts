// Text encoders: bucket selection, batch splitting / unsorting, truncation reporting, config parsing
// (unit, no GPU); then EncoderModel end to end on Dawn WebGPU with the compiled all-MiniLM-L6-v2
// package (default dist/all-MiniLM-L6-v2/q0f32, or HEARTH_ENCODER_PACKAGE).
// The package must exist: the GPU tests FAIL (do not skip) without it. `make test` builds it
// (scripts/build_packages.py; pytest's tests/test_webgpu_encoder.py builds it too).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  EncoderConfigError,
  EncoderModel,
  EncoderStateError,
  InputTooLongError,
  parseEncoderConfig,
  SequenceTooLongError,
  type EncoderBucket,
  type TruncationReport,
} from "../src/engine.js";
import { fitBuckets } from "../src/encoder/load.js";
import { buildInputs, pickBatch, planBatches, runPlanned } from "../src/encoder/plan.js";
import { tokenizeBatchForEncoder, tokenizeForEncoder } from "../src/encoder/tokens.js";
import { PackageCompatibilityError } from "../src/load/index.js";
import { loadTokenizer } from "../src/tokenize/index.js";
import type { Embedder } from "../src/rag/types.js";
import { installNodeGPU } from "./support/node-gpu.js";
import { fileFetch } from "./support/file-fetch.js";

// -- fixtures ------------------------------------------------------------------------------------

function bucketsOf(batches: number[], seqs: number[]): EncoderBucket[] {
  return seqs.flatMap((s) => batches.map((b) => ({ fn: `embed_b${b}_s${s}`, batch: b, seq: s })));
}

/** The default bucket grid of hearth.models.encoder for max_seq_length 256. */
const BUCKETS = bucketsOf([1, 8, 32], [32, 64, 128, 256]);

function configJson(overrides: Record<string, unknown> = {}, meta: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_type: "bert",
    model_task: "embedding",
    quantization: "q0f32",
    vocab_size: 30522,
    context_window_size: 256,
    max_batch_size: 32,
    pad_token_id: 0,
    model_config: { num_attention_heads: 12, intermediate_size: 1536, hidden_size: 384 },
    tokenizer_files: ["tokenizer.json"],
    params: [
      { name: "embeddings.word.weight", shape: [30522, 384], dtype: "float32" },
      { name: "encoder.layer.0.attention.qkv.weight", shape: [1152, 384], dtype: "float32" },
    ],
    embedding_metadata: {
      model_task: "embedding",
      hidden_size: 384,
      max_seq_length: 256,
      pooling: "mean",
      normalize: true,
      output_dtype: "float32",
      padding_side: "right",
      buckets: BUCKETS.map((k) => ({ function: k.fn, batch_size: k.batch, seq_len: k.seq })),
      ...meta,
    },
    ...overrides,
  };
}

/**
 * A tiny BERT WordPiece tokenizer.json (same components as all-MiniLM-L6-v2's). Its own truncation /
 * padding blocks (max 8, fixed padding to 8) must be IGNORED: the encoder truncates to max_seq_length.
 */
const WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "##s", "hello", "world", ".", ",", "!"];
const TINY_TOKENIZER = {
  version: "1.0",
  truncation: { max_length: 8, strategy: "LongestFirst", stride: 0 },
  padding: { strategy: { Fixed: 8 }, direction: "Right", pad_to_multiple_of: null, pad_id: 0, pad_type_id: 0, pad_token: "[PAD]" },
  added_tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map((content, id) => ({
    id,
    special: true,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
  })),
  normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
  pre_tokenizer: { type: "BertPreTokenizer" },
  post_processor: {
    type: "TemplateProcessing",
    single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }],
    pair: [
      { SpecialToken: { id: "[CLS]", type_id: 0 } },
      { Sequence: { id: "A", type_id: 0 } },
      { SpecialToken: { id: "[SEP]", type_id: 0 } },
      { Sequence: { id: "B", type_id: 1 } },
      { SpecialToken: { id: "[SEP]", type_id: 1 } },
    ],
    special_tokens: {
      "[CLS]": { id: "[CLS]", ids: [2], tokens: ["[CLS]"] },
      "[SEP]": { id: "[SEP]", ids: [3], tokens: ["[SEP]"] },
    },
  },
  decoder: { type: "WordPiece", prefix: "##", cleanup: true },
  model: {
    type: "WordPiece",
    unk_token: "[UNK]",
    continuing_subword_prefix: "##",
    max_input_chars_per_word: 100,
    vocab: Object.fromEntries([["[PAD]", 0], ["[UNK]", 1], ["[CLS]", 2], ["[SEP]", 3], ["[MASK]", 4], ...WORDS.map((w, i) => [w, 5 + i] as const)]),
  },
};
const CLS = 2;
const SEP = 3;

// -- config ----------------------------------------------------------------------------------------

describe("parseEncoderConfig", () => {
  test("reads buckets (sorted by seq, batch), sizes and pooling", () => {
    const shuffled = configJson({}, { buckets: [...BUCKETS].reverse().map((k) => ({ function: k.fn, batch_size: k.batch, seq_len: k.seq })) });
    const c = parseEncoderConfig(shuffled);
    assert.deepEqual(c.buckets, BUCKETS);
    assert.equal(c.hiddenSize, 384);
    assert.equal(c.maxSeqLength, 256);
    assert.equal(c.pooling, "mean");
    assert.equal(c.normalize, true);
    assert.equal(c.numAttentionHeads, 12);
    assert.equal(c.intermediateSize, 1536);
    assert.equal(c.params.length, 2);
  });

  test("refuses decoder packages and malformed bucket lists", () => {
    assert.throws(
      () => parseEncoderConfig(configJson({ model_task: "chat" })),
      (e: unknown) => e instanceof EncoderConfigError && /not a text-encoder package.*DecoderModel/.test(e.message),
    );
    assert.throws(() => parseEncoderConfig(configJson({ model_task: undefined })), EncoderConfigError);
    assert.throws(() => parseEncoderConfig(configJson({ embedding_metadata: undefined })), /embedding_metadata/);
    assert.throws(() => parseEncoderConfig(configJson({}, { buckets: [] })), /buckets/);
    assert.throws(
      () => parseEncoderConfig(configJson({}, { buckets: [{ function: "embed_b8_s32", batch_size: 1, seq_len: 32 }] })),
      /does not match batch_size 1/,
    );
    assert.throws(() => parseEncoderConfig(configJson({}, { output_dtype: "float16" })), /output_dtype/);
    assert.throws(() => parseEncoderConfig(configJson({ params: [] })), /params/);
  });

  test("fitBuckets drops buckets over the device's buffer limit, fails when a weight or everything is too big", () => {
    const c = parseEncoderConfig(configJson());
    // b32_s256: max(32*12*256*256*4, 32*256*1536*4) = 96 MiB; b8_s256: 24 MiB; b32_s128: 24 MiB.
    const fit = fitBuckets(c, { maxStorageBufferBindingSize: 64 << 20 }, "m");
    assert.deepEqual(
      fit.skipped.map((s) => s.bucket.fn),
      ["embed_b32_s256"],
    );
    assert.equal(fit.buckets.length, BUCKETS.length - 1);
    assert.equal(fitBuckets(c, {}, "m").skipped.length, 0);
    assert.throws(() => fitBuckets(c, { maxStorageBufferBindingSize: 40 << 20 }, "m"), PackageCompatibilityError); // the embedding table is 44.7 MiB
  });
});

// -- bucket selection ----------------------------------------------------------------------------

describe("bucket planning (same algorithm as hearth.models.encoder_driver.plan_batches)", () => {
  test("pickBatch: largest when it fills, else up when at least half full, else down", () => {
    const sizes = [1, 8, 32];
    const cases: [number, number][] = [
      [100, 32],
      [32, 32],
      [20, 32],
      [16, 32],
      [15, 8],
      [8, 8],
      [5, 8],
      [4, 8],
      [3, 1],
      [2, 1],
      [1, 1],
    ];
    for (const [remaining, want] of cases) assert.equal(pickBatch(sizes, remaining), want, `remaining ${remaining}`);
    assert.equal(pickBatch([4], 1), 4); // nothing smaller: up
  });

  test("longest text picks the smallest fitting sequence bucket; ties keep input order", () => {
    // Batch sizes count only the texts that NEED the bucket: the 200-token text alone in s256 (it must not
    // pad four short texts to 256), 40 alone in s64, then the three that fit s32 (3 < 8/2: b1 calls).
    assert.deepEqual(
      planBatches([5, 40, 5, 200, 31], BUCKETS).map((c) => [c.bucket.fn, c.indices]),
      [
        ["embed_b1_s256", [3]],
        ["embed_b1_s64", [1]],
        ["embed_b1_s32", [4]],
        ["embed_b1_s32", [0]],
        ["embed_b1_s32", [2]],
      ],
    );
    // 5 texts need s256 (5 >= 8/2: b8); the free rows take the next texts, longest first.
    assert.deepEqual(
      planBatches([200, 5, 200, 200, 40, 200, 200, 31], BUCKETS).map((c) => [c.bucket.fn, c.indices]),
      [["embed_b8_s256", [0, 2, 3, 5, 6, 4, 7, 1]]],
    );
    // 3 texts: 3 < 8/2, so b1 calls, each in the smallest sequence bucket that fits it.
    assert.deepEqual(
      planBatches([5, 40, 200], BUCKETS).map((c) => [c.bucket.fn, c.indices]),
      [
        ["embed_b1_s256", [2]],
        ["embed_b1_s64", [1]],
        ["embed_b1_s32", [0]],
      ],
    );
    // Rows of one call share the sequence bucket of its longest text (the others are right-padded).
    assert.deepEqual(
      planBatches([...Array.from({ length: 32 }, () => 100), 10, 10, 10, 10, 10], BUCKETS).map((c) => [c.bucket.fn, c.indices.length]),
      [
        ["embed_b32_s128", 32],
        ["embed_b8_s32", 5],
      ],
    );
  });

  test("splits big batches: 70 equal texts -> 32 + 32 + 8 (6 left fill the 8 at least half)", () => {
    const plan = planBatches(
      Array.from({ length: 70 }, () => 10),
      BUCKETS,
    );
    assert.deepEqual(
      plan.map((c) => c.bucket.fn),
      ["embed_b32_s32", "embed_b32_s32", "embed_b8_s32"],
    );
    assert.deepEqual(
      plan.flatMap((c) => c.indices),
      Array.from({ length: 70 }, (_, i) => i),
    );
    const exact = planBatches([32, 33, 64, 65, 128, 129, 256], bucketsOf([1], [32, 64, 128, 256]));
    assert.deepEqual(
      exact.map((c) => c.bucket.seq),
      [256, 256, 128, 128, 64, 64, 32],
    );
  });

  test("too long for every bucket: SequenceTooLongError; empty input: no calls", () => {
    assert.throws(
      () => planBatches([10, 257], BUCKETS),
      (e: unknown) => e instanceof SequenceTooLongError && e.tokens === 257 && e.maxTokens === 256,
    );
    assert.deepEqual(planBatches([], BUCKETS), []);
  });

  test("buildInputs: right-padded rows, mask 1 on tokens, all-padding rows past the texts", () => {
    const tokens = [Int32Array.of(2, 7, 3), Int32Array.of(2, 3)];
    const { inputIds, attentionMask } = buildInputs(tokens, { bucket: { fn: "embed_b8_s4", batch: 8, seq: 4 }, indices: [1, 0] });
    assert.equal(inputIds.length, 32);
    assert.deepEqual(Array.from(inputIds.subarray(0, 8)), [2, 3, 0, 0, 2, 7, 3, 0]);
    assert.deepEqual(Array.from(attentionMask.subarray(0, 8)), [1, 1, 0, 0, 1, 1, 1, 0]);
    assert.ok(inputIds.subarray(8).every((x) => x === 0) && attentionMask.subarray(8).every((x) => x === 0));
    assert.throws(() => buildInputs([Int32Array.of(1, 2, 3, 4, 5)], { bucket: { fn: "embed_b1_s4", batch: 1, seq: 4 }, indices: [0] }), SequenceTooLongError);
  });

  test("runPlanned: every text's vector comes back at its input position; padding rows are dropped", async () => {
    const dim = 4;
    // 45 texts of varied lengths -> several buckets and batch splits.
    const seqs = Array.from({ length: 45 }, (_, i) => Int32Array.from({ length: 2 + ((i * 37) % 120) }, (_, j) => (j === 0 ? 1000 + i : 5)));
    const seen: string[] = [];
    const r = await runPlanned(seqs, BUCKETS, dim, async (call, { inputIds, attentionMask }) => {
      seen.push(call.bucket.fn);
      const { batch, seq } = call.bucket;
      const out = new Float32Array(batch * dim).fill(-1);
      for (let row = 0; row < batch; row++) {
        let len = 0;
        for (let j = 0; j < seq; j++) len += attentionMask[row * seq + j] as number;
        if (len === 0) continue; // padding row: -1s, must never be returned
        out.set([inputIds[row * seq] as number, len, row, seq], row * dim);
      }
      return out;
    });
    assert.equal(r.vectors.length, seqs.length);
    r.vectors.forEach((v, i) => {
      assert.equal(v[0], 1000 + i, `text ${i} came back at the wrong position`);
      assert.equal(v[1], (seqs[i] as Int32Array).length);
      assert.ok((v[3] as number) >= (seqs[i] as Int32Array).length);
    });
    assert.equal(
      Object.values(r.calls).reduce((a, b) => a + b, 0),
      seen.length,
    );
    assert.equal(
      r.paddedTokens,
      seen.reduce((n, fn) => n + BUCKETS.find((k) => k.fn === fn)!.batch * BUCKETS.find((k) => k.fn === fn)!.seq, 0),
    );
    // The output vectors are copies, not views of the call buffer.
    assert.ok(r.vectors.every((v) => v.byteOffset === 0 && v.buffer.byteLength === dim * 4));
  });

  test("runPlanned: an abort between calls rejects with the signal's reason and runs nothing more", async () => {
    const ac = new AbortController();
    let calls = 0;
    const seqs = [Int32Array.of(2, 3), Int32Array.from({ length: 100 }, () => 5)];
    await assert.rejects(
      runPlanned(
        seqs,
        BUCKETS,
        2,
        async (call) => {
          calls++;
          ac.abort(new Error("stop"));
          return new Float32Array(call.bucket.batch * 2);
        },
        ac.signal,
      ),
      /stop/,
    );
    assert.equal(calls, 1);
    await assert.rejects(
      runPlanned(seqs, BUCKETS, 2, async () => new Float32Array(2), AbortSignal.abort(new Error("early"))),
      /early/,
    );
  });
});

// -- tokenization and truncation ---------------------------------------------------------------------

describe("encoder tokenization: [CLS]/[SEP], truncation reported, tokenizer.json's own limits ignored", () => {
  test("short text whole; long text cut to maxTokens keeping [CLS] ... [SEP]; empty/whitespace -> [CLS] [SEP]", async () => {
    const tok = await loadTokenizer({ tokenizerJson: TINY_TOKENIZER });
    const short = tokenizeForEncoder(tok, "The cat sat on the mat.", 16);
    assert.equal(short.truncated, false);
    assert.deepEqual(Array.from(short.ids), [CLS, 5, 6, 7, 8, 5, 9, 16, SEP]); // 9 ids: NOT cut to the file's max_length 8, not padded
    assert.equal(short.tokens, 9);

    const text = "the cat sat on the mat ".repeat(5); // 30 words -> 32 ids
    const cut = tokenizeForEncoder(tok, text, 16);
    assert.equal(cut.truncated, true);
    assert.equal(cut.tokens, 32);
    assert.equal(cut.ids.length, 16);
    assert.equal(cut.ids[0], CLS);
    assert.equal(cut.ids[15], SEP);
    assert.deepEqual(Array.from(cut.ids.subarray(1, 15)), Array.from(tokenizeForEncoder(tok, text, 64).ids.subarray(1, 15)));
    const exact = tokenizeForEncoder(tok, "the cat sat on the mat the cat sat on the mat the cat", 16); // 14 words -> 16 ids
    assert.deepEqual([exact.truncated, exact.ids.length], [false, 16]);

    for (const blank of ["", " ", "\n\t ", "\u3000"]) {
      const r = tokenizeForEncoder(tok, blank, 16);
      assert.deepEqual([Array.from(r.ids), r.truncated], [[CLS, SEP], false], JSON.stringify(blank));
    }
    assert.throws(() => tokenizeForEncoder(tok, null as unknown as string, 16), TypeError);
  });

  test("batch: per-text flags and counts; non-strings rejected", async () => {
    const tok = await loadTokenizer({ tokenizerJson: TINY_TOKENIZER });
    const r = tokenizeBatchForEncoder(tok, ["hello world", "dog ".repeat(20), ""], 8);
    assert.deepEqual(r.truncated, [false, true, false]);
    assert.deepEqual(r.tokenCounts, [4, 22, 2]);
    assert.deepEqual(
      r.ids.map((t) => t.length),
      [4, 8, 2],
    );
    assert.throws(() => tokenizeBatchForEncoder(tok, ["ok", 3 as unknown as string], 8), /texts\[1\] is not a string/);
    assert.throws(() => tokenizeBatchForEncoder(tok, "abc" as unknown as string[], 8), TypeError);
  });
});

// -- GPU: the compiled package ---------------------------------------------------------------------

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const PACKAGE = resolve(process.env["HEARTH_ENCODER_PACKAGE"] ?? join(REPO, "dist/all-MiniLM-L6-v2/q0f32"));

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += (a[i] as number) * (b[i] as number);
    aa += (a[i] as number) ** 2;
    bb += (b[i] as number) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

describe("EncoderModel on Dawn WebGPU (compiled all-MiniLM-L6-v2)", () => {
  let model: EncoderModel;
  const reports: TruncationReport[] = [];

  before(async () => {
    assert.ok(
      existsSync(join(PACKAGE, "hearth-manifest.json")),
      `no compiled encoder package at ${PACKAGE}: build it with \`make test\` / \`.venv/bin/python scripts/build_packages.py\` ` +
        "or `.venv/bin/python -m pytest tests/test_webgpu_encoder.py` (or set HEARTH_ENCODER_PACKAGE)",
    );
    const gpu = await installNodeGPU();
    model = await EncoderModel.load(pathToFileURL(PACKAGE).href + "/", {
      gpu,
      target: "webgpu", // lavapipe is a software adapter: force WebGPU
      fetch: fileFetch,
      cache: "none",
      logger: () => {},
      onTruncate: (r) => reports.push(r),
    });
  });

  after(async () => {
    await model?.dispose();
  });

  test("implements Embedder: modelId, dim, maxTokens, countTokens", () => {
    const e: Embedder = model; // compile-time contract
    assert.equal(e.dim, 384);
    assert.equal(e.maxTokens, 256);
    assert.match(e.modelId, /^all-MiniLM-L6-v2\/q\w+$/);
    assert.equal(e.countTokens(""), 2);
    assert.equal(e.countTokens("hello world"), 4);
    assert.equal(model.countTokens("word ".repeat(300)), 302); // not truncated: the chunker needs the real count
    assert.ok(model.normalized);
    const { load } = model.stats();
    assert.ok(load.totalMs > 0 && load.verifiedBytes > 0, JSON.stringify(load));
  });

  test("embeddings: unit length, finite, semantically ordered; empty == whitespace == [CLS][SEP]", async () => {
    const texts = ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply today.", "", "   \n\t"];
    const r = await model.embedDetailed(texts);
    assert.equal(r.vectors.length, texts.length);
    for (const v of r.vectors) {
      assert.equal(v.length, 384);
      assert.ok(v.every(Number.isFinite));
      assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-4);
    }
    const [guitar, guitar2, stocks, empty, blank] = r.vectors as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
    assert.ok(cosine(guitar, guitar2) > cosine(guitar, stocks) + 0.2, `${cosine(guitar, guitar2)} vs ${cosine(guitar, stocks)}`);
    assert.deepEqual(Array.from(empty), Array.from(blank));
    assert.deepEqual(r.truncated, [false, false, false, false, false]);
    assert.deepEqual(r.tokenCounts.slice(3), [2, 2]);
    assert.deepEqual(r.calls, { embed_b8_s32: 1 }); // 5 texts -> one b8 call (3 padding rows)
  });

  test("same text alone (b1) and inside a batch (b8) agree; input order is kept", async () => {
    const texts = ["first sentence here", "a second, slightly longer sentence about WebGPU", "third"];
    const batch = await model.embed(texts);
    const alone = await model.embed([texts[1] as string]);
    assert.ok(cosine(batch[1] as Float32Array, alone[0] as Float32Array) > 0.99999);
    assert.ok(cosine(batch[0] as Float32Array, batch[2] as Float32Array) < 0.999);
    const reversed = await model.embed([...texts].reverse());
    texts.forEach((_, i) => {
      assert.ok(cosine(batch[i] as Float32Array, reversed[texts.length - 1 - i] as Float32Array) > 0.99999);
    });
  });

  test("concurrent calls are serialized and each gets its own vectors", async () => {
    const [a, b] = await Promise.all([model.embed(["alpha beta"]), model.embed(["gamma delta", "alpha beta"])]);
    assert.ok(cosine(a[0] as Float32Array, b[1] as Float32Array) > 0.99999);
  });

  test("truncation: reported by embedDetailed and onTruncate; truncation: 'error' refuses", async () => {
    reports.length = 0;
    const long = "word ".repeat(300); // 302 tokens > 256
    await assert.rejects(
      model.embedDetailed(["ok", long], { truncation: "error" }),
      (e: unknown) => e instanceof InputTooLongError && e.indices[0] === 1 && e.maxTokens === 256,
    );
    const r = await model.embedDetailed(["ok", long]);
    assert.deepEqual(r.truncated, [false, true]);
    assert.deepEqual(r.tokenCounts, [3, 302]);
    assert.equal(reports.length, 0, "embedDetailed returns the flags; it does not call onTruncate");
    await model.embed([long]);
    assert.deepEqual(reports, [{ indices: [0], tokens: [302], maxTokens: 256 }]);
    // The truncated text embeds exactly like its first 256 tokens.
    const ids = model.tokenize(long).ids;
    assert.equal(ids.length, 256);
    const direct = await model.embedTokens([ids]);
    assert.ok(cosine(direct[0] as Float32Array, r.vectors[1] as Float32Array) > 0.99999);
  });

  test("bad input and abort reject without touching the GPU; stats count texts", async () => {
    await assert.rejects(model.embed([1 as unknown as string]), TypeError);
    await assert.rejects(model.embedTokens([[1, 2, 99999]]), /outside/);
    await assert.rejects(model.embed(["x"], AbortSignal.abort(new Error("aborted early"))), /aborted early/);
    model.resetStats();
    await model.embed(["one", "two"]);
    const s = model.stats().embed;
    assert.equal(s.texts, 2);
    assert.deepEqual(s.bucketCalls, { embed_b1_s32: 2 }); // 2 texts < 8/2: two b1 calls
    assert.ok(s.textsPerSec > 0 && s.paddedTokens >= s.tokens);
    assert.deepEqual(await model.embed([]), []);
  });

  test("pipelines: lazy (the encoder's default) compiles only the buckets used, with the same bits as eager", async () => {
    const before = model.stats().dispatch;
    assert.ok(before !== undefined, "WebGPU load uses Hearth's launch path");
    const eager = await EncoderModel.load(pathToFileURL(PACKAGE).href + "/", {
      gpu: await installNodeGPU(),
      target: "webgpu",
      fetch: fileFetch,
      cache: "none",
      logger: () => {},
      pipelines: "eager",
    });
    try {
      const texts = ["lazy pipelines", "compile at the first launch of each kernel, not while loading the package"];
      const [a, b] = [await model.embed(texts), await eager.embed(texts)];
      texts.forEach((_, i) => {
        assert.deepEqual(Array.from(a[i] as Float32Array), Array.from(b[i] as Float32Array));
      });
      const lazyStats = model.stats().dispatch;
      const eagerStats = eager.stats().dispatch;
      assert.ok(lazyStats !== undefined && eagerStats !== undefined);
      // Every kernel of every bucket is compiled eagerly; lazily only those of the buckets run so far.
      assert.ok(
        lazyStats.pipelinesCompiled > 0 && lazyStats.pipelinesCompiled < eagerStats.pipelinesCompiled / 2,
        `lazy ${lazyStats.pipelinesCompiled}, eager ${eagerStats.pipelinesCompiled}`,
      );
    } finally {
      await eager.dispose();
    }
  });

  test("dispose: later calls reject with EncoderStateError (last test)", async () => {
    const other = model;
    await other.dispose();
    await other.dispose(); // idempotent
    await assert.rejects(other.embed(["x"]), EncoderStateError);
  });
});
