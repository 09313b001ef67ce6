"""Weight-quantization error of a package, read from its own shards.

For every weight matrix the package stores (group-quantized `q_weight`/`q_scale` pairs, and for
q0 schemes the plain 2-D weights), compare what the package will compute with against the
checkpoint tensor it came from (through the architecture's param_map, so fused projections such
as qkv_proj = q|k|v are compared as fused):

    rel_error = ||W - dequant(package)||_F / ||W||_F        (accumulated in float64)

q0f32 must give exactly 0 (the shards are the checkpoint's floats); q0f16 gives the f16
rounding error (~2.4e-4 relative); q4 schemes the 4-bit group error (~0.1 relative).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..models import config_from_hf
from ..quant import dequantize_asym, dequantize_weight, get_scheme
from ..weights.manifest import tensor_cache_index, verify_package
from ..weights.reader import CheckpointReader

_ROWS_PER_STEP_ELEMS = 1 << 22
_LAYER_RE = re.compile(r"^model\.layers\.(\d+)\.(.+)\.weight$")


@dataclass
class TensorError:
    name: str  # model parameter (unquantized name), e.g. model.layers.0.self_attn.qkv_proj.weight
    sources: list[str]  # checkpoint tensors it was built from
    layer: str  # "0", "1", ... or "embed" / "head"
    module: str  # e.g. "self_attn.qkv_proj", "mlp.down_proj", "embed_tokens", "lm_head"
    shape: list[int]
    stored_as: str  # the scheme for quantized weights, else the stored dtype
    rel_error: float
    sq_error: float
    sq_norm: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _layer_of(name: str) -> tuple[str, str]:
    if m := _LAYER_RE.match(name):
        return m.group(1), m.group(2)
    if name == "model.embed_tokens.weight":
        return "embed", "embed_tokens"
    if name == "lm_head.weight":
        return "head", "lm_head"
    return "other", name.removesuffix(".weight")


class TensorCacheReader:
    """Reads tensors of a package's tensor-cache (tensor-cache.json + raw shards) as numpy,
    memory-mapped, one at a time. Only shards the package's manifest lists (and so verified) are
    read: `manifest` is the verified manifest; without it the package is verified here."""

    def __init__(self, package_dir: Path, manifest: dict[str, Any] | None = None) -> None:
        if manifest is None:
            manifest = verify_package(package_dir)
        doc = tensor_cache_index(package_dir, manifest)
        self.records: dict[str, tuple[Path, dict[str, Any]]] = {}
        for shard in doc["records"]:
            if shard.get("format", "raw-shard") != "raw-shard":
                raise ValueError(
                    f"tensor-cache shard {shard.get('dataPath')}: unsupported format {shard.get('format')!r}"
                )
            for rec in shard["records"]:
                if rec.get("format", "raw") != "raw":
                    raise ValueError(f"tensor {rec['name']}: unsupported encoding {rec.get('format')!r}")
                self.records[rec["name"]] = (package_dir / shard["dataPath"], rec)
        self._maps: dict[Path, np.memmap] = {}

    def names(self) -> list[str]:
        return list(self.records)

    def get(self, name: str) -> np.ndarray:
        path, rec = self.records[name]
        if path not in self._maps:
            self._maps[path] = np.memmap(path, dtype=np.uint8, mode="r")
        try:
            dtype = np.dtype(rec["dtype"])
        except TypeError:
            raise ValueError(f"tensor {name}: dtype {rec['dtype']!r} cannot be read with numpy") from None
        raw = self._maps[path][rec["byteOffset"] : rec["byteOffset"] + rec["nbytes"]]
        return raw.view(dtype).reshape(rec["shape"])


def _row_chunks(rows: int, cols: int) -> Iterator[tuple[int, int]]:
    step = max(1, _ROWS_PER_STEP_ELEMS // max(1, cols))
    for r0 in range(0, rows, step):
        yield r0, min(rows, r0 + step)


def _sq_error(w: np.ndarray, get_rows: Callable[[int, int], np.ndarray]) -> tuple[float, float]:
    """(||W - D||^2, ||W||^2) in float64, D produced row-block by row-block."""
    w2 = w.reshape(-1, w.shape[-1])
    err = norm = 0.0
    for r0, r1 in _row_chunks(*w2.shape):
        ref = w2[r0:r1].astype(np.float64)
        got = get_rows(r0, r1).reshape(r1 - r0, -1).astype(np.float64)
        err += float(np.square(ref - got).sum())
        norm += float(np.square(ref).sum())
    return err, norm


def weight_errors(
    package_dir: Path, reference_dir: Path, manifest: dict[str, Any], chat_config: dict[str, Any]
) -> list[TensorError]:
    """Per-matrix error of the package's weights against the reference checkpoint."""
    scheme = get_scheme(manifest["quantization"])
    ref_config = json.loads((reference_dir / "config.json").read_text())
    arch, config = config_from_hf(ref_config, context_window_size=chat_config.get("context_window_size"))
    param_map = arch.param_map(config)
    checkpoint = CheckpointReader(reference_dir)
    cache = TensorCacheReader(package_dir, manifest)  # the manifest load_decoder verified
    names = cache.names()
    have = set(names)
    out: list[TensorError] = []
    for name in names:
        if name.endswith((".q_scale", ".q_min")):
            continue
        if name.endswith(".q_weight"):
            base = name.removesuffix(".q_weight")
            param = base + ".weight"
            if base + ".q_scale" not in have:
                raise ValueError(f"{name} has no matching {base}.q_scale in the package's tensor-cache")
            qw, qs = cache.get(name), cache.get(base + ".q_scale")
            stored_as = scheme.name
        else:
            stored = cache.get(name)
            if stored.ndim != 2:
                continue  # norms and biases: not weight matrices
            param = name
            stored_as = str(stored.dtype)
        if param not in param_map:
            raise ValueError(
                f"package tensor {name} has no source in the reference checkpoint's param map "
                f"({arch.name}); is --reference the checkpoint this package was compiled from?"
            )
        src = param_map[param]
        w = src.combine([checkpoint.get(n) for n in src.hf_names]).astype(np.float32, copy=False)
        if name.endswith(".q_weight"):
            if qw.shape[:-1] != w.shape[:-1]:
                raise ValueError(f"{name}: package rows {qw.shape[:-1]} != checkpoint {param} {w.shape}")
            k = w.shape[-1]
            qw2, qs2 = qw.reshape(-1, qw.shape[-1]), qs.reshape(-1, qs.shape[-1])
            if scheme.carries_gguf:  # asymmetric layout: code * scale + min (hearth.quant.asym)
                qm2 = cache.get(base + ".q_min").reshape(-1, qs.shape[-1])

                def rows(r0: int, r1: int) -> np.ndarray:
                    return dequantize_asym(
                        np.asarray(qw2[r0:r1]), np.asarray(qs2[r0:r1]), np.asarray(qm2[r0:r1]), out_dtype="float32"
                    )
            else:

                def rows(r0: int, r1: int) -> np.ndarray:
                    return dequantize_weight(
                        np.asarray(qw2[r0:r1]), np.asarray(qs2[r0:r1]), scheme, k=k, out_dtype="float32"
                    )

            sq_err, sq_norm = _sq_error(w, rows)
        else:
            if stored.shape != w.shape:
                raise ValueError(f"{name}: package shape {stored.shape} != checkpoint {w.shape}")
            s2 = stored.reshape(-1, stored.shape[-1])
            sq_err, sq_norm = _sq_error(w, lambda r0, r1: np.asarray(s2[r0:r1]).astype(np.float32))
        layer, module = _layer_of(param)
        rel = math.sqrt(sq_err / sq_norm) if sq_norm > 0 else (0.0 if sq_err == 0 else math.inf)
        out.append(
            TensorError(param, list(src.hf_names), layer, module, list(w.shape), stored_as, rel, sq_err, sq_norm)
        )
    if not out:
        raise ValueError(f"{package_dir} has no weight matrices in its tensor-cache")
    return out


def summarize(errors: list[TensorError]) -> dict[str, Any]:
    """Overall and per-layer relative error (sqrt(sum sq_err / sum sq_norm) over the group)."""

    def rel(group: list[TensorError]) -> float:
        norm = sum(e.sq_norm for e in group)
        err = sum(e.sq_error for e in group)
        return math.sqrt(err / norm) if norm > 0 else 0.0

    layers: dict[str, list[TensorError]] = {}
    for e in errors:
        layers.setdefault(e.layer, []).append(e)
    worst = max(errors, key=lambda e: e.rel_error)
    return {
        "overall_rel_error": rel(errors),
        "max_rel_error": worst.rel_error,
        "max_rel_error_tensor": worst.name,
        "mean_rel_error": sum(e.rel_error for e in errors) / len(errors),
        "per_layer": {layer: rel(group) for layer, group in layers.items()},
    }
