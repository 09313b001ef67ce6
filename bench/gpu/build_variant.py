"""Prefill-schedule variants of a decoder package for the GPU A/B (issue 17 item 1: WebGPU prefill at 0.40-0.47
of native CUDA on an H100). A copy of the package whose WebGPU library is rebuilt with
`build_target(..., prefill_schedule=NAME)` (compile/hearth/build/gpu_schedule.py: the dlight Matmul config of
the prefill GEMMs); everything else (weights, configs, the llvm library) is the package's own, so the pair
measures the schedule alone. CUDA keeps dlight's own config under every variant: the native rows of the pair
are the same build, so no CUDA library is built here (the variant reuses the package's).

    .venv/bin/python bench/gpu/build_variant.py <checkpoint> <package_dir> --prefill-schedule cuda [--out DIR]

Writes <out>/<model_id>/<quant>/ (default out: bench/tmp/prefill-<NAME>); rows named
"<model>-<quant>-prefill-<NAME>". Each of them is the control of the others (the H100 A/B of 2026-12-07 made
"cuda" the default: docs/benchmarks.md).

Decode GEMV and prefill attention variants (issue 17, the Qwen2.5-0.5B shape), on top of the default fused
build (--fused2: build/fusion.py's staged mode, what build_unfused.py --fused2 builds):

    .venv/bin/python bench/gpu/build_variant.py <ckpt> <pkg> --fused2 [--decode-gemv vulkan]
        [--prefill-attention x32] --out bench/tmp/v-<name>

--decode-gemv NAME: build/gpu_schedule.py's DECODE_GEMVS (dlight's GEMV config of another target kind for
webgpu's decode GEMVs). --prefill-attention NAME: models/prefill_attention_tiles.py's PREFILL_ATTENTION_TILES
(query tile, warps of 32 threads, key tile of batch_prefill_ragged_kv / _paged_kv; "tvm": TVM's own config;
default x32z8 since the H100 A/B) for this build only, allowing 32 KiB of workgroup storage.
bench/gpu/prepare.py carries bench/tmp/v-<name>/ as rows "<model>-<quant>-v-<name>".
Per-kernel prefill time on lavapipe:
node sdk/scripts/kernel-launches.mjs <dir> --prefill-gpu-time 128 (device: PREFILL_TIMES=1 bench/gpu/device_run.sh).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from hearth.build import gpu_schedule
from hearth.build.gpu_schedule import DECODE_GEMVS, DEFAULT_PREFILL_SCHEDULE, PREFILL_SCHEDULES
from hearth.build.package import DECODE_FUSION
from hearth.build.pipeline import build_target
from hearth.models import config_from_hf
from hearth.models import prefill_attention_tiles as tiles
from hearth.models.prefill_attention_tiles import PREFILL_ATTENTION_TILES
from hearth.quant import get_scheme
from hearth.targets import get_target
from hearth.weights.source import resolve_source

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_unfused import copy_package, replace_webgpu_library  # noqa: E402

# name -> (tile_x: query rows per workgroup, num_warps, tile_z: keys per step). TVM's webgpu choice at
# head_dim 64 f32 is 16 / 4 / 16 (13.5 KiB of workgroup storage, what CUDA gets). "w8" and "x32z8" stay
# within WebGPU's portable 16 KiB; "x32" and "x32w8" (18.8 KiB) need the adapter's larger limit, which the
# SDK requests (sdk/src/runtime/gpu.ts MAXED_LIMITS; 32 KiB on Dawn/NVIDIA and on lavapipe).
_SHARED_LIMIT = 32768  # bytes: TVM's webgpu max_shared_memory_per_block, what Dawn grants on both


@contextlib.contextmanager
def prefill_attention(name: str | None, grid: str | None = None) -> Iterator[None]:
    """The package's WebGPU prefill attention tiles (models/prefill_attention_tiles.py) set to `name` for the
    builds inside the block, up to 32 KiB of workgroup storage (None: the compiler's default), and its grid:
    "tvm" (16 workgroups per KV head) or "chunk" (one per query tile of a prefill chunk; None: the default)."""
    saved = tiles.DEFAULT_PREFILL_ATTENTION, tiles.SHARED_LIMIT_BYTES, tiles.KEEP_TALLER_TVM_TILES
    saved_grid = tiles.GRID_PER_QUERY_TILE
    if name is not None:
        # The variant applies wherever it fits and is legal, float16 (where TVM's query tile is already 32 rows) too.
        tiles.DEFAULT_PREFILL_ATTENTION, tiles.SHARED_LIMIT_BYTES, tiles.KEEP_TALLER_TVM_TILES = (
            name,
            _SHARED_LIMIT,
            False,
        )
    if grid is not None:
        tiles.GRID_PER_QUERY_TILE = grid == "chunk"
    try:
        yield
    finally:
        tiles.DEFAULT_PREFILL_ATTENTION, tiles.SHARED_LIMIT_BYTES, tiles.KEEP_TALLER_TVM_TILES = saved
        tiles.GRID_PER_QUERY_TILE = saved_grid


def build_variant(
    checkpoint: Path,
    package: Path,
    schedule: str,
    out: Path,
    fuse: bool | str = False,
    gemv: str | None = None,
    attention: str | None = None,
    library: str = "webgpu",
    grid: str | None = None,
) -> Path:
    """The package copied to <out>/<model_id>/<quant> with its webgpu wasm built under `schedule`, the fusion
    mode `fuse`, the decode GEMV config `gemv` and the prefill attention tiles `attention` (None: defaults);
    `library`: the WebGPU library rebuilt ("webgpu", "webgpu-fused" or "auto"); `grid`: the prefill attention
    grid ("tvm" or "chunk"; None: the default)."""
    manifest = json.loads((package / "hearth-manifest.json").read_text())
    cfg = json.loads((package / "mlc-chat-config.json").read_text())
    scheme = get_scheme(cfg["quantization"])
    source = resolve_source(str(checkpoint))
    arch, config = config_from_hf(
        source.config, context_window_size=cfg["context_window_size"], prefill_chunk_size=cfg["prefill_chunk_size"]
    )
    # library "auto": the one a hardware adapter loads, the package's webgpu-fused where it has one
    # (sdk/src/load/package.ts webgpuBuild "auto"), with its own fusion mode unless `fuse` says otherwise.
    name = library if library != "auto" else "webgpu-fused" if "webgpu-fused" in manifest["targets"] else "webgpu"
    if name not in manifest["targets"]:
        raise SystemExit(f"{package} has no {name} library to rebuild")
    spec = get_target(name)
    if name == "webgpu-fused" and fuse is False:
        fuse = DECODE_FUSION[spec.decode_fusion]
    default_gemv = gpu_schedule.DEFAULT_DECODE_GEMV
    if gemv is not None:
        gpu_schedule.DEFAULT_DECODE_GEMV = gemv  # read when the pipeline makes its dlight pass
    try:
        with prefill_attention(attention, grid):
            built = build_target(arch, config, scheme, spec, fuse=fuse, prefill_schedule=schedule)
    finally:
        gpu_schedule.DEFAULT_DECODE_GEMV = default_gemv
    if [n for n, _ in built.named_params] != [p["name"] for p in cfg["params"]]:
        raise SystemExit(f"parameter order differs from {package}'s: the variant would read the wrong tensors")
    dst = out / manifest["model_id"] / scheme.name
    copy_package(package, dst)
    replace_webgpu_library(dst, manifest, built.executable, spec, name)
    return dst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("package", type=Path)
    # Each variant (the default "cuda" too) rebuilds from the same tree: a package under dist/ may have
    # been compiled before other compiler changes, which the A/B would then count as the schedule's.
    ap.add_argument("--prefill-schedule", default=DEFAULT_PREFILL_SCHEDULE, choices=list(PREFILL_SCHEDULES))
    ap.add_argument("--fused2", action="store_true", help="the staged decode fusion (the default fused build)")
    ap.add_argument("--decode-gemv", choices=list(DECODE_GEMVS), help="webgpu decode GEMV config")
    ap.add_argument("--prefill-attention", choices=list(PREFILL_ATTENTION_TILES), help="prefill attention tiles")
    ap.add_argument(
        "--prefill-grid",
        choices=["tvm", "chunk"],
        help="prefill attention grid: TVM's 16 workgroups per KV head, or one per query tile of a chunk (default)",
    )
    ap.add_argument("--out", type=Path, help="default bench/tmp/prefill-<NAME>")
    ap.add_argument(
        "--library",
        choices=["auto", "webgpu", "webgpu-fused"],
        default="auto",
        help="which WebGPU library to rebuild (auto: the one a GPU loads, webgpu-fused where the package has it)",
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    out = args.out or REPO / "bench" / "tmp" / f"prefill-{args.prefill_schedule}"
    fuse = "staged" if args.fused2 else False
    dst = build_variant(
        args.checkpoint,
        args.package,
        args.prefill_schedule,
        out,
        fuse,
        args.decode_gemv,
        args.prefill_attention,
        args.library,
        args.prefill_grid,
    )
    print(json.dumps({"package": str(dst), "webgpu_seconds": round(time.perf_counter() - t0, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
