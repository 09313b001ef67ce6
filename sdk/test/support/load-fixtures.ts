/**
 * Helpers for the loader tests: counting / failing fetches over file:// URLs, synthetic packages on disk,
 * tvmjs stand-ins and fake devices, the paths of the real test packages.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { FetchLike } from "../../src/runtime/tvm.js";
import type { TvmjsModule } from "../../src/runtime/tvmjs-types.js";
import { fileFetch } from "./file-fetch.js";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** dist/tiny-llama-trained/q4f32_1 (webgpu + llvm), built by `make test`; or HEARTH_LLM_PACKAGE. */
export const WEBGPU_PACKAGE = resolve(process.env["HEARTH_LLM_PACKAGE"] ?? join(REPO, "dist/tiny-llama-trained/q4f32_1"));

/** tiny-llama-trained q4f32_1, which scripts/build_packages.py builds with wasm-cpu + webgpu + llvm
 * (HEARTH_CPU_PACKAGE to override). */
export const CPU_PACKAGE = resolve(process.env["HEARTH_CPU_PACKAGE"] ?? join(REPO, "dist/tiny-llama-trained/q4f32_1"));

export const CPU_PACKAGE_BUILD = ".venv/bin/python scripts/build_packages.py   (make test runs it)";

/** 40 token ids below 1000 (the llm.test.ts prompt). */
export const PROMPT = Array.from({ length: 40 }, (_, i) => (i * 37 + 5) % 1000);

export const sha = (b: Uint8Array | string): string => createHash("sha256").update(b).digest("hex");
export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A fetch over file:// that records every URL it is asked for (basename -> count, and the order). */
export class CountingFetch {
  readonly urls: string[] = [];
  inflight = 0;
  maxInflight = 0;
  constructor(
    private readonly inner: FetchLike = fileFetch,
    /** Extra latency per request (ms), to make concurrency observable. */
    private readonly delayMs = 0,
  ) {}

  readonly fetch: FetchLike = async (url, init) => {
    this.urls.push(url);
    this.inflight += 1;
    this.maxInflight = Math.max(this.maxInflight, this.inflight);
    try {
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      init?.signal?.throwIfAborted();
      return await this.inner(url, init);
    } finally {
      this.inflight -= 1;
    }
  };

  /** Package-relative file names fetched (in order). */
  files(): string[] {
    return this.urls.map((u) => decodeURIComponent(u.slice(u.lastIndexOf("/") + 1)));
  }

  count(file: string): number {
    return this.files().filter((f) => f === file).length;
  }

  reset(): void {
    this.urls.length = 0;
    this.maxInflight = 0;
  }
}

/** A Response whose body sends `bytes[0, cut)` and then fails (a dropped connection). */
export function brokenResponse(bytes: Uint8Array, cut: number, waitBeforeError?: Promise<unknown>): Response {
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(bytes.slice(0, cut));
        return;
      }
      await waitBeforeError;
      controller.error(new TypeError("network connection lost (simulated)"));
    },
  });
  return new Response(body, { status: 200 });
}

export interface FakePackage {
  dir: string;
  files: Record<string, Uint8Array>;
}

/**
 * A package on disk with `shards` weight shards of `shardBytes` bytes each, a consistent
 * mlc-chat-config.json / tensor-cache.json (one float32 tensor per shard) and a fake wasm. Good for
 * everything before tvmjs runs.
 */
export function makeFakePackage(
  opts: { shards?: number; shardBytes?: number; modelId?: string; quant?: string; extra?: Record<string, unknown> } = {},
): FakePackage {
  const shards = opts.shards ?? 6;
  const shardBytes = opts.shardBytes ?? 64 * 1024;
  const quant = opts.quant ?? "q4f32_1";
  const dir = mkdtempSync(join(tmpdir(), "hearth-fake-pkg-"));
  const files: Record<string, Uint8Array> = {};
  const records = [];
  const params = [];
  for (let i = 0; i < shards; i++) {
    const data = new Uint8Array(shardBytes);
    for (let j = 0; j < data.length; j++) data[j] = (i * 31 + j * 7) & 0xff;
    files[`params_shard_${i}.bin`] = data;
    const name = `w${i}`;
    records.push({
      dataPath: `params_shard_${i}.bin`,
      format: "raw-shard",
      nbytes: shardBytes,
      records: [{ name, shape: [shardBytes / 4], dtype: "float32", format: "raw", nbytes: shardBytes, byteOffset: 0 }],
    });
    params.push({ name, shape: [shardBytes / 4], dtype: "float32" });
  }
  files["mlc-chat-config.json"] = enc(
    JSON.stringify({
      quantization: quant,
      vocab_size: 16,
      context_window_size: 64,
      prefill_chunk_size: 16,
      model_config: { hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, head_dim: 8, intermediate_size: 64 },
      params,
    }),
  );
  files["tensor-cache.json"] = enc(JSON.stringify({ metadata: {}, records }));
  files["m.wasm"] = enc("not really wasm");
  files["tokenizer.json"] = enc("{}");
  for (const [p, b] of Object.entries(files)) writeFileSync(join(dir, p), b);
  writeFileSync(
    join(dir, "hearth-manifest.json"),
    JSON.stringify({
      format: "hearth-package/1",
      model_id: opts.modelId ?? "fake-model",
      quantization: quant,
      targets: { webgpu: "m.wasm" },
      files: Object.entries(files).map(([path, b]) => ({ path, bytes: b.length, sha256: sha(b) })),
      ...opts.extra,
    }),
  );
  return { dir, files };
}

/** Thrown by {@link stopAtInstantiate}: the loader got as far as tvmjs, i.e. everything verified. */
export class ReachedTvmjs extends Error {
  override readonly name = "ReachedTvmjs";
}

/** A tvmjs stand-in whose instantiate throws ReachedTvmjs (counts the calls). */
export function stopAtInstantiate(): TvmjsModule & { calls: number } {
  const m = {
    calls: 0,
    instantiate: async () => {
      m.calls += 1;
      throw new ReachedTvmjs("tvmjs.instantiate reached");
    },
    createPolyfillWASI: () => ({ imports: {}, start: () => {} }),
  };
  return m;
}

/** tvmjs stand-in that fails the test if anything reaches it. */
export const untouchableTvmjs: TvmjsModule = {
  instantiate: () => assert.fail("tvmjs.instantiate must not run"),
  createPolyfillWASI: () => assert.fail("tvmjs must not be used"),
};

/** A GPUDevice stand-in: features and limits only; destroy() fails the test. */
export function fakeDevice(opts: { features?: string[]; limits?: Record<string, number> } = {}): GPUDevice {
  return {
    features: new Set(opts.features ?? []),
    limits: opts.limits ?? { maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 30 },
    destroy: () => assert.fail("the device must not be destroyed"),
  } as unknown as GPUDevice;
}
