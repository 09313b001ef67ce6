"""Open a compiled package natively (llvm/cuda) in Python: for tests, eval and the fallback server.

The package is verified against its manifest first, the same guarantee the SDK gives.
"""
from __future__ import annotations

import json
from pathlib import Path

import tvm
from tvm.contrib import tvmjs

from .build.targets import get_target
from .models.kv_driver import NativeDecoder
from .weights.manifest import verify_package


class PackageTargetError(Exception):
    """The package was not built for the requested target."""


def load_decoder(package_dir: Path, target: str = "llvm", max_total_seq_len: int | None = None) -> tuple[NativeDecoder, dict]:
    manifest = verify_package(package_dir)
    config = json.loads((package_dir / "mlc-chat-config.json").read_text())
    lib = manifest.get("targets", {}).get(target)
    spec = get_target(target)
    if lib is None or spec.is_wasm:
        raise PackageTargetError(
            f"{package_dir} has no native {target!r} library (it has: {', '.join(manifest.get('targets', {}))}); "
            f"recompile with --target {target}"
        )
    dev = tvm.device(spec.device, 0)
    params, _ = tvmjs.load_tensor_cache(str(package_dir), dev)
    decoder = NativeDecoder(
        tvm.runtime.load_module(str(package_dir / lib)),
        [params[p["name"]] for p in config["params"]],
        dev,
        max_total_seq_len=max_total_seq_len or config["context_window_size"],
        prefill_chunk_size=config["prefill_chunk_size"],
    )
    return decoder, config
