"""Model definitions (tvm.relax.frontend.nn) for the decoder families Hearth compiles.

    arch, config = config_from_hf(json.load(open("config.json")))
    model = arch.model_class(config, dtype="float16", target="webgpu")
    mod, named_params = export_model(model)          # MLC's function set, see decoder.py
    pmap = arch.param_map(config)                     # parameter name -> HF tensors
    meta = metadata(config, "q0f16", named_params)    # MLC `_metadata`
"""
from .decoder import (
    DecoderConfig,
    DecoderForCausalLM,
    UnsupportedConfigError,
    export_model,
    kv_cache_bytes_per_token,
    metadata,
    variable_bounds,
)
from .layers import Embedding
from .loader import ParamSource, gather_params, is_unused_hf_tensor
from .registry import (
    ARCHITECTURES,
    Architecture,
    UnsupportedArchitectureError,
    config_from_hf,
    get_architecture,
    supported_model_types,
)

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "DecoderConfig",
    "DecoderForCausalLM",
    "Embedding",
    "ParamSource",
    "UnsupportedArchitectureError",
    "UnsupportedConfigError",
    "config_from_hf",
    "export_model",
    "gather_params",
    "get_architecture",
    "is_unused_hf_tensor",
    "kv_cache_bytes_per_token",
    "metadata",
    "supported_model_types",
    "variable_bounds",
]
