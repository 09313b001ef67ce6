"""The other side of the decode-fusion benchmark (issue 17 item 1): a copy of a decoder package whose WebGPU
library (and, optionally, a CUDA library next to it) is compiled WITHOUT hearth/build/fusion.py, or, with
--fused, WITH it ("gate" mode), or, with --fused2, with its "staged" mode (RMSNorm and the SwiGLU gate folded
into the next GEMV, the prologue staged once per workgroup: build/staged_gemv.py). Packages are built
unfused since the H100 A/B (docs/benchmarks.md, "Decode fusion on the H100"), so the A/B of a current
package needs --fused / --fused2; a package built before that needs no flag.

    .venv/bin/python bench/gpu/build_unfused.py <checkpoint> <package_dir> [--fused | --fused2 [--rows N]
        [--staged-bytes B] [--prefetch [--multirow R]]] [--subgroups N] [--cuda]
        [--out DIR]

--subgroups N compiles the WebGPU library as target webgpu-fused-sg<N> does (reductions as subgroup
shuffles for adapters whose subgroups are exactly N lanes: 32 on NVIDIA; hearth/build/subgroups.py), e.g.
`--fused2 --subgroups 32 --out bench/tmp/v-sg32` for bench/gpu/prepare.py's -v-sg32 rows.
--multirow R (with --prefetch; mode staged-p-m<R>): each thread computes up to R output rows of a staged GEMV
(build/staged_gemv.py's multirow), e.g. `--fused2 --prefetch --multirow 4 --out bench/tmp/v-m4`.

Writes <out>/<model_id>/<quant>/ (the package's files, weights hard-linked, the webgpu wasm rebuilt and
its manifest entry re-hashed) and, with --cuda, bench/tmp/cuda/<model_id>-<quant>-unfused-cuda.so.
Everything but the compiler pass is the package's own build, so the fused package (dist/ or
bench/tmp/dist/) against this copy measures the fusion alone: sdk/scripts/kernel-launches.mjs for
launches per token on lavapipe, bench/gpu/prepare.py carries both to the GPU (rows named *-unfused).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from hearth.build.pipeline import build_target, write_library
from hearth.cache import sha256_file
from hearth.models import config_from_hf
from hearth.quant import get_scheme
from hearth.targets import TargetSpec, get_target
from hearth.weights.source import resolve_source

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_cuda import cuda_spec  # noqa: E402


def copy_package(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.name.startswith("params_shard_"):
            try:  # the weights are identical: a hard link saves the 0.5B shape's ~300 MB
                os.link(f, dst / f.name)
                continue
            except OSError:
                pass
        shutil.copy2(f, dst / f.name)


def replace_webgpu_library(
    dst: Path, manifest: dict, executable: Any, spec: TargetSpec, target: str = "webgpu"
) -> None:
    """Write `executable` over the copied package's library of `target` and re-hash it in the manifest."""
    wasm = manifest["targets"][target]
    write_library(executable, spec, dst / wasm)
    for entry in manifest["files"]:
        if entry["path"] == wasm:
            entry["bytes"], entry["sha256"] = (dst / wasm).stat().st_size, sha256_file(dst / wasm)
    (dst / "hearth-manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("package", type=Path)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--fused", action="store_true", help="build WITH build/fusion.py's gate mode (rows *-fused)")
    mode.add_argument("--fused2", action="store_true", help="build with its staged mode (rows *-fused2)")
    ap.add_argument("--rows", type=int, default=8, help="--fused2: output rows per workgroup (rows *-fused2-r<N>)")
    ap.add_argument(
        "--staged-bytes", type=int, help="--fused2: stage at most this many bytes of a GEMV's input at once (chunks)"
    )
    ap.add_argument(
        "--prefetch",
        action="store_true",
        help="--fused2: each thread loads its weights into registers before the prologue (rows *-fused2-p)",
    )
    ap.add_argument(
        "--multirow",
        type=int,
        choices=[1, 2, 4, 8],
        help="--prefetch: output rows per thread of the staged GEMVs, at most (rows *-fused2-p-m<R>)",
    )
    ap.add_argument("--out", type=Path, help="default bench/tmp/unfused (bench/tmp/fused, fused2 with a flag)")
    ap.add_argument("--subgroups", type=int, choices=[8, 16, 32], help="WebGPU: subgroup reductions of N lanes")
    ap.add_argument("--cuda", action="store_true", help="also build the CUDA library the same way")
    ap.add_argument("--arch", default="sm_90a")
    args = ap.parse_args()
    kind = "fused" if args.fused else "fused2" if args.fused2 else "unfused"
    fuse: bool | str = "gate" if args.fused else "staged" if args.fused2 else False
    if args.rows != 8 and not args.fused2:
        raise SystemExit("--rows applies to --fused2 builds only")
    if args.fused2 and args.rows != 8:  # 8: build/staged_gemv.py's default
        kind, fuse = f"fused2-r{args.rows}", f"staged-r{args.rows}"
    if args.staged_bytes is not None:
        if not args.fused2:
            raise SystemExit("--staged-bytes applies to --fused2 builds only")
        kind, fuse = f"{kind}-b{args.staged_bytes}", f"{fuse}-b{args.staged_bytes}"
    if args.prefetch:
        if not args.fused2:
            raise SystemExit("--prefetch applies to --fused2 builds only")
        kind, fuse = f"{kind}-p", f"{fuse}-p"
    if args.multirow is not None:
        if not args.prefetch:
            raise SystemExit("--multirow applies to --fused2 --prefetch builds only")
        kind, fuse = f"{kind}-m{args.multirow}", f"{fuse}-m{args.multirow}"
    if args.subgroups is not None:
        if args.cuda:
            raise SystemExit("--subgroups applies to the WebGPU library only: drop --cuda")
        kind = f"{kind}-sg{args.subgroups}"
    args.out = args.out or REPO / "bench" / "tmp" / kind
    manifest = json.loads((args.package / "hearth-manifest.json").read_text())
    cfg = json.loads((args.package / "mlc-chat-config.json").read_text())
    if "webgpu" not in manifest["targets"]:
        raise SystemExit(f"{args.package} has no webgpu library: nothing to compare")
    scheme = get_scheme(cfg["quantization"])
    source = resolve_source(str(args.checkpoint))
    arch, config = config_from_hf(
        source.config, context_window_size=cfg["context_window_size"], prefill_chunk_size=cfg["prefill_chunk_size"]
    )
    want = [p["name"] for p in cfg["params"]]
    dst = args.out / manifest["model_id"] / scheme.name
    copy_package(args.package, dst)

    t0 = time.perf_counter()
    # The library stays under the package's "webgpu" name: the bench loads that one.
    spec = get_target("webgpu" if args.subgroups is None else f"webgpu-fused-sg{args.subgroups}")
    built = build_target(arch, config, scheme, spec, fuse=fuse)
    if [n for n, _ in built.named_params] != want:
        raise SystemExit(
            f"parameter order differs from {args.package}'s: the {kind} build would read the wrong tensors"
        )
    replace_webgpu_library(dst, manifest, built.executable, spec)
    out = {"package": str(dst), "webgpu_seconds": round(time.perf_counter() - t0, 1)}

    if args.cuda:
        os.environ.setdefault("TVM_CUDA_COMPILE_MODE", "nvcc")
        os.environ.setdefault("CUDA_PATH", "/usr/local/cuda")
        os.environ["PATH"] = os.environ["CUDA_PATH"] + "/bin:" + os.environ["PATH"]
        import tvm.support.nvcc  # noqa: F401 - see build_cuda.py

        t1 = time.perf_counter()
        cspec = cuda_spec(args.arch)
        cbuilt = build_target(arch, config, scheme, cspec, fuse=fuse)
        lib = REPO / "bench" / "tmp" / "cuda" / f"{manifest['model_id']}-{scheme.name}-{kind}-cuda.so"
        lib.parent.mkdir(parents=True, exist_ok=True)
        write_library(cbuilt.executable, cspec, lib)
        out.update(cuda=str(lib), cuda_seconds=round(time.perf_counter() - t1, 1))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
