"""Quantization schemes (MLC-LLM conventions): q0f32, q0f16, q4f16_1, q4f32_1; Hearth's q8f16_1,
q8f32_1, q4f16_mse, q4f32_mse, and the GGUF carry-over schemes q4f16_gguf, q4f32_gguf, q8f16_gguf,
q8f32_gguf (exact) and q8f32_gguf_near (exact but for Q6_K tensors, re-quantized to 8 bits)."""

from .asym import (
    AsymCarryError,
    AsymQuantEmbedding,
    AsymQuantLinear,
    BlockCodes,
    dequantize_asym,
    pack_block_codes,
)
from .group import (
    GroupQuantEmbedding,
    GroupQuantLinear,
    dequantize_weight,
    quantize_weight,
    unpack_codes,
)
from .plan import ParamPlan, QuantPlan, build_plan, quantize_model, quantize_params
from .schemes import SCHEMES, QuantScheme, UnknownQuantizationError, bits_per_param, get_scheme

__all__ = [
    "SCHEMES",
    "QuantScheme",
    "UnknownQuantizationError",
    "get_scheme",
    "bits_per_param",
    "quantize_weight",
    "dequantize_weight",
    "unpack_codes",
    "GroupQuantLinear",
    "GroupQuantEmbedding",
    "AsymQuantLinear",
    "AsymQuantEmbedding",
    "AsymCarryError",
    "BlockCodes",
    "pack_block_codes",
    "dequantize_asym",
    "quantize_model",
    "QuantPlan",
    "ParamPlan",
    "build_plan",
    "quantize_params",
]
