"""The tile config of TVM's prefill attention kernels in WebGPU builds (issue 17, prefill).

TVM 0.27 builds the KV cache's prefill attention kernels (`batch_prefill_ragged_kv`, `batch_prefill_paged_kv`,
the sliding-window and sequence variants) while the model is exported, with a tile config from
`_get_prefill_kernel_config`: at head_dim 64 in float32 it gives WebGPU what it gives CUDA, a 16-row query
tile, 4 warps of 32 threads and a 16-row key tile. After the prefill GEMMs got their tuned config
(build/gpu_schedule.py), that kernel was the largest of a prefill. On an H100 (Node + Dawn, Vulkan; the same
call, docs/benchmarks.md "On the H100, fourth run") a 32-row query tile with an 8-row key tile took 512-token
prefill from 0.53 to 0.84 of native CUDA on SmolLM2-135M and from 0.56 to 0.87 on the Qwen2.5-0.5B shape
(128 tokens: 0.70 -> 0.81, 0.75 -> 0.82); the same query tile with a 16-row key tile measured the same but
needs 18.8 KiB of workgroup storage, over the 16 KiB every WebGPU adapter must grant.

TVM has no hook for the config, so `webgpu_prefill_tiles` swaps `_prefill_kernels._get_prefill_kernel_config`
for the export only (the kernels read it when they are built, never later). Where a tile does not fit the
16 KiB or TVM's schedule cannot split it over the threads, TVM's own config stays, so every head dim and dtype
still builds; so it does where TVM's query tile is already 32 rows (float16 at head_dim 64; on the H100 the
`x64z8` tile was faster there on TVM's grid, 39.2 -> 31.1 ms of a 512-token Qwen-shape prefill, but with the
grid below TVM's own tile was the fastest, 7.25 ms against 7.46 for `x32z8` and 8.37 for `x64z8`; seventh run).

The grid. TVM launches 16 workgroups per KV head whatever the prompt length, each walking the query tiles
16 apart. A model with few KV heads then prefills on few workgroups: the Qwen2.5-0.5B shape (2 KV heads,
7 query heads each) has 112 query tiles per KV head at 512 tokens, so 32 workgroups did 7 tiles each on an
H100's 132 SMs, and that kernel took 39-42 of the 60-64 ms of GPU time of the prefill (seventh run). With
`grid_rows` (the export passes the prefill chunk) the grid gets one workgroup per query tile of a full
chunk; TVM's kernel walks its tiles by the grid's width, so any width computes the same thing, and the extra
workgroups of a short prompt find no tile and return.
Native targets never see the swap.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import tvm
from tvm.relax.frontend.nn.llm import _kernel_common, _prefill_kernels

# name -> (query tile rows, warps of 32 threads, key tile rows). "tvm": TVM's own config.
PREFILL_ATTENTION_TILES: dict[str, tuple[int, int, int] | None] = {
    "tvm": None,
    "x32z8": (32, 4, 8),
    # The variants the H100 A/B also ran (bench/gpu/build_variant.py --prefill-attention).
    "w8": (16, 8, 16),
    "x32": (32, 4, 16),
    "x32w8": (32, 8, 16),
    # float16 variants for the f16 prefill A/B (TVM gives float16 at head_dim 64 a 32 x 32 tile, 4 warps).
    "x64z8": (64, 4, 8),
    "x32z16w2": (32, 2, 16),
}

#: What WebGPU builds use (module docstring).
DEFAULT_PREFILL_ATTENTION = "x32z8"

# The default keeps TVM's config where TVM's query tile is already as tall (float16); the bench's A/B sets
# this False to try the tiles there too.
KEEP_TALLER_TVM_TILES = True

# TVM's grid width, and the most workgroups per KV head Hearth's gives (a 2048-token chunk of 8 query heads per
# KV head in 16-row tiles is 1024).
TVM_PREFILL_BLOCKS = 16
MAX_PREFILL_BLOCKS = 1024

# The bench's A/B sets this False to build TVM's 16-wide grid (bench/gpu/build_variant.py --prefill-grid tvm).
GRID_PER_QUERY_TILE = True

# Workgroup storage every WebGPU adapter grants (maxComputeWorkgroupStorageSize's required minimum). The bench
# sets TVM's webgpu maximum (32 KiB) for one build to try the larger tiles (build_variant.py).
SHARED_LIMIT_BYTES = 16384


def grid_blocks(grid_rows: int | None, group: int, tile_x: int) -> int:
    """Workgroups per KV head: one per query tile of `grid_rows` tokens (each a tile_x-row slice of the rows
    of `group` query heads), never fewer than TVM's; None: TVM's."""
    if grid_rows is None or not GRID_PER_QUERY_TILE:
        return TVM_PREFILL_BLOCKS
    return min(max(TVM_PREFILL_BLOCKS, -(-grid_rows * group // tile_x)), MAX_PREFILL_BLOCKS)


def tiles_for(
    name: str,
    h_kv: int,
    h_q: int,
    d: int,
    dtype: str,
    target: tvm.target.Target,
    *,
    shared_limit: int,
    grid_rows: int | None = None,
    **kw: Any,
) -> tuple[int, ...]:
    """TVM's config tuple for one kernel: tile `name` where it fits `shared_limit` and is legal, else TVM's
    tile; the grid one workgroup per query tile of `grid_rows` tokens (grid_blocks)."""
    tvm_config = _kernel_common._get_prefill_kernel_config(h_kv, h_q, d, dtype, target, **kw)
    blks, *rest = _tiles(name, tvm_config, d, dtype, shared_limit, **kw)
    _, group, _, _, tile_x, _, _ = rest
    if blks != TVM_PREFILL_BLOCKS:  # the kernels' tile walk is what makes any width right: recheck it
        raise RuntimeError(
            f"TVM's prefill attention grid is {blks} wide, not {TVM_PREFILL_BLOCKS}: recheck grid_blocks"
        )
    return (grid_blocks(grid_rows, group, tile_x), *rest)


def _tiles(name: str, original: tuple[int, ...], d: int, dtype: str, shared_limit: int, **kw: Any) -> tuple[int, ...]:
    """TVM's config `original` with tile `name` where it fits `shared_limit` and is legal, else `original`."""
    tiles = PREFILL_ATTENTION_TILES[name]
    if tiles is None:
        return original
    tile_x, num_warps, tile_z = tiles
    blks, load_vec, group, bdx, _, _, tile_y, _ = original
    d_v = kw.get("d_v") or d
    merged = bool(kw.get("merged_kv", False))
    used = _kernel_common._get_prefill_shared_memory_usage(tile_x, tile_z, d, dtype, d_v=d_v, merged_kv=merged)
    legal = _kernel_common._is_prefill_kernel_config_legal(
        tile_x, tile_y, tile_z, d_v, load_vec, bdx, num_warps, merged
    )
    if used > shared_limit or not legal:
        return original
    if KEEP_TALLER_TVM_TILES and name == DEFAULT_PREFILL_ATTENTION and tile_x <= original[5]:
        # TVM already gives this kernel a query tile as tall (float16 at head_dim 64: 32 x 4 warps x 32),
        # and the A/B measured float32 only: keep TVM's.
        return original
    return blks, load_vec, group, bdx, num_warps, tile_x, tile_y, tile_z


@contextlib.contextmanager
def webgpu_prefill_tiles(
    target: tvm.target.Target | None,
    name: str | None = None,
    grid_rows: int | None = None,
) -> Iterator[None]:
    """Within the block, the prefill attention kernels TVM builds for a webgpu `target` use tile `name`
    (None: DEFAULT_PREFILL_ATTENTION) within SHARED_LIMIT_BYTES, both read now, so the bench's A/B can set
    them for one build, and a grid of one workgroup per query tile of `grid_rows` tokens (the prefill chunk;
    None: TVM's 16 per KV head)."""
    name = DEFAULT_PREFILL_ATTENTION if name is None else name
    shared_limit = SHARED_LIMIT_BYTES
    if name not in PREFILL_ATTENTION_TILES:
        raise ValueError(f"unknown prefill attention tiles {name!r}; one of {', '.join(PREFILL_ATTENTION_TILES)}")
    if target is None or target.kind.name != "webgpu":
        yield
        return
    original = _prefill_kernels._get_prefill_kernel_config

    def config(h_kv, h_q, d, dtype, tgt, **kw):  # noqa: ANN001, ANN003, ANN202 - TVM's signature
        if tgt.kind.name != "webgpu":
            return original(h_kv, h_q, d, dtype, tgt, **kw)
        return tiles_for(name, h_kv, h_q, d, dtype, tgt, shared_limit=shared_limit, grid_rows=grid_rows, **kw)

    _prefill_kernels._get_prefill_kernel_config = config
    try:
        yield
    finally:
        _prefill_kernels._get_prefill_kernel_config = original
