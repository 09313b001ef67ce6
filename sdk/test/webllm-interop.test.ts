// WebLLM interop: the @mlc-ai/web-llm npm package's own engine (MLCEngine, its bundled tvmjs runtime)
// loads a Hearth package given as a custom model record (appConfig.model_list: model, model_id,
// model_lib = Hearth's own WebGPU wasm) and generates the same greedy tokens as Hearth's SDK on the same
// prompt, both on Dawn WebGPU. Default package: dist/tiny-qwen2-bpe/q4f16_1 (Qwen2: the `c_attn` names,
// a ChatML conv_template; f16, so the adapter needs shader-f16: lavapipe 25 has it), or
// HEARTH_WEBLLM_PACKAGE. The package must exist: this test FAILS (does not skip) without it; build it with
// `.venv/bin/python scripts/build_packages.py --tests`.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type * as WebLLM from "@mlc-ai/web-llm";
import { DecoderModel } from "../src/engine.js";
import { ChatTemplate, loadTokenizer, type ChatMessage, type Tokenizer } from "../src/tokenize/index.js";
import { installNodeGPU } from "./support/node-gpu.js";
import { fileFetch } from "./support/file-fetch.js";
import { asBrowser, importWebLLM, servePackage, type PackageServer } from "./support/webllm-node.js";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const PACKAGE = resolve(process.env["HEARTH_WEBLLM_PACKAGE"] ?? join(REPO, "dist/tiny-qwen2-bpe/q4f16_1"));
const MODEL_ID = "hearth-interop";
const NEW_TOKENS = 16;

// MLC's "LM" conversation template: the prompt as it is, no roles.
const PLAIN_LM = {
  system_template: "{system_message}",
  system_message: "",
  roles: { user: "", assistant: "" },
  seps: [""],
  role_content_sep: "",
  role_empty_sep: "",
  stop_str: [],
  stop_token_ids: [],
};

interface ChatConfigJson {
  model_lib: Record<string, string>;
  quantization: string;
  conv_template: { stop_token_ids: number[] } | null;
}

let config: ChatConfigJson;
let server: PackageServer;
let webllm: typeof WebLLM;
let engine: WebLLM.MLCEngine;
let hearth: DecoderModel;
let tokenizer: Tokenizer;

before(async () => {
  assert.ok(
    existsSync(join(PACKAGE, "hearth-manifest.json")),
    `no compiled package at ${PACKAGE}: build it with \`.venv/bin/python scripts/build_packages.py --tests\` (or set HEARTH_WEBLLM_PACKAGE)`,
  );
  config = JSON.parse(readFileSync(join(PACKAGE, "mlc-chat-config.json"), "utf8")) as ChatConfigJson;
  const wasm = config.model_lib["webgpu"];
  assert.ok(wasm !== undefined, `${PACKAGE} has no webgpu library (model_lib: ${JSON.stringify(config.model_lib)})`);
  server = await servePackage(PACKAGE, MODEL_ID, join(PACKAGE, wasm));
  webllm = await importWebLLM(server.origin);
  const record: WebLLM.ModelRecord = {
    model: server.modelUrl,
    model_id: MODEL_ID,
    model_lib: server.libUrl,
    ...(config.quantization.includes("f16") ? { required_features: ["shader-f16"] } : {}),
    // WebLLM cannot even complete text without a conv_template (it reads stop tokens from it); a package
    // without one (not ChatML, see compile/hearth/build/conv_template.py) gets MLC's plain "LM" template.
    ...(config.conv_template === null ? { overrides: { conv_template: PLAIN_LM } } : {}),
  };
  engine = await asBrowser(() => webllm.CreateMLCEngine(MODEL_ID, { appConfig: { model_list: [record] }, logLevel: "ERROR" }));

  const gpu = await installNodeGPU();
  // target "webgpu": the SDK would take the wasm-cpu build on a software adapter such as lavapipe.
  hearth = await DecoderModel.load(pathToFileURL(PACKAGE).href + "/", { gpu, fetch: fileFetch, logger: () => {}, target: "webgpu" });
  tokenizer = await loadTokenizer({
    tokenizerJson: readFileSync(join(PACKAGE, "tokenizer.json"), "utf8"),
    tokenizerConfig: readFileSync(join(PACKAGE, "tokenizer_config.json"), "utf8"),
  });
});

after(async () => {
  await engine?.unload();
  await hearth?.dispose();
  await server?.close();
});

/** Token texts as WebLLM reports them (logprobs), for ids Hearth generated. */
function tokenTexts(ids: readonly number[]): string[] {
  return ids.map((id) => tokenizer.decode([id]));
}

test("WebLLM read the package's files by their names: config, tokenizer, tensor-cache.json, shards, Hearth's wasm", () => {
  const files = server.requests.map((p) => p.split("/").pop());
  for (const f of ["mlc-chat-config.json", "tokenizer.json", "tensor-cache.json", "params_shard_0.bin"]) {
    assert.ok(files.includes(f), `WebLLM never asked for ${f}; it asked for ${JSON.stringify(server.requests)}`);
  }
  assert.ok(
    server.requests.some((p) => p.startsWith("/lib/")),
    "WebLLM did not fetch the model library",
  );
  assert.equal(hearth.loadInfo.deviceKind, "webgpu", "Hearth's SDK must run the same WebGPU build");
});

test("text completion: WebLLM's greedy tokens equal Hearth's on the same prompt", async () => {
  const prompt = "The list is a mutable sequence, and the tuple";
  const ids = Array.from(tokenizer.encode(prompt, { addSpecialTokens: false }));
  await hearth.reset();
  const expected = await hearth.greedy(ids, NEW_TOKENS);
  const out = await engine.completions.create({
    prompt,
    max_tokens: NEW_TOKENS,
    temperature: 0,
    top_p: 1,
    frequency_penalty: 0,
    presence_penalty: 0,
    logprobs: true,
    top_logprobs: 1,
  });
  const choice = out.choices[0];
  assert.ok(choice !== undefined);
  assert.equal(out.usage?.prompt_tokens, ids.length, "WebLLM tokenized the prompt differently");
  // WebLLM stops at the conv_template's stop tokens; Hearth's greedy does not, so compare up to there.
  const stops = new Set(config.conv_template?.stop_token_ids ?? []);
  const firstStop = expected.findIndex((t) => stops.has(t));
  const upTo = firstStop < 0 ? expected : expected.slice(0, firstStop);
  const got = (choice.logprobs?.content ?? []).map((c: { token: string }) => c.token);
  assert.deepEqual(got, tokenTexts(upTo));
  assert.equal(choice.text, tokenizer.decode(upTo));
  assert.equal(choice.finish_reason, firstStop < 0 ? "length" : "stop");
  assert.ok(new Set(upTo).size > 1, "the continuation should not be one repeated token (a weak check otherwise)");
  assert.ok(upTo.length >= 4, `too few tokens to compare (${upTo.length}): pick a prompt that does not stop at once`);
});

test("chat completion: WebLLM's conv_template prompt and greedy reply equal Hearth's (Jinja chat template)", async (t) => {
  assert.ok(
    config.conv_template !== null,
    `${PACKAGE} has no conv_template (its chat template is not ChatML), so WebLLM cannot chat with it ` +
      "unless the app passes overrides.conv_template (docs/webllm.md); use a ChatML package for this test",
  );
  const messages: ChatMessage[] = [
    { role: "system", content: "You are a terse assistant." },
    { role: "user", content: "What is a dictionary?" },
    { role: "assistant", content: "A mapping." },
    { role: "user", content: "And a list?" },
  ];
  const template = await ChatTemplate.fromSources({
    tokenizerConfig: JSON.parse(readFileSync(join(PACKAGE, "tokenizer_config.json"), "utf8")) as Record<string, unknown>,
    chatConfig: config as unknown as Record<string, unknown>,
  });
  const ids = Array.from(tokenizer.encode(template.render(messages, { add_generation_prompt: true }), { addSpecialTokens: false }));
  await hearth.reset();
  const expected = await hearth.greedy(ids, NEW_TOKENS);
  const out = await engine.chat.completions.create({
    messages,
    max_tokens: NEW_TOKENS,
    temperature: 0,
    top_p: 1,
    frequency_penalty: 0,
    presence_penalty: 0,
    ignore_eos: true,
    logprobs: true,
    top_logprobs: 1,
  });
  const choice = out.choices[0];
  assert.ok(choice !== undefined);
  assert.equal(out.usage?.prompt_tokens, ids.length, "WebLLM's conv_template prompt has a different length from the Jinja one");
  assert.deepEqual(
    (choice.logprobs?.content ?? []).map((c: { token: string }) => c.token),
    tokenTexts(expected),
  );
  assert.ok(new Set(expected).size > 1, "the reply should not be one repeated token (a weak check otherwise)");
  // Speeds of the two engines on the same build (informative only: on a software adapter, under load).
  const h = hearth.stats();
  const w = out.usage?.extra;
  t.diagnostic(
    `prefill tok/s: WebLLM ${w?.prefill_tokens_per_s?.toFixed(1)}, Hearth ${h.prefill.tokensPerSec.toFixed(1)}; ` +
      `decode tok/s: WebLLM ${w?.decode_tokens_per_s?.toFixed(1)}, Hearth ${h.decode.tokensPerSec.toFixed(1)}`,
  );
});

// The pieces of WebLLM's pipeline this test drives directly (private in TypeScript, present at run time).
interface PipelineInternals {
  tvm: {
    empty(shape: number[], dtype: string, dev: unknown): TvmTensor;
    cpu(): unknown;
    beginScope(): void;
    endScope(): void;
  };
  /** tvm.webgpu(): the device tensors live on. */
  device: { sync(): Promise<void> };
  fargsortProbs: (probs: TvmTensor) => { get(i: number): TvmTensor };
  fsampleWithTopP: (...args: TvmTensor[]) => TvmTensor;
  fapplyLogitBias: (...args: TvmTensor[]) => void;
  fapplyPenalty: (...args: TvmTensor[]) => void;
  fapplyBitmask: (...args: TvmTensor[]) => void;
}
interface TvmTensor {
  copyFrom(data: ArrayLike<number> | TvmTensor): TvmTensor;
  toArray(): Float32Array | Int32Array;
}

function pipelineInternals(): PipelineInternals {
  const pipelines = (engine as unknown as { loadedModelIdToPipeline?: Map<string, Partial<PipelineInternals>> }).loadedModelIdToPipeline;
  const p = pipelines?.get(MODEL_ID);
  const names = ["tvm", "device", "fargsortProbs", "fsampleWithTopP", "fapplyLogitBias", "fapplyPenalty", "fapplyBitmask"] as const;
  const missing = names.filter((n) => p?.[n] === undefined);
  assert.deepEqual(missing, [], "WebLLM's pipeline internals changed; update this test");
  return p as PipelineInternals;
}

test("the sampler functions Hearth's WebGPU build carries for WebLLM: argsort_probs and sample_with_top_p", async () => {
  const { tvm, device: dev, fargsortProbs, fsampleWithTopP } = pipelineInternals();
  const vocab = (config as unknown as { vocab_size: number }).vocab_size;
  // Probabilities with many exact ties (20 levels), so the tie order (lower id first) matters.
  const raw = Array.from({ length: vocab }, (_, i) => ((i * 7919) % 20) + 1 + (i === 5 ? 100 : 0));
  const sum = raw.reduce((a, b) => a + b, 0);
  const probs = Float32Array.from(raw, (r) => r / sum);
  const order = Array.from({ length: vocab }, (_, i) => i).sort((a, b) => probs[b]! - probs[a]! || a - b);

  tvm.beginScope();
  try {
    const onGpu = (data: ArrayLike<number>, dtype: string): TvmTensor => tvm.empty([1, data.length], dtype, dev).copyFrom(data);
    const result = fargsortProbs(onGpu(probs, "float32"));
    const sortedP = tvm.empty([1, vocab], "float32", tvm.cpu()).copyFrom(result.get(0));
    const sortedI = tvm.empty([1, vocab], "int32", tvm.cpu()).copyFrom(result.get(1));
    await dev.sync();
    assert.deepEqual(Array.from(sortedI.toArray()), order);
    assert.deepEqual(
      Array.from(sortedP.toArray()),
      order.map((i) => probs[i]!),
    );

    // Any shape WebLLM may pass: two rows of a length that is not a power of two, each sorted alone.
    const rows = [0, 1].map((r) => Float32Array.from({ length: 1000 }, (_, i) => (((i + 1) * (r ? 613 : 389)) % 37) / 37));
    const both = fargsortProbs(tvm.empty([2, 1000], "float32", dev).copyFrom(Float32Array.from([...rows[0]!, ...rows[1]!])));
    const bothI = tvm.empty([2, 1000], "int32", tvm.cpu()).copyFrom(both.get(1));
    await dev.sync();
    const flat = Array.from(bothI.toArray());
    rows.forEach((row, r) => {
      const want = Array.from({ length: 1000 }, (_, i) => i).sort((a, b) => row[b]! - row[a]! || a - b);
      assert.deepEqual(flat.slice(r * 1000, (r + 1) * 1000), want, `row ${r}`);
    });

    // sample_with_top_p keeps the shortest prefix of the sorted row whose mass reaches top_p, and picks
    // the first entry whose cumulative mass (divided by the prefix's) exceeds the uniform sample. The
    // prefix sums here are float32 and grouped like the kernel's (256 contiguous chunks, then within a
    // chunk in order): grouped differently, float32 sums over 49152 entries drift by more than one
    // entry's mass.
    const chunk = Math.ceil(vocab / 256);
    const sorted = order.map((i) => probs[i]!);
    const sums = Array.from({ length: 256 }, (_, c) => sorted.slice(c * chunk, (c + 1) * chunk).reduce((a, q) => Math.fround(a + q), 0));
    const cum: number[] = [];
    sums.forEach((_, c) => {
      let acc = sums.slice(0, c).reduce((a, q) => Math.fround(a + q), 0);
      for (const q of sorted.slice(c * chunk, (c + 1) * chunk)) cum.push((acc = Math.fround(acc + q)));
    });
    const total = sums.reduce((a, q) => Math.fround(a + q), 0);
    for (const topP of [0.05, 0.3, 1.0]) {
      const cut = cum.findIndex((c) => c >= Math.fround(topP));
      const kept = cut < 0 ? vocab - 1 : cut;
      const keptMass = cut < 0 ? total : cum[cut]!;
      // Ranks around multiples of 32 (where a blocked prefix sum went wrong) and the chunk edges.
      const picks = [0, 1, 2, 31, 32, 33, 63, 64, 65, chunk - 1, chunk, Math.floor(kept / 2), kept];
      for (const pick of picks.filter((x) => x <= kept)) {
        const lo = pick === 0 ? 0 : Math.fround(cum[pick - 1]! / keptMass);
        const u = (lo + Math.fround(cum[pick]! / keptMass)) / 2; // the middle of the pick's interval
        const out = fsampleWithTopP(
          result.get(0),
          result.get(1),
          tvm.empty([1], "float32", dev).copyFrom([u]),
          tvm.empty([1], "int32", dev).copyFrom([0]),
          tvm.empty([1], "float32", dev).copyFrom([topP]),
        );
        const host = tvm.empty([1], "int32", tvm.cpu()).copyFrom(out);
        await dev.sync();
        assert.equal(host.toArray()[0], order[pick], `top_p ${topP}, u ${u.toFixed(6)}: expected rank ${pick}`);
      }
    }
  } finally {
    tvm.endScope();
  }
});

test("the logit processors Hearth's WebGPU build carries for WebLLM: logit bias, penalties, bitmask", async () => {
  const { tvm, device: dev, fapplyLogitBias, fapplyPenalty, fapplyBitmask } = pipelineInternals();
  const vocab = (config as unknown as { vocab_size: number }).vocab_size;
  const base = Float32Array.from({ length: vocab }, (_, i) => ((i * 37) % 11) - 5 + 0.25);
  const f32 = (d: ArrayLike<number>, shape = [d.length]) => tvm.empty(shape, "float32", dev).copyFrom(d);
  const i32 = (d: ArrayLike<number>, shape = [d.length]) => tvm.empty(shape, "int32", dev).copyFrom(d);
  const read = async (t: TvmTensor) => {
    const host = tvm.empty([1, vocab], "float32", tvm.cpu()).copyFrom(t);
    await dev.sync();
    return Array.from(host.toArray());
  };
  tvm.beginScope();
  try {
    // logit_bias: logits[row(pos), token] += bias
    const tokens = [3, 17, vocab - 1];
    let logits = f32(base, [1, vocab]);
    fapplyLogitBias(logits, i32([0, 0, 0]), i32(tokens), f32([1.5, -2, 4]));
    const biased = Array.from(base);
    tokens.forEach((t, k) => {
      biased[t]! += [1.5, -2, 4][k]!;
    });
    assert.deepEqual(await read(logits), biased.map(Math.fround));

    // penalties (presence, frequency, repetition): l -= presence + count * frequency, then l < 0 ? l * r : l / r
    logits = f32(base, [1, vocab]);
    const counts = [1, 3, 2];
    const [presence, frequency, repetition] = [0.5, 0.25, 1.3];
    fapplyPenalty(logits, i32([0]), i32([0, 0, 0]), i32(tokens), i32(counts), f32([presence, frequency, repetition], [1, 3]));
    const penalised = Array.from(base);
    tokens.forEach((t, k) => {
      const l = Math.fround(penalised[t]! - Math.fround(presence + counts[k]! * frequency));
      penalised[t] = l < 0 ? l * repetition : l / repetition;
    });
    const got = await read(logits);
    got.forEach((v, i) => {
      assert.ok(Math.abs(v - penalised[i]!) <= 1e-5, `token ${i}: ${v} vs ${penalised[i]}`);
    });

    // bitmask: tokens whose bit is 0 get the lowest float (alternate words: every other bit, all bits)
    logits = f32(base, [1, vocab]);
    const words = Math.ceil(vocab / 32);
    const mask = Int32Array.from({ length: words }, (_, w) => (w % 2 === 0 ? 0x55555555 : -1));
    fapplyBitmask(logits, i32([0]), i32(mask, [1, words]));
    const masked = await read(logits);
    masked.forEach((v, i) => {
      const allowed = ((mask[i >> 5]! >>> (i & 31)) & 1) === 1;
      // Masked: the lowest float as TVM's WGSL literal spells it (-3.402823e+38, a few ulps above -FLT_MAX).
      if (allowed) assert.equal(v, Math.fround(base[i]!), `token ${i}`);
      else assert.ok(v <= -3.4e38, `token ${i}: ${v}`);
    });
  } finally {
    tvm.endScope();
  }
});
