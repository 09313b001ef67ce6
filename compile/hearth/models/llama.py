"""Llama family: Llama 2/3.x, TinyLlama, SmolLM/SmolLM2, Mistral without sliding window.

All of them are the plain decoder of `decoder.py`; what differs is read from config.json.
"""

from __future__ import annotations

from typing import Any

from .decoder import DecoderConfig, DecoderForCausalLM, UnsupportedConfigError, decoder_param_map
from .param_source import ParamSource


class LlamaConfig(DecoderConfig):
    hf_model_types = ("llama", "mistral")

    def _family_overrides(self, cfg: dict[str, Any]) -> None:
        # HF Llama's attention_bias puts a bias on q, k, v AND o (InternLM-style exports);
        # mlp_bias on gate, up and down. Both are off for Meta's, TinyLlama's and SmolLM's.
        self.qkv_bias = self.o_proj_bias = bool(cfg.get("attention_bias", False))
        self.mlp_bias = bool(cfg.get("mlp_bias", False))
        window = cfg.get("sliding_window")
        if window is not None and int(window) < self.context_window_size:
            # TVM 0.27's paged KV cache has per-layer windows ("mha_sliding") but fails at the
            # first forward when NO layer is full attention (it allocates its work buffers only
            # for "mha" layers), which is Mistral v0.1's case: every layer slides.
            raise UnsupportedConfigError(
                f"{self.model_type} checkpoint uses sliding-window attention on every layer "
                f"(sliding_window={window}) and the context window is {self.context_window_size} tokens; "
                "TVM 0.27's KV cache cannot run a model whose layers all slide. Compile with "
                f"context_window_size <= {window} (the window then never slides, so full attention is "
                "exact), or use a checkpoint without a sliding window (e.g. Mistral-7B v0.2 or later)."
            )


class LlamaForCausalLM(DecoderForCausalLM):
    """The shared decoder; a separate class so logs, errors and the registry name the family."""


def param_map(config: LlamaConfig) -> dict[str, ParamSource]:
    return decoder_param_map(config)
