"""Which Hugging Face architectures Hearth can compile, and the pieces each one needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import HearthError
from . import bert, gemma3, llama, phi3, qwen2, qwen3
from .param_source import ParamSource


class UnsupportedArchitectureError(HearthError, ValueError):
    """config.json names a model_type no registered family implements."""


@dataclass(frozen=True)
class Architecture:
    name: str  # family name, e.g. "llama"
    hf_model_types: tuple[str, ...]  # config.json "model_type" values it accepts
    config_class: type  # DecoderConfig (task "chat") or BertConfig (task "embedding") subclass
    model_class: type  # nn.Module built as model_class(config, dtype=..., target=...)
    param_map: Callable[[Any], dict[str, ParamSource]]
    task: str = "chat"  # "chat": decoder function set (decoder.py); "embedding": encoder.py


# Text encoders people ask for that are NOT implemented (different blocks or positions); named
# in the error so nobody mistakes them for a typo.
UNSUPPORTED_ENCODERS = {
    "mpnet": "MPNet (all-mpnet-base-v2) uses relative position buckets",
    "distilbert": "DistilBERT has its own block layout (no token types, q_lin/k_lin names)",
    "nomic_bert": "NomicBERT uses rotary positions and SwiGLU",
    "new": "GTE v1.5 ('new') uses rotary positions and GLU",
    "modernbert": "ModernBERT uses rotary positions, GeGLU and local attention",
    "t5": "T5 encoders (sentence-t5, GTR) use relative position biases and RMSNorm",
    "deberta-v2": "DeBERTa uses disentangled relative attention",
}


ARCHITECTURES: dict[str, Architecture] = {
    arch.name: arch
    for arch in [
        Architecture("llama", ("llama", "mistral"), llama.LlamaConfig, llama.LlamaForCausalLM, llama.param_map),
        Architecture("qwen2", ("qwen2",), qwen2.Qwen2Config, qwen2.Qwen2ForCausalLM, qwen2.param_map),
        Architecture("qwen3", ("qwen3",), qwen3.Qwen3Config, qwen3.Qwen3ForCausalLM, qwen3.param_map),
        Architecture("gemma3", ("gemma3_text",), gemma3.Gemma3Config, gemma3.Gemma3ForCausalLM, gemma3.param_map),
        Architecture("phi3", ("phi3",), phi3.Phi3Config, phi3.Phi3ForCausalLM, phi3.param_map),
        Architecture(
            "bert", bert.BertConfig.hf_model_types, bert.BertConfig, bert.BertModel, bert.param_map, task="embedding"
        ),
    ]
}


def supported_model_types() -> list[str]:
    return sorted(t for arch in ARCHITECTURES.values() for t in arch.hf_model_types)


def get_architecture(model_type: str) -> Architecture:
    """The family that compiles checkpoints whose config.json says `model_type`."""
    for arch in ARCHITECTURES.values():
        if model_type in arch.hf_model_types:
            return arch
    why = f" ({UNSUPPORTED_ENCODERS[model_type]})" if model_type in UNSUPPORTED_ENCODERS else ""
    raise UnsupportedArchitectureError(
        f"model_type {model_type!r} is not supported{why}. Supported model_types: "
        f"{', '.join(supported_model_types())}. Pick a checkpoint of one of these families, or add "
        "the architecture: write its nn.Module in compile/hearth/models/ and register it in "
        "ARCHITECTURES (compile/hearth/models/registry.py)."
    )


def config_from_hf(config_dict: dict[str, Any], **kwargs: Any) -> tuple[Architecture, Any]:
    """(architecture, parsed config) for a config.json dict; kwargs go to `from_hf`
    (encoders take the checkpoint folder too: BertConfig.from_hf(cfg, folder, ...))."""
    arch = get_architecture(config_dict.get("model_type", "<missing model_type>"))
    return arch, arch.config_class.from_hf(config_dict, **kwargs)
