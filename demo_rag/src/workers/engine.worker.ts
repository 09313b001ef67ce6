/**
 * The chat engine's module Worker: the SDK's worker entry (`@hearth/sdk/worker`, which serves an
 * EngineCore over messages), bundled by Vite with the page's copy of the SDK. The page talks to it
 * through createEngine({ worker }) (src/chat-engine.ts).
 *
 * Why not createEngine's default worker (the SDK's prebuilt dist/browser/engine-worker.js)? Vite
 * bundles that file as a worker but does not rewrite the `new URL("../vendor/tvmjs.js", import.meta.url)`
 * inside it, so in a Vite build it looks for /vendor/tvmjs.js and fails. Through this entry Vite sees
 * the SDK's unbundled modules and emits tvmjs as an asset with the right URL.
 */
import "@hearth/sdk/worker";
