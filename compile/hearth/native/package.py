"""Open a compiled package natively (llvm/cuda): verified files, config, library and weights.

The package is verified against its manifest first, the same guarantee the SDK gives: a well-formed
manifest whose paths stay inside the package, every listed file intact, and nothing read that the
manifest does not list (`open_package`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tvm
from tvm.contrib import tvmjs

from ..errors import HearthError
from ..targets import get_target
from ..weights.manifest import (
    TENSOR_CACHE,
    IntegrityError,
    require_all_listed,
    require_listed,
    tensor_cache_index,
    verify_package,
)

CHAT_CONFIG = "mlc-chat-config.json"


class PackageTargetError(HearthError):
    """The package was not built for the requested target."""


@dataclass
class OpenedPackage:
    manifest: dict[str, Any]
    config: dict[str, Any]  # mlc-chat-config.json
    library: Path  # the target's native library
    device: Any  # tvm.runtime.Device
    params: dict[str, Any]  # name -> tvm tensor, from the tensor cache


def _require_params_agree(package_dir: Path, config: dict[str, Any], index: dict[str, Any]) -> None:
    """The config's packed parameter list (what the compiled functions take) must be what the tensor cache
    holds, weight by weight: the SDK refuses the same disagreement (PackageCompatibilityError)."""
    stored = {r["name"]: (list(r["shape"]), r["dtype"]) for shard in index["records"] for r in shard.get("records", [])}
    wanted = config.get("params")
    if not isinstance(wanted, list):
        return  # encoders' configs predate the list; their loader checks names itself
    bad = [
        p.get("name", "?")
        for p in wanted
        if not isinstance(p, dict) or stored.get(p.get("name")) != (list(p.get("shape", [])), p.get("dtype"))
    ]
    if bad:
        raise IntegrityError(
            f"{package_dir}: {CHAT_CONFIG} and {TENSOR_CACHE} disagree on {len(bad)} weight(s): "
            f"{', '.join(map(str, bad[:3]))}{' ...' if len(bad) > 3 else ''}; recompile the package"
        )


def open_package(package_dir: Path, target: str = "llvm", reads: tuple[str, ...] = ()) -> OpenedPackage:
    """Verify `package_dir` and load its config, library path and weights for `target`.

    `reads`: other package files the caller will read (tokenizer.json, ...); each must be listed.
    IntegrityError for a malformed manifest, a damaged or unlisted file, or a path outside the package.
    """
    package_dir = Path(package_dir)
    manifest = verify_package(package_dir)
    require_all_listed(package_dir, manifest)
    require_listed(package_dir, manifest, [CHAT_CONFIG, *reads])
    config = json.loads((package_dir / CHAT_CONFIG).read_text())
    lib = manifest.get("targets", {}).get(target)
    spec = get_target(target)
    if not isinstance(lib, str) or spec.is_wasm:
        raise PackageTargetError(
            f"{package_dir} has no native {target!r} library (it has: {', '.join(manifest.get('targets', {}))}); "
            f"recompile with --target {target}"
        )
    require_listed(package_dir, manifest, [lib])
    index = tensor_cache_index(package_dir, manifest)  # listed, inside the package, records fit their shards
    _require_params_agree(package_dir, config, index)
    dev = tvm.device(spec.device, 0)
    params, _ = tvmjs.load_tensor_cache(str(package_dir / TENSOR_CACHE), dev)
    return OpenedPackage(manifest, config, package_dir / lib, dev, params)
