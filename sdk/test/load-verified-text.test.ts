// readVerifiedText: the one reader of a package's text files beside the weights (EngineCore reads
// tokenizer.json / tokenizer_config.json through it). Real SHA-256 (WebCrypto), no GPU.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fetchPackageBytes, IntegrityError, loadPackageText, readVerifiedText, sha256Hex, type PackageManifest } from "../src/load/index.js";

const TEXT = '{"model": {"type": "BPE"}, "note": "ünïcödé"}';
const BYTES = new TextEncoder().encode(TEXT);

async function manifestWith(bytes: Uint8Array): Promise<PackageManifest> {
  return {
    format: "hearth-package/1",
    model_id: "m",
    model_type: null,
    quantization: null,
    targets: {},
    build_key: null,
    files: [{ path: "tokenizer.json", bytes: bytes.byteLength, sha256: await sha256Hex(bytes) }],
    raw: {},
  };
}

test("a listed file whose bytes match comes back as its text; the reader is asked for that file and entry", async () => {
  const manifest = await manifestWith(BYTES);
  const asked: string[] = [];
  const text = await readVerifiedText(manifest, "tokenizer.json", true, async (file, entry) => {
    asked.push(`${file}:${entry.bytes}`);
    return BYTES.slice().buffer;
  });
  assert.equal(text, TEXT);
  assert.deepEqual(asked, [`tokenizer.json:${BYTES.byteLength}`]);
});

test("unlisted: IntegrityError when required (the reader is never called), undefined when optional", async () => {
  const manifest = await manifestWith(BYTES);
  const never = async (): Promise<Uint8Array> => assert.fail("read an unlisted file");
  await assert.rejects(readVerifiedText(manifest, "tokenizer_config.json", true, never), (err: unknown) => {
    assert.ok(err instanceof IntegrityError);
    assert.equal(err.problem, "unlisted");
    assert.equal(err.file, "tokenizer_config.json");
    return true;
  });
  assert.equal(await readVerifiedText(manifest, "tokenizer_config.json", false, never), undefined);
});

test("altered or resized bytes are an IntegrityError naming the file, never returned as text", async () => {
  const manifest = await manifestWith(BYTES);
  const altered = BYTES.slice();
  altered[3] = (altered[3] as number) ^ 1;
  await assert.rejects(
    readVerifiedText(manifest, "tokenizer.json", true, async () => altered),
    (err: unknown) => {
      assert.ok(err instanceof IntegrityError && err.file === "tokenizer.json" && err.problem === "sha256", String(err));
      return true;
    },
  );
  await assert.rejects(
    readVerifiedText(manifest, "tokenizer.json", true, async () => BYTES.subarray(1)),
    (err: unknown) => {
      assert.ok(err instanceof IntegrityError && err.problem === "size", String(err));
      return true;
    },
  );
});

test("fetchPackageBytes: files relative to the package URL; an HTTP error is IntegrityError missing naming the file", async () => {
  const manifest = await manifestWith(BYTES);
  const asked: string[] = [];
  const read = fetchPackageBytes("https://host/m/q/", async (url) => {
    asked.push(url);
    return url.endsWith("tokenizer.json") ? new Response(BYTES.slice()) : new Response("no", { status: 404, statusText: "Not Found" });
  });
  assert.equal(await readVerifiedText(manifest, "tokenizer.json", true, read), TEXT);
  assert.deepEqual(asked, ["https://host/m/q/tokenizer.json"]);
  await assert.rejects(read("other.json", { path: "other.json", bytes: 2, sha256: "00" }), (err: unknown) => {
    assert.ok(err instanceof IntegrityError && err.file === "other.json" && err.problem === "missing", String(err));
    assert.match(err.message, /HTTP 404/);
    return true;
  });
});

test("loadPackageText: tokenizer from verified tokenizer.json; no template anywhere is templateError, not a throw", async () => {
  const tokenizerJson = JSON.stringify({
    version: "1.0",
    added_tokens: [],
    model: { type: "WordLevel", vocab: { a: 0, b: 1, "[UNK]": 2 }, unk_token: "[UNK]" },
    pre_tokenizer: { type: "Whitespace" },
    decoder: { type: "Fuse" },
    normalizer: null,
    post_processor: null,
  });
  const bytes = new TextEncoder().encode(tokenizerJson);
  const manifest = await manifestWith(bytes);
  const text = await loadPackageText(manifest, async () => bytes.slice(), {});
  assert.deepEqual(Array.from(text.tokenizer.encode("a b a", { addSpecialTokens: false })), [0, 1, 0]);
  assert.equal(text.tokenizerConfig, undefined);
  assert.equal(text.template, null);
  assert.match(String(text.templateError?.message), /no chat_template/);
  const withTemplate = await loadPackageText(manifest, async () => bytes.slice(), { chat_template: "{{ messages[0].content }}!" });
  assert.equal(withTemplate.template?.render([{ role: "user", content: "hi" }]), "hi!");
});
