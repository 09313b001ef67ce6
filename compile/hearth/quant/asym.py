"""Asymmetric group-32 layout for carried-over block codes (the _gguf schemes): numpy codec, TE
kernels, nn layers.

Layout, per weight W[N, K] grouped along K (the reduction axis; hidden for an embedding table):
* q_weight uint32 [N, K * bits / 32]: q4f16_1's packing, element i of a word at bits `bits * i`
  (4-bit: 8 codes a word; 8-bit: 4 codes a word, one per little-endian byte).
* q_scale, q_min: model dtype [N, K / 32]; decode w = code * scale + min, in float32.
* K is a multiple of 32 (GGUF blocks never pad).

The codes come from a quantized file (hearth.weights.gguf_blocks maps GGUF blocks onto them);
nothing here rounds a weight. The float32 decode matters for the f16 schemes: code * d + m in f16
would round the product, while the GGUF's own dequantization (gguf-py, llama.cpp's reference) is
float32. Decoding in f32 and feeding the float32 matmul accumulator directly keeps every weight
exactly the GGUF's value; only the embedding gather rounds its rows to the model dtype, as any
f16 activation is.

Kernels follow hearth.quant.group: each layer call is one TE PrimFunc (decode block + NT matmul
or gather) that dlight's GEMV / Matmul rules fuse into one kernel on every target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from tvm import te, tirx
from tvm.relax.frontend import nn

from ..errors import HearthError
from .group import te_matmul_nt
from .schemes import QuantScheme, get_scheme

__all__ = [
    "BlockCodes",
    "AsymCarryError",
    "pack_block_codes",
    "dequantize_asym",
    "te_dequantize_asym",
    "AsymQuantLinear",
    "AsymQuantEmbedding",
]

_DECODE_DTYPE = "float32"


class AsymCarryError(HearthError, ValueError):
    """Block codes that the layer's layout cannot hold exactly; the message says which and why."""


@dataclass(frozen=True)
class BlockCodes:
    """One weight as codes of a quantized file, unpacked: codes uint8 [N, K] (0..2**bits - 1),
    scale and minimum float32 [N, K / 32], w = code * scale + min. `types` names the file's block
    types it came from (for messages)."""

    codes: np.ndarray
    scale: np.ndarray
    minimum: np.ndarray
    types: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.codes.shape)

    def dequantize(self) -> np.ndarray:
        """The float32 weight, computed like gguf-py's dequantize (code * d, then + min)."""
        n, k = self.codes.shape
        g = self.scale.shape[-1]
        vals = self.codes.reshape(n, g, k // g).astype(np.float32) * self.scale[..., None]
        vals += self.minimum[..., None]
        return vals.reshape(n, k)


def _exact_in(values: np.ndarray, dtype: np.dtype, what: str, name: str) -> np.ndarray:
    with np.errstate(over="ignore"):
        out = values.astype(dtype)
    if not np.array_equal(out.astype(np.float32), values):
        bad = int(np.count_nonzero(out.astype(np.float32) != values))
        raise AsymCarryError(
            f"{name}: {bad} block {what}s are not exactly representable in {dtype} (out of range); "
            "use the float32 scheme"
        )
    return out


def pack_block_codes(
    blocks: BlockCodes, bits: int, model_dtype: str, group_size: int = 32, name: str = "weight"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BlockCodes -> (q_weight uint32 [N, K*bits/32], q_scale, q_min in the model dtype), exactly."""
    codes = np.ascontiguousarray(blocks.codes, dtype=np.uint8)
    if codes.ndim != 2:
        raise AsymCarryError(f"{name}: expected [rows, K] codes, got shape {codes.shape}")
    n, k = codes.shape
    if k % group_size or blocks.scale.shape != (n, k // group_size) or blocks.minimum.shape != blocks.scale.shape:
        raise AsymCarryError(
            f"{name}: codes {codes.shape}, scales {blocks.scale.shape}, mins {blocks.minimum.shape} "
            f"do not form groups of {group_size}"
        )
    if bits not in (4, 8):
        raise AsymCarryError(f"{name}: only 4- and 8-bit codes are implemented, not {bits}")
    top = int(codes.max(initial=0))
    if top >= 1 << bits:
        raise AsymCarryError(
            f"{name}: its blocks ({', '.join(blocks.types)}) hold codes up to {top}, which do not fit this layer's "
            f"{bits}-bit layout; wider blocks (Q5_0, Q8_0) need an 8-bit layer: the q8*_gguf schemes have 8-bit Linears"
        )
    mdt = np.dtype(model_dtype)
    q_scale = _exact_in(np.asarray(blocks.scale, np.float32), mdt, "scale", name)
    q_min = _exact_in(np.asarray(blocks.minimum, np.float32), mdt, "minimum", name)
    if bits == 4:
        packed = codes[:, 0::2] | (codes[:, 1::2] << 4)  # element i of each 8 at bits 4*i
    else:
        packed = codes
    q_weight = np.ascontiguousarray(packed).view("<u4").astype(np.uint32, copy=False)
    return q_weight, q_scale, q_min


def dequantize_asym(
    q_weight: np.ndarray, q_scale: np.ndarray, q_min: np.ndarray, out_dtype: str = "float32"
) -> np.ndarray:
    """Inverse of pack_block_codes: code * scale + min in float32 (the code width follows from the
    shapes: words per group), [..., K]."""
    q_scale = np.asarray(q_scale)
    words, groups = q_weight.shape[-1], q_scale.shape[-1]
    if q_min.shape != q_scale.shape or q_weight.shape[:-1] != q_scale.shape[:-1] or groups == 0 or words % groups:
        raise ValueError(f"q_weight {q_weight.shape}, q_scale {q_scale.shape}, q_min {q_min.shape} do not match")
    bits = {4: 4, 8: 8}.get(words // groups)
    if bits is None:
        raise ValueError(f"{words // groups} words per group of 32 is neither 4-bit (4) nor 8-bit (8)")
    b = np.ascontiguousarray(q_weight, dtype=np.uint32).astype("<u4", copy=False).view(np.uint8)
    if bits == 8:
        codes = b
    else:
        codes = np.empty((*b.shape[:-1], b.shape[-1] * 2), np.uint8)
        codes[..., 0::2] = b & 0xF
        codes[..., 1::2] = b >> 4
    lead = codes.shape[:-1]
    vals = codes.reshape(*lead, groups, 32).astype(np.float32) * np.asarray(q_scale, np.float32)[..., None]
    vals += np.asarray(q_min, np.float32)[..., None]
    return vals.reshape(*lead, groups * 32).astype(out_dtype, copy=False)


# ----------------------------------------------------------------------------------------------
# TE kernels
# ----------------------------------------------------------------------------------------------
def _decode(bits: int, q_weight, q_scale, q_min, row, j):
    """float32 value of element (row..., j): code * scale + min."""
    per_word = 32 // bits
    word = q_weight(*row, j // per_word)
    shift = ((j % per_word) * bits).astype("uint32")
    code = tirx.bitwise_and(tirx.shift_right(word, shift), tirx.const((1 << bits) - 1, "uint32"))
    g = j // 32
    return code.astype(_DECODE_DTYPE) * q_scale(*row, g).astype(_DECODE_DTYPE) + q_min(*row, g).astype(_DECODE_DTYPE)


def te_dequantize_asym(bits: int, q_weight: te.Tensor, q_scale: te.Tensor, q_min: te.Tensor, k: int) -> te.Tensor:
    """[..., K] float32 weight from q_weight [..., K*bits/32], q_scale / q_min [..., K/32]."""
    out_shape = [*q_weight.shape[:-1], tirx.IntImm("int64", k)]
    return te.compute(
        out_shape, lambda *idx: _decode(bits, q_weight, q_scale, q_min, idx[:-1], idx[-1]), name="dequantize"
    )


def te_dequantize_asym_take(
    bits: int, q_weight: te.Tensor, q_scale: te.Tensor, q_min: te.Tensor, ids: te.Tensor, k: int, out_dtype: str
) -> te.Tensor:
    """Rows ids[...] of the decoded table, [*ids.shape, K] in out_dtype; only those rows decode."""

    def fcompute(*idx):
        row = ids(*idx[:-1]).astype("int64")
        return _decode(bits, q_weight, q_scale, q_min, (row,), idx[-1]).astype(out_dtype)

    return te.compute([*ids.shape, tirx.IntImm("int64", k)], fcompute, name="dequantize_take")


def _check_k(k: Any, what: str, group_size: int) -> int:
    if not isinstance(k, int):
        raise ValueError(f"{what}: the grouped dimension must be a static int, got {k!r}")
    if k % group_size:
        raise ValueError(f"{what}: K={k} is not a multiple of {group_size}; carried blocks cover whole groups")
    return k


def _params(module: nn.Module, rows: int | str | tirx.Var, k: int, bits: int, scheme: QuantScheme) -> None:
    g = k // scheme.group_size
    module.q_weight = nn.Parameter((rows, k * bits // scheme.storage_bits), scheme.storage_dtype)
    module.q_scale = nn.Parameter((rows, g), scheme.scale_dtype)
    module.q_min = nn.Parameter((rows, g), scheme.scale_dtype)


class AsymQuantLinear(nn.Module):
    """nn.Linear over carried codes (params q_weight, q_scale, q_min, optional bias)."""

    def __init__(
        self,
        in_features: int,
        out_features: int | str | tirx.Var,
        scheme: QuantScheme | str,
        bits: int,
        bias: bool = True,
        out_dtype: str | None = None,
        bias_dtype: str | None = None,
    ) -> None:
        super().__init__()
        self.scheme = get_scheme(scheme)
        self.bits = bits
        self.in_features = _check_k(in_features, "AsymQuantLinear", self.scheme.group_size)
        self.out_features = out_features
        self.out_dtype = out_dtype
        _params(self, out_features, in_features, bits, self.scheme)
        self.bias = nn.Parameter((out_features,), bias_dtype or out_dtype or self.scheme.model_dtype) if bias else None

    @staticmethod
    def from_linear(src: nn.Linear, scheme: QuantScheme | str, bits: int) -> AsymQuantLinear:
        out_features, in_features = src.weight.shape
        src_bias = getattr(src, "bias", None)
        layer = AsymQuantLinear(
            in_features,
            out_features,
            scheme,
            bits,
            bias=src_bias is not None,
            out_dtype=src.out_dtype,
            bias_dtype=src_bias.dtype if src_bias is not None else None,
        )
        if layer.bias is not None:
            layer.bias.attrs = dict(src_bias.attrs)
        return layer

    def forward(self, x: nn.Tensor) -> nn.Tensor:
        if x.dtype != self.scheme.model_dtype:
            raise TypeError(f"AsymQuantLinear({self.scheme.name}) got {x.dtype} input")
        out_dtype = self.out_dtype or self.scheme.model_dtype
        k, bits = self.in_features, self.bits
        if self.bias is None:
            return nn.op.tensor_expr_op(
                lambda xx, w, s, m: te_matmul_nt(xx, te_dequantize_asym(bits, w, s, m, k), k, out_dtype),
                name_hint="dequantize_NT_matmul",
                args=[x, self.q_weight, self.q_scale, self.q_min],
            )
        return nn.op.tensor_expr_op(
            lambda xx, w, s, m, b: te_matmul_nt(xx, te_dequantize_asym(bits, w, s, m, k), k, out_dtype, b),
            name_hint="dequantize_NT_matmul_add",
            args=[x, self.q_weight, self.q_scale, self.q_min, self.bias],
        )

    def to(self, dtype: str | None = None) -> None:
        """Codes, scales and minimums keep their dtypes; only the bias follows."""
        if self.bias is not None and self.out_dtype is None:
            self.bias.to(dtype=dtype)


class AsymQuantEmbedding(nn.Module):
    """nn.Embedding over carried codes: forward(ids) gathers and decodes rows; lm_head_forward(x)
    is the tied LM head x @ decode(table)^T with float32 logits."""

    def __init__(self, num: int | str | tirx.Var, dim: int, scheme: QuantScheme | str, bits: int) -> None:
        super().__init__()
        self.scheme = get_scheme(scheme)
        self.bits = bits
        self.num = num
        self.dim = _check_k(dim, "AsymQuantEmbedding", self.scheme.group_size)
        _params(self, num, dim, bits, self.scheme)

    @staticmethod
    def from_embedding(src: nn.Embedding, scheme: QuantScheme | str, bits: int) -> AsymQuantEmbedding:
        num, dim = src.weight.shape
        return AsymQuantEmbedding(num, dim, scheme, bits)

    def forward(self, x: nn.Tensor) -> nn.Tensor:
        if not x.dtype.startswith("int"):
            raise TypeError(f"AsymQuantEmbedding expects integer ids, got {x.dtype}")
        bits, dim, mdt = self.bits, self.dim, self.scheme.model_dtype
        return nn.op.tensor_expr_op(
            lambda w, s, m, ids: te_dequantize_asym_take(bits, w, s, m, ids, dim, mdt),
            name_hint="dequantize_take",
            args=[self.q_weight, self.q_scale, self.q_min, x],
        )

    def lm_head_forward(self, x: nn.Tensor, out_dtype: str = "float32") -> nn.Tensor:
        if x.dtype != self.scheme.model_dtype:
            raise TypeError(f"AsymQuantEmbedding({self.scheme.name}).lm_head_forward got {x.dtype} input")
        bits, dim = self.bits, self.dim
        return nn.op.tensor_expr_op(
            lambda xx, w, s, m: te_matmul_nt(xx, te_dequantize_asym(bits, w, s, m, dim), dim, out_dtype),
            name_hint="dequantize_NT_matmul",
            args=[x, self.q_weight, self.q_scale, self.q_min],
        )

    def to(self, dtype: str | None = None) -> None:
        """Packed tables keep their dtypes."""
