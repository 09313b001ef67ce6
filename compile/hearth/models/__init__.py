"""Model definitions (tvm.relax.frontend.nn) for the decoder and encoder families Hearth compiles.

    arch, config = config_from_hf(json.load(open("config.json")))
    model = arch.model_class(config, dtype="float16", target="webgpu")
    mod, named_params = export_model(model)          # MLC's function set, see decoder.py
    pmap = arch.param_map(config)                     # parameter name -> HF tensors
    meta = metadata(config, "q0f16", named_params)    # MLC `_metadata`

Encoders (arch.task == "embedding", see encoder.py) read the checkpoint folder as well:

    config = arch.config_class.from_hf(cfg, folder)   # pooling from sentence-transformers files
    mod, named_params = export_encoder(arch.model_class(config, dtype="float32"))
    meta = encoder_metadata(config, "q0f32", named_params)
"""

from .bert import BertConfig, BertModel
from .decoder import (
    DecoderConfig,
    DecoderForCausalLM,
    UnsupportedConfigError,
    export_model,
    kv_cache_bytes_per_token,
    metadata,
    variable_bounds,
)
from .encoder import NoPoolingConfigWarning, PoolingConfig, encoder_metadata, export_encoder, read_pooling_config
from .layers import Embedding
from .param_source import ParamSource, gather_params, is_unused_hf_tensor
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
    "BertConfig",
    "BertModel",
    "NoPoolingConfigWarning",
    "PoolingConfig",
    "encoder_metadata",
    "export_encoder",
    "read_pooling_config",
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
