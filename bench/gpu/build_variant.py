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
Per-kernel prefill time on lavapipe:
node sdk/scripts/kernel-launches.mjs <dir> --prefill-gpu-time 128 (device: PREFILL_TIMES=1 bench/gpu/device_run.sh).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from hearth.build.gpu_schedule import PREFILL_SCHEDULES
from hearth.build.pipeline import build_target
from hearth.models import config_from_hf
from hearth.quant import get_scheme
from hearth.targets import get_target
from hearth.weights.source import resolve_source

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_unfused import copy_package, replace_webgpu_library  # noqa: E402


def build_variant(checkpoint: Path, package: Path, schedule: str, out: Path) -> Path:
    """The package copied to <out>/<model_id>/<quant> with its webgpu wasm built under `schedule`."""
    manifest = json.loads((package / "hearth-manifest.json").read_text())
    cfg = json.loads((package / "mlc-chat-config.json").read_text())
    if "webgpu" not in manifest["targets"]:
        raise SystemExit(f"{package} has no webgpu library: nothing to rebuild")
    scheme = get_scheme(cfg["quantization"])
    source = resolve_source(str(checkpoint))
    arch, config = config_from_hf(
        source.config, context_window_size=cfg["context_window_size"], prefill_chunk_size=cfg["prefill_chunk_size"]
    )
    spec = get_target("webgpu")
    built = build_target(arch, config, scheme, spec, prefill_schedule=schedule)
    if [n for n, _ in built.named_params] != [p["name"] for p in cfg["params"]]:
        raise SystemExit(f"parameter order differs from {package}'s: the variant would read the wrong tensors")
    dst = out / manifest["model_id"] / scheme.name
    copy_package(package, dst)
    replace_webgpu_library(dst, manifest, built.executable, spec)
    return dst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("package", type=Path)
    # Each variant (the default "cuda" too) rebuilds from the same tree: a package under dist/ may have
    # been compiled before other compiler changes, which the A/B would then count as the schedule's.
    ap.add_argument("--prefill-schedule", required=True, choices=list(PREFILL_SCHEDULES))
    ap.add_argument("--out", type=Path, help="default bench/tmp/prefill-<NAME>")
    args = ap.parse_args()
    t0 = time.perf_counter()
    out = args.out or REPO / "bench" / "tmp" / f"prefill-{args.prefill_schedule}"
    dst = build_variant(args.checkpoint, args.package, args.prefill_schedule, out)
    print(json.dumps({"package": str(dst), "webgpu_seconds": round(time.perf_counter() - t0, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
