"""Llama family: Llama 2/3.x, TinyLlama, SmolLM/SmolLM2, Mistral (v0.1's sliding window included).

All of them are the plain decoder of `decoder.py`; what differs is read from config.json.
"""

from __future__ import annotations

from typing import Any

from .config_checks import config_int
from .decoder import DecoderConfig, DecoderForCausalLM, decoder_param_map
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
            # Mistral v0.1: every layer attends over the last `window` positions only.
            self.sliding_window = config_int(cfg, "sliding_window")
            self.all_layers_slide = True  # the cache holds the window only (decoder.sequence_window)
            # TVM's cache attends a prefill chunk to itself without the window (only the cached
            # pages go through the sliding kernel), so a chunk may not be longer than the window.
            self.prefill_chunk_size = min(self.prefill_chunk_size, self.sliding_window)


class LlamaForCausalLM(DecoderForCausalLM):
    """The shared decoder; a separate class so logs, errors and the registry name the family."""


def param_map(config: LlamaConfig) -> dict[str, ParamSource]:
    return decoder_param_map(config)
