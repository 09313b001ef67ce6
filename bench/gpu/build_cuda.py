"""Compile a decoder package's model natively for CUDA (sm_90, the H200) next to its WebGPU build:
the ceiling Hearth WebGPU is compared against on the GPU.

    .venv/bin/python bench/gpu/build_cuda.py <checkpoint> <package_dir> --out <lib.so>

The model is rebuilt from the same checkpoint with the same quantization and the package's own
context_window_size / prefill_chunk_size, so the function signatures and the packed parameter
order match the package's tensor-cache.json (checked). No GPU is needed: CUDA C is compiled to a
cubin by nvcc (TVM_CUDA_COMPILE_MODE=nvcc; CUDA_PATH, default /usr/local/cuda) or NVRTC.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import tvm
import tvm.support.nvcc  # noqa: F401 - registers tvm_callback_cuda_compile: without it the .so keeps CUDA source and compiles it at load

from hearth.build.pipeline import build_target, write_library
from hearth.models import config_from_hf
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("package", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    # sm_90a: H100/H200 code; also keeps dlight off its tensor-core matmul rule, whose Tensorize
    # segfaults in TVM 0.27 on these GEMMs (check_sm_version("sm_90a") is -1).
    ap.add_argument("--arch", default="sm_90a")
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
