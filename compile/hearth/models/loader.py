"""Where each model parameter comes from in a Hugging Face checkpoint.

A `param_map(config)` answers, for every name in `model.named_parameters()` (unquantized), which
HF tensors feed it and how they combine. The weights loader streams safetensors through it;
quantization then runs on the combined float tensors.

`combine` only rearranges (concatenation); it keeps the checkpoint's dtype. Casting to the
parameter's dtype is the loader's job (it knows whether the target is f16, f32 or a quantizer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from .decoder import DecoderConfig


@dataclass(frozen=True)
class ParamSource:
    hf_names: tuple[str, ...]
    combine: Callable[[list[np.ndarray]], np.ndarray]


def _same(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0]


def _concat_rows(arrays: list[np.ndarray]) -> np.ndarray:
    # Linear weights are [out, in] in HF and in nn.Linear, so fusing projections stacks rows
    # (biases: elements) in the order the model splits them: q|k|v, gate|up.
    return np.concatenate(arrays, axis=0)


def _one(name: str) -> ParamSource:
    return ParamSource((name,), _same)


def decoder_param_map(config: DecoderConfig) -> dict[str, ParamSource]:
    """The map for `decoder.DecoderForCausalLM` (Llama, Mistral, Qwen2): HF names except for the
    fused q|k|v (named `config.qkv_proj_name`, MLC's name: qkv_proj, or c_attn for Qwen2) and
    gate_up_proj, and no lm_head when the embeddings are tied."""
    m: dict[str, ParamSource] = {"model.embed_tokens.weight": _one("model.embed_tokens.weight")}
    for i in range(config.num_hidden_layers):
        layer = f"model.layers.{i}"
        attn, mlp = f"{layer}.self_attn", f"{layer}.mlp"
        kinds = ["weight"] + (["bias"] if config.qkv_bias else [])
        for kind in kinds:
            m[f"{attn}.{config.qkv_proj_name}.{kind}"] = ParamSource(
                tuple(f"{attn}.{p}_proj.{kind}" for p in ("q", "k", "v")), _concat_rows
            )
        m[f"{attn}.o_proj.weight"] = _one(f"{attn}.o_proj.weight")
        if config.o_proj_bias:
            m[f"{attn}.o_proj.bias"] = _one(f"{attn}.o_proj.bias")
        for kind in ["weight"] + (["bias"] if config.mlp_bias else []):
            m[f"{mlp}.gate_up_proj.{kind}"] = ParamSource(
                (f"{mlp}.gate_proj.{kind}", f"{mlp}.up_proj.{kind}"), _concat_rows
            )
            m[f"{mlp}.down_proj.{kind}"] = _one(f"{mlp}.down_proj.{kind}")
        m[f"{layer}.input_layernorm.weight"] = _one(f"{layer}.input_layernorm.weight")
        m[f"{layer}.post_attention_layernorm.weight"] = _one(f"{layer}.post_attention_layernorm.weight")
    m["model.norm.weight"] = _one("model.norm.weight")
    if not config.tie_word_embeddings:
        m["lm_head.weight"] = _one("lm_head.weight")
    return m


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
