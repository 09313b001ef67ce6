/**
 * Shared by the engine-* and client-* tests: the default package (or HEARTH_LLM_PACKAGE), its file://
 * URL, and the Python reference (hearth.native greedy through the repo's .venv, when it exists).
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { ChatMessage } from "../../src/service/openai.js";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const PACKAGE = resolve(process.env["HEARTH_LLM_PACKAGE"] ?? join(REPO, "dist/tiny-llama-trained/q4f32_1"));
export const PACKAGE_URL = pathToFileURL(PACKAGE).href + "/";
export const PYTHON = join(REPO, ".venv/bin/python");

export function requirePackage(): void {
  if (!existsSync(join(PACKAGE, "hearth-manifest.json"))) {
    throw new Error(
      `no compiled package at ${PACKAGE}: build it with \`make test\` or ` +
        "`.venv/bin/python -m pytest tests/test_webgpu_decoder.py` (or set HEARTH_LLM_PACKAGE)",
    );
  }
}

export const CHAT: ChatMessage[] = [
  { role: "system", content: "You answer questions about the Python standard library." },
  { role: "user", content: "How do I read a file line by line?" },
];

/**
 * hearth.native (the package's llvm build) greedy continuation of `ids`: exactly `n` tokens, EOS not
 * special. Null when the repo has no .venv (the caller reports the comparison as skipped).
 */
export function nativeGreedy(ids: readonly number[], n: number, pkg = PACKAGE): number[] | null {
  if (!existsSync(PYTHON)) return null;
  const code = [
    "import json, sys",
    "from pathlib import Path",
    "from hearth.native import load_decoder",
    "dec, _ = load_decoder(Path(sys.argv[1]))",
    "print(json.dumps(dec.greedy(json.loads(sys.argv[2]), int(sys.argv[3]))))",
  ].join("\n");
  const out = execFileSync(PYTHON, ["-c", code, pkg, JSON.stringify(ids), String(n)], { cwd: REPO, encoding: "utf8", timeout: 300_000 });
  return JSON.parse(out.trim().split("\n").pop() as string) as number[];
}
