// Engine harness page (tests/browser/engine.test.mjs mounts this folder at /harness/): the SDK's client
// runs here, unbundled, from /sdk/dist/client/index.js; createEngine() starts the engine in a module Worker
// (by default /sdk/dist/browser/engine-worker.js, the bundled worker entry). window.hearthRun(task) is the
// harness contract (lib/harness.mjs): it resolves to {ok, result} or {ok: false, error}.
import { createEngine, InvalidRequestError, AbortError, ContextWindowExceededError, InputTooLongError } from "/sdk/dist/client/index.js";

function plainError(err) {
  return { name: err?.name ?? "Error", message: String(err?.message ?? err), stack: err?.stack ?? null };
}

async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

const tasks = {
  /**
   * Load the package at `modelUrl` in a module Worker, stream a greedy chat, repeat it without streaming
   * (the KV prefix is reused), check typed errors across the Worker boundary; with `embedderUrl`, the
   * text encoder is loaded in the same Worker and `embedTexts` are embedded after the chat; unload.
   */
  async chat({ modelUrl, embedderUrl, embedTexts = [], messages, maxTokens = 32 }) {
    const phases = [];
    const t0 = performance.now();
    // No `worker`: createEngine starts /sdk/dist/browser/engine-worker.js itself (relative to the client).
    const engine = await createEngine({
      model: new URL(modelUrl, location.href).href,
      // SwiftShader is a software adapter: the SDK would take the wasm-cpu builds; this test is about WebGPU.
      target: "webgpu",
      embedder: embedderUrl === undefined ? undefined : { model: new URL(embedderUrl, location.href).href, target: "webgpu" },
      onProgress: (e) => phases.push(e.model === "embedder" ? `embedder:${e.phase}` : e.phase),
      onUnroutedError: () => {}, // the raw malformed message below is answered to an id the client never used
    });
    const loadMs = performance.now() - t0;
    try {
      const request = { messages, temperature: 0, max_tokens: maxTokens, ignore_eos: true, return_token_ids: true };
      const stream = await engine.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
      const chunks = await collect(stream);
      const streamFinal = await stream.finalResponse();
      const nonStream = await engine.chat.completions.create(request);
      // Structured output (issue 16): xgrammar from the bundled worker, its mask on every step.
      const schema = { type: "object", properties: { answer: { enum: ["yes", "no"] }, n: { type: "integer", minimum: 0, maximum: 9 } }, required: ["answer", "n"] };
      const structured = await engine.chat.completions.create({
        messages,
        temperature: 0,
        max_tokens: 24,
        response_format: { type: "json_schema", json_schema: { name: "answer", schema } },
      });
      const errors = {};
      try {
        await engine.chat.completions.create({ messages, response_format: { type: "json_schema", json_schema: { name: "bad", schema: { type: "array", uniqueItems: true } } } });
      } catch (err) {
        errors.badSchema = { ...plainError(err), typed: err instanceof InvalidRequestError, param: err.param ?? null };
      }
      try {
        await engine.chat.completions.create({ messages: [{ role: "robot", content: "hi" }] });
      } catch (err) {
        errors.badRole = { ...plainError(err), typed: err instanceof InvalidRequestError, param: err.param ?? null };
      }
      try {
        await engine.chat.completions.create({ messages: [{ role: "user", content: "x ".repeat(4000) }] });
      } catch (err) {
        errors.oversized = { ...plainError(err), typed: err instanceof ContextWindowExceededError, maxTotalSeqLen: err.maxTotalSeqLen ?? null };
      }
      // A raw malformed protocol message straight to the worker: answered with an InvalidMessageError.
      errors.malformed = await new Promise((resolve) => {
        const ep = engine.endpoint;
        const onMessage = (e) => {
          if (e.data?.id !== 987654) return;
          ep.removeEventListener("message", onMessage);
          resolve(e.data);
        };
        ep.addEventListener("message", onMessage);
        ep.postMessage({ type: "chat", id: 987654, request: { messages: [] }, extra: true });
      });
      const ac = new AbortController();
      const aborting = await engine.chat.completions.create({ ...request, max_tokens: 200, stream: true }, { signal: ac.signal });
      let seen = 0;
      try {
        for await (const _ of aborting) if (++seen === 3) ac.abort();
        errors.abort = { name: "none" };
      } catch (err) {
        errors.abort = { ...plainError(err), typed: err instanceof AbortError, seen };
      }
      let embed = null;
      if (embedderUrl !== undefined) {
        // load -> chat -> embed: after the chat requests, in the same Worker.
        const te = performance.now();
        const r = await engine.embeddings.create({ input: embedTexts });
        embed = { response: r, ms: performance.now() - te, info: engine.embedder };
        try {
          await engine.embeddings.create({ input: ["ok", "word ".repeat(300)], truncation: "error" });
        } catch (err) {
          errors.tooLong = { ...plainError(err), typed: err instanceof InputTooLongError, indices: err.indices ?? null, maxTokens: err.maxTokens ?? null };
        }
        try {
          await engine.embeddings.create({ input: [[101, 102]] });
        } catch (err) {
          errors.badInput = { ...plainError(err), typed: err instanceof InvalidRequestError, param: err.param ?? null };
        }
      }
      let stats = await engine.stats();
      for (let i = 0; i < 100 && stats.lastRequest?.stop === null; i++) {
        await new Promise((r) => setTimeout(r, 20));
        stats = await engine.stats();
      }
      return {
        loadMs,
        phases,
        model: engine.model,
        chunks: chunks.map((c) => ({ object: c.object, choices: c.choices, usage: c.usage ?? null, hasPromptIds: Array.isArray(c.prompt_token_ids) })),
        promptIds: chunks[0]?.prompt_token_ids ?? null,
        streamText: chunks.map((c) => c.choices[0]?.delta?.content ?? "").join(""),
        streamTokenIds: chunks.flatMap((c) => c.choices[0]?.token_ids ?? []),
        streamFinal,
        nonStream,
        structured,
        errors,
        abortStop: stats.lastRequest?.stop ?? null,
        decoder: stats.decoder,
        embed,
        encoder: stats.encoder,
        adapter: engine.model.adapter,
      };
    } finally {
      await engine.unload();
    }
  },
};

/** Load `modelUrl` (and `embedderUrl`) again and unload: with the Cache Storage filled by `chat`, a warm load. */
tasks.load = async ({ modelUrl, embedderUrl }) => {
  const t0 = performance.now();
  const engine = await createEngine({
    model: new URL(modelUrl, location.href).href,
    target: "webgpu",
    embedder: embedderUrl === undefined ? undefined : { model: new URL(embedderUrl, location.href).href, target: "webgpu" },
  });
  const loadMs = performance.now() - t0;
  const stats = await engine.stats();
  await engine.unload();
  return { loadMs, modelLoadMs: engine.model.loadMs, embedderLoadMs: engine.embedder?.loadMs ?? null, decoderLoad: stats.decoder?.load ?? null, encoderLoad: stats.encoder?.load ?? null };
};

window.hearthRun = async (task) => {
  try {
    const fn = tasks[task.task];
    if (fn === undefined) throw new Error(`unknown task ${task.task}`);
    return { ok: true, result: await fn(task) };
  } catch (err) {
    return { ok: false, error: plainError(err) };
  }
};
window.hearthPageReady = true;
