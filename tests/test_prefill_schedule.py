"""The WebGPU prefill-schedule variants (compile/hearth/build/gpu_schedule.py; issue 17 item 1: WebGPU prefill
at 0.40-0.47 of native CUDA on an H100): `build_target(..., prefill_schedule=NAME)` swaps dlight's generic
Matmul config for another one on WebGPU; "cuda" is the default since the H100 A/B, "dlight" (TVM's own choice)
and "cuda-v4" are the alternatives.

Each non-default variant of the tiny-llama-trained q4f32_1 package (bench/gpu/build_variant.py: the package's webgpu
library rebuilt, cached by the compiler files) runs on Dawn (lavapipe) against the package's native llvm build:
a 100-token prompt prefilled in chunks of 32 (four chunks, the last partial), then 8 greedy tokens; the same
tokens and every compared logit within family_parity's LOGIT_TOL. SmolLM2-135M and the Qwen2.5-0.5B shape
were checked the same way by hand (too slow to build for CI).
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tvm
from tvm.s_tir.dlight.gpu.matmul import Matmul

import family_parity as fp
from conftest import REPO
from hearth.build.gpu_schedule import DEFAULT_PREFILL_SCHEDULE, PREFILL_SCHEDULES, ConfiguredMatmul
from hearth.build.pipeline import relax_pipeline
from hearth.cache import cache_root
from hearth.targets import get_target

sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "bench" / "gpu"))
from build_variant import build_variant  # noqa: E402

import build_packages  # noqa: E402
import make_test_models as mtm  # noqa: E402

MODEL, QUANT = "tiny-llama-trained", "q4f32_1"
# The default is what every other WebGPU test builds; these are the alternatives.
VARIANTS = [n for n in PREFILL_SCHEDULES if n != DEFAULT_PREFILL_SCHEDULE]


def test_unknown_schedule_names_the_choices() -> None:
    spec = get_target("webgpu")
    with pytest.raises(ValueError, match=r"unknown prefill_schedule 'fast'.*dlight, cuda"):
        relax_pipeline(spec, spec.target(), prefill_schedule="fast")


def test_cuda_keeps_dlights_config() -> None:
    """The variants are for WebGPU: a CUDA build under any of them keeps dlight's tuned cuda config, so the
    native rows of an A/B are the same build."""
    cuda = tvm.target.Target({"kind": "cuda", "arch": "sm_90a"})
    webgpu = get_target("webgpu").target()
    for name, config in PREFILL_SCHEDULES.items():
        if config is None:  # "dlight": no rule of Hearth's
            continue
        rule = ConfiguredMatmul(config)
        assert rule.get_configs(cuda) == Matmul().get_configs(cuda)
        assert rule.get_configs(webgpu) == config, name
        assert rule.get_configs(webgpu) != Matmul().get_configs(webgpu)


@functools.cache
def _variant(name: str) -> Path:
    base = build_packages.ensure_package(MODEL, QUANT)
    key = hashlib.sha256()
    build = REPO / "compile" / "hearth" / "build"
    for f in (base / "hearth-manifest.json", build / "gpu_schedule.py", build / "pipeline.py"):
        key.update(f.read_bytes())
    out = cache_root() / "test-packages" / "prefill-schedule" / key.hexdigest()[:16] / name
    pkg = out / MODEL / QUANT
    if not (pkg / "hearth-manifest.json").is_file():
        build_variant(mtm.ensure_test_model(MODEL), base, name, out)
    return pkg


@pytest.mark.parametrize("name", VARIANTS)
def test_webgpu_variant_matches_native(name: str) -> None:
    pkg = _variant(name)
    base = build_packages.ensure_package(MODEL, QUANT)
    wasm = json.loads((pkg / "hearth-manifest.json").read_text())["targets"]["webgpu"]
    assert (pkg / wasm).read_bytes() != (base / wasm).read_bytes(), "the variant compiled to the default library"
    vocab = json.loads((pkg / "mlc-chat-config.json").read_text())["vocab_size"]
    ids = np.random.default_rng(5).integers(1, vocab, 100).tolist()
    webgpu, native, err = fp.webgpu_logit_error(pkg, ids, 8, prefill_chunk=32)
    print(f"\nprefill_schedule={name}: WebGPU vs native max|dlogit| {err:.3g} over 100 (chunks of 32) + 8 tokens")
    assert webgpu == native
    assert err <= fp.LOGIT_TOL
