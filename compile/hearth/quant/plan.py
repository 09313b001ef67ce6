"""Which modules a scheme replaces, and how each checkpoint tensor becomes package parameters.

Which layers (MLC's rules): every nn.Linear and nn.Embedding, subclasses included, except modules
with ``no_quantization = True``, MoE router gates (name ends with "gate", out_features <= 256),
and, only for schemes with quantize_final_fc=False (none shipped), the final LM head.
Group schemes (q4*_1, q8*, q4*_mse) get hearth.quant.group's layers and quantize float tensors;
the _gguf schemes get hearth.quant.asym's layers (Linears `bits` wide, the embedding table and an
untied LM head `embedding_bits` wide) and take a quantized file's block codes (BlockCodes).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tvm.relax.frontend import nn

from .asym import AsymQuantEmbedding, AsymQuantLinear, BlockCodes, pack_block_codes
from .group import GroupQuantEmbedding, GroupQuantLinear, quantize_weight
from .schemes import QuantScheme, get_scheme

__all__ = ["quantize_model", "QuantPlan", "ParamPlan", "build_plan", "quantize_params"]


# ----------------------------------------------------------------------------------------------
# model rewriting
# ----------------------------------------------------------------------------------------------
def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _check_weight_dtype(name: str, param: nn.Parameter, scheme: QuantScheme) -> None:
    if param.dtype != scheme.model_dtype:
        raise ValueError(
            f"{_join(name, 'weight')} is {param.dtype} but {scheme.name} needs the model built in {scheme.model_dtype}"
        )


def _is_final_fc(name: str) -> bool:
    return name in ("head", "lm_head", "lm_head.linear", "embed_out")  # MLC's is_final_fc


def _is_moe_gate(name: str, node: nn.Linear) -> bool:  # MLC's is_moe_gate
    return name.endswith("gate") and isinstance(node.out_features, int) and node.out_features <= 256


class _QuantizeMutator(nn.Mutator):
    def __init__(self, scheme: QuantScheme) -> None:
        super().__init__()
        self.scheme = scheme

    def visit_module(self, name: str, node: nn.Module) -> Any:
        if getattr(node, "no_quantization", False):  # MLC's opt-out flag
            return node
        if (
            isinstance(node, nn.Linear)
            and not _is_moe_gate(name, node)
            and (self.scheme.quantize_final_fc or not _is_final_fc(name))
        ):
            _check_weight_dtype(name, node.weight, self.scheme)
            if self.scheme.carries_gguf:
                bits = self.scheme.layer_bits("final_fc" if _is_final_fc(name) else "linear")
                return AsymQuantLinear.from_linear(node, self.scheme, bits)
            return GroupQuantLinear.from_linear(node, self.scheme)
        if isinstance(node, nn.Embedding) and self.scheme.quantize_embedding:
            _check_weight_dtype(name, node.weight, self.scheme)
            if self.scheme.carries_gguf:
                return AsymQuantEmbedding.from_embedding(node, self.scheme, self.scheme.layer_bits("embedding"))
            return GroupQuantEmbedding.from_embedding(node, self.scheme)
        return self.visit(name, node)


def quantize_model(model: nn.Module, scheme: QuantScheme | str) -> nn.Module:
    """Replace every nn.Linear / nn.Embedding (subclasses included) by its quantized layer
    (exceptions: see the module docstring).

    The model must already be built in scheme.model_dtype (checked for the replaced weights; no
    implicit cast). q0 schemes return the model unchanged.
    The model is mutated in place and returned (a quantized root module is returned as new).
    """
    scheme = get_scheme(scheme)
    if not scheme.is_quantized:
        return model
    return _QuantizeMutator(scheme).visit_module("", model)


# ----------------------------------------------------------------------------------------------
# parameter conversion plan (streamable: one source tensor in, its output tensors out)
# ----------------------------------------------------------------------------------------------
def _named_modules(root: Any, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Modules with the dotted names export_tvm / named_parameters give their parameters."""
    if isinstance(root, nn.ModuleList):
        for i, sub in enumerate(root):
            yield from _named_modules(sub, _join(prefix, str(i)))
        return
    if isinstance(root, nn.ModuleDict):
        for k, sub in root.items():
            yield from _named_modules(sub, _join(prefix, k))
        return
    if not isinstance(root, nn.Module):
        return
    yield prefix, root
    for key, item in root.__dict__.items():
        if isinstance(item, (nn.Module, nn.ModuleList, nn.ModuleDict)):
            yield from _named_modules(item, _join(prefix, key))


@dataclass(frozen=True)
class ParamPlan:
    """How one source tensor becomes model parameters."""

    source: str  # source name, e.g. "model.layers.0.mlp.down_proj.weight"
    kind: str  # "quantize", "carry" (block codes in, see hearth.quant.asym) or "cast"
    shape: tuple[int, ...]  # expected source shape
    outputs: dict[str, tuple[tuple[int, ...], str]]  # output name -> (shape, dtype)
    bits: int = 0  # "carry": code width of the layer


@dataclass
class QuantPlan:
    """Source-name -> output-params plan, built by build_plan() from the (quantized) model.

    A weights loader streams: for each checkpoint tensor (after renaming/concatenation into the
    model's unquantized names, e.g. "...qkv_proj.weight"), quantize_param(name, array) returns
    the finished params ({"...q_weight": uint32, "...q_scale": f16/f32} or {name: array in the
    param's dtype}). Outputs come in the order tensors are fed, not export order. The _gguf
    schemes' quantized params take BlockCodes instead of a float array (kind "carry"; outputs
    q_weight, q_scale, q_min) and never round.
    """

    scheme: QuantScheme
    params: dict[str, ParamPlan] = field(default_factory=dict)  # by source name

    def output_names(self) -> list[str]:
        return [o for p in self.params.values() for o in p.outputs]

    def quantize_param(self, name: str, array: np.ndarray | BlockCodes) -> dict[str, np.ndarray]:
        """Convert one source tensor; returns {output name: array} in the model's dtypes."""
        try:
            plan = self.params[name]
        except KeyError:
            raise KeyError(f"{name!r} is not a parameter of the model ({self.scheme.name})") from None
        if plan.kind == "carry" or isinstance(array, BlockCodes):
            return self._carry(plan, array)
        array = np.asarray(array)
        if tuple(array.shape) != plan.shape:
            raise ValueError(f"{name}: shape {array.shape} != expected {plan.shape}")
        if plan.kind == "cast":
            ((out, (_, dtype)),) = plan.outputs.items()
            return {out: array.astype(dtype, copy=False)}
        q_weight, q_scale = quantize_weight(array, self.scheme)
        qw_name, qs_name = plan.outputs
        return {qw_name: q_weight, qs_name: q_scale}

    def _carry(self, plan: ParamPlan, blocks: np.ndarray | BlockCodes) -> dict[str, np.ndarray]:
        if plan.kind == "cast" and isinstance(blocks, BlockCodes):
            # a float parameter (e.g. a MoE router gate) stored quantized in the file: its exact values
            return self.quantize_param(plan.source, blocks.dequantize())
        if plan.kind != "carry":
            raise TypeError(f"{plan.source}: {self.scheme.name} quantizes it from a float array, not from block codes")
        if not isinstance(blocks, BlockCodes):
            raise TypeError(
                f"{plan.source}: {self.scheme.name} carries a GGUF file's block codes over and cannot quantize a float "
                "array; compile the GGUF file itself, or use q4f16_1 / q4f16_mse to quantize float weights"
            )
        if blocks.shape != plan.shape:
            raise ValueError(f"{plan.source}: block codes of shape {blocks.shape} != expected {plan.shape}")
        arrays = pack_block_codes(blocks, plan.bits, self.scheme.model_dtype, self.scheme.group_size, plan.source)
        return dict(zip(plan.outputs, arrays))

    def bits_per_param(self) -> float:
        """Stored bits per source parameter over the whole model (scales, norms, biases too)."""
        n_src = sum(math.prod(p.shape) for p in self.params.values())
        n_bits = sum(
            math.prod(shape) * np.dtype(dtype).itemsize * 8
            for p in self.params.values()
            for shape, dtype in p.outputs.values()
        )
        return n_bits / n_src


def _static_shape(shape, name: str) -> tuple[int, ...]:
    if not all(isinstance(s, int) for s in shape):
        raise ValueError(f"{name}: symbolic shape {shape} cannot be planned; bind it to ints first")
    return tuple(shape)


def build_plan(model: nn.Module, scheme: QuantScheme | str) -> QuantPlan:
    """Plan from a model AFTER quantize_model (for q0 schemes: the plain model)."""
    scheme = get_scheme(scheme)
    plan = QuantPlan(scheme)
    covered: set[str] = set()
    for name, mod in _named_modules(model):
        if isinstance(mod, (GroupQuantLinear, GroupQuantEmbedding)):
            if mod.scheme != scheme:
                raise ValueError(f"{name} was quantized with {mod.scheme.name}, not {scheme.name}")
            k = mod.in_features if isinstance(mod, GroupQuantLinear) else mod.dim
            qw = _join(name, "q_weight")
            qs = _join(name, "q_scale")
            qw_shape = _static_shape(mod.q_weight.shape, qw)
            src = _join(name, "weight")
            plan.params[src] = ParamPlan(
                source=src,
                kind="quantize",
                shape=(qw_shape[0], k),
                outputs={
                    qw: (qw_shape, str(np.dtype(mod.q_weight.dtype))),
                    qs: (_static_shape(mod.q_scale.shape, qs), str(np.dtype(mod.q_scale.dtype))),
                },
            )
            covered.update((qw, qs))
        elif isinstance(mod, (AsymQuantLinear, AsymQuantEmbedding)):
            if mod.scheme != scheme:
                raise ValueError(f"{name} was quantized with {mod.scheme.name}, not {scheme.name}")
            k = mod.in_features if isinstance(mod, AsymQuantLinear) else mod.dim
            outs = {_join(name, p): getattr(mod, p) for p in ("q_weight", "q_scale", "q_min")}
            src = _join(name, "weight")
            plan.params[src] = ParamPlan(
                source=src,
                kind="carry",
                shape=(_static_shape(mod.q_weight.shape, src)[0], k),
                outputs={o: (_static_shape(prm.shape, o), str(np.dtype(prm.dtype))) for o, prm in outs.items()},
                bits=mod.bits,
            )
            covered.update(outs)
    for pname, param in model.named_parameters():
        if pname in covered:
            continue
        shape = _static_shape(param.shape, pname)
        plan.params[pname] = ParamPlan(pname, "cast", shape, {pname: (shape, str(np.dtype(param.dtype)))})
    return plan


def quantize_params(
    params: Mapping[str, np.ndarray | BlockCodes], model: nn.Module | QuantPlan, scheme: QuantScheme | str | None = None
) -> dict[str, np.ndarray]:
    """Convert a whole source state dict. `model` is the quantized model (or a prebuilt plan).
    Every model parameter must be present; unknown source names raise KeyError."""
    if isinstance(model, QuantPlan):
        plan = model
    else:
        if scheme is None:
            raise ValueError("quantize_params(params, model, scheme): scheme is required with a model")
        plan = build_plan(model, scheme)
    out: dict[str, np.ndarray] = {}
    for name, array in params.items():
        out.update(plan.quantize_param(name, array))
    missing = [n for n in plan.params if n not in params]
    if missing:
        raise KeyError(f"source params missing for: {', '.join(missing)}")
    return out
