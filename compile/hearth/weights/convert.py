"""Checkpoint -> quantized tensor-cache shards, one tensor at a time (bounded memory)."""
from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from tvm.contrib import tvmjs

from ..models.loader import ParamSource, is_unused_hf_tensor
from ..quant import QuantPlan
from .reader import CheckpointError, CheckpointReader

SHARD_CAP_MB = 32  # MLC's convention; also keeps each fetch small enough to retry cheaply


def convert_weights(
    reader: CheckpointReader,
    param_map: dict[str, ParamSource],
    plan: QuantPlan,
    out_dir: Path,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Write tensor-cache.json + params_shard_*.bin; return the names written, in order."""
    consumed = {n for src in param_map.values() for n in src.hf_names}
    unused = [n for n in reader.names() if n not in consumed and not is_unused_hf_tensor(n)]
    if unused:
        warnings.warn(f"{len(unused)} checkpoint tensors are not used by the model, e.g. {unused[:3]}", stacklevel=2)
    written: list[str] = []

    def tensors() -> Iterator[tuple[str, np.ndarray]]:
        for i, (name, source) in enumerate(param_map.items()):
            array = source.combine([reader.get(n) for n in source.hf_names])
            if not np.all(np.isfinite(array)):
                raise CheckpointError(f"{name} (from {', '.join(source.hf_names)}) contains NaN or Inf: the checkpoint is corrupt")
            for out_name, out in plan.quantize_param(name, array).items():
                written.append(out_name)
                yield out_name, out
            if progress:
                progress(i + 1, len(param_map))

    # dump_tensor_cache prints per-shard chatter; the caller shows a progress bar instead.
    with contextlib.redirect_stdout(io.StringIO()):
        tvmjs.dump_tensor_cache(tensors(), str(out_dir), encode_format="raw", shard_cap_mb=SHARD_CAP_MB, show_progress=False)
    return written
