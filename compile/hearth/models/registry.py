"""Which Hugging Face architectures Hearth can compile, and the pieces each one needs."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import llama, qwen2
from .decoder import DecoderConfig, DecoderForCausalLM
from .loader import ParamSource


class UnsupportedArchitectureError(ValueError):
    """config.json names a model_type no registered family implements."""


@dataclass(frozen=True)
class Architecture:
    name: str  # family name, e.g. "llama"
    hf_model_types: tuple[str, ...]  # config.json "model_type" values it accepts
    config_class: type[DecoderConfig]
    model_class: type[DecoderForCausalLM]
    param_map: Callable[[DecoderConfig], dict[str, ParamSource]]
    task: str = "chat"


ARCHITECTURES: dict[str, Architecture] = {
    arch.name: arch
    for arch in [
        Architecture("llama", ("llama", "mistral"), llama.LlamaConfig, llama.LlamaForCausalLM, llama.param_map),
        Architecture("qwen2", ("qwen2",), qwen2.Qwen2Config, qwen2.Qwen2ForCausalLM, qwen2.param_map),
    ]
}


def supported_model_types() -> list[str]:
    return sorted(t for arch in ARCHITECTURES.values() for t in arch.hf_model_types)


def get_architecture(model_type: str) -> Architecture:
    """The family that compiles checkpoints whose config.json says `model_type`."""
    for arch in ARCHITECTURES.values():
        if model_type in arch.hf_model_types:
            return arch
    raise UnsupportedArchitectureError(
        f"model_type {model_type!r} is not supported. Supported model_types: "
        f"{', '.join(supported_model_types())}. Pick a checkpoint of one of these families, or add "
        "the architecture: write its nn.Module in compile/hearth/models/ and register it in "
        "ARCHITECTURES (compile/hearth/models/registry.py)."
    )


def config_from_hf(config_dict: dict[str, Any], **kwargs: Any) -> tuple[Architecture, DecoderConfig]:
    """(architecture, parsed config) for a config.json dict; kwargs go to `from_hf`."""
    arch = get_architecture(config_dict.get("model_type", "<missing model_type>"))
    return arch, arch.config_class.from_hf(config_dict, **kwargs)
