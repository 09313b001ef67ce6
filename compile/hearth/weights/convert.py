"""Checkpoint -> quantized tensor-cache shards, one tensor at a time (bounded memory).

The _gguf schemes (hearth.quant.schemes) read the source GGUF's own block codes instead of the
converted folder's float weights (hearth.weights.gguf_blocks), so no weight is rounded twice.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from tvm.contrib import tvmjs

from ..models.param_source import ParamSource, is_unused_hf_tensor
from ..quant import BlockCodes, QuantPlan
from .gguf_blocks import GGUFBlockReader, GGUFCarryError, check_carry_over, combine_blocks, gguf_path
from .reader import CheckpointError, CheckpointReader
from .source import ModelSource

SHARD_CAP_MB = 32  # MLC's convention; also keeps each fetch small enough to retry cheaply


def convert_weights(
    reader: CheckpointReader,
    param_map: dict[str, ParamSource],
    plan: QuantPlan,
    out_dir: Path,
    progress: Callable[[int, int], None] | None = None,
    source: ModelSource | None = None,
) -> list[str]:
    """Write tensor-cache.json + params_shard_*.bin; return the names written, in order.

    `source` is needed only by the _gguf schemes (the GGUF file whose blocks they carry over)."""
    if plan.scheme.carries_gguf:
        if source is None:
            raise GGUFCarryError(
                f"{plan.scheme.name} needs the GGUF source to read its blocks from (convert_weights(..., source=...))"
            )
        check_carry_over(plan.scheme, source)
        reader = GGUFBlockReader(gguf_path(source), reader.folder)
    consumed = {n for src in param_map.values() for n in src.hf_names}
    unused = [n for n in reader.names() if n not in consumed and not is_unused_hf_tensor(n)]
    if unused:
        warnings.warn(f"{len(unused)} checkpoint tensors are not used by the model, e.g. {unused[:3]}", stacklevel=2)
    written: list[str] = []

    def tensors() -> Iterator[tuple[str, np.ndarray]]:
        for i, (name, src) in enumerate(param_map.items()):
            array = _combine(name, src, [reader.get(n) for n in src.hf_names])
            finite = [array.scale, array.minimum] if isinstance(array, BlockCodes) else [array]
            if not all(np.all(np.isfinite(a)) for a in finite):
                raise CheckpointError(
                    f"{name} (from {', '.join(src.hf_names)}) contains NaN or Inf: the checkpoint is corrupt"
                )
            for out_name, out in plan.quantize_param(name, array).items():
                written.append(out_name)
                yield out_name, out
            if progress:
                progress(i + 1, len(param_map))

    # dump_tensor_cache prints per-shard chatter; the caller shows a progress bar instead.
    with contextlib.redirect_stdout(io.StringIO()):
        tvmjs.dump_tensor_cache(
            tensors(), str(out_dir), encode_format="raw", shard_cap_mb=SHARD_CAP_MB, show_progress=False
        )
    return written


def _combine(name: str, src: ParamSource, parts: list[np.ndarray | BlockCodes]) -> np.ndarray | BlockCodes:
    """The param map's combine, field by field for block codes (it only stacks rows)."""
    blocks = [isinstance(p, BlockCodes) for p in parts]
    if all(blocks):
        return combine_blocks(parts, src.combine)  # type: ignore[arg-type]
    if any(blocks):
        raise GGUFCarryError(
            f"{name} joins quantized and float tensors ({', '.join(src.hf_names)}); "
            "carry-over needs all of them quantized (or all float): use q4f16_1 or q4f16_mse for this file"
        )
    return src.combine(parts)  # type: ignore[arg-type]
