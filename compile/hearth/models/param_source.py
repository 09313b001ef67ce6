"""The pieces every family's parameter map is made of, and the checkpoint tensors none reads.

Each family module defines its own `param_map(config)` (llama.py, qwen2.py, bert.py, ...); it
answers, for every name in `model.named_parameters()` (unquantized), which HF tensors feed it and
how they combine. The weights loader streams safetensors through it;
quantization then runs on the combined float tensors.

`combine` only rearranges (concatenation); it keeps the checkpoint's dtype. Casting to the
parameter's dtype is the loader's job (it knows whether the target is f16, f32 or a quantizer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ParamSource:
    hf_names: tuple[str, ...]
    combine: Callable[[list[np.ndarray]], np.ndarray]


def same(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0]


def concat_rows(arrays: list[np.ndarray]) -> np.ndarray:
    # Linear weights are [out, in] in HF and in nn.Linear, so fusing projections stacks rows
    # (biases: elements) in the order the model splits them: q|k|v, gate|up.
    return np.concatenate(arrays, axis=0)


def one(name: str) -> ParamSource:
    """The parameter is the checkpoint tensor `name` as it is."""
    return ParamSource((name,), same)


def rows(*names: str) -> ParamSource:
    """The parameter is the checkpoint tensors `names` stacked by rows (a fused projection)."""
    return ParamSource(tuple(names), concat_rows)


# Checkpoint tensors no parameter reads, that a strict loader should not complain about.
_UNUSED_SUFFIXES = (
    "rotary_emb.inv_freq",  # RoPE tables some decoder exports include; the KV cache computes RoPE itself
    "embeddings.position_ids",  # BERT-family buffer (0..max_len-1), not a weight
)
_UNUSED_PREFIXES = (
    "pooler.",  # BERT's [CLS] pooler head: sentence embedders pool with their own config instead
    "cls.",  # BERT pre-training heads (MLM / next sentence), in checkpoints saved with them
)


def is_unused_hf_tensor(name: str) -> bool:
    """True for tensors a compiled model never needs: the tables above, and lm_head.weight
    duplicated into tied decoder checkpoints."""
    bare = name.removeprefix("bert.").removeprefix("roberta.")
    return name == "lm_head.weight" or name.endswith(_UNUSED_SUFFIXES) or bare.startswith(_UNUSED_PREFIXES)


def gather_params(
    param_map: dict[str, ParamSource],
    named_params: Iterable[tuple[str, object]],
    read: Callable[[str], np.ndarray],
) -> list[np.ndarray]:
    """Build every parameter in packed order from `read(hf_name)`, checking shapes and casting.

    A small in-memory helper for tests and tools; the weights loader streams instead.
    """
    out = []
    for name, param in named_params:
        if name not in param_map:
            raise KeyError(f"no checkpoint source for parameter {name!r} (quantized names need the quantizer's map)")
        src = param_map[name]
        arr = src.combine([read(n) for n in src.hf_names])
        want = tuple(int(s) for s in param.shape)
        if arr.shape != want:
            raise ValueError(f"{name}: checkpoint gives shape {arr.shape}, model expects {want}")
        out.append(np.ascontiguousarray(arr.astype(param.dtype)))
    return out
