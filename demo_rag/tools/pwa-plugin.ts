/**
 * Builds the service worker (src/sw/sw.ts -> dist/sw.js, no hash in the name so its URL is stable) and
 * injects the precache manifest: every file of the finished build (app shell, workers, pdf.js, tvmjs,
 * icons, web manifest), and a version derived from their contents. A new build therefore installs a new
 * service worker, which replaces the old shell cache when it activates.
 *
 * The list is made after the build has been written (closeBundle), by walking the output folder, so
 * worker bundles and their lazy chunks (which Vite builds in a nested bundle) are included too.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { Plugin, ResolvedConfig } from "vite";

const SW_SOURCE = fileURLToPath(new URL("../src/sw/sw.ts", import.meta.url));
const SW_FILE = "sw.js";
/** A free identifier in sw.ts (declared, never defined), so the minifier leaves it alone. */
const PLACEHOLDER = "__HEARTH_PRECACHE__";

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...walk(path));
    else out.push(path);
  }
  return out;
}

export function pwaPlugin(): Plugin {
  let config: ResolvedConfig;
  return {
    name: "hearth-pwa",
    apply: "build",
    configResolved(c) {
      config = c;
    },
    buildStart() {
      this.emitFile({ type: "chunk", id: SW_SOURCE, fileName: SW_FILE });
    },
    closeBundle() {
      const outDir = join(config.root, config.build.outDir);
      const swPath = join(outDir, SW_FILE);
      const hash = createHash("sha256");
      const files: string[] = [];
      for (const path of walk(outDir).sort()) {
        const rel = relative(outDir, path).split(sep).join("/");
        if (rel === SW_FILE || rel.endsWith(".map")) continue;
        files.push(rel === "index.html" ? "./" : rel);
        hash.update(rel).update(readFileSync(path));
      }
      const code = readFileSync(swPath, "utf8");
      if (!code.includes(PLACEHOLDER)) throw new Error(`hearth-pwa: ${SW_FILE} has no ${PLACEHOLDER} placeholder`);
      const manifest = { version: hash.digest("hex").slice(0, 16), files };
      writeFileSync(swPath, code.replaceAll(PLACEHOLDER, `(${JSON.stringify(manifest)})`));
      config.logger.info(`hearth-pwa: ${SW_FILE} precaches ${files.length} files (version ${manifest.version})`);
    },
  };
}
