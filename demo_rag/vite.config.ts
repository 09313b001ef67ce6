// Vite build of the demo. `npm run build` -> dist/ (served by `hearth serve --app demo_rag/dist`).
//  - base "./": every asset URL is relative, so the app works under any path prefix.
//  - workers are ES modules (code-split: pdf.js loads only when a PDF is ingested).
//  - tools/pwa-plugin.ts builds src/sw/sw.ts to dist/sw.js with the precache list of the build.
//  - `npm run dev` proxies /models/ to a running `hearth serve` (HEARTH_SERVE, default :8000) and sets
//    the same cross-origin isolation headers as hearth serve.
import { defineConfig } from "vite";
import { pwaPlugin } from "./tools/pwa-plugin.ts";

const isolation = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
};

export default defineConfig({
  base: "./",
  build: {
    target: "es2022",
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: true,
    // pdf.js and the tokenizer library are large by nature; they load on demand in the worker.
    chunkSizeWarningLimit: 2500,
    // Vite's worker transform is slow (seconds) by nature here; the timing report is noise.
    rolldownOptions: { checks: { bundlerTimings: false } },
  },
  worker: {
    format: "es",
    // The SDK's PDF extractor imports pdf.js's legacy build only under Node; keep it out of the bundle.
    rolldownOptions: { external: ["pdfjs-dist/legacy/build/pdf.mjs"], checks: { bundlerTimings: false } },
  },
  plugins: [pwaPlugin()],
  server: {
    headers: isolation,
    proxy: { "/models": process.env.HEARTH_SERVE ?? "http://127.0.0.1:8000" },
  },
  preview: { headers: isolation },
});
