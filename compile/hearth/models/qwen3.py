"""Qwen3 (dense): the Llama decoder with an RMSNorm over head_dim on each q and k head before RoPE,
no q/k/v bias (unless `attention_bias`), and an explicit head_dim (128 when config.json omits it,
as transformers' Qwen3Config does). MLC names the fused q|k|v `c_attn`, as for Qwen2."""

from __future__ import annotations

from typing import Any

from .decoder import DecoderConfig, DecoderForCausalLM, UnsupportedConfigError, decoder_param_map
from .param_source import ParamSource, one

# transformers' Qwen3Config default, used when config.json has no head_dim.
DEFAULT_HEAD_DIM = 128


class Qwen3Config(DecoderConfig):
    hf_model_types = ("qwen3",)
    qkv_proj_name = "c_attn"

    @classmethod
    def from_hf(cls, config_dict: dict[str, Any], *args: Any, **kwargs: Any) -> DecoderConfig:
        cfg = dict(config_dict)
        if cfg.get("head_dim") is None:
            cfg["head_dim"] = DEFAULT_HEAD_DIM
        return super().from_hf(cfg, *args, **kwargs)

    def _family_overrides(self, cfg: dict[str, Any]) -> None:
        self.qk_norm = True
        # HF's attention_bias puts a bias on q, k, v and o alike (off in every released Qwen3).
        self.qkv_bias = self.o_proj_bias = bool(cfg.get("attention_bias", False))
        window = cfg.get("sliding_window")
        if cfg.get("use_sliding_window") and window is not None and int(window) < self.context_window_size:
            raise UnsupportedConfigError(
                f"qwen3 checkpoint enables sliding-window attention (use_sliding_window=true, "
                f"sliding_window={window}, context window {self.context_window_size}); it is not "
                f"implemented for qwen3. Compile with context_window_size <= {window} so the window never slides."
            )


class Qwen3ForCausalLM(DecoderForCausalLM):
    """The shared decoder with Qwen3Config's q/k norms."""


def param_map(config: Qwen3Config) -> dict[str, ParamSource]:
    m = decoder_param_map(config)
    for i in range(config.num_hidden_layers):
        attn = f"model.layers.{i}.self_attn"
        m[f"{attn}.q_norm.weight"] = one(f"{attn}.q_norm.weight")
        m[f"{attn}.k_norm.weight"] = one(f"{attn}.k_norm.weight")
    return m
