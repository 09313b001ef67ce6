"""Quantization schemes (MLC-LLM conventions): q0f32, q0f16, q4f16_1, q4f32_1; q8f16_1, q8f32_1."""
from .group import (
    GroupQuantEmbedding,
    GroupQuantLinear,
    ParamPlan,
    QuantPlan,
    build_plan,
    dequantize_weight,
    quantize_model,
    quantize_params,
    quantize_weight,
    unpack_codes,
)
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
    "quantize_model",
    "QuantPlan",
    "ParamPlan",
    "build_plan",
    "quantize_params",
]
