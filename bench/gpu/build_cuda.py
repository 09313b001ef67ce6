"""Compile a decoder package's model natively for CUDA (sm_90, the H200) next to its WebGPU build:
the ceiling Hearth WebGPU is compared against on the GPU.

    .venv/bin/python bench/gpu/build_cuda.py <checkpoint> <package_dir> --out <lib.so>

The model is rebuilt from the same checkpoint with the same quantization and the package's own
context_window_size / prefill_chunk_size, so the function signatures and the packed parameter
order match the package's tensor-cache.json (checked). No GPU is needed: CUDA C is compiled to a
cubin by nvcc (TVM_CUDA_COMPILE_MODE=nvcc; CUDA_PATH, default /usr/local/cuda) or NVRTC.

--prefill-grid chunk: the native build's prefill attention kernels get the grid Hearth's WebGPU builds get
(one workgroup per query tile of a chunk instead of TVM's 16 per KV head; models/prefill_attention_tiles.py),
TVM's tiles otherwise. Not the reference (native is TVM as it ships); it tells how much of WebGPU's prefill
lead over that reference is the grid, which native would gain from too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import tvm
import tvm.support.nvcc  # noqa: F401 - registers tvm_callback_cuda_compile: without it the .so keeps CUDA source and compiles it at load

from hearth.build.pipeline import build_target, write_library
from hearth.models import config_from_hf
from hearth.models.prefill_attention_tiles import SHARED_LIMIT_BYTES, tiles_for
from hearth.quant import get_scheme
from hearth.targets import TargetSpec
from hearth.weights.source import resolve_source


def cuda_spec(arch: str) -> TargetSpec:
    # Host code runs on the device machine's CPU: baseline x86-64, not this machine's -mcpu.
    return TargetSpec(
        "cuda",
        lambda: tvm.target.Target(
            {
                "kind": "cuda",
                "arch": arch,
                "max_threads_per_block": 1024,
                "max_shared_memory_per_block": 49152,
                "thread_warp_size": 32,
                "host": {"kind": "llvm", "mtriple": "x86_64-pc-linux-gnu"},
            }
        ),
        False,
        True,
        "cuda",
    )


@contextlib.contextmanager
def native_prefill_grid(grid_rows: int | None) -> Iterator[None]:
    """Within the block, TVM's prefill attention kernels for any target get a grid of one workgroup per query
    tile of `grid_rows` tokens (None: TVM's)."""
    from tvm.relax.frontend.nn.llm import _prefill_kernels

    original = _prefill_kernels._get_prefill_kernel_config

    def config(*args, **kw):  # noqa: ANN002, ANN003, ANN202 - TVM's signature
        # TVM's tile ("tvm"), Hearth's grid: the WebGPU builds' tiles_for, for any target
        return tiles_for("tvm", *args, shared_limit=SHARED_LIMIT_BYTES, grid_rows=grid_rows, **kw)

    if grid_rows is not None:
        _prefill_kernels._get_prefill_kernel_config = config
    try:
        yield
    finally:
        _prefill_kernels._get_prefill_kernel_config = original


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("package", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    # sm_90a: H100/H200 code; also keeps dlight off its tensor-core matmul rule, whose Tensorize
    # segfaults in TVM 0.27 on these GEMMs (check_sm_version("sm_90a") is -1).
    ap.add_argument("--arch", default="sm_90a")
    ap.add_argument(
        "--prefill-grid", choices=["tvm", "chunk"], default="tvm", help="prefill attention grid (docstring)"
    )
    args = ap.parse_args()
    os.environ.setdefault("TVM_CUDA_COMPILE_MODE", "nvcc")
    os.environ.setdefault("CUDA_PATH", "/usr/local/cuda")
    os.environ["PATH"] = os.environ["CUDA_PATH"] + "/bin:" + os.environ["PATH"]
    cfg = json.loads((args.package / "mlc-chat-config.json").read_text())
    scheme = get_scheme(cfg["quantization"])
    source = resolve_source(str(args.checkpoint))
    arch, config = config_from_hf(
        source.config, context_window_size=cfg["context_window_size"], prefill_chunk_size=cfg["prefill_chunk_size"]
    )
    spec = cuda_spec(args.arch)
    t0 = time.perf_counter()
    with native_prefill_grid(config.prefill_chunk_size if args.prefill_grid == "chunk" else None):
        built = build_target(arch, config, scheme, spec)  # the same step `hearth compile` runs per target
    names = [n for n, _ in built.named_params]
    want = [p["name"] for p in cfg["params"]]
    if names != want:
        raise SystemExit(f"parameter order differs from {args.package}'s: the CUDA build would read the wrong tensors")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_library(built.executable, spec, args.out)
    print(
        json.dumps(
            {"out": str(args.out), "seconds": round(time.perf_counter() - t0, 1), "bytes": args.out.stat().st_size}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
