// The SDK side of tests/test_package_corruption.py: load each package URL with the SDK's DecoderModel
// (webgpu build, Dawn on lavapipe; nothing cached, so every file is fetched and verified), run a few greedy
// tokens, and print one JSON line: {results: [{url, ok, tokens?, error?, name?, file?, problem?, ms}]}.
// The URLs are served by `hearth serve` (the test starts it), so the SDK fetches as it does in a browser.
// Run from sdk/ (tsx resolves there): node --import tsx ../tests/support/sdk_load_matrix.mjs <ids> <n> <url>...
const [idList, n, ...urls] = process.argv.slice(2);
const sdk = new URL("../../sdk/", import.meta.url);
const { DecoderModel } = await import(new URL("src/decoder/model.ts", sdk).href);
const { installNodeGPU } = await import(new URL("test/support/node-gpu.ts", sdk).href);
const gpu = await installNodeGPU();
const prompt = idList.split(",").map(Number);
const results = [];
for (const url of urls) {
  const t0 = performance.now();
  let model;
  try {
    model = await DecoderModel.load(url, { gpu, target: "webgpu", cache: "none", logger: () => {} });
    const tokens = await model.greedy(prompt, Number(n));
    results.push({ url, ok: true, tokens, ms: Math.round(performance.now() - t0) });
  } catch (err) {
    results.push({
      url,
      ok: false,
      name: err?.name ?? typeof err,
      error: String(err?.message ?? err).slice(0, 500),
      file: err?.file ?? null,
      problem: err?.problem ?? null,
      ms: Math.round(performance.now() - t0),
    });
  } finally {
    try {
      await model?.dispose();
    } catch {
      // a half-loaded model: nothing more to free
    }
  }
}
console.log(JSON.stringify({ results }));
