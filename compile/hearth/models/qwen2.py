"""Qwen2 / Qwen2.5: the Llama decoder with a bias on the q, k and v projections (none on o),
whose fused q|k|v projection MLC names `c_attn`."""

from __future__ import annotations

from typing import Any

from .decoder import DecoderConfig, DecoderForCausalLM, UnsupportedConfigError, decoder_param_map
from .param_source import ParamSource


class Qwen2Config(DecoderConfig):
    hf_model_types = ("qwen2",)
    # MLC-LLM (and so WebLLM's prebuilt Qwen2 libraries) keeps Qwen-1's name for the fused q|k|v.
    qkv_proj_name = "c_attn"

    def _family_overrides(self, cfg: dict[str, Any]) -> None:
        self.qkv_bias = True
        # Qwen2 configs always carry `sliding_window`, but it only applies when
        # use_sliding_window is set (no released Qwen2/2.5 checkpoint sets it).
        window = cfg.get("sliding_window")
        if cfg.get("use_sliding_window") and window is not None and int(window) < self.context_window_size:
            raise UnsupportedConfigError(
                f"qwen2 checkpoint enables sliding-window attention (sliding_window={window}, "
                f"context window {self.context_window_size}); it is not implemented. Compile with "
                f"context_window_size <= {window} so the window never slides."
            )


class Qwen2ForCausalLM(DecoderForCausalLM):
    """The shared decoder; Qwen2's differences (qkv bias, the c_attn name) come from Qwen2Config."""


def param_map(config: Qwen2Config) -> dict[str, ParamSource]:
    return decoder_param_map(config)
