"""The prefill attention grid of WebGPU builds (compile/hearth/models/prefill_attention_tiles.py): one
workgroup per query tile of a prefill chunk instead of TVM's 16 per KV head. A model with one KV head and 8
query heads per KV head has 8 query rows per token, so a 100-token prompt is 25 query tiles of 32 rows: more
than TVM's 16 workgroups, fewer than the 32 of the package's 128-token chunk. The WebGPU build (Node + Dawn,
lavapipe) must give the native build's logits and greedy tokens there, in one chunk and in chunks of 48
(the second chunk then walks the cached pages too, in the paged kernel).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tvm
from tvm.relax.frontend.nn.llm import _prefill_kernels

import family_parity as fp
from hearth.models.prefill_attention_tiles import (
    MAX_PREFILL_BLOCKS,
    TVM_PREFILL_BLOCKS,
    grid_blocks,
    webgpu_prefill_tiles,
)

WEBGPU = tvm.target.Target({"kind": "webgpu", "host": "llvm"})
CUDA = tvm.target.Target({"kind": "cuda", "arch": "sm_90a", "host": "llvm"})
CHUNK = 128
# head_dim 32: at head_dim 16 this 8:1 config does not build for WebGPU in TVM 0.27, with TVM's grid as with
# this one ("variable cse_v13 has been used before definition" in its prefill kernels' lowering).
GQA8 = dict(num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=1, head_dim=32)


def _grid_width(target: tvm.target.Target, grid_rows: int | None, h_kv: int = 1, h_q: int = 8) -> int:
    with webgpu_prefill_tiles(target, grid_rows=grid_rows):
        func = _prefill_kernels._attention_prefill_ragged(h_kv, h_q, 32, 32, "float32", {}, target)
    widths = re.findall(r'thread_binding\((\d+), thread="blockIdx\.x"\)', func.script())
    assert widths, "no blockIdx.x in the prefill kernel (TVM's kv_cache changed?)"
    return int(widths[0])


def test_the_grid_covers_a_chunk_on_webgpu_only() -> None:
    assert _grid_width(WEBGPU, CHUNK) == CHUNK * 8 // 32  # 32-row query tiles (x32z8 at head_dim 32)
    assert _grid_width(WEBGPU, None) == TVM_PREFILL_BLOCKS
    assert _grid_width(CUDA, CHUNK) == TVM_PREFILL_BLOCKS, "a native build got WebGPU's grid"


@pytest.mark.parametrize(
    ("rows", "group", "tile_x", "want"),
    [
        (512, 7, 32, 112),  # the Qwen2.5-0.5B shape at its 512-token chunk: 16 -> 112 per KV head
        (512, 3, 32, 48),  # SmolLM2-135M
        (16, 1, 32, TVM_PREFILL_BLOCKS),  # never fewer than TVM's
        (8192, 8, 16, MAX_PREFILL_BLOCKS),
        (100, 3, 32, TVM_PREFILL_BLOCKS),  # 10 tiles
    ],
)
def test_grid_blocks(rows: int, group: int, tile_x: int, want: int) -> None:
    assert grid_blocks(rows, group, tile_x) == want


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = fp.save_checkpoint(tmp_path_factory.mktemp("grid") / "llama-gqa8", "LlamaConfig", GQA8)
    return fp.package(folder, "q0f32", ["llvm", "webgpu"], prefill_chunk_size=CHUNK)[0]


@pytest.mark.parametrize("chunk", [48, CHUNK])
def test_wide_grid_matches_native(package: Path, chunk: int) -> None:
    webgpu, native, err = fp.webgpu_logit_error(package, fp.prompt(91, 100), 4, prefill_chunk=chunk)
    print(f"\nGQA 8:1, 100-token prompt in chunks of {chunk}: WebGPU vs native max|dlogit| {err:.3g}")
    assert webgpu == native
    assert err <= fp.LOGIT_TOL
