"""WebGPU's prefill attention tiles (compile/hearth/models/prefill_attention_tiles.py): which kernels get the
32-row query tile, that native targets never do, and that TVM's config is back after the export.
End-to-end correctness of the tiles is the WebGPU-vs-native parity of every package test (chunked prefill)."""

from __future__ import annotations

import re

import pytest
import tvm
from tvm.relax.frontend.nn.llm import _prefill_kernels

from hearth.models import prefill_attention_tiles as tiles
from hearth.models.prefill_attention_tiles import DEFAULT_PREFILL_ATTENTION, tiles_for, webgpu_prefill_tiles

WEBGPU = tvm.target.Target({"kind": "webgpu", "host": "llvm"})
CUDA = tvm.target.Target({"kind": "cuda", "arch": "sm_90a", "host": "llvm"})


def _q_tile_rows(target: tvm.target.Target, d: int = 64, dtype: str = "float32") -> int:
    func = _prefill_kernels._attention_prefill_ragged(3, 9, d, d, dtype, {}, target)
    shapes = re.findall(r"Q_smem = T\.\w+\(\((\d+), (\d+)\)", func.script())
    assert shapes, "no Q_smem in the prefill kernel (TVM's kv_cache changed?)"
    return int(shapes[0][0])


@pytest.mark.parametrize(
    ("d", "dtype", "tiled"),
    [
        (64, "float32", True),  # SmolLM2, Qwen2.5: what the H100 A/B measured
        (16, "float32", True),  # the tiny test models (their parity tests run this config)
        (128, "float32", False),  # 32 rows do not fit 16 KiB
        (64, "float16", False),  # TVM's query tile is 32 rows already
        (256, "float16", False),
    ],
)
def test_which_kernels_get_the_tile(d: int, dtype: str, tiled: bool) -> None:
    got = tiles_for(DEFAULT_PREFILL_ATTENTION, 3, 9, d, dtype, WEBGPU, shared_limit=tiles.SHARED_LIMIT_BYTES)
    want = _prefill_kernels._get_prefill_kernel_config(3, 9, d, dtype, WEBGPU)
    if tiled:
        assert (got[4], got[5], got[7]) == (4, 32, 8), got
    else:
        assert got == want


def test_the_bench_can_tile_float16_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench/gpu/build_variant.py's float16 A/B: with KEEP_TALLER_TVM_TILES off, the tiles apply where TVM's
    query tile is already 32 rows, within 16 KiB (TVM: 32 x 32 keys, 4 warps)."""
    monkeypatch.setattr(tiles, "KEEP_TALLER_TVM_TILES", False)
    for name, (x, warps, z) in [("x32z8", (32, 4, 8)), ("x64z8", (64, 4, 8)), ("x32z16w2", (32, 2, 16))]:
        got = tiles_for(name, 2, 14, 64, "float16", WEBGPU, shared_limit=tiles.SHARED_LIMIT_BYTES)
        assert (got[5], got[4], got[7]) == (x, warps, z), (name, got)


def test_export_block_tiles_webgpu_only_and_restores() -> None:
    before = _prefill_kernels._get_prefill_kernel_config
    assert _q_tile_rows(WEBGPU) == 16
    with webgpu_prefill_tiles(WEBGPU):
        assert _q_tile_rows(WEBGPU) == 32
        assert _q_tile_rows(CUDA) == 16, "a native build inside the block got WebGPU's tiles"
    assert _prefill_kernels._get_prefill_kernel_config is before
    with pytest.raises(RuntimeError), webgpu_prefill_tiles(WEBGPU):
        raise RuntimeError("export failed")
    assert _prefill_kernels._get_prefill_kernel_config is before
    with webgpu_prefill_tiles(CUDA):  # nothing to do for native targets
        assert _prefill_kernels._get_prefill_kernel_config is before


def test_unknown_tiles_name_the_choices() -> None:
    with pytest.raises(ValueError, match="x32z8"), webgpu_prefill_tiles(WEBGPU, "x64"):
        pass
